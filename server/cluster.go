package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/internal/admission"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file runs a node of a chat: the node appends the commands its
// streams ask for to the chat's log and applies every command of the log,
// in the log's order (apply.go). A chatd of its own is a cluster of one,
// on a log of its own (memLog, kept in memory); the nodes of a cluster
// share one (NATS JetStream, see internal/jslog). Either way the code is
// this one. The log's order is the chat's order: names are unique because
// the first join in the log wins, and every session on every node gets
// common events in the same order. Each node keeps the whole state; its
// streams take their events from its own apply.

// Log is the chat's ordered log of commands: a node's own, or a cluster's.
type Log interface {
	// Append adds data to the end of the log and returns once the log has
	// it. id names the entry: appending an id the log has had recently
	// adds nothing, so a retry after a lost answer is safe.
	Append(ctx context.Context, id string, data []byte) error
	// LastSeq returns the position of the last entry, 0 if there is none.
	LastSeq(ctx context.Context) (uint64, error)
	// FirstSeq returns the position of the first entry the log still
	// keeps (it drops them by age).
	FirstSeq(ctx context.Context) (uint64, error)
	// Follow calls apply with every entry from position from on, in order,
	// one at a time, until ctx ends or apply fails, and returns why it
	// stopped. It rides out a lost connection, carrying on where it was.
	Follow(ctx context.Context, from uint64, apply func(Entry) error) error
	// Connected reports whether the log is within reach now.
	Connected() bool
	// LoadSnapshot returns the last snapshot saved, or nil if none was.
	LoadSnapshot(ctx context.Context) ([]byte, error)
	// SaveSnapshot replaces the saved snapshot, which holds the state once
	// every entry up to seq is applied: the log need not keep those
	// entries for this node any more.
	SaveSnapshot(ctx context.Context, seq uint64, data []byte) error
}

// ErrNotAppended is what a Log's Append wraps when the entry is certainly
// not in the log (a node's own log that could not write it: a full disk,
// say): the request is refused at once, with the log's reason, rather than
// waited for in case the log has it after all.
var ErrNotAppended = errors.New("not kept")

// notAppended refuses a request whose command the log says it does not
// have (see ErrNotAppended).
func notAppended(err error) error {
	return &Error{Kind: ErrUnavailable, Msg: fmt.Sprintf("this server could not keep your request, so it was not carried out (%v): try again later", err)}
}

// Entry is a command as the log holds it.
type Entry struct {
	Seq  uint64    // its position: 1, 2, 3, … with no gap
	Time time.Time // when the log took it: the chat's clock
	// ID is the id it was appended with, if the log keeps it: the node
	// that appended it then applies the command it has in hand rather
	// than decode Data again.
	ID   string
	Data []byte

	cmd *clusterv1.Command // the command itself, from a log that keeps it so (see memLog)
}

// commandLog is a log that takes commands as they are, not encoded: a log
// of the node's own kept in memory, whose entries are only ever applied by
// this node, in this process (see memLog).
type commandLog interface {
	appendCommand(id string, cmd *clusterv1.Command)
	// appendInApply appends cmd to be applied next if an entry is being
	// applied now, and reports whether it did (see Cluster.later).
	appendInApply(cmd *clusterv1.Command) bool
}

// ClusterConfig is how a node takes part in a cluster.
type ClusterConfig struct {
	// Name names the node in logs; its id is made unique at each start.
	Name string
	// NodeTimeout is how long a node may go unheard, while the log is
	// live, before the others give it up for dead and its users for
	// disconnected. Nodes say they are alive ten times in that time.
	NodeTimeout time.Duration
	// ApplyTimeout bounds how long a request waits for its command to be
	// applied before it is refused with UNAVAILABLE.
	ApplyTimeout time.Duration
	// SnapshotEvery is how often one node saves the chat's state, from
	// which nodes that start later begin; 0 for never (a log kept in
	// memory, which nobody starts from again).
	SnapshotEvery time.Duration
	// SnapshotEntries bounds the entries between snapshots too, so that a
	// node starting again replays at most this many however busy the chat
	// was (a few hundred thousand a second are replayed); 0 for no bound.
	SnapshotEntries uint64
	// Solo says the node is a chat of its own, on a log of its own (on
	// disk, or in memory): its settings may change from one run to the
	// next (they apply from where the log is when it starts), and it saves
	// a snapshot as it stops, so that it starts again at once.
	Solo bool
}

// Validate says which settings make no sense, if any.
func (c ClusterConfig) Validate() error {
	switch {
	case c.NodeTimeout < time.Second:
		return &SettingError{Field: "NodeTimeout", Rule: "must be at least 1s", Got: c.NodeTimeout}
	case c.ApplyTimeout <= 0:
		return &SettingError{Field: "ApplyTimeout", Rule: "must be positive", Got: c.ApplyTimeout}
	case c.SnapshotEvery < 0:
		return &SettingError{Field: "SnapshotEvery", Rule: "must not be negative", Got: c.SnapshotEvery}
	}
	return nil
}

// DefaultClusterConfig returns the settings chatd's cluster flags default to.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{NodeTimeout: 10 * time.Second, ApplyTimeout: 10 * time.Second, SnapshotEvery: 30 * time.Second, SnapshotEntries: 100_000}
}

// SoloConfig returns the settings of a node that is a chat of its own, on
// a log of its own.
func SoloConfig() ClusterConfig {
	c := DefaultClusterConfig()
	c.Name, c.Solo = "chatd", true
	return c
}

// Cluster is a node's part in a cluster: it appends commands to the log
// and applies the log to the node's hub.
type Cluster struct {
	h      *hub
	log    Log
	cfg    ClusterConfig
	logger *slog.Logger

	mu      sync.Mutex // guards the fields below
	waiting map[string]*pending
	backlog []*clusterv1.Command // commands to append in the background
	wake    chan struct{}        // has a token while backlog may hold some

	applied  uint64             // the last entry applied; guarded by hub.mu
	target   uint64             // the log's end when the node started: ready once applied
	ready    atomic.Bool        // caught up with the log as it was at the start
	serving  atomic.Bool        // ready and the log within reach
	onStatus func(serving bool) // called whenever Serving changes; set before Run
	from     atomic.Uint64      // the log position the node started from
	saved    atomic.Uint64      // the log position of the last snapshot this node saved
	snapDue  atomic.Uint64      // the log position at which a snapshot is due, whatever the time (SnapshotEntries)
	snapNow  chan struct{}      // has a token once snapDue is applied
	stopped  chan struct{}      // closed once the node has stopped (Stop)
	gate     gate               // this node's streams' commands on their way to the log
	stopOnce sync.Once

	// The streams of this node that the log gave up for dead with it, to
	// end once nothing of theirs is on its way to the log (see
	// cutOffLocked); guarded by hub.mu.
	cut     []*stream
	cutIdle <-chan struct{} // closed once the gate, shut for them, is idle
	cutWake chan struct{}   // has a token while cut may hold some

	readyCh chan struct{} // closed once ready

	tickTimer *time.Timer // appends a tick when the soonest deadline falls due; guarded by hub.mu
	tickAt    time.Time   // when tickTimer fires, by the log's clock; guarded by hub.mu

	// A node that runs itself (start) stops with halt.
	runCtx    context.Context
	runCancel context.CancelFunc
	runDone   chan struct{}
}

// newClusterHub returns a hub that is one node of the cluster whose log is
// log. Run must be called to start it.
func newClusterHub(cfg Config, ccfg ClusterConfig, log Log, lim *admission.Limiter, logger *slog.Logger) (*hub, *Cluster) {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	id := hex.EncodeToString(b[:])
	// Message ids must be alike on every node: they are numbered by the
	// log's order, and a cluster's log outlives its nodes.
	h := newHub(cfg, lim, id, "")
	h.nodeTimeout = ccfg.NodeTimeout
	c := &Cluster{h: h, log: log, cfg: ccfg, logger: logger.With("node", ccfg.Name), waiting: make(map[string]*pending), wake: make(chan struct{}, 1), stopped: make(chan struct{}), cutWake: make(chan struct{}, 1), readyCh: make(chan struct{}), snapNow: make(chan struct{}, 1)}
	h.cl = c
	return h, c
}

// Node returns the node's id, unique to this run of the node.
func (c *Cluster) Node() string { return c.h.node }

// StartedFrom returns the log position the node started from: 1, or the
// position after the snapshot it started from.
func (c *Cluster) StartedFrom() uint64 { return c.from.Load() }

// Saved returns the log position of the last snapshot this node saved.
func (c *Cluster) Saved() uint64 { return c.saved.Load() }

// Applied returns the log position of the last entry the node applied.
func (c *Cluster) Applied() uint64 {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return c.applied
}

// Serving reports whether the node can take requests: it has caught up
// with the log and the log is within reach.
func (c *Cluster) Serving() bool { return c.serving.Load() }

// Run starts the node from the last snapshot, applies the log until ctx
// ends, and returns why it stopped: nil for ctx, or an error if the node
// can no longer follow the log (it lost entries it had not applied) and
// must be restarted. A node that runs itself (made by New) only
// waits here for ctx to end.
func (c *Cluster) Run(ctx context.Context) error {
	if c.runDone != nil && ctx != c.runCtx {
		select {
		case <-ctx.Done():
		case <-c.runDone:
		}
		return nil
	}
	from, err := c.restore(ctx)
	if err != nil {
		return err
	}
	first, err := c.log.FirstSeq(ctx)
	if err != nil {
		return fmt.Errorf("cluster: reading the log's start: %w", err)
	}
	if from < first {
		// Only if no node saved a snapshot for longer than the log keeps
		// entries: the whole cluster was down. What those entries did
		// is lost with them.
		c.logger.Warn("the log no longer has every entry after the last snapshot: starting from the snapshot, without them", "snapshot_next", from, "log_first", first)
		from = first
	}
	if c.target, err = c.log.LastSeq(ctx); err != nil {
		return fmt.Errorf("cluster: reading the log's end: %w", err)
	}
	c.from.Store(from)
	c.logger.Info("starting from the chat's log", "id", c.h.node, "from", from, "log_end", c.target)
	c.h.mu.Lock()
	c.applied = from - 1
	c.dueNextLocked()
	c.checkReadyLocked()
	c.h.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.appendLoop(ctx) })
	wg.Go(func() { c.heartbeatLoop(ctx) })
	if c.cfg.SnapshotEvery > 0 {
		wg.Go(func() { c.snapshotLoop(ctx) })
	}
	wg.Go(func() { c.cutOffLoop(ctx) })
	err = c.log.Follow(ctx, from, c.apply)
	cancel()
	wg.Wait()
	c.stopTick()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// restore loads the last snapshot into the hub and returns the log
// position to follow from.
func (c *Cluster) restore(ctx context.Context) (uint64, error) {
	data, err := c.log.LoadSnapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: loading the last snapshot: %w", err)
	}
	if data == nil {
		return 1, nil
	}
	snap := &clusterv1.Snapshot{}
	if err := proto.Unmarshal(data, snap); err != nil {
		return 0, fmt.Errorf("cluster: the last snapshot does not decode: %w", err)
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if err := c.h.restoreLocked(snap); err != nil {
		return 0, err
	}
	return snap.GetSeq() + 1, nil
}

// apply applies one entry of the log.
func (c *Cluster) apply(e Entry) error {
	var p *pending
	if e.ID != "" {
		// This node's own command, if it still waits for it: the
		// command in hand is what Data holds, decoded.
		c.mu.Lock()
		if p = c.waiting[e.ID]; p != nil {
			delete(c.waiting, e.ID)
		}
		c.mu.Unlock()
	}
	cmd := e.cmd
	if cmd == nil {
		cmd = p.command()
	}
	if cmd == nil {
		cmd = &clusterv1.Command{}
		if err := proto.Unmarshal(e.Data, cmd); err != nil {
			// Every node skips it alike.
			c.logger.Error("skipping a log entry that does not decode", "seq", e.Seq, "err", err)
			cmd = nil
		}
	}
	if p == nil && cmd != nil && cmd.GetNode() == c.h.node {
		c.mu.Lock()
		p = c.waiting[cmd.GetId()]
		delete(c.waiting, cmd.GetId())
		c.mu.Unlock()
	}
	h := c.h
	h.mu.Lock()
	start := time.Now()
	defer h.mu.Unlock()
	kind := cmdOther
	if cmd != nil {
		kind = commandKind(cmd)
	}
	defer h.met.lockTime(kind, start)
	defer h.flushSlowLocked()
	if p != nil && !p.appended.IsZero() {
		h.met.applyLag.Observe(start.Sub(p.appended).Seconds())
	}
	if e.Seq != c.applied+1 {
		return fmt.Errorf("cluster: the log skipped from entry %d to %d (entries older than the log keeps?): this node's state is no longer the cluster's; restart it", c.applied, e.Seq)
	}
	c.applied = e.Seq
	if e.Seq == c.snapDue.Load() {
		select {
		case c.snapNow <- struct{}{}:
		default:
		}
	}
	defer c.checkReadyLocked()
	if e.Time.After(h.now) {
		h.now = e.Time
	}
	if cmd == nil {
		h.tickLocked(h.now)
		return nil
	}
	h.heardLocked(cmd.GetNode(), cmd.GetHeartbeat().GetName())
	h.tickLocked(h.now)
	var out outcome
	if na := cmd.GetNotAfter(); na != nil && e.Time.After(na.AsTime()) {
		// Its node told its client it was not carried out (or will).
		out = outcome{err: errTooLate}
	} else {
		out = h.applyLocked(cmd, p)
	}
	if p != nil {
		p.settle(h, out)
	} else if out.s != nil {
		// This node's join, but nobody waits for it any more (the node
		// restarted its waiting list?): the stream has no client.
		h.dropLocked(out.s)
	}
	return nil
}

// checkReadyLocked notes when the node has caught up with the log. hub.mu
// must be held.
func (c *Cluster) checkReadyLocked() {
	if !c.ready.Load() && c.applied >= c.target {
		c.ready.Store(true)
		if !isClosed(c.readyCh) {
			close(c.readyCh)
		}
		c.logger.Info("caught up with the chat's log", "seq", c.applied, "users", len(c.h.byKey))
		c.updateStatus()
		c.armTickLocked()
	}
}

// start runs the node in the background (see Run) until halt, and returns
// once it is ready, or has failed: for a node that is a chat of its own,
// on a log of its own (see newSoloHub).
func (c *Cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.runCtx, c.runCancel, c.runDone = ctx, cancel, make(chan struct{})
	go func() {
		defer close(c.runDone)
		if err := c.Run(ctx); err != nil {
			c.logger.Error("the node stopped", "err", err)
		}
	}()
	select {
	case <-c.readyCh:
	case <-c.runDone:
	}
}

// halt stops a node that start runs, and waits for it. hub.mu must not be
// held.
func (c *Cluster) halt() {
	if c.runCancel == nil {
		return
	}
	c.runCancel()
	<-c.runDone
}

// stopTick stops the tick armed for the next deadline: the node no longer
// applies its log, and the timer would keep it (and all it holds) alive.
func (c *Cluster) stopTick() {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.tickTimer != nil {
		c.tickTimer.Stop()
		c.tickTimer = nil
	}
	c.tickAt = time.Time{}
	c.ready.Store(false) // and arms no other
}

// tickMargin is how long after a deadline its tick is appended: the
// tick's time, the log's clock, must be past the deadline.
const tickMargin = time.Millisecond

// armTickLocked has this node append a tick (a heartbeat) once the soonest
// deadline falls due, so that it applies then, not at the next heartbeat
// or command. Every node does, and the first tick in the log applies it
// on every node alike. hub.mu must be held.
func (c *Cluster) armTickLocked() {
	h := c.h
	// Typing's deadlines arm nothing: every node's heartbeat moves the
	// chat's clock each second, which ends a typing within a second of its
	// time. A tick for each refresh's deadline, stale as most are by the
	// time they fall due, cost a heartbeat command per refresh.
	if len(h.deadline) == 0 || !c.ready.Load() {
		return
	}
	at := h.deadline[0].at
	if c.tickTimer != nil && !c.tickAt.After(at) {
		return // one falls due sooner, or this one is armed
	}
	if c.tickTimer != nil {
		c.tickTimer.Stop()
	}
	c.tickAt = at
	c.tickTimer = time.AfterFunc(max(time.Until(at), 0)+tickMargin, func() {
		h.mu.Lock()
		if c.tickAt.Equal(at) {
			c.tickTimer = nil
		}
		h.mu.Unlock()
		c.later(h.command(&clusterv1.Command{Action: &clusterv1.Command_Heartbeat{Heartbeat: &clusterv1.Heartbeat{Name: c.cfg.Name}}}))
	})
}

// updateStatus recomputes Serving and reports a change.
func (c *Cluster) updateStatus() {
	serving := c.ready.Load() && c.log.Connected()
	if c.serving.Swap(serving) != serving && c.onStatus != nil {
		c.onStatus(serving)
	}
}

// errNotServing refuses a request while the node cannot reach the log, or
// has not caught up with it yet.
func (c *Cluster) errNotServing() error {
	if !c.ready.Load() {
		return &Error{Kind: ErrUnavailable, Msg: "this server is starting (catching up with the chat): try again in a moment"}
	}
	return &Error{Kind: ErrUnavailable, Msg: "this server lost touch with the rest of the chat: try again in a moment"}
}

// settleUnappended gives back what p holds for a command never appended,
// and returns err as its outcome.
func (c *Cluster) settleUnappended(p *pending, err error) outcome {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	p.settle(c.h, outcome{})
	return outcome{err: err}
}

// errStopping refuses a request that a stopping node no longer appends.
var errStopping = &Error{Kind: ErrShuttingDown, Msg: "this server is shutting down: this request was not carried out; reconnect and send it again"}

// errCutOffPause refuses, for a moment, what this node's other streams ask
// for, and joins, while the streams given up for dead with it end (see
// cutOffLocked).
var errCutOffPause = &Error{Kind: ErrUnavailable, Msg: "this server lost touch with the rest of the chat: this request was not carried out; try again in a moment"}

// gate lets this node's streams append commands, or shuts them out: for
// good once the node stops (Stop), for a moment once it finds it was given
// up for dead (cutOffLocked). Either way, what got in before is appended
// first, so that the node knows where it is in the log's order.
type gate struct {
	mu       sync.Mutex // guards the fields below; taken alone, or under hub.mu (see LOCKS.md)
	shutBy   error      // why nothing passes: errStopping, errCutOffPause; nil while open
	inflight int
	idle     chan struct{} // closed once shut with nothing in flight
}

// pass lets a command through to the log, or says why not; passed must
// follow a nil.
func (g *gate) pass() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutBy != nil {
		return g.shutBy
	}
	g.inflight++
	return nil
}

// passed ends what pass began: the command is appended (or failed to be).
func (g *gate) passed() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.shutBy != nil && g.inflight == 0 {
		close(g.idle)
	}
}

// shut lets nothing more in, refusing it with why, and returns a channel
// closed once nothing is in flight. Shut for a stop, it stays shut, and
// says so.
func (g *gate) shut(why error) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutBy == nil {
		g.idle = make(chan struct{})
		if g.inflight == 0 {
			close(g.idle)
		}
	}
	if g.shutBy != errStopping {
		g.shutBy = why
	}
	return g.idle
}

// open lets commands in again, unless the node is stopping.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutBy != errStopping {
		g.shutBy = nil
	}
}

// cutOffLocked begins the end of streams of this node that the log has
// just given up for dead with it (frozen, or cut off from the log, past
// the node timeout: see checkNodesLocked). Their users were parked at that
// point of the log, on every node alike, so every command of theirs that
// the log takes after it is refused when applied (errGone): what they sent
// once the node was awake, or back in touch, and what they would still
// send. As a stopping node does, the node refuses all of it to the
// senders, not drops it: the gate shuts, so that nothing more goes in and
// what is on its way gets appended; then what the log has not applied of
// theirs is refused (UNAVAILABLE, send it again), and the streams end,
// sent what is queued for them first (see cutOffLoop). hub.mu must be held.
func (c *Cluster) cutOffLocked(streams []*stream) {
	c.logger.Warn("the cluster gave this node up for dead (unheard for the node timeout: frozen, or out of touch with the log): ending its streams, refusing what they sent", "seq", c.applied, "streams", len(streams))
	for _, s := range streams {
		s.cut.Store(true)
	}
	c.cut = append(c.cut, streams...)
	c.cutIdle = c.gate.shut(errCutOffPause)
	poke(c.cutWake)
}

// cutOffLoop ends the streams cutOffLocked gave up, once the gate is idle.
func (c *Cluster) cutOffLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.cutWake:
		}
		c.h.mu.Lock()
		idle := c.cutIdle
		c.h.mu.Unlock()
		if idle == nil {
			continue // ended already, by hub.Shutdown
		}
		select {
		case <-ctx.Done():
			return
		case <-idle:
		}
		c.h.mu.Lock()
		if c.cutIdle == idle { // else ended by hub.Shutdown meanwhile; any cut since poked again
			c.endCutOffLocked()
		}
		c.h.mu.Unlock()
	}
}

// endCutOffLocked refuses what the streams cut off still have on its way
// through the log, and ends them. hub.mu must be held.
func (c *Cluster) endCutOffLocked() {
	if len(c.cut) == 0 {
		return
	}
	// Nothing of theirs gets in any more, and what did is appended (or
	// failed to be): what of theirs this node still waits for is in the
	// log after the point that gave them up, or not in it at all, and is
	// refused on every node all the same. Refused now, it is answered
	// before the end; its apply finds nobody waiting.
	c.mu.Lock()
	var doomed []*pending
	for id, p := range c.waiting {
		if p.stream != nil && p.stream.cut.Load() {
			delete(c.waiting, id)
			doomed = append(doomed, p)
		}
	}
	c.mu.Unlock()
	// In the order they were sent: a stream appends one at a time.
	slices.SortFunc(doomed, func(a, b *pending) int { return a.appended.Compare(b.appended) })
	for _, p := range doomed {
		p.settle(c.h, outcome{err: errCutOffRefused})
	}
	// Open before the ends, so that a client that reconnects here as soon
	// as its stream ends gets in; the streams cut off stay out (appendFor).
	c.gate.open()
	for _, s := range c.cut {
		s.endLocked(errCutOff, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	}
	c.cut, c.cutIdle = nil, nil
}

// errTooLate refuses a command that the log took after its node stopped
// waiting for it.
var errTooLate = &Error{Kind: ErrUnavailable, Msg: "the chat did not answer in time: try again in a moment"}

// confirmMargin is how much longer than ApplyTimeout a node waits for a
// command it appended before it gives up on learning its fate: the log's
// clock and the node's may differ by that much.
const confirmMargin = 3 * time.Second

// submit appends cmd to the log and waits until this node has applied it.
// The command is refused on every node if the log takes it after
// ApplyTimeout (by the log's clock): so the node learns its fate within
// ApplyTimeout and the clocks' difference, unless the log is out of its
// reach meanwhile.
func (c *Cluster) submit(ctx context.Context, cmd *clusterv1.Command, p *pending) outcome {
	if p == nil {
		p = &pending{}
	}
	p.done = make(chan outcome, 1)
	err, refused := c.appendFor(ctx, cmd, p)
	if refused == nil && errors.Is(err, ErrNotAppended) && c.stopWaiting(cmd) {
		refused = notAppended(err)
	}
	if refused != nil {
		return c.settleUnappended(p, refused)
	}
	select {
	case out := <-p.done: // applied already: a log of the node's own
		return out
	default:
	}
	timer := time.NewTimer(c.cfg.ApplyTimeout + confirmMargin)
	defer timer.Stop()
	expired := false
	if err == nil || ctx.Err() == nil {
		// Appended, or perhaps appended: its apply, or its refusal for
		// coming too late, tells.
		select {
		case out := <-p.done:
			return out
		case <-ctx.Done():
		case <-timer.C:
			expired = true
		case <-c.stopped:
		}
	}
	// Given up: the caller is gone, or the log out of reach. If the
	// command is applied after all, settle ends whatever it made.
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	select {
	case out := <-p.done:
		return out
	default:
	}
	p.abandoned = true
	if expired {
		// Past not_after by more than the clocks differ: if the log has
		// it at all, every node refuses it, and nothing needs settling
		// but what p counted. (If its apply took p already, it
		// settles p, abandoned, once it has the lock.)
		if c.stopWaiting(cmd) {
			p.settle(c.h, outcome{})
		}
	}
	c.logger.Warn("gave up waiting for a command", "id", cmd.GetId(), "err", err)
	return outcome{err: &Error{Kind: ErrUnavailable, Msg: "the chat did not confirm your request in time (this server lost touch with it): it may not have been carried out; try again in a moment"}}
}

// append appends cmd to the log without waiting for it to be applied:
// when it is, p.then is called with what came of it. If the append fails
// the node stops waiting for the command (if the log has it after all, it
// is applied, or refused as too late, with nobody told).
func (c *Cluster) append(ctx context.Context, cmd *clusterv1.Command, p *pending) error {
	err, refused := c.appendFor(ctx, cmd, p)
	switch {
	case refused != nil:
		return refused
	case errors.Is(err, ErrNotAppended) && c.stopWaiting(cmd):
		return notAppended(err)
	case err != nil:
		if !c.stopWaiting(cmd) {
			// The log had it after all, and its apply took p before
			// the append's answer came back: p has its outcome, or
			// will have it once the apply gets the hub's lock. Telling
			// the caller it failed as well would settle it twice.
			return nil
		}
		c.logger.Warn("could not append a command", "id", cmd.GetId(), "err", err)
		return &Error{Kind: ErrUnavailable, Msg: "this server could not reach the rest of the chat in time: your message may not have been sent; try again in a moment"}
	}
	return nil
}

// appendFor appends cmd, stamped with its not_after, for p, which waits
// for it (see Cluster.apply). refused says why it was not even tried
// (nothing is left waiting then); otherwise err is the append's error, if
// any, and p waits, since the log may have the command all the same.
// This node's streams' commands go through the gate, so that none follows
// the node's stop in the log, and none goes unanswered once the node finds
// it was given up for dead (see cutOffLocked); the stop itself does not.
func (c *Cluster) appendFor(ctx context.Context, cmd *clusterv1.Command, p *pending) (err, refused error) {
	if !c.ready.Load() || !c.log.Connected() {
		return nil, c.errNotServing()
	}
	if cmd.GetNodeStop() == nil {
		shut := c.gate.pass()
		if shut == nil {
			defer c.gate.passed() // once appended: the command is in the log's order then
		}
		if p.stream != nil && p.stream.cut.Load() {
			// Given up with this node (see cutOffLocked). Looked at
			// once in the gate, so that a command that got past this
			// is in flight for the gate's wait.
			return nil, errCutOffRefused
		}
		if shut != nil {
			return nil, shut
		}
	}
	now := time.Now()
	cmd.NotAfter = timestamppb.New(now.Add(c.cfg.ApplyTimeout))
	p.appended = now
	p.cmd = cmd
	if l, ok := c.log.(commandLog); ok {
		c.mu.Lock()
		c.waiting[cmd.GetId()] = p
		c.mu.Unlock()
		l.appendCommand(cmd.GetId(), cmd)
		return nil, nil
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("cluster: encoding a command: %w", err)
	}
	c.mu.Lock()
	c.waiting[cmd.GetId()] = p
	c.mu.Unlock()
	// The log bounds its own wait (jslog: its AppendTimeout, the apply
	// timeout); a log of the node's own does not wait.
	return c.log.Append(ctx, cmd.GetId(), data), nil
}

// stopWaiting stops waiting for cmd. It reports whether anything still waited:
// false if its apply has taken its pending already.
func (c *Cluster) stopWaiting(cmd *clusterv1.Command) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.waiting[cmd.GetId()]
	delete(c.waiting, cmd.GetId())
	return ok
}

// later appends cmd in the background, retrying until it is in: for
// commands nobody waits for (a disconnect, a slow stream dropped). It never
// blocks. A log of the node's own that is applying an entry takes it at
// once, to apply next: a slow stream dropped by a message is gone before
// the message's sender hears back.
func (c *Cluster) later(cmd *clusterv1.Command) {
	if l, ok := c.log.(commandLog); ok && l.appendInApply(cmd) {
		return
	}
	c.mu.Lock()
	c.backlog = append(c.backlog, cmd)
	c.mu.Unlock()
	poke(c.wake)
}

// appendLoop appends what later queued, in order, retrying each until the
// log takes it.
func (c *Cluster) appendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for {
			c.mu.Lock()
			if len(c.backlog) == 0 {
				c.backlog = nil
				c.mu.Unlock()
				break
			}
			cmd := c.backlog[0]
			c.backlog = c.backlog[1:]
			c.mu.Unlock()
			data, err := proto.Marshal(cmd)
			if err != nil {
				c.logger.Error("dropping a command that does not encode", "id", cmd.GetId(), "err", err)
				continue
			}
			for attempt := 0; ; attempt++ {
				actx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
				err := c.log.Append(actx, cmd.GetId(), data)
				cancel()
				if err == nil || ctx.Err() != nil {
					break
				}
				if attempt == 0 {
					c.logger.Warn("could not append to the log; retrying", "id", cmd.GetId(), "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
				}
			}
		}
	}
}

// dueNextLocked sets when the next snapshot is due by the entries applied
// (SnapshotEntries). hub.mu must be held.
func (c *Cluster) dueNextLocked() {
	if n := c.cfg.SnapshotEntries; n > 0 {
		c.snapDue.Store(c.applied + n)
	}
}

// snapshotLoop saves the chat's state every SnapshotEvery, and once
// SnapshotEntries more entries are applied, if this node is the one whose
// turn it is: the live node with the smallest id, as every node sees it
// in the log.
func (c *Cluster) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.SnapshotEvery)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.snapNow:
		}
		if !c.serving.Load() {
			continue
		}
		c.h.mu.Lock()
		c.dueNextLocked()
		ids := make([]string, 0, len(c.h.nodes))
		for id := range c.h.nodes {
			ids = append(ids, id)
		}
		mine := len(ids) > 0 && slices.Min(ids) == c.h.node && c.applied != last
		var state *stateCopy
		if mine {
			state = c.h.snapshotLocked(c.applied)
			last = c.applied
		}
		c.h.mu.Unlock()
		if state == nil {
			continue
		}
		if err := c.saveSnapshot(ctx, state.proto()); err != nil && ctx.Err() == nil {
			c.logger.Warn("could not save a snapshot", "err", err)
		}
	}
}

// saveSnapshot saves snap as the state new nodes start from.
func (c *Cluster) saveSnapshot(ctx context.Context, snap *clusterv1.Snapshot) error {
	data, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	start := time.Now()
	if a := c.h.archive; a != nil {
		// The log lets go of what the snapshot holds: the archive must
		// have every message by then.
		if err := a.Flush(ctx); err != nil {
			return fmt.Errorf("the archive: %w", err)
		}
		a.Prune()
	}
	if err := c.log.SaveSnapshot(ctx, snap.GetSeq(), data); err != nil {
		return err
	}
	c.saved.Store(snap.GetSeq())
	c.logger.Debug("snapshot saved", "seq", snap.GetSeq(), "bytes", len(data), "took", time.Since(start))
	return nil
}

// Stop tells the other nodes that this one is stopping, so that they hold
// its users while their clients reconnect to them, and waits until this
// node has applied that (its streams are then ended with UNAVAILABLE), or
// ctx ends. Call hub.Shutdown after it.
func (c *Cluster) Stop(ctx context.Context) {
	c.stopOnce.Do(func() {
		// Commands of this node's streams that the log takes after the
		// stop would be refused (their users are held by then) with
		// nobody told: no more are let in, and those on their way are
		// appended first. Those not let in are refused to their clients.
		select {
		case <-c.gate.shut(errStopping):
		case <-ctx.Done():
		}
		cmd := c.h.command(&clusterv1.Command{Action: &clusterv1.Command_NodeStop{NodeStop: &clusterv1.NodeStop{}}})
		if out := c.submit(ctx, cmd, nil); out.err != nil {
			c.logger.Warn("could not tell the cluster this node is stopping: its users will be seen to leave when it is given up for dead", "err", out.err)
		} else if c.cfg.Solo && c.cfg.SnapshotEvery > 0 {
			// The next run starts from here, with nothing to replay.
			c.h.mu.Lock()
			state := c.h.snapshotLocked(c.applied)
			c.h.mu.Unlock()
			if err := c.saveSnapshot(ctx, state.proto()); err != nil {
				c.logger.Warn("could not save the chat's state as it stops: the next start replays the log since the last snapshot", "err", err)
			}
		}
		close(c.stopped)
	})
}
