package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// nodeTimeout is the cluster tests' --node-timeout: short, so that a
// killed node is found within a test's patience, but longer than a node
// takes to get back to a restarted NATS on a busy machine (reconnect wait
// and jitter, then its heartbeat): else it is given up for dead.
const nodeTimeout = 4 * time.Second

// natsBin is the nats-server of go.mod's tool directive, as `go tool -n`
// finds (and builds) it: the tests run it as a process of its own, as an
// operator would.
var natsBin = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "tool", "-n", "nats-server").Output()
	return strings.TrimSpace(string(out)), err
})

// natsProc is a nats-server with JetStream, on a port and a store that
// stay the same across restarts.
type natsProc struct {
	*proc
	addr, dir string
}

func startNATS(t *testing.T) *natsProc {
	t.Helper()
	n := &natsProc{addr: freeAddrs(t, 1)[0], dir: t.TempDir()}
	n.restart(t)
	return n
}

func (n *natsProc) url() string { return "nats://" + n.addr }

// restart starts nats-server (again).
func (n *natsProc) restart(t *testing.T) {
	t.Helper()
	bin, err := natsBin()
	if err != nil {
		t.Fatalf("go tool -n nats-server: %v", err)
	}
	host, port, _ := net.SplitHostPort(n.addr)
	p := start(t, bin, "-js", "-sd", n.dir, "-a", host, "-p", port)
	t.Cleanup(func() { n.stop(t) })
	n.proc = p
	p.expectIn(t, p.stderr, "stderr", `Server is ready`)
}

// stop stops nats-server as an operator's service manager would.
func (n *natsProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	n.wait(t)
}

// startNode starts a chatd node of the cluster on nats, serving gRPC on
// addr, and waits until its health says SERVING (it has caught up with the
// cluster's log).
func startNode(t *testing.T, nats *natsProc, name, addr string, extra ...string) *chatd {
	t.Helper()
	args := append([]string{"--grpc-addr", addr, "--http-addr", "", "--nats-url", nats.url(), "--node-name", name,
		"--node-timeout", nodeTimeout.String(), "--message-rate", "0", "--max-sessions-per-ip", "0", "--join-rate-per-ip", "0"}, extra...)
	p := start(t, chatdBin, args...)
	t.Cleanup(func() { p.terminate(t) })
	p.expect(t, `^chatd: gRPC listening on `)
	waitHealth(t, addr, healthpb.HealthCheckResponse_SERVING)
	return &chatd{proc: p, addr: addr}
}

// waitHealth waits until the chatd at addr says want of chat.v1.ChatService.
func waitHealth(t *testing.T, addr string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	conn := dialGRPC(t, addr)
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "chat.v1.ChatService"})
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd at %s not %v within %s (%v, %v)", addr, want, waitTimeout, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// member is a user's session as a test's client keeps it: across streams,
// on whatever node.
type member struct {
	name    string
	auth    string // a sign-in token, for a chatd that asks for one
	device  string // a device key: joins as another device of the user
	token   string
	lastSeq uint64
	stream  grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	cancel  context.CancelFunc
	events  chan *chatv1.ChatResponse
	ended   chan error // the stream's end, once events is closed
}

// connect opens a stream to addr and joins, or resumes if the member has a
// token, and returns the welcome.
func (m *member) connect(t *testing.T, addr string) *chatv1.ChatResponse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := chatv1.NewChatServiceClient(dialGRPC(t, addr)).Chat(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m.stream, m.cancel = stream, cancel
	t.Cleanup(cancel)
	if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: m.name, ResumeToken: m.token, LastSeq: m.lastSeq, AuthToken: m.auth, DeviceKey: m.device}}}); err != nil {
		t.Fatal(err)
	}
	m.events, m.ended = make(chan *chatv1.ChatResponse, 4096), make(chan error, 1)
	events, ended := m.events, m.ended
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(events)
				ended <- err
				return
			}
			events <- ev
		}
	}()
	w := m.next(t)
	if w.GetWelcome() == nil {
		t.Fatalf("%s: first event %v; want a welcome", m.name, w)
	}
	m.token = w.GetWelcome().GetResumeToken()
	return w
}

// next returns the next event of the member's stream.
func (m *member) next(t *testing.T) *chatv1.ChatResponse {
	t.Helper()
	select {
	case ev, ok := <-m.events:
		if !ok {
			t.Fatalf("%s: stream ended (%v); want an event", m.name, <-m.ended)
		}
		if ev.GetSeq() != 0 {
			if m.lastSeq != 0 && ev.GetSeq() != m.lastSeq+1 && ev.GetWelcome() == nil {
				t.Errorf("%s: seq %d after %d: a gap or a repeat", m.name, ev.GetSeq(), m.lastSeq)
			}
			m.lastSeq = ev.GetSeq()
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no event within %s", m.name, waitTimeout)
		return nil
	}
}

// say sends a message to general.
func (m *member) say(t *testing.T, text string) {
	t.Helper()
	if err := m.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text}}}); err != nil {
		t.Fatalf("%s: send: %v", m.name, err)
	}
}

// until reads events until one satisfies done, and returns them all.
func (m *member) until(t *testing.T, done func(*chatv1.ChatResponse) bool) []*chatv1.ChatResponse {
	t.Helper()
	var evs []*chatv1.ChatResponse
	for {
		ev := m.next(t)
		evs = append(evs, ev)
		if done(ev) {
			return evs
		}
	}
}

func listUsersOn(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := chatv1.NewChatServiceClient(dialGRPC(t, addr)).ListUsers(context.Background(), &chatv1.ListUsersRequest{})
	if err != nil {
		t.Fatalf("ListUsers on %s: %v", addr, err)
	}
	var names []string
	for _, u := range resp.GetUsers() {
		names = append(names, u.GetUsername())
	}
	return names
}

// TestClusterOfThreeNodes runs three chatd processes on one nats-server:
// users on different nodes see each other and talk, every node lists
// them all in one order, and a name raced for on two nodes goes to exactly
// one joiner every time.
func TestClusterOfThreeNodes(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 3)
	for i, a := range addrs {
		startNode(t, nats, fmt.Sprintf("n%d", i+1), a)
	}
	users := []*member{{name: "alice"}, {name: "bob"}, {name: "carol"}}
	for i, u := range users {
		u.connect(t, addrs[i])
		for _, earlier := range users[:i] {
			if ev := earlier.next(t); ev.GetUserJoined().GetUser().GetUsername() != u.name {
				t.Fatalf("%s got %v; want %s joined", earlier.name, ev, u.name)
			}
		}
		u.next(t) // general's snapshot
	}
	for _, a := range addrs {
		if got := listUsersOn(t, a); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
			t.Errorf("ListUsers on %s = %q; want [alice bob carol]", a, got)
		}
	}
	users[2].say(t, "from n3")
	for _, u := range users {
		if ev := u.next(t); ev.GetMessage().GetText() != "from n3" {
			t.Errorf("%s got %v; want carol's message", u.name, ev)
		}
	}

	for round := range 10 {
		names := []string{fmt.Sprintf("racer%d", round), fmt.Sprintf("RACER%d", round)}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				stream, err := chatv1.NewChatServiceClient(dialGRPC(t, addrs[i])).Chat(ctx)
				if err == nil {
					err = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: names[i]}}})
				}
				if err == nil {
					_, err = stream.Recv()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch status.Code(err) {
			case codes.OK:
				won++
			case codes.AlreadyExists:
			default:
				t.Errorf("round %d: %s on node %d: %v; want a welcome or ALREADY_EXISTS", round, names[i], i+1, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d of %q and %q joined; want exactly one", round, won, names[0], names[1])
		}
	}
}

// TestClusterRollingRestart SIGTERMs one node of three while its users and
// others talk: its users reconnect to another node and resume complete;
// every user gets every message exactly once, in one order, and nobody
// sees anyone leave or join. The users of the node that restarts each have
// a second device on another node, which goes on through it all: every
// device gets every message too.
func TestClusterRollingRestart(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 3)
	nodes := make([]*chatd, 3)
	for i, a := range addrs {
		nodes[i] = startNode(t, nats, fmt.Sprintf("n%d", i+1), a)
	}
	const perNode = 2
	var users []*member
	keys := map[string]string{}
	for i := range 3 * perNode {
		u := &member{name: fmt.Sprintf("user%d", i)}
		keys[u.name] = u.connect(t, addrs[i%3]).GetWelcome().GetDeviceKey()
		users = append(users, u)
	}
	// Everyone reads up to the last join.
	last := users[len(users)-1].name
	for _, u := range users {
		u.until(t, func(ev *chatv1.ChatResponse) bool {
			return ev.GetUserJoined().GetUser().GetUsername() == last || u.name == last && ev.GetChannelJoined() != nil
		})
	}
	receivers := slices.Clone(users)
	for i, u := range users {
		if i%3 != 0 {
			continue
		}
		d := &member{name: u.name, device: keys[u.name]}
		d.connect(t, addrs[1])
		d.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetChannelJoined() != nil })
		receivers = append(receivers, d)
	}

	// users on node 2 and 3 send, one message each in turn, while node 1
	// restarts.
	const rounds = 20
	var sent []string
	var received sync.Map // name: []string
	var wg sync.WaitGroup
	for i, u := range receivers {
		wg.Go(func() {
			var got []string
			for len(got) < rounds*2*perNode {
				select {
				case ev, ok := <-u.events:
					if !ok {
						err := <-u.ended
						if status.Code(err) != codes.Unavailable {
							t.Errorf("%s: stream ended with %v; want UNAVAILABLE from the stopping node", u.name, err)
							return
						}
						// As chatctl and the page do: the next node, resumed.
						w := u.connect(t, addrs[1])
						if r := w.GetWelcome().GetRecovery(); r != chatv1.Recovery_RECOVERY_COMPLETE {
							t.Errorf("%s: resumed with %v; want RECOVERY_COMPLETE", u.name, r)
							return
						}
						continue
					}
					if ev.GetSeq() != 0 {
						if ev.GetSeq() != u.lastSeq+1 {
							t.Errorf("%s: seq %d after %d", u.name, ev.GetSeq(), u.lastSeq)
						}
						u.lastSeq = ev.GetSeq()
					}
					switch {
					case ev.GetMessage() != nil:
						got = append(got, ev.GetMessage().GetText())
					case ev.GetUserLeft() != nil || ev.GetUserJoined() != nil:
						t.Errorf("%s saw %v: a flap", u.name, ev)
					}
				case <-time.After(waitTimeout):
					t.Errorf("%s: got %d of %d messages", u.name, len(got), rounds*2*perNode)
					return
				}
			}
			received.Store(fmt.Sprint(u.name, " on device ", i), got)
		})
	}
	for r := range rounds {
		if r == rounds/4 {
			nodes[0].terminate(t)
		}
		for _, u := range users {
			if slices.Index(users, u)%3 == 0 {
				continue // on node 1
			}
			text := fmt.Sprintf("%s %d", u.name, r)
			u.say(t, text)
			sent = append(sent, text)
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	var first []string
	received.Range(func(k, v any) bool {
		got := v.([]string)
		if first == nil {
			first = got
		}
		if !slices.Equal(got, first) {
			t.Errorf("%s got the messages in another order, or not all: %d vs %d", k, len(got), len(first))
		}
		return true
	})
	slices.Sort(first)
	slices.Sort(sent)
	if !slices.Equal(first, sent) {
		t.Errorf("users got %d messages; %d were sent (lost or repeated)", len(first), len(sent))
	}
}

// TestClusterNodeKilled SIGKILLs a node: within --node-timeout the others
// see its user leave, disconnected; the user resumes on another node with
// nothing missed.
func TestClusterNodeKilled(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 2)
	n1 := startNode(t, nats, "n1", addrs[0])
	startNode(t, nats, "n2", addrs[1])
	alice, bob := &member{name: "alice"}, &member{name: "bob"}
	alice.connect(t, addrs[0])
	alice.next(t)
	bob.connect(t, addrs[1])
	bob.next(t)
	alice.next(t) // bob joined

	killed := time.Now()
	n1.kill(t)
	ev := bob.next(t)
	if l := ev.GetUserLeft(); l.GetUser().GetUsername() != "alice" || l.GetReason() != chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED {
		t.Fatalf("bob got %v; want alice left, disconnected", ev)
	}
	if took := time.Since(killed); took > nodeTimeout+time.Second {
		t.Errorf("bob saw alice leave %s after her node was killed; want within --node-timeout %s (and a second for a busy machine)", took, nodeTimeout)
	}
	bob.say(t, "still there?")
	bob.next(t)
	<-alice.ended
	if w := alice.connect(t, addrs[1]); w.GetWelcome().GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Errorf("alice resumed with %v; want RECOVERY_COMPLETE", w)
	}
	if ev := alice.next(t); ev.GetMessage().GetText() != "still there?" {
		t.Errorf("alice got %v; want bob's message, missed while away", ev)
	}
}

// TestClusterNATSRestart stops and restarts nats-server under traffic: the
// nodes keep their streams, refuse messages with UNAVAILABLE meanwhile,
// and carry on afterwards with nothing lost or repeated.
func TestClusterNATSRestart(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 2)
	startNode(t, nats, "n1", addrs[0])
	startNode(t, nats, "n2", addrs[1])
	alice, bob := &member{name: "alice"}, &member{name: "bob"}
	alice.connect(t, addrs[0])
	alice.next(t)
	bob.connect(t, addrs[1])
	bob.next(t)
	alice.next(t)
	alice.say(t, "before")
	alice.next(t)
	bob.next(t)

	nats.stop(t)
	waitHealth(t, addrs[0], healthpb.HealthCheckResponse_NOT_SERVING)
	alice.say(t, "during")
	if ev := alice.next(t); codes.Code(ev.GetRejected().GetCode()) != codes.Unavailable {
		t.Errorf("alice's message while NATS is down got %v; want it rejected UNAVAILABLE", ev)
	}
	nats.restart(t)
	waitHealth(t, addrs[0], healthpb.HealthCheckResponse_SERVING)
	deadline := time.Now().Add(waitTimeout)
	for {
		alice.say(t, "after")
		ev := alice.next(t)
		if ev.GetMessage().GetText() == "after" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's messages still refused %s after NATS restarted: %v", waitTimeout, ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ev := bob.next(t); ev.GetMessage().GetText() != "after" {
		t.Errorf("bob got %v; want alice's message after NATS came back, and nothing else", ev)
	}
}

// TestClusterHistoryAfterRestart stops every node, then starts a new one:
// the channels' history is still there, kept by NATS.
func TestClusterHistoryAfterRestart(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 2)
	n1 := startNode(t, nats, "n1", addrs[0], "--snapshot-interval", "200ms")
	alice := &member{name: "alice"}
	alice.connect(t, addrs[0])
	alice.next(t)
	for i := range 3 {
		alice.say(t, fmt.Sprint("message ", i))
		alice.next(t)
	}
	alice.cancel()
	n1.terminate(t)

	startNode(t, nats, "n2", addrs[1])
	carol := &member{name: "carol"}
	carol.connect(t, addrs[1])
	joined := carol.next(t).GetChannelJoined()
	var history []string
	for range joined.GetHistoryCount() {
		history = append(history, carol.next(t).GetMessage().GetText())
	}
	if want := []string{"message 0", "message 1", "message 2"}; !slices.Equal(history, want) {
		t.Errorf("carol, on a node started after every other stopped, got general's history %q; want %q", history, want)
	}
}

// TestChatctlRollingRestart is a rolling restart as people see it in
// chatctl: alice's node is sent SIGTERM while she and bob talk; chatctl
// moves to another node and resumes with nothing missed, and bob never
// sees her leave.
func TestChatctlRollingRestart(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 3)
	byAddr := map[string]*chatd{}
	for i, a := range addrs {
		byAddr[a] = startNode(t, nats, fmt.Sprintf("n%d", i+1), a)
	}
	alice := chatctl(t, "join", "--name", "alice", "--server", addrs[0]+","+addrs[1])
	here := strings.TrimPrefix(alice.expect(t, `^chatctl: connected to `), "chatctl: connected to ")
	alice.expect(t, clock+`\* you joined as alice$`)
	bob := chatctl(t, "join", "--name", "bob", "--server", addrs[2])
	bob.expect(t, clock+`\* you joined as bob$`)
	alice.expect(t, clock+`\* bob joined$`)

	byAddr[here].terminate(t)
	bob.send(t, "are you still there?")
	alice.expect(t, `^chatctl: connected to `)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.expect(t, clock+`#general bob: are you still there\?$`)
	alice.send(t, "yes, on another node")
	bob.expect(t, clock+`#general bob: are you still there\?$`)
	bob.expect(t, clock+`#general alice: yes, on another node$`)
	if out := bob.stdout.String(); strings.Contains(out, "* alice left") || strings.Contains(out, "* alice reconnected") || strings.Contains(out, "* alice joined") {
		t.Errorf("bob saw alice leave or come back during the restart:\n%s", out)
	}
	endInput(t, alice, bob)
}

// TestClusterOneOrderUnderChurn has users join, talk and leave (by logout
// or by dropping the connection) all at once on three chatd processes,
// while an observer on each node watches: the three observers, online
// throughout, must see the very same events in the very same order.
func TestClusterOneOrderUnderChurn(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	addrs := freeAddrs(t, 3)
	for i, a := range addrs {
		startNode(t, nats, fmt.Sprintf("n%d", i+1), a)
	}
	observers := make([]*member, 3)
	for i := range observers {
		observers[i] = &member{name: fmt.Sprintf("observer%d", i)}
		observers[i].connect(t, addrs[i])
	}
	const churners = 15
	var wg sync.WaitGroup
	for i := range churners {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := chatv1.NewChatServiceClient(dialGRPC(t, addrs[i%3])).Chat(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			name := fmt.Sprintf("churner%02d", i)
			send := func(req *chatv1.ChatRequest) bool {
				if err := stream.Send(req); err != nil {
					t.Errorf("%s: %v", name, err)
					return false
				}
				return true
			}
			if !send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}}) {
				return
			}
			for j := range 3 {
				if !send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: fmt.Sprintf("%s %d", name, j)}}}) {
					return
				}
			}
			// Wait for its own last message, then leave one way or the other.
			for {
				ev, err := stream.Recv()
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				if ev.GetMessage().GetText() == name+" 2" {
					break
				}
			}
			if i%2 == 0 {
				send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
				for {
					if _, err := stream.Recv(); err != nil {
						return
					}
				}
			}
			// cancel, deferred: a dropped connection
		})
	}
	wg.Wait()
	// A dropped connection's leave is appended in the background: the
	// fence goes once every node lists the observers alone, so that it
	// follows every leave in the log.
	want := []string{"observer0", "observer1", "observer2"}
	deadline := time.Now().Add(waitTimeout)
	for _, a := range addrs {
		for got := listUsersOn(t, a); !slices.Equal(got, want); got = listUsersOn(t, a) {
			if time.Now().After(deadline) {
				t.Fatalf("ListUsers on %s = %q %s after the churn; want %q", a, got, waitTimeout, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	observers[0].say(t, "fence")
	var first []string
	for i, o := range observers {
		var seen []string
		for {
			ev := o.next(t)
			var s string
			switch {
			case ev.GetUserJoined() != nil:
				s = "joined " + ev.GetUserJoined().GetUser().GetUsername()
			case ev.GetUserLeft() != nil:
				s = fmt.Sprintf("left %s %v", ev.GetUserLeft().GetUser().GetUsername(), ev.GetUserLeft().GetReason())
			case ev.GetMessage() != nil:
				s = ev.GetMessage().GetSender() + ": " + ev.GetMessage().GetText()
			default:
				continue
			}
			if strings.HasPrefix(s, "joined observer") {
				continue // the observers' own joins, seen by those before them only
			}
			seen = append(seen, s)
			if s == "observer0: fence" {
				break
			}
		}
		if want := churners*(2+3) + 1; len(seen) != want {
			t.Errorf("observer %d saw %d events; want %d (a join, three messages and a leave per churner, and the fence)", i, len(seen), want)
		}
		if i == 0 {
			first = seen
		} else if !slices.Equal(seen, first) {
			t.Errorf("observer %d (node %d) saw the events in another order than observer 0:\n%s\nvs\n%s", i, i+1, strings.Join(seen, "\n"), strings.Join(first, "\n"))
		}
	}
}
