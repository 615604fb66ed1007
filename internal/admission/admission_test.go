package admission_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatd/chatd/internal/admission"
	"go.uber.org/goleak"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := admission.Key(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("Key(%s) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	l := admission.New(admission.Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}}, discard)
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		// Anyone may write the header: only a trusted proxy is believed.
		{"198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"10.1.2.3", nil, "10.1.2.3"},
		{"10.1.2.3", []string{"203.0.113.9"}, "203.0.113.9"},
		// The client forged a first hop; the proxy appended the real one.
		{"10.1.2.3", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		// Two proxies we trust, one after the other.
		{"10.1.2.3", []string{"203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"10.1.2.3", []string{"203.0.113.9", "10.9.9.9"}, "203.0.113.9"},
		// Only trusted hops: the first is as far as we can know.
		{"10.1.2.3", []string{"10.7.7.7, 10.9.9.9"}, "10.7.7.7"},
		// Garbage from a trusted proxy: the last address we could read.
		{"10.1.2.3", []string{"junk, 10.9.9.9"}, "10.9.9.9"},
		{"::ffff:10.1.2.3", []string{"2001:db8::5"}, "2001:db8::5"},
		{"fd00::1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
	} {
		got := l.ClientAddr(netip.MustParseAddr(tc.remote), tc.xff)
		if got != netip.MustParseAddr(tc.want) {
			t.Errorf("ClientAddr(%s, %q) = %s; want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestFromContext(t *testing.T) {
	t.Parallel()
	l := admission.New(admission.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, discard)
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-forwarded-for", "203.0.113.9"))
	if a, ok := l.FromContext(ctx); !ok || a != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("from a trusted peer with x-forwarded-for: %s, %v; want 203.0.113.9", a, ok)
	}
	// What the gateway worked out from the HTTP request wins over
	// metadata, which a browser's grpc-web headers may have written.
	gw := admission.NewContext(ctx, netip.MustParseAddr("198.51.100.4"))
	if a, ok := l.FromContext(gw); !ok || a != netip.MustParseAddr("198.51.100.4") {
		t.Errorf("with the gateway's address: %s, %v; want 198.51.100.4", a, ok)
	}
	if _, ok := l.FromContext(context.Background()); ok {
		t.Error("with no peer: ok; want no address")
	}
}

func TestCountsPerAddress(t *testing.T) {
	t.Parallel()
	l := admission.New(admission.Config{MaxSessions: 3}, discard)
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2") // one /64
	c := netip.MustParseAddr("192.0.2.1")
	for range 3 {
		if !l.AcquireSession(c) {
			t.Fatal("session refused within the limit")
		}
	}
	if l.AcquireSession(c) {
		t.Fatal("a 4th session was allowed")
	}
	// A session resumed from elsewhere moves; the new address may go past
	// its limit (the session exists), the old one has room again.
	l.MoveSession(c, a)
	if !l.AcquireSession(c) {
		t.Fatal("the old address has no room after a session moved away")
	}
	for range 2 {
		l.AcquireSession(a)
	}
	if l.AcquireSession(b) {
		t.Fatal("the /64 has 3 sessions and got a 4th")
	}
}

func TestRates(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := admission.New(admission.Config{JoinRate: 2, JoinBurst: 3, ListRate: 1, ListBurst: 1}, discard)
		a := netip.MustParseAddr("192.0.2.1")
		for i := range 3 {
			if !l.AllowJoin(a) {
				t.Fatalf("join %d refused within the burst", i)
			}
		}
		if l.AllowJoin(a) {
			t.Fatal("a join past the burst was allowed")
		}
		if !l.AllowList(a) || l.AllowList(a) {
			t.Fatal("lists are not counted apart from joins, or past their burst")
		}
		if !l.AllowJoin(netip.MustParseAddr("192.0.2.2")) {
			t.Fatal("another address was refused")
		}
		time.Sleep(500 * time.Millisecond) // one token back, at 2 a second
		if !l.AllowJoin(a) || l.AllowJoin(a) {
			t.Fatal("after half a second: want exactly one more join")
		}
		// Off: no limit.
		off := admission.New(admission.Config{}, discard)
		for range 1000 {
			if !off.AllowJoin(a) || !off.AllowList(a) {
				t.Fatal("refused with the limits off")
			}
		}
	})
}

// An address refused past its budget is shut out for ShutOutFor, and
// then has the refusals it saved meanwhile; a trusted proxy never is.
func TestRefusalsShutOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := admission.New(admission.Config{RefusalRate: 2, RefusalBurst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, discard)
		a, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		// step makes n refusals of from, then checks whether from is
		// shut out.
		step := func(from netip.Addr, n int, wantShut bool, why string) {
			t.Helper()
			for range n {
				if l.Refused(context.Background(), from) {
					t.Fatal("a call without a connection is said to have one closed")
				}
			}
			if l.ShutOut(from) != wantShut {
				t.Fatal(why)
			}
		}
		step(a, 3, false, "shut out within the burst of 3")
		step(a, 1, true, "not shut out past the burst")
		step(other, 1, false, "another address was shut out")
		time.Sleep(admission.ShutOutFor - time.Millisecond)
		step(a, 5, true, "the shut-out ended early") // not counted: the budget is spent
		time.Sleep(time.Millisecond)
		step(a, 0, false, "the shut-out did not end")
		// Two tokens came back in the second it was shut out.
		step(a, 2, false, "shut out again within the refusals saved meanwhile")
		step(a, 1, true, "not shut out again past them")
		step(netip.MustParseAddr("10.1.2.3"), 100, false, "a trusted proxy was shut out")
		off := admission.New(admission.Config{}, discard)
		for range 1000 {
			off.Refused(context.Background(), a)
		}
		if off.ShutOut(a) {
			t.Fatal("shut out with the limit off")
		}
	})
}

// testListener is a Limiter's listener on a loopback port, accepting in the
// background until the test ends.
type testListener struct {
	t        *testing.T
	addr     string
	accepted chan net.Conn
}

func listen(t *testing.T, l *admission.Limiter) *testListener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := l.Listen(raw)
	tl := &testListener{t: t, addr: raw.Addr().String(), accepted: make(chan net.Conn, 16)}
	go func() {
		defer close(tl.accepted)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			tl.accepted <- c
		}
	}()
	t.Cleanup(func() {
		raw.Close()
		for c := range tl.accepted {
			c.Close()
		}
	})
	return tl
}

// dialFrom connects from the loopback address ip.
func (tl *testListener) dialFrom(ip string) net.Conn {
	tl.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", tl.addr)
	if err != nil {
		tl.t.Fatal(err)
	}
	tl.t.Cleanup(func() { c.Close() })
	return c
}

// accept returns the next connection the listener let through.
func (tl *testListener) accept() net.Conn {
	tl.t.Helper()
	select {
	case c := <-tl.accepted:
		tl.t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		tl.t.Fatal("nothing accepted")
		return nil
	}
}

// closedByServer reports whether the server closed c within wait: long for
// a close expected, short for one that must not come.
func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

// A shut-out address's new connections are held unread until the
// shut-out ends (closed at once without a limit on connections to bound
// them), and the connection a refusal came on is closed; other addresses'
// are not.
func TestShutOutClosesConnections(t *testing.T) {
	t.Parallel()
	for _, maxConns := range []int{3, 0} {
		l := admission.New(admission.Config{MaxConns: maxConns, RefusalRate: 0.001, RefusalBurst: 1}, discard)
		tl := listen(t, l)
		dialFrom, accept := tl.dialFrom, tl.accept
		callOn := func(s net.Conn) context.Context {
			return peer.NewContext(context.Background(), &peer.Peer{Addr: s.RemoteAddr(), LocalAddr: s.LocalAddr()})
		}
		c1 := dialFrom("127.0.0.3")
		s1 := accept()
		c2 := dialFrom("127.0.0.3")
		accept()
		o := dialFrom("127.0.0.4")
		accept()
		a := netip.MustParseAddr("127.0.0.3")
		if l.Refused(callOn(s1), a) {
			t.Fatal("a connection closed within the burst")
		}
		shutAt := time.Now()
		if !l.Refused(callOn(s1), a) {
			t.Fatal("the connection of the refusal past the burst is not closed")
		}
		if !closedByServer(c1, 5*time.Second) {
			t.Errorf("max conns %d: the connection the refusal came on is still open", maxConns)
		}
		if closedByServer(c2, 100*time.Millisecond) || closedByServer(o, 100*time.Millisecond) {
			t.Errorf("max conns %d: a connection without a refusal on it was closed", maxConns)
		}
		// A new connection from the address shut out is not served;
		// Accept goes on to the next.
		late := dialFrom("127.0.0.3")
		o2 := dialFrom("127.0.0.4")
		if s := accept(); s.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.4" {
			t.Errorf("max conns %d: accepted a connection from %s; want the shut-out address's skipped", maxConns, s.RemoteAddr())
		}
		if closedByServer(o2, 100*time.Millisecond) {
			t.Errorf("max conns %d: a new connection from another address was closed", maxConns)
		}
		if maxConns == 0 {
			if !closedByServer(late, 5*time.Second) {
				t.Error("without a limit on connections, a new one from the address shut out was not closed")
			}
			continue
		}
		// Held: c2, late and this one count as its 3; a 4th is closed
		// at once.
		dialFrom("127.0.0.3")
		if extra := dialFrom("127.0.0.3"); !closedByServer(extra, admission.ShutOutFor/2) {
			t.Error("a connection past the limit was not closed at once while others were held")
		}
		if !closedByServer(late, 5*time.Second) {
			t.Error("a held connection was not closed once the shut-out ended")
		} else if held := time.Since(shutAt); held < admission.ShutOutFor-100*time.Millisecond {
			t.Errorf("a held connection was closed %s after the shut-out began; want it held until the shut-out ends (%s)", held, admission.ShutOutFor)
		}
		// The shut-out is over, and the held connection uncounted.
		dialFrom("127.0.0.3")
		if s := accept(); s.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.3" {
			t.Errorf("after the shut-out, accepted %s; want the address served again", s.RemoteAddr())
		}
	}
}

// The listener closes connections past the limit at once, and counts a
// connection until it is closed; trusted proxies are not counted.
func TestListenLimitsConnections(t *testing.T) {
	t.Parallel()
	for _, trusted := range []bool{false, true} {
		cfg := admission.Config{MaxConns: 3}
		if trusted {
			cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}
		}
		tl := listen(t, admission.New(cfg, discard))
		dialFrom, accepted := tl.dialFrom, tl.accepted
		const expectClose, expectOpen = 5 * time.Second, 200 * time.Millisecond
		var kept []net.Conn
		for range 3 {
			dialFrom("127.0.0.3")
			kept = append(kept, <-accepted)
		}
		extra := dialFrom("127.0.0.3")
		wait := expectClose
		if trusted {
			wait = expectOpen
		}
		if got := closedByServer(extra, wait); got == trusted {
			t.Errorf("trusted=%v: 4th connection closed=%v; want %v", trusted, got, !trusted)
		}
		if trusted {
			<-accepted
		}
		other := dialFrom("127.0.0.4")
		c := <-accepted
		if closedByServer(other, expectOpen) {
			t.Errorf("trusted=%v: a connection from another address was closed", trusted)
		}
		c.Close()
		// A closed connection makes room; closing twice counts once.
		kept[0].Close()
		kept[0].Close()
		dialFrom("127.0.0.3")
		kept = append(kept[1:], <-accepted)
		if !trusted {
			if extra := dialFrom("127.0.0.3"); !closedByServer(extra, expectClose) {
				t.Error("a closed connection made room for two")
			}
		}
		for _, c := range kept {
			c.Close()
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// readyReader is the optional interface through which gRPC's server reads
// a connection without keeping a buffer for it while it is idle.
type readyReader interface {
	ReadOnReady(bufSize int, pool mem.BufferPool) (*[]byte, int, error)
}

// A counted connection is read as gRPC reads a bare TCP connection: a
// buffer is taken only once there is something to read, and the peer's
// close is io.EOF.
func TestCountedConnReadsOnReady(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	lis := admission.New(admission.Config{MaxConns: 1}, discard).Listen(raw)
	client, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rr, ok := server.(readyReader)
	if !ok {
		t.Fatalf("a counted connection (%T) has no ReadOnReady: gRPC would give it a read buffer for its whole life", server)
	}
	pool := mem.DefaultBufferPool()
	go func() {
		time.Sleep(10 * time.Millisecond) // the read must wait for it
		client.Write([]byte("hello"))
		client.Close()
	}()
	buf, n, err := rr.ReadOnReady(64, pool)
	if err != nil || string((*buf)[:n]) != "hello" {
		t.Fatalf("ReadOnReady = %q, %v; want hello", (*buf)[:n], err)
	}
	pool.Put(buf)
	if _, _, err := rr.ReadOnReady(64, pool); err != io.EOF {
		t.Fatalf("ReadOnReady after the peer closed = %v; want io.EOF", err)
	}
}
