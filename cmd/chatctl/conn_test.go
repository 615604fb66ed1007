package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/server"
)

// slowDial is the --dial-timeout of the tests that expect chatctl to give
// up promptly: a chatctl that waited it out would be caught by promptly.
const slowDial = "30s"

// promptly bounds a prompt failure: generous for a busy machine, and still
// far below slowDial.
const promptly = 10 * time.Second

// closedPort returns a loopback address that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// A refused connection fails every command at once, saying what refused
// it, rather than after --dial-timeout.
func TestRefusedFailsAtOnce(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	for _, args := range [][]string{
		{"who"},
		{"channels"},
		{"send", "--name", "bot"},
		{"join", "--name", "alice"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			args = append(args, "--server", addr, "--dial-timeout", slowDial)
			if args[0] == "send" {
				args = append(args, "hi")
			}
			start := time.Now()
			code, stdout, stderr := runCLI(t, t.Context(), "", args...)
			elapsed := time.Since(start)
			if code != exitUnreachable {
				t.Errorf("exit code %d, want %d", code, exitUnreachable)
			}
			if want := "chatctl: cannot reach chatd at " + addr + ": connection refused (is it running?)\n"; stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if elapsed > promptly {
				t.Errorf("gave up after %s, want well within --dial-timeout %s", elapsed, slowDial)
			}
		})
	}
}

// A server that takes the connection and never answers is waited for
// until --dial-timeout, which the message names.
func TestSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		for c := range held {
			c.Close()
		}
	})
	addr := lis.Addr().String()
	code, _, stderr := runCLI(t, t.Context(), "", "who", "--server", addr, "--dial-timeout", "300ms")
	if code != exitUnreachable {
		t.Errorf("exit code %d, want %d", code, exitUnreachable)
	}
	if want := "chatctl: cannot reach chatd at " + addr + " within 300ms (is it running?)\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// join's reconnection goes on trying a server that refuses connections,
// now that each attempt fails at once, until it is back.
func TestReconnectRetriesRefusedServer(t *testing.T) {
	t.Parallel()
	addr := lowAddr(t)
	stop := serveAt(t, addr)
	alice := startLive(t, t.Context(), "--name", "alice", "--server", addr, "--reconnect-timeout", "60s")
	alice.expect(t, `\* you joined as alice$`)
	stop() // nothing listens on addr now: every attempt is refused
	alice.expect(t, `^chatctl: connection lost \(server shutting down.*\); reconnecting for up to 1m0s\.\.\.$`)

	serveAt(t, addr) // a new chatd on the same address, as after a restart
	alice.expect(t, `\* reconnected, but some events were lost: state rebuilt$`)
	alice.stdin.Close()
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, alice.stderr)
	}
	if strings.Contains(alice.stderr.String(), "could not reconnect") {
		t.Errorf("stderr %q says it gave up", alice.stderr)
	}
}

// lowAddr returns a loopback address nobody listens on, whose port is below
// Linux's ephemeral range (32768 and up): no outgoing connection of another
// test takes it while the test's server is down.
func lowAddr(t *testing.T) string {
	t.Helper()
	for range 1000 {
		lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue // taken: try another
		}
		addr := lis.Addr().String()
		lis.Close()
		return addr
	}
	t.Fatal("no free port below 32768 in 1000 tries")
	return ""
}

// serveAt serves a fresh in-process chatd at addr until stop, which shuts
// it down as SIGTERM does chatd, or until the test ends.
func serveAt(t *testing.T, addr string) (stop func()) {
	t.Helper()
	srv, err := server.New(server.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v; want nil after Shutdown", err)
		}
	})
	t.Cleanup(stop)
	return stop
}
