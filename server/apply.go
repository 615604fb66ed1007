package server

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file applies commands: where a join, a message, a channel change and
// a leave happen. Every node of a cluster runs this code on the same
// commands in the same order, so it may depend only on the hub's state,
// the command and the chat's clock (h.now): nothing local but what the
// node that asked for the command keeps in its pending.

// pending is what the node that asked for a command keeps of it while it is
// applied: what the command does not carry to other nodes, and where its
// outcome goes.
type pending struct {
	newToken     string     // join: the resume token of a new session
	token        string     // join: the resume token presented, if any
	newDeviceKey string     // join: the device key of a new user
	deviceKey    string     // join: the device key presented, if any
	client       netip.Addr // join: the client's address; zero if not counted
	counted      bool       // join: a session of client is counted for this join, to hand to its session or give back

	stream    *stream             // cluster: the stream whose command it is, if any (see Cluster.cutOffLocked)
	cmd       *clusterv1.Command  // the command as appended, so that its apply need not decode it
	done      chan outcome        // cluster: receives the outcome; buffered
	then      func(*hub, outcome) // cluster: called with the outcome instead, under hub.mu
	appended  time.Time           // cluster: when this node began appending the command, for chatd_cluster_apply_lag_seconds
	abandoned bool                // cluster: the caller stopped waiting; guarded by hub.mu
}

// newTokenOr is the new session's token, "" if p is nil (a stream this
// node no longer waits for, which is ended at once).
func (p *pending) newTokenOr() string {
	if p == nil {
		return ""
	}
	return p.newToken
}

// tokenOr is the token presented, "" if p is nil.
func (p *pending) tokenOr() string {
	if p == nil {
		return ""
	}
	return p.token
}

// deviceKeyFor is the device key a joining stream of per is told: the
// new one, if the join made per; the one presented, if it is per's; else
// "" (a device signed in, or a resume without it). "" if p is nil.
func (p *pending) deviceKeyFor(per *person, j *clusterv1.Join) string {
	switch {
	case p == nil:
		return ""
	case per.deviceHash != "" && per.deviceHash == string(j.GetNewDeviceHash()):
		return p.newDeviceKey
	case per.provenBy(j.GetDeviceHash()):
		return p.deviceKey
	}
	return ""
}

// outcome is what came of a command.
type outcome struct {
	s   *stream // a join's stream, if it is on this node
	ok  bool    // a leave found its stream attached
	ban *ban    // a ban's record
	num uint64  // a publish's message number
	err error   // why the command was refused
}

// settle gives back what p still holds once its command has been applied
// with out. hub.mu must be held.
// command returns the command p waits for, if p knows it.
func (p *pending) command() *clusterv1.Command {
	if p == nil {
		return nil
	}
	return p.cmd
}

func (p *pending) settle(h *hub, out outcome) {
	if p == nil {
		return
	}
	if out.err != nil && p.stream != nil && p.stream.cut.Load() {
		// Its stream was given up with this node: refused as gone
		// (errGone), or not even applied, it was not carried out, and
		// is to be sent again once the client is back.
		out.err = errCutOffRefused
	}
	if p.counted {
		h.lim.ReleaseSession(p.client)
		p.counted = false
	}
	switch {
	case p.then != nil:
		p.then(h, out)
	case p.done == nil:
	case p.abandoned:
		// Nobody waits for a join's stream any more: its client is gone.
		if out.s != nil {
			h.dropLocked(out.s)
		}
	default:
		p.done <- out
	}
}

// applyLocked applies cmd; p is what this node kept of it, if this node
// asked for it. Lock must be held, and flushSlowLocked called before it is
// released.
func (h *hub) applyLocked(cmd *clusterv1.Command, p *pending) outcome {
	switch a := cmd.GetAction().(type) {
	case *clusterv1.Command_Join:
		return h.joinLocked(cmd.GetNode(), a.Join, p)
	case *clusterv1.Command_Leave:
		return outcome{ok: h.leaveLocked(cmd.GetNode(), a.Leave)}
	case *clusterv1.Command_Send:
		return outcome{err: h.sendLocked(cmd.GetNode(), a.Send)}
	case *clusterv1.Command_JoinChannel:
		return outcome{err: h.joinChannelLocked(cmd.GetNode(), a.JoinChannel)}
	case *clusterv1.Command_LeaveChannel:
		return outcome{err: h.leaveChannelLocked(cmd.GetNode(), a.LeaveChannel)}
	case *clusterv1.Command_MarkRead:
		return outcome{err: h.markReadLocked(cmd.GetNode(), a.MarkRead)}
	case *clusterv1.Command_Typing:
		return outcome{err: h.typingLocked(cmd.GetNode(), a.Typing)}
	case *clusterv1.Command_Kick:
		return outcome{err: h.kickLocked(a.Kick)}
	case *clusterv1.Command_Ban:
		b, err := h.banLocked(a.Ban)
		return outcome{ban: b, err: err}
	case *clusterv1.Command_Unban:
		return outcome{err: h.unbanLocked(a.Unban)}
	case *clusterv1.Command_Publish:
		n, err := h.publishAdminLocked(a.Publish)
		return outcome{num: n, err: err}
	case *clusterv1.Command_Heartbeat:
		return outcome{} // being heard is all it does (see heardLocked)
	case *clusterv1.Command_NodeStop:
		h.nodeStoppedLocked(cmd.GetNode())
		return outcome{}
	}
	// A command of a newer version of chatd, during a rolling upgrade:
	// every node of this version skips it alike.
	return outcome{err: &Error{Kind: ErrInvalidRequest, Msg: "unknown command"}}
}

// streamLocked finds the session whose stream on node sent a command, or
// refuses the command if that stream is no longer attached: dropped,
// logged out, or replaced by a resume. Lock must be held.
func (h *hub) streamLocked(node string, ref *clusterv1.Stream) (*session, error) {
	per := h.byKey[ref.GetUserKey()]
	if per == nil {
		return nil, errGone
	}
	if sess := per.device(node, ref.GetAttach()); sess != nil {
		return sess, nil
	}
	return nil, errGone
}

// lookalikeLocked returns a user whose name looks like a name with
// lookalike keys ks (see lookalikeKeys), or nil. Lock must be held.
func (h *hub) lookalikeLocked(ks [2]string) *person {
	for _, k := range ks {
		if per := h.bySkel[k]; per != nil {
			return per
		}
	}
	return nil
}

// addLookalikesLocked registers per under its lookalike keys. Lock must be
// held.
func (h *hub) addLookalikesLocked(per *person) {
	for _, k := range per.skels {
		h.bySkel[k] = per
	}
}

// joinLocked admits a user, or another device of a user in the chat
// already, or resumes a session (see resumeLocked). Lock must be held.
func (h *hub) joinLocked(node string, j *clusterv1.Join, p *pending) outcome {
	display, key, err := CheckUsername(j.GetUsername())
	if err != nil {
		return outcome{err: err}
	}
	skels := lookalikeKeys(display, key)
	if b := h.bannedLocked(key, skels); b != nil {
		return outcome{err: b.refusal()}
	}
	recovery := chatv1.Recovery_RECOVERY_UNSPECIFIED
	if len(j.GetResumeHash()) > 0 {
		// A token for another name is treated as unknown, so that a token
		// tells nothing about anyone else's session.
		if sess := h.byToken[string(j.GetResumeHash())]; sess != nil && sess.key() == key {
			s := h.resumeLocked(sess, node, j, p)
			// A user back online is given what was kept for it meanwhile.
			h.deliverInboxLocked(sess.person)
			return outcome{s: s}
		}
		recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	}
	if per := h.byKey[key]; per != nil {
		// The name is this user's: a sign-in for it, or its device key,
		// shows that the join is the same person on another device.
		if !j.GetSignedIn() && !per.provenBy(j.GetDeviceHash()) {
			if per.online() {
				return outcome{err: &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q is taken: choose another name (to join from another device of yours, give the device key of one you are on)", display)}}
			}
			return outcome{err: &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q is held for a user who lost their connection, for up to %s: choose another name or try again later", display, h.cfg.ResumeGrace)}}
		}
		if len(per.devices) >= h.cfg.MaxDevicesPerUser {
			return outcome{err: &Error{Kind: ErrTooManyDevices, Msg: fmt.Sprintf("you are on %s, the most allowed (counting those reconnecting): log out on one, or try again later", count(len(per.devices), "device", "devices"))}}
		}
		if err := h.roomForSessionLocked(j); err != nil {
			return outcome{err: err}
		}
		per.acct.signedIn = per.acct.signedIn || j.GetSignedIn()
		return outcome{s: h.addDeviceLocked(per, node, j, p, recovery)}
	}
	// A name that looks like someone else's (its letters confusable with
	// theirs, "bоb" with a Cyrillic о beside "bob") would let its user pass
	// for them: it is taken too.
	if old := h.lookalikeLocked(skels); old != nil {
		who := "who is online"
		if !old.online() {
			who = "whose name is held for them while they reconnect"
		}
		return outcome{err: &Error{Kind: ErrUsernameTaken, Msg: fmt.Sprintf("username %q looks like %q, %s: choose a name nobody could mistake for theirs", display, old.user.Username, who)}}
	}
	if err := h.roomForSessionLocked(j); err != nil {
		return outcome{err: err}
	}

	now := timestamppb.New(h.now)
	per := &person{key: key, skels: skels, deviceHash: string(j.GetNewDeviceHash()), user: &chatv1.User{Username: display, JoinTime: now},
		acct: h.accountLocked(key, display)}
	per.acct.signedIn = per.acct.signedIn || j.GetSignedIn()
	// Joining the chat is joining general too: members of general take a
	// user_joined as that, so no channel_joined is sent for it.
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: now, Event: &chatv1.ChatResponse_UserJoined{
		UserJoined: &chatv1.UserJoined{User: per.user},
	}}), nil)
	h.byKey[key] = per
	h.addLookalikesLocked(per)
	h.enterLocked(per, h.general)
	return outcome{s: h.addDeviceLocked(per, node, j, p, recovery)}
}

// roomForSessionLocked refuses a join that would make a new session past
// the server's limit, or past the client address's on the joining node.
func (h *hub) roomForSessionLocked(j *clusterv1.Join) error {
	if len(h.byToken) >= h.cfg.MaxSessions {
		return &Error{Kind: ErrServerFull, Msg: fmt.Sprintf("server is full (%s, counting those reconnecting): try again later", count(len(h.byToken), "session", "sessions"))}
	}
	if j.GetResumeOnly() {
		return &Error{Kind: ErrServerFull, Msg: fmt.Sprintf("too many sessions from your address (at most %d, counting those reconnecting): log out of one, or try again later", h.cfg.PerClient.MaxSessions)}
	}
	return nil
}

// addDeviceLocked gives per a new session, on node, with its welcome and a
// catch-up of each of per's channels. If per was offline (its other
// devices all parked), it comes back online first. It returns the
// session's stream if it is on this node. Lock must be held.
func (h *hub) addDeviceLocked(per *person, node string, j *clusterv1.Join, p *pending, recovery chatv1.Recovery) *stream {
	if len(per.devices) > 0 && !per.online() {
		h.returnLocked(per)
	}
	sess := &session{person: per, tokenHash: string(j.GetTokenHash()), addr: j.GetClientAddr()}
	per.devices = append(per.devices, sess)
	h.byToken[sess.tokenHash] = sess
	s := h.attachLocked(sess, node, p)
	sess.seq = 1 // the welcome; the replay starts after it
	if s != nil {
		s.recovery = recovery
		s.queue.pushCatchUp(delivery{Seq: sess.seq, event: privateEvent(&chatv1.ChatResponse{
			Time: timestamppb.New(h.now),
			Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
				You:           per.user,
				OnlineUsers:   h.usersLocked(),
				ResumeToken:   p.newTokenOr(),
				Recovery:      recovery,
				DeviceKey:     p.deviceKeyFor(per, j),
				UnreadPrivate: h.unreadPrivateLocked(per.acct),
			}},
		})})
	}
	for _, ch := range per.channels {
		h.channelCatchUpLocked(sess, ch)
	}
	h.typingCatchUpLocked(sess)
	// A user back online is given what was kept for it meanwhile.
	h.deliverInboxLocked(per)
	return s
}

// returnLocked brings per, offline with its sessions parked, back online
// as one of them comes back: everyone hears that it is back, and the
// members of each of its channels that it is back in the channel. Lock
// must be held.
func (h *hub) returnLocked(per *person) {
	per.user = &chatv1.User{Username: per.user.Username, JoinTime: timestamppb.New(h.now)}
	h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: per.user.JoinTime, Event: &chatv1.ChatResponse_UserJoined{
		UserJoined: &chatv1.UserJoined{User: per.user, Resumed: true},
	}}), per)
	for _, ch := range per.channels {
		h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: per.user.JoinTime, Event: &chatv1.ChatResponse_ChannelJoined{
			ChannelJoined: &chatv1.ChannelJoined{Channel: ch.name, User: per.user},
		}}), per)
		// The others add per at the end of the channel's members, as
		// for anyone entering it: so does the channel.
		ch.members = append(ch.members, ch.remove(per, h.now))
	}
}

// resumeLocked attaches a new stream, on node, to sess and gives it what it
// missed after the join's last seq, or, if sess's replay no longer has all
// of it, a fresh catch-up. If sess still has a stream (a connection that
// died without the server noticing yet, or on a node that crashed), that
// stream is ended: whoever holds the token is sess's user. It returns the
// stream if it is on this node. Lock must be held.
func (h *hub) resumeLocked(sess *session, node string, j *clusterv1.Join, p *pending) *stream {
	per, lastSeq := sess.person, j.GetLastSeq()
	sess.addr = j.GetClientAddr()
	if node != h.node {
		h.releaseLocked(sess) // counted where it is now
	}
	switch sess.state {
	case stateOnline, stateHeld:
		// The others never saw the user leave, so they hear nothing, and
		// the user keeps its place on the online list.
		if old := sess.stream; old != nil {
			sess.stream = nil
			old.endLocked(errReplaced, chatv1.LeaveReason_LEAVE_REASON_UNSPECIFIED)
		}
		h.undeadlineLocked(sess)
	case stateParked:
		h.unparkLocked(sess)
		if !per.online() {
			h.returnLocked(per)
		}
	}
	s := h.attachLocked(sess, node, p)
	missed, complete := sess.missed(lastSeq)
	if s == nil {
		// Another node's stream: only the numbering is this node's to
		// keep, the same as the stream's node keeps it.
		if !complete {
			sess.seq++
			sess.resetReplay()
			for _, ch := range per.channels {
				h.channelCatchUpLocked(sess, ch)
			}
		}
		return nil
	}
	s.resumed = true
	now := timestamppb.New(h.now)
	if complete {
		s.recovery = chatv1.Recovery_RECOVERY_COMPLETE
		// Complete: the client's state as of lastSeq, plus what follows,
		// is current. From its point of view it never left.
		s.queue.pushCatchUp(delivery{Seq: lastSeq, event: privateEvent(&chatv1.ChatResponse{
			Time: now,
			Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
				You:         per.user,
				ResumeToken: p.tokenOr(),
				Recovery:    chatv1.Recovery_RECOVERY_COMPLETE,
				DeviceKey:   p.deviceKeyFor(per, j),
			}},
		})})
		s.queue.pushCatchUp(missed...)
		h.typingCatchUpLocked(sess)
		return s
	}
	// Incomplete: start the client over with a fresh catch-up, in the channels it
	// is in. The replay restarts after the new welcome, so a resume cannot ask
	// for events from before it.
	s.recovery = chatv1.Recovery_RECOVERY_INCOMPLETE
	sess.seq++
	sess.resetReplay()
	s.queue.pushCatchUp(delivery{Seq: sess.seq, event: privateEvent(&chatv1.ChatResponse{
		Time: now,
		Event: &chatv1.ChatResponse_Welcome{Welcome: &chatv1.Welcome{
			You:           per.user,
			OnlineUsers:   h.usersLocked(),
			ResumeToken:   p.tokenOr(),
			Recovery:      chatv1.Recovery_RECOVERY_INCOMPLETE,
			DeviceKey:     p.deviceKeyFor(per, j),
			UnreadPrivate: h.unreadPrivateLocked(per.acct),
		}},
	})})
	for _, ch := range per.channels {
		h.channelCatchUpLocked(sess, ch)
	}
	h.typingCatchUpLocked(sess)
	return s
}

// sendLocked sends a message (see hub.sendPipelined). Lock must be held.
func (h *hub) sendLocked(node string, snd *clusterv1.Send) error {
	sess, err := h.streamLocked(node, snd.GetStream())
	if err != nil {
		return err
	}
	from := sess.person
	var to *person
	var offline *account // a recipient offline, signed in before: its inbox keeps the message
	var ch *channel
	if recipient := snd.GetRecipient(); recipient != "" {
		name, key, err := CheckUsername(recipient)
		if err != nil {
			return notOnline(recipient)
		}
		if to = h.byKey[key]; to == nil || !to.online() {
			// With sign-in a name is someone's for good, and what is sent
			// to them waits for them; without, anyone could take the name
			// and read it.
			if offline = h.accounts[key]; offline == nil || !offline.signedIn || h.cfg.OfflineInbox == 0 {
				return notOnline(name)
			}
			to = nil
		}
	} else {
		name := snd.GetChannel()
		key, err := channelKey(name)
		if err != nil {
			return err
		}
		switch ch = h.channels[key]; {
		case ch == nil:
			return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("there is no channel #%s: join it to create it", name)}
		case !from.in(ch):
			return &Error{Kind: ErrNotInChannel, Msg: fmt.Sprintf("you are not in #%s: join it first", ch.name)}
		}
	}

	// The conversation, and the account of the other user of a private one.
	var conv string
	var other *account
	switch {
	case offline != nil:
		conv, other = privateConv(from.key, offline.key), offline
	case to != nil:
		conv, other = privateConv(from.key, to.key), to.acct
	default:
		conv = ch.conv
	}
	var reply *chatv1.ReplyTo
	if n := snd.GetReplyTo(); n != 0 {
		if reply, err = h.replyToLocked(n, conv); err != nil {
			return err
		}
	}
	mentions, mentioned := h.mentionsLocked(snd.GetMentions())
	msg := &chatv1.Message{
		Id:       h.idPrefix + strconv.FormatUint(h.msgs+1, 10),
		Sender:   from.user.Username,
		Text:     snd.GetText(),
		ClientId: snd.GetClientId(),
		ReplyTo:  reply,
		Mentions: mentions,
	}
	resp := &chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_Message{Message: msg}}
	if ch != nil {
		msg.Channel = ch.name
	} else {
		msg.Recipient = other.name
	}
	ev := newEvent(resp)
	if offline != nil {
		if err := h.inboxLocked(offline, ev); err != nil {
			return err
		}
	}
	h.msgs++
	ev.num = h.msgs
	h.archiveLocked(conv, ev)
	h.rememberLocked(h.msgs, conv, from.user.Username, snd.GetText(), mentioned)
	switch {
	case ch != nil:
		h.readChannelLocked(ch, from, h.msgs, mentioned)
		h.publishLocked(ch, ev, nil)
		ch.history.push(ev.asHistory(), h.cfg.HistorySize, h.cfg.HistoryBytes)
		h.typedLocked(ch.conv, from)
	default:
		// Every device of both users gets it: the sender's copy is its
		// acknowledgement on the device that sent it. One offline has it
		// in its inbox.
		h.readPrivateLocked(from.acct, other, h.msgs, slices.Contains(mentioned, other.key))
		if to != nil {
			h.deliverUserLocked(to, ev)
		}
		if to != from {
			h.deliverUserLocked(from, ev)
		}
		if to != nil {
			h.typedLocked(typingPrivate(from.key, to.key), from)
		}
	}
	return nil
}

// joinChannelLocked puts a user in a channel (see hub.JoinChannel), on
// every device. Lock must be held.
func (h *hub) joinChannelLocked(node string, jc *clusterv1.JoinChannel) error {
	display, key, err := CheckChannel(jc.GetChannel())
	if err != nil {
		return err
	}
	sess, err := h.streamLocked(node, jc.GetStream())
	if err != nil {
		return err
	}
	per := sess.person
	ch := h.channels[key]
	switch {
	case ch != nil && per.in(ch):
		return &Error{Kind: ErrAlreadyInChannel, Msg: fmt.Sprintf("you are already in #%s", ch.name)}
	case len(per.channels) >= h.cfg.MaxChannelsPerUser:
		return &Error{Kind: ErrTooManyChannels, Msg: fmt.Sprintf("you are in %s, the most allowed: leave one first", count(len(per.channels), "channel", "channels"))}
	case ch == nil:
		if !h.makeRoomLocked() {
			// A channel whose members are all reconnecting shows no
			// members but is theirs: it is not empty.
			return &Error{Kind: ErrTooManyChannels, Msg: fmt.Sprintf("the server has %s, the most it keeps, and every one has members (online or reconnecting): join an existing channel", count(len(h.channels), "channel", "channels"))}
		}
		ch = newChannel(display, key)
		h.channels[key] = ch
	}
	h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_ChannelJoined{
		ChannelJoined: &chatv1.ChannelJoined{Channel: ch.name, User: per.user},
	}}), nil)
	h.enterLocked(per, ch)
	for _, d := range per.devices {
		if s := d.stream; s != nil {
			// The catch-up is forgiven only if the writer has taken the
			// last one: a client that stopped reading and keeps joining
			// channels would otherwise pile up catch-ups past any limit.
			s.forgive = s.queue.forgiving()
		}
		h.channelCatchUpLocked(d, ch)
		if tc := h.typing[ch.conv]; tc != nil && d.stream != nil {
			h.tellTypingLocked(d.stream, tc)
		}
	}
	return nil
}

// leaveChannelLocked takes a user out of a channel (see
// hub.LeaveChannel), on every device. Lock must be held.
func (h *hub) leaveChannelLocked(node string, lc *clusterv1.LeaveChannel) error {
	display, key, err := CheckChannel(lc.GetChannel())
	if err != nil {
		return err
	}
	sess, err := h.streamLocked(node, lc.GetStream())
	if err != nil {
		return err
	}
	per := sess.person
	ch := h.channels[key]
	if ch == nil || !per.in(ch) {
		return &Error{Kind: ErrNotInChannel, Msg: fmt.Sprintf("you are not in #%s", display)}
	}
	h.publishLocked(ch, newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_ChannelLeft{
		ChannelLeft: &chatv1.ChannelLeft{Channel: ch.name, User: per.user},
	}}), nil)
	h.exitLocked(per, ch)
	return nil
}

// leaveLocked ends a session's stream (see hub.Leave) and reports whether
// it was still attached. A logout ends the session; its user leaves the
// chat if it was its last device online. Lock must be held.
func (h *hub) leaveLocked(node string, l *clusterv1.Leave) bool {
	sess, err := h.streamLocked(node, l.GetStream())
	if err != nil {
		return false
	}
	if l.GetReason() != chatv1.LeaveReason_LEAVE_REASON_LOGOUT {
		h.parkLocked(sess, l.GetReason())
		return true
	}
	per, s := sess.person, sess.stream
	wentOffline := h.detachLocked(sess)
	h.forgetLocked(sess)
	ev := newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
		UserLeft: &chatv1.UserLeft{User: per.user, Reason: l.GetReason()},
	}})
	if s != nil {
		// The stream's last event, whether or not the user is still on
		// another device: a client ends on it.
		h.deliverTo(s, sess, ev)
	}
	if wentOffline {
		h.broadcastLocked(ev, per)
	}
	return true
}
