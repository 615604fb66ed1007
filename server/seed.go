package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"google.golang.org/protobuf/proto"
)

// This file grows a chatd of its own into a cluster: the chat its log
// holds becomes the state a new cluster's nodes start from.

// Seeded says what a chat handed to a cluster holds.
type Seeded struct {
	Entries  uint64 // the entries of the log it came from
	Users    int    // users known (online when it stopped, kept for a resume)
	Channels int
	Messages uint64 // messages said in it, ever
}

// SeedState returns the chat that log (a chatd's own, not in use) holds
// once all its entries are applied, as a snapshot for a cluster whose log
// is new: at position 0 of that log, with cfg's and ccfg's settings (the
// cluster's). Nothing is appended to log.
func SeedState(ctx context.Context, cfg Config, ccfg ClusterConfig, log Log, logger *slog.Logger) ([]byte, Seeded, error) {
	// The chat's settings may differ from the cluster's, as a chatd's
	// may between runs: the cluster's apply from here on.
	ccfg.Solo = true
	_, c := newClusterHub(cfg, ccfg, log, nil, logger)
	// Never ready: it arms no timer, appends no tick.
	c.target = math.MaxUint64
	next, err := c.restore(ctx)
	if err != nil {
		return nil, Seeded{}, err
	}
	last, err := log.LastSeq(ctx)
	if err != nil {
		return nil, Seeded{}, fmt.Errorf("reading the log's end: %w", err)
	}
	c.applied = next - 1
	if last >= next {
		fctx, done := context.WithCancel(ctx)
		defer done()
		err := log.Follow(fctx, next, func(e Entry) error {
			if err := c.apply(e); err != nil {
				return err
			}
			if e.Seq >= last {
				done()
			}
			return nil
		})
		if err != nil && (fctx.Err() == nil || ctx.Err() != nil || !errors.Is(err, context.Canceled)) {
			return nil, Seeded{}, fmt.Errorf("replaying the log: %w", err)
		}
	}
	h := c.h
	h.mu.Lock()
	state := h.snapshotLocked(0)
	sum := Seeded{Entries: c.applied, Users: len(h.byKey), Channels: len(h.channels), Messages: h.msgs}
	h.mu.Unlock()
	data, err := proto.Marshal(state.proto())
	if err != nil {
		return nil, Seeded{}, err
	}
	return data, sum, nil
}
