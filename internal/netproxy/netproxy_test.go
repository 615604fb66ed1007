package netproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/netproxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer echoes every connection's bytes back and half-closes when the
// client does. It reports each connection's end on the returned channel.
func echoServer(t *testing.T) (addr string, ended <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
				// Hold the socket until the peer closes, so a test can tell
				// "echo finished" from "connection gone".
				_, _ = io.Copy(io.Discard, c)
				done <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), done
}

func newProxy(t *testing.T, target string) *netproxy.Proxy {
	t.Helper()
	p, err := netproxy.New(target)
	if err != nil {
		t.Fatalf("netproxy.New(%q): %v", target, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

func TestForwardsBothWaysAndHalfClose(t *testing.T) {
	t.Parallel()
	target, _ := echoServer(t)
	p := newProxy(t, target)

	c := dial(t, p.Addr())
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for _, line := range []string{"hello\n", "world\n"} {
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatalf("write: %v", err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("read echo = %q, %v; want %q, nil", got, err, line)
		}
	}
	// The client's half-close reaches the server, whose half-close comes back.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after half-close, read = %q, %v; want io.EOF", b, err)
	}
}

func TestFreezeStopsForwardingWithoutClosing(t *testing.T) {
	t.Parallel()
	target, ended := echoServer(t)
	p := newProxy(t, target)

	c := dial(t, p.Addr())
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, "before\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "before\n" {
		t.Fatalf("read echo = %q, %v; want %q, nil", got, err, "before\n")
	}

	p.Freeze()
	if _, err := io.WriteString(c, "after\n"); err != nil {
		t.Fatalf("write after Freeze: %v; want the write to succeed into the cut", err)
	}
	// Nothing comes back, and the connection is not closed either: the read
	// can only time out.
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Freeze = %q, %v; want a timeout (no data, no close)", b, err)
	}
	// A half-close is not passed on either: the server's side stays open.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
		t.Fatal("the server saw the connection end through a frozen proxy")
	case <-time.After(200 * time.Millisecond):
	}

	// Close ends both sides.
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after Close = %v; want the connection closed", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's connection did not end within 10s of Close")
	}
}

func TestFreezeHoldsNewConnections(t *testing.T) {
	t.Parallel()
	target, _ := echoServer(t)
	p := newProxy(t, target)
	p.Freeze()

	c := dial(t, p.Addr()) // the kernel accepts; the proxy forwards nothing
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read through a frozen proxy = %d bytes, %v; want a timeout", b, err)
	}
}

func TestCloseIsIdempotentAndStopsAccepting(t *testing.T) {
	t.Parallel()
	target, _ := echoServer(t)
	p, err := netproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addr()
	if err := p.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s after Close succeeded; want it refused", addr)
	}
}

func TestUnreachableTargetClosesClient(t *testing.T) {
	t.Parallel()
	// A listener closed at once leaves a port that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := newProxy(t, target)

	c := dial(t, p.Addr())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read via a proxy whose target refuses = %v; want the connection closed", err)
	}
}

func TestCloseConnsCutsOpenConnectionsAndKeepsServing(t *testing.T) {
	t.Parallel()
	target, ended := echoServer(t)
	p := newProxy(t, target)

	c := dial(t, p.Addr())
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, "before\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "before\n" {
		t.Fatalf("read echo = %q, %v; want %q, nil", got, err, "before\n")
	}

	if n := p.CloseConns(); n != 2 {
		t.Errorf("CloseConns closed %d sockets, want 2 (client and upstream)", n)
	}
	// Both ends see the connection go.
	if _, err := r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after CloseConns = %v; want the connection closed", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's connection did not end within 10s of CloseConns")
	}

	// A new connection is forwarded as before.
	c2 := dial(t, p.Addr())
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c2, "after\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "after\n" {
		t.Fatalf("read echo on a new connection = %q, %v; want %q, nil", got, err, "after\n")
	}
}

func TestRefuseClosesNewConnectionsUntilLifted(t *testing.T) {
	t.Parallel()
	target, _ := echoServer(t)
	p := newProxy(t, target)

	open := dial(t, p.Addr()) // opened before Refuse: left alone
	_ = open.SetDeadline(time.Now().Add(10 * time.Second))
	openR := bufio.NewReader(open)
	// The kernel completes a dial before the proxy accepts it: wait for an
	// echo, so that the proxy has taken this connection before refusing.
	if _, err := io.WriteString(open, "first\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := openR.ReadString('\n'); err != nil || got != "first\n" {
		t.Fatalf("echo before Refuse = %q, %v; want %q, nil", got, err, "first\n")
	}

	p.Refuse(true)
	c := dial(t, p.Addr()) // the kernel accepts; the proxy closes it
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a connection made while refusing = %v; want it closed", err)
	}
	if _, err := io.WriteString(open, "still here\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := openR.ReadString('\n'); err != nil || got != "still here\n" {
		t.Fatalf("echo on a connection open before Refuse = %q, %v; want %q, nil", got, err, "still here\n")
	}

	p.Refuse(false)
	c2 := dial(t, p.Addr())
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c2, "again\n"); err != nil {
		t.Fatal(err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "again\n" {
		t.Fatalf("echo after Refuse(false) = %q, %v; want %q, nil", got, err, "again\n")
	}
}
