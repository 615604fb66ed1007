package server_test

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
)

// TestConcurrentSessionsShareOneOrder has many users join, talk and leave
// (by logout or by dropping the connection) all at once, over TCP, and
// checks the ordering promise of chat.proto for every session: after its
// welcome it gets every event that concerns it exactly once, numbered with
// no gap; any two sessions get the events they share in the same order; and
// its welcome plus the joined/left deltas it got equals ListUsers
// once everything settles.
func TestConcurrentSessionsShareOneOrder(t *testing.T) {
	t.Parallel()
	checkSharedOrder(t, []*testServer{startServer(t, testConfig(nil))}) // defaults: 5 messages are within the burst
}

// TestClusterSessionsShareOneOrder is TestConcurrentSessionsShareOneOrder
// with the users spread over three nodes of a cluster: the order is the
// cluster's, and every node lists the same users in the same order.
func TestClusterSessionsShareOneOrder(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 3, testConfig(nil), testClusterConfig(nil))
	checkSharedOrder(t, nodes)
}

// checkSharedOrder is the body of the ordering tests: user i is on
// servers[i % len(servers)].
func checkSharedOrder(t *testing.T, servers []*testServer) {
	const users, msgs = 40, 5

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
		clients[i] = openStream(t, dial(t, servers[i%len(servers)].addr))
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
	for _, ts := range servers {
		waitFor(t, "ListUsers to list just the users who stayed", func() bool {
			online = listUsers(t, ts)
			slices.Sort(online)
			return slices.Equal(online, want)
		})
	}
	online = listUsers(t, servers[0]) // in join order
	for i, ts := range servers[1:] {
		if got := listUsers(t, ts); !slices.Equal(got, online) {
			t.Fatalf("ListUsers on server %d = %q; on server 1 %q", i+2, got, online)
		}
	}
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

// TestConcurrentChannelsAndPrivateMessages has many users enter and leave
// channels and send to several channels and to each other at once, and
// checks for every session, from its own stream alone, that it got each
// channel message only while in the channel, from a member, and private
// messages only to or from itself; then, across sessions, that each
// message reached exactly the members its sender saw in the channel when
// its echo came back (the one order makes that view exact), that any two
// sessions got what they share in the same order, and that the member
// counts the server lists agree with what the sessions saw.
func TestConcurrentChannelsAndPrivateMessages(t *testing.T) {
	t.Parallel()
	checkChannelsAndPrivate(t, []*testServer{startServer(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }))})
}

// TestClusterChannelsAndPrivateMessages is
// TestConcurrentChannelsAndPrivateMessages with the users spread over three
// nodes of a cluster.
func TestClusterChannelsAndPrivateMessages(t *testing.T) {
	t.Parallel()
	_, nodes := startCluster(t, 3, testConfig(func(c *server.Config) { c.MessageRate = 0 }), testClusterConfig(nil))
	checkChannelsAndPrivate(t, nodes)
}

// checkChannelsAndPrivate is the body of the channel ordering tests: user
// i is on servers[i % len(servers)].
func checkChannelsAndPrivate(t *testing.T, servers []*testServer) {
	const users, actions = 12, 40
	channels := []string{"a", "b", "c"}

	clients := make([]*client, users)
	for i := range clients {
		clients[i] = openStream(t, dial(t, servers[i%len(servers)].addr))
		clients[i].name = fmt.Sprintf("user%02d", i)
	}
	events := make([][]*chatv1.ChatResponse, users)
	finalIn := make([][]string, users) // the channels each session asked to be in at the end
	var joined, done, senders, readers sync.WaitGroup
	joined.Add(users)
	done.Add(users)
	fail := make(chan struct{}) // closed on the first error, so nobody waits for ever
	var failOnce sync.Once
	report := func(format string, args ...any) {
		t.Errorf(format, args...)
		failOnce.Do(func() { close(fail) })
	}
	const fence = "fence"
	for i, c := range clients {
		readers.Go(func() {
			joinedOnce, doneOnce := sync.OnceFunc(joined.Done), sync.OnceFunc(done.Done)
			defer joinedOnce()
			defer doneOnce()
			for {
				ev, err := c.recv(waitTimeout)
				if err != nil {
					report("%s: receiving: %s", c.name, describe(err))
					return
				}
				events[i] = append(events[i], ev)
				switch m := ev.GetMessage(); {
				case ev.GetWelcome() != nil:
					joinedOnce()
				case ev.GetRejected() != nil:
					report("%s: request refused: %v", c.name, ev)
				case m.GetSender() == c.name && m.GetClientId() == "done":
					doneOnce()
				case m.GetText() == fence:
					return
				}
			}
		})
		senders.Go(func() {
			send := func(req *chatv1.ChatRequest) bool {
				if err := c.stream.Send(req); err != nil {
					report("%s: Send: %v", c.name, err)
					return false
				}
				return true
			}
			if !send(joinReq(c.name)) {
				return
			}
			// Private messages go to users who are online: start once
			// everyone is.
			select {
			case <-waitGroupDone(&joined):
			case <-fail:
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			in := map[string]bool{} // the channels besides general this session is in
			for j := range actions {
				var req *chatv1.ChatRequest
				ch := channels[rng.IntN(len(channels))]
				switch r := rng.IntN(100); {
				case r < 25 && !in[ch]:
					in[ch] = true
					req = joinChannelReq(ch, "")
				case r < 40 && in[ch]:
					delete(in, ch)
					req = leaveChannelReq(ch, "")
				case r < 85:
					if !in[ch] {
						ch = "general"
					}
					req = sendReq(fmt.Sprintf("%s to #%s: %d", c.name, ch, j), ch, "", fmt.Sprint(j))
				default:
					to := clients[rng.IntN(users)].name
					req = sendReq(fmt.Sprintf("%s to %s: %d", c.name, to, j), "", to, fmt.Sprint(j))
				}
				if !send(req) {
					return
				}
			}
			send(sendReq("done", "", "", "done"))
			finalIn[i] = append(slices.Collect(maps.Keys(in)), "general")
		})
	}
	select {
	case <-waitGroupDone(&done):
	case <-fail:
	}
	senders.Wait()
	if !t.Failed() {
		// Everyone's last request is through: a last message to general
		// marks the end of every stream.
		clients[0].send(t, sendReq(fence, "", "", ""))
	}
	readers.Wait()
	if t.Failed() {
		return
	}

	views := make([]*sessionView, users)
	for i, c := range clients {
		v, err := applyEvents(c.name, events[i])
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		views[i] = v
		if got := slices.Collect(maps.Keys(v.channels)); !sameSet(got, finalIn[i]) {
			t.Errorf("%s ends in %q by its own stream; it asked to be in %q", c.name, sorted(got), sorted(finalIn[i]))
		}
	}
	// Who received each message.
	receivers := map[string][]string{}
	total := 0
	for _, v := range views {
		for _, m := range v.messages {
			receivers[m.key] = append(receivers[m.key], v.name)
			total++
		}
	}
	for _, v := range views {
		for _, m := range v.messages {
			if m.msg.GetSender() != v.name {
				continue
			}
			want, to := m.members, "#"+m.msg.GetChannel()
			if m.msg.GetChannel() == "" {
				want, to = slices.Compact(sorted([]string{v.name, m.msg.GetRecipient()})), m.msg.GetRecipient()
			}
			if got := receivers[m.key]; !sameSet(got, want) {
				t.Errorf("%s's message to %s reached %q; want %q", v.name, to, sorted(got), sorted(want))
			}
		}
	}
	for i := range views {
		for j := range i {
			if err := sameOrder(views[i], views[j]); err != nil {
				t.Error(err)
			}
		}
	}
	// The member counts listed are those the sessions saw.
	counts, _ := listChannels(t, servers[0])
	for _, ch := range append([]string{"general"}, channels...) {
		var in []string
		for _, v := range views {
			if _, ok := v.channels[ch]; ok {
				in = append(in, v.name)
			}
		}
		for _, v := range views {
			if members, ok := v.channels[ch]; ok && !sameSet(members, in) {
				t.Errorf("%s sees #%s's members as %q; want %q", v.name, ch, sorted(members), in)
			}
		}
		if int(counts[ch]) != len(in) {
			t.Errorf("ListChannels counts %d in #%s; the sessions say %d", counts[ch], ch, len(in))
		}
	}
	t.Logf("%d sessions; %d messages received", users, total)
}

// waitGroupDone returns a channel closed when wg's count is zero.
func waitGroupDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	return ch
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }
