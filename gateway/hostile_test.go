package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
	"nhooyr.io/websocket"
)

// closeBound is how long a hostile connection may outlive its deadline in
// these tests: far more than a deadline of a few hundred milliseconds
// needs, even on a slow machine, and far less than for ever.
const closeBound = 5 * time.Second

// shortJoin is the join timeout of the tests that wait for it to pass.
const shortJoin = 300 * time.Millisecond

// rawUpgrade opens a TCP connection to addr and upgrades it to a websocket
// for the grpc-web Chat endpoint, as a browser would, without Origin. It
// returns the connection and the reader to read the server's frames from.
func rawUpgrade(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	fmt.Fprintf(conn, "GET /chat.v1.ChatService/Chat HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: grpc-websockets\r\n\r\n", addr, key)
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("upgrade: %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return conn, br
}

// maskedPing is a ping from a client: clients mask every frame.
var maskedPing = []byte{0x89, 0x80, 1, 2, 3, 4}

// waitClosed reads from r until the server closes the connection, or until
// the deadline, and reports which.
func waitClosed(conn net.Conn, r io.Reader, deadline time.Time) error {
	_ = conn.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("still open after %s", closeBound)
	}
	return nil // io.EOF (io.Copy returns nil) or a reset: closed by the server
}

// syncBuffer is a bytes.Buffer for logs written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A websocket that never sends grpc-web's first message (the request
// headers) is closed after the join timeout, even when it keeps talking
// websocket: pings, which keep the gateway's keepalive from taking it for
// dead, as a client library answering the gateway's pings does. (The
// silent ones would be found by the keepalive, later.) Meanwhile an
// honest browser joins, stays past that timeout and chats.
func TestSilentWebsocketClosed(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	gw := startGatewayLog(t, func(c *gateway.Config) { c.JoinTimeout = shortJoin }, logs) // keepalive 1s + 1s
	alice := join(t, gw.addr, "alice")
	aliceJoined := time.Now()

	const hostile = 50
	start := time.Now()
	errs := make(chan error, hostile)
	for i := range hostile {
		conn, br := rawUpgrade(t, gw.addr)
		pinging := i%2 == 0 // half ping every 100ms, half say nothing at all
		go func() {
			done := make(chan struct{})
			if pinging {
				go func() {
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-done:
							return
						case <-tick.C:
							if _, err := conn.Write(maskedPing); err != nil {
								return
							}
						}
					}
				}()
			}
			err := waitClosed(conn, br, start.Add(closeBound))
			close(done)
			if err != nil && pinging {
				err = fmt.Errorf("pinging websocket: %w", err)
			} else if err != nil {
				err = fmt.Errorf("silent websocket: %w", err)
			}
			errs <- err
		}()
	}
	// Meanwhile a browser joins.
	bob := join(t, gw.addr, "bob")
	alice.expectJoined(t, "bob")
	for range hostile {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	if n := strings.Count(logs.String(), "sent no request headers"); n != hostile {
		t.Errorf("%d log lines about closing websockets that sent no headers, want one for each of %d", n, hostile)
	}
	// Their connections are closed on the server's side too, not only
	// shut for writing, and their watchers are gone: only alice's and
	// bob's are left.
	for gw.gw.Watched() != 2 {
		if time.Since(start) > closeBound {
			t.Fatalf("%d websockets watched, want 2 (alice and bob)", gw.gw.Watched())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// alice and bob joined, so they are past their first message: the
	// join timeout does not apply to them, however long they stay.
	if d := time.Since(aliceJoined); d < 2*shortJoin {
		time.Sleep(2*shortJoin - d)
	}
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "still here"}}})
	for _, c := range []*wsClient{alice, bob} {
		for {
			ev := c.next(t)
			if l := ev.GetUserLeft(); l != nil {
				t.Fatalf("%s left (%v)", l.GetUser().GetUsername(), l.GetReason())
			}
			if ev.GetMessage().GetText() == "still here" {
				break
			}
		}
	}
}

// rawRequest sends head (a request's line and headers, without the blank
// line ending them) and no body on a new TCP connection to addr.
func rawRequest(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// A request that announces a body and never sends it (a grpc-web POST
// announcing a gigabyte, say) has its connection closed soon after the
// join timeout: nothing, neither a gRPC handler nor net/http, waits for
// the body for ever, and the connection is not kept for another request
// either (the rest of the body would be read as one). net/http closes
// the connection only once the handler has returned, and TestMain checks
// that no goroutine is left. Meanwhile honest calls work.
func TestMissingBodyBounded(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, func(c *gateway.Config) { c.JoinTimeout = shortJoin })
	grpcWeb := "Content-Type: application/grpc-web+proto\nX-Grpc-Web: 1"
	cases := map[string]string{
		"grpc-web ListUsers, 1 GB announced":  "POST /chat.v1.ChatService/ListUsers HTTP/1.1\nHost: " + gw.addr + "\n" + grpcWeb + "\nContent-Length: 1000000000",
		"grpc-web ListUsers, 100 B announced": "POST /chat.v1.ChatService/ListUsers HTTP/1.1\nHost: " + gw.addr + "\n" + grpcWeb + "\nContent-Length: 100",
		"grpc-web Chat, 1 GB announced":       "POST /chat.v1.ChatService/Chat HTTP/1.1\nHost: " + gw.addr + "\n" + grpcWeb + "\nContent-Length: 1000000000",
		"grpc-web Chat, chunked":              "POST /chat.v1.ChatService/Chat HTTP/1.1\nHost: " + gw.addr + "\n" + grpcWeb + "\nTransfer-Encoding: chunked",
		"page, 100 B announced":               "GET / HTTP/1.1\nHost: " + gw.addr + "\nContent-Length: 100",
		"websocket, 100 B announced": "GET /chat.v1.ChatService/Chat HTTP/1.1\nHost: " + gw.addr + "\nUpgrade: websocket\nConnection: Upgrade\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\nSec-WebSocket-Protocol: grpc-websockets\nContent-Length: 100",
	}
	const each = 5
	start := time.Now()
	var wg sync.WaitGroup
	for name, head := range cases {
		for range each {
			conn := rawRequest(t, gw.addr, head)
			wg.Go(func() {
				if err := waitClosed(conn, conn, start.Add(closeBound)); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
	}
	// Meanwhile honest calls work: a unary call, a whole (half-duplex)
	// session over a POST, and a browser.
	if resp := grpcWebPost(t, gw.addr, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("honest grpc-web POST: %d, want 200", resp.StatusCode)
	}
	if b := chatPost(t, gw.addr, "poster", "hello"); !bytes.Contains(b, []byte("hello")) || !bytes.Contains(b, []byte("grpc-status: 0")) {
		t.Errorf("honest Chat session over a grpc-web POST: got %q, want its message and grpc-status 0", b)
	}
	alice := join(t, gw.addr, "alice")
	wg.Wait()
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "hi"}}})
	for alice.next(t).GetMessage().GetText() != "hi" { // skip to alice's own message
	}
}

// chatPost runs a whole Chat session in one grpc-web POST: name joins,
// sends text and ends its sending (a logout). It returns the response's
// body.
func chatPost(t *testing.T, addr, name, text string) []byte {
	t.Helper()
	var body []byte
	for _, r := range []*chatv1.ChatRequest{
		{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}},
		{ClientId: "c1", Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text}}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		body = binary.BigEndian.AppendUint32(append(body, 0), uint32(len(b)))
		body = append(body, b...)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/chat.v1.ChatService/Chat", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	req.Header.Set("X-Grpc-Web", "1")
	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Chat over a grpc-web POST: %d, %v", resp.StatusCode, err)
	}
	return b
}

// The read deadline of a grpc-web POST does not stay on its connection:
// a websocket upgraded on the same connection afterwards (HTTP/1.1
// keep-alive, then Upgrade) lives past it.
func TestDeadlineNotKeptForWebsocket(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, func(c *gateway.Config) { c.JoinTimeout = shortJoin })
	conn, err := net.DialTimeout("tcp", gw.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	fmt.Fprintf(conn, "POST /chat.v1.ChatService/ListUsers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/grpc-web+proto\r\n"+
		"X-Grpc-Web: 1\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00", gw.addr)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close || br.Buffered() > 0 {
		t.Fatalf("grpc-web POST: %s, close %v, %d bytes more", resp.Status, resp.Close, br.Buffered())
	}
	_ = conn.SetDeadline(time.Time{})

	// The websocket's handshake goes over the same connection.
	dialed := false
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		if dialed {
			return nil, errors.New("a second connection")
		}
		dialed = true
		return conn, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	alice, _, err := dialChatWith(t, context.Background(), gw.addr, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "alice"}}})
	if ev := alice.next(t); ev.GetWelcome() == nil {
		t.Fatalf("first event %v, want a welcome", ev)
	}
	// Past the deadline the POST had, and past a join timeout since the
	// websocket's first message: nothing to wait on, what is checked is
	// that nothing happens meanwhile.
	time.Sleep(3 * shortJoin)
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "still here"}}})
	for {
		ev := alice.next(t)
		if l := ev.GetUserLeft(); l != nil {
			t.Fatalf("%s left (%v)", l.GetUser().GetUsername(), l.GetReason())
		}
		if ev.GetMessage().GetText() == "still here" {
			break
		}
	}
}

// Headers larger than MaxHeaderBytes get 431; ordinary requests still work.
func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, func(c *gateway.Config) { c.MaxHeaderBytes = 16 << 10 })
	req, _ := http.NewRequest(http.MethodGet, "http://"+gw.addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 20<<10))
	if resp := do(t, req); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET / with 20 KiB of headers: %d, want 431", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+gw.addr+"/", nil)
	if resp := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /: %d, want 200", resp.StatusCode)
	}
	if resp := grpcWebPost(t, gw.addr, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("grpc-web POST: %d, want 200", resp.StatusCode)
	}
}

// A grpc-web client that stops reading what chatd sends and keeps sending
// valid requests is read no further than a native gRPC client would be
// (its 64 KiB window): chatd stops receiving from a session whose writer
// cannot write (see server's readLoop), and the gateway then stops reading
// from its socket, so the client's writes stall instead of chatd's memory
// growing. gRPC's ServeHTTP transport alone read such a client as fast as
// it wrote, into memory: 1.2 to 2.1 GiB in seconds. Over a websocket and
// over a plain grpc-web POST alike; meanwhile two honest users chat on.
func TestUnreadClientCannotGrowTheServer(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"websocket", "post"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			testUnreadClientBounded(t, transport)
		})
	}
}

func testUnreadClientBounded(t *testing.T, transport string) {
	gw := startGatewayServer(t, func(c *server.Config) {
		// The attack must last: no keepalive or write timeout may end
		// it first (the attacker sends all the time, and the gateway's
		// write timeout is the keepalive's), and the joins and sends
		// it is made of must not be refused.
		c.KeepaliveTime, c.KeepaliveTimeout = time.Minute, time.Minute
		c.JoinTimeout = time.Minute
		c.MessageRate = 0
	}, nil, io.Discard)
	alice := join(t, gw.addr, "alice")
	bob := join(t, gw.addr, "bob")

	// Channels whose history (128 KiB each) comes to more than the
	// kernel's buffers for a socket (4 MiB here) and the attacker's 2 KiB
	// hold: its writer is soon stuck writing them, and its reader waits
	// for the writer before it reads a request further (see server's
	// readLoop). Carol fills them.
	const channels = 48
	carol := join(t, gw.addr, "carol")
	text := strings.Repeat("h", 4000)
	for i := range channels {
		ch := fmt.Sprintf("h%d", i)
		carol.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: ch}}})
		for range 33 {
			carol.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Channel: ch, Text: text}}})
			for carol.next(t).GetMessage() == nil { // her own, as the others get it
			}
		}
	}

	var requests []*chatv1.ChatRequest
	requests = append(requests, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "mallory"}}})
	for i := range channels {
		requests = append(requests, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: fmt.Sprintf("h%d", i)}}})
	}
	// Then valid messages, up to 16 KiB of them at a time (the most a
	// websocket message may carry).
	var chunk []byte
	msg := grpcFrame(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Channel: "h0", Text: strings.Repeat("m", 1000)}}})
	for len(chunk)+len(msg) <= 16<<10 {
		chunk = append(chunk, msg...)
	}
	var first []byte
	for _, r := range requests {
		first = append(first, grpcFrame(t, r)...)
	}

	// The attacker writes until a write has been stuck for a second, or
	// until it has written far more than a bounded server can have taken
	// (the window, and the kernel's socket buffers on both sides).
	const enough = 16 << 20
	var written int
	var err error
	switch transport {
	case "websocket":
		written, err = unreadWebsocket(t, gw.addr, first, chunk, enough)
	case "post":
		written, err = unreadPost(t, gw.addr, first, chunk, enough)
	}
	if written >= enough {
		t.Fatalf("chatd read %d MiB from a client that read nothing: what it sends must stall once its window is full", written>>20)
	}
	// Stuck, not cut off: chatd holds the stream, as it holds a native
	// one whose window is full, until its writer gives up on the client.
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the attacker's write failed after %d KiB with %v, want it stuck: chatd ended the stream rather than stop reading it", written>>10, err)
	}
	t.Logf("the attacker's writes stalled after %d KiB", written>>10)

	// Meanwhile the others chat on.
	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "still here?"}}})
	for {
		if m := bob.next(t).GetMessage(); m != nil && m.GetText() == "still here?" {
			break
		}
	}
}

// grpcFrame returns req as a gRPC message: flags, length, encoding.
func grpcFrame(t *testing.T, req *chatv1.ChatRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(f[1:], uint32(len(b)))
	return append(f, b...)
}

// smallBuffers dials TCP connections whose kernel buffers are small, as
// the attack's were: the server's writes to it are soon stuck, and the
// attacker's own writes soon show whether the server reads.
func smallBuffers(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetReadBuffer(2 << 10)
	_ = tc.SetWriteBuffer(16 << 10)
	return c, nil
}

// unreadWebsocket opens a grpc-web websocket for Chat, never reads from it,
// writes first and then chunk again and again, each in a websocket message
// of its own, and returns how many bytes it wrote before a write was stuck
// for a second (the error says which) or it had written limit.
func unreadWebsocket(t *testing.T, addr string, first, chunk []byte, limit int) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/chat.v1.ChatService/Chat", &websocket.DialOptions{
		Subprotocols: []string{"grpc-websockets"},
		HTTPClient:   &http.Client{Transport: &http.Transport{DialContext: smallBuffers}},
		// Compressed, the channels' history would fit in the sockets'
		// buffers, and the attacker's writes count what it wrote before
		// compression.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	conn.SetReadLimit(-1)
	if err := conn.Write(ctx, websocket.MessageBinary, []byte("content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n")); err != nil {
		t.Fatal(err)
	}
	written := 0
	for i := 0; written < limit; i++ {
		msg := chunk
		if i == 0 {
			msg = first
		}
		wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
		err := conn.Write(wctx, websocket.MessageBinary, append([]byte{0}, msg...))
		wcancel()
		if err != nil {
			return written, err
		}
		written += len(msg)
	}
	return written, nil
}

// unreadPost sends a Chat stream as a grpc-web POST over plain HTTP whose
// body is first and then chunk again and again, never reading the answer,
// and returns how many bytes of body it wrote before a write was stuck for
// a second (the error says which) or it had written limit.
func unreadPost(t *testing.T, addr string, first, chunk []byte, limit int) (int, error) {
	t.Helper()
	conn, err := smallBuffers(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /chat.v1.ChatService/Chat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nTransfer-Encoding: chunked\r\n\r\n", addr)
	written := 0
	for i := 0; written < limit; i++ {
		msg := chunk
		if i == 0 {
			msg = first
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(msg), msg); err != nil {
			return written, err
		}
		written += len(msg)
	}
	return written, nil
}
