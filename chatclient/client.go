package chatclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrClosed is the error of a [Client]'s methods after Close.
var ErrClosed = errors.New("chatclient: client closed")

// ErrReconnecting is Send's error while a [Client] is taking its session
// back: what was sent was not, and may be sent again once Recv has
// returned the reconnection's welcome.
var ErrReconnecting = errors.New("chatclient: not connected, reconnecting")

// Client is a joined chat session that outlives its connections: when its
// stream breaks, Recv reconnects, resumes the session with its resume token
// and the seq of the last event it returned, and returns the new welcome
// (see the package comment).
//
// A user may be on several devices at once, each a Client of its own:
// Config.DeviceKey joins as another device of a user already in the chat,
// and every device gets the user's messages, channels and read marks.
//
// Recv must be called from one goroutine at a time; Send, Leave, Close and
// the other methods may be called from any goroutine, concurrently with
// Recv and with each other.
type Client struct {
	cfg     Config
	welcome *chatv1.Welcome // the first welcome; never changed

	ctx    context.Context // ended by Close: ends a reconnection
	cancel context.CancelFunc

	// Only Recv's goroutine uses these.
	token string // the session's resume token
	you   string // the username, as the server recorded it
	seq   uint64 // seq of the last event Recv returned
	err   error  // why the session ended, once Recv has said so

	// sendMu serialises sends, as gRPC requires. It is held while a send
	// waits for flow control, so it is never taken with mu held.
	sendMu sync.Mutex

	mu        sync.Mutex // guards the fields below; never held while sending
	stream    *Stream    // nil while reconnecting
	server    int        // index in cfg.Servers of stream's server, or of the one lost
	deviceKey string     // the last device key a welcome carried
	leaving   bool       // Leave was called: the stream's end is no error
	closed    bool
}

// Connect joins the chat as username on the first of cfg.Servers that
// welcomes it, moving on to the next while a server is unreachable or
// answers UNAVAILABLE (shutting down). With cfg.DeviceKey it joins as
// another device of username's user. ctx bounds the connection and the
// join only. Errors are [Open]'s, from the last server tried: a join
// refused has the server's status (codes.AlreadyExists: the name is in
// use, and cfg.DeviceKey is not its user's; codes.InvalidArgument: it is
// not a valid name; codes.ResourceExhausted: the user is on as many
// devices as chatd allows, or chatd is full; codes.Unauthenticated:
// sign-in required).
func Connect(ctx context.Context, cfg Config, username string) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("chatclient: Config.Servers is empty")
	}
	join := &chatv1.Join{Username: username, DeviceKey: cfg.DeviceKey}
	var err error
	for i, addr := range cfg.Servers {
		var (
			s *Stream
			w *chatv1.ChatResponse
		)
		if s, w, err = Open(ctx, addr, cfg, join); err == nil {
			c := &Client{cfg: cfg, welcome: w.GetWelcome(), stream: s, server: i}
			c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
			c.see(w)
			return c, nil
		}
		var ue *UnreachableError
		if ctx.Err() != nil || !errors.As(err, &ue) && status.Code(err) != codes.Unavailable {
			break
		}
	}
	return nil, err
}

// Welcome is the server's welcome of the join: who the session is
// (Welcome.You), who was online, the resume token. Later welcomes, of
// reconnections, come out of Recv.
func (c *Client) Welcome() *chatv1.Welcome { return c.welcome }

// DeviceKey is the key another device gives as its Config.DeviceKey to
// join as this client's user: the one the last welcome carried, which
// chatd sets on the welcome of the user's first device and of each device
// that presented it. It lasts while any of the user's devices is online or
// reconnecting. It is "" on a device that joined signed in, with no key,
// as a user already there (a token for the user is all another device
// needs). It is
// secret: whoever has it can join as the user.
func (c *Client) DeviceKey() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deviceKey
}

// Recv returns the next event of the session, one at a time, in the order
// the server sent them. When the stream breaks and cfg.ReconnectTimeout is
// set, Recv reconnects, and returns the new welcome: its Recovery is
// RECOVERY_COMPLETE if the missed events follow, RECOVERY_INCOMPLETE if
// they were lost and the welcome's snapshot replaces what the caller knew.
//
// Recv returns io.EOF once the server has ended the session after Leave;
// ErrClosed after Close; else why the session ended and could not be
// taken back: the stream's status, or a *[GaveUpError] if no server took
// the session back within ReconnectTimeout.
func (c *Client) Recv() (*chatv1.ChatResponse, error) {
	if c.err != nil {
		return nil, c.err
	}
	c.mu.Lock()
	s, closed := c.stream, c.closed
	c.mu.Unlock()
	if closed {
		return nil, c.ended(ErrClosed)
	}
	ev, err := s.Recv()
	if err == nil {
		c.see(ev)
		return ev, nil
	}
	c.mu.Lock()
	leaving := c.leaving
	c.mu.Unlock()
	if leaving || c.cfg.ReconnectTimeout <= 0 || !Resumable(err) {
		return nil, c.ended(err)
	}
	if ev, err = c.reconnect(s); err != nil {
		return nil, c.ended(err)
	}
	return ev, nil
}

// ended turns why the session ended into Recv's error: ErrClosed if
// Close ended it.
func (c *Client) ended(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		err = ErrClosed
	}
	c.err = err
	return err
}

// see notes ev's seq and, for a welcome, who the session is and its
// device key. mu must not be held.
func (c *Client) see(ev *chatv1.ChatResponse) {
	if seq := ev.GetSeq(); seq != 0 {
		c.seq = seq
	}
	if w := ev.GetWelcome(); w != nil {
		c.you, c.token = w.GetYou().GetUsername(), w.GetResumeToken()
		if key := w.GetDeviceKey(); key != "" {
			c.mu.Lock()
			c.deviceKey = key
			c.mu.Unlock()
		}
	}
}

// reconnect replaces the broken stream lost with a new one that resumes the
// session, and returns the new welcome, or why it could not.
func (c *Client) reconnect(lost *Stream) (*chatv1.ChatResponse, error) {
	c.mu.Lock()
	lost.Close()
	c.stream = nil
	from := c.server
	key := c.deviceKey
	c.mu.Unlock()
	if key == "" {
		key = c.cfg.DeviceKey
	}

	// The resume token is enough to take the session back; the device key
	// is for when it is not: once the session has expired (away longer
	// than chatd's grace period), the name is still held by the user's
	// other devices, and the key makes this one of them again, afresh,
	// where the join would otherwise be refused as a name in use.
	join := &chatv1.Join{Username: c.you, ResumeToken: c.token, LastSeq: c.seq, DeviceKey: key}
	deadline := time.Now().Add(c.cfg.ReconnectTimeout)
	var (
		s *Stream
		w *chatv1.ChatResponse
	)
	r := Retry{Servers: len(c.cfg.Servers), Lost: from, Deadline: deadline}
	server, err := r.Do(c.ctx, func(ctx context.Context, server int) error {
		actx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		var err error
		s, w, err = Open(actx, c.cfg.Servers[server], c.cfg, join)
		return err
	})
	if err != nil {
		if server >= 0 {
			err = fmt.Errorf("%s: %w", c.cfg.Servers[server], err)
		}
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.Close()
		return nil, ErrClosed
	}
	c.stream, c.server = s, server
	c.mu.Unlock()
	c.see(w) // takes mu for the device key
	return w, nil
}

// current is the stream to send on, or why there is none.
func (c *Client) current() (*Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.stream == nil:
		return nil, ErrReconnecting
	}
	return c.stream, nil
}

// Send sends req on the current stream. An error means it was not sent:
// ErrReconnecting while the session is being taken back, ErrClosed after
// Close, else the stream is over and Recv says why (and may reconnect).
func (c *Client) Send(req *chatv1.ChatRequest) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	s, err := c.current()
	if err != nil {
		return err
	}
	return s.Send(req)
}

// SendText sends text to channel (with or without its "#"; "" is
// #general). The server echoes it to every member, the sender included,
// or answers with a Rejected event that carries clientID.
func (c *Client) SendText(channel, text, clientID string) error {
	return c.Send(&chatv1.ChatRequest{
		ClientId: clientID,
		Action:   &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Channel: channel, Text: text}},
	})
}

// MarkRead marks a conversation read up to the message messageID: the
// channel's (channel set, with or without its "#"), or the private messages
// with the user with. The server keeps the mark for the user, and each of
// the user's devices, this one included, gets a Read event with the new
// mark and what is left unread; a mark at or before the current one changes
// nothing and sends nothing. A message the user sends marks its
// conversation read already. A mark refused (a channel the user is not in,
// an id that is no message) comes back as a Rejected event that carries
// clientID.
func (c *Client) MarkRead(channel, with, messageID, clientID string) error {
	return c.Send(&chatv1.ChatRequest{
		ClientId: clientID,
		Action: &chatv1.ChatRequest_MarkRead{MarkRead: &chatv1.MarkRead{
			Channel: channel, With: with, MessageId: messageID,
		}},
	})
}

// Leave ends the session as a logout: the others see it leave, and Recv
// returns the events still on their way, then io.EOF.
func (c *Client) Leave() error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	s, err := c.current()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.leaving = true
	c.mu.Unlock()
	// If Send fails, CloseSend does too, and Recv says why.
	_ = s.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
	return s.CloseSend()
}

// Close ends the client at once: its stream, its connection, a
// reconnection under way. Without a Leave first, chatd keeps the session
// for its grace period, as for a broken connection. Close may be called
// any number of times.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.cancel()
	if c.stream != nil {
		c.stream.Close()
	}
}
