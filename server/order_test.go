package server_test

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/proto"
)

// TestConcurrentSessionsShareOneOrder has many users join, talk and leave
// (by logout or by dropping the connection) all at once, over TCP, and
// checks the ordering promise of chat.proto for every session: after its
// welcome it gets every broadcast exactly once, in seq order, with no gap;
// the same seq is the same event for everyone; and its welcome snapshot plus
// the joined/left deltas it got equals ListUsers once everything settles.
func TestConcurrentSessionsShareOneOrder(t *testing.T) {
	t.Parallel()
	const users, msgs = 40, 5
	ts := startServer(t, testConfig(nil)) // defaults: 5 messages are within the burst

	type role int
	const (
		stay role = iota
		logout
		disconnect
	)
	roleOf := func(i int) role { return []role{stay, stay, logout, disconnect}[i%4] }
	reasonOf := map[role]chatv1.LeaveReason{
		logout:     chatv1.LeaveReason_LEAVE_REASON_LOGOUT,
		disconnect: chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED,
	}

	// Connections and streams are set up first, so that the joins, sends
	// and leaves below overlap as much as possible.
	clients := make([]*client, users)
	roles := map[string]role{}
	for i := range clients {
		clients[i] = openStream(t, dial(t, ts.addr))
		clients[i].name = fmt.Sprintf("user%02d", i)
		roles[clients[i].name] = roleOf(i)
	}

	events := make([][]*chatv1.ChatResponse, users)
	var acted, finished sync.WaitGroup // acted: done joining, sending and leaving
	start := make(chan struct{})
	fence := "fence"
	for i, c := range clients {
		acted.Add(1)
		finished.Go(func() {
			actedOnce := sync.OnceFunc(acted.Done)
			defer actedOnce()
			// run returns what went wrong; t.Fatal is only for the test's
			// own goroutine.
			run := func() error {
				<-start
				if err := c.stream.Send(joinReq(c.name)); err != nil {
					return err
				}
				for j := range msgs {
					if err := c.stream.Send(sayReq(fmt.Sprintf("%s says %d", c.name, j), fmt.Sprint(j))); err != nil {
						return err
					}
				}
				// recvUntil reads events until done says stop.
				recvUntil := func(done func(*chatv1.ChatResponse) bool) error {
					for {
						ev, err := c.recv(waitTimeout)
						if err != nil {
							return fmt.Errorf("receiving: %s", describe(err))
						}
						events[i] = append(events[i], ev)
						if done(ev) {
							return nil
						}
					}
				}
				echoes := 0
				if err := recvUntil(func(ev *chatv1.ChatResponse) bool {
					if r := ev.GetRejected(); r != nil {
						t.Errorf("%s: request rejected: %v", c.name, r)
					}
					if ev.GetMessage().GetSender() == c.name {
						echoes++
					}
					return echoes == msgs
				}); err != nil {
					return err
				}
				switch roleOf(i) {
				case logout:
					if err := c.stream.Send(leaveReq()); err != nil {
						return err
					}
					if err := recvUntil(func(ev *chatv1.ChatResponse) bool {
						return ev.GetUserLeft().GetUser().GetUsername() == c.name
					}); err != nil {
						return err
					}
					if ev, err := c.recv(waitTimeout); err != io.EOF {
						return fmt.Errorf("after own user_left got %v, %s; want the stream to end OK", ev, describe(err))
					}
				case disconnect:
					c.cancel()
				case stay:
					actedOnce()
					return recvUntil(func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == fence })
				}
				return nil
			}
			if err := run(); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		})
	}
	close(start)
	acted.Wait()

	// Once the server has seen every leave and disconnect, a last message
	// from a user who stayed marks the same point in every stream.
	var want []string
	for i, c := range clients {
		if roleOf(i) == stay {
			want = append(want, c.name)
		}
	}
	var online []string
	waitFor(t, "ListUsers to list just the users who stayed", func() bool {
		online = listUsers(t, ts)
		slices.Sort(online)
		return slices.Equal(online, want)
	})
	online = listUsers(t, ts) // in join order
	if err := clients[0].stream.Send(sayReq(fence, "")); err != nil {
		t.Fatal(err)
	}
	finished.Wait()
	if t.Failed() {
		return
	}

	bySeq := map[uint64]*chatv1.ChatResponse{}
	var fenceSeq uint64
	for i, c := range clients {
		evs := events[i]
		view, err := applyEvents(evs, bySeq)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, ev := range evs {
			if l := ev.GetUserLeft(); l != nil {
				if r := reasonOf[roles[l.GetUser().GetUsername()]]; l.GetReason() != r {
					t.Errorf("%s got %v; want reason %v", c.name, ev, r)
				}
			}
		}
		if roleOf(i) != stay {
			continue
		}
		if !slices.Equal(view, online) {
			t.Errorf("%s: welcome plus deltas gives %q; ListUsers gives %q", c.name, view, online)
		}
		last := evs[len(evs)-1]
		if fenceSeq == 0 {
			fenceSeq = last.GetSeq()
		} else if last.GetSeq() != fenceSeq {
			t.Errorf("%s: the fence has seq %d; for others %d", c.name, last.GetSeq(), fenceSeq)
		}
	}

	// Spelled out: from the latest welcome of those who stayed, their
	// streams are identical.
	var from uint64
	for i := range clients {
		if roleOf(i) == stay {
			from = max(from, events[i][0].GetSeq())
		}
	}
	var suffix []*chatv1.ChatResponse
	for i, c := range clients {
		if roleOf(i) != stay {
			continue
		}
		var mine []*chatv1.ChatResponse
		for _, ev := range events[i][1:] {
			if ev.GetSeq() > from {
				mine = append(mine, ev)
			}
		}
		if suffix == nil {
			suffix = mine
			continue
		}
		if !slices.EqualFunc(mine, suffix, func(a, b *chatv1.ChatResponse) bool { return proto.Equal(a, b) }) {
			t.Errorf("%s's events after seq %d differ from another's: %d vs %d events", c.name, from, len(mine), len(suffix))
		}
	}
	t.Logf("%d sessions, %d broadcast events; common suffix of %d events from seq %d", users, fenceSeq, len(suffix), from+1)
}
