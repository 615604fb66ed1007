package recvwindow_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/chatd/chatd/internal/recvwindow"
)

// pieces is a body that gives its bytes in pieces of random sizes, as a
// websocket gives a message per read and a socket what has arrived.
type pieces struct {
	data   []byte
	rng    *rand.Rand
	closed bool
}

func (p *pieces) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(p.data), 1+p.rng.IntN(40))
	copy(b, p.data[:n])
	p.data = p.data[n:]
	return n, nil
}

func (p *pieces) Close() error {
	p.closed = true
	return nil
}

// frame returns a gRPC message of n payload bytes, each its index.
func frame(n int, fill byte) []byte {
	f := make([]byte, 5+n)
	binary.BigEndian.PutUint32(f[1:], uint32(n))
	for i := range n {
		f[5+i] = fill
	}
	return f
}

// readAll reads b as gRPC's ServeHTTP transport does, with 16 KiB reads,
// receiving each message as soon as it is whole, and checks that no read
// returns bytes of two messages.
func readAll(t *testing.T, b *recvwindow.Body) []byte {
	t.Helper()
	var out []byte
	var hdr []byte // the current message's prefix, as far as it came
	left := 0      // payload bytes of the current message still to come
	buf := make([]byte, 16<<10)
	for {
		n, err := b.Read(buf)
		for i, c := range buf[:n] {
			out = append(out, c)
			if len(hdr) < 5 {
				hdr = append(hdr, c)
				if len(hdr) == 5 {
					left = int(binary.BigEndian.Uint32(hdr[1:]))
				}
			} else {
				left--
			}
			if len(hdr) == 5 && left == 0 {
				if i != n-1 {
					t.Fatalf("a read returned bytes of two messages")
				}
				hdr = hdr[:0]
				b.Received()
			}
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
}

// Whatever pieces the body comes in, the messages come out whole and in
// order, and each read ends within one message.
func TestMessagesComeOutWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var in []byte
		for i := range 1 + rng.IntN(30) {
			in = append(in, frame(rng.IntN(40000), byte(i))...)
		}
		in = append(in, frame(0, 0)...) // an empty message is a message too
		b := recvwindow.NewBody(&pieces{data: bytes.Clone(in), rng: rng}, 64<<10)
		if out := readAll(t, b); !bytes.Equal(out, in) {
			t.Fatalf("read %d bytes unlike the %d sent", len(out), len(in))
		}
		if p := b.Pending(); p != 0 {
			t.Fatalf("%d bytes pending once every message was received", p)
		}
	}
}

// endless is a body of the same small message for ever, that counts what
// has been read of it.
type endless struct {
	msg  []byte
	off  int
	read int
}

func (e *endless) Read(b []byte) (int, error) {
	n := copy(b, e.msg[e.off:])
	e.off = (e.off + n) % len(e.msg)
	e.read += n
	return n, nil
}

func (e *endless) Close() error { return nil }

// A handler that receives nothing gets no more than the window read from
// its client, even when the client's messages are a few bytes each and
// every read takes a 16 KiB buffer; receiving a message lets one more in,
// and closing the body ends the wait.
func TestWindowBoundsWhatIsRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &endless{msg: frame(3, 'x')}
		b := recvwindow.NewBody(src, 16<<10)
		var reads atomic.Int64
		done := make(chan error)
		go func() {
			buf := make([]byte, 16<<10)
			for {
				if _, err := b.Read(buf); err != nil {
					done <- err
					return
				}
				reads.Add(1)
			}
		}()
		synctest.Wait()
		if got, want := reads.Load(), int64(recvwindow.Window/(16<<10)); got != want {
			t.Fatalf("%d messages handed over to a handler that received none, want %d (the window's worth of 16 KiB buffers)", got, want)
		}
		if src.read > recvwindow.Window {
			t.Fatalf("%d bytes read from the client, more than the window", src.read)
		}
		b.Received()
		synctest.Wait()
		if got, want := reads.Load(), int64(recvwindow.Window/(16<<10))+1; got != want {
			t.Fatalf("%d messages handed over after one was received, want %d", got, want)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != io.EOF {
			t.Fatalf("Read waiting for the window returned %v on Close, want io.EOF", err)
		}
	})
}

// A message longer than gRPC takes is not read: its prefix is handed
// over (gRPC fails the stream on it) and the read after it fails.
func TestLongMessageNotRead(t *testing.T) {
	src := &pieces{data: frame(100, 'x'), rng: rand.New(rand.NewPCG(3, 4))}
	b := recvwindow.NewBody(src, 99)
	buf := make([]byte, 16<<10)
	n, err := b.Read(buf)
	if n != 5 || err != nil {
		t.Fatalf("first Read = %d, %v; want the 5-byte prefix", n, err)
	}
	if _, err := b.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read after a too long prefix = %v, want an error", err)
	}
	if len(src.data) != 100 {
		t.Fatalf("%d bytes of the long message read", 100-len(src.data))
	}
}

// A body that ends inside a message ends with io.ErrUnexpectedEOF, not a
// clean end gRPC would take for a half-close.
func TestTruncatedMessage(t *testing.T) {
	for _, cut := range []int{2, 5, 20} {
		src := &pieces{data: frame(30, 'x')[:cut], rng: rand.New(rand.NewPCG(5, 6))}
		b := recvwindow.NewBody(src, 1<<10)
		buf := make([]byte, 16<<10)
		var err error
		for err == nil {
			_, err = b.Read(buf)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut after %d bytes: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}
