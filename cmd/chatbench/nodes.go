package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// nodeResult is one chatd node's share of a run against a cluster. Its
// CPU per million deliveries is over the deliveries to its own members:
// what one delivery costs the node that makes it, every node's share of
// applying the cluster's log included. With members spread evenly, the
// nodes' figures average to the total's. In a run with a restart
// (--restart-node), a member that moved counts as a member of the node it
// joined on, and its deliveries go to the node that made them.
type nodeResult struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Members    int    `json:"members"`    // sessions that joined on this node (with --devices, each device is one)
	Senders    int    `json:"senders"`    // of them, those that sent
	Deliveries uint64 `json:"deliveries"` // messages received by sessions while their stream was on this node
	procFigures
	MemPerSessionKiB *float64 `json:"mem_per_session_kib"` // its RSS growth over its own members
}

// natsResult is the nats-server under a cluster that chatbench started.
// It is part of what the cluster costs, but not of the chatd totals: its
// CPU per million deliveries is over all of the run's deliveries.
type natsResult struct {
	URL string `json:"url"`
	procFigures
}

// procFigures is what /proc said of one server process; a figure is null
// when it could not be read (the result's unavailable says why).
type procFigures struct {
	PID           int      `json:"pid,omitempty"`
	JoinCPUS      *float64 `json:"join_cpu_s"` // joins, until every member has every join
	CPUS          *float64 `json:"cpu_s"`      // during the send phase
	CPUPerMillion *float64 `json:"cpu_s_per_million_deliveries"`
	RSSBeforeMiB  *float64 `json:"rss_before_mib"` // before the joins
	RSSJoinedMiB  *float64 `json:"rss_joined_mib"` // every member joined and idle
}

// newResult starts the result of a run against f: for one server, its
// pid; for a cluster, an entry for each node and for nats-server.
func newResult(name string, f fleet) *result {
	r := &result{Server: name, nodes: len(f.nodes)}
	if !f.cluster() {
		r.ServerPID = f.nodes[0].pid
		return r
	}
	for _, n := range f.nodes {
		r.Nodes = append(r.Nodes, &nodeResult{Name: n.name, Addr: n.addr, procFigures: procFigures{PID: n.pid}})
	}
	if f.nats != nil {
		r.NATS = &natsResult{URL: f.nats.addr, procFigures: procFigures{PID: f.nats.pid}}
	}
	return r
}

// perProc lists the per-process figures in fleet.procs order (none
// for one server, whose figures are the totals).
func (r *result) perProc() []*procFigures {
	var out []*procFigures
	for _, n := range r.Nodes {
		out = append(out, &n.procFigures)
	}
	if r.NATS != nil {
		out = append(out, &r.NATS.procFigures)
	}
	return out
}

// setJoinCPU records the CPU each process (fleet.procs order) used for
// the joins; the total is the nodes'.
func (r *result) setJoinCPU(d []time.Duration) {
	r.ServerJoinCPUS = ptr(sum(d[:r.nodes]).Seconds())
	for i, f := range r.perProc() {
		f.JoinCPUS = ptr(d[i].Seconds())
	}
}

// setSendCPU records the CPU each process used during the send phase.
func (r *result) setSendCPU(d []time.Duration) {
	r.ServerCPUS = ptr(sum(d[:r.nodes]).Seconds())
	for i, f := range r.perProc() {
		f.CPUS = ptr(d[i].Seconds())
	}
}

// setMemory records each process's RSS before the joins and once every
// session had joined, and the growth per session: over all sessions (every
// device of every member) for the total, over its own for a node.
func (r *result) setMemory(before, joined []uint64, ms []*member) {
	r.ServerRSSBeforeMiB = ptr(mib(sum(before[:r.nodes])))
	r.ServerRSSJoinedMiB = ptr(mib(sum(joined[:r.nodes])))
	r.ServerMemPerSessionKiB = ptr(growthKiB(sum(before[:r.nodes]), sum(joined[:r.nodes])) / float64(r.Joined))
	for i, f := range r.perProc() {
		f.RSSBeforeMiB, f.RSSJoinedMiB = ptr(mib(before[i])), ptr(mib(joined[i]))
	}
	on := make([]int, r.nodes)
	for _, m := range ms {
		if m.joined {
			on[nodeOf(m, r.nodes)]++
		}
	}
	for k, n := range r.Nodes {
		if on[k] > 0 {
			n.MemPerSessionKiB = ptr(growthKiB(before[k], joined[k]) / float64(on[k]))
		}
	}
}

// accountNodes adds up each node's members and their deliveries, once the
// members' receive goroutines have ended, and the CPU per delivery.
func (r *result) accountNodes(ms []*member) {
	if len(r.Nodes) == 0 {
		return
	}
	for _, m := range ms {
		k := nodeOf(m, r.nodes)
		n := r.Nodes[k]
		if m.joined {
			n.Members++
		}
		if m.snd != nil {
			n.Senders++
		}
		// A member that moved got its messages from one node, then
		// from another.
		var from uint64
		for _, mv := range m.moves {
			r.Nodes[k].Deliveries += mv.received - from
			from = mv.received
			if mv.to >= 0 {
				k = mv.to
			}
		}
		r.Nodes[k].Deliveries += m.received.Load() - from
	}
	for _, n := range r.Nodes {
		n.CPUPerMillion = perMillion(n.CPUS, n.Deliveries)
	}
	if r.NATS != nil {
		r.NATS.CPUPerMillion = perMillion(r.NATS.CPUS, r.Deliveries)
	}
}

// perMillion is CPU seconds per million deliveries, or nil.
func perMillion(cpu *float64, deliveries uint64) *float64 {
	if cpu == nil || deliveries == 0 {
		return nil
	}
	return ptr(*cpu / (float64(deliveries) / 1e6))
}

func sum[T time.Duration | uint64](v []T) T {
	var s T
	for _, x := range v {
		s += x
	}
	return s
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// growthKiB is how much an RSS grew, in KiB; negative if it shrank.
func growthKiB(before, after uint64) float64 { return (float64(after) - float64(before)) / 1024 }

// writeNodes writes a cluster's figures node by node, for people.
func writeNodes(w io.Writer, r *result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\taddress\tpid\tsessions\tdeliveries\tCPU for the joins\tCPU sending\tCPU per 1M deliveries\tRSS joined, idle\tmemory per session\t")
	pid := func(p int) string {
		if p == 0 {
			return "n/a"
		}
		return strconv.Itoa(p)
	}
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", n.Name, n.Addr, pid(n.PID), n.Members, n.Deliveries,
			num(n.JoinCPUS, "%.2f s"), num(n.CPUS, "%.2f s"), num(n.CPUPerMillion, "%.2f s"), num(n.RSSJoinedMiB, "%.1f MiB"), num(n.MemPerSessionKiB, "%.1f KiB"))
	}
	if n := r.NATS; n != nil {
		fmt.Fprintf(tw, "nats-server\t%s\t%s\t–\tall\t%s\t%s\t%s\t%s\t–\t\n", n.URL, pid(n.PID),
			num(n.JoinCPUS, "%.2f s"), num(n.CPUS, "%.2f s"), num(n.CPUPerMillion, "%.2f s"), num(n.RSSJoinedMiB, "%.1f MiB"))
	}
	tw.Flush()
}
