package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// restarter restarts one node of a cluster that chatbench started, during
// the send phase (--restart-node), as a rolling restart does, and keeps
// what it takes to report it. Its members move meanwhile (see move.go).
type restarter struct {
	c  *cluster
	k  int           // the node, from 0
	at time.Duration // how far into the send phase it gets SIGTERM

	done chan struct{} // closed when run returns
	// Written by run before done is closed; times are now()'s.
	start, sigterm, exited, serving int64 // 0: did not happen
	stopErr, err                    error
	addr                            string
	oldPID, newPID                  int
	oldCPU                          time.Duration // the stopped process's CPU time, all of it
}

func newRestarter(c *cluster, k int, at time.Duration) *restarter {
	return &restarter{c: c, k: k, at: at, done: make(chan struct{})}
}

// run waits until at into the send phase, which starts now, then
// restarts the node.
func (rs *restarter) run(ctx context.Context) {
	defer close(rs.done)
	rs.start = now()
	if !sleep(ctx, rs.at) {
		rs.err = fmt.Errorf("the run ended before the restart: %w", ctx.Err())
		return
	}
	rs.sigterm = now()
	old, p, err := rs.c.restart(ctx, rs.k, func(err error) { rs.exited, rs.stopErr = now(), err })
	rs.oldPID, rs.addr = old.pid, old.addr
	if st := old.cmd.ProcessState; st != nil {
		rs.oldCPU = st.UserTime() + st.SystemTime()
	}
	if p != nil {
		rs.newPID = p.pid
	}
	if err != nil {
		rs.err = err
		return
	}
	rs.serving = now()
}

// over reports whether run has returned.
func (rs *restarter) over() bool {
	select {
	case <-rs.done:
		return true
	default:
		return false
	}
}

// cpuOf reads the CPU time of procs, as cpuOf does, once the node has been
// restarted: the restarted node's is the new process's plus all of the old
// one's, so that the span from a reading before the restart counts both.
// A nil restarter reads procs as they are.
func (rs *restarter) cpuOf(procs []watched) ([]time.Duration, error) {
	if rs == nil {
		return cpuOf(procs)
	}
	if !rs.over() || rs.newPID == 0 {
		return nil, errors.New("the restarted node is not back")
	}
	ps := slices.Clone(procs)
	ps[rs.k].pid = rs.newPID
	d, err := cpuOf(ps)
	if err != nil {
		return nil, err
	}
	d[rs.k] += rs.oldCPU
	return d, nil
}

// restartResult is what restarting a node during the send phase did, and
// what the members saw of it. Times are in seconds unless said otherwise;
// null when what they measure did not happen.
type restartResult struct {
	Node      string   `json:"node"` // "n2"
	Addr      string   `json:"addr"`
	PIDBefore int      `json:"pid_before"`
	PIDAfter  int      `json:"pid_after,omitempty"`
	AtS       *float64 `json:"sigterm_at_s"`   // into the send phase
	ExitS     *float64 `json:"node_exit_s"`    // SIGTERM → the old process exited
	ServingS  *float64 `json:"node_serving_s"` // SIGTERM → started again and SERVING
	Error     string   `json:"error,omitempty"`

	OnNode     int      `json:"members_on_node"` // sessions that joined on the node (with --devices, each device is one)
	Moved      int      `json:"moved"`           // sessions whose stream ended and that resumed on another node
	NotBack    int      `json:"not_back"`        // sessions whose stream ended and that could not resume
	Attempts   int      `json:"resume_attempts"` // resume attempts, over all members
	Incomplete int      `json:"incomplete"`      // resumes welcomed without RECOVERY_COMPLETE
	AllBackS   *float64 `json:"all_back_s"`      // SIGTERM → the last moved member's welcome
	OutageMS   *outage  `json:"outage_ms"`       // each move: the member's time without a stream
	Flapped    uint64   `json:"flapped"`         // user_left and resumed user_joined events, over all members

	// A moved sender's messages on their way when its stream ended are in
	// doubt; those that never came back, to it or anyone, were not sent.
	InDoubt     uint64 `json:"in_doubt"`
	Unconfirmed uint64 `json:"unconfirmed"`
}

// outage is a distribution of times without a stream, in milliseconds.
type outage struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// account adds up what the restart and the members' moves did, once the
// members' receive goroutines have ended, and adds to res's problems what
// must not happen in a rolling restart.
func (rs *restarter) account(ms []*member, res *result) *restartResult {
	r := &restartResult{Node: fmt.Sprintf("n%d", rs.k+1), Addr: rs.c.nodes[rs.k].addr, PIDBefore: rs.oldPID, PIDAfter: rs.newPID}
	if rs.newPID != 0 && rs.k < len(res.Nodes) {
		res.Nodes[rs.k].PID = rs.newPID // its figures are both processes'
	}
	since := func(t int64) *float64 {
		if t == 0 || rs.sigterm == 0 {
			return nil
		}
		return ptr(time.Duration(t - rs.sigterm).Seconds())
	}
	if rs.sigterm != 0 {
		r.AtS = ptr(time.Duration(rs.sigterm - rs.start).Seconds())
	}
	r.ExitS, r.ServingS = since(rs.exited), since(rs.serving)
	if err := errors.Join(rs.stopErr, rs.err); err != nil {
		r.Error = err.Error()
	}

	var h histogram
	var lastBack int64
	for _, m := range ms {
		if m.joined && m.home == rs.k {
			r.OnNode++
		}
		r.Flapped += m.flaps
		r.InDoubt += m.inDoubt
		if m.doubt.open { // never settled: the member ended
			r.InDoubt += m.doubt.hi - m.doubt.lo
		}
		if m.snd != nil {
			r.Unconfirmed += m.snd.unconfirmed.Load()
		}
		back := false
		for _, mv := range m.moves {
			r.Attempts += mv.attempts
			if mv.back == 0 {
				r.NotBack++
				continue
			}
			back = true
			if !mv.complete {
				r.Incomplete++
			}
			h.record(time.Duration(mv.back - mv.end))
			lastBack = max(lastBack, mv.back)
		}
		if back {
			r.Moved++
		}
	}
	r.AllBackS = since(lastBack)
	if h.n > 0 {
		r.OutageMS = &outage{P50: millis(h.quantile(0.5)), P99: millis(h.quantile(0.99)), Max: millis(h.quantile(1))}
	}

	if r.Error != "" {
		res.Problems = append(res.Problems, fmt.Sprintf("restarting %s: %s", r.Node, r.Error))
	}
	if r.NotBack > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d members lost their stream and could not resume on another node", r.NotBack))
	}
	if r.Incomplete > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d resumes were not complete (RECOVERY_COMPLETE): their members missed events", r.Incomplete))
	}
	if r.Flapped > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("members saw %d user_left or resumed user_joined events: someone was seen to leave or come back", r.Flapped))
	}
	return r
}

// writeRestart writes what a node's restart did, for people.
func writeRestart(w io.Writer, r *restartResult) {
	secs := func(v *float64) string { return num(v, "%.3f s") }
	fmt.Fprintf(w, "rolling restart of %s (%s, pid %d, then %d): SIGTERM %s into the send phase; it exited after %s, was SERVING again after %s\n",
		r.Node, r.Addr, r.PIDBefore, r.PIDAfter, secs(r.AtS), secs(r.ExitS), secs(r.ServingS))
	fmt.Fprintf(w, "  members moved: %d (of %d on %s), not back: %d, resume attempts: %d, incomplete: %d, flapped: %d\n",
		r.Moved, r.OnNode, r.Node, r.NotBack, r.Attempts, r.Incomplete, r.Flapped)
	out := "n/a"
	if o := r.OutageMS; o != nil {
		out = fmt.Sprintf("%.1f / %.1f / %.1f ms", o.P50, o.P99, o.Max)
	}
	fmt.Fprintf(w, "  everyone back %s after the SIGTERM; each member's time without a stream p50 / p99 / max: %s\n", secs(r.AllBackS), out)
	fmt.Fprintf(w, "  senders' messages in flight when their stream ended: %d, of them never sent (no echo, delivered to nobody): %d\n", r.InDoubt, r.Unconfirmed)
}
