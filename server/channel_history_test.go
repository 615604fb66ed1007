package server_test

// Tests of channel history over real TCP: what a session gets on entering
// a channel, before the channel's live messages (channel_history_hub_test.go
// has the same on a hub alone). Scrolling further back, with the History
// call, is history_test.go's.

import (
	"fmt"
	"slices"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
)

// A session entering a channel gets its last HistorySize messages, oldest
// first, marked as history and with the times they were sent, then the
// live ones. Private messages are no channel's history.
func TestHistoryKeepsTheLastMessages(t *testing.T) {
	t.Parallel()
	const historySize = 5
	for _, sent := range []int{3, historySize, historySize + 3} {
		t.Run(fmt.Sprintf("%d sent", sent), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(func(c *server.Config) {
				c.HistorySize = historySize
				c.MessageRate = 0
			}))
			alice := join(t, ts, "alice")
			bob := join(t, ts, "bob")
			expectJoined(t, "alice", alice.next(t), "bob", false)
			alice.joinChannel(t, "room", "room")

			var inRoom, inGeneral []*chatv1.ChatResponse
			for i := range sent {
				alice.send(t, sendReq(fmt.Sprint("room ", i), "room", "", fmt.Sprint("r", i)))
				inRoom = append(inRoom, alice.next(t))
				alice.say(t, fmt.Sprint("general ", i), fmt.Sprint("g", i))
				inGeneral = append(inGeneral, alice.next(t))
				expectMessage(t, "bob", bob.next(t), "alice", fmt.Sprint("general ", i), fmt.Sprint("g", i))
				alice.send(t, sendReq("private", "", "bob", ""))
				alice.next(t)
				bob.next(t)
			}
			kept := min(sent, historySize)

			entered := bob.joinChannel(t, "room", "room")
			checkHistory(t, "bob's room", entered, inRoom[sent-kept:])
			expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
			carol := join(t, ts, "carol")
			checkHistory(t, "carol's general", carol.general, inGeneral[sent-kept:])
			for _, c := range []*client{alice, bob} {
				expectJoined(t, c.name, c.next(t), "carol", false)
			}

			// Then live messages, not marked.
			before := bob.lastSeq
			alice.send(t, sendReq("live", "room", "", ""))
			alice.next(t)
			ev := bob.next(t)
			expectChannelMessage(t, "bob", ev, "room", "alice", "live")
			if ev.GetSeq() != before+1 {
				t.Errorf("bob's live message has seq %d; want %d", ev.GetSeq(), before+1)
			}
		})
	}
}

// checkHistory checks that a channel catch-up carries want, the senders'
// echoes of the channel's last messages: in order, numbered right after the
// channel_joined that counts them, marked as history, otherwise unchanged.
func checkHistory(t *testing.T, what string, entered *channelCatchUp, want []*chatv1.ChatResponse) {
	t.Helper()
	if n := entered.joined.GetChannelJoined().GetHistoryCount(); int(n) != len(want) {
		t.Errorf("%s: history_count %d; want %d", what, n, len(want))
	}
	if len(entered.history) != len(want) {
		t.Fatalf("%s: %d history messages; want %d", what, len(entered.history), len(want))
	}
	for i, h := range entered.history {
		if want := entered.joined.GetSeq() + uint64(i) + 1; h.GetSeq() != want {
			t.Errorf("%s: history message %d has seq %d; want %d", what, i, h.GetSeq(), want)
		}
		if !h.GetHistory() || !proto.Equal(h.GetMessage(), want[i].GetMessage()) || !proto.Equal(h.GetTime(), want[i].GetTime()) {
			t.Errorf("%s: history message %d = %v; want %v marked as history, with its time", what, i, h, want[i])
		}
	}
}

// A session that enters a channel while messages are being sent to it gets
// each of them exactly once, from history or live, with none missing
// between the two: its history and live messages together are a run of the
// channel's messages with no gap, ending at the last one, and starting at
// the first one or with a full history.
func TestHistoryMeetsLiveMessagesExactly(t *testing.T) {
	t.Parallel()
	const sent, joiners = 300, 6
	for _, historySize := range []int{sent, 10} {
		t.Run(fmt.Sprintf("history %d", historySize), func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testConfig(func(c *server.Config) {
				c.HistorySize = historySize
				c.MessageRate = 0
			}))
			alice := join(t, ts, "alice")
			alice.joinChannel(t, "room", "room")
			cs := make([]*client, joiners)
			for i := range cs {
				cs[i] = join(t, ts, fmt.Sprint("joiner", i))
			}
			for _, c := range cs {
				// Presence: the joins after each one's own.
				for _, other := range cs {
					if other.name > c.name {
						expectJoined(t, c.name, c.next(t), other.name, false)
					}
				}
			}
			for range cs {
				alice.next(t) // user_joined
			}

			// alice sends one message at a time, each when her previous
			// one is back, and the joiners enter the channel one by one
			// as she goes.
			echoed := make(chan string, sent)
			sendErr := make(chan error, 1)
			go func() {
				defer close(echoed)
				for i := range sent {
					if err := alice.stream.Send(sendReq(fmt.Sprint("m", i), "room", "", fmt.Sprint(i))); err != nil {
						sendErr <- err
						return
					}
					for { // skip the joiners' channel_joined
						ev, err := alice.recv(waitTimeout)
						if err != nil {
							sendErr <- fmt.Errorf("alice: %s", describe(err))
							return
						}
						if m := ev.GetMessage(); m != nil {
							echoed <- m.GetId()
							break
						}
					}
				}
				sendErr <- nil
			}()
			var ids []string
			for i, c := range cs {
				for len(ids) < (i+1)*sent/(joiners+1) {
					id, ok := <-echoed
					if !ok {
						t.Fatal(<-sendErr)
					}
					ids = append(ids, id)
				}
				c.send(t, joinChannelReq("room", ""))
			}
			for id := range echoed {
				ids = append(ids, id)
			}
			if err := <-sendErr; err != nil {
				t.Fatal(err)
			}

			for _, c := range cs {
				entered := c.expectChannelCatchUp(t, "room")
				var got []string
				for _, h := range entered.history {
					got = append(got, h.GetMessage().GetId())
				}
				for len(got) == 0 || got[len(got)-1] != ids[sent-1] {
					ev := c.next(t)
					if cj := ev.GetChannelJoined(); cj != nil { // a later joiner
						expectChannelJoined(t, c.name, ev, "room", cj.GetUser().GetUsername())
						continue
					}
					if ev.GetHistory() || ev.GetMessage().GetChannel() != "room" {
						t.Fatalf("%s: got %v; want a live message of room", c.name, ev)
					}
					got = append(got, ev.GetMessage().GetId())
				}
				start := slices.Index(ids, got[0])
				if start < 0 || !slices.Equal(got, ids[start:]) {
					t.Fatalf("%s: history (%d) and live messages are not a run of the channel's messages ending with the last: got %q", c.name, len(entered.history), got)
				}
				if start > 0 && len(entered.history) != historySize {
					t.Errorf("%s: %d history messages, then live from message %d; want a full history of %d before", c.name, len(entered.history), start+len(entered.history), historySize)
				}
				t.Logf("%s: %d history, %d live", c.name, len(entered.history), len(got)-len(entered.history))
			}
		})
	}
}

// With HistorySize 0 a channel keeps nothing, and entering it gives a
// channel_joined with no history.
func TestHistorySizeZero(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testConfig(func(c *server.Config) { c.HistorySize = 0 }))
	alice := join(t, ts, "alice")
	alice.joinChannel(t, "room", "room")
	for i := range 3 {
		alice.say(t, fmt.Sprint("general ", i), "")
		alice.next(t)
		alice.send(t, sendReq(fmt.Sprint("room ", i), "room", "", ""))
		alice.next(t)
	}
	bob := join(t, ts, "bob")
	if n := bob.general.joined.GetChannelJoined().GetHistoryCount(); n != 0 {
		t.Errorf("bob's general history_count = %d; want 0", n)
	}
	if entered := bob.joinChannel(t, "room", "room"); entered.joined.GetChannelJoined().GetHistoryCount() != 0 {
		t.Errorf("bob's room catch-up %v; want history_count 0", entered.joined)
	}
	alice.send(t, sendReq("live", "room", "", ""))
	expectChannelMessage(t, "bob", bob.next(t), "room", "alice", "live")
}

// Entering a channel brings its whole history at once, however much more
// than the queue holds: the session did not fall behind by asking.
func TestHistoryLargerThanQueue(t *testing.T) {
	t.Parallel()
	const queueSize, historySize = 4, 10
	ts := startServer(t, testConfig(func(c *server.Config) {
		c.QueueSize = queueSize
		c.HistorySize = historySize
		c.MessageRate = 0
	}))
	alice := join(t, ts, "alice")
	alice.joinChannel(t, "room", "room")
	for i := range historySize {
		for _, ch := range []string{"general", "room"} {
			alice.send(t, sendReq(fmt.Sprint(ch, " ", i), ch, "", ""))
			alice.next(t)
		}
	}
	bob := join(t, ts, "bob")
	if len(bob.general.history) != historySize {
		t.Errorf("bob's general history has %d messages; want %d", len(bob.general.history), historySize)
	}
	if entered := bob.joinChannel(t, "room", "room"); len(entered.history) != historySize {
		t.Errorf("bob's room history has %d messages; want %d", len(entered.history), historySize)
	}
	expectJoined(t, "alice", alice.next(t), "bob", false)
	expectChannelJoined(t, "alice", alice.next(t), "room", "bob")
	alice.mark(t, "mark")
	bob.expectMark(t, "alice", "mark")
}
