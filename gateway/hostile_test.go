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
