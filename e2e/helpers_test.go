package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// raceBuild is set when the tests run under -race, so that the binaries are
// built with it too.
var raceBuild bool

// Paths of the binaries TestMain builds.
var chatdBin, chatctlBin string

// waitTimeout bounds every wait for output or exit. It is generous because a
// busy 2-core machine running race-enabled binaries can be slow.
const waitTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chatd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "github.com/chatd/chatd/cmd/chatd", "github.com/chatd/chatd/cmd/chatctl")
	build := exec.Command("go", args...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	chatdBin, chatctlBin = filepath.Join(dir, "chatd"), filepath.Join(dir, "chatctl")

	code := m.Run()
	// Every process is waited for in its test's cleanup; a goroutine still
	// waiting here would mean a process outlived its test.
	// The timer package of improbable's grpc-web wrapper, which the
	// browser tests that serve the page in-process use, runs one goroutine
	// for the whole process.
	if err := goleak.Find(goleak.IgnoreTopFunction("github.com/desertbit/timer.timerRoutine")); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
		code = 1
	}
	return code
}

// lineBuffer collects a process's output, line by line, and lets a test
// wait for a line.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer // everything written
	lines   []string     // complete lines so far
	partial []byte       // the line being written
	changed chan struct{}
	next    int // first line expect has not looked at yet
}

func newLineBuffer() *lineBuffer { return &lineBuffer{changed: make(chan struct{}, 1)} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, string(b.partial[:i]))
		b.partial = b.partial[i+1:]
	}
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// String returns everything written so far.
func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// scan looks for a line matching re from where the last match left off.
func (b *lineBuffer) scan(re *regexp.Regexp) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ; b.next < len(b.lines); b.next++ {
		if re.MatchString(b.lines[b.next]) {
			line := b.lines[b.next]
			b.next++
			return line, true
		}
	}
	return "", false
}

// proc is a running chatd or chatctl.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *lineBuffer
	exited         chan struct{} // closed once the process has been waited for
	waitErr        error         // set before exited is closed
	killed         bool          // by kill: its exit code tells nothing
}

// start starts bin with args. Its cleanup makes sure it is gone: stop, if
// given, is what a well-behaved exit takes (closing stdin, SIGTERM); after
// that and waitTimeout, the process is killed.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, bin, args...)
}

// startEnv is start with env (NAME=value) added to the environment.
func startEnv(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name:   filepath.Base(bin) + " " + strings.Join(args, " "),
		cmd:    exec.Command(bin, args...),
		stdout: newLineBuffer(),
		stderr: newLineBuffer(),
		exited: make(chan struct{}),
	}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// If a process leaves a child holding its output, do not wait forever.
	p.cmd.WaitDelay = 5 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(waitTimeout):
			t.Errorf("%s still running at the end of the test; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// expect waits until the process prints a line matching pattern on stdout,
// after the lines earlier expects matched, and returns it.
func (p *proc) expect(t *testing.T, pattern string) string {
	t.Helper()
	return p.expectIn(t, p.stdout, "stdout", pattern)
}

func (p *proc) expectIn(t *testing.T, b *lineBuffer, which, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if line, ok := b.scan(re); ok {
			return line
		}
		select {
		case <-b.changed:
		case <-p.exited:
			if line, ok := b.scan(re); ok {
				return line
			}
			t.Fatalf("%s exited (%v) without printing a line matching %q on %s\nstdout:\n%s\nstderr:\n%s",
				p.name, p.waitErr, pattern, which, p.stdout, p.stderr)
		case <-deadline.C:
			t.Fatalf("%s printed no line matching %q on %s within %s\nstdout:\n%s\nstderr:\n%s",
				p.name, pattern, which, waitTimeout, p.stdout, p.stderr)
		}
	}
}

// send writes lines to the process's standard input.
func (p *proc) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.stdin, l+"\n"); err != nil {
			t.Fatalf("write to %s: %v", p.name, err)
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not exit within %s\nstdout:\n%s\nstderr:\n%s", p.name, waitTimeout, p.stdout, p.stderr)
	}
	var exitErr *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
		t.Fatalf("%s: %v", p.name, p.waitErr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// chatd is a running chatd.
type chatd struct {
	*proc
	addr string
}

// startChatd starts a chatd of the test's own on a free loopback port, with
// the extra flags given. Its cleanup stops it with SIGTERM and checks that
// it exits 0.
func startChatd(t *testing.T, extra ...string) *chatd {
	t.Helper()
	p := start(t, chatdBin, append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", t.TempDir()}, extra...)...)
	t.Cleanup(func() { // runs before start's cleanup
		p.terminate(t)
	})
	line := p.expect(t, `^chatd: gRPC listening on `)
	return &chatd{proc: p, addr: strings.TrimPrefix(line, "chatd: gRPC listening on ")}
}

// terminate stops chatd the way a service manager would, and checks that it
// shuts down cleanly. It does nothing to a chatd already stopped this way.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	default:
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM %s: %v", p.name, err)
		}
	}
	if code := p.wait(t); code != 0 && !p.killed {
		t.Errorf("%s exited %d after SIGTERM, want 0\nstderr:\n%s", p.name, code, p.stderr)
	}
}

// kill kills the process with SIGKILL, as a crash would end it, and waits
// for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	p.wait(t)
}

// chatctl starts chatctl with args, for a test to talk to.
func chatctl(t *testing.T, args ...string) *proc {
	t.Helper()
	return start(t, chatctlBin, args...)
}

// runChatctl runs chatctl to completion with stdin as its input and returns
// its exit code and output.
func runChatctl(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := chatctl(t, args...)
	if stdin != "" {
		if _, err := io.WriteString(p.stdin, stdin); err != nil {
			t.Fatalf("write to %s: %v", p.name, err)
		}
	}
	p.stdin.Close()
	code = p.wait(t)
	return code, p.stdout.String(), p.stderr.String()
}

// goTool runs "go tool NAME args..." from the module's root, where go.mod
// declares the tool, and returns its exit code and output.
func goTool(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool"}, args...)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("go tool %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// matches reports whether s matches pattern.
func matches(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// freeAddrs returns n distinct loopback addresses whose ports nobody
// listens on, for a chatd that must come back on the same ports after a
// restart. The ports are below Linux's ephemeral range (32768 and up), from
// which every other test's ":0" listener and every outgoing connection take
// theirs, so none of them can take one of these while chatd is down.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for try := 0; len(addrs) < n; try++ {
		if try == 1000 {
			t.Fatalf("found only %d free ports below 32768 in 1000 tries", len(addrs))
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue // taken: try another
		}
		held = append(held, l) // held until all are found, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}
