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
	"strings"
	"syscall"
	"time"

	"github.com/chatd/chatd/gateway"
	"github.com/chatd/chatd/server"
	"github.com/chatd/chatd/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatd:", err)
		os.Exit(1)
	}
}

// config is everything chatd is told on its command line.
type config struct {
	grpcAddr        string
	httpAddr        string   // "" serves no HTTP
	debugAddr       string   // "" serves no profiles
	allowedOrigins  []string // origins besides the page's own
	logFormat       string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	server          server.Config
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{server: server.DefaultConfig()}
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatd [flags]\n\nchatd serves chat.v1.ChatService over gRPC, with server reflection and the\nstandard health service, and the chat page with grpc-web for browsers. Everything is kept in memory: a restart clears it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	sc := &cfg.server
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", "localhost:50051", "`address` to serve gRPC on; loopback by default, so that nobody else reaches this unauthenticated server unless you say so (use :50051 for every interface)")
	fs.StringVar(&cfg.httpAddr, "http-addr", "localhost:8080", "`address` to serve the chat page and grpc-web on, for browsers; loopback by default like --grpc-addr; empty for none")
	fs.StringVar(&cfg.debugAddr, "debug-addr", "", "`address` to serve Go's profiles (/debug/pprof/) on, for performance work; empty (the default) for none. Never expose it: it is unauthenticated")
	fs.Func("allowed-origins", "comma-separated `origins` (https://chat.example.com) whose pages may use the API besides chatd's own page; * for any", func(v string) error {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.allowedOrigins = append(cfg.allowedOrigins, o)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log `format`: text or json")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT or SIGTERM, how long to wait for sessions to end before closing every connection")
	fs.IntVar(&sc.MaxSessions, "max-sessions", sc.MaxSessions, "most sessions at once, counting those kept for a resume; joins past it get RESOURCE_EXHAUSTED")
	fs.DurationVar(&sc.JoinTimeout, "join-timeout", sc.JoinTimeout, "how long a new stream may take to send its join")
	fs.IntVar(&sc.QueueSize, "queue-size", sc.QueueSize, "events that may wait for one client; a client that falls further behind is dropped as too slow")
	fs.Float64Var(&sc.MessageRate, "message-rate", sc.MessageRate, "messages per second one session may send on average; 0 turns rate limiting off")
	fs.IntVar(&sc.MessageBurst, "message-burst", sc.MessageBurst, "messages one session may send at once before --message-rate applies")
	fs.IntVar(&sc.HistorySize, "history-size", sc.HistorySize, "messages each channel keeps and shows to whoever joins it; 0 for none")
	fs.IntVar(&sc.MaxChannels, "max-channels", sc.MaxChannels, "most channels kept; past it, creating one drops the channel empty the longest, or is refused if none is empty")
	fs.IntVar(&sc.MaxChannelsPerUser, "max-channels-per-user", sc.MaxChannelsPerUser, "most channels one session may be in at once")
	fs.DurationVar(&sc.ResumeGrace, "resume-grace", sc.ResumeGrace, "how long a session that lost its connection can be resumed, its name held for it; 0 ends it at once (a token still takes a session back from its own half-dead stream)")
	fs.IntVar(&sc.ResumeBuffer, "resume-buffer", sc.ResumeBuffer, "events each session keeps for a resume; a client that missed more gets a fresh snapshot")
	fs.IntVar(&sc.ResumeBufferBytes, "resume-buffer-bytes", sc.ResumeBufferBytes, "the same, bounded by the events' encoded size in `bytes`")
	fs.IntVar(&sc.MaxRecvMsgSize, "max-recv-msg-size", sc.MaxRecvMsgSize, "largest request accepted, in `bytes`")
	fs.DurationVar(&sc.KeepaliveTime, "keepalive-time", sc.KeepaliveTime, "ping a connection idle this long to check its peer is still there (at least 1s)")
	fs.DurationVar(&sc.KeepaliveTimeout, "keepalive-timeout", sc.KeepaliveTimeout, "drop a connection whose ping is not answered within this time")
	fs.DurationVar(&sc.KeepaliveMinClientPing, "keepalive-min-client-ping", sc.KeepaliveMinClientPing, "shortest interval at which clients may ping; clients that ping more often are disconnected")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return cfg, fmt.Errorf("--log-format must be text or json, not %q", cfg.logFormat)
	}
	if cfg.shutdownTimeout <= 0 {
		return cfg, fmt.Errorf("--shutdown-timeout must be positive, got %s", cfg.shutdownTimeout)
	}
	if err := cfg.server.Validate(); err != nil {
		return cfg, fmt.Errorf("bad settings:\n%w", err)
	}
	return cfg, nil
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	var log *slog.Logger
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, opts))
	}

	srv, err := server.New(cfg.server, log)
	if err != nil {
		return err
	}
	if cfg.debugAddr != "" {
		addr, stop, err := serveDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "chatd: profiles on http://%s/debug/pprof/\n", addr)
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
			Page:             web.Files(),
		}, log)
		if err == nil {
			httpLis, err = net.Listen("tcp", cfg.httpAddr)
		}
		if err != nil {
			lis.Close()
			return fmt.Errorf("cannot serve HTTP: %w", err)
		}
		httpAddr = httpLis.Addr().String()
	}
	fmt.Fprintf(stdout, "chatd: gRPC listening on %s\n", lis.Addr())
	if gw != nil {
		fmt.Fprintf(stdout, "chatd: chat page on http://%s\n", httpAddr)
	}
	log.Info("started", "grpc_addr", lis.Addr().String(), "http_addr", httpAddr, "max_sessions", cfg.server.MaxSessions,
		"queue_size", cfg.server.QueueSize, "message_rate", cfg.server.MessageRate, "history_size", cfg.server.HistorySize,
		"resume_grace", cfg.server.ResumeGrace.String(), "resume_buffer", cfg.server.ResumeBuffer)

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
