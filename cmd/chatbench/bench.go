package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval is how often the waits for settled joins and drained
// messages look at the members' counters.
const pollInterval = 5 * time.Millisecond

// bench is one measured run against one server or one cluster (f): join
// every member, let them settle and idle, send, drain, and account. The
// servers' CPU and memory are read from /proc where their pids are known.
// stopServer, if not nil, is called once the figures are taken and before
// the members hang up, so that the servers do not work through their
// leaves. rs, if not nil, restarts a node of the cluster during the send
// phase; members whose stream ends with UNAVAILABLE then resume on another
// node (tr must be a resumer).
//
// It returns what it measured; an error means the run could not be
// completed (a join failed, the server went away) and the result is partial.
func bench(ctx context.Context, cfg *config, name string, tr transport, f fleet, stopServer func(), rs *restarter, prog *progress) (*result, error) {
	res := newResult(name, f)
	procs := f.procs()
	var mv *mover
	if rs != nil {
		mv = &mover{tr: tr.(resumer), nodes: len(f.nodes), timeout: cfg.joinTimeout}
	}
	// Every session: the members' first devices, which are the members
	// (senders first) as without --devices, then their second devices,
	// and so on. Whatever is done for every session ranges over ms.
	ms := make([]*member, cfg.sessions())
	for i := range ms {
		if i < cfg.members {
			ms[i] = newMember(i, cfg.senders, cfg.channels)
		} else {
			ms[i] = newDevice(ms[i%cfg.members], i/cfg.members)
		}
		ms[i].mayMove = mv != nil
	}
	for _, m := range ms[:cfg.senders] {
		m.snd = &sender{}
		if cfg.saturated() {
			m.snd.credits = make(chan struct{}, cfg.window)
			for range cfg.window {
				m.snd.credits <- struct{}{}
			}
		}
	}

	for _, m := range ms[cfg.senders : cfg.senders+cfg.typers] {
		m.typ = &typer{}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tearing atomic.Bool // set before chatbench ends the sessions itself
	var recvWG sync.WaitGroup
	teardown := sync.OnceFunc(func() {
		tearing.Store(true)
		if stopServer != nil {
			stopServer()
		}
		cancel()
		tr.close()
		recvWG.Wait()
	})
	defer teardown()

	var joined atomic.Int64
	var phase atomic.Value // read by the progress line
	phase.Store("joining")
	prog.set(func() string {
		var sent, recv uint64
		for _, m := range ms[:cfg.senders] {
			sent += m.snd.sent.Load()
		}
		var moving int
		var typed, typingEvents uint64
		for _, m := range ms {
			recv += m.received.Load()
			typingEvents += m.typingEvents.Load()
			if m.typ != nil {
				typed += m.typ.sent.Load()
			}
			if m.moving.Load() {
				moving++
			}
		}
		line := fmt.Sprintf("%s: %s: joined %d/%d, sent %d, received %d", name, phase.Load(), joined.Load(), len(ms), sent, recv)
		if cfg.typers > 0 {
			line += fmt.Sprintf(", typing sent %d, typing events %d", typed, typingEvents)
		}
		if rs != nil {
			line += fmt.Sprintf(", moving %d", moving)
		}
		return line
	})
	defer prog.set(nil)

	rssBefore, rssErr := rssOf(procs)
	joinCPU0, joinCPUErr := cpuOf(procs)

	// Joins. If they take too long, cancelling runCtx fails whatever is
	// still in flight.
	start := time.Now()
	watchdog := time.AfterFunc(cfg.joinTimeout, cancel)
	defer watchdog.Stop()
	startReceiving := func(m *member, c client, w welcome) {
		m.client, m.changed, m.lastSeq, m.token = c, make(chan struct{}), w.seq, w.token
		m.joined, m.home, m.node = true, nodeOf(m, len(f.nodes)), nodeOf(m, len(f.nodes))
		m.joins.Store(w.online)
		joined.Add(1)
		recvWG.Go(func() {
			err := c.receive(m)
			for mv != nil && movable(err) && !tearing.Load() {
				var next client
				if next, err = mv.move(runCtx, m, err); err != nil {
					break
				}
				err = next.receive(m)
			}
			m.endErr, m.early = err, !tearing.Load()
			close(m.done)
		})
	}
	err := joinAll(runCtx, cfg, tr, ms, startReceiving)
	res.Joined = int(joined.Load())
	res.JoinS = time.Since(start).Seconds()
	if err != nil {
		if runCtx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("joins did not finish within --join-timeout %s (%d of %d sessions joined): %w", cfg.joinTimeout, res.Joined, len(ms), err)
		}
		return res, err
	}

	// Settle: every session has received every member's join (the join
	// storm is over: presence is per user, so a member's other devices
	// announce nothing), and with --channels is in its channel, or was
	// dropped.
	phase.Store("receiving the joins")
	settled := waitUntil(runCtx, func() bool {
		for _, m := range ms {
			if (m.joins.Load() < uint64(cfg.members) || m.chanName != "" && !m.inChannel.Load()) && !m.ended() {
				return false
			}
		}
		return true
	})
	if !settled {
		return res, fmt.Errorf("members did not receive every join within --join-timeout %s", cfg.joinTimeout)
	}
	watchdog.Stop()
	res.SettleS = time.Since(start).Seconds()
	joinCPU1, err := cpuOf(procs)
	if d, err := cpuSpan(joinCPU0, joinCPU1, joinCPUErr, err); err == nil {
		res.setJoinCPU(d)
	}

	phase.Store("idle")
	if !sleep(runCtx, cfg.idleWait) {
		return res, ctx.Err()
	}
	rssJoined, err := rssOf(procs)
	if err := cmp.Or(rssErr, err); err != nil { // both readings fail alike: say it once
		res.unavailable("server memory", err)
	} else {
		res.setMemory(rssBefore, rssJoined, ms)
	}

	if cfg.sends() {
		phase.Store("sending")
		if err := sendAndDrain(runCtx, cfg, ms, procs, res, rs, &phase); err != nil {
			return res, err
		}
	}

	teardown()
	res.account(ms, cfg.senders)
	if rs != nil {
		res.Restart = rs.account(ms, res)
	}
	return res, nil
}

// joinAll joins every session, cfg.joinConcurrency at a time, in the
// order of ms, and calls started for each as soon as it is welcomed, so
// that it reads the join storm while the others join. A member's other
// devices wait for its first device's welcome, which has the key they join
// with; the first device was taken before them, so it is on its way. It
// stops at the first failure.
func joinAll(ctx context.Context, cfg *config, tr transport, ms []*member, started func(*member, client, welcome)) error {
	var next atomic.Int64
	var failed sync.Once
	var firstErr error
	stop := make(chan struct{}) // closed at the first failure
	var wg sync.WaitGroup
	for range min(cfg.joinConcurrency, len(ms)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ms) {
					return
				}
				m := ms[i]
				err := waitForKey(ctx, m, stop)
				if errors.Is(err, errJoinsStopped) {
					return
				}
				var c client
				var w welcome
				if err == nil {
					c, w, err = tr.join(ctx, m)
				}
				if err == nil && m.chanName != "" && m.dev == 0 {
					// Its channel_joined waits in the stream until
					// the receive goroutine starts. The member's
					// other devices are in the channel with it.
					if err = c.joinChannel(m.chanName); err != nil {
						c.close()
						err = fmt.Errorf("%s: join channel %s: %w", m, m.chanName, err)
					}
				}
				if err == nil && m.dev == 0 && cfg.devices > 1 {
					if w.deviceKey == "" {
						c.close()
						err = fmt.Errorf("%s: the welcome has no device key for the member's other devices: this server does not know devices; run without --devices", m)
					} else {
						m.key = w.deviceKey
						close(m.keyed)
					}
				}
				if err != nil {
					failed.Do(func() {
						firstErr = err
						close(stop)
					})
					return
				}
				started(m, c, w)
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// errJoinsStopped is how waitForKey says that another join failed first.
var errJoinsStopped = errors.New("another join failed")

// waitForKey waits until m, if it is not its member's first device, can
// join: its first device was welcomed with the key. It returns
// errJoinsStopped if another join failed first.
func waitForKey(ctx context.Context, m *member, stop <-chan struct{}) error {
	if m.first == nil {
		return nil
	}
	select {
	case <-m.first.keyed:
		return nil
	case <-stop:
		return errJoinsStopped
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the first device's key: %w", m, ctx.Err())
	}
}

// sendAndDrain runs the send phase (messages, typing or both), waits until
// every member has every message and is shown nobody typing, and records
// the servers' CPU use over that span. With rs, a node is restarted
// meanwhile, and the drain waits for it to be back.
func sendAndDrain(ctx context.Context, cfg *config, ms []*member, procs []watched, res *result, rs *restarter, phase *atomic.Value) error {
	senders := ms[:cfg.senders]
	typers := ms[cfg.senders : cfg.senders+cfg.typers]
	cpu0, cpuErr := cpuOf(procs)
	self0, selfErr := procCPU(os.Getpid())
	phase0 := time.Now()

	sendStart := now()
	deadline := sendStart + int64(cfg.duration)
	stop := make(chan struct{})
	timer := time.AfterFunc(cfg.duration, func() { close(stop) })
	defer timer.Stop()
	if rs != nil {
		// Waited for before anything else of the cluster is touched.
		var restartWG sync.WaitGroup
		defer restartWG.Wait()
		restartWG.Go(func() { rs.run(ctx) })
	}
	var wg sync.WaitGroup
	for k, m := range senders {
		wg.Go(func() {
			if cfg.saturated() {
				m.snd.sendErr = sendSaturated(ctx, m, stop)
			} else {
				m.snd.sendErr = sendAtRate(ctx, m, k, cfg, sendStart, deadline)
			}
		})
	}
	for _, m := range typers {
		wg.Go(func() {
			m.typ.err = typeAway(ctx, m, cfg, sendStart, deadline)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Drain: every member that is still there has every message that was
	// sent and not refused, and, every typer having stopped, is shown
	// nobody typing.
	phase.Store("draining")
	drainCtx, cancel := context.WithTimeout(ctx, cfg.drainTimeout)
	defer cancel()
	drained := waitUntil(drainCtx, func() bool {
		if rs != nil && !rs.over() {
			return false
		}
		want := make([]uint64, max(cfg.channels, 1)) // per group: what its members should get
		for _, m := range senders {
			if m.snd.unsettled.Load() && !m.ended() {
				return false // which of its messages count is not known yet
			}
			want[m.group] += m.snd.sent.Load() - m.snd.rejected.Load() - m.snd.unconfirmed.Load()
		}
		for _, m := range ms {
			if (m.received.Load() < want[m.group] || m.moving.Load() || m.typingShown.Load()) && !m.ended() {
				return false
			}
		}
		return true
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.DrainTimedOut = !drained

	var last int64
	for _, m := range ms {
		last = max(last, m.lastRecv.Load())
	}
	res.SendS = time.Duration(max(last-sendStart, 0)).Seconds()
	cpu1, err := rs.cpuOf(procs)
	res.PhaseS = time.Since(phase0).Seconds()
	if d, err := cpuSpan(cpu0, cpu1, cpuErr, err); err != nil {
		res.unavailable("server CPU", err)
	} else {
		res.setSendCPU(d)
	}
	if self1, err := procCPU(os.Getpid()); selfErr == nil && err == nil {
		res.ChatbenchCPUS = ptr((self1 - self0).Seconds())
	}
	return nil
}

// sendSaturated sends whenever the window allows, until stop.
func sendSaturated(ctx context.Context, m *member, stop <-chan struct{}) error {
	var buf []byte
	for n := uint64(0); ; n++ {
		select {
		case <-m.snd.credits:
		case <-stop:
			return nil
		case <-m.done:
			return nil // the receive side ended: the member's end says why
		case <-ctx.Done():
			return nil
		}
		select {
		case <-stop: // both were ready: stop wins, so the phase ends on time
			return nil
		default:
		}
		buf = appendText(buf[:0], m.idx, n, now())
		if err := m.transmit(ctx, buf, stop); err != nil {
			return sendEnd(ctx, err)
		}
	}
}

// sendEnd is what a sender returns when transmit did not send: nil when
// the phase ended, the run did, or the member's session did (its end says
// why), else the error.
func sendEnd(ctx context.Context, err error) error {
	if errors.Is(err, errStopped) || errors.Is(err, errEnded) || ctx.Err() != nil {
		return nil
	}
	return err
}

// sendAtRate sends at cfg.rate/cfg.senders messages per second from
// sender k, whatever the acknowledgements, until the deadline: an open loop,
// so a server that cannot keep up shows as latency, not as a lower rate.
// The senders' schedules are interleaved, so the total is evenly spaced.
func sendAtRate(ctx context.Context, m *member, k int, cfg *config, start, deadline int64) error {
	interval := float64(time.Second) * float64(cfg.senders) / cfg.rate
	var buf []byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for n := uint64(0); ; n++ {
		at := start + int64((float64(n)+float64(k)/float64(cfg.senders))*interval)
		if at >= deadline {
			return nil
		}
		if d := at - now(); d > 0 {
			timer.Reset(time.Duration(d))
			select {
			case <-timer.C:
			case <-m.done:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
		// The timestamp is when the message was due, not when it went:
		// if chatbench falls behind, or the member is moving to another
		// node, that shows as latency too. A message due before the
		// deadline is sent, however late.
		buf = appendText(buf[:0], m.idx, n, at)
		if err := m.transmit(ctx, buf, nil); err != nil {
			return sendEnd(ctx, err)
		}
	}
}

// ended reports whether m's receive goroutine has ended.
func (m *member) ended() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// waitUntil polls cond until it holds (true) or ctx ends (false).
func waitUntil(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
	return true
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func ptr[T any](v T) *T { return &v }
