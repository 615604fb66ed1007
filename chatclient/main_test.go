package chatclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/chatd/chatd/server"
	"go.uber.org/goleak"
)

// chatdAddr is the address of the chatd that TestMain starts for the
// examples, which have no *testing.T to start one of their own.
var chatdAddr string

// TestMain starts a chatd for the examples on a real TCP port, and fails
// the package if any test leaves a goroutine behind (a stream's, a
// connection's, a reconnection's).
func TestMain(m *testing.M) {
	stop, addr, err := serve(server.DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chatdAddr = addr
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// serve runs a chatd with cfg on a port of 127.0.0.1 until stop.
func serve(cfg server.Config) (stop func(), addr string, err error) {
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, "", err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}, lis.Addr().String(), nil
}
