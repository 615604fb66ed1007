package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
)

// The baseline is the same fan-out with nothing but TCP: a server in this
// process (its own goroutines, on loopback) that numbers every event under
// one lock and queues the same encoded frame on every connection's bounded
// queue, each connection with one writer goroutine behind a bufio.Writer;
// like chatd, a connection whose queue is full is dropped. It is what the
// machine can do for this workload without gRPC, HTTP/2 and protobuf, so
// chatd's figures can be quoted as a ratio of it.
//
// A frame is a 4-byte big-endian length and then that many bytes: a type
// byte, and from the server an 8-byte big-endian seq, then the body.
const (
	frameJoin    = 'J' // client: body is the name; server: someone joined
	frameWelcome = 'W' // server: body is the names online, comma-separated
	frameSend    = 'M' // client: body is the text
	frameMessage = 'm' // server: body is a 1-byte name length, the name, the text
	frameLeft    = 'L' // server: body is the name of who left

	maxFrame = 1 << 20
)

// rawServer is the baseline's server.
type rawServer struct {
	ln        net.Listener
	queueSize int
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu     sync.Mutex
	seq    uint64
	peers  []*rawPeer     // in join order
	users  []string       // the peers' names, each once, in join order: who is online
	online map[string]int // peers per name
	conns  map[net.Conn]struct{}
	closed bool
}

type rawPeer struct {
	c       net.Conn
	name    string
	q       chan []byte
	quit    chan struct{} // closed when the peer is dropped or leaves
	dropped bool          // guarded by rawServer.mu
}

func startRawServer(queueSize int) (*rawServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	s := &rawServer{ln: ln, queueSize: queueSize, online: make(map[string]int), conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.accept)
	return s, nil
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

func (s *rawServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(c) })
	}
}

// close stops the server and waits for its goroutines. It may be called
// more than once.
func (s *rawServer) close() {
	s.closeOnce.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// serve runs one connection: a join, then messages until it closes.
func (s *rawServer) serve(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 4096)
	var buf []byte
	buf, err := readFrame(r, buf)
	if err != nil || len(buf) < 2 || buf[0] != frameJoin || len(buf) > 256 {
		return
	}
	p := &rawPeer{c: c, name: string(buf[1:]), q: make(chan []byte, s.queueSize), quit: make(chan struct{})}

	s.mu.Lock()
	// Presence is per name, as chatd's is per user: another connection
	// under a name already here (a member's other device, --devices) is
	// announced to nobody.
	if s.online[p.name] == 0 {
		s.seq++
		s.publishLocked(serverFrame(frameJoin, s.seq, nil, p.name))
		s.users = append(s.users, p.name)
	}
	s.online[p.name]++
	s.peers = append(s.peers, p)
	names := make([]byte, 0, len(s.users)*8)
	for i, u := range s.users {
		if i > 0 {
			names = append(names, ',')
		}
		names = append(names, u...)
	}
	p.q <- serverFrame(frameWelcome, s.seq, names, "") // the queue is new
	s.mu.Unlock()

	s.wg.Go(func() { p.write() })
	for {
		if buf, err = readFrame(r, buf); err != nil || len(buf) < 1 || buf[0] != frameSend {
			break
		}
		s.mu.Lock()
		if p.dropped {
			s.mu.Unlock()
			break
		}
		s.seq++
		// One frame, encoded once, shared by every queue.
		f := serverFrame(frameMessage, s.seq, buf[1:], p.name)
		s.publishLocked(f)
		s.mu.Unlock()
	}
	s.mu.Lock()
	if !p.dropped {
		s.removeLocked(p)
		if s.online[p.name] == 0 { // its last connection
			s.seq++
			s.publishLocked(serverFrame(frameLeft, s.seq, nil, p.name))
		}
	}
	s.mu.Unlock()
}

// publishLocked queues f on every peer without blocking, and drops the peers
// whose queue is full (without telling the others: unlike chatd's hub, the
// baseline sends no event for it).
func (s *rawServer) publishLocked(f []byte) {
	var full []*rawPeer
	for _, p := range s.peers {
		select {
		case p.q <- f:
		default:
			full = append(full, p)
		}
	}
	for _, p := range full {
		s.removeLocked(p)
		p.c.Close() // the client sees its connection end: dropped as too slow
	}
}

func (s *rawServer) removeLocked(p *rawPeer) {
	p.dropped = true
	close(p.quit)
	if i := slices.Index(s.peers, p); i >= 0 {
		s.peers = slices.Delete(s.peers, i, i+1)
	}
	if s.online[p.name]--; s.online[p.name] == 0 {
		delete(s.online, p.name)
		if i := slices.Index(s.users, p.name); i >= 0 {
			s.users = slices.Delete(s.users, i, i+1)
		}
	}
}

// write is the peer's writer: it batches whatever is queued into one write.
func (p *rawPeer) write() {
	w := bufio.NewWriterSize(p.c, 32<<10)
	for {
		select {
		case f := <-p.q:
			_, _ = w.Write(f)
			for range len(p.q) {
				_, _ = w.Write(<-p.q)
			}
			if err := w.Flush(); err != nil {
				p.c.Close()
				return
			}
		case <-p.quit:
			return
		}
	}
}

// serverFrame encodes a frame from the server. For a message, name is the
// sender and body the text.
func serverFrame(typ byte, seq uint64, body []byte, name string) []byte {
	n := 1 + 8 + len(body) + len(name)
	if typ == frameMessage {
		n++
	}
	f := make([]byte, 4, 4+n)
	binary.BigEndian.PutUint32(f, uint32(n))
	f = append(f, typ)
	f = binary.BigEndian.AppendUint64(f, seq)
	if typ == frameMessage {
		f = append(f, byte(len(name)))
	}
	f = append(f, name...)
	return append(f, body...)
}

// readFrame reads one frame's payload into buf, growing it if needed.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxFrame {
		return buf, fmt.Errorf("frame of %d bytes is too large", n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// rawTransport is the members' side of the baseline.
type rawTransport struct {
	addr string

	mu    sync.Mutex
	conns []net.Conn
}

func (t *rawTransport) join(ctx context.Context, m *member) (client, welcome, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, welcome{}, fmt.Errorf("%s: %w", m, err)
	}
	t.mu.Lock()
	t.conns = append(t.conns, c)
	t.mu.Unlock()
	rc := &rawClient{c: c, r: bufio.NewReaderSize(c, 32<<10)}
	if err := rc.write(frameJoin, []byte(m.name)); err != nil {
		return nil, welcome{}, fmt.Errorf("%s: join: %w", m, err)
	}
	// Closing the connection is what ends a blocked read when ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if rc.buf, err = readFrame(rc.r, rc.buf); err != nil {
		return nil, welcome{}, fmt.Errorf("%s: join: %w", m, err)
	}
	if len(rc.buf) < 9 || rc.buf[0] != frameWelcome {
		return nil, welcome{}, fmt.Errorf("%s: join answered with frame type %q, want a welcome", m, rc.buf[:min(len(rc.buf), 1)])
	}
	// Anyone may connect under any name, so a member's other devices need
	// no key: the name stands for one.
	w := welcome{seq: binary.BigEndian.Uint64(rc.buf[1:9]), online: uint64(bytes.Count(rc.buf[9:], []byte{','}) + 1), deviceKey: m.name}
	return rc, w, nil
}

func (t *rawTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		c.Close()
	}
	t.conns = nil
}

type rawClient struct {
	c    net.Conn
	r    *bufio.Reader
	buf  []byte // frames read; reused
	wbuf []byte // frames written; reused by the one sender goroutine
}

func (c *rawClient) write(typ byte, body []byte) error {
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf[:0], uint32(1+len(body)))
	c.wbuf = append(c.wbuf, typ)
	c.wbuf = append(c.wbuf, body...)
	_, err := c.c.Write(c.wbuf)
	return err
}

func (c *rawClient) send(text []byte) error { return c.write(frameSend, text) }

// sendPrivate is for a move, which the baseline never makes.
func (c *rawClient) sendPrivate(string, string) error {
	return errors.New("the baseline has no private messages")
}

// joinChannel: the baseline has one channel (--channels goes without it).
func (c *rawClient) joinChannel(string) error {
	return errors.New("the raw TCP baseline has no channels")
}

// typing: the baseline has no typing (--typers goes without it).
func (c *rawClient) typing(string, bool) error {
	return errors.New("the raw TCP baseline has no typing")
}

func (c *rawClient) close() { c.c.Close() }

func (c *rawClient) receive(m *member) error {
	for {
		var err error
		if c.buf, err = readFrame(c.r, c.buf); err != nil {
			// The baseline server closes a connection only to drop it
			// (at the teardown, chatbench closes it: not counted).
			return fmt.Errorf("%w: %v", errSlowDropped, err)
		}
		f := c.buf
		if len(f) < 9 {
			return fmt.Errorf("baseline frame of %d bytes is too short", len(f))
		}
		m.seq(binary.BigEndian.Uint64(f[1:9]))
		if f[0] == frameJoin {
			m.joins.Add(1)
		}
		if f[0] == frameMessage {
			if len(f) < 10 || len(f) < 10+int(f[9]) {
				return errors.New("baseline message frame is truncated")
			}
			onMessage(m, f[10+int(f[9]):])
		}
	}
}
