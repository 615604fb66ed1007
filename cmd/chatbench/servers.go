package main

import (
	"cmp"
	"time"
)

// watched is a server process whose CPU time and memory a run reads from
// /proc: a chatd, a node of a cluster, or the nats-server under one.
type watched struct {
	name string // "n1", …; "nats-server"
	addr string // where it listens (for nats-server, its URL)
	pid  int    // 0: unknown, so its figures are unavailable
}

// fleet is the servers one run measures: the chatd nodes that members are
// spread over (session m joins on nodes[nodeOf(m, len(nodes))]) and, under a
// cluster that chatbench started, its nats-server.
type fleet struct {
	nodes []watched
	nats  *watched
}

// nodeOf is the node, of n, that session m joins on: device d of member i
// on node (i+d) mod n. Round-robin, so that members, senders (the first
// members, on their first device) and joins are spread evenly, and a
// member's devices are on different nodes (as far as there are nodes
// enough), as a person's laptop and phone would likely be.
func nodeOf(m *member, n int) int { return (m.idx + m.dev) % n }

// cluster reports whether the run is reported node by node: several chatd
// nodes, or any number on a nats-server chatbench started.
func (f fleet) cluster() bool { return len(f.nodes) > 1 || f.nats != nil }

// procs lists every watched process: the nodes in order, then nats-server.
func (f fleet) procs() []watched {
	ps := append([]watched(nil), f.nodes...)
	if f.nats != nil {
		ps = append(ps, *f.nats)
	}
	return ps
}

// cpuOf reads the CPU time of each process in ps. Totals over processes
// cannot be had from some of them, so one failure fails the reading.
func cpuOf(ps []watched) ([]time.Duration, error) {
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		d, err := procCPU(p.pid)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// rssOf reads the resident set size of each process in ps, in bytes; like
// cpuOf, all or nothing.
func rssOf(ps []watched) ([]uint64, error) {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		n, err := procRSS(p.pid)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// cpuSpan is the CPU each process used between two readings, or nil.
func cpuSpan(before, after []time.Duration, errBefore, errAfter error) ([]time.Duration, error) {
	if err := cmp.Or(errBefore, errAfter); err != nil { // both fail alike (no pid): say it once
		return nil, err
	}
	d := make([]time.Duration, len(before))
	for i := range before {
		d[i] = after[i] - before[i]
	}
	return d, nil
}
