// Package grpcdial connects chatd's command-line clients (chatctl and
// chatbench) to chatd's gRPC address, and says at once why it cannot.
//
// grpc.NewClient is lazy and, once asked to connect, retries a failed
// connection with backoff for as long as the caller waits, so a client that
// waits for READY with a deadline learns nothing before the deadline, and
// then not why. [Dial] waits for READY too, but gives up at the first
// failed attempt (TRANSIENT_FAILURE), with that attempt's error: a refused
// connection is reported in milliseconds, not after the whole timeout. A
// client that wants to retry (chatctl's reconnection) calls Dial again,
// with backoff of its own.
package grpcdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Example is a well-formed address, for messages that show one.
const Example = "localhost:50051"

// CheckAddr reports what is wrong with addr as the address of chatd's
// gRPC port: it must be host:port, with a host name or an IP address (IPv6
// in brackets) and a port number, and nothing else. gRPC's own target
// syntax would take more ("dns:///host", a host without a port, which it
// gives port 443) and then fail slowly or somewhere unexpected; a person
// who typed that meant something else.
func CheckAddr(addr string) error {
	if addr == "" {
		return errors.New("it is empty")
	}
	if scheme, _, ok := strings.Cut(addr, "://"); ok {
		return fmt.Errorf("it has a scheme (%s://); chatd's gRPC port takes no scheme", scheme)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		switch {
		case errors.As(err, &ae) && ae.Err == "missing port in address":
			return errors.New("it has no port")
		case errors.As(err, &ae) && ae.Err == "too many colons in address":
			return errors.New("too many colons (an IPv6 address goes in brackets: [::1]:50051)")
		case errors.As(err, &ae):
			return errors.New(ae.Err)
		}
		return err
	}
	if host == "" {
		return errors.New("it has no host")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("host %q is neither a host name nor an IP address", host)
		}
	}
	return nil
}

// UnreachableError is why [Dial] found no chatd at Addr.
type UnreachableError struct {
	Addr string
	// Err is why the connection attempt failed: a *net.OpError for a
	// refused connection or an unreachable network, a *net.DNSError for a
	// host that does not resolve, or nil when the server took the
	// connection but closed it, or did not speak gRPC, before it was set
	// up.
	Err error
	// TimedOut is set, and Err nil, when no attempt had failed or
	// succeeded within Timeout.
	TimedOut bool
	Timeout  time.Duration
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// roundDuration rounds d as people read it: a reconnection's last attempt
// gets what is left of its deadline, 1.947724439s, which reads as 1.9s.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// Refused reports whether the server's machine refused the connection:
// nothing listens on that port.
func (e *UnreachableError) Refused() bool { return errors.Is(e.Err, syscall.ECONNREFUSED) }

func (e *UnreachableError) Error() string {
	switch {
	case e.TimedOut:
		return fmt.Sprintf("cannot reach chatd at %s within %s (is it running?)", e.Addr, roundDuration(e.Timeout))
	case e.Refused():
		// Say which address refused when the name resolved to another
		// (localhost may be [::1] or 127.0.0.1).
		var oe *net.OpError
		if errors.As(e.Err, &oe) && oe.Addr != nil && oe.Addr.String() != e.Addr {
			return fmt.Sprintf("cannot reach chatd at %s: connection refused by %s (is it running?)", e.Addr, oe.Addr)
		}
		return fmt.Sprintf("cannot reach chatd at %s: connection refused (is it running?)", e.Addr)
	case e.Err != nil:
		var de *net.DNSError
		if errors.As(e.Err, &de) {
			return fmt.Sprintf("cannot reach chatd at %s: %v", e.Addr, de)
		}
		var oe *net.OpError
		if errors.As(e.Err, &oe) && oe.Err != nil {
			return fmt.Sprintf("cannot reach chatd at %s: %v", e.Addr, oe.Err)
		}
		return fmt.Sprintf("cannot reach chatd at %s: %v", e.Addr, e.Err)
	default:
		return fmt.Sprintf("cannot reach chatd at %s: the connection was closed before gRPC was set up (is that chatd's gRPC port?)", e.Addr)
	}
}

// Dial connects to chatd's gRPC port at addr, which CheckAddr accepts, and
// waits until the connection is ready, the first attempt fails (an
// *UnreachableError with the attempt's error), timeout passes or ctx's
// deadline does (an *UnreachableError with TimedOut set), or ctx is
// cancelled (context.Canceled). opts are
// the caller's own (credentials, keepalive), passed on to grpc.NewClient.
//
// The connection is made with a dialer of Dial's own, to learn why an
// attempt failed; gRPC's proxy support (HTTPS_PROXY) goes with its own
// dialer, so chatd is always reached directly.
func Dial(ctx context.Context, addr string, timeout time.Duration, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("bad address %q: %w", addr, err)
	}
	var d dialer
	// passthrough: the address goes to the dialer as it is, so that the
	// dialer resolves the name and a name that does not resolve is an
	// error of the attempt, with the resolver's reason.
	conn, err := grpc.NewClient("passthrough:///"+addr, append(opts, grpc.WithContextDialer(d.dial))...)
	if err != nil {
		return nil, fmt.Errorf("bad address %q: %w", addr, err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return conn, nil
		case connectivity.TransientFailure:
			// Not final for gRPC, which would try again after a backoff;
			// but an attempt that failed outright (refused, no such host,
			// closed at once) says what the next would say, and the
			// caller should hear it now.
			conn.Close()
			return nil, &UnreachableError{Addr: addr, Err: d.err()}
		}
		if !conn.WaitForStateChange(wctx, state) {
			conn.Close()
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			// timeout passed, or ctx's deadline: either way, nothing
			// answered in the time this attempt had.
			return nil, &UnreachableError{Addr: addr, TimedOut: true, Timeout: timeout}
		}
	}
}

// dialer makes gRPC's connections and keeps the last failure's error.
type dialer struct {
	mu   sync.Mutex
	last error // the last dial's error; guarded by mu
}

func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	d.mu.Lock()
	d.last = err
	d.mu.Unlock()
	return c, err
}

func (d *dialer) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// fixedWindow is the flow-control window FixedWindows sets: room for a
// channel's whole history snapshot (100 messages of 4 KiB) and more, so a
// chat client never waits for the window in practice.
const fixedWindow = 1 << 20

// FixedWindows are dial options that give a connection and its streams
// fixed flow-control windows instead of grpc-go's default, which grows
// them by bandwidth-delay estimation. That estimation sends the server a
// PING for nearly every message a chat client receives (a sample starts
// with each DATA frame while none is out, and chat events are small and
// sparse), and the server answers each with a write of its own: measured
// with chatbench, 40 % of chatd's CPU per delivery when messages trickle
// (see docs/PERFORMANCE.md). A chat client gains nothing from the
// estimation: what it receives is small.
func FixedWindows() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(fixedWindow),
		grpc.WithInitialConnWindowSize(fixedWindow),
	}
}
