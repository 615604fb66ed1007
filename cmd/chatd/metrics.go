package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetricsRegistry returns the registry chatd's metrics go in, with the
// Go runtime's and the process's own already there; the server adds its
// own (see server.WithMetrics).
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveMetrics serves reg's metrics on addr, at /metrics, in Prometheus's
// format. It returns the address it listens on and a function that stops
// it. Nobody is asked who they are: keep the address on loopback, or
// behind a firewall that lets only Prometheus in.
func serveMetrics(addr string, reg *prometheus.Registry, maxHeaderBytes int, log *slog.Logger) (string, func(), error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Its own promhttp_metric_handler_* metrics.
		Registry: reg,
		// A scrape takes the hub's lock for a moment: a flood of scrapes
		// is answered 503, not queued.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	hs := &http.Server{
		Handler: mux,
		// A scrape has no body and a small answer.
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 30 * time.Second,
	}
	addr, stop, err := serveHTTP(addr, hs, maxHeaderBytes, "metrics", log)
	if err != nil {
		return "", nil, fmt.Errorf("cannot serve metrics: %w", err)
	}
	return addr, stop, nil
}
