package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// What chatctl prints is read: it marks each conversation read on the
// server up to the last message printed in it, so that the user's other
// devices (a page in a browser, a phone) stop counting it as unread. Not
// for every message: the marks of one conversation are coalesced, at most
// one every markEvery, for the last message printed. The user's own
// messages mark their conversation read on the server already.

// markEvery is the least time between two marks of one conversation: a
// busy channel costs chatd one mark a second per device, not one per
// message.
const markEvery = time.Second

// markReadID is the client_id of the marks chatctl sends. They are
// chatctl's, not the user's: a refusal (a channel left meanwhile on
// another device) is not shown.
const markReadID = "chatctl-read"

// readMark is a conversation's mark to send.
type readMark struct {
	channel, with string // as the server names them
	id            string // the last message printed
}

// conversation is the key of a message's conversation in the maps of read
// marks: "#" and the channel, or "@" and the other user, in lower case
// (names are unique whatever their case).
func conversation(channel, with string) string {
	if channel != "" {
		return "#" + strings.ToLower(strings.TrimPrefix(channel, "#"))
	}
	return "@" + strings.ToLower(with)
}

// printedMessage notes that ev, just printed, was read: its conversation
// is to be marked read up to it.
func (s *session) printedMessage(ev *chatv1.ChatResponse) {
	m := ev.GetMessage()
	if !s.markRead || m == nil || m.GetId() == "" {
		return
	}
	own := m.GetSender() == s.you
	with := ""
	switch {
	case m.GetChannel() != "":
	case own:
		with = m.GetRecipient()
	default:
		with = m.GetSender()
	}
	key := conversation(m.GetChannel(), with)
	if own {
		// The server marked it read when it was sent: a mark of an
		// earlier message would change nothing.
		s.lastRead[key] = m.GetId()
		delete(s.unmarked, key)
		return
	}
	s.unmarked[key] = readMark{channel: m.GetChannel(), with: with, id: m.GetId()}
	if s.markDue == nil {
		s.markDue = time.After(s.markEvery)
	}
}

// readState notes where the user stands in a conversation, as the server
// said: a mark up to there is not to be sent.
func (s *session) readState(r *chatv1.ReadState) {
	key := conversation(r.GetChannel(), r.GetWith())
	s.lastRead[key] = r.GetLastReadId()
	if n := r.GetMentions(); n > 0 {
		s.mentions[key] = n
	} else {
		delete(s.mentions, key)
	}
	if u, ok := s.unmarked[key]; ok && u.id == r.GetLastReadId() {
		delete(s.unmarked, key)
	}
}

// forgetReads forgets the read state of a conversation, or of every one
// with key "", as the server's state it came from is gone: a channel
// left, a fresh session.
func (s *session) forgetReads(key string) {
	if key == "" {
		clear(s.unmarked)
		clear(s.lastRead)
		clear(s.mentions)
		return
	}
	delete(s.unmarked, key)
	delete(s.lastRead, key)
	delete(s.mentions, key)
}

// countMention counts a message just received in the unread messages
// that name the user, per conversation, for /channels: the server's
// channel list has no such count, but its read states do, and the
// messages that come after one in the one order are what it counts next.
// A history message is one it counted already; the user's own message
// marks its conversation read.
func (s *session) countMention(ev *chatv1.ChatResponse) {
	m := ev.GetMessage()
	if m == nil || ev.GetHistory() {
		return
	}
	key := conversation(messageConv(m, s.you))
	switch {
	case m.GetSender() == s.you:
		delete(s.mentions, key)
	case mentionsYou(m, s.you):
		s.mentions[key]++
	}
}

// sendMarks sends the marks due, one per conversation, in the order of
// their keys. While disconnected they wait for the next link.
func (s *session) sendMarks() {
	s.markDue = nil
	if s.link == nil || len(s.unmarked) == 0 {
		return
	}
	for _, key := range slices.Sorted(maps.Keys(s.unmarked)) {
		u := s.unmarked[key]
		delete(s.unmarked, key)
		if s.lastRead[key] == u.id {
			continue // read there already: the history of a channel just entered
		}
		s.lastRead[key] = u.id
		_ = s.link.stream.Send(&chatv1.ChatRequest{ClientId: markReadID, Action: &chatv1.ChatRequest_MarkRead{
			MarkRead: &chatv1.MarkRead{Channel: u.channel, With: u.with, MessageId: u.id},
		}})
	}
}

// marksLater has the marks waiting for a link sent once connected.
func (s *session) marksLater() {
	if len(s.unmarked) > 0 && s.markDue == nil {
		s.markDue = time.After(s.markEvery)
	}
}

// unreadNote says which private conversations have messages not read yet,
// from a welcome; "" if none.
func unreadNote(unread []*chatv1.ReadState) string {
	var parts []string
	for _, r := range unread {
		if r.GetUnread() > 0 && r.GetWith() != "" {
			part := fmt.Sprintf("%d from %s", r.GetUnread(), sanitize(r.GetWith(), ""))
			if n := r.GetMentions(); n > 0 {
				part += fmt.Sprintf(" (%d mentioning you)", n)
			}
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Unread private messages: " + strings.Join(parts, ", ") + " (/history NAME shows them)."
}
