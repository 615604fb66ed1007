package server

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"github.com/chatd/chatd/internal/confusable"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Hub keeps who is online, the channels, and every session's events.
//
// Everything happens under one mutex, in one order: each event is queued on
// every session it concerns (and recorded in each one's resume log) before
// the next event happens, so all sessions see common events in the same
// order, a channel's messages reach exactly the members it has at that
// instant, and a snapshot (welcome, channel members, history) is exact with
// no gap or duplicate before the live events that follow it. Queuing never
// blocks: a session whose queue is full is dropped as too slow (see
// flushSlowLocked). A Hub is safe for concurrent use.
type Hub struct {
	cfg      Config
	lim      *admission.Limiter // counts sessions per client address; nil counts none
	idPrefix string             // makes message ids unique across restarts

	closing chan struct{} // closed by Shutdown

	mu       sync.Mutex           // guards the fields below, every member and channel, and the hub-owned fields of every Session
	msgs     uint64               // messages sent so far; numbers message ids
	closed   bool                 // set by Shutdown; no more joins
	byKey    map[string]*member   // every member, online or parked, by username key
	byToken  map[string]*member   // every member by resume token
	bySkel   map[string]*member   // every member by the confusable skeleton of its key (see confusable.Skeleton)
	head     *member              // oldest online member; the list runs in join order
	tail     *member              // newest online member
	parked   map[*member]struct{} // members whose stream ended, within their grace period
	channels map[string]*channel  // by name key
	general  *channel
	slow     []*Session // sessions whose queue overflowed, to drop before mu is released

	// Lists as last built, shared by every answer until they change (nil
	// then), so that a flood of list calls costs no O(users) copy each
	// under the lock. Never modified once built: answers marshal them
	// outside the lock.
	users       []*chatv1.User
	channelList []*chatv1.Channel
}

// NewHub returns a hub with only the channel "general", run with the limits
// of cfg, which must be valid (see [Config.Validate]). lim, if not nil,
// counts the sessions of each client address.
func NewHub(cfg Config, lim *admission.Limiter) *Hub {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	h := &Hub{
		cfg:      cfg,
		lim:      lim,
		idPrefix: hex.EncodeToString(b[:]) + "-",
		byKey:    make(map[string]*member),
		byToken:  make(map[string]*member),
		bySkel:   make(map[string]*member),
		parked:   make(map[*member]struct{}),
		channels: make(map[string]*channel),
		closing:  make(chan struct{}),
	}
	h.general = &channel{name: generalChannel, key: generalChannel, idleSince: time.Now()}
	h.channels[generalChannel] = h.general
	return h
}

// Closing is closed when Shutdown starts, so that streams that have not
// joined yet can end at once instead of holding up the shutdown.
func (h *Hub) Closing() <-chan struct{} { return h.closing }

// Join admits a user and queues its welcome, then puts a new session in
// general. With a resume token that belongs to a session of the same name,
// it takes that session back instead (see resumeLocked). It refuses an
// invalid name (ErrInvalidUsername), a name in use or held for a
// disconnected session in any letter case (ErrUsernameTaken), a full
// server (ErrServerFull) and a server that is shutting down
// (ErrShuttingDown). client is the client's address, for the limit on
// sessions per address; the zero address is not counted.
func (h *Hub) Join(username, token string, lastSeq uint64, client netip.Addr) (*Session, error) {
	display, key, err := CheckUsername(username)
	if err != nil {
		return nil, err
	}
	skel := confusable.Skeleton(key)
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	if h.closed {
		return nil, errShutdown
	}
	recovery := chatv1.Recovery_RECOVERY_UNSPECIFIED
	if token != "" {
		// A token for another name is treated as unknown, so that a token
		// tells nothing about anyone else's session.
		if m := h.byToken[token]; m != nil && m.key == key {
			h.moveLocked(m, client)
			return h.resumeLocked(m, lastSeq), nil
		}
		recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	}
	if old := h.byKey[key]; old != nil {
		if old.online() {
			return nil, &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q is taken: choose another name", display)}
		}
		return nil, &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q is held for a user who lost their connection, for up to %s: choose another name or try again later", display, h.cfg.ResumeGrace)}
	}
	// A name that looks like someone else's (its letters confusable with
	// theirs, "bоb" with a Cyrillic о beside "bob") would let its user pass
	// for them: it is taken too.
	if old := h.bySkel[skel]; old != nil {
		who := "who is online"
		if !old.online() {
			who = "whose name is held for them while they reconnect"
		}
		return nil, &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q looks like %q, %s: choose a name nobody could mistake for theirs", display, old.user.Username, who)}
	}
	if len(h.byKey) >= h.cfg.MaxSessions {
		return nil, &Error{Kind: ErrServerFull, Msg: fmt.Sprintf("server is full (%s, counting those reconnecting): try again later", count(len(h.byKey), "user", "users"))}
	}
	if client.IsValid() && h.lim != nil && !h.lim.AcquireSession(client) {
		return nil, &Error{Kind: ErrServerFull, Msg: fmt.Sprintf("too many sessions from your address (at most %d, counting those reconnecting): log out of one, or try again later", h.cfg.PerClient.MaxSessions)}
	}

	now := timestamppb.Now()
	m := &member{key: key, skel: skel, token: newToken(), client: client, user: &chatv1.User{Username: display, JoinTime: now}}
	// Joining the chat is joining general too: members of general take a
	// user_joined as that, so no channel_joined is sent for it.
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: now, Event: &chatv1.ChatResponse_UserJoined{
		UserJoined: &chatv1.UserJoined{User: m.user},
	}}), nil)
	h.byKey[key], h.byToken[m.token], h.bySkel[skel] = m, m, m
	s := h.attachLocked(m)
	s.recovery = recovery
	m.seq = 1 // the welcome; the log starts after it
	s.queue.pushExtra(Delivery{Seq: m.seq, Event: privateEvent(&chatv1.ChatResponse{
		Time: now,
		Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
			You:         m.user,
			OnlineUsers: h.usersLocked(),
			ResumeToken: m.token,
			Recovery:    recovery,
		}},
	})})
	h.enterLocked(m, h.general)
	h.channelSnapshotLocked(m, h.general)
	return s, nil
}

// moveLocked counts m's session against client, the address it is being
// resumed from. Lock must be held.
func (h *Hub) moveLocked(m *member, client netip.Addr) {
	if h.lim == nil || !client.IsValid() || !m.client.IsValid() {
		return // counted nowhere, or counted where it was
	}
	h.lim.MoveSession(m.client, client)
	m.client = client
}

// resumeLocked attaches a new stream to m and gives it what it missed after
// lastSeq, or, if m's log no longer has all of it, a fresh snapshot. If m
// still has a stream (a connection that died without the server noticing
// yet), that stream is ended: whoever holds the token is m's user. Lock must
// be held.
func (h *Hub) resumeLocked(m *member, lastSeq uint64) *Session {
	var s *Session
	if old := m.att; old != nil {
		// The others never saw the user leave, so they hear nothing, and
		// the user keeps its place on the online list.
		s = newSession(m, h.cfg.QueueSize, h.cfg.QueueBytes)
		m.att = s
		old.endLocked(errReplaced, chatv1.LeaveReason_LEAVE_REASON_UNSPECIFIED)
	} else {
		h.unparkLocked(m)
		m.user = &chatv1.User{Username: m.user.Username, JoinTime: timestamppb.Now()}
		h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: m.user.JoinTime, Event: &chatv1.ChatResponse_UserJoined{
			UserJoined: &chatv1.UserJoined{User: m.user, Resumed: true},
		}}), m)
		for _, ch := range m.channels {
			h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: m.user.JoinTime, Event: &chatv1.ChatResponse_ChannelJoined{
				ChannelJoined: &chatv1.ChannelJoined{Channel: ch.name, User: m.user},
			}}), m)
			// The others add m at the end of the channel's members, as
			// for anyone entering it: so does the channel.
			ch.remove(m)
			ch.members = append(ch.members, m)
		}
		s = h.attachLocked(m)
	}
	now := timestamppb.Now()
	if missed, ok := m.missed(lastSeq); ok {
		s.recovery = chatv1.Recovery_RECOVERY_COMPLETE
		// Complete: the client's state as of lastSeq, plus what follows,
		// is current. From its point of view it never left.
		s.queue.pushExtra(Delivery{Seq: lastSeq, Event: privateEvent(&chatv1.ChatResponse{
			Time: now,
			Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
				You:         m.user,
				ResumeToken: m.token,
				Recovery:    chatv1.Recovery_RECOVERY_COMPLETE,
			}},
		})})
		s.queue.pushExtra(missed...)
		return s
	}
	// Incomplete: start the client over from a snapshot, in the channels it
	// is in. The log restarts after the new welcome, so a resume cannot ask
	// for events from before it.
	s.recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	m.seq++
	m.resetLog()
	s.queue.pushExtra(Delivery{Seq: m.seq, Event: privateEvent(&chatv1.ChatResponse{
		Time: now,
		Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
			You:         m.user,
			OnlineUsers: h.usersLocked(),
			ResumeToken: m.token,
			Recovery:    chatv1.Recovery_RECOVERY_INCOMPLETE,
		}},
	})})
	for _, ch := range m.channels {
		h.channelSnapshotLocked(m, ch)
	}
	return s
}

// Send sends a message from s: to a channel's members, or privately to one
// user online, and in both cases to the sender, whose copy is its
// acknowledgement. With neither channel nor recipient it goes to general.
// It refuses invalid text (ErrInvalidText), a bad target
// (ErrInvalidChannel, ErrInvalidRequest), an unknown channel or a user not
// online (ErrNotFound), a channel s is not in (ErrNotInChannel) and a
// session that is no longer online (ErrNotJoined).
func (h *Hub) Send(s *Session, text, channelName, recipient, clientID string) error {
	text, err := CleanText(text)
	if err != nil {
		return err
	}
	if channelName != "" && recipient != "" {
		return &Error{Kind: ErrInvalidRequest, Msg: "a message goes to a channel or to a recipient, not both: set only one"}
	}
	var chKey, rKey string
	switch {
	case recipient != "":
		var name string
		if name, rKey, err = CheckUsername(recipient); err != nil {
			// No such name can be online.
			return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("%q is not online: private messages go to users who are online", recipient)}
		}
		recipient = name
	case channelName == "":
		chKey = generalChannel
	default:
		if _, chKey, err = CheckChannel(channelName); err != nil {
			return err
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	m := s.m
	if m.att != s {
		return errGone
	}
	var to *member
	var ch *channel
	if rKey != "" {
		if to = h.byKey[rKey]; to == nil || !to.online() {
			return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("%q is not online: private messages go to users who are online", recipient)}
		}
	} else {
		switch ch = h.channels[chKey]; {
		case ch == nil:
			return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("there is no channel #%s: join it to create it", channelName)}
		case !m.in(ch):
			return &Error{Kind: ErrNotInChannel, Msg: fmt.Sprintf("you are not in #%s: join it first", ch.name)}
		}
	}

	h.msgs++
	msg := &chatv1.Message{
		Id:       h.idPrefix + strconv.FormatUint(h.msgs, 10),
		Sender:   m.user.Username,
		Text:     text,
		ClientId: clientID,
	}
	resp := &chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_Message{Message: msg}}
	if to != nil {
		msg.Recipient = to.user.Username
		ev := newEvent(resp)
		h.deliverLocked(to, ev)
		if to != m {
			h.deliverLocked(m, ev)
		}
		return nil
	}
	msg.Channel = ch.name
	ev := newEvent(resp)
	h.publishLocked(ch, ev, nil)
	ch.history.push(ev, h.cfg.HistorySize, h.cfg.HistoryBytes)
	return nil
}

// JoinChannel puts s in a channel, creating it if there is none of that
// name. The members hear of it; s gets the members and the history. It
// refuses a bad name (ErrInvalidChannel), a channel s is in already
// (ErrAlreadyInChannel), and s in too many channels or the server at its
// channel limit (ErrTooManyChannels).
func (h *Hub) JoinChannel(s *Session, name string) error {
	display, key, err := CheckChannel(name)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	m := s.m
	if m.att != s {
		return errGone
	}
	ch := h.channels[key]
	switch {
	case ch != nil && m.in(ch):
		return &Error{Kind: ErrAlreadyInChannel, Msg: fmt.Sprintf("you are already in #%s", ch.name)}
	case len(m.channels) >= h.cfg.MaxChannelsPerUser:
		return &Error{Kind: ErrTooManyChannels, Msg: fmt.Sprintf("you are in %s, the most allowed: leave one first", count(len(m.channels), "channel", "channels"))}
	case ch == nil:
		if !h.makeRoomLocked() {
			// A channel whose members are all reconnecting shows no
			// members but is theirs: it is not empty.
			return &Error{Kind: ErrTooManyChannels, Msg: fmt.Sprintf("the server has %s, the most it keeps, and every one has members (online or reconnecting): join an existing channel", count(len(h.channels), "channel", "channels"))}
		}
		ch = &channel{name: display, key: key}
		h.channels[key] = ch
	}
	h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_ChannelJoined{
		ChannelJoined: &chatv1.ChannelJoined{Channel: ch.name, User: m.user},
	}}), nil)
	h.enterLocked(m, ch)
	// The snapshot is forgiven only if the writer has taken the last one:
	// a client that stopped reading and keeps joining channels would
	// otherwise pile up snapshots past any limit.
	s.forgive = s.queue.forgiving()
	h.channelSnapshotLocked(m, ch)
	return nil
}

// LeaveChannel takes s out of a channel; every member, s included, hears of
// it. It refuses a channel s is not in (ErrNotInChannel).
func (h *Hub) LeaveChannel(s *Session, name string) error {
	display, key, err := CheckChannel(name)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	m := s.m
	if m.att != s {
		return errGone
	}
	ch := h.channels[key]
	if ch == nil || !m.in(ch) {
		return &Error{Kind: ErrNotInChannel, Msg: fmt.Sprintf("you are not in #%s", display)}
	}
	h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_ChannelLeft{
		ChannelLeft: &chatv1.ChannelLeft{Channel: ch.name, User: m.user},
	}}), nil)
	h.leaveLocked(m, ch)
	return nil
}

// Channels lists every channel by name, with how many users online are in
// it. The list is shared with other callers until a channel or its count
// changes: do not modify it.
func (h *Hub) Channels() []*chatv1.Channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.channelsLocked()
}

// ListChannels queues the channel list for s alone, as the answer to its
// request clientID.
func (h *Hub) ListChannels(s *Session, clientID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	if s.m.att != s {
		return
	}
	h.replyLocked(s, &chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_ChannelList{
		ChannelList: &chatv1.ChannelList{ClientId: clientID, Channels: h.channelsLocked()},
	}})
}

// Leave ends s's stream's part in the chat and tells everyone the user went
// offline, and why. On a logout the session is over, and s is told too, as
// the last event of its stream. Otherwise (a disconnect) the session is
// parked for the resume grace period. Leave reports whether s was still
// attached: it does nothing for a stream the hub already ended.
func (h *Hub) Leave(s *Session, reason chatv1.LeaveReason) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	m := s.m
	if m.att != s {
		return false
	}
	if reason != chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
		h.parkLocked(m, reason)
		return true
	}
	h.detachLocked(m)
	h.forgetLocked(m)
	ev := newEvent(&chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_UserLeft{
		UserLeft: &chatv1.UserLeft{User: m.user, Reason: reason},
	}})
	h.deliverTo(s, m, ev)
	h.broadcastLocked(ev, nil)
	return true
}

// Reject queues a refusal of one of s's requests for s alone. A rejection is
// an answer, not an event of the session, so it carries seq 0.
func (h *Hub) Reject(s *Session, clientID string, err error) {
	st := Status(err)
	resp := &chatv1.ChatResponse{
		Time: timestamppb.Now(),
		Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{
			ClientId: clientID,
			Code:     int32(st.Code()),
			Reason:   st.Message(),
		}},
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	if s.m.att != s {
		return
	}
	h.replyLocked(s, resp)
}

// Users returns everyone online, in join order. The list is shared with
// other callers until someone joins or leaves: do not modify it.
func (h *Hub) Users() []*chatv1.User {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usersLocked()
}

// Shutdown ends every stream with UNAVAILABLE, forgets every session and
// refuses new joins. It broadcasts no user_left events: every session is
// ending at once, and telling each of N users about the other N-1 would
// only delay the end.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		close(h.closing)
	}
	h.closed = true
	for m := h.head; m != nil; {
		next, s := m.next, m.att
		m.att, m.prev, m.next = nil, nil, nil
		s.endLocked(errShutdown, chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
		m = next
	}
	for m := range h.parked {
		m.expiry.Stop()
	}
	for _, m := range h.byKey {
		h.releaseLocked(m)
	}
	h.head, h.tail = nil, nil
	clear(h.byKey)
	clear(h.byToken)
	clear(h.bySkel)
	clear(h.parked)
	clear(h.channels)
	h.users, h.channelList = nil, nil
}

// attachLocked gives m a new stream and puts it at the end of the online
// list. Lock must be held.
func (h *Hub) attachLocked(m *member) *Session {
	h.users, h.channelList = nil, nil
	s := newSession(m, h.cfg.QueueSize, h.cfg.QueueBytes)
	m.att = s
	for _, ch := range m.channels {
		ch.online++
	}
	m.prev = h.tail
	if h.tail != nil {
		h.tail.next = m
	} else {
		h.head = m
	}
	h.tail = m
	return s
}

// detachLocked takes m's stream away and m off the online list. Lock must
// be held.
func (h *Hub) detachLocked(m *member) {
	h.users, h.channelList = nil, nil
	for _, ch := range m.channels {
		ch.online--
	}
	m.att = nil
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		h.head = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		h.tail = m.prev
	}
	m.prev, m.next = nil, nil
}

// parkLocked takes m offline after its stream ended without a logout, and
// keeps it, still receiving its events, for the resume grace period. Lock
// must be held.
func (h *Hub) parkLocked(m *member, reason chatv1.LeaveReason) {
	h.detachLocked(m)
	if h.cfg.ResumeGrace > 0 {
		h.parked[m] = struct{}{}
		m.parkGen++
		gen := m.parkGen
		m.expiry = time.AfterFunc(h.cfg.ResumeGrace, func() { h.expire(m, gen) })
	} else {
		h.forgetLocked(m)
	}
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_UserLeft{
		UserLeft: &chatv1.UserLeft{User: m.user, Reason: reason},
	}}), m)
}

// unparkLocked ends m's grace period because it is coming back. Lock must
// be held.
func (h *Hub) unparkLocked(m *member) {
	delete(h.parked, m)
	m.parkGen++
	m.expiry.Stop()
	m.expiry = nil
}

// expire forgets m at the end of its grace period, unless it came back (or
// was parked again) since the timer was set.
func (h *Hub) expire(m *member, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.parked[m]; !ok || m.parkGen != gen {
		return
	}
	delete(h.parked, m)
	h.forgetLocked(m)
}

// forgetLocked ends m's session for good: its name and token are free and
// it is in no channel. Members of its channels were told already (the user
// left, or is parked and offline). Lock must be held.
func (h *Hub) forgetLocked(m *member) {
	delete(h.byKey, m.key)
	delete(h.byToken, m.token)
	delete(h.bySkel, m.skel)
	h.releaseLocked(m)
	for len(m.channels) > 0 {
		h.leaveLocked(m, m.channels[len(m.channels)-1])
	}
	m.resetLog()
}

// releaseLocked stops counting m's session against its client address.
// Lock must be held.
func (h *Hub) releaseLocked(m *member) {
	if h.lim != nil && m.client.IsValid() {
		h.lim.ReleaseSession(m.client)
		m.client = netip.Addr{}
	}
}

// makeRoomLocked makes room for a new channel if the server is at its
// limit, by dropping the empty channel that has been empty the longest. It
// reports whether there is room. Lock must be held.
func (h *Hub) makeRoomLocked() bool {
	if len(h.channels) < h.cfg.MaxChannels {
		return true
	}
	var oldest *channel
	for _, ch := range h.channels {
		if len(ch.members) == 0 && ch != h.general && (oldest == nil || ch.idleSince.Before(oldest.idleSince)) {
			oldest = ch
		}
	}
	if oldest == nil {
		return false
	}
	delete(h.channels, oldest.key)
	h.channelList = nil
	return true
}

// channelSnapshotLocked queues for m that it is in ch, with ch's members
// and then its history. Like a welcome, a snapshot does not count against
// the queue's limit: however small the queue, or however many channels an
// incomplete resume restores, a client is not dropped for being told where
// it is. Lock must be held.
func (h *Hub) channelSnapshotLocked(m *member, ch *channel) {
	history := ch.history.items()
	// The channel_joined is not kept in m's log: it lists every member,
	// and a join storm would keep N such lists of up to N users. A resume
	// that missed it gets a fresh snapshot instead.
	h.deliverExtraLocked(m, nil, privateEvent(&chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_ChannelJoined{
		ChannelJoined: &chatv1.ChannelJoined{
			Channel:      ch.name,
			User:         m.user,
			Members:      ch.onlineMembers(),
			HistoryCount: uint32(len(history)),
		},
	}}))
	for _, ev := range history {
		h.deliverExtraLocked(m, ev.asHistory(), ev.asHistory())
	}
}

// broadcastLocked gives ev to every member, online or parked, except skip.
// Lock must be held.
func (h *Hub) broadcastLocked(ev *Event, skip *member) {
	for m := h.head; m != nil; m = m.next {
		if m != skip {
			h.deliverLocked(m, ev)
		}
	}
	for m := range h.parked {
		if m != skip {
			h.deliverLocked(m, ev)
		}
	}
}

// publishLocked gives ev to every member of ch except skip. Lock must be
// held.
func (h *Hub) publishLocked(ch *channel, ev *Event, skip *member) {
	for _, m := range ch.members {
		if m != skip {
			h.deliverLocked(m, ev)
		}
	}
}

// deliverLocked numbers ev for m, records it in m's resume log (dropping
// the oldest past the resume buffer) and queues it for m's stream without
// blocking. If the queue is full, the stream gets
// nothing more (so what it does get has no gap) and is marked to be
// dropped; the log keeps recording. Lock must be held, and flushSlowLocked
// called before it is released.
func (h *Hub) deliverLocked(m *member, ev *Event) {
	m.seq++
	m.log.push(ev, h.cfg.ResumeBuffer, h.cfg.ResumeBufferBytes)
	if s := m.att; s != nil {
		h.queueLocked(s, Delivery{Seq: m.seq, Event: ev})
	}
}

// deliverExtraLocked is deliverLocked for a snapshot: the delivery does not
// count against the stream's queue limit if the stream is forgiving (see
// queue.pushExtra), and what the log keeps of it is logged, which may be
// nil (see member.log). Lock must be held.
func (h *Hub) deliverExtraLocked(m *member, logged, ev *Event) {
	m.seq++
	m.log.push(logged, h.cfg.ResumeBuffer, h.cfg.ResumeBufferBytes)
	switch s := m.att; {
	case s == nil:
	case s.forgive && !s.overflowed:
		s.queue.pushExtra(Delivery{Seq: m.seq, Event: ev})
	default:
		h.queueLocked(s, Delivery{Seq: m.seq, Event: ev})
	}
}

// deliverTo is deliverLocked for a stream no longer attached to m: its
// last event (a logout's own user_left). Lock must be held.
func (h *Hub) deliverTo(s *Session, m *member, ev *Event) {
	m.seq++
	h.queueLocked(s, Delivery{Seq: m.seq, Event: ev})
}

// replyLocked queues an answer to a request, unnumbered and not logged.
// Lock must be held.
func (h *Hub) replyLocked(s *Session, resp *chatv1.ChatResponse) {
	h.queueLocked(s, Delivery{Event: privateEvent(resp)})
}

// queueLocked queues d for s, or marks s to be dropped if its queue is
// full. Lock must be held.
func (h *Hub) queueLocked(s *Session, d Delivery) {
	if s.overflowed {
		return
	}
	if !s.queue.push(d) {
		s.overflowed = true
		h.slow = append(h.slow, s)
	}
}

// flushSlowLocked drops every stream whose queue overflowed, parking its
// session, and tells the others. Telling them can overflow more queues;
// the loop takes those too. Lock must be held.
func (h *Hub) flushSlowLocked() {
	for len(h.slow) > 0 {
		s := h.slow[0]
		h.slow = h.slow[1:]
		if s.m.att == s {
			h.parkLocked(s.m, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
		}
		// A stream that logged out with a full queue is no longer attached
		// but is ended all the same: it cannot be sent all it is owed.
		s.endLocked(&Error{Kind: ErrTooSlow, Msg: fmt.Sprintf("disconnected: you fell more than %s (or %d KiB) behind; reconnect", count(h.cfg.QueueSize, "event", "events"), h.cfg.QueueBytes>>10)}, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW)
	}
	h.slow = nil
}

// usersLocked lists the online users in join order. The list is shared:
// callers must not modify it. Lock must be held.
func (h *Hub) usersLocked() []*chatv1.User {
	if h.users == nil {
		users := make([]*chatv1.User, 0, len(h.byKey)-len(h.parked))
		for m := h.head; m != nil; m = m.next {
			users = append(users, m.user)
		}
		h.users = users
	}
	return h.users
}

// channelsLocked lists every channel by name. The list is shared: callers
// must not modify it. Lock must be held.
func (h *Hub) channelsLocked() []*chatv1.Channel {
	if h.channelList != nil {
		return h.channelList
	}
	chs := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		chs = append(chs, ch)
	}
	// By key: whatever their letter case, names sort as people read them.
	slices.SortFunc(chs, func(a, b *channel) int { return cmp.Compare(a.key, b.key) })
	list := make([]*chatv1.Channel, len(chs))
	for i, ch := range chs {
		list[i] = ch.info()
	}
	h.channelList = list
	return list
}

// newToken returns a resume token: 256 random bits, which nobody can guess.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
