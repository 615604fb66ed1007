package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// A message's id ("6db9c405-12") is the server's, and no one types it.
// chatctl numbers the messages it prints, 1, 2, 3, … in a session, and
// shows the number before each on a terminal ("[12]"), dimmed: /reply 12
// answers that message. In a pipe and with -o json nothing changes (no one
// types there; -o json has the ids themselves, which /reply takes too).

// maxShortIDs is how many messages keep their number: the last printed.
// Past it the oldest numbers are forgotten, so that a session printing for
// days holds a bounded map, and /reply of one says it is too far back.
const maxShortIDs = 1000

// msgRef is a message printed: its id, and its conversation as the user
// sees it (a channel, or the other user of a private message).
type msgRef struct {
	id            string
	channel, with string
}

// shortIDs maps the numbers chatctl shows to the messages they stand for.
// Its methods take a nil *shortIDs as an empty one, for a printer outside
// a session.
type shortIDs struct {
	next  int // the number the next new message gets
	byNum map[int]msgRef
	byID  map[string]int
	order []int // the numbers held, the least recently printed first
}

func newShortIDs() *shortIDs {
	return &shortIDs{next: 1, byNum: map[int]msgRef{}, byID: map[string]int{}}
}

// add numbers a message printed and returns its number. A message printed
// again (by /history) keeps its number, and keeps it longer.
func (ids *shortIDs) add(m msgRef) int {
	if n, ok := ids.byID[m.id]; ok {
		i := slices.Index(ids.order, n)
		ids.order = append(slices.Delete(ids.order, i, i+1), n)
		return n
	}
	n := ids.next
	ids.next++
	ids.byNum[n], ids.byID[m.id] = m, n
	ids.order = append(ids.order, n)
	if len(ids.order) > maxShortIDs {
		old := ids.order[0]
		ids.order = ids.order[1:]
		delete(ids.byID, ids.byNum[old].id)
		delete(ids.byNum, old)
	}
	return n
}

// number is the number of the message id; 0 if it has none.
func (ids *shortIDs) number(id string) int {
	if ids == nil {
		return 0
	}
	return ids.byID[id]
}

// messageConv is m's conversation as you see it: its channel, or the
// other user of a private message.
func messageConv(m *chatv1.Message, you string) (channel, with string) {
	switch {
	case m.GetChannel() != "":
		return m.GetChannel(), ""
	case m.GetSender() == you:
		return "", m.GetRecipient()
	}
	return "", m.GetSender()
}

// show prints ev, numbering the message it carries first, so that the
// number shows, and noting it as the last of its channel (/reply last).
func (s *session) show(ev *chatv1.ChatResponse) error {
	if m := ev.GetMessage(); m.GetId() != "" {
		ch, with := messageConv(m, s.you)
		ref := msgRef{id: m.GetId(), channel: ch, with: with}
		s.ids.add(ref)
		if ch != "" {
			s.lastIn[conversation(ch, "")] = ref
		}
	}
	return s.out.event(ev, s.view())
}

const replyUsage = "usage: /reply ID|last text: ID is the number shown before a message ([12]), or its id; last is the last message of your current channel"

// reply sends text as an answer to a message (/reply ID|last text), in
// the message's conversation: the server takes a reply there only.
func (s *session) reply(rest string) {
	ref, text := splitWord(rest)
	if ref == "" || text == "" {
		s.note(replyUsage)
		return
	}
	to, why := s.original(ref)
	if why != "" {
		s.note(why)
		return
	}
	if err := checkLength(text); err != nil {
		s.note(err.Error())
		return
	}
	req := textRequest(text, to.channel, to.with, newClientID())
	req.GetSend().ReplyTo = to.id
	s.request(req)
}

// original finds the message /reply names: "last", a number chatctl
// showed ("12" or "[12]"), or a message id. An id chatctl has not printed
// is taken as one of the current channel's: the server says if it is not.
// If there is none, it says why, as a note to the person.
func (s *session) original(ref string) (msgRef, string) {
	if ref == "last" {
		if s.current == "" {
			return msgRef{}, "You are in no channel: /reply ID text answers a message by the number shown before it."
		}
		m, ok := s.lastIn[conversation(s.current, "")]
		if !ok {
			return msgRef{}, fmt.Sprintf("No message in %s to reply to yet.", channelName(s.current))
		}
		return m, ""
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(ref, "["), "]")); err == nil {
		if m, ok := s.ids.byNum[n]; ok {
			return m, ""
		}
		if n > 0 && n < s.ids.next {
			return msgRef{}, fmt.Sprintf("Message [%d] is too far back: chatctl keeps the numbers of the last %d messages it showed; /history shows older ones again, with new numbers.", n, maxShortIDs)
		}
		return msgRef{}, fmt.Sprintf("No message [%d]: reply to a number shown before a message.", n)
	}
	if n, ok := s.ids.byID[ref]; ok {
		return s.ids.byNum[n], ""
	}
	if s.current == "" {
		return msgRef{}, fmt.Sprintf("You are in no channel, and chatctl has not shown message %q: /reply ID text answers a message by the number shown before it.", ref)
	}
	return msgRef{id: ref, channel: s.current}, ""
}
