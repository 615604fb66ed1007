// Command chatd is the chat server: it serves chat.v1.ChatService over gRPC,
// and to browsers over grpc-web together with the chat page, until it gets
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chatd/chatd/gateway"
	"github.com/chatd/chatd/internal/memreturn"
	"github.com/chatd/chatd/internal/ratelog"
	"github.com/chatd/chatd/server"
	"github.com/chatd/chatd/web"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/grpclog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Set before anything of gRPC runs, as grpclog requires: not in run,
	// which tests call side by side.
	glog := &grpcLog{}
	grpclog.SetLoggerV2(glog)
	err := serve(ctx, os.Args[1:], os.Stdout, os.Stderr, glog)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		// One line per problem, each saying what to change.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "chatd:", line)
		}
		os.Exit(1)
	}
}

// config is everything chatd is told on its command line.
type config struct {
	grpcAddr         string
	httpAddr         string   // "" serves no HTTP
	debugAddr        string   // "" serves no profiles
	metricsAddr      string   // "" serves no metrics
	allowedOrigins   []string // origins besides the page's own, as gateway.ParseOrigin writes them
	logFormat        string
	logLevel         slog.Level
	logRate          float64 // records per second about single clients; 0 for all
	shutdownTimeout  time.Duration
	returnMemory     time.Duration // 0: leave returning memory to Go's runtime alone (see memreturn)
	tlsCert          string        // "" (with tlsKey ""): plaintext
	tlsKey           string
	authKeyFile      string // "": no sign-in
	authIssuer       string
	authAudience     string
	authAdminClaim   string // the claim that makes a sign-in token an admin's
	adminTokenFile   string // "": no admin token
	server           server.Config
	cluster          clusterConfig // used if cluster.nats.URLs is set
	dataDir          string        // where a chat of its own is kept, unless memory
	memory           bool          // keep a chat of its own in memory only
	fsyncInterval    time.Duration // 0: sync every write
	historyAge       time.Duration // how long the archive keeps a message; 0 for ever
	historyDiskBytes int64         // the archive's bound; 0 for none
}

// newLogger returns chatd's log, writing to w in format (text or json).
// Durations are written one way in both formats, as Go durations ("30s",
// "1.5s"), the way the flags take them and the text format writes them:
// slog's JSON handler would write them as integer nanoseconds, beside
// fields that are strings already. A string reads the same in either
// format, needs no unit in its key, and any log tool that takes numbers
// can parse it (Go's time.ParseDuration, or the unit at its end).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, args, stdout, stderr, nil)
}

// serve is run, with what gRPC logs (if glog is not nil) sent to chatd's
// log.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, glog *grpcLog) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logFormat, cfg.logLevel)
	if cfg.cluster.seedFrom != "" {
		return seed(ctx, cfg, log, stdout)
	}

	// Joins, leaves and refusals are what clients make happen: a client
	// must not decide how much is written.
	clientLog := slog.New(ratelog.NewHandler(log.Handler(), cfg.logRate, int(10*cfg.logRate)))
	if glog != nil {
		glog.use(clientLog)
	}
	sec, err := loadSecurity(cfg, log)
	if err != nil {
		return err
	}
	var reg *prometheus.Registry
	opts := sec.options
	if cfg.metricsAddr != "" {
		reg = newMetricsRegistry()
		opts = append(opts, server.WithMetrics(reg))
	}
	srv, closeLog, err := newServer(ctx, cfg, log, clientLog, opts...)
	if err != nil {
		return err
	}
	defer closeLog()
	if cfg.returnMemory > 0 {
		mcfg := memreturn.DefaultConfig()
		mcfg.Every = cfg.returnMemory
		mctx, stopReturning := context.WithCancel(context.Background())
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			memreturn.Run(mctx, mcfg, log)
		}()
		defer func() {
			stopReturning()
			<-returned
		}()
	}
	if cfg.debugAddr != "" {
		addr, stop, err := serveDebug(cfg.debugAddr, cfg.server.MaxHeaderBytes, log)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "chatd: profiles on http://%s/debug/pprof/\n", addr)
	}
	if reg != nil {
		addr, stop, err := serveMetrics(cfg.metricsAddr, reg, cfg.server.MaxHeaderBytes, log)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "chatd: metrics on http://%s/metrics\n", addr)
	}
	lis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("cannot listen for gRPC: %w", err)
	}
	var (
		gw       *gateway.Gateway
		httpLis  net.Listener
		httpAddr string
	)
	if cfg.httpAddr != "" {
		gw, err = gateway.New(srv.GRPCServer(), gateway.Config{
			AllowedOrigins:   cfg.allowedOrigins,
			KeepaliveTime:    cfg.server.KeepaliveTime,
			KeepaliveTimeout: cfg.server.KeepaliveTimeout,
			MaxRecvMsgSize:   cfg.server.MaxRecvMsgSize,
			MaxHeaderBytes:   cfg.server.MaxHeaderBytes,
			Admission:        srv.Admission(),
			JoinTimeout:      cfg.server.JoinTimeout,
			Page:             web.Files(),
			Serving:          srv.Serving,
			TLS:              sec.tls,
		}, clientLog)
		if err == nil {
			httpLis, err = net.Listen("tcp", cfg.httpAddr)
		}
		if err != nil {
			lis.Close()
			return fmt.Errorf("cannot serve HTTP: %w", err)
		}
		httpAddr = httpLis.Addr().String()
	}
	// The node applies the chat's log until it is told to stop, or can no
	// longer follow it (a cluster node must be restarted then). A chatd
	// of its own catches up with its log on disk before it serves: its
	// clients come back to their sessions as soon as it listens.
	ran := make(chan error, 1)
	runCtx, stopRun := context.WithCancel(context.Background())
	defer func() {
		stopRun()
		<-ran
	}()
	go func() { ran <- srv.Cluster().Run(runCtx) }()
	if cfg.cluster.nats.URLs == "" && !cfg.memory {
		if err := awaitServing(ctx, srv, ran); err != nil {
			lis.Close()
			if httpLis != nil {
				httpLis.Close()
			}
			return err
		}
	}
	fmt.Fprintf(stdout, "chatd: gRPC listening on %s\n", lis.Addr())
	if d := sec.describe(); d != "" {
		fmt.Fprintf(stdout, "chatd: %s\n", d)
	}
	if gw != nil {
		fmt.Fprintf(stdout, "chatd: chat page on %s://%s\n", sec.scheme(), httpAddr)
	}
	dataDir := ""
	switch {
	case cfg.memory:
		fmt.Fprintln(stdout, "chatd: keeping the chat in memory only (--memory): a restart clears it")
	case cfg.cluster.nats.URLs == "":
		dataDir = absDir(cfg.dataDir)
		fmt.Fprintf(stdout, "chatd: keeping the chat in %s\n", dataDir)
	}
	log.Info("started", "grpc_addr", lis.Addr().String(), "http_addr", httpAddr, "max_sessions", cfg.server.MaxSessions,
		"queue_size", cfg.server.QueueSize, "message_rate", cfg.server.MessageRate, "history_size", cfg.server.HistorySize,
		"resume_grace", cfg.server.ResumeGrace, "resume_buffer", cfg.server.ResumeBuffer,
		"tls", sec.tls != nil, "sign_in", sec.signIn, "data_dir", dataDir)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	httpServed := make(chan error, 1)
	if gw != nil {
		go func() { httpServed <- gw.Serve(httpLis) }()
	}
	select {
	case err := <-served:
		if gw != nil {
			_ = gw.Shutdown(context.Background())
			<-httpServed
		}
		return fmt.Errorf("gRPC server stopped: %w", err)
	case err := <-httpServed:
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
		return fmt.Errorf("HTTP server stopped: %w", err)
	case err := <-ran:
		ran <- err // for the deferred wait
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
		<-served
		if gw != nil {
			_ = gw.Shutdown(sctx)
			<-httpServed
		}
		return fmt.Errorf("left the cluster: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// The gRPC server first: it ends every session, browsers' included,
	// with UNAVAILABLE; then the gateway closes what is left.
	srv.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		log.Warn("serve ended", "err", err)
	}
	if gw != nil {
		if err := gw.Shutdown(sctx); err != nil {
			log.Warn("HTTP shutdown", "err", err)
		}
		if err := <-httpServed; err != nil {
			log.Warn("HTTP serve ended", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

// awaitServing waits until srv has caught up with its log, or its node
// stopped (ran), or ctx ended.
func awaitServing(ctx context.Context, srv *server.Server, ran chan error) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !srv.Serving() {
		select {
		case err := <-ran:
			ran <- err // for the deferred wait
			return fmt.Errorf("cannot start: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// absDir is dir as an absolute path, for what chatd prints.
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
