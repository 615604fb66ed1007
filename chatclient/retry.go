package chatclient

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backoff between reconnection attempts: the first comes almost at once
// (a blip is the common case), later ones wait twice as long each time up
// to MaxBackoff, each with jitter, so that the clients of a restarted chatd
// do not all come back in the same instant.
const (
	FirstBackoff = 100 * time.Millisecond
	BaseBackoff  = 250 * time.Millisecond
	MaxBackoff   = 5 * time.Second
)

// Backoff is how long to wait before reconnection attempt n (0 is the
// first): up to FirstBackoff, then between half and all of
// BaseBackoff·2^(n-1), capped at MaxBackoff. It is safe for concurrent use.
func Backoff(n int) time.Duration {
	if n <= 0 {
		return rand.N(FirstBackoff)
	}
	d := MaxBackoff
	if n < 16 { // beyond that the shift overflows; the cap applies anyway
		d = min(BaseBackoff<<(n-1), MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// RoundWait is how long [Retry] waits before attempt n (0 is the first)
// when it goes round servers servers. Moving on to another server waits a
// moment only, up to FirstBackoff, with jitter so that the clients of a
// node that went away do not all reach the next in the same instant: it
// may well be up. The wait before each round of the list (the first
// attempt, then after every server has failed once) grows as [Backoff]
// says, so that each server is tried by a client no more often than a lone
// server would be.
func RoundWait(n, servers int) time.Duration {
	if servers > 1 && n%servers != 0 {
		return Backoff(0)
	}
	return Backoff(n / max(servers, 1))
}

// Retryable reports whether a failed attempt to join (or resume) may
// succeed if tried again: the server could not be reached or went away
// mid-join, or the stream broke. Refusals of the join itself will not
// change: the name taken or invalid, sign-in refused, the session taken
// over by another client (ABORTED), an address that is not one.
func Retryable(err error) bool {
	if errors.Is(err, ErrNoWelcome) {
		return true
	}
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.AlreadyExists, codes.InvalidArgument, codes.FailedPrecondition,
		codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented, codes.Aborted:
		return false
	}
	return true
}

// Resumable reports whether a welcomed session whose stream ended with err,
// which the client did not ask for, should be taken back by reconnecting.
// A broken connection does not always end as UNAVAILABLE: a stream reset by
// a proxy or a connection cut mid-frame may surface as INTERNAL, UNKNOWN or
// CANCELED; chatd going away is UNAVAILABLE, and dropping a client as too
// slow RESOURCE_EXHAUSTED. So every end is resumable but these: an OK end
// (io.EOF: a logout, which cannot be resumed); ABORTED (another client took
// the session over with its token: fighting it back would never end); and
// the refusals of a join (INVALID_ARGUMENT, ALREADY_EXISTS,
// FAILED_PRECONDITION, DEADLINE_EXCEEDED), which joining again would only
// meet again.
func Resumable(err error) bool {
	if err == nil || errors.Is(err, io.EOF) {
		return false
	}
	switch status.Code(err) {
	case codes.OK, codes.Aborted,
		codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition, codes.DeadlineExceeded:
		return false
	}
	return true
}

// Retry is a plan for taking a session back after its stream broke: go
// round Servers servers in turn from the one after Lost, waiting between
// attempts as [RoundWait] says, until Deadline. A Retry is only read, so
// any goroutine may use one.
type Retry struct {
	// Servers is how many servers there are to go round; at least 1.
	Servers int
	// Lost is the server whose stream broke, an index from 0: the first
	// attempt goes to the next one (the one lost is likely restarting),
	// and the one lost is tried last in each round.
	Lost int
	// Deadline is when to give up: no attempt starts whose wait would
	// end after it.
	Deadline time.Time
	// Retryable reports whether a failed attempt is worth another; nil
	// means the package's [Retryable].
	Retryable func(error) bool
}

// Failure is one server's last failed attempt, in a [GaveUpError].
type Failure struct {
	Server int // an index, as Retry.Lost
	Err    error
}

// GaveUpError is [Retry.Do]'s error when Deadline came before any attempt
// succeeded: the last failure of each server tried, in the order first
// tried (none if there was no time for one). It unwraps to the last of
// them, so that errors.Is and status.Code see an attempt's error.
type GaveUpError struct {
	Failures []Failure
}

func (e *GaveUpError) Error() string {
	if len(e.Failures) == 0 {
		return "no time left to try"
	}
	msgs := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		msgs[i] = f.Err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *GaveUpError) Unwrap() error {
	if len(e.Failures) == 0 {
		return nil
	}
	return e.Failures[len(e.Failures)-1].Err
}

// Do calls attempt with servers in the order the plan says until one
// attempt succeeds, one fails in a way r.Retryable says retrying cannot
// fix, Deadline comes, or ctx ends. It returns the server of the attempt
// that succeeded or failed for good, and that attempt's error; a
// *[GaveUpError] after Deadline; ctx's error if ctx ended. attempt gets ctx
// as it is, with no deadline, so that what it opens may outlive the
// attempt; it should bound its own wait (by Deadline, say).
func (r Retry) Do(ctx context.Context, attempt func(ctx context.Context, server int) error) (int, error) {
	retryable := r.Retryable
	if retryable == nil {
		retryable = Retryable
	}
	servers := max(r.Servers, 1)
	last := make([]error, servers) // each server's last failure
	var tried []int                // the servers that failed, in the order first tried
	for n := 0; ; n++ {
		server := (r.Lost + 1 + n) % servers
		wait := RoundWait(n, servers)
		if time.Until(r.Deadline) < wait {
			f := make([]Failure, len(tried))
			for i, s := range tried {
				f[i] = Failure{s, last[s]}
			}
			return -1, &GaveUpError{Failures: f}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return -1, ctx.Err()
		case <-t.C:
		}
		err := attempt(ctx, server)
		if err == nil {
			return server, nil
		}
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		if last[server] == nil {
			tried = append(tried, server)
		}
		last[server] = err
		if !retryable(err) {
			return server, err
		}
	}
}
