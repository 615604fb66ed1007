package admission

import (
	"net"
	"syscall"

	"google.golang.org/grpc/mem"
)

// ReadOnReady waits until the connection has something to read, and only
// then takes a buffer of bufSize from pool and reads into it. It is the
// optional interface through which gRPC's server reads a connection
// (google.golang.org/grpc/internal/transport/readyreader.Reader): gRPC
// reads that way only from a bare *net.TCPConn or from a net.Conn with
// this method, and otherwise gives every connection a read buffer of its
// own for its whole life, 32 KiB that an idle chat session would keep for
// nothing because it is counted here.
func (c *conn) ReadOnReady(bufSize int, pool mem.BufferPool) (*[]byte, int, error) {
	return c.ready.readOnReady(c.Conn, bufSize, pool)
}

// readyReader reads from a connection's socket once it is readable. Only
// the connection's one reader uses it.
type readyReader struct {
	raw    syscall.RawConn // nil if the connection has no socket to wait on
	doRead func(fd uintptr) bool

	// What one read asks and gets, kept here so that reading allocates
	// nothing.
	bufSize int
	pool    mem.BufferPool
	buf     *[]byte
	n       int
	err     error
}

func (r *readyReader) init(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok || !rawReadSupported {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	r.raw = raw
	r.doRead = func(fd uintptr) bool {
		r.buf = r.pool.Get(r.bufSize)
		r.n, r.err = rawRead(fd, *r.buf)
		if r.err != nil {
			r.pool.Put(r.buf)
			r.buf = nil
		}
		return !wouldBlock(r.err)
	}
}

func (r *readyReader) readOnReady(c net.Conn, bufSize int, pool mem.BufferPool) (*[]byte, int, error) {
	if r.raw == nil {
		buf := pool.Get(bufSize)
		n, err := c.Read(*buf)
		if n == 0 {
			pool.Put(buf)
			return nil, 0, err
		}
		return buf, n, err
	}
	r.bufSize, r.pool = bufSize, pool
	err := r.raw.Read(r.doRead)
	buf, n, readErr := r.buf, r.n, r.err
	r.bufSize, r.pool, r.buf, r.n, r.err = 0, nil, nil, 0, nil
	switch {
	case err != nil: // the connection is closed, or its deadline passed
		if buf != nil {
			pool.Put(buf)
		}
		return nil, 0, err
	case readErr != nil: // the callback gave the buffer back
		return nil, 0, readErr
	case n == 0: // the peer closed its side: read(2) says so with 0 bytes
		pool.Put(buf)
		return nil, 0, errEOF
	}
	return buf, n, nil
}
