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
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chatd/chatd/gateway"
	"github.com/chatd/chatd/internal/ratelog"
	"github.com/chatd/chatd/server"
	"github.com/chatd/chatd/web"
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
	logRate         float64 // records per second about single clients; 0 for all
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
	fs.Float64Var(&cfg.logRate, "log-rate", 20, "most log lines per second about single clients (joins, leaves, refusals), in bursts of ten times that; the next line logged says how many were dropped. 0 logs them all")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT or SIGTERM, how long to wait for sessions to end before closing every connection")
	fs.IntVar(&sc.MaxSessions, "max-sessions", sc.MaxSessions, "most sessions at once, counting those kept for a resume; joins past it get RESOURCE_EXHAUSTED")
	fs.DurationVar(&sc.JoinTimeout, "join-timeout", sc.JoinTimeout, "how long a new stream may take to send its join")
	fs.IntVar(&sc.QueueSize, "queue-size", sc.QueueSize, "events that may wait for one client; a client that falls further behind is dropped as too slow")
	fs.IntVar(&sc.QueueBytes, "queue-bytes", sc.QueueBytes, "the same, bounded by the memory the waiting events take, in `bytes`")
	fs.Float64Var(&sc.MessageRate, "message-rate", sc.MessageRate, "messages per second one session may send on average; 0 turns rate limiting off")
	fs.IntVar(&sc.MessageBurst, "message-burst", sc.MessageBurst, "messages one session may send at once before --message-rate applies")
	fs.IntVar(&sc.HistorySize, "history-size", sc.HistorySize, "messages each channel keeps and shows to whoever joins it; 0 for none")
	fs.IntVar(&sc.HistoryBytes, "history-bytes", sc.HistoryBytes, "the same, bounded by the memory the messages take, in `bytes` per channel")
	fs.IntVar(&sc.MaxChannels, "max-channels", sc.MaxChannels, "most channels kept; past it, creating one drops the channel empty the longest, or is refused if none is empty")
	fs.IntVar(&sc.MaxChannelsPerUser, "max-channels-per-user", sc.MaxChannelsPerUser, "most channels one session may be in at once")
	fs.DurationVar(&sc.ResumeGrace, "resume-grace", sc.ResumeGrace, "how long a session that lost its connection can be resumed, its name held for it; 0 ends it at once (a token still takes a session back from its own half-dead stream)")
	fs.IntVar(&sc.ResumeBuffer, "resume-buffer", sc.ResumeBuffer, "events each session keeps for a resume; a client that missed more gets a fresh snapshot")
	fs.IntVar(&sc.ResumeBufferBytes, "resume-buffer-bytes", sc.ResumeBufferBytes, "the same, bounded by the events' encoded size in `bytes`")
	fs.IntVar(&sc.MaxRecvMsgSize, "max-recv-msg-size", sc.MaxRecvMsgSize, "largest request accepted, in `bytes`")
	fs.IntVar(&sc.MaxHeaderBytes, "max-header-bytes", sc.MaxHeaderBytes, "largest metadata of a request (gRPC's decoded header list; HTTP request headers), in `bytes`")
	fs.IntVar(&sc.MaxStreamsPerConn, "max-streams-per-conn", sc.MaxStreamsPerConn, "most streams open at once on one HTTP/2 connection")
	fs.IntVar(&sc.MaxUnjoined, "max-unjoined", sc.MaxUnjoined, "most streams waiting to send their join, from all clients together; more get RESOURCE_EXHAUSTED")
	pc := &sc.PerClient
	fs.IntVar(&pc.MaxConns, "max-conns-per-ip", pc.MaxConns, "most TCP connections from one client address, gRPC and HTTP ports together (an IPv6 address counts with its /64); more are closed at once. 0 for no limit")
	fs.IntVar(&pc.MaxUnjoined, "max-unjoined-per-ip", pc.MaxUnjoined, "most streams from one client address waiting to send their join; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.MaxSessions, "max-sessions-per-ip", pc.MaxSessions, "most sessions from one client address, counting those kept for a resume; more joins get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.Float64Var(&pc.JoinRate, "join-rate-per-ip", pc.JoinRate, "joins and resumes per second from one client address on average; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.JoinBurst, "join-burst-per-ip", pc.JoinBurst, "joins and resumes one client address may make at once before --join-rate-per-ip applies")
	fs.Float64Var(&pc.ListRate, "list-rate-per-ip", pc.ListRate, "ListUsers and ListChannels calls per second from one client address on average; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.ListBurst, "list-burst-per-ip", pc.ListBurst, "list calls one client address may make at once before --list-rate-per-ip applies")
	fs.Func("trusted-proxies", "comma-separated `CIDRs` (10.0.0.0/8, or single addresses) of reverse proxies whose X-Forwarded-For names the client address that the per-ip limits count; without it every client behind a proxy counts as the proxy", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			prefix, err := parsePrefix(p)
			if err != nil {
				return err
			}
			pc.TrustedProxies = append(pc.TrustedProxies, prefix)
		}
		return nil
	})
	fs.Float64Var(&sc.RefusalRate, "refusal-rate", sc.RefusalRate, "refused requests per second one session may make on average before it is ended with RESOURCE_EXHAUSTED; 0 for no limit")
	fs.IntVar(&sc.RefusalBurst, "refusal-burst", sc.RefusalBurst, "refused requests one session may make at once before --refusal-rate applies")
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
	if cfg.logRate < 0 {
		return cfg, fmt.Errorf("--log-rate must be 0 (log everything) or positive, got %g", cfg.logRate)
	}
	if cfg.shutdownTimeout <= 0 {
		return cfg, fmt.Errorf("--shutdown-timeout must be positive, got %s", cfg.shutdownTimeout)
	}
	if err := cfg.server.Validate(); err != nil {
		return cfg, fmt.Errorf("bad settings:\n%w", err)
	}
	return cfg, nil
}

// parsePrefix reads a CIDR, or a single address as the prefix of just it.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR such as 10.0.0.0/8", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
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
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	var log *slog.Logger
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(stderr, opts))
	}

	// Joins, leaves and refusals are what clients make happen: a client
	// must not decide how much is written.
	clientLog := slog.New(ratelog.NewHandler(log.Handler(), cfg.logRate, int(10*cfg.logRate)))
	if glog != nil {
		glog.use(clientLog)
	}
	srv, err := server.New(cfg.server, clientLog)
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
			MaxHeaderBytes:   cfg.server.MaxHeaderBytes,
			Admission:        srv.Admission(),
			JoinTimeout:      cfg.server.JoinTimeout,
			Page:             web.Files(),
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
