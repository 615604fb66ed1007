package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// The EOF of a websocket that closed (improbable's reader cancels the
// context first) reaches the gRPC server as an error; the EOF of the end
// marker, with the context alive, stays a half-close.
func TestAbortAwareBody(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	b := &abortAwareBody{ReadCloser: io.NopCloser(strings.NewReader("")), ctx: ctx}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("end marker: Read = %v, want io.EOF", err)
	}
	cancel()
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, errAborted) {
		t.Errorf("websocket closed: Read = %v, want errAborted", err)
	}
}

// frame builds a websocket frame header and payload of n bytes.
func frame(n int, masked bool) []byte {
	var h []byte
	b1 := byte(0)
	if masked {
		b1 = 0x80
	}
	switch {
	case n < 126:
		h = []byte{0x82, b1 | byte(n)}
	case n < 1<<16:
		h = []byte{0x82, b1 | 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = make([]byte, 10)
		h[0], h[1] = 0x82, b1|127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	if masked {
		h = append(h, 1, 2, 3, 4)
	}
	return append(h, make([]byte, n)...)
}

// The tracker knows a frame has ended exactly when it has, however the
// frames are cut into writes.
func TestFrameTracker(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var ends []int // offsets at which a frame ends
	for _, n := range []int{0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			stream = append(stream, frame(n, masked)...)
			ends = append(ends, len(stream))
		}
	}
	for range 50 {
		var f frameTracker
		pos, next := 0, 0
		for pos < len(stream) {
			k := min(1+r.IntN(200), len(stream)-pos)
			if r.IntN(4) == 0 && next < len(ends) && ends[next] > pos {
				k = ends[next] - pos // sometimes end a write exactly on a frame's end
			}
			f.consume(stream[pos : pos+k])
			pos += k
			for next < len(ends) && ends[next] < pos {
				next++
			}
			atEnd := next < len(ends) && ends[next] == pos
			if f.atBoundary() != atEnd {
				t.Fatalf("after %d bytes: atBoundary = %v, want %v", pos, f.atBoundary(), atEnd)
			}
		}
	}
}
