// Package natstest runs a real NATS server with JetStream for tests: in
// this process (fast, for the server package's tests), or as its own
// process through go.mod's tool directive (`go tool nats-server`, for
// end-to-end tests), on a port of 127.0.0.1 and a store in the test's
// temporary directory. Either can be stopped and started again on the
// same port and store, as an operator restarting NATS would.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Server is an in-process nats-server with JetStream.
type Server struct {
	t    testing.TB
	dir  string
	port int
	srv  *natsserver.Server
}

// Start starts a NATS server with JetStream (file storage in a temporary
// directory) until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Stop shuts the server down, as a crash of NATS would look to its clients
// (their connections close); its store stays for Restart.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the server again on the same port and store (or for the
// first time).
func (s *Server) Restart() {
	s.t.Helper()
	if s.srv != nil {
		s.t.Fatalf("natstest: Restart of a running server")
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      s.port,
		JetStream: true,
		StoreDir:  s.dir,
		NoSigs:    true,
		NoLog:     true,
	})
	if err != nil {
		s.t.Fatalf("natstest: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.t.Fatalf("natstest: NATS not ready within 10s")
	}
	s.srv = srv
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
