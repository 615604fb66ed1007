// Package netproxy is a TCP proxy for tests that need to break the network
// between a client and a server in ways a real network breaks: most of all
// [Proxy.Freeze], which stops every byte in both directions while leaving
// the sockets open, as when a cable is pulled or a peer's machine vanishes.
// Neither end is told anything, so only its own timeouts (TCP, HTTP/2 or
// gRPC keepalive, application heartbeats) can find out.
//
// The proxy knows nothing of the protocol it carries, so it serves gRPC,
// gRPC-Web, WebSocket or plain HTTP tests alike.
package netproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy accepts TCP connections on a loopback address and forwards each one
// to a target address. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	frozen    chan struct{} // closed by Freeze
	freezeOne sync.Once
	closed    chan struct{} // closed by Close
	closeOne  sync.Once
	refusing  atomic.Bool     // set by Refuse
	wg        sync.WaitGroup  // the accept loop and every connection's goroutines
	ctx       context.Context // cancelled by Close, to abandon dials
	cancel    context.CancelFunc

	mu       sync.Mutex
	isClosed bool
	conns    map[net.Conn]struct{} // every open socket, both sides
}

// New starts a proxy that listens on an unused port of 127.0.0.1 and
// forwards every connection to target (host:port). Close it when done.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln:     ln,
		target: target,
		frozen: make(chan struct{}),
		closed: make(chan struct{}),
		conns:  make(map[net.Conn]struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Start is New for a test: it fails tb if the proxy cannot start, and
// closes the proxy when tb ends.
func Start(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := New(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// Addr returns the address clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops forwarding in both directions, on every connection, for good:
// bytes already read are dropped, and nothing more is read, so senders
// block once the kernel's buffers fill. No socket is closed, and a close or
// reset by either end is not passed on. Connections accepted after Freeze
// are held open and never forwarded. Calling Freeze again does nothing.
func (p *Proxy) Freeze() {
	p.freezeOne.Do(func() { close(p.frozen) })
}

// Close stops accepting, closes every socket of every connection (so both
// ends see the connection go away) and waits for the proxy's goroutines to
// return. Calling Close again does nothing and returns nil.
func (p *Proxy) Close() error {
	var err error
	p.closeOne.Do(func() {
		close(p.closed)
		p.cancel()
		err = p.ln.Close()
		p.mu.Lock()
		p.isClosed = true
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

// CloseConns closes both sockets of every connection open now, so that
// both ends see their connection go away at once, as when a router in
// between restarts; unlike Close, the proxy goes on accepting and
// forwarding new connections. It returns how many sockets it closed.
func (p *Proxy) CloseConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		_ = c.Close()
	}
	return n
}

// Refuse, with on set, makes the proxy close every connection it accepts
// from now on at once, without reaching the target, as a server that is
// down refuses them; connections already open are not touched. Refuse(false)
// forwards new connections again. With CloseConns it breaks a connection
// and keeps its client from reconnecting for as long as a test needs.
func (p *Proxy) Refuse(on bool) {
	p.refusing.Store(on)
}

func (p *Proxy) isFrozen() bool {
	select {
	case <-p.frozen:
		return true
	default:
		return false
	}
}

// track records c as open, or closes it and reports false if the proxy is
// closed already.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			// The listener is closed (Close), or broken, and then there is
			// nothing more to accept either.
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one client connection to a new connection to the target.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	if p.isFrozen() {
		<-p.closed // a cut network: hold the socket, forward nothing
		return
	}
	if p.refusing.Load() {
		return // closed by untrack, before a byte is read or sent
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	upstream, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		return // the client sees its connection closed, as with a refused dial
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(upstream, client) }()
	go func() { defer pumps.Done(); p.pump(client, upstream) }()
	pumps.Wait()
}

// pump copies src to dst until src ends, then passes the end on as a
// half-close of dst, unless the proxy is frozen.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.isFrozen() {
			// Whatever arrived, data or end of stream, is lost in the cut.
			<-p.closed
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				// dst is gone: stop reading src too, so its sender sees it.
				_ = src.Close()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if hc, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = hc.CloseWrite()
					return
				}
			}
			_ = dst.Close()
			return
		}
	}
}
