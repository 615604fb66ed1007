package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// natsListening and natsReady are in nats-server's log, on stderr: where
// it takes clients, then that it is ready for them.
const (
	natsListening = "Listening for client connections on "
	natsReady     = "Server is ready"
)

// cluster is a chat cluster that chatbench started for a run
// (--chatd PATH --nodes N): one nats-server with JetStream, its store in a
// directory of its own, and N chatd nodes on it, so that a run's figures
// can be had again with one command.
type cluster struct {
	dir   string // nats-server's store
	nats  *proc
	url   string // nats://127.0.0.1:PORT
	nodes []*proc

	// How the nodes were started, to start one again (see restart).
	chatdPath string
	sessions  int        // room for them on every node (see startChatd)
	args      [][]string // each node's flags after chatbench's own
}

// startCluster starts nats-server and cfg.nodes chatd nodes on it, and
// waits until every node is SERVING (has caught up with the cluster's
// log). On error, whatever it started is stopped.
func startCluster(ctx context.Context, cfg *config) (c *cluster, err error) {
	// An older chatd would fail on --nats-url with a usage error: say
	// what is wrong before starting anything.
	help, _ := exec.Command(cfg.chatdPath, "--help").CombinedOutput()
	if !strings.Contains(string(help), "-nats-url") {
		return nil, fmt.Errorf("%s has no --nats-url: this chatd cannot run as a node of a cluster", cfg.chatdPath)
	}
	natsPath := cfg.natsServer
	if natsPath == "" {
		if natsPath, err = goToolPath(ctx, "nats-server"); err != nil {
			return nil, err
		}
	}
	c = &cluster{chatdPath: cfg.chatdPath, sessions: cfg.sessions()}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	if c.dir, err = os.MkdirTemp("", "chatbench-nats-"); err != nil {
		return c, err
	}
	if c.nats, c.url, err = startNATS(ctx, natsPath, c.dir); err != nil {
		return c, err
	}
	// The store is new, so the names are free anyway; a prefix of the
	// run's own keeps it so should nats-server ever be shared. chatd takes
	// at most 32 characters.
	prefix := fmt.Sprintf("chatbench_%d_%s", os.Getpid(), rand.Text()[:8])
	for k := range cfg.nodes {
		name := fmt.Sprintf("n%d", k+1)
		c.args = append(c.args, append([]string{"--nats-url", c.url, "--node-name", name, "--nats-prefix", prefix}, cfg.chatdExtra()...))
		p, err := c.startNode(ctx, k, nil)
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, p)
	}
	for _, p := range c.nodes {
		if err := waitServing(ctx, p); err != nil {
			return c, err
		}
	}
	return c, nil
}

// startNode starts node k (from 0) with its flags, then more.
func (c *cluster) startNode(ctx context.Context, k int, more []string) (*proc, error) {
	name := fmt.Sprintf("n%d", k+1)
	p, err := startChatd(ctx, c.chatdPath, c.sessions, append(slices.Clip(c.args[k]), more...))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	p.name = "chatd " + name
	p.stderr.name = p.name
	return p, nil
}

// restart restarts node k as a rolling restart does: SIGTERM, then, once
// it has exited, the same chatd with the same flags on the same gRPC
// address, and waits until it is SERVING again (it has caught up with the
// cluster's log). stopped is called once the old process has exited, with
// what stopping it said (nil if it shut down cleanly). It returns the old
// process and, if it came back, the new one, which has taken its place in
// the cluster.
func (c *cluster) restart(ctx context.Context, k int, stopped func(error)) (old, started *proc, err error) {
	old = c.nodes[k]
	stopped(old.stop()) // it has exited, one way or another
	// The flag package lets a later flag override chatbench's
	// --grpc-addr 127.0.0.1:0.
	p, err := c.startNode(ctx, k, []string{"--grpc-addr", old.addr})
	if err != nil {
		return old, nil, err
	}
	c.nodes[k] = p
	return old, p, waitServing(ctx, p)
}

// fleet is what a run measures of the cluster: every node, and nats-server.
func (c *cluster) fleet() fleet {
	f := fleet{nats: &watched{name: "nats-server", addr: c.url, pid: c.nats.pid}}
	for _, p := range c.nodes {
		f.nodes = append(f.nodes, watched{name: strings.TrimPrefix(p.name, "chatd "), addr: p.addr, pid: p.pid})
	}
	return f
}

// addrs lists the nodes' gRPC addresses, in order.
func (c *cluster) addrs() []string {
	var a []string
	for _, p := range c.nodes {
		a = append(a, p.addr)
	}
	return a
}

// stop stops the cluster as an operator would: every chatd node with
// SIGTERM at once, then nats-server, which the nodes need while they shut
// down; and reports whatever did not shut down cleanly.
func (c *cluster) stop() error {
	errs := make([]error, len(c.nodes)+1)
	var wg sync.WaitGroup
	for i, p := range c.nodes {
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	if c.nats != nil {
		errs[len(c.nodes)] = c.nats.stop()
	}
	c.kill() // removes the store
	return errors.Join(errs...)
}

// kill ends whatever of the cluster still runs, nodes first, and removes
// nats-server's store. It may be called more than once.
func (c *cluster) kill() {
	for _, p := range c.nodes {
		p.kill()
	}
	if c.nats != nil {
		c.nats.kill()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// goToolPath returns the path of one of go.mod's tools, as `go tool -n`
// prints it (building it first if it is not built yet).
func goToolPath(ctx context.Context, tool string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", tool)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n %s: %v: %s; run chatbench inside chatd's module, or give the binary's path in --nats-server", tool, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// startNATS starts the nats-server at path with JetStream, its store in
// dir, on a loopback port of its choosing, and waits until it is ready.
// It returns the process and the URL its clients connect to.
func startNATS(ctx context.Context, path, dir string) (*proc, string, error) {
	p := &proc{
		name:   "nats-server",
		cmd:    exec.Command(path, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", "-1"),
		stderr: &tailBuffer{name: "nats-server", max: 16 << 10},
		exited: make(chan struct{}),
	}
	p.cmd.WaitDelay = time.Second
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start nats-server: %w", err)
	}
	p.pid = p.cmd.Process.Pid

	ready := make(chan string, 1) // the address, once ready; "" if it exited first
	go func() {
		r := bufio.NewReader(stderr)
		var addr string
		for {
			l, err := r.ReadString('\n')
			_, _ = p.stderr.Write([]byte(l))
			if _, a, ok := strings.Cut(l, natsListening); ok {
				addr = strings.TrimSpace(a)
			}
			if strings.Contains(l, natsReady) || err != nil {
				if err != nil {
					addr = ""
				}
				ready <- addr
				break
			}
		}
		_, _ = io.Copy(p.stderr, r) // keep its log, so it never blocks on stderr
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case addr := <-ready:
		if addr == "" {
			p.kill()
			return nil, "", fmt.Errorf("nats-server did not start: %v\n%s", p.err, p.stderr)
		}
		return p, "nats://" + addr, nil
	case <-timer.C:
		p.kill()
		return nil, "", fmt.Errorf("nats-server was not ready within %s\n%s", startTimeout, p.stderr)
	case <-ctx.Done():
		p.kill()
		return nil, "", ctx.Err()
	}
}

// waitServing waits until the health service of the chatd node p says
// chat.v1.ChatService is SERVING: a node that listens may still be
// catching up with the cluster's log, and refuses joins until it has.
func waitServing(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cc, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	service := chatv1.ChatService_ServiceDesc.ServiceName
	stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	last := "no answer"
	for err == nil {
		var resp *healthpb.HealthCheckResponse
		if resp, err = stream.Recv(); err == nil {
			if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return nil
			}
			last = resp.GetStatus().String()
		}
	}
	return fmt.Errorf("%s at %s: %s not SERVING within %s (last: %s): %v\n%s", p.name, p.addr, service, startTimeout, last, err, p.stderr)
}
