package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/grpcdial"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// grpcTransport reaches chatd over gRPC, with one connection per session
// unless told to share a few. With several addresses (the nodes of a
// cluster), session m joins on addrs[nodeOf(m, len(addrs))].
type grpcTransport struct {
	addrs   []string
	timeout time.Duration        // for each connection to be ready
	opts    []grpc.DialOption    // plaintext or TLS (see transportCreds), and the windows (see dialOptions)
	tag     bool                 // send each message's text as its client_id too, so that a refusal names it (--restart-node)
	batches bool                 // members ask for several events per response (Join.accept_batches), as chatctl and the page do
	shared  [][]*grpc.ClientConn // --conns > 0: conns per address, members share them in turn

	mu     sync.Mutex
	own    []*grpc.ClientConn // one per member, and one per resume
	closed bool
}

func newGRPCTransport(ctx context.Context, addrs []string, conns int, timeout time.Duration, opts ...grpc.DialOption) (*grpcTransport, error) {
	t := &grpcTransport{addrs: addrs, timeout: timeout, opts: opts}
	if conns == 0 {
		return t, nil
	}
	t.shared = make([][]*grpc.ClientConn, len(addrs))
	for k, addr := range addrs {
		for range conns {
			cc, err := t.dial(ctx, addr)
			if err != nil {
				t.close()
				return nil, err
			}
			t.shared[k] = append(t.shared[k], cc)
		}
	}
	return t, nil
}

// dial connects to chatd and waits until the connection is ready. The
// probe found chatd there, so a connection it closes at once is one past
// its --max-conns-per-ip: say so now, rather than wait for --join-timeout
// while gRPC tries again and again. A refused connection is tried again
// (a storm of thousands of connections may fill the listen backlog), with
// backoff, within timeout and ctx.
func (t *grpcTransport) dial(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		cc, err := grpcdial.Dial(ctx, addr, t.timeout, t.opts...)
		var ue *grpcdial.UnreachableError
		switch {
		case err == nil:
			return cc, nil
		case errors.As(err, &ue) && ue.Refused() && sleep(ctx, pause):
			continue
		case errors.As(err, &ue) && ue.Err == nil && !ue.TimedOut:
			return nil, fmt.Errorf("chatd at %s closed the connection at once: it does past its --max-conns-per-ip from one address, and every member connects from this machine; run chatd with %s", addr, perAddressFlags)
		}
		return nil, err
	}
}

func (t *grpcTransport) join(ctx context.Context, m *member) (client, welcome, error) {
	n := len(t.addrs)
	k := nodeOf(m, n)
	var cc, own *grpc.ClientConn
	if len(t.shared) > 0 {
		cc = t.sharedConn(m, k)
	} else {
		var err error
		if cc, err = t.dial(ctx, t.addrs[k]); err != nil {
			return nil, welcome{}, fmt.Errorf("%s: %w", m, err)
		}
		if err := t.keep(cc); err != nil {
			return nil, welcome{}, err
		}
		own = cc
	}
	// WaitForReady: a shared connection may be reconnecting; ride that
	// out, within --join-timeout, as any real client would.
	sctx, cancel := context.WithCancel(ctx)
	c, w, err := joinStream(sctx, cc, &chatv1.Join{Username: m.name, AcceptBatches: t.batches, DeviceKey: m.deviceKey()}, grpc.WaitForReady(true))
	if c != nil {
		c.tag, c.channel = t.tag, m.chanName
	}
	if err != nil {
		cancel()
		return nil, welcome{}, fmt.Errorf("%s: %w", m, err)
	}
	c.cancel, c.own = cancel, own
	return c, w, nil
}

// resume joins m again on node with its resume token and lastSeq, as a
// client whose node stopped does (see move.go). Unlike a join it does not
// wait for a node that is down: it tries once, within resumeTimeout, so
// that the member can try the next node.
func (t *grpcTransport) resume(ctx context.Context, m *member, node int, lastSeq uint64) (client, welcome, error) {
	var cc, own *grpc.ClientConn
	if len(t.shared) > 0 {
		cc = t.sharedConn(m, node)
	} else {
		var err error
		// Dialled as the join was: TLS if the run is, and the same
		// flow-control windows.
		if cc, err = grpcdial.Dial(ctx, t.addrs[node], resumeTimeout, t.opts...); err != nil {
			return nil, welcome{}, err
		}
		if err := t.keep(cc); err != nil {
			return nil, welcome{}, err
		}
		own = cc
	}
	sctx, cancel := context.WithCancel(ctx)
	// The stream outlives the attempt: only the wait for the welcome is
	// bounded.
	timer := time.AfterFunc(resumeTimeout, cancel)
	c, w, err := joinStream(sctx, cc, &chatv1.Join{Username: m.name, ResumeToken: m.token, LastSeq: lastSeq, AcceptBatches: t.batches})
	if c != nil {
		c.tag, c.channel = t.tag, m.chanName
	}
	if !timer.Stop() && err == nil {
		err = fmt.Errorf("no welcome within %s", resumeTimeout)
	}
	if err != nil {
		cancel()
		if own != nil {
			_ = own.Close()
		}
		return nil, welcome{}, err
	}
	c.cancel, c.own = cancel, own
	return c, w, nil
}

// sharedConn is the connection to node k that session m shares
// (--conns): a device's sessions on the node are those of members
// m.idx = k-d, k-d+n, k-d+2n, … (mod n) and take its connections in turn;
// a session that moved to k takes one by the same rule.
func (t *grpcTransport) sharedConn(m *member, k int) *grpc.ClientConn {
	return t.shared[k][(m.idx/len(t.addrs))%len(t.shared[k])]
}

// keep remembers a member's own connection, to close it with the
// transport; a transport already closed closes it at once.
func (t *grpcTransport) keep(cc *grpc.ClientConn) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = cc.Close()
		return errors.New("the run is over")
	}
	t.own = append(t.own, cc)
	return nil
}

// joinStream opens a Chat stream on cc, sends join and waits for the
// welcome. The stream lives as long as ctx.
func joinStream(ctx context.Context, cc *grpc.ClientConn, j *chatv1.Join, opts ...grpc.CallOption) (*grpcClient, welcome, error) {
	stream, err := chatv1.NewChatServiceClient(cc).Chat(ctx, opts...)
	if err != nil {
		return nil, welcome{}, fmt.Errorf("open stream: %w", err)
	}
	if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: j}}); err != nil {
		// The stream's status says why; Send only reports io.EOF.
		_, err = stream.Recv()
		return nil, welcome{}, fmt.Errorf("join: %w", explainRefusal(err))
	}
	resp := new(chatv1.ChatResponse)
	if err := stream.RecvMsg(resp); err != nil {
		return nil, welcome{}, fmt.Errorf("join: %w", explainRefusal(err))
	}
	var rest []*chatv1.ChatResponse // what came with the welcome in its batch
	if b := resp.GetBatch(); b != nil && len(b.GetEvents()) > 0 {
		resp, rest = b.GetEvents()[0], b.GetEvents()[1:]
	}
	wel := resp.GetWelcome()
	if wel == nil {
		return nil, welcome{}, fmt.Errorf("join answered with %v, want a welcome", resp)
	}
	w := welcome{
		seq:       resp.GetSeq(),
		online:    uint64(len(wel.GetOnlineUsers())),
		token:     wel.GetResumeToken(),
		complete:  wel.GetRecovery() == chatv1.Recovery_RECOVERY_COMPLETE,
		deviceKey: wel.GetDeviceKey(),
	}
	return &grpcClient{stream: stream, resp: new(chatv1.ChatResponse), rest: rest}, w, nil
}

func (t *grpcTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ccs := range append(t.shared, t.own) {
		for _, cc := range ccs {
			_ = cc.Close()
		}
	}
	t.shared, t.own, t.closed = nil, nil, true
}

type grpcClient struct {
	stream  grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	resp    *chatv1.ChatResponse   // reused by every receive
	rest    []*chatv1.ChatResponse // events that came in the welcome's batch, to handle first
	cancel  context.CancelFunc     // ends the stream
	own     *grpc.ClientConn       // the member's own connection; nil if shared
	tag     bool                   // see grpcTransport.tag
	channel string                 // where send sends ("": general)
}

func (c *grpcClient) send(text []byte) error {
	// A fresh request each time: gRPC does not promise that a message is
	// no longer used once SendMsg returns.
	req := &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: string(text), Channel: c.channel}}}
	if c.tag {
		req.ClientId = string(text)
	}
	return c.stream.Send(req)
}

func (c *grpcClient) sendPrivate(to, text string) error {
	return c.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text, Recipient: to}}})
}

func (c *grpcClient) joinChannel(name string) error {
	return c.stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: name}}})
}

func (c *grpcClient) typing(channel string, stopped bool) error {
	return c.stream.Send(typingRequest(channel, stopped))
}

func (c *grpcClient) close() {
	c.cancel()
	if c.own != nil {
		_ = c.own.Close()
	}
}

func (c *grpcClient) receive(m *member) error {
	for _, ev := range c.rest {
		handle(m, ev)
	}
	c.rest = nil
	for {
		if err := c.stream.RecvMsg(c.resp); err != nil {
			if status.Code(err) == codes.ResourceExhausted {
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

// handle checks and counts one event received by m.
func handle(m *member, resp *chatv1.ChatResponse) {
	m.seq(resp.GetSeq())
	switch ev := resp.GetEvent().(type) {
	case *chatv1.ChatResponse_UserJoined:
		if ev.UserJoined.GetResumed() {
			// Someone came back who had been seen to leave: a
			// flap, not a new member.
			m.flaps++
		} else {
			m.joins.Add(1)
		}
	case *chatv1.ChatResponse_UserLeft:
		m.flaps++
	case *chatv1.ChatResponse_ChannelJoined:
		if ev.ChannelJoined.GetUser().GetUsername() == m.name && ev.ChannelJoined.GetChannel() == m.chanName {
			m.inChannel.Store(true)
		}
	case *chatv1.ChatResponse_Message:
		msg := ev.Message
		switch {
		case resp.GetHistory():
			// History is what general said before this run (when
			// attached to a running chatd): not the run's to count.
		case msg.GetRecipient() != "" && msg.GetSender() == m.name && msg.GetText() == settleText:
			m.settle()
		default:
			onMessage(m, msg.GetText())
		}
	case *chatv1.ChatResponse_Rejected:
		m.reject(ev.Rejected.GetReason(), ev.Rejected.GetClientId())
	case *chatv1.ChatResponse_Typing:
		m.onTyping(ev.Typing)
	}
}

// transportCreds is plaintext, or TLS trusting the CAs in caFile if it is
// set: with TLS, what a session costs chatd includes its TLS connection.
func transportCreds(caFile string) (grpc.DialOption, error) {
	if caFile == "" {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", caFile)
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})), nil
}

// dialOptions are how members dial: with creds, and with chatctl's fixed
// flow-control windows unless bdp asks for grpc-go's default ones (see
// grpcdial.FixedWindows).
func dialOptions(creds grpc.DialOption, bdp bool) []grpc.DialOption {
	if bdp {
		return []grpc.DialOption{creds}
	}
	return append([]grpc.DialOption{creds}, grpcdial.FixedWindows()...)
}
