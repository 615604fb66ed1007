package main

import (
	"maps"
	"slices"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// Typing goes both ways on a terminal, and neither in a pipe, where no
// one types a line and no prompt is watched.
//
// Sent: the console reports the line being edited whenever it changes
// (see console.readLines). While it is a message to a conversation (a
// line for the current channel, "/msg NAME text", "/reply ID text"),
// chatctl says the user is typing there, and says it again every
// typingEvery while the line keeps changing: chatd ends a typing by
// itself 6 seconds after the last, and drops one that comes sooner than
// typingEvery after the last in its conversation, unless a message was
// sent there since (so does chatctl, rather than send what is dropped and
// then wait). When the line is cleared, or becomes a command, chatctl
// says the user stopped; the message sent ends the typing on chatd
// without that.
//
// Shown: chatd says who is typing in each conversation whenever it
// changes, and a typer's message ends its typing. The prompt names who is
// typing in the current channel, and to the user privately, never the
// user: "(bob is typing…) #general> ".

// typingEvery is how often chatctl says again that the user is typing
// while the line keeps changing: chatd's least interval.
const typingEvery = 2 * time.Second

// typingID is the client_id of the typing chatctl sends. A refusal of it
// (a channel left on another device meanwhile) is chatctl's, not the
// user's, and not shown.
const typingID = "chatctl-typing"

// typingTo is where the session last said the user is typing.
type typingTo struct {
	channel, recipient string
}

func (t *typingTo) key() string { return conversation(t.channel, t.recipient) }

// typers is who is typing in a conversation, as chatd last said.
type typers struct {
	users   []string // in the order they began; may name the user
	several bool     // more than chatd names
}

// lineTarget is the conversation the line being typed is a message to:
// a channel, or a user privately. ok is false for an empty line, and a
// command other than /msg and /reply with its text begun.
func (s *session) lineTarget(line string) (channel, recipient string, ok bool) {
	if strings.TrimSpace(line) == "" {
		return "", "", false
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		return s.current, "", s.current != ""
	}
	cmd, rest := splitWord(line)
	switch cmd {
	case "/msg":
		if to, text := splitWord(rest); text != "" {
			return "", to, true
		}
	case "/reply":
		ref, text := splitWord(rest)
		if text == "" {
			break
		}
		if m, why := s.original(ref); why == "" {
			return m.channel, m.with, true
		}
	}
	return "", "", false
}

// draft is the line being typed, each time it changes: it says where the
// user is typing, or that they stopped.
func (s *session) draft(line string) {
	ch, to, ok := s.lineTarget(line)
	key := conversation(ch, to)
	if s.typing != nil && (!ok || s.typing.key() != key) {
		s.stopTyping()
	}
	if !ok || s.link == nil {
		return // once back, the next key says it
	}
	s.typing = &typingTo{channel: ch, recipient: to}
	now := s.now()
	if at, ok := s.typedAt[key]; ok && now.Sub(at) < typingEvery {
		return // chatd would drop it
	}
	maps.DeleteFunc(s.typedAt, func(_ string, at time.Time) bool { return now.Sub(at) >= typingEvery })
	s.typedAt[key] = now
	s.sendTyping(ch, to, false)
}

// entered is a line entered, before it is handled: a message to where
// the user was typing ends the typing on chatd when it arrives, in the
// same order (and chatd takes the next typing there at once); any other
// line is not that message.
func (s *session) entered(line string) {
	ch, to, ok := s.lineTarget(line)
	if ok {
		delete(s.typedAt, conversation(ch, to))
	}
	switch {
	case s.typing == nil:
	case ok && s.typing.key() == conversation(ch, to):
		s.typing = nil
	default:
		s.stopTyping()
	}
}

// connectedTyping forgets what was said of typing on an earlier link:
// chatd's stream for this one has heard nothing, and the next key says it.
func (s *session) connectedTyping() {
	s.typing = nil
	clear(s.typedAt)
}

// stopTyping says the user stopped typing where they were.
func (s *session) stopTyping() {
	t := s.typing
	s.typing = nil
	s.sendTyping(t.channel, t.recipient, true)
}

// sendTyping sends a typing request, if connected: typing is news of the
// moment, not worth a queue.
func (s *session) sendTyping(channel, recipient string, stopped bool) {
	if s.link == nil {
		return
	}
	_ = s.link.stream.Send(&chatv1.ChatRequest{ClientId: typingID, Action: &chatv1.ChatRequest_Typing{
		Typing: &chatv1.Typing{Channel: channel, Recipient: recipient, Stopped: stopped},
	}})
}

// typingState applies chatd's word of who is typing in a conversation.
func (s *session) typingState(ts *chatv1.TypingState) {
	var key string
	switch {
	case ts.GetChannel() != "":
		key = conversation(ts.GetChannel(), "")
	case ts.GetWith() != "":
		key = conversation("", ts.GetWith())
	default:
		// chatd names no conversation when the one typer of a private
		// one stops (it names the typer, and there is none left): it is
		// one of those typing to the user. Forget them all rather than
		// show one who stopped; another still typing shows again with
		// its next change.
		maps.DeleteFunc(s.typers, func(k string, _ typers) bool { return strings.HasPrefix(k, "@") })
		return
	}
	if len(ts.GetUsers()) == 0 && !ts.GetSeveral() {
		delete(s.typers, key)
		return
	}
	s.typers[key] = typers{users: slices.Clone(ts.GetUsers()), several: ts.GetSeveral()}
}

// typed ends the typing of a message's sender in its conversation: chatd
// sends nothing for that (the message says it).
func (s *session) typed(m *chatv1.Message) {
	key := conversation(messageConv(m, s.you))
	t, ok := s.typers[key]
	if !ok || t.several {
		return // several: chatd names them again when it can
	}
	t.users = slices.DeleteFunc(t.users, func(u string) bool { return u == m.GetSender() })
	if len(t.users) == 0 {
		delete(s.typers, key)
		return
	}
	s.typers[key] = t
}

// typingNote says who is typing in the current channel, and to the user
// privately, but the user; "" if nobody is.
func (s *session) typingNote() string {
	others := func(users []string) []string {
		var names []string
		for _, u := range users {
			if !strings.EqualFold(u, s.you) {
				names = append(names, sanitize(u, ""))
			}
		}
		return names
	}
	var parts []string
	if t, ok := s.typers[conversation(s.current, "")]; ok && s.current != "" {
		names := others(t.users)
		switch {
		case t.several:
			parts = append(parts, "several people are typing…")
		case len(names) == 1:
			parts = append(parts, names[0]+" is typing…")
		case len(names) > 1:
			parts = append(parts, strings.Join(names[:len(names)-1], ", ")+" and "+names[len(names)-1]+" are typing…")
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.typers)) {
		if strings.HasPrefix(key, "@") {
			for _, name := range others(s.typers[key].users) {
				parts = append(parts, name+" is typing to you…")
			}
		}
	}
	return strings.Join(parts, "; ")
}
