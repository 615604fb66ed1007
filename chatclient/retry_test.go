package chatclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatd/chatd/chatclient"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBackoffStaysWithinItsBounds(t *testing.T) {
	t.Parallel()
	for n := range 40 {
		lo, hi := time.Duration(0), chatclient.FirstBackoff
		if n > 0 {
			hi = min(chatclient.BaseBackoff<<min(n-1, 15), chatclient.MaxBackoff)
			lo = hi / 2
		}
		for range 100 {
			if d := chatclient.Backoff(n); d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", n, d, lo, hi)
			}
		}
	}
}

// Moving on to another server waits a moment; each new round of the list
// waits as Backoff does for one server.
func TestRoundWaitGrowsByRounds(t *testing.T) {
	t.Parallel()
	for _, servers := range []int{1, 2, 3} {
		for n := range 30 {
			lo, hi := time.Duration(0), chatclient.FirstBackoff
			if round := n / servers; n%servers == 0 && round > 0 {
				hi = min(chatclient.BaseBackoff<<min(round-1, 15), chatclient.MaxBackoff)
				lo = hi / 2
			}
			for range 50 {
				if d := chatclient.RoundWait(n, servers); d < lo || d > hi {
					t.Fatalf("RoundWait(%d, %d) = %s, want within [%s, %s]", n, servers, d, lo, hi)
				}
			}
		}
	}
}

// attempt is one call of Retry.Do's attempt: which server, and when (in
// the fake time of a synctest bubble, from the start).
type attempt struct {
	server int
	at     time.Duration
}

// record returns an attempt function that fails with errs in turn (nil
// once they run out) and records each call.
func record(calls *[]attempt, start time.Time, errs ...error) func(context.Context, int) error {
	return func(_ context.Context, server int) error {
		*calls = append(*calls, attempt{server, time.Since(start)})
		if len(*calls) > len(errs) {
			return nil
		}
		return errs[len(*calls)-1]
	}
}

var unavailable = status.Error(codes.Unavailable, "server shutting down")

// Retry goes round the servers from the one after the one lost, and waits
// longer only between rounds.
func TestRetryGoesRoundFromTheServerAfterTheOneLost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls []attempt
		r := chatclient.Retry{Servers: 3, Lost: 1, Deadline: start.Add(time.Minute)}
		server, err := r.Do(t.Context(), record(&calls, start, unavailable, unavailable, unavailable, unavailable))
		if err != nil || server != 0 {
			t.Fatalf("Do = %d, %v; want 0 (the fifth attempt's), nil", server, err)
		}
		var servers []int
		for _, c := range calls {
			servers = append(servers, c.server)
		}
		if want := []int{2, 0, 1, 2, 0}; !slices.Equal(servers, want) {
			t.Fatalf("servers tried %v, want %v", servers, want)
		}
		// The first round: each within FirstBackoff of the one before.
		for i := range 3 {
			prev := time.Duration(0)
			if i > 0 {
				prev = calls[i-1].at
			}
			if d := calls[i].at - prev; d >= chatclient.FirstBackoff {
				t.Errorf("attempt %d waited %s, want less than %s", i, d, chatclient.FirstBackoff)
			}
		}
		// The second round waits Backoff(1): half to all of BaseBackoff.
		if d := calls[3].at - calls[2].at; d < chatclient.BaseBackoff/2 || d > chatclient.BaseBackoff {
			t.Errorf("the second round waited %s, want within [%s, %s]", d, chatclient.BaseBackoff/2, chatclient.BaseBackoff)
		}
	})
}

// Retry gives up when the next wait would end after the deadline, with
// each server's last failure in the order first tried.
func TestRetryGivesUpAtTheDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		deadline := start.Add(3 * time.Second)
		var calls []attempt
		errs := make([]error, 100)
		for i := range errs {
			errs[i] = status.Errorf(codes.Unavailable, "attempt %d", i)
		}
		r := chatclient.Retry{Servers: 2, Lost: 0, Deadline: deadline}
		_, err := r.Do(t.Context(), record(&calls, start, errs...))
		var gave *chatclient.GaveUpError
		if !errors.As(err, &gave) {
			t.Fatalf("Do = %v, want a *GaveUpError", err)
		}
		if time.Now().After(deadline) {
			t.Errorf("gave up %s after the deadline", time.Since(deadline))
		}
		n := len(calls)
		if n < 4 {
			t.Fatalf("%d attempts in 3s, want at least 4", n)
		}
		if len(gave.Failures) != 2 || gave.Failures[0].Server != 1 || gave.Failures[1].Server != 0 {
			t.Fatalf("failures %+v, want servers 1 then 0", gave.Failures)
		}
		// Each server's last failure: the last two attempts'.
		if !errors.Is(gave.Failures[0].Err, errs[n-2]) && !errors.Is(gave.Failures[0].Err, errs[n-1]) {
			t.Errorf("server 1's failure %v is not one of the last two attempts'", gave.Failures[0].Err)
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("status.Code(%v) = %s, want Unavailable, the last failure's", err, status.Code(err))
		}
	})
}

// A refusal that retrying cannot change ends the retry at once.
func TestRetryStopsAtARefusal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls []attempt
		taken := status.Error(codes.AlreadyExists, "name taken")
		r := chatclient.Retry{Servers: 3, Lost: 0, Deadline: time.Now().Add(time.Minute)}
		server, err := r.Do(t.Context(), record(&calls, time.Now(), unavailable, taken))
		if !errors.Is(err, taken) || server != 2 || len(calls) != 2 {
			t.Fatalf("Do = %d, %v after %d attempts; want 2, %v after 2", server, err, len(calls), taken)
		}
	})
}

// A retry whose context ends stops waiting at once.
func TestRetryStopsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var calls []attempt
		r := chatclient.Retry{Servers: 1, Deadline: time.Now().Add(time.Hour)}
		done := make(chan error)
		go func() {
			_, err := r.Do(ctx, record(&calls, time.Now(), slices.Repeat([]error{unavailable}, 1000)...))
			done <- err
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		n := len(calls)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
		if n == 0 || len(calls) != n {
			t.Errorf("%d attempts before the cancel, %d after; want some, then none", n, len(calls)-n)
		}
	})
}

func TestWhenToRetryAndResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err                  error
		resumable, retryable bool
	}{
		{status.Error(codes.Unavailable, "connection lost"), true, true},
		{status.Error(codes.ResourceExhausted, "too slow"), true, true},
		{status.Error(codes.Internal, "stream terminated by RST_STREAM"), true, true},
		{status.Error(codes.Unknown, "unexpected EOF"), true, true},
		{status.Error(codes.Canceled, "context canceled"), true, true},
		{status.Error(codes.Aborted, "taken over"), false, false},
		{io.EOF, false, false},
		{fmt.Errorf("wrapped: %w", io.EOF), false, false},
		{status.Error(codes.AlreadyExists, "name taken"), false, false},
		{status.Error(codes.InvalidArgument, "bad name"), false, false},
		{status.Error(codes.FailedPrecondition, "not joined"), false, false},
		{status.Error(codes.PermissionDenied, "not allowed"), true, false},
		{status.Error(codes.DeadlineExceeded, "slow join"), false, true},
		{status.Error(codes.Unauthenticated, "sign in"), true, false},
		{chatclient.ErrNoWelcome, true, true},
		{&chatclient.UnreachableError{Addr: "localhost:1", TimedOut: true}, true, true},
		{errors.New(`bad address "x"`), true, false},
	}
	if chatclient.Resumable(nil) {
		t.Error("Resumable(nil) = true, want false")
	}
	for _, tt := range tests {
		if got := chatclient.Resumable(tt.err); got != tt.resumable {
			t.Errorf("Resumable(%v) = %v, want %v", tt.err, got, tt.resumable)
		}
		if got := chatclient.Retryable(tt.err); got != tt.retryable {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
	}
}
