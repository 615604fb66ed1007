package server

import (
	"context"
	"slices"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file keeps who is typing where. Typing is a command like any, so
// that it takes its place in the chat's one order (a typer's message
// always comes after its typing, and ends it), but it is never kept: its
// events are unnumbered (seq 0), in no replay and no history, and a
// snapshot leaves it out (a node that starts from one learns who types
// from their next refresh, within typingEvery).

const (
	// typingEvery is how often a stream's typing in one conversation is
	// appended at most: refreshes closer than that are dropped by the
	// stream's node, before the log.
	typingEvery = 2 * time.Second
	// typingTimeout ends a typing this long after its last refresh, as the
	// chat's clock goes: at the next heartbeat past it (one a second).
	typingTimeout = 6 * time.Second
	// typingNames is how many typers a conversation names; past it, it
	// shows "several", and changes among them are not sent: in a busy
	// channel typing costs a few events, not one per typer.
	typingNames = 3
)

// typingConv is who is typing in one conversation.
type typingConv struct {
	ch     *channel // a channel's conversation; nil for a private one
	to     *person  // a private one: the user typed to, the only one shown it
	from   *person  // a private one: the user typing, its only typer
	typers []typer  // in the order they began
}

type typer struct {
	per   *person
	until time.Time // the chat's clock: when it ends unless refreshed
}

// typingExpiry is a typer's deadline; a refresh since makes it stale.
type typingExpiry struct {
	conv string
	per  *person
	at   time.Time
}

// typingPrivate names the private conversation in which from types to to.
func typingPrivate(from, to string) string { return "@" + from + ">" + to }

func (tc *typingConv) index(per *person) int {
	return slices.IndexFunc(tc.typers, func(t typer) bool { return t.per == per })
}

// shown is what the conversation shows, as a comparable string.
func (tc *typingConv) shown() string {
	if len(tc.typers) > typingNames {
		return "\x00several"
	}
	var b strings.Builder
	for _, t := range tc.typers {
		b.WriteString(t.per.key)
		b.WriteByte(0)
	}
	return b.String()
}

// state is what the conversation shows, for a client.
func (tc *typingConv) state() *chatv1.TypingState {
	ts := &chatv1.TypingState{Several: len(tc.typers) > typingNames}
	if tc.ch != nil {
		ts.Channel = tc.ch.name
	} else {
		// Named even once it stopped: that is whose typing ended.
		ts.With = tc.from.user.Username
	}
	if !ts.Several {
		for _, t := range tc.typers {
			ts.Users = append(ts.Users, t.per.user.Username)
		}
	}
	return ts
}

// Typing says that s's user is typing in a conversation (a channel, or the
// private one with recipient; general with neither), or stopped. Like a
// message, it returns once the log has it, and a refusal met when it is
// applied reaches s as a rejected answer to clientID.
func (h *hub) Typing(ctx context.Context, s *stream, channelName, recipient string, stopped bool, clientID string) error {
	if err := checkTarget(channelName, recipient, "typing is in a channel or to a recipient, not both: set only one"); err != nil {
		return err
	}
	cmd := h.command(&clusterv1.Command{Action: &clusterv1.Command_Typing{Typing: &clusterv1.Typing{
		Stream: s.ref(), Channel: channelName, Recipient: recipient, Stopped: stopped,
	}}})
	return h.appendPipelined(ctx, s, cmd, clientID, nil)
}

// typingLocked applies a typing command. Lock must be held.
func (h *hub) typingLocked(node string, ty *clusterv1.Typing) error {
	sess, err := h.streamLocked(node, ty.GetStream())
	if err != nil {
		return err
	}
	per := sess.person
	var conv string
	tc := &typingConv{}
	if recipient := ty.GetRecipient(); recipient != "" {
		_, key, err := CheckUsername(recipient)
		if err != nil {
			return notOnline(recipient)
		}
		to := h.byKey[key]
		if to == nil || !to.online() || to == per {
			return nil // nobody to show it to
		}
		conv, tc.to, tc.from = typingPrivate(per.key, to.key), to, per
	} else {
		key, err := channelKey(ty.GetChannel())
		if err != nil {
			return err
		}
		ch := h.channels[key]
		if ch == nil || !per.in(ch) {
			return &Error{Kind: ErrNotInChannel, Msg: "you are not in that channel: join it first"}
		}
		conv, tc.ch = ch.conv, ch
	}
	if old := h.typing[conv]; old != nil {
		tc = old
	}
	i := tc.index(per)
	if ty.GetStopped() {
		if i >= 0 {
			before := tc.shown()
			tc.typers = slices.Delete(tc.typers, i, i+1)
			h.showTypingLocked(conv, tc, before)
		}
		return nil
	}
	until := h.now.Add(typingTimeout)
	h.typingDeadline = append(h.typingDeadline, typingExpiry{conv: conv, per: per, at: until})
	if i >= 0 {
		tc.typers[i].until = until // a refresh: nothing shown changes
		return nil
	}
	before := tc.shown()
	tc.typers = append(tc.typers, typer{per: per, until: until})
	h.typing[conv] = tc
	h.showTypingLocked(conv, tc, before)
	return nil
}

// typedLocked ends per's typing in conversation conv: its message to it
// arrived. Clients take its sender off what they show themselves, so
// nothing is sent unless that cannot tell them: the conversation showed
// "several" and now can name its typers. Lock must be held.
func (h *hub) typedLocked(conv string, per *person) {
	tc := h.typing[conv]
	if tc == nil {
		return
	}
	i := tc.index(per)
	if i < 0 {
		return
	}
	several := len(tc.typers) > typingNames
	tc.typers = slices.Delete(tc.typers, i, i+1)
	if len(tc.typers) == 0 {
		delete(h.typing, conv)
	}
	if several && len(tc.typers) <= typingNames {
		h.sendTypingLocked(tc)
	}
}

// untypeLocked ends per's typing everywhere: it went offline. Lock must
// be held.
func (h *hub) untypeLocked(per *person) {
	for conv, tc := range h.typing {
		if i := tc.index(per); i >= 0 {
			before := tc.shown()
			tc.typers = slices.Delete(tc.typers, i, i+1)
			h.showTypingLocked(conv, tc, before)
		}
	}
}

// untypeChannelLocked ends per's typing in ch: it left it. Lock must be
// held.
func (h *hub) untypeChannelLocked(per *person, ch *channel) {
	if tc := h.typing[ch.conv]; tc != nil {
		if i := tc.index(per); i >= 0 {
			before := tc.shown()
			tc.typers = slices.Delete(tc.typers, i, i+1)
			h.showTypingLocked(ch.conv, tc, before)
		}
	}
}

// expireTypingLocked ends the typings whose deadline has passed. Lock must
// be held.
func (h *hub) expireTypingLocked() {
	for len(h.typingDeadline) > 0 && !h.typingDeadline[0].at.After(h.now) {
		e := h.typingDeadline[0]
		h.typingDeadline[0] = typingExpiry{}
		h.typingDeadline = h.typingDeadline[1:]
		tc := h.typing[e.conv]
		if tc == nil {
			continue
		}
		if i := tc.index(e.per); i >= 0 && tc.typers[i].until.Equal(e.at) {
			before := tc.shown()
			tc.typers = slices.Delete(tc.typers, i, i+1)
			h.showTypingLocked(e.conv, tc, before)
		}
	}
	if len(h.typingDeadline) == 0 {
		h.typingDeadline = nil
	}
}

// showTypingLocked sends tc's state to those shown it if it changed from
// before, and forgets tc once nobody types. Lock must be held.
func (h *hub) showTypingLocked(conv string, tc *typingConv, before string) {
	if len(tc.typers) == 0 {
		delete(h.typing, conv)
	}
	if tc.shown() != before {
		h.sendTypingLocked(tc)
	}
}

// sendTypingLocked sends tc's state, unnumbered, to the streams of those
// shown it: a channel's members, or the user typed to. Lock must be held.
func (h *hub) sendTypingLocked(tc *typingConv) {
	ev := newEvent(h.typingResponse(tc))
	if tc.ch != nil {
		for _, m := range tc.ch.members {
			h.tellUserLocked(m.per, ev)
		}
		return
	}
	h.tellUserLocked(tc.to, ev)
}

// tellUserLocked queues ev, unnumbered and not kept, for every stream of
// per on this node. Lock must be held.
func (h *hub) tellUserLocked(per *person, ev *event) {
	for _, sess := range per.devices {
		if s := sess.stream; s != nil {
			h.queueLocked(s, delivery{event: ev})
		}
	}
}

// typingResponse is tc's state as a response.
func (h *hub) typingResponse(tc *typingConv) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_Typing{Typing: tc.state()}}
}

// tellTypingLocked queues tc's state for s alone, unnumbered: a stream
// that joins, resumes or enters a channel is told who types there now.
// Lock must be held.
func (h *hub) tellTypingLocked(s *stream, tc *typingConv) {
	h.queueLocked(s, delivery{event: privateEvent(h.typingResponse(tc))})
}

// typingCatchUpLocked tells sess, whose stream just joined or resumed, who
// is typing in its user's conversations now. Lock must be held.
func (h *hub) typingCatchUpLocked(sess *session) {
	s := sess.stream
	if s == nil || len(h.typing) == 0 {
		return
	}
	per := sess.person
	for _, ch := range per.channels {
		if tc := h.typing[ch.conv]; tc != nil {
			h.tellTypingLocked(s, tc)
		}
	}
	for _, tc := range h.typing {
		if tc.to == per {
			h.tellTypingLocked(s, tc)
		}
	}
}
