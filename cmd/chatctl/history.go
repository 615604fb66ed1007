package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/status"
)

// maxHistoryLines bounds /history N: scroll-back is for reading, and a
// terminal scrolls no further.
const maxHistoryLines = 1000

// history shows the last messages of a conversation before the session's
// own (/history [#channel|NAME] [N]): the current channel's by default,
// another channel's, or the private messages with NAME; N (20 by
// default) at most. It asks the server's History, a page of up to 100 at a
// time, on the session's connection, and waits for the answer: a page
// comes from the server's memory or a few reads of its disk.
func (s *session) history(args []string) {
	const usage = "usage: /history [#channel|NAME] [N]: the last N (20) messages of the current channel, another channel, or your private messages with NAME"
	n := 20
	var channel, with string
	for _, a := range args {
		if v, err := strconv.Atoi(a); err == nil {
			if v < 1 || v > maxHistoryLines {
				s.note(fmt.Sprintf("/history shows 1 to %d messages", maxHistoryLines))
				return
			}
			n = v
			continue
		}
		if channel != "" || with != "" {
			s.note(usage)
			return
		}
		if strings.HasPrefix(a, "#") {
			channel = a
		} else {
			with = a
		}
	}
	if channel == "" && with == "" {
		if channel = s.current; channel == "" {
			s.note("you are in no channel: /history #channel or /history NAME")
			return
		}
	}
	if s.link == nil {
		s.note("not connected: try /history again once reconnected")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	cli := chatv1.NewChatServiceClient(s.link.conn)
	req := &chatv1.HistoryRequest{Channel: strings.TrimPrefix(channel, "#"), With: with, ResumeToken: s.token}
	var page []*chatv1.ChatResponse
	for len(page) < n {
		req.Limit = uint32(min(n-len(page), 100))
		resp, err := cli.History(ctx, req)
		if err != nil {
			s.note("cannot show the history: " + sanitize(status.Convert(err).Message(), ""))
			return
		}
		page = append(resp.GetMessages(), page...)
		if !resp.GetMore() || len(resp.GetMessages()) == 0 {
			break
		}
		req.BeforeId = resp.GetMessages()[0].GetMessage().GetId()
	}
	what := channelName(req.Channel)
	if with != "" {
		what = "your messages with " + sanitize(with, "")
	}
	if len(page) == 0 {
		s.note("no messages in " + what)
		return
	}
	s.note(fmt.Sprintf("-- the last %s of %s --", plural(len(page), "message"), what))
	for _, ev := range page {
		if err := s.show(ev); err != nil {
			return
		}
	}
	s.note("-- end of history --")
	// The last page is the newest: what it shows is read, as everything
	// printed is. A new device learns of unread private messages this
	// way (they are not replayed on the stream). A channel the session is
	// not in has no read state to mark.
	if with != "" || s.channel(req.Channel) != nil {
		s.printedMessage(page[len(page)-1])
	}
}
