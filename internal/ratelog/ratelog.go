// Package ratelog bounds how much a log can be made to write by clients.
// chatd logs every join, leave and refusal, which is what an operator
// wants to read, until one client churns through thousands of them a
// second and fills the disk. A [Handler] passes records while they come at
// a sustainable rate and drops the rest, counting them: the next record it
// passes says how many were dropped before it, so nothing goes missing
// without a trace.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Handler is a slog.Handler that passes records to another at most at a
// given rate. Handlers made from it by WithAttrs and WithGroup share its
// budget. It is safe for concurrent use.
type Handler struct {
	next  slog.Handler
	state *state
}

// state is the budget shared by a Handler and those derived from it.
type state struct {
	mu      sync.Mutex // guards the fields below
	limiter *rate.Limiter
	dropped int // records dropped since the last one passed
}

// NewHandler returns a handler that passes records to next at perSecond
// on average, burst at once, and drops the others. perSecond 0 passes
// every record.
func NewHandler(next slog.Handler, perSecond float64, burst int) *Handler {
	lim := rate.NewLimiter(rate.Inf, 0)
	if perSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
	}
	return &Handler{next: next, state: &state{limiter: lim}}
}

// Enabled reports whether next would handle records of level at all.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on if the budget allows, with the number of records
// dropped since the last one passed as "dropped", or drops it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.state
	st.mu.Lock()
	if !st.limiter.AllowN(time.Now(), 1) {
		st.dropped++
		st.mu.Unlock()
		return nil
	}
	dropped := st.dropped
	st.dropped = 0
	st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("dropped", dropped))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs on every record, sharing h's
// budget.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup returns a handler whose attributes go in group name, sharing
// h's budget.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state}
}
