package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a chatd (or nats-server) that chatbench
// starts may take to say where it listens, and how long it may take to stop.
const startTimeout = 15 * time.Second

// listeningPrefix starts chatd's first line on stdout.
const listeningPrefix = "chatd: gRPC listening on "

// pagePrefix starts the line on which a chatd with an HTTP port says
// where it serves the page and grpc-web (after the gRPC line).
const pagePrefix = "chatd: chat page on http://"

// proc is a chatd or a nats-server that chatbench started.
type proc struct {
	name   string // "chatd", "chatd n2", "nats-server": for messages
	cmd    *exec.Cmd
	addr   string
	http   string // where a chatd with an HTTP port serves the page and grpc-web; "" without
	pid    int
	stderr *tailBuffer
	exited chan struct{} // closed once the process has been waited for
	err    error         // how it exited; set before exited is closed
}

// startChatd starts the chatd at path on a free loopback port, with the
// rate limit off (the benchmark sends far faster than a person), room for
// that many sessions and no limits per client address, then extra, and waits
// until it listens. Its HTTP port (the page and the gateway) is off
// unless extra gives it an address, e.g. --http-addr=127.0.0.1:0 for
// --transport grpc-web: then it also waits until that listens.
func startChatd(ctx context.Context, path string, sessions int, extra []string) (*proc, error) {
	args := []string{
		"--grpc-addr", "127.0.0.1:0",
		"--message-rate", "0",
		"--max-sessions", strconv.Itoa(sessions + 16),
	}
	// A chatd with a browser gateway would also listen on a fixed HTTP
	// port: turn it off, so that runs (and tests) never collide on it and
	// only gRPC is measured. Older chatds have no such flag.
	help, _ := exec.Command(path, "--help").CombinedOutput()
	if strings.Contains(string(help), "-http-addr") {
		args = append(args, "--http-addr=")
	}
	// Every member connects from this machine's one address: the limits
	// per client address would refuse all but the first hundred or so.
	if strings.Contains(string(help), "-max-conns-per-ip") {
		args = append(args, strings.Fields(perAddressFlags)...)
	}
	// Kept in memory, as chatd was before it kept its chat on disk, unless
	// extra says where (--data-dir), or makes it a cluster node: the
	// figures then compare across versions, and runs leave nothing behind.
	if strings.Contains(string(help), "-memory") && !slices.ContainsFunc(extra, func(a string) bool {
		return strings.Contains(a, "-data-dir") || strings.Contains(a, "-memory") || strings.Contains(a, "-nats-url")
	}) {
		args = append(args, "--memory")
	}
	// The flag package lets a later flag override an earlier one, so extra
	// can change any of these.
	args = append(args, extra...)
	web := httpAddrIn(args) != ""
	p := &proc{
		name:   "chatd",
		cmd:    exec.Command(path, args...),
		stderr: &tailBuffer{name: "chatd", max: 16 << 10},
		exited: make(chan struct{}),
	}
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = time.Second
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start chatd: %w", err)
	}
	p.pid = p.cmd.Process.Pid

	line := make(chan string, 1)
	page := make(chan string, 1) // with web: the page's line, or "" if chatd printed none
	go func() {
		// chatd may print other lines (other listeners) before or after.
		r := bufio.NewReader(stdout)
		var first string
		for {
			l, err := r.ReadString('\n')
			if first == "" {
				first = l
			}
			if strings.HasPrefix(l, listeningPrefix) || err != nil {
				line <- cmp.Or(l, first)
				break
			}
		}
		for web {
			l, err := r.ReadString('\n')
			if strings.HasPrefix(l, pagePrefix) || err != nil {
				page <- l
				break
			}
		}
		_, _ = io.Copy(io.Discard, r) // keep reading, so chatd never blocks on stdout
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l), listeningPrefix)
		if ok && addr != "" {
			p.addr = addr
			if web {
				return p, p.awaitPage(ctx, page, timer.C)
			}
			return p, nil
		}
		p.kill()
		return nil, fmt.Errorf("chatd %s did not start: printed %q, want %q…\n%s", strings.Join(args, " "), l, listeningPrefix, p.stderr)
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("chatd did not say where it listens within %s\n%s", startTimeout, p.stderr)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// awaitPage waits for chatd's line saying where it serves the page and
// grpc-web, and kills it if it does not come.
func (p *proc) awaitPage(ctx context.Context, page <-chan string, timeout <-chan time.Time) error {
	var err error
	select {
	case l := <-page:
		if addr, ok := strings.CutPrefix(strings.TrimSpace(l), pagePrefix); ok && addr != "" {
			p.http = addr
			return nil
		}
		err = fmt.Errorf("chatd did not say where it serves grpc-web: printed %q, want %q…\n%s", l, pagePrefix, p.stderr)
	case <-timeout:
		err = fmt.Errorf("chatd did not say where it serves grpc-web within %s\n%s", startTimeout, p.stderr)
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.kill()
	return err
}

// httpAddrIn is the last --http-addr in chatd's args: the flag package
// lets a later flag override an earlier one.
func httpAddrIn(args []string) string {
	var addr string
	for i, a := range args {
		name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "http-addr" || !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasValue && i+1 < len(args) {
			v = args[i+1]
		}
		addr = v
	}
	return addr
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop stops the process as a service manager would, with SIGTERM, and
// reports whether it shut down cleanly. It may be called more than once.
func (p *proc) stop() error {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(startTimeout):
		p.kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed it", p.name, startTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s exited with %v\n%s", p.name, p.err, p.stderr)
	}
	return nil
}

// kill ends the process at once, if it still runs, and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// tailBuffer keeps the last max bytes written to it: enough of a
// process's log to say why it failed, without holding a long run's every
// line.
type tailBuffer struct {
	name string // whose log: "chatd", "nats-server"
	mu   sync.Mutex
	max  int
	buf  []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return "(" + b.name + " wrote nothing on stderr)"
	}
	return b.name + "'s last log lines:\n" + string(b.buf)
}
