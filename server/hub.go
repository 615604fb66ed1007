package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/internal/admission"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// hub keeps who is online, the channels, and every session's events.
//
// Every change is a command (see apply.go), and commands are applied one
// at a time under one mutex, in the order of the chat's log (see
// cluster.go): a node of its own applies each as it is appended to its
// own log; the nodes of a cluster each apply every command of a shared
// log. Applying an event queues it on
// every session it concerns (and records it in each one's replay)
// before the next command is applied, so all sessions see common events in
// the same order, a channel's messages reach exactly the members it has at
// that instant, and a catch-up (welcome, channel members, history) is
// exact with no gap or duplicate before the live events that follow it.
// Applying depends only on the state and the command, never on this node's
// clock or randomness, so every node of a cluster reaches the same state.
// Queuing never blocks: a stream whose queue is full is dropped as too
// slow (see flushSlowLocked). A hub is safe for concurrent use.
type hub struct {
	cfg Config
	// nodeTimeout is how long a node may go unheard: a rule of apply,
	// like cfg's limits, alike on every node (ClusterConfig.NodeTimeout).
	nodeTimeout time.Duration
	lim         *admission.Limiter // counts sessions per client address; nil counts none
	node        string             // this node's id: streams attached here have it
	cl          *Cluster           // the node's part in the chat's log
	idPrefix    string             // makes message ids unique across restarts, or clusters
	cmds        atomic.Uint64      // numbers this node's commands
	met         *metrics           // what this node counts
	archive     Archive            // keeps every message for scroll-back; nil if the node keeps none

	closing   chan struct{} // closed by Shutdown: streams not joined yet end at once, not holding it up
	closeOnce sync.Once

	mu             sync.Mutex             // guards the fields below, every session and channel, and the hub-owned fields of every stream; taken before any other lock (see LOCKS.md)
	now            time.Time              // the chat's clock: when the command being applied happened
	msgs           uint64                 // messages sent so far; numbers message ids
	attaches       uint64                 // streams attached so far; numbers attachments
	byKey          map[string]*person     // every user with a session (online, held or parked), by username key
	byToken        map[string]*session    // every session by the hash of its resume token
	bySkel         map[string]*person     // every user by both its lookalikeKeys
	head           *person                // oldest user on the online list; the list runs in the order they came online
	tail           *person                // newest user on the online list
	listed         int                    // users on the online list
	parked         map[*session]struct{}  // sessions whose stream ended, within their grace period
	held           int                    // sessions in stateHeld, for the metrics
	deadline       []expiry               // held and parked sessions by deadline, soonest first
	channels       map[string]*channel    // by name key
	accounts       map[string]*account    // read marks and inboxes, by user key (see account)
	bans           map[string]*ban        // bans, by the banned name's key (see bans.go)
	recent         []*recentMsg           // the last messages, oldest first, for replies (see messages.go)
	typing         map[string]*typingConv // who is typing, by conversation (see typing.go); never in a snapshot
	typingDeadline []typingExpiry         // typers' deadlines, soonest first
	recentByNum    map[uint64]*recentMsg  // recent by number
	general        *channel
	slow           []*stream            // sessions whose queue overflowed, to drop before mu is released
	nodes          map[string]*nodeInfo // cluster: the nodes heard from, by id
	live           liveness             // cluster: how long the log has been heard without a break

	// Lists as last built, shared by every answer until they change (nil
	// then), so that a flood of list calls costs no O(users) copy each
	// under the lock. Never modified once built: answers marshal them
	// outside the lock.
	users       []*chatv1.User
	channelList []*chatv1.Channel
	channelKeys []string // the keys of channelList's channels
}

// expiry is a deadline of a held or parked session; gen tells a stale one
// (the session came back, or was held or parked again since).
type expiry struct {
	sess *session
	gen  uint64
	at   time.Time
}

// newSoloHub returns the hub of a node of its own whose log is kept in
// memory (see memLog), with only the channel "general", run with the
// limits of cfg, which must be valid (see [Config.Validate]). lim, if not
// nil, counts the sessions of each client address. It is running when it
// is returned; Shutdown stops it.
func newSoloHub(cfg Config, lim *admission.Limiter) *hub {
	ccfg := SoloConfig()
	ccfg.SnapshotEvery = 0 // nobody starts from one
	h, c := newClusterHub(cfg, ccfg, newMemLog(), lim, slog.New(slog.DiscardHandler))
	// Nothing outlives the process: message ids start over at 1 with
	// every run, and the prefix keeps them unique across runs.
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	h.idPrefix = hex.EncodeToString(b[:]) + "-"
	c.start()
	return h
}

func newHub(cfg Config, lim *admission.Limiter, node, idPrefix string) *hub {
	h := &hub{
		cfg:         cfg,
		lim:         lim,
		node:        node,
		idPrefix:    idPrefix,
		byKey:       make(map[string]*person),
		byToken:     make(map[string]*session),
		bySkel:      make(map[string]*person),
		parked:      make(map[*session]struct{}),
		channels:    make(map[string]*channel),
		accounts:    make(map[string]*account),
		bans:        make(map[string]*ban),
		recentByNum: make(map[uint64]*recentMsg),
		typing:      make(map[string]*typingConv),
		nodes:       make(map[string]*nodeInfo),
		closing:     make(chan struct{}),
		met:         newMetrics(),
	}
	h.general = newChannel(generalChannel, generalChannel)
	h.channels[generalChannel] = h.general
	return h
}

func (h *hub) isClosing() bool {
	select {
	case <-h.closing:
		return true
	default:
		return false
	}
}

// Join admits a user and queues its welcome, then puts a new session in
// general. With a resume token that belongs to a session of the same name,
// it takes that session back instead (see resumeLocked). It refuses an
// invalid name (ErrInvalidUsername), a name in use or held for a
// disconnected session in any letter case (ErrUsernameTaken), a full
// server (ErrServerFull) and a server that is shutting down
// (ErrShuttingDown). client is the client's address, for the limit on
// sessions per address; the zero address is not counted. The join waits
// for its turn in the chat's log, or until ctx ends.
func (h *hub) Join(ctx context.Context, username, token string, lastSeq uint64, client netip.Addr) (*stream, error) {
	return h.join(ctx, joinRequest{username: username, token: token, lastSeq: lastSeq, client: client})
}

// joinRequest is a join as the service passes it to the hub.
type joinRequest struct {
	username  string
	token     string // resume token presented, if any
	deviceKey string // device key presented, if any
	lastSeq   uint64
	client    netip.Addr // zero: not counted
	// signedIn says a sign-in token named the user: a join of a user in
	// the chat already is then another of its devices.
	signedIn bool
}

// join is Join with everything a join may carry: with the user in the
// chat already, a device key that is its own, or a sign-in, adds a device
// to it (see joinLocked), up to MaxDevicesPerUser (ErrTooManyDevices).
func (h *hub) join(ctx context.Context, r joinRequest) (*stream, error) {
	if _, _, err := CheckUsername(r.username); err != nil {
		return nil, err
	}
	if h.isClosing() {
		return nil, errShutdown
	}
	p := &pending{newToken: newToken(), token: r.token, newDeviceKey: newToken(), deviceKey: r.deviceKey}
	j := &clusterv1.Join{Username: r.username, LastSeq: r.lastSeq, TokenHash: hashToken(p.newToken),
		NewDeviceHash: hashToken(p.newDeviceKey), SignedIn: r.signedIn}
	if r.token != "" {
		j.ResumeHash = hashToken(r.token)
	}
	if r.deviceKey != "" {
		j.DeviceHash = hashToken(r.deviceKey)
	}
	j.ClientAddr = addrString(r.client)
	if client := r.client; client.IsValid() && h.lim != nil {
		p.client = client
		// Counted here, before the command is applied, because whether
		// this node can take one more session from the address is this
		// node's business: every node must apply the command alike. A
		// resume goes on all the same: its session exists already.
		p.counted = h.lim.AcquireSession(client)
		j.ResumeOnly = !p.counted
	}
	out := h.submit(ctx, h.command(&clusterv1.Command{Action: &clusterv1.Command_Join{Join: j}}), p)
	return out.s, out.err
}

// streamPending is what a node keeps of a command of s: whose it is (see
// Cluster.cutOffLocked).
func streamPending(s *stream) *pending { return &pending{stream: s} }

// sendPipelined sends a message from s, for the stream's reader: to a
// channel's members, or privately to one user online, and in both cases
// to the sender, whose copy is its acknowledgement; with neither channel
// nor recipient, to general. It does not wait for the message to be
// applied: it returns once the log has it, so that the session's next
// request is appended after it, and a refusal met when it is applied
// (see sendLocked) reaches s as a rejected answer to clientID. What it
// refuses before the log (invalid text, a bad target) it returns. Up to
// pipelineWindow of a session's messages are on their way at once; past
// that it waits. sent is called, under hub.mu, once the message is sent.
func (h *hub) sendPipelined(ctx context.Context, s *stream, text, channelName, recipient, replyTo, clientID string, sent func()) error {
	cmd, err := h.sendCommand(s, text, channelName, recipient, replyTo, clientID)
	if err != nil {
		return err
	}
	return h.appendPipelined(ctx, s, cmd, clientID, sent)
}

// appendPipelined appends cmd, a command of s that may be refused when it
// is applied, and returns once the log has it (see sendPipelined); done,
// if not nil, is called under hub.mu once it is applied without refusal.
func (h *hub) appendPipelined(ctx context.Context, s *stream, cmd *clusterv1.Command, clientID string, done func()) error {
	select {
	case s.inflight <- struct{}{}:
	case <-s.ended:
		return errGone
	case <-ctx.Done():
		return ctx.Err()
	}
	p := &pending{stream: s, then: func(h *hub, out outcome) {
		<-s.inflight
		switch {
		case out.err == nil:
			if done != nil {
				done()
			}
		case s.answered():
			// Counted as a refusal like one met before the log, but
			// not against the session's budget (see service.handle).
			h.met.refused(out.err)
			h.rejectLocked(s, clientID, out.err)
		}
	}}
	if err := h.cl.append(ctx, cmd, p); err != nil {
		<-s.inflight
		return err
	}
	return nil
}

// pipelineWindow is how many of one session's messages a node appends
// before the first of them has been applied.
const pipelineWindow = 16

// sendCommand checks a message and makes its command.
func (h *hub) sendCommand(s *stream, text, channelName, recipient, replyTo, clientID string) (*clusterv1.Command, error) {
	text, err := CleanText(text)
	if err != nil {
		return nil, err
	}
	var replyNum uint64
	if replyTo != "" {
		if replyNum, err = h.messageNumber(replyTo); err != nil || replyNum == 0 {
			return nil, &Error{Kind: ErrInvalidRequest, Msg: fmt.Sprintf("reply_to %q is no message id of this chat", replyTo)}
		}
	}
	if err := checkTarget(channelName, recipient, "a message goes to a channel or to a recipient, not both: set only one"); err != nil {
		return nil, err
	}
	return h.command(&clusterv1.Command{Action: &clusterv1.Command_Send{Send: &clusterv1.Send{
		Stream: s.ref(), Text: text, Channel: channelName, Recipient: recipient, ClientId: clientID, ReplyTo: replyNum,
		Mentions: mentionWords(text),
	}}}), nil
}

// checkTarget checks, before the log, where a message or a typing goes: a
// channel, or one user, not both (both is the refusal then).
func checkTarget(channelName, recipient, both string) error {
	switch {
	case channelName != "" && recipient != "":
		return &Error{Kind: ErrInvalidRequest, Msg: both}
	case recipient != "":
		if _, _, err := CheckUsername(recipient); err != nil {
			// No such name can be online.
			return notOnline(recipient)
		}
	case channelName != "":
		if _, _, err := CheckChannel(channelName); err != nil {
			return err
		}
	}
	return nil
}

// channelKey is the key of the channel a message or a typing names:
// general if it names none.
func channelKey(name string) (string, error) {
	if name == "" {
		return generalChannel, nil
	}
	_, key, err := CheckChannel(name)
	return key, err
}

// JoinChannel puts s in a channel, creating it if there is none of that
// name. The members hear of it; s gets the members and the history. It
// refuses a bad name (ErrInvalidChannel), a channel s is in already
// (ErrAlreadyInChannel), and s in too many channels or the server at its
// channel limit (ErrTooManyChannels). It waits for its turn in the log,
// or until ctx ends.
func (h *hub) JoinChannel(ctx context.Context, s *stream, name string) error {
	if _, _, err := CheckChannel(name); err != nil {
		return err
	}
	return h.submit(ctx, h.command(&clusterv1.Command{Action: &clusterv1.Command_JoinChannel{JoinChannel: &clusterv1.JoinChannel{
		Stream: s.ref(), Channel: name,
	}}}), streamPending(s)).err
}

// LeaveChannel takes s out of a channel; every member, s included, hears of
// it. It refuses a channel s is not in (ErrNotInChannel). It waits for its
// turn in the log, or until ctx ends.
func (h *hub) LeaveChannel(ctx context.Context, s *stream, name string) error {
	if _, _, err := CheckChannel(name); err != nil {
		return err
	}
	return h.submit(ctx, h.command(&clusterv1.Command{Action: &clusterv1.Command_LeaveChannel{LeaveChannel: &clusterv1.LeaveChannel{
		Stream: s.ref(), Channel: name,
	}}}), streamPending(s)).err
}

// MarkRead moves the read mark of s's user in a conversation (a channel,
// or the private messages with another user) forward to message id, and
// tells every device of the user. A mark at or past it is left as it is.
// It refuses an id of no message of the chat (ErrInvalidRequest), a
// channel the user is not in (ErrNotInChannel) and a user it has no
// conversation with (ErrNotFound). It waits for its turn in the log, or
// until ctx ends.
func (h *hub) MarkRead(ctx context.Context, s *stream, channelName, with, id string) error {
	switch {
	case (channelName == "") == (with == ""):
		return &Error{Kind: ErrInvalidRequest, Msg: "mark_read names a channel or a user (with), one of them"}
	case channelName != "":
		if _, _, err := CheckChannel(channelName); err != nil {
			return err
		}
	default:
		if _, _, err := CheckUsername(with); err != nil {
			return notOnline(with)
		}
	}
	num, err := h.messageNumber(id)
	if err != nil || num == 0 {
		return &Error{Kind: ErrInvalidRequest, Msg: fmt.Sprintf("message_id %q is no message id of this chat", id)}
	}
	return h.submit(ctx, h.command(&clusterv1.Command{Action: &clusterv1.Command_MarkRead{MarkRead: &clusterv1.MarkRead{
		Stream: s.ref(), Channel: channelName, With: with, Number: num,
	}}}), streamPending(s)).err
}

// Leave ends s's part in the chat and tells everyone the user went
// offline, and why. On a logout the session is over, and s is told too, as
// its last event. Otherwise (a disconnect) the session is
// parked for the resume grace period. Leave reports whether s was still
// attached: it does nothing for a stream the hub already ended.
//
// Leave waits for its turn in the log. If the log is out of reach, or the
// node is stopping, the stream ends at once, and the node keeps trying to
// append the leave until it is in: a disconnect then ends the stream with
// the reason it would have had, a logout without its own user_left.
func (h *hub) Leave(s *stream, reason chatv1.LeaveReason) bool {
	cmd := h.command(leaveCommand(s, reason))
	out := h.submit(context.Background(), cmd, streamPending(s))
	if errors.Is(out.err, ErrUnavailable) || errors.Is(out.err, ErrShuttingDown) {
		// Nothing more goes to the stream; what the session misses until
		// the command applies stays in its replay for a resume.
		if reason == chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
			reason = 0
		}
		return h.leaveLater(s, cmd, reason)
	}
	return out.ok
}

// dropLocked ends s, a stream of this node whose client is gone, and has
// its session leave as disconnected. hub.mu must be held.
func (h *hub) dropLocked(s *stream) {
	if s.endClosed {
		return
	}
	s.endLocked(errGone, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	h.cl.later(h.command(leaveCommand(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)))
}

// leaveLater has the node append s's leave in the background (see
// Cluster.later), and reports whether s was still attached. With a reason,
// s is ended now too.
func (h *hub) leaveLater(s *stream, cmd *clusterv1.Command, reason chatv1.LeaveReason) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.session.stream != s || s.isEnded() {
		return false
	}
	if reason != 0 {
		s.endLocked(errGone, reason)
	}
	h.cl.later(cmd)
	return true
}

func leaveCommand(s *stream, reason chatv1.LeaveReason) *clusterv1.Command {
	return &clusterv1.Command{Action: &clusterv1.Command_Leave{Leave: &clusterv1.Leave{Stream: s.ref(), Reason: reason}}}
}

// listChannels queues the channel list for s alone, as the answer to its
// request clientID. It is this node's view: no command is needed, and the
// answer comes in order with the events s has been given.
func (h *hub) listChannels(s *stream, clientID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	if !s.answered() {
		return
	}
	h.replyLocked(s, &chatv1.ChatResponse{Time: timestamppb.Now(), Event: &chatv1.ChatResponse_ChannelList{
		ChannelList: &chatv1.ChannelList{ClientId: clientID, Channels: h.unreadChannelsLocked(s.session.person)},
	}})
}

// Reject queues a refusal of one of s's requests for s alone. A rejection is
// an answer, not an event of the session, so it carries seq 0.
func (h *hub) Reject(s *stream, clientID string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flushSlowLocked()
	if !s.answered() {
		return
	}
	h.rejectLocked(s, clientID, err)
}

// rejectLocked is Reject with the lock held.
func (h *hub) rejectLocked(s *stream, clientID string, err error) {
	st := Status(err)
	h.replyLocked(s, &chatv1.ChatResponse{
		Time: timestamppb.Now(),
		Event: &chatv1.ChatResponse_Rejected{Rejected: &chatv1.Rejected{
			ClientId: clientID,
			Code:     int32(st.Code()),
			Reason:   st.Message(),
		}},
	})
}

// Users returns everyone online, in the order they came online. The list
// is shared with other callers until someone joins or leaves: do not
// modify it.
func (h *hub) Users() []*chatv1.User {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usersLocked()
}

// Channels lists every channel by name, with how many users online are in
// it. The list is shared with other callers until a channel or its count
// changes: do not modify it.
func (h *hub) Channels() []*chatv1.Channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.channelsLocked()
}

// Shutdown ends every stream of this node with UNAVAILABLE and refuses new
// joins. The node should have told the chat it is stopping first (see
// Cluster.Stop), so that its users are held while they reconnect: to
// another node, or to this one once it is back with its state. A hub made
// by newSoloHub does so itself, and stops running.
func (h *hub) Shutdown() {
	if h.cl.runCancel != nil {
		h.cl.Stop(context.Background())
	}
	h.closeOnce.Do(func() { close(h.closing) })
	h.mu.Lock()
	for p := h.head; p != nil; p = p.next {
		for _, sess := range p.devices {
			if s := sess.stream; s != nil {
				s.endLocked(errShutdown, chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN)
			}
		}
	}
	// The streams given up for dead with this node are no longer
	// attached, but may not have ended yet.
	h.cl.endCutOffLocked()
	h.mu.Unlock()
	h.cl.halt()
}

// command stamps cmd as this node's next command.
func (h *hub) command(cmd *clusterv1.Command) *clusterv1.Command {
	cmd.Node = h.node
	cmd.Id = h.node + "-" + strconv.FormatUint(h.cmds.Add(1), 10)
	return cmd
}

// submit has cmd applied in the chat's order and returns what came of it:
// the node appends it to its log and waits until it has applied it.
func (h *hub) submit(ctx context.Context, cmd *clusterv1.Command, p *pending) outcome {
	return h.cl.submit(ctx, cmd, p)
}

// tickLocked moves the chat's clock on to now (never back) and applies
// what falls due: the nodes given up for dead, and deadlines. Lock must
// be held.
func (h *hub) tickLocked(now time.Time) {
	if now.After(h.now) {
		h.now = now
	}
	h.checkNodesLocked()
	h.expireLocked()
	h.expireTypingLocked()
}

// unreadChannelsLocked is the channel list with per's unread counts. Lock
// must be held.
func (h *hub) unreadChannelsLocked(per *person) []*chatv1.Channel {
	list := h.channelsLocked()
	var out []*chatv1.Channel
	for i, c := range list {
		ch := h.channels[h.channelKeys[i]]
		mk := per.acct.reads[ch.conv]
		if mk == nil || mk.unread == 0 || !per.in(ch) {
			continue
		}
		if out == nil {
			out = slices.Clone(list) // the shared list is not modified
		}
		out[i] = &chatv1.Channel{Name: c.GetName(), MemberCount: c.GetMemberCount(), Unread: mk.unread}
	}
	if out == nil {
		return list
	}
	return out
}

// usersLocked lists the online users in the order they came online. The
// list is shared: callers must not modify it. Lock must be held.
func (h *hub) usersLocked() []*chatv1.User {
	if h.users == nil {
		users := make([]*chatv1.User, 0, h.listed)
		for p := h.head; p != nil; p = p.next {
			users = append(users, p.user)
		}
		h.users = users
	}
	return h.users
}

// channelsLocked lists every channel by name. The list is shared: callers
// must not modify it. Lock must be held.
func (h *hub) channelsLocked() []*chatv1.Channel {
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
	keys := make([]string, len(chs))
	for i, ch := range chs {
		list[i], keys[i] = ch.info(), ch.key
	}
	h.channelList, h.channelKeys = list, keys
	return list
}

// newToken returns a resume token: 256 random bits, which nobody can guess.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashToken is what the hub keeps of a resume token, and what a cluster's
// log carries: the token itself stays with its client and the node that
// made it, so reading the log or a snapshot gives nobody a session.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
