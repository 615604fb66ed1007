package grpcdial_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/grpcdial"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) {
	// Every failed Dial must close its gRPC channel: a channel left
	// behind keeps retrying in its goroutines.
	goleak.VerifyTestMain(m)
}

// slowTimeout is the timeout the tests that expect a prompt failure give
// Dial: far longer than any prompt failure takes on a busy machine, so
// that a Dial that waits it out is caught.
const slowTimeout = 30 * time.Second

// prompt bounds a prompt failure: generous, and still far below slowTimeout.
const prompt = 10 * time.Second

var creds = grpc.WithTransportCredentials(insecure.NewCredentials())

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"localhost:50051", "127.0.0.1:1", "[::1]:50051", "chat.example.com:443", "my_host:9"} {
		if err := grpcdial.CheckAddr(addr); err != nil {
			t.Errorf("CheckAddr(%q) = %v, want nil", addr, err)
		}
	}
	for addr, want := range map[string]string{
		"":                       "empty",
		"localhost":              "no port",
		"http://localhost:50051": "scheme (http://)",
		"dns:///localhost:50051": "scheme (dns://)",
		":50051":                 "no host",
		"localhost:":             `port "" is not a number`,
		"localhost:http":         `port "http" is not a number`,
		"localhost:70000":        `port "70000" is not a number`,
		"localhost:0":            `port "0" is not a number`,
		"::1:50051":              "too many colons",
		"local host:50051":       "neither a host name nor an IP address",
		"localhost/chat:50051":   "neither a host name nor an IP address",
	} {
		if err := grpcdial.CheckAddr(addr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckAddr(%q) = %v, want an error saying %q", addr, err, want)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
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

// listen returns a loopback listener that handle serves, one connection
// at a time, until the test ends.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
	})
	return lis.Addr().String()
}

func TestDialReady(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpcdial.Dial(t.Context(), lis.Addr().String(), slowTimeout, creds)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("Check on the dialled connection: %v", err)
	}
}

// A refused connection is reported at once, as refused, rather than after
// the timeout: gRPC would retry it with backoff until then.
func TestDialRefusedFailsAtOnce(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	start := time.Now()
	_, err := grpcdial.Dial(t.Context(), addr, slowTimeout, creds)
	elapsed := time.Since(start)
	var ue *grpcdial.UnreachableError
	if !errors.As(err, &ue) || !ue.Refused() || ue.TimedOut {
		t.Fatalf("Dial = %v, want an UnreachableError for a refused connection", err)
	}
	if want := "cannot reach chatd at " + addr + ": connection refused (is it running?)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if elapsed > prompt {
		t.Errorf("Dial gave up after %s, want well within its timeout of %s", elapsed, slowTimeout)
	}
}

// A server that takes the connection and closes it at once (chatd past its
// --max-conns-per-ip does that) fails the dial at once too.
func TestDialClosedAtOnce(t *testing.T) {
	t.Parallel()
	addr := listen(t, func(c net.Conn) { c.Close() })
	start := time.Now()
	_, err := grpcdial.Dial(t.Context(), addr, slowTimeout, creds)
	elapsed := time.Since(start)
	var ue *grpcdial.UnreachableError
	if !errors.As(err, &ue) || ue.Refused() || ue.TimedOut {
		t.Fatalf("Dial = %v, want an UnreachableError for a closed connection", err)
	}
	if want := "cannot reach chatd at " + addr + ": the connection was closed before gRPC was set up"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if elapsed > prompt {
		t.Errorf("Dial gave up after %s, want well within its timeout of %s", elapsed, slowTimeout)
	}
}

// A server that takes the connection and says nothing is waited for until
// the timeout, which the error names.
func TestDialTimeout(t *testing.T) {
	t.Parallel()
	held := make(chan net.Conn, 16)
	addr := listen(t, func(c net.Conn) { held <- c })
	t.Cleanup(func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	_, err := grpcdial.Dial(t.Context(), addr, 200*time.Millisecond, creds)
	var ue *grpcdial.UnreachableError
	if !errors.As(err, &ue) || !ue.TimedOut {
		t.Fatalf("Dial = %v, want an UnreachableError for a timeout", err)
	}
	if want := "cannot reach chatd at " + addr + " within 200ms (is it running?)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestDialNoSuchHost(t *testing.T) {
	t.Parallel()
	// .invalid never resolves (RFC 6761).
	_, err := grpcdial.Dial(t.Context(), "chatd.invalid:50051", slowTimeout, creds)
	var ue *grpcdial.UnreachableError
	var de *net.DNSError
	if !errors.As(err, &ue) || !errors.As(err, &de) {
		t.Fatalf("Dial = %v, want an UnreachableError with the resolver's error", err)
	}
	if want := "cannot reach chatd at chatd.invalid:50051: lookup chatd.invalid"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
}

func TestDialInterrupted(t *testing.T) {
	t.Parallel()
	held := make(chan net.Conn, 16)
	addr := listen(t, func(c net.Conn) { held <- c })
	t.Cleanup(func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	interrupted := make(chan struct{})
	go func() {
		defer close(interrupted)
		c := <-held // connecting: now interrupt it
		cancel()
		held <- c // for the cleanup to close
	}()
	_, err := grpcdial.Dial(ctx, addr, slowTimeout, creds)
	<-interrupted
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial = %v, want context.Canceled", err)
	}
}

func TestDialBadAddress(t *testing.T) {
	t.Parallel()
	_, err := grpcdial.Dial(t.Context(), "localhost", slowTimeout, creds)
	if err == nil || !strings.Contains(err.Error(), `bad address "localhost": it has no port`) {
		t.Errorf("Dial = %v, want a bad address error", err)
	}
}

func TestUnreachableErrorRoundsItsTimeout(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		1947724439 * time.Nanosecond: "within 1.9s",
		5 * time.Second:              "within 5s",
		123456789 * time.Nanosecond:  "within 123ms",
	} {
		err := &grpcdial.UnreachableError{Addr: "localhost:1", TimedOut: true, Timeout: d}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("timed out after %v: %q; want it to say %q", d, err, want)
		}
	}
}
