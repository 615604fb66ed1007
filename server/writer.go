package server

import (
	"context"
	"errors"
	"runtime"
	"time"

	"google.golang.org/grpc"
)

// This file is a stream's writer: the one goroutine per stream that takes
// what the hub queued for the stream (queue.go) and sends it, the only
// caller of Send on the stream (on the stream beneath gRPC's metrics: see
// writerStream). serve (service.go) starts it and waits for it; its tests
// are writer_test.go's.

// writerOptions are how a stream's writer sends.
type writerOptions struct {
	batches bool          // several events per response (Join.accept_batches)
	delay   time.Duration // Config.WriteDelay
}

// writeLoop sends s's events in order until the stream ends. It takes
// everything queued at once and sends it as one burst, which gRPC writes to
// the socket together, in batches if the client takes them. After a burst
// of several events it waits opt.delay before taking more (see
// Config.WriteDelay). After drain is closed nothing more is queued, so it
// sends what is left and returns. It counts into met per burst, not per
// event.
func writeLoop(stream grpc.ServerStream, s *stream, drain <-chan struct{}, opt writerOptions, met *metrics) error {
	var batch []delivery
	took := 0 // events the last send sent
	send := func() error {
		took = 0
		for {
			batch = s.Take(batch)
			if len(batch) == 0 {
				return nil
			}
			took += len(batch)
			met.queueDepth.Observe(float64(len(batch)))
			var err error
			if opt.batches && len(batch) > 1 {
				err = sendBatches(stream, batch, met)
			} else {
				err = sendEach(stream, batch, met)
			}
			if err != nil {
				return err
			}
			batch = recycle(batch)
		}
	}
	// One channel wakes the writer, for events and for the end alike (the
	// hub, serve and the stream's context leave a token on it when they
	// end or drain the stream): a wake-up per delivery is the cost that
	// counts when messages trickle, and a plain receive costs less than a
	// select over four channels.
	ctx := stream.Context()
	stop := context.AfterFunc(ctx, s.queue.signal)
	defer stop()
	for {
		<-s.queue.ready
		switch {
		case s.isEnded():
			if flushedEnd(s.endErr) {
				if err := send(); err != nil {
					return err
				}
			}
			return s.endErr
		case ctx.Err() != nil:
			return ctx.Err()
		case isClosed(drain):
			return send()
		}
		// Let whatever else is runnable (often the hub publishing the
		// next event) go first: when there is a burst, the writer then
		// takes several events at once and gRPC writes them together.
		runtime.Gosched()
		if err := send(); err != nil {
			return err
		}
		if took > 1 && opt.delay > 0 {
			// The client is getting a burst: let its next events
			// gather, to go out together, unless they fill half its
			// queue first. Its end does not wait: the token it leaves
			// on the queue is still there after this.
			linger := time.NewTimer(opt.delay)
			select {
			case <-linger.C:
			case <-s.queue.urgent:
			case <-s.ended:
			case <-ctx.Done():
			case <-drain:
			}
			linger.Stop()
		}
	}
}

// sendEach sends each of ds as a response of its own.
func sendEach(stream grpc.ServerStream, ds []delivery, met *metrics) error {
	out := make([]outgoing, len(ds)) // one allocation per burst, not per event
	for i, d := range ds {
		out[i].d = d
		// SendMsg, not Send: an *outgoing goes out as its seq and the
		// bytes encoded when its event was published (see wireCodec).
		if err := stream.SendMsg(&out[i]); err != nil {
			met.deliveries.Add(float64(i))
			return err
		}
	}
	met.deliveries.Add(float64(len(ds)))
	return nil
}

// sendBatches sends ds, in order, as batches of at most maxBatchBytes (see
// Join.accept_batches); an event that fits no batch with others goes alone.
func sendBatches(stream grpc.ServerStream, ds []delivery, met *metrics) error {
	sizes := make([]int, len(ds)) // one allocation per burst
	for i := range ds {
		sizes[i] = eventSize(ds[i].event)
	}
	for len(ds) > 0 {
		n, size := 0, 0
		for n < len(ds) {
			// Each event costs its header and framing too: 20 bytes at
			// most (seq, history, tag and length).
			es := sizes[n] + 20
			if n > 0 && size+es > maxBatchBytes {
				break
			}
			n, size = n+1, size+es
		}
		var err error
		if n == 1 {
			err = sendEach(stream, ds[:1], met)
		} else {
			err = stream.SendMsg(&outgoingBatch{ds: ds[:n], sizes: sizes[:n]})
			if err == nil {
				met.deliveries.Add(float64(n))
			}
		}
		if err != nil {
			return err
		}
		ds, sizes = ds[n:], sizes[n:]
	}
	return nil
}

// shutdownFlush bounds how long a stream the server ends as it stops (or
// as its cluster node finds it was given up for dead) may take to be sent
// what is queued for it.
const shutdownFlush = time.Second

// flushedEnd reports whether a stream the hub ended with err is first sent
// what is queued for it, for shutdownFlush at most: the answers to its
// last requests, and the refusals of those no longer carried out, when its
// node stops or finds it was given up for dead.
func flushedEnd(err error) bool {
	return errors.Is(err, ErrShuttingDown) || errors.Is(err, errCutOff)
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
