package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves Go's profiles on addr, on a mux of its own so that
// they can never leak onto the page's listener. It returns the address it
// listens on and a function that stops it.
//
// Profiles stay on their own listener, off by default, rather than beside
// /metrics: a profile or a trace costs CPU for as long as it is asked to
// run, and /debug/pprof/cmdline shows chatd's command line, so they are
// kept for performance work, where --metrics-addr may well be reachable by
// a Prometheus server on the network.
func serveDebug(addr string, maxHeaderBytes int, log *slog.Logger) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or a trace takes as long as the
	// request says.
	hs := &http.Server{Handler: mux}
	addr, stop, err := serveHTTP(addr, hs, maxHeaderBytes, "profile", log)
	if err != nil {
		return "", nil, fmt.Errorf("cannot serve profiles: %w", err)
	}
	return addr, stop, nil
}

// serveHTTP serves hs on addr, with the bounds every listener of chatd's
// has on what a client may make it hold: headers must come within 10s and
// be at most maxHeaderBytes, and idle connections are closed. what names
// the server in chatd's log.
func serveHTTP(addr string, hs *http.Server, maxHeaderBytes int, what string, log *slog.Logger) (string, func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	hs.ReadHeaderTimeout = 10 * time.Second
	hs.MaxHeaderBytes = maxHeaderBytes
	hs.IdleTimeout = 2 * time.Minute
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn(what+" server ended", "err", err)
		}
	}()
	return lis.Addr().String(), func() { _ = hs.Close() }, nil
}
