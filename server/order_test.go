package server_test

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// TestConcurrentSessionsShareOneOrder has many users join, talk and leave
// (by logout or by dropping the connection) all at once, over TCP, and
// checks the ordering promise of chat.proto for every session: after its
// welcome it gets every event that concerns it exactly once, numbered with
// no gap; any two sessions get the events they share in the same order; and
// its welcome snapshot plus the joined/left deltas it got equals ListUsers
// once everything settles.
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

	views := make([]*sessionView, users)
	for i, c := range clients {
		evs := events[i]
		view, err := applyEvents(c.name, evs)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		views[i] = view
		for _, ev := range evs {
			if l := ev.GetUserLeft(); l != nil {
				if r := reasonOf[roles[l.GetUser().GetUsername()]]; l.GetReason() != r {
					t.Errorf("%s got %v; want reason %v", c.name, ev, r)
				}
			}
		}
		if roleOf(i) == stay && !slices.Equal(view.online, online) {
			t.Errorf("%s: welcome plus deltas gives %q; ListUsers gives %q", c.name, view.online, online)
		}
	}
	if t.Failed() {
		return
	}
	// Every two sessions got the events they share in the same order.
	for i := range views {
		for j := range i {
			if err := sameOrder(views[i], views[j]); err != nil {
				t.Error(err)
			}
		}
	}

	// Spelled out: from the point where every user who stayed is online
	// (the last one's join), their streams are identical, up to the
	// fence.
	var suffix []*chatv1.ChatResponse
	var from string
	for i, c := range clients {
		if roleOf(i) != stay {
			continue
		}
		mine := afterAllOnline(views[i], events[i][0], want)
		if len(mine) == 0 {
			t.Fatalf("%s never saw everyone who stayed online", c.name)
		}
		if suffix == nil {
			suffix = mine
			from = c.name
			continue
		}
		if !slices.EqualFunc(mine, suffix, equalButSeq) {
			t.Errorf("%s's events once everyone who stayed is online differ from %s's: %d vs %d events", c.name, from, len(mine), len(suffix))
		}
	}
	if last := suffix[len(suffix)-1]; last.GetMessage().GetText() != fence {
		t.Errorf("last event %v; want the fence", last)
	}
	t.Logf("%d sessions; a common suffix of %d events", users, len(suffix))
}

// afterAllOnline returns the shared live events of view from the first
// point where every user of who is online, given its welcome.
func afterAllOnline(view *sessionView, welcome *chatv1.ChatResponse, who []string) []*chatv1.ChatResponse {
	online := map[string]bool{}
	for _, u := range welcome.GetWelcome().GetOnlineUsers() {
		online[u.GetUsername()] = true
	}
	all := func() bool {
		for _, u := range who {
			if !online[u] {
				return false
			}
		}
		return true
	}
	for i, ev := range view.live {
		if all() {
			return view.live[i:]
		}
		if u := ev.GetUserJoined().GetUser(); u != nil {
			online[u.GetUsername()] = true
		}
	}
	return nil
}
