package main

import (
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
)

// grpcLog is gRPC's own logger (a grpclog.LoggerV2) as chatd installs it.
// improbable's grpc-web wrapper logs an error through it for every broken
// websocket (an upgrade that fails, a first message that never comes), so
// a client could make it write as much as it likes: its errors go to
// chatd's log instead, through the bound on what clients make chatd log.
// Info and warnings are dropped, as gRPC's default logger drops them. It
// is safe for concurrent use.
type grpcLog struct {
	to atomic.Pointer[slog.Logger] // nil until chatd's log is set up
}

// use sends what gRPC logs from now on to log.
func (g *grpcLog) use(log *slog.Logger) { g.to.Store(log) }

func (g *grpcLog) error(msg string) {
	if log := g.to.Load(); log != nil {
		log.Error(msg, "from", "grpc")
	}
}

func (g *grpcLog) Info(...any)             {}
func (g *grpcLog) Infoln(...any)           {}
func (g *grpcLog) Infof(string, ...any)    {}
func (g *grpcLog) Warning(...any)          {}
func (g *grpcLog) Warningln(...any)        {}
func (g *grpcLog) Warningf(string, ...any) {}

func (g *grpcLog) Error(args ...any)                 { g.error(fmt.Sprint(args...)) }
func (g *grpcLog) Errorln(args ...any)               { g.error(fmt.Sprint(args...)) }
func (g *grpcLog) Errorf(format string, args ...any) { g.error(fmt.Sprintf(format, args...)) }

// Fatal logs are what gRPC cannot go on after: they exit, as grpclog
// requires.
func (g *grpcLog) Fatal(args ...any)                 { g.fatal(fmt.Sprint(args...)) }
func (g *grpcLog) Fatalln(args ...any)               { g.fatal(fmt.Sprint(args...)) }
func (g *grpcLog) Fatalf(format string, args ...any) { g.fatal(fmt.Sprintf(format, args...)) }

func (g *grpcLog) fatal(msg string) {
	fmt.Fprintln(os.Stderr, "chatd: grpc:", msg)
	os.Exit(1)
}

// V reports whether verbose logs of level l are wanted: never.
func (g *grpcLog) V(int) bool { return false }
