package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chatd/chatd/gateway"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
	"nhooyr.io/websocket"
)

// waitTimeout bounds every wait for an event.
const waitTimeout = 10 * time.Second

// testGateway is a chat server served only through a gateway, on a real
// loopback listener.
type testGateway struct {
	addr string // host:port of the gateway
	gw   *gateway.Gateway
}

// startGateway starts a server and a gateway in front of it; edit may
// change the gateway's config. Both are shut down by the test's cleanup.
func startGateway(t *testing.T, edit func(*gateway.Config)) *testGateway {
	t.Helper()
	return startGatewayLog(t, edit, io.Discard)
}

// startGatewayLog is startGateway with the logs written to logw.
func startGatewayLog(t *testing.T, edit func(*gateway.Config), logw io.Writer) *testGateway {
	t.Helper()
	return startGatewayServer(t, nil, edit, logw)
}

// startGatewayServer is startGatewayLog with the server's config changed by
// editServer too. The gateway counts its clients with the server's
// limiter, as chatd's does.
func startGatewayServer(t *testing.T, editServer func(*server.Config), edit func(*gateway.Config), logw io.Writer) *testGateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logw, nil))
	scfg := server.DefaultConfig()
	scfg.KeepaliveTime, scfg.KeepaliveTimeout = time.Second, time.Second
	if editServer != nil {
		editServer(&scfg)
	}
	srv, err := server.New(scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		KeepaliveTime:    scfg.KeepaliveTime,
		KeepaliveTimeout: scfg.KeepaliveTimeout,
		MaxRecvMsgSize:   scfg.MaxRecvMsgSize,
		JoinTimeout:      scfg.JoinTimeout,
		Page:             fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>chat</title>")}},
		Admission:        srv.Admission(),
	}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := gateway.New(srv.GRPCServer(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("gateway Serve: %v", err)
		}
	})
	return &testGateway{addr: lis.Addr().String(), gw: gw}
}

// wsClient is a grpc-web client on improbable's websocket protocol, the one
// the page's client speaks: a first message with the request headers, then
// messages of a control byte (0 data, 1 end of sending) and gRPC frames.
type wsClient struct {
	conn   *websocket.Conn
	events chan *chatv1.ChatResponse // every event, in order
	done   chan struct{}             // closed when the stream has ended
	status string                    // grpc-status from the trailers, if any; set before done closes
}

// dialChat opens a Chat stream to addr (host:port) with the Origin header
// origin (none if empty). It returns the HTTP response of a refused upgrade.
func dialChat(t *testing.T, addr, origin string) (*wsClient, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return dialChatWith(t, context.Background(), addr, &websocket.DialOptions{HTTPHeader: h})
}

// dialChatWith is dialChat with the dial's context and options.
func dialChatWith(t *testing.T, ctx context.Context, addr string, opts *websocket.DialOptions) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	opts.Subprotocols = []string{"grpc-websockets"}
	scheme := "ws://"
	if opts.HTTPClient != nil {
		if tr, ok := opts.HTTPClient.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
			scheme = "wss://" // a client that trusts the test's CA
		}
	}
	conn, resp, err := websocket.Dial(ctx, scheme+addr+"/chat.v1.ChatService/Chat", opts)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{conn: conn, events: make(chan *chatv1.ChatResponse, 100), done: make(chan struct{})}
	t.Cleanup(func() {
		_ = conn.Close(websocket.StatusNormalClosure, "")
		<-c.done
	})
	hdr := "content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n" + firstMessageHeaders(ctx)
	if err := conn.Write(ctx, websocket.MessageBinary, []byte(hdr)); err != nil {
		t.Fatal(err)
	}
	go c.readLoop()
	return c, resp, nil
}

// extraHeadersKey is the context key of headers dialChatWith adds to
// grpc-web's first message: what the page's script, not the browser,
// writes.
type extraHeadersKey struct{}

func withFirstMessageHeaders(ctx context.Context, lines string) context.Context {
	return context.WithValue(ctx, extraHeadersKey{}, lines)
}

func firstMessageHeaders(ctx context.Context) string {
	s, _ := ctx.Value(extraHeadersKey{}).(string)
	return s
}

// readLoop reads until the websocket closes. Reading is also what makes
// the library answer the gateway's pings.
func (c *wsClient) readLoop() {
	defer close(c.done)
	var buf []byte
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			return
		}
		buf = append(buf, data...)
		for len(buf) >= 5 {
			n := int(binary.BigEndian.Uint32(buf[1:5]))
			if len(buf) < 5+n {
				break
			}
			flag, payload := buf[0], buf[5:5+n]
			buf = buf[5+n:]
			if flag&0x80 != 0 { // headers or trailers, as text
				for _, line := range strings.Split(string(payload), "\r\n") {
					if v, ok := strings.CutPrefix(strings.ToLower(line), "grpc-status:"); ok {
						c.status = strings.TrimSpace(v)
					}
				}
				continue
			}
			ev := &chatv1.ChatResponse{}
			if err := proto.Unmarshal(payload, ev); err != nil {
				return
			}
			c.events <- ev
		}
	}
}

// send sends one request.
func (c *wsClient) send(t *testing.T, req *chatv1.ChatRequest) {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 6, 6+len(b)) // control byte, compressed flag, length
	binary.BigEndian.PutUint32(msg[2:6], uint32(len(b)))
	msg = append(msg, b...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// finishSend sends grpc-web's end-of-sending marker: a half-close.
func (c *wsClient) finishSend(t *testing.T) {
	t.Helper()
	if err := c.conn.Write(context.Background(), websocket.MessageBinary, []byte{1}); err != nil {
		t.Fatalf("finish send: %v", err)
	}
}

// next returns the next event, or fails the test after waitTimeout.
func (c *wsClient) next(t *testing.T) *chatv1.ChatResponse {
	t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-c.done:
		select {
		case ev := <-c.events:
			return ev
		default:
		}
		t.Fatalf("stream ended (grpc-status %q) while waiting for an event", c.status)
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %s", waitTimeout)
	}
	return nil
}

// join opens a stream through addr and joins as name.
func join(t *testing.T, addr, name string) *wsClient {
	t.Helper()
	c, _, err := dialChat(t, addr, "")
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}})
	if ev := c.next(t); ev.GetWelcome() == nil {
		t.Fatalf("%s: first event %v, want a welcome", name, ev)
	}
	return c
}

// expectLeft waits for user to leave, skipping other events, and returns
// the reason.
func (c *wsClient) expectLeft(t *testing.T, user string) chatv1.LeaveReason {
	t.Helper()
	for {
		ev := c.next(t)
		if l := ev.GetUserLeft(); l != nil && l.GetUser().GetUsername() == user {
			return l.GetReason()
		}
	}
}

// expectJoined waits for user to join, skipping other events.
func (c *wsClient) expectJoined(t *testing.T, user string) {
	t.Helper()
	for {
		if j := c.next(t).GetUserJoined(); j != nil && j.GetUser().GetUsername() == user {
			return
		}
	}
}

// grpcWebPost makes a unary grpc-web call of ListUsers over plain HTTP.
func grpcWebPost(t *testing.T, addr, origin string) *http.Response {
	t.Helper()
	body := []byte{0, 0, 0, 0, 0} // an empty ListUsersRequest
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/chat.v1.ChatService/ListUsers", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	req.Header.Set("X-Grpc-Web", "1")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return do(t, req)
}

// preflight makes the CORS preflight a browser sends before a grpc-web
// call from another origin.
func preflight(t *testing.T, addr, origin string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, "http://"+addr+"/chat.v1.ChatService/ListUsers", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// statusOf returns the HTTP status code of a refused websocket upgrade.
func statusOf(resp *http.Response, err error) string {
	if resp != nil {
		return strconv.Itoa(resp.StatusCode)
	}
	return "no response: " + errString(err)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
