package gateway

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Dead websocket peers are found the way gRPC's server keepalive finds dead
// HTTP/2 peers: a connection that has sent nothing for KeepaliveTime is
// pinged, and one still silent KeepaliveTimeout later is closed. Browsers
// answer a websocket ping with a pong on their own, so a live tab always
// answers, however idle its user.
//
// The websocket library (nhooyr.io/websocket, inside improbable's wrapper)
// is not reachable from here, so the ping is written on the raw connection,
// between two of the library's frames. watchedConn follows the frames the
// library writes to know when it is between two; RFC 6455 lets control
// frames go between any two frames, even two fragments of one message.
// Closing the connection makes the library's read fail, which ends the
// stream as an abort (see abortAwareBody): the user is disconnected.

// pingFrame is an unmasked websocket ping (FIN, opcode 9) with a short
// payload. The library ignores pongs it did not ask for.
var pingFrame = append([]byte{0x89, byte(len("chatd"))}, "chatd"...)

// watchListener wraps every accepted connection in a watchedConn.
type watchListener struct {
	net.Listener
}

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newWatchedConn(c), nil
}

// watchedConn records when its peer last sent anything and, once it carries
// a websocket, where the frames it writes begin and end.
type watchedConn struct {
	net.Conn
	lastRead atomic.Int64 // UnixNano of the last read that returned bytes

	wmu          sync.Mutex    // held by every write; guards the three fields below
	ws           bool          // the connection carries a websocket: writes are frames
	frames       frameTracker  // the frames written so far
	writeTimeout time.Duration // once ws: how long one write may block

	closeOnce sync.Once
	closed    chan struct{} // closed by Close, to stop the watcher
	done      func()        // once ws: ends the websocket's request, after Close
}

func newWatchedConn(c net.Conn) *watchedConn {
	w := &watchedConn{Conn: c, closed: make(chan struct{})}
	w.lastRead.Store(time.Now().UnixNano())
	return w
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *watchedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws {
		// A peer that stops reading but keeps sending would otherwise hold
		// a write, and with it the stream and whatever the peer sends, for
		// ever: the silence check only sees what the peer sends. The
		// websocket library sets no deadlines of its own; a failed write
		// closes the websocket, which ends the session as a disconnect.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	n, err := c.Conn.Write(p)
	if c.ws {
		c.frames.consume(p[:n])
		if err != nil {
			// The websocket library waits, after a failed write, for
			// its connection to be closed or its context to end; its
			// reader would see to the first, but a stream whose window
			// is full is not read (see internal/recvwindow).
			go c.Close()
		}
	}
	return n, err
}

// Close closes the connection and, if it carries a websocket, ends its
// request: gRPC's handler, the websocket library's writer and a body
// waiting for its window all stop, even if nothing is reading the
// connection to find it closed.
func (c *watchedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		close(c.closed)
		c.wmu.Lock()
		done := c.done
		c.wmu.Unlock()
		if done != nil {
			done()
		}
	})
	return err
}

// startWebsocket marks the connection as carrying a websocket from now on
// (the HTTP response switching protocols has been written) and watches it
// until it is closed; done ends the websocket's request (see Close).
func (c *watchedConn) startWebsocket(gw *Gateway, done func()) {
	c.wmu.Lock()
	c.ws = true
	c.done = done
	// The same bound as for a silent peer: a live browser drains its
	// socket long before.
	c.writeTimeout = gw.cfg.KeepaliveTime + gw.cfg.KeepaliveTimeout
	c.wmu.Unlock()
	gw.track(c)
	go func() {
		defer gw.untrack(c)
		c.watch(gw)
	}()
}

// watch pings the peer when it has been silent for the keepalive time and
// closes the connection when it has stayed silent past the timeout too.
func (c *watchedConn) watch(gw *Gateway) {
	keepTime, keepTimeout := gw.cfg.KeepaliveTime, gw.cfg.KeepaliveTimeout
	// Check often enough that the bound is kept to within a tenth.
	tick := time.NewTicker(max(min(keepTime, keepTimeout)/10, 10*time.Millisecond))
	defer tick.Stop()
	var pinged int64 // lastRead at the time of the last ping
	for {
		select {
		case <-c.closed:
			return
		case now := <-tick.C:
			last := c.lastRead.Load()
			idle := now.Sub(time.Unix(0, last))
			switch {
			case idle >= keepTime+keepTimeout:
				gw.logger.Info("websocket peer did not answer a ping: closing", "peer", c.RemoteAddr().String(), "silent_for", idle.Round(time.Millisecond))
				_ = c.Close()
				return
			case idle >= keepTime && pinged != last:
				if c.tryPing() {
					pinged = last
				}
			}
		}
	}
}

// tryPing writes a ping if no write is under way and the last frame is
// complete, and reports whether it did. A write blocked on a peer that reads
// nothing holds the lock: then there is no ping, and either the silence
// check or the write's own deadline (see Write) closes the connection.
func (c *watchedConn) tryPing() bool {
	if !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	if !c.frames.atBoundary() {
		return false
	}
	// The ping is a few bytes into a socket buffer that is not full (a
	// write to a full one would hold the lock), so it does not block; the
	// deadline is a guard. The library sets no deadlines of its own.
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Conn.Write(pingFrame)
	return err == nil
}

// frameTracker follows a stream of websocket frames, written in pieces of
// any size, to know when a frame has just ended.
type frameTracker struct {
	hdr       [14]byte // the header being read: at most 2+8 length+4 mask bytes
	hdrLen    int      // bytes of hdr read so far
	remaining uint64   // payload bytes of the current frame still to come
}

// atBoundary reports whether the bytes so far end with a whole frame.
func (f *frameTracker) atBoundary() bool { return f.hdrLen == 0 && f.remaining == 0 }

// consume follows p, the next bytes written.
func (f *frameTracker) consume(p []byte) {
	for len(p) > 0 {
		if f.remaining > 0 {
			k := uint64(len(p))
			if k > f.remaining {
				k = f.remaining
			}
			f.remaining -= k
			p = p[k:]
			continue
		}
		f.hdr[f.hdrLen] = p[0]
		f.hdrLen++
		p = p[1:]
		if f.hdrLen < 2 {
			continue
		}
		need := 2
		switch f.hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if f.hdr[1]&0x80 != 0 { // masked (only clients mask, but be exact)
			need += 4
		}
		if f.hdrLen < need {
			continue
		}
		switch n := f.hdr[1] & 0x7f; n {
		case 126:
			f.remaining = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 127:
			f.remaining = binary.BigEndian.Uint64(f.hdr[2:10])
		default:
			f.remaining = uint64(n)
		}
		f.hdrLen = 0
	}
}

// hijackHook starts watching the connection a websocket takes over.
type hijackHook struct {
	http.ResponseWriter
	gw   *Gateway
	fm   *firstMessage // the wait for the websocket's first message
	done func()        // ends the websocket's request
}

// Hijack is how the websocket library takes the connection, after it has
// written the response switching protocols; from here on, every byte
// written is a frame. A read deadline that ServeHTTP set for a body the
// upgrade request announced is taken off: a websocket lives for hours.
func (h *hijackHook) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	if wc, ok := c.(*watchedConn); ok {
		wc.startWebsocket(h.gw, h.done)
	}
	h.fm.hijacked(c)
	return c, rw, nil
}
