package server_test

// Hostile clients on the gRPC port, each written as an attacker would
// write it (raw HTTP/2 frames where gRPC's client would refuse to misbehave),
// each beside an honest user from another address who must carry on.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fromAddr makes a gRPC connection come from the loopback address ip
// (127.0.0.0/8 is all loopback on Linux), so that a test can have clients
// of different addresses.
func fromAddr(ip string) grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return d.DialContext(ctx, "tcp", addr)
	})
}

// honestRoundTrip checks that a user on a connection of its own, from
// 127.0.0.2, can join, send and get its message back promptly.
func honestRoundTrip(t *testing.T, ts *testServer, name string) {
	t.Helper()
	c := joinOn(t, dial(t, ts.addr, fromAddr("127.0.0.2")), name)
	c.say(t, "still here", "h1")
	expectMessage(t, name, c.next(t), name, "still here", "h1")
}

// rawConn is an HTTP/2 connection driven frame by frame.
type rawConn struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

// dialRaw opens a TCP connection to addr, sends the client preface and
// SETTINGS, and acknowledges the server's SETTINGS as they come.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	return dialRawFrom(t, addr, "127.0.0.1")
}

// dialRawFrom is dialRaw from the loopback address ip.
func dialRawFrom(t *testing.T, addr, ip string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.fr.MaxHeaderListSize = 1 << 20
	rc.enc = hpack.NewEncoder(&rc.hb)
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// headers writes a HEADERS frame opening stream id as a gRPC call of
// method, with the extra header fields given, without ending the stream.
func (rc *rawConn) headers(id uint32, method string, extra ...hpack.HeaderField) error {
	rc.hb.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: "chatd"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}, extra...) {
		if err := rc.enc.WriteField(f); err != nil {
			return err
		}
	}
	return rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.hb.Bytes(), EndHeaders: true})
}

// streamEnd is how the server ended a stream: reset (and with what code),
// or answered with a grpc-status.
type streamEnd struct {
	rst         http2.ErrCode
	reset       bool
	grpcStatus  string
	grpcMessage string
}

// readEnds reads frames until want streams have ended or the connection
// breaks or timeout passes, answering SETTINGS and PINGs, and returns how
// each ended.
func (rc *rawConn) readEnds(want int, timeout time.Duration) map[uint32]streamEnd {
	ends := make(map[uint32]streamEnd)
	_ = rc.c.SetReadDeadline(time.Now().Add(timeout))
	defer rc.c.SetReadDeadline(time.Time{})
	for len(ends) < want {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return ends
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = rc.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = rc.fr.WritePing(true, f.Data)
			}
		case *http2.RSTStreamFrame:
			// gRPC resets a stream it has answered but whose client has
			// not finished sending (NO_ERROR): the answer is its end.
			if _, answered := ends[f.StreamID]; !answered {
				ends[f.StreamID] = streamEnd{reset: true, rst: f.ErrCode}
			}
		case *http2.MetaHeadersFrame:
			if s := f.PseudoValue("status"); s != "" && s != "200" {
				ends[f.StreamID] = streamEnd{grpcStatus: "http " + s}
			}
			if e, ok := statusOf(f); ok {
				ends[f.StreamID] = e
			}
		}
	}
	return ends
}

// statusOf returns the grpc-status and grpc-message of a HEADERS frame
// that ends a stream, or false if it does not carry a grpc-status.
func statusOf(f *http2.MetaHeadersFrame) (streamEnd, bool) {
	var e streamEnd
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "grpc-status":
			e.grpcStatus = hf.Value
		case "grpc-message":
			e.grpcMessage, _ = url.PathUnescape(hf.Value)
		}
	}
	return e, e.grpcStatus != ""
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// settledHeap is heapInUse once what earlier tests left behind has let go
// of its memory (servers and hubs they stopped end in goroutines of their
// own, a moment later): a measure taken before it may count megabytes
// that are freed during the test, and make what the test adds look
// negative. It waits at most about two seconds for two readings 64 KiB
// apart or closer.
func settledHeap() uint64 {
	prev := heapInUse()
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		cur := heapInUse()
		if d := int64(cur) - int64(prev); d > -64<<10 && d < 64<<10 {
			return cur
		}
		prev = cur
	}
	return prev
}

// A header block can repeat one dynamic-table entry with a byte on the
// wire each time, and gRPC decodes every repeat (base64-decodes it, for a
// -bin key) into memory the stream keeps while it waits for its join. The
// header list limit refuses such a stream at once.
func TestHeaderListBombRefused(t *testing.T) {
	ts := startServer(t, testConfig(nil))
	before := heapInUse()

	const streams = 20
	rc := dialRaw(t, ts.addr)
	// 250 repeats of a 3000-byte -bin value: about 250 bytes on the wire
	// past the first, about 560 KiB decoded, well under gRPC's default
	// limit of 16 MiB.
	bomb := hpack.HeaderField{Name: "x-bomb-bin", Value: strings.Repeat("QUFB", 750)}
	extra := make([]hpack.HeaderField, 250)
	for i := range extra {
		extra[i] = bomb
	}
	for i := range streams {
		if err := rc.headers(uint32(2*i+1), "/chat.v1.ChatService/Chat", extra...); err != nil {
			t.Fatalf("writing stream %d: %v", i, err)
		}
	}
	ends := rc.readEnds(streams, waitTimeout)
	if len(ends) != streams {
		t.Fatalf("%d of %d streams with a %d-KiB header list were ended; want every one refused at once (the others are held, with their metadata, until the join timeout)", len(ends), streams, 250*len(bomb.Value)/1024)
	}
	for id, e := range ends {
		if !e.reset {
			t.Errorf("stream %d ended with %+v; want a reset", id, e)
		}
	}
	// Nothing of the bombs is kept: well under what one stream's decoded
	// header list would take.
	if grew := int64(heapInUse()) - int64(before); grew > 256<<10 {
		t.Errorf("heap grew by %d KiB after the streams were refused; want them to keep nothing", grew>>10)
	}
	honestRoundTrip(t, ts, "alice")

	// An honest client's ordinary metadata is well within the limit.
	c := joinOn(t, dial(t, ts.addr, grpc.WithUserAgent(strings.Repeat("u", 2000))), "bob")
	c.say(t, "hi", "b1")
	expectMessage(t, "bob", c.next(t), "bob", "hi", "b1")
}

// openRaw opens n gRPC streams on a raw connection that never send a
// thing, and returns how the server ended those it ended within wait (it
// keeps the rest waiting for their join).
func openRaw(t *testing.T, addr string, n, want int) map[uint32]streamEnd {
	t.Helper()
	rc := dialRaw(t, addr)
	for i := range n {
		if err := rc.headers(uint32(2*i+1), "/chat.v1.ChatService/Chat"); err != nil {
			t.Fatalf("writing stream %d: %v", i, err)
		}
	}
	return rc.readEnds(want, waitTimeout)
}

// countEnds counts the streams refused RESOURCE_EXHAUSTED and those reset
// REFUSED_STREAM, and fails the test on any other end.
func countEnds(t *testing.T, ends map[uint32]streamEnd) (exhausted, refused int) {
	t.Helper()
	for id, e := range ends {
		switch {
		case e.grpcStatus == fmt.Sprint(int(codes.ResourceExhausted)):
			exhausted++
		case e.reset && e.rst == http2.ErrCodeRefusedStream:
			refused++
		default:
			t.Errorf("stream %d ended with %+v; want RESOURCE_EXHAUSTED or REFUSED_STREAM", id, e)
		}
	}
	return exhausted, refused
}

// Streams that never join, many on one connection: HTTP/2's stream limit
// caps what one connection may have open, past which streams are reset at
// once.
func TestStreamsPerConnectionBounded(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.MaxStreamsPerConn = 40
		c.PerClient.MaxUnjoined = 0 // every stream within the limit waits
	})
	ts := startServer(t, cfg)
	const streams = 60
	exhausted, refused := countEnds(t, openRaw(t, ts.addr, streams, streams-cfg.MaxStreamsPerConn))
	if want := streams - cfg.MaxStreamsPerConn; exhausted != 0 || refused != want {
		t.Errorf("%d streams reset REFUSED_STREAM, %d refused RESOURCE_EXHAUSTED; want %d reset (those past the connection's limit of %d), none refused", refused, exhausted, want, cfg.MaxStreamsPerConn)
	}
	honestRoundTrip(t, ts, "alice")
}

// The limit on streams waiting to join per address refuses the rest at
// once instead of holding their goroutines and metadata for the join
// timeout. (The limit from everyone: TestWaitingRoomCannotBeFilled.)
func TestUnjoinedStreamsBounded(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.MaxUnjoined = 10
		c.MaxUnjoined = 25
	})
	ts := startServer(t, cfg)
	const streams = 30
	exhausted, refused := countEnds(t, openRaw(t, ts.addr, streams, streams-cfg.PerClient.MaxUnjoined))
	if want := streams - cfg.PerClient.MaxUnjoined; exhausted != want || refused != 0 {
		t.Errorf("%d streams refused RESOURCE_EXHAUSTED, %d reset; want %d refused (every stream past the %d an address may have waiting)", exhausted, refused, want, cfg.PerClient.MaxUnjoined)
	}
	honestRoundTrip(t, ts, "alice")
}

// Join and disconnect in a loop from one address: every session it leaves
// behind is held for a resume, and every join and leave is broadcast.
// The limits on joins per second and on sessions per address stop it long
// before the server is full, and before a member with a small queue falls
// behind on the presence events.
func TestJoinChurnBounded(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.MaxSessions = 100
		c.QueueSize = 64
		c.PerClient.MaxSessions = 20
		c.PerClient.JoinRate = 0.01 // no refill within the test
		c.PerClient.JoinBurst = 30
	})
	ts := startServer(t, cfg)
	member := joinOn(t, dial(t, ts.addr, fromAddr("127.0.0.2")), "member")

	conn := dial(t, ts.addr) // from 127.0.0.1
	var joined, refused int
	var lastRefusal string
	for i := range 60 {
		c := openStream(t, conn)
		name := fmt.Sprintf("churn%02d", i)
		c.send(t, joinReq(name))
		ev, err := c.recv(waitTimeout)
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("join %d: %v; want a welcome or RESOURCE_EXHAUSTED", i, describe(err))
			}
			refused++
			lastRefusal = status.Convert(err).Message()
			continue
		}
		if ev.GetWelcome() == nil {
			t.Fatalf("join %d: got %v; want a welcome", i, ev)
		}
		joined++
		c.cancel() // disconnect: held for a resume
	}
	if joined != cfg.PerClient.MaxSessions {
		t.Errorf("the churning address got %d sessions; want %d, its limit", joined, cfg.PerClient.MaxSessions)
	}
	if refused != 60-joined || !strings.Contains(lastRefusal, "your address") {
		t.Errorf("%d joins refused, the last with %q; want the other %d, saying why", refused, lastRefusal, 60-joined)
	}
	// The member saw every churning user join and leave, and was not
	// dropped for it.
	for range 2 * joined {
		ev := member.next(t)
		if ev.GetUserJoined() == nil && ev.GetUserLeft() == nil {
			t.Fatalf("member: got %v; want the churn's presence events", ev)
		}
	}
	honestRoundTrip(t, ts, "newcomer")
}

// A client that sends a burst of requests that each queue a catch-up
// (channel members and history), and reads promptly, is never taken for
// slow: the server reads its next request only once the last catch-up is
// on its way.
func TestCatchUpBurstIsNotSlowness(t *testing.T) {
	const channels, history, queue = 13, 100, 64
	cfg := testConfig(func(c *server.Config) {
		c.QueueSize = queue
		c.HistorySize = history
		c.MessageRate = 0
	})
	ts := startServer(t, cfg)
	writer := join(t, ts, "writer")
	for i := range channels {
		ch := fmt.Sprintf("c%02d", i)
		writer.joinChannel(t, ch, ch)
		for j := range history {
			writer.send(t, sendReq(fmt.Sprint("m", j), ch, "", ""))
			writer.next(t)
		}
	}
	// Channels and their history stay after their last member leaves.
	writer.send(t, leaveReq())
	writer.drainToEnd(t, codes.OK)

	for round := range 5 {
		name := fmt.Sprintf("reader%d", round)
		c := openStream(t, dial(t, ts.addr))
		c.name = name
		// The join and every channel join, back to back, before reading.
		c.send(t, joinReq(name))
		for i := range channels {
			c.send(t, joinChannelReq(fmt.Sprintf("c%02d", i), ""))
		}
		want := 2 + channels*(1+history) // welcome, general's members, then each channel's members and history
		var got int
		for got < want {
			if _, err := c.recv(waitTimeout); err != nil {
				t.Fatalf("%s: after %d of %d events: %v; want every catch-up, not a drop", name, got, want, describe(err))
			}
			got++
		}
		c.send(t, leaveReq())
		c.drainToEnd(t, codes.OK)
	}
}

// A flood of unary list calls from one address is refused past its rate;
// other addresses' calls, and sessions, go on.
func TestListFloodLimited(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.PerClient.ListRate = 0.01 // no refill within the test
		c.PerClient.ListBurst = 20
	})
	ts := startServer(t, cfg)
	alice := join(t, ts, "alice")
	cli := chatv1.NewChatServiceClient(ts.admin)
	ctx := context.Background()
	var ok, refused int
	for i := range 50 {
		var err error
		if i%2 == 0 {
			_, err = cli.ListUsers(ctx, &chatv1.ListUsersRequest{})
		} else {
			_, err = cli.ListChannels(ctx, &chatv1.ListChannelsRequest{})
		}
		switch status.Code(err) {
		case codes.OK:
			ok++
		case codes.ResourceExhausted:
			refused++
		default:
			t.Fatalf("list call %d: %v; want OK or RESOURCE_EXHAUSTED", i, err)
		}
	}
	if ok != cfg.PerClient.ListBurst || refused != 50-ok {
		t.Errorf("%d list calls answered, %d refused; want %d answered, the rest refused", ok, refused, cfg.PerClient.ListBurst)
	}
	other := chatv1.NewChatServiceClient(dial(t, ts.addr, fromAddr("127.0.0.2")))
	resp, err := other.ListUsers(ctx, &chatv1.ListUsersRequest{})
	if err != nil || len(resp.GetUsers()) != 1 {
		t.Fatalf("ListUsers from another address = %v, %v; want alice", resp, err)
	}
	alice.say(t, "still here", "a1")
	expectMessage(t, "alice", alice.next(t), "alice", "still here", "a1")
}

// A stream that keeps sending what is refused is ended, with
// RESOURCE_EXHAUSTED and the reason, and is no longer answered; other
// sessions go on.
func TestRefusalFloodEndsStream(t *testing.T) {
	cfg := testConfig(func(c *server.Config) {
		c.RefusalRate = 0.01 // no refill within the test
		c.RefusalBurst = 30
		c.MessageRate = 0 // refused for what they are, not for their rate
	})
	ts := startServer(t, cfg)
	bob := join(t, ts, "bob")
	mallory := join(t, ts, "mallory")
	expectJoined(t, "bob", bob.next(t), "mallory", false)
	for i := range 100 {
		if err := mallory.stream.Send(sayReq("", fmt.Sprint("bad", i))); err != nil {
			break // the server ended the stream
		}
	}
	evs, st := mallory.drainToEnd(t, codes.ResourceExhausted)
	// The answers already queued may or may not be written before the
	// end; none past the burst is.
	if len(evs) > cfg.RefusalBurst {
		t.Errorf("mallory got %d answers before the end; want at most %d, one per refusal within the burst", len(evs), cfg.RefusalBurst)
	}
	for _, ev := range evs {
		expectRejected(t, "mallory", ev, ev.GetRejected().GetClientId(), codes.InvalidArgument)
	}
	if !strings.Contains(st.Message(), "too many refused requests") || !strings.Contains(st.Message(), "empty") {
		t.Errorf("end status %q; want it to say too many refused requests, and why the last was refused", st.Message())
	}
	expectLeft(t, "bob", bob.next(t), "mallory", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	bob.say(t, "still here", "b1")
	expectMessage(t, "bob", bob.next(t), "bob", "still here", "b1")
}

// Names that look like a user's who is online or held for a resume are
// refused, whether they mix scripts (the аlice, Αlice, bоb) or
// not (alıce with a dotless ı, ареx all Cyrillic); so is any name that
// mixes scripts. Names that only share letters are not.
func TestConfusableNamesRefused(t *testing.T) {
	ts := startServer(t, testConfig(nil))
	for _, name := range []string{"alice", "bob", "apex", "mary"} {
		join(t, ts, name)
	}
	held := join(t, ts, "carol")
	held.cancel() // disconnected: held for a resume
	waitFor(t, "carol to be held", func() bool { return !slices.Contains(listUsers(t, ts), "carol") })

	for _, tc := range []struct {
		name string
		code codes.Code
		want string
	}{
		{"\u0430lice", codes.InvalidArgument, "mixes Cyrillic and Latin letters"},
		{"\u0391lice", codes.InvalidArgument, "mixes Greek and Latin letters"},
		{"b\u043eb", codes.InvalidArgument, "mixes Cyrillic and Latin letters"},
		{"al\u0131ce", codes.AlreadyExists, `looks like "alice", who is online`},
		{"ALICE", codes.AlreadyExists, "is taken"},
		{"\u0430\u0440\u0435\u0445", codes.AlreadyExists, `looks like "apex"`}, // Cyrillic а р е х
		{"rnary", codes.AlreadyExists, `looks like "mary"`},
		{"caro1", codes.AlreadyExists, `looks like "carol", whose name is held`},
	} {
		c := openStream(t, dial(t, ts.addr))
		c.send(t, joinReq(tc.name))
		st := c.expectEnd(t, tc.code)
		if !strings.Contains(st.Message(), tc.want) {
			t.Errorf("join as %q: %v %q; want %v saying %q", tc.name, st.Code(), st.Message(), tc.code, tc.want)
		}
	}
	// Sharing letters is not looking alike.
	for _, name := range []string{"alicia", "bobby", "ape", "marry"} {
		join(t, ts, name)
	}
}

// Capitals count: a name looks like another if its skeleton as typed
// (where a capital I is an l and a zero an O) matches the other's as typed
// or in any case form, whichever of the two joined first. TS #39's data
// is case sensitive, and names were compared after folding, where "aIice"
// is "aiice" and looks like nothing: aIice, IIama, wiII and paypaI joined
// beside alice, llama, will and paypal.
func TestConfusableCapitalsRefused(t *testing.T) {
	ts := startServer(t, testConfig(nil))
	for _, tc := range []struct{ first, second, want string }{
		{"alice", "aIice", `looks like "alice"`}, // capital I and small L, both orders
		{"IIama", "llama", `looks like "IIama"`},
		{"will", "wiII", `looks like "will"`},
		{"paypaI", "paypal", `looks like "paypaI"`},
		{"ALINA", "AIina", `looks like "ALINA"`}, // AIina looks like Alina, which is ALINA
		{"B0B", "BOB", `looks like "B0B"`},       // zero and capital O, both orders
		{"ROBIN", "R0BIN", `looks like "ROBIN"`},
		{"t0m", "tom", `looks like "t0m"`},     // t0m is T0M too, which looks like TOM
		{"mark", "rnark", `looks like "mark"`}, // rn and m, both orders
		{"rnay", "may", `looks like "rnay"`},
		{"rnia", "MIA", `looks like "rnia"`}, // MIA is mia
	} {
		join(t, ts, tc.first)
		c := openStream(t, dial(t, ts.addr))
		c.send(t, joinReq(tc.second))
		st := c.expectEnd(t, codes.AlreadyExists)
		if !strings.Contains(st.Message(), tc.want) {
			t.Errorf("join as %q beside %q: %q; want it refused as one that %s", tc.second, tc.first, st.Message(), tc.want)
		}
	}
	// Small i is not l: these are other names (and so are mail and mall,
	// though MAIL and MALL look alike).
	for _, name := range []string{"wiii", "aiice", "mail", "mall"} {
		join(t, ts, name)
	}
}
