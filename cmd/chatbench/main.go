// Command chatbench is chatd's load tool. It drives a real chatd over real
// sockets: --members sessions join, each on its own gRPC connection (the join
// storm: every join is broadcast to everyone already there), then --senders
// of them send messages that every member receives, either as fast as
// acknowledgements allow or at a fixed --rate. It reports how long the joins
// took, deliveries per second, end-to-end latency, messages lost or
// duplicated, and the server's CPU time per million deliveries and memory per
// session, read from /proc.
//
// In the same invocation it runs the same fan-out over plain TCP with
// length-prefixed frames (the baseline), so that chatd's throughput can be
// quoted as a fraction of what the machine can do.
//
//	chatbench --chatd bin/chatd --members 1000 --senders 5 --window 16 --duration 5s
//	chatbench --server localhost:50051 --server-pid $(pidof chatd) --rate 10
//	chatbench --chatd bin/chatd --nodes 3 --members 1000 --senders 6
//
// A cluster is measured the same way: members (and senders, and joins) are
// spread over its nodes, listed in --server or started by chatbench with
// --nodes, on a nats-server it starts too; the servers' figures are then
// the nodes' totals, and each node's and nats-server's are given apart.
// With --restart-node K it measures a rolling restart: node K gets SIGTERM
// during the send phase and is started again, its members resume on other
// nodes (move.go), and nobody may lose a message or see anyone leave.
//
//	chatbench --chatd bin/chatd --nodes 3 --members 600 --senders 6 --rate 20 --duration 10s --restart-node 2
//
// Every member is both a receiver and a checker: messages carry
// "b:<sender>:<n>:<sent at>", so each member sees each sender's numbers in
// order and can tell a lost message from a duplicate, and the latency of
// every single delivery goes into a histogram.
//
// With --typers N, N members other than the senders type in their channel
// during the send phase, in bursts, as people do who type and do not send
// (typing.go); with --senders 0 the run is typing only, so that what
// typing costs chatd can be set beside what messages cost:
//
//	chatbench --chatd bin/chatd --members 1000 --senders 0 --typers 100 --duration 30s
//
// With --devices N every member joins on N devices (Join.device_key), each
// a session of its own that receives and checks everything its member
// does, so that a run against one with --devices 1 says what a second
// device costs per session and per delivery.
//
//	chatbench --chatd bin/chatd --members 1000 --devices 2 --senders 5 --rate 5 --duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

// run is chatbench without the process: tests call it. It returns an error
// if the runs could not be completed or found a message lost, duplicated or
// refused, after printing the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, stdout)
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	prog := startProgress(stderr, cfg.progress)
	defer prog.close()

	rep := newReport(cfg)
	if err := benchChatd(ctx, cfg, rep, prog); err != nil {
		return err
	}
	if cfg.baseline {
		if err := benchBaseline(ctx, cfg, rep, prog); err != nil {
			return err
		}
	}
	rep.finish()
	prog.close()
	if !cfg.jsonOnly {
		rep.writeText(stdout)
	}
	if err := rep.writeJSON(stdout); err != nil {
		return err
	}
	if !rep.OK {
		return rep.summary()
	}
	return nil
}

func newReport(cfg *config) *report {
	rep := &report{Members: cfg.members, Devices: cfg.devices, Sessions: cfg.sessions(), Senders: cfg.senders, Conns: cfg.conns, Transport: cfg.transport, ClientBDP: cfg.clientBDP, Channels: cfg.channels}
	switch {
	case cfg.senders == 0 && cfg.typers > 0:
		rep.Mode = "typing-only"
	case cfg.senders == 0:
		rep.Mode = "join-only"
	case cfg.saturated():
		rep.Mode, rep.Window = "saturated", ptr(cfg.window)
	default:
		rep.Mode, rep.Rate = "rate", ptr(cfg.rate)
	}
	if cfg.sends() {
		rep.DurationS = ptr(cfg.duration.Seconds())
	}
	if cfg.typers > 0 {
		rep.Typers = cfg.typers
		rep.TypingEveryS, rep.TypingForS, rep.TypingPauseS = ptr(cfg.typingEvery.Seconds()), ptr(cfg.typingFor.Seconds()), ptr(cfg.typingPause.Seconds())
	}
	return rep
}

// benchChatd measures chatd: one that chatbench starts, a cluster that
// it starts (--nodes), or the chatd or the cluster's nodes at --server.
func benchChatd(ctx context.Context, cfg *config, rep *report, prog *progress) error {
	addrs, name := cfg.servers, "chatd "+strings.Join(cfg.servers, ",")
	var f fleet
	for k, a := range cfg.servers {
		w := watched{name: fmt.Sprintf("n%d", k+1), addr: a}
		if len(cfg.serverPIDs) > 0 {
			w.pid = cfg.serverPIDs[k]
		}
		f.nodes = append(f.nodes, w)
	}
	webAddr := cfg.webServer // --transport grpc-web: the gateway's address
	var stopServer func()
	var stopErr error
	creds, err := transportCreds(cfg.caFile)
	if err != nil {
		return err
	}
	var rs *restarter
	switch {
	case cfg.nodes > 0:
		c, err := startCluster(ctx, cfg)
		if err != nil {
			return err
		}
		defer c.kill()
		addrs, f, name = c.addrs(), c.fleet(), fmt.Sprintf("chatd (%d nodes)", cfg.nodes)
		if cfg.nodes == 1 {
			name = "chatd (1 node)"
		}
		if cfg.restartNode > 0 {
			rs = newRestarter(c, cfg.restartNode-1, cfg.restartAt)
		}
		// Stop the cluster before the members hang up, as for one chatd.
		stopServer = func() { stopErr = c.stop() }
	case cfg.chatdPath != "":
		extra := cfg.chatdExtra()
		if cfg.transport == "grpc-web" {
			// Its page and gateway on a free port of their own;
			// --chatd-arg may still say where.
			extra = append([]string{"--http-addr=127.0.0.1:0"}, extra...)
		}
		p, err := startChatd(ctx, cfg.chatdPath, cfg.sessions(), extra)
		if err != nil {
			return err
		}
		defer p.kill()
		addrs, name, webAddr = []string{p.addr}, "chatd", p.http
		f = fleet{nodes: []watched{{name: "chatd", addr: p.addr, pid: p.pid}}}
		// Stop chatd before the members hang up, so it does not spend
		// minutes telling the remaining thousands about each leave.
		stopServer = func() { stopErr = p.stop() }
	}
	for k, addr := range addrs {
		node := 0
		if len(addrs) > 1 {
			node = k + 1
		}
		if err := probe(ctx, addr, node, cfg.senders > 0, creds); err != nil {
			if node > 0 {
				err = fmt.Errorf("chatd at %s: %w", addr, err)
			}
			if errors.Is(err, errRateLimited) {
				if cfg.chatdPath != "" {
					return fmt.Errorf("%w; chatbench starts chatd with --message-rate 0: drop the --chatd-arg that limits it", err)
				}
				return fmt.Errorf("%w; the senders send far faster than a person: run chatd with --message-rate 0", err)
			}
			return err
		}
	}
	var tr transport
	if cfg.transport == "grpc-web" {
		// The probe went over gRPC; the members go through the gateway.
		tr = &webTransport{addr: webAddr, timeout: cfg.joinTimeout, batches: cfg.batches}
		name += " via grpc-web " + webAddr
	} else {
		gt, err := newGRPCTransport(ctx, addrs, cfg.conns, cfg.joinTimeout, dialOptions(creds, cfg.clientBDP)...)
		if err != nil {
			return err
		}
		gt.batches = cfg.batches
		// A restarting node refuses what its streams send while it
		// stops: the refusal must name the message (see move.go's
		// in-doubt window).
		gt.tag = rs != nil
		tr = gt
	}
	res, err := bench(ctx, cfg, name, tr, f, stopServer, rs, prog)
	rep.Chatd = res
	if err != nil {
		return fmt.Errorf("chatd: %w", err)
	}
	if stopErr != nil {
		res.Problems = append(res.Problems, stopErr.Error())
	}
	return nil
}

// benchBaseline measures the raw TCP fan-out, served in this process.
func benchBaseline(ctx context.Context, cfg *config, rep *report, prog *progress) error {
	srv, err := startRawServer(cfg.baselineQueue)
	if err != nil {
		return err
	}
	defer srv.close()
	f := fleet{nodes: []watched{{name: "raw TCP", addr: srv.addr()}}}
	res, err := bench(ctx, cfg, "raw TCP", &rawTransport{addr: srv.addr()}, f, srv.close, nil, prog)
	// Its CPU and memory are chatbench's own; see chatbench_cpu_s.
	res.Unavailable = []string{"server CPU and memory: the baseline server runs inside chatbench"}
	rep.Baseline = res
	if err != nil {
		return fmt.Errorf("raw TCP baseline: %w", err)
	}
	return nil
}
