package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/proto"
	"nhooyr.io/websocket"
)

// webTransport reaches chatd as the chat page does (web/src/rpc.ts): the
// Chat stream is grpc-web on improbable's websocket transport, through
// chatd's HTTP port (the gateway), one websocket per member, and the join
// asks for batches. What chatd spends per delivery then includes the
// gateway: its grpc-web framing, the websocket frames and the in-process
// gRPC hop behind it. Senders go the same way, as a person typing in the
// page does.
type webTransport struct {
	addr    string // the gateway's host:port
	timeout time.Duration
	batches bool

	mu      sync.Mutex   // guards clients and closed
	clients []*webClient // every member's stream, to close with the transport
	closed  bool
}

// The first websocket message of improbable's protocol carries the
// request's headers, as the page's library writes them.
const webHeaders = "content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\nx-user-agent: grpc-web-javascript/0.1\r\n"

// webWriteTimeout bounds one write of a request.
const webWriteTimeout = 10 * time.Second

// webReadLimit bounds one websocket message from the gateway. A welcome
// lists everyone online (tens of bytes each), so at thousands of members
// it is far past the library's default of 32 KiB.
const webReadLimit = 64 << 20

func (t *webTransport) join(ctx context.Context, m *member) (client, welcome, error) {
	c, err := t.dial(ctx)
	if err != nil {
		return nil, welcome{}, fmt.Errorf("%s: %w", m, err)
	}
	c.channel = m.chanName
	w, err := c.joinAndWait(ctx, &chatv1.Join{Username: m.name, AcceptBatches: t.batches, DeviceKey: m.deviceKey()}, t.timeout)
	if err != nil {
		c.close()
		return nil, welcome{}, fmt.Errorf("%s: %w", m, err)
	}
	return c, w, nil
}

// dial opens a websocket to the Chat method, as a browser on the page's
// own origin does (so with its Origin header, and offering compression),
// and sends the request headers.
func (t *webTransport) dial(ctx context.Context) (*webClient, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var raw net.Conn
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			raw = c // Dial is synchronous: read below, after it returns
			return c, err
		},
	}}
	h := http.Header{}
	h.Set("Origin", "http://"+t.addr)
	// A listen backlog full in a join storm refuses connections: try
	// again, with backoff, within the timeout, as the gRPC members do.
	var conn *websocket.Conn
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		var resp *http.Response
		var err error
		conn, resp, err = websocket.Dial(ctx, "ws://"+t.addr+"/chat.v1.ChatService/Chat", &websocket.DialOptions{
			HTTPClient:   hc,
			HTTPHeader:   h,
			Subprotocols: []string{"grpc-websockets"},
		})
		if err == nil {
			break
		}
		if resp != nil {
			// Most likely a limit per client address: every member
			// comes from this machine.
			return nil, fmt.Errorf("the gateway at %s refused the websocket: %s (for a limit per address, run chatd with %s)", t.addr, resp.Status, perAddressFlags)
		}
		if !strings.Contains(err.Error(), "connection refused") || !sleep(ctx, pause) {
			return nil, fmt.Errorf("websocket to the gateway at %s: %w", t.addr, err)
		}
	}
	conn.SetReadLimit(webReadLimit)
	c := &webClient{conn: conn, raw: raw}
	if err := t.keep(c); err != nil {
		return nil, err
	}
	if err := conn.Write(ctx, websocket.MessageBinary, []byte(webHeaders)); err != nil {
		c.close()
		return nil, fmt.Errorf("send the request headers: %w", err)
	}
	return c, nil
}

// keep remembers a member's stream, to close it with the transport; a
// transport already closed closes it at once.
func (t *webTransport) keep(c *webClient) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.close()
		return errors.New("the run is over")
	}
	t.clients = append(t.clients, c)
	return nil
}

// close closes every member's TCP connection: each receive goroutine's
// read fails, which also ends the library's goroutine behind it (see
// webClient.receive for streams that ended before).
func (t *webTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.clients {
		_ = c.raw.Close()
	}
	t.clients, t.closed = nil, true
}

// webClient is one member's Chat stream over a websocket. Only the
// member's receive goroutine reads (after the join), and writes are
// serialized by the library.
type webClient struct {
	conn    *websocket.Conn
	raw     net.Conn // the TCP connection under conn: closing it ends the stream at once
	channel string   // where send sends ("": general)

	buf  []byte                 // what has been read and not yet parsed, from off
	off  int                    // start of the unparsed bytes in buf
	resp *chatv1.ChatResponse   // reused by every receive
	rest []*chatv1.ChatResponse // events that came in the welcome's batch, to handle first
}

// errTrailers is a stream that ended with trailers: grpc-status and
// grpc-message.
type errTrailers struct{ status, message string }

func (e *errTrailers) Error() string {
	return fmt.Sprintf("stream ended with grpc-status %s: %s", e.status, e.message)
}

// joinAndWait sends j and waits for the welcome, within timeout.
func (c *webClient) joinAndWait(ctx context.Context, j *chatv1.Join, timeout time.Duration) (welcome, error) {
	if err := c.write(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: j}}); err != nil {
		return welcome{}, fmt.Errorf("join: %w", err)
	}
	// The read has no context (see readMessage): the connection is closed
	// if the welcome is late or ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	defer stop()
	timer := time.AfterFunc(timeout, func() { _ = c.raw.Close() })
	defer timer.Stop()
	resp := new(chatv1.ChatResponse)
	if err := c.next(resp); err != nil {
		return welcome{}, fmt.Errorf("join: %w", explainRefusal(err))
	}
	if b := resp.GetBatch(); b != nil && len(b.GetEvents()) > 0 {
		resp, c.rest = b.GetEvents()[0], b.GetEvents()[1:]
	}
	wel := resp.GetWelcome()
	if wel == nil {
		return welcome{}, fmt.Errorf("join answered with %v, want a welcome", resp)
	}
	return welcome{
		seq:       resp.GetSeq(),
		online:    uint64(len(wel.GetOnlineUsers())),
		token:     wel.GetResumeToken(),
		complete:  wel.GetRecovery() == chatv1.Recovery_RECOVERY_COMPLETE,
		deviceKey: wel.GetDeviceKey(),
	}, nil
}

// write sends one request: improbable's control byte (0: data), then the
// gRPC frame (not compressed, length, message).
func (c *webClient) write(req *chatv1.ChatRequest) error {
	b := make([]byte, 6, 6+proto.Size(req))
	binary.BigEndian.PutUint32(b[2:6], uint32(cap(b)-6))
	b, err := proto.MarshalOptions{}.MarshalAppend(b, req)
	if err != nil {
		return err
	}
	// A write that cannot go out within webWriteTimeout (the gateway
	// stopped reading) closes the connection; so does one that fails.
	ctx, cancel := context.WithTimeout(context.Background(), webWriteTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageBinary, b)
}

func (c *webClient) send(text []byte) error {
	return c.write(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: string(text), Channel: c.channel}}})
}

func (c *webClient) sendPrivate(to, text string) error {
	return c.write(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text, Recipient: to}}})
}

func (c *webClient) joinChannel(name string) error {
	return c.write(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: name}}})
}

func (c *webClient) typing(channel string, stopped bool) error {
	return c.write(typingRequest(channel, stopped))
}

// close closes a stream nobody reads (a join that failed). The library's
// goroutine ends only once one of its reads or writes fails, or after a
// close handshake (which waits up to 5 s for an answer): closing the TCP
// connection and reading makes the read fail at once.
func (c *webClient) close() {
	_ = c.raw.Close()
	_, _, _ = c.conn.Read(context.Background())
}

func (c *webClient) receive(m *member) error {
	for _, ev := range c.rest {
		handle(m, ev)
	}
	c.rest = nil
	if c.resp == nil {
		c.resp = new(chatv1.ChatResponse)
	}
	for {
		if err := c.next(c.resp); err != nil {
			var te *errTrailers
			if !errors.As(err, &te) {
				return err
			}
			// The gateway closes the websocket after the trailers:
			// read until it does (or the transport closes it), so
			// that the library sees the end and its goroutine ends.
			for {
				if _, _, rerr := c.conn.Read(context.Background()); rerr != nil {
					break
				}
			}
			if te.status == "8" { // RESOURCE_EXHAUSTED
				return fmt.Errorf("%w: %v", errSlowDropped, err)
			}
			return err
		}
		if b := c.resp.GetBatch(); b != nil {
			for _, ev := range b.GetEvents() {
				handle(m, ev)
			}
			continue
		}
		handle(m, c.resp)
	}
}

// next reads the next response into resp, skipping the response headers.
// Trailers end the stream: an *errTrailers.
func (c *webClient) next(resp *chatv1.ChatResponse) error {
	for {
		flag, payload, err := c.frame()
		if err != nil {
			return err
		}
		if flag&0x80 == 0 {
			return proto.Unmarshal(payload, resp)
		}
		// Headers or trailers, as HTTP/1 header lines. Only trailers
		// carry grpc-status.
		var te errTrailers
		for line := range strings.SplitSeq(string(payload), "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "grpc-status":
				te.status = strings.TrimSpace(v)
			case "grpc-message":
				te.message = strings.TrimSpace(v)
			}
		}
		if te.status != "" {
			return &te
		}
	}
}

// frame returns the next grpc-web frame: its flag byte and payload, valid
// until the next call. A frame may span websocket messages, and one
// message may hold several frames.
func (c *webClient) frame() (byte, []byte, error) {
	for {
		if avail := c.buf[c.off:]; len(avail) >= 5 {
			n := int(binary.BigEndian.Uint32(avail[1:5]))
			if len(avail) >= 5+n {
				c.off += 5 + n
				return avail[0], avail[5 : 5+n], nil
			}
		}
		// Keep what is left, at the start of buf, and read more.
		c.buf = append(c.buf[:0], c.buf[c.off:]...)
		c.off = 0
		if err := c.readMessage(); err != nil {
			return 0, nil, err
		}
	}
}

// readMessage appends the next websocket message to buf. It reads without
// a deadline: on a cancelled context the library (nhooyr.io/websocket
// v1.8.6) spins a goroutine until the connection closes (see the
// gateway's awaitFirstMessage); closing the connection ends the read.
func (c *webClient) readMessage() error {
	_, r, err := c.conn.Reader(context.Background())
	if err != nil {
		return err
	}
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
