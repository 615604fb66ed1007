package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
)

// liveTimeout bounds every wait for output or exit in these tests.
const liveTimeout = 10 * time.Second

// startServerWith is startServer with a configuration of the test's own.
func startServerWith(t *testing.T, cfg server.Config) *testServer {
	t.Helper()
	srv, addr := servertest.Start(t, cfg, slog.New(slog.DiscardHandler))
	return &testServer{addr: addr, srv: srv}
}

// lines is output that a test can wait on, line by line, while it is
// written. Its methods are safe for concurrent use.
type lines struct {
	mu      sync.Mutex
	all     strings.Builder
	done    []string // complete lines
	partial string
	next    int           // first line expect has not looked at
	changed chan struct{} // signalled on every write
}

func newLines() *lines { return &lines{changed: make(chan struct{}, 1)} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial += string(p)
	for {
		i := strings.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.done = append(l.done, l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// scan finds the next line matching re after the last one found.
func (l *lines) scan(re *regexp.Regexp) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ; l.next < len(l.done); l.next++ {
		if re.MatchString(l.done[l.next]) {
			l.next++
			return l.done[l.next-1], true
		}
	}
	return "", false
}

// liveRun is chatctl join running in the background, with stdin from a
// pipe and output a test can wait for.
type liveRun struct {
	name           string
	stdin          *io.PipeWriter
	stdout, stderr *lines
	code           int // set before done is closed
	done           chan struct{}
}

func startLive(t *testing.T, ctx context.Context, args ...string) *liveRun {
	t.Helper()
	pr, pw := io.Pipe()
	r := &liveRun{name: strings.Join(args, " "), stdin: pw, stdout: newLines(), stderr: newLines(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.code = run(ctx, append([]string{"join"}, args...), pr, r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		pw.Close() // ends chatctl's stdin reader, and the session
		select {
		case <-r.done:
		case <-time.After(liveTimeout):
			t.Errorf("chatctl join %s still running at the end of the test", r.name)
		}
	})
	return r
}

// expect waits for a line of stdout matching pattern, after the lines
// earlier expects matched, and returns it.
func (r *liveRun) expect(t *testing.T, pattern string) string {
	t.Helper()
	return r.expectIn(t, r.stdout, "stdout", pattern)
}

func (r *liveRun) expectIn(t *testing.T, l *lines, which, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(liveTimeout)
	for {
		if line, ok := l.scan(re); ok {
			return line
		}
		select {
		case <-l.changed:
		case <-r.done:
			if line, ok := l.scan(re); ok {
				return line
			}
			t.Fatalf("%s ended (exit code %d) without a line matching %q on %s\nstdout:\n%s\nstderr:\n%s", r.name, r.code, pattern, which, r.stdout, r.stderr)
		case <-deadline:
			t.Fatalf("%s printed no line matching %q on %s within %s\nstdout:\n%s\nstderr:\n%s", r.name, pattern, which, liveTimeout, r.stdout, r.stderr)
			return ""
		}
	}
}

// send types lines.
func (r *liveRun) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(r.stdin, l+"\n"); err != nil {
			t.Fatalf("type into %s: %v", r.name, err)
		}
	}
}

// wait waits for chatctl to exit and returns its exit code.
func (r *liveRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(liveTimeout):
		t.Fatalf("%s did not exit within %s\nstdout:\n%s\nstderr:\n%s", r.name, liveTimeout, r.stdout, r.stderr)
		return 0
	}
}

// matches reports whether s matches pattern.
func matches(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}
