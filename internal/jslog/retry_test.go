package jslog

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
)

// The start-up reads ride out NATS answering late, within their patience,
// and nothing else: an answer that is an error is final at once.
func TestRetryTimeouts(t *testing.T) {
	pipeTimeout := &net.OpError{Op: "read", Net: "pipe", Err: os.ErrDeadlineExceeded} // what the object store gave
	notFound := errors.New("no such stream")
	for _, tc := range []struct {
		name      string
		errs      []error // what each call returns; the last one for ever after
		wantCalls int     // 0: more than one, until the patience ends
		want      error
	}{
		{"answers at once", []error{nil}, 1, nil},
		{"late twice, then answers", []error{pipeTimeout, nats.ErrTimeout, nil}, 3, nil},
		{"an error is final", []error{notFound}, 1, notFound},
		{"late for ever", []error{context.DeadlineExceeded}, 0, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				err := retryTimeouts(t.Context(), slog.New(slog.DiscardHandler), "reading", func() error {
					calls++
					return tc.errs[min(calls, len(tc.errs))-1]
				})
				if !errors.Is(err, tc.want) && err != tc.want {
					t.Fatalf("retryTimeouts = %v; want %v", err, tc.want)
				}
				switch {
				case tc.wantCalls > 0 && calls != tc.wantCalls:
					t.Errorf("read %d times; want %d", calls, tc.wantCalls)
				case tc.wantCalls == 0 && (calls < 2 || time.Since(start) > retryPatience):
					t.Errorf("read %d times in %s; want retries for no longer than %s", calls, time.Since(start), retryPatience)
				}
			})
		})
	}
}

// A node told to stop while it retries stops at once.
func TestRetryTimeoutsStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		err := retryTimeouts(ctx, slog.New(slog.DiscardHandler), "reading", func() error { return nats.ErrTimeout })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("retryTimeouts after its context ended = %v; want context.Canceled", err)
		}
	})
}
