package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/chatd/chatd/gateway"
	"github.com/chatd/chatd/internal/admission"
	"github.com/chatd/chatd/server"
)

// parseFlags reads chatd's command line. A problem with it is returned as
// one line that names the flag and says what it takes, every problem
// found after parsing is returned at once, one line each, and only --help
// prints the usage (to stderr).
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs, cfg := newFlagSet()
	if err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stderr)
		}
		return *cfg, err
	}
	if fs.NArg() > 0 {
		return *cfg, fmt.Errorf("unexpected argument %q: chatd takes flags only (see chatd --help)", fs.Arg(0))
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	check(checkAddr("grpc-addr", cfg.grpcAddr, "such as localhost:50051, or :50051 for every interface", false))
	check(checkAddr("http-addr", cfg.httpAddr, "such as localhost:8080, or :8080 for every interface, or empty for none", true))
	check(checkAddr("debug-addr", cfg.debugAddr, "such as localhost:6060, or empty for none", true))
	check(checkAddr("metrics-addr", cfg.metricsAddr, "such as localhost:9090, or empty for none", true))
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		check(errors.New("--tls-cert and --tls-key go together: give both, or neither for plaintext"))
	}
	if cfg.authKeyFile == "" {
		for _, f := range []struct{ name, val string }{{"auth-issuer", cfg.authIssuer}, {"auth-audience", cfg.authAudience}} {
			if f.val != "" {
				check(fmt.Errorf("--%s needs --auth-jwt-key: without a key nobody signs in", f.name))
			}
		}
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		check(fmt.Errorf("--log-format must be text or json, got %q", cfg.logFormat))
	}
	if cfg.logRate < 0 {
		check(fmt.Errorf("--log-rate must be 0 (log everything) or positive, got %g", cfg.logRate))
	}
	if cfg.shutdownTimeout <= 0 {
		check(fmt.Errorf("--shutdown-timeout must be positive, such as 10s, got %s", cfg.shutdownTimeout))
	}
	if cfg.returnMemory < 0 {
		check(fmt.Errorf("--return-memory must be 0 (off) or positive, such as 10s, got %s", cfg.returnMemory))
	}
	check(settingErrors(cfg.server.Validate()))
	check(checkCluster(fs, cfg))
	check(checkStorage(fs, cfg))
	return *cfg, errors.Join(errs...)
}

// newFlagSet returns chatd's flags, and the config they set, holding
// their defaults.
func newFlagSet() (*flag.FlagSet, *config) {
	cfg := &config{server: server.DefaultConfig(), logLevel: slog.LevelInfo}
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)
	// The flag package would print its own message and the whole usage on
	// a bad flag, and the message would scroll away: a bad flag is
	// returned as one line instead, and the usage is printed for --help
	// only (see printUsage).
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	sc := &cfg.server
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", "localhost:50051", "`address` to serve gRPC on, host:port; loopback by default, so that nobody else reaches this unauthenticated server unless you say so (use :50051 for every interface)")
	fs.StringVar(&cfg.httpAddr, "http-addr", "localhost:8080", "`address` to serve the chat page and grpc-web on, for browsers, host:port; loopback by default like --grpc-addr; empty for none")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "", "`address` to serve Prometheus metrics (/metrics) on, host:port, such as localhost:9090; empty (the default) for none. Unauthenticated: keep it on loopback, or where only Prometheus reaches it")
	fs.StringVar(&cfg.dataDir, "data-dir", "chatd-data", "`directory` the chat is kept in, made if missing: everything survives a restart (see --memory). One chatd at a time may use a directory")
	fs.BoolVar(&cfg.memory, "memory", false, "keep the chat in memory only: a restart clears everything (users, channels, history), and nothing is written to disk")
	fs.DurationVar(&cfg.historyAge, "history-age", 30*24*time.Hour, "how long every message is kept in --data-dir for scroll-back (History); 0 for ever")
	fs.Int64Var(&cfg.historyDiskBytes, "history-disk-bytes", 10<<30, "most `bytes` of messages kept for scroll-back; past it the oldest go; 0 for no bound")
	fs.DurationVar(&cfg.fsyncInterval, "fsync-interval", time.Second, "how often what was written to --data-dir is synced to the disk: a crash of chatd loses nothing it acknowledged, a power cut up to this much; 0 syncs every write before acknowledging it (slower: a sync per group of writes)")
	fs.StringVar(&cfg.debugAddr, "debug-addr", "", "`address` to serve Go's profiles (/debug/pprof/) on, for performance work, host:port; empty (the default) for none. Never expose it: it is unauthenticated")
	fs.Func("allowed-origins", "comma-separated `origins`, scheme://host[:port] (https://chat.example.com), whose pages may use the API besides chatd's own page; * for any", func(v string) error {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o == "" {
				continue
			}
			canon, err := gateway.ParseOrigin(o)
			if err != nil {
				return err
			}
			cfg.allowedOrigins = append(cfg.allowedOrigins, canon)
		}
		return nil
	})
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate `file` (the chain, the server's own first) to serve both ports over TLS with: gRPC over TLS, the page over https and wss; needs --tls-key. Taken again when the files change (a renewal), without dropping anyone")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&cfg.authKeyFile, "auth-jwt-key", "", "`file` of the key that signs sign-in tokens (JWTs): an HMAC secret (at least 32 bytes; HS256/384/512) or a PEM public key (RSA: RS256/384/512; ECDSA: ES256/384/512 by curve; Ed25519: EdDSA). With it, every call but health checks needs a valid token, and the username is the token's sub; without it, anyone may join under any name")
	fs.StringVar(&cfg.authIssuer, "auth-issuer", "", "the `iss` every sign-in token must have; empty takes any (needs --auth-jwt-key)")
	fs.StringVar(&cfg.authAudience, "auth-audience", "", "the `aud` every sign-in token must include; empty takes any (needs --auth-jwt-key)")
	fs.StringVar(&cfg.authAdminClaim, "auth-admin-claim", "chatd_admin", "the `claim` that makes a sign-in token's holder an admin of the chat (chat.v1.AdminService) when it is true (needs --auth-jwt-key)")
	fs.StringVar(&cfg.adminTokenFile, "admin-token-file", "", "`file` holding a secret (at least 32 bytes) whose holder may call chat.v1.AdminService (authorization: Bearer <secret>), with or without sign-in")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log `format`: text or json")
	fs.Var(levelFlag{&cfg.logLevel}, "log-level", "log `level`: debug, info, warn or error")
	fs.Float64Var(&cfg.logRate, "log-rate", 20, "most log lines per second about single clients (joins, leaves, refusals), in bursts of ten times that; the next line logged says how many were dropped. 0 logs them all")
	fs.DurationVar(&cfg.returnMemory, "return-memory", 10*time.Second, "how often to look whether a burst of work (a join storm) left garbage and free heap behind (64 MiB or more) while chatd has since gone quiet, and if so give it back to the operating system, once per burst, at the cost of two garbage collections; 0 leaves it to Go's runtime, which takes minutes")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT or SIGTERM, how long to wait for sessions to end before closing every connection")
	fs.IntVar(&sc.MaxSessions, "max-sessions", sc.MaxSessions, "most sessions at once, counting those kept for a resume; joins past it get RESOURCE_EXHAUSTED")
	fs.DurationVar(&sc.JoinTimeout, "join-timeout", sc.JoinTimeout, "how long a new stream may take to send its join")
	fs.IntVar(&sc.QueueSize, "queue-size", sc.QueueSize, "events that may wait for one client; a client that falls further behind is dropped as too slow")
	fs.IntVar(&sc.QueueBytes, "queue-bytes", sc.QueueBytes, fmt.Sprintf("the same, bounded by the memory the waiting events take, in `bytes`; at least %d (the longest message, twice)", server.MinQueueBytes))
	fs.Float64Var(&sc.MessageRate, "message-rate", sc.MessageRate, "messages per second one session may send on average; 0 turns rate limiting off")
	fs.IntVar(&sc.MessageBurst, "message-burst", sc.MessageBurst, "messages one session may send at once before --message-rate applies")
	fs.IntVar(&sc.HistorySize, "history-size", sc.HistorySize, "messages each channel keeps and shows to whoever joins it; 0 for none")
	fs.IntVar(&sc.HistoryBytes, "history-bytes", sc.HistoryBytes, "the same, bounded by the memory the messages take, in `bytes` per channel")
	fs.IntVar(&sc.MaxChannels, "max-channels", sc.MaxChannels, "most channels kept; past it, creating one drops the channel empty the longest, or is refused if none is empty")
	fs.IntVar(&sc.MaxChannelsPerUser, "max-channels-per-user", sc.MaxChannelsPerUser, "most channels one user may be in at once")
	fs.IntVar(&sc.MaxDevicesPerUser, "max-devices-per-user", sc.MaxDevicesPerUser, "most devices (sessions) one user may be on at once, counting those reconnecting")
	fs.IntVar(&sc.OfflineInbox, "offline-inbox", sc.OfflineInbox, "with sign-in, most private messages kept for one user while it is offline, delivered on its next join; 0 keeps none")
	fs.IntVar(&sc.OfflineInboxBytes, "offline-inbox-bytes", sc.OfflineInboxBytes, "most bytes the private messages kept for one offline user may take")
	fs.DurationVar(&sc.ResumeGrace, "resume-grace", sc.ResumeGrace, "how long a session that lost its connection can be resumed, its name held for it; 0 ends it at once (a token still takes a session back from its own half-dead stream)")
	fs.IntVar(&sc.ResumeBuffer, "resume-buffer", sc.ResumeBuffer, "events each session keeps for a resume; a client that missed more gets a fresh snapshot")
	fs.IntVar(&sc.ResumeBufferBytes, "resume-buffer-bytes", sc.ResumeBufferBytes, "the same, bounded by the events' encoded size in `bytes`")
	fs.IntVar(&sc.MaxRecvMsgSize, "max-recv-msg-size", sc.MaxRecvMsgSize, fmt.Sprintf("largest request accepted, in `bytes`; at least %d (the longest message, %d bytes of text, with its client_id and framing)", server.MinRecvMsgSize, server.MaxTextBytes))
	fs.IntVar(&sc.MaxHeaderBytes, "max-header-bytes", sc.MaxHeaderBytes, fmt.Sprintf("largest metadata of a request (gRPC's decoded header list; HTTP request headers), in `bytes`; at least %d", server.MinHeaderBytes))
	fs.DurationVar(&sc.WriteDelay, "write-delay", sc.WriteDelay, fmt.Sprintf("after sending a client several events at once (it is getting a burst: a join storm, a busy channel), how long to wait before sending it more, so that the burst's next events go out together in fewer writes, at up to this much more latency; a client getting one event at a time never waits. 0 sends at once; at most %s", server.MaxWriteDelay))
	fs.IntVar(&sc.MaxStreamsPerConn, "max-streams-per-conn", sc.MaxStreamsPerConn, "most streams open at once on one HTTP/2 connection")
	fs.IntVar(&sc.MaxUnjoined, "max-unjoined", sc.MaxUnjoined, "most streams waiting to send their join, from all clients together; past it, a stream from an address with none waiting takes the place of the oldest waiting stream of the address with the most (which ends with RESOURCE_EXHAUSTED), and others get RESOURCE_EXHAUSTED unless their address holds fewer")
	pc := &sc.PerClient
	fs.IntVar(&pc.MaxConns, "max-conns-per-ip", pc.MaxConns, "most TCP connections from one client address, gRPC and HTTP ports together (an IPv6 address counts with its /64); more are closed at once. 0 for no limit")
	fs.IntVar(&pc.MaxUnjoined, "max-unjoined-per-ip", pc.MaxUnjoined, "most streams from one client address waiting to send their join; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.MaxSessions, "max-sessions-per-ip", pc.MaxSessions, "most sessions from one client address, counting those kept for a resume; more joins get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.Float64Var(&pc.JoinRate, "join-rate-per-ip", pc.JoinRate, "joins and resumes per second from one client address on average; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.JoinBurst, "join-burst-per-ip", pc.JoinBurst, "joins and resumes one client address may make at once before --join-rate-per-ip applies")
	fs.Float64Var(&pc.ListRate, "list-rate-per-ip", pc.ListRate, "ListUsers, ListChannels and History calls per second from one client address on average; more get RESOURCE_EXHAUSTED. 0 for no limit")
	fs.IntVar(&pc.ListBurst, "list-burst-per-ip", pc.ListBurst, "list calls one client address may make at once before --list-rate-per-ip applies")
	fs.Float64Var(&pc.RefusalRate, "refusal-rate-per-ip", pc.RefusalRate, fmt.Sprintf("refusals per second one client address may be given on average (streams refused before their session starts, list calls refused); past it (and --refusal-burst-per-ip), the address is shut out for %s: the connection a refusal comes on is closed, and new ones are held unread until the shut-out ends, then closed. 0 for no limit", admission.ShutOutFor))
	fs.IntVar(&pc.RefusalBurst, "refusal-burst-per-ip", pc.RefusalBurst, "refusals one client address may be given at once before --refusal-rate-per-ip applies")
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
	fs.DurationVar(&sc.KeepaliveTime, "keepalive-time", sc.KeepaliveTime, fmt.Sprintf("ping a connection idle this long to check its peer is still there; at least %s", server.MinKeepaliveTime))
	fs.DurationVar(&sc.KeepaliveTimeout, "keepalive-timeout", sc.KeepaliveTimeout, "drop a connection whose ping is not answered within this time")
	fs.DurationVar(&sc.KeepaliveMinClientPing, "keepalive-min-client-ping", sc.KeepaliveMinClientPing, "shortest interval at which clients may ping; clients that ping more often are disconnected")
	addClusterFlags(fs, cfg)
	return fs, cfg
}

// printUsage writes what --help shows.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: chatd [flags]\n\nchatd serves chat.v1.ChatService over gRPC, with server reflection and the\nstandard health service, and the chat page with grpc-web for browsers. The chat is kept in --data-dir\n(chatd-data), so that a restart brings it back, or in memory only with --memory; a node of a cluster\nkeeps it in NATS JetStream (--nats-url).\nWith --tls-cert and --tls-key both ports are served over TLS; with --auth-jwt-key every call needs a sign-in token.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// settingFlags are the flags that set the fields of server.Config (as
// server.SettingError names them). server is a library whose Config knows
// no flags, so its errors name the field, and chatd, which defines the
// flags, names the flag; TestEverySettingHasAFlag keeps this in step with
// server.Config and the flags.
var settingFlags = map[string]string{
	"MaxSessions":              "max-sessions",
	"JoinTimeout":              "join-timeout",
	"QueueSize":                "queue-size",
	"QueueBytes":               "queue-bytes",
	"WriteDelay":               "write-delay",
	"MessageRate":              "message-rate",
	"MessageBurst":             "message-burst",
	"HistorySize":              "history-size",
	"HistoryBytes":             "history-bytes",
	"MaxChannels":              "max-channels",
	"MaxChannelsPerUser":       "max-channels-per-user",
	"MaxDevicesPerUser":        "max-devices-per-user",
	"OfflineInbox":             "offline-inbox",
	"OfflineInboxBytes":        "offline-inbox-bytes",
	"ResumeGrace":              "resume-grace",
	"ResumeBuffer":             "resume-buffer",
	"ResumeBufferBytes":        "resume-buffer-bytes",
	"MaxRecvMsgSize":           "max-recv-msg-size",
	"MaxHeaderBytes":           "max-header-bytes",
	"MaxStreamsPerConn":        "max-streams-per-conn",
	"MaxUnjoined":              "max-unjoined",
	"PerClient.MaxConns":       "max-conns-per-ip",
	"PerClient.MaxUnjoined":    "max-unjoined-per-ip",
	"PerClient.MaxSessions":    "max-sessions-per-ip",
	"PerClient.JoinRate":       "join-rate-per-ip",
	"PerClient.JoinBurst":      "join-burst-per-ip",
	"PerClient.ListRate":       "list-rate-per-ip",
	"PerClient.ListBurst":      "list-burst-per-ip",
	"PerClient.RefusalRate":    "refusal-rate-per-ip",
	"PerClient.RefusalBurst":   "refusal-burst-per-ip",
	"PerClient.TrustedProxies": "trusted-proxies",
	"RefusalRate":              "refusal-rate",
	"RefusalBurst":             "refusal-burst",
	"KeepaliveTime":            "keepalive-time",
	"KeepaliveTimeout":         "keepalive-timeout",
	"KeepaliveMinClientPing":   "keepalive-min-client-ping",
}

// settingErrors returns the errors of server.Config.Validate with each
// setting named by its flag: "--max-sessions must be at least 1, got 0".
func settingErrors(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	flagOf := func(field string) string {
		if f, ok := settingFlags[field]; ok {
			return "--" + f
		}
		return ""
	}
	var out []error
	for _, e := range errs {
		var se *server.SettingError
		if errors.As(e, &se) {
			e = errors.New(se.Describe(flagOf))
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// checkAddr checks that addr, the value of the flag name, is host:port,
// before anything listens: net.Listen would take "" for a random port on
// every interface, and refuse "localhost" only once other listeners are
// up, in words that do not name the flag. good says what to give
// instead; optional lets addr be empty (for off). Whether this machine
// can listen on the host is left to net.Listen.
func checkAddr(name, addr, good string, optional bool) error {
	if addr == "" && optional {
		return nil
	}
	bad := func(problem string) error {
		return fmt.Errorf("--%s must be host:port, %s: %s", name, good, problem)
	}
	if addr == "" {
		return bad("chatd cannot run without it")
	}
	if strings.Contains(addr, "://") {
		return bad(fmt.Sprintf("%q is a URL, not an address", addr))
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
			return bad(fmt.Sprintf("%q has no port, or is an IPv6 address out of brackets ([::1]:port)", addr))
		}
		if !strings.Contains(addr, ":") {
			return bad(fmt.Sprintf("%q has no port", addr))
		}
		return bad(fmt.Sprintf("%q is not host:port", addr))
	}
	if port == "" {
		return bad(fmt.Sprintf("%q has no port", addr))
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return bad(fmt.Sprintf("%q has no valid port (1 to 65535, or 0 for any free one)", addr))
	}
	return nil
}

// levelFlag is --log-level, shown as it is written ("info"), where
// flag.TextVar would show slog's own name for it ("INFO").
type levelFlag struct{ l *slog.Level }

func (f levelFlag) String() string {
	if f.l == nil { // the zero value flag.PrintDefaults compares with
		return ""
	}
	return strings.ToLower(f.l.String())
}

func (f levelFlag) Set(s string) error { return f.l.UnmarshalText([]byte(s)) }

func (f levelFlag) Get() any { return *f.l }

// parse is fs.Parse with its errors said as one line that names the flag,
// and for a value it cannot take, a value it can.
func parse(fs *flag.FlagSet, args []string) error {
	// Each value is wrapped while fs parses, to learn which flag's value
	// was wrong and why: the error fs.Parse returns only says so in words.
	var bad error
	orig := make(map[string]flag.Value)
	fs.VisitAll(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			return // fs must still see that it takes no value
		}
		orig[f.Name] = f.Value
		f.Value = &recordingValue{Value: f.Value, flag: f, bad: &bad}
	})
	err := fs.Parse(args)
	// Unwrapped again: flag.PrintDefaults tells the kinds of values apart
	// by their types.
	for name, v := range orig {
		fs.Lookup(name).Value = v
	}
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return err
	case bad != nil:
		return bad
	}
	const help = " (see chatd --help)"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if near := nearestFlag(fs, name); near != "" {
			return fmt.Errorf("unknown flag --%s: did you mean --%s?%s", name, near, help)
		}
		return fmt.Errorf("unknown flag --%s%s", name, help)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		if f := fs.Lookup(name); f != nil && f.DefValue != "" {
			return fmt.Errorf("--%s needs a value, such as %s%s", name, f.DefValue, help)
		}
		return fmt.Errorf("--%s needs a value%s", name, help)
	}
	if arg, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return fmt.Errorf("bad flag syntax %q: write --name value or --name=value%s", arg, help)
	}
	return errors.New(msg + help)
}

// recordingValue is a flag's value while parse runs: it keeps why the
// value it is given is wrong, as one line that names the flag.
type recordingValue struct {
	flag.Value
	flag *flag.Flag
	bad  *error
}

func (v *recordingValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil {
		*v.bad = badValue(v.flag.Name, v.flag.DefValue, v.Value, s, err)
	}
	return err
}

// badValue says why the flag name, of default def, cannot take the value s
// that val refused with err.
func badValue(name, def string, val flag.Value, s string, err error) error {
	var kind any
	if g, ok := val.(flag.Getter); ok {
		kind = g.Get()
	}
	switch kind.(type) {
	case int:
		return fmt.Errorf("--%s must be a whole number, such as %s, got %q", name, def, s)
	case float64:
		return fmt.Errorf("--%s must be a number, such as %s, got %q", name, def, s)
	case time.Duration:
		return fmt.Errorf("--%s must be a duration, such as %s or 1m30s, got %q", name, def, s)
	case slog.Level:
		return fmt.Errorf("--%s must be debug, info, warn or error, got %q", name, s)
	}
	return fmt.Errorf("--%s: %v", name, err)
}

// nearestFlag returns the flag of fs whose name is closest to name, if one
// is close enough to be what was meant, or "".
func nearestFlag(fs *flag.FlagSet, name string) string {
	best, bestDist := "", 3 // more edits than this is another word
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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

// checkStorage checks where chatd keeps its chat: --data-dir, or in memory
// with --memory, for a chatd of its own; a cluster node keeps it in NATS.
func checkStorage(fs *flag.FlagSet, cfg *config) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	switch {
	case cfg.cluster.nats.URLs != "":
		for _, name := range []string{"data-dir", "memory", "fsync-interval", "history-age", "history-disk-bytes"} {
			if set[name] {
				errs = append(errs, fmt.Errorf("--%s is for a chatd of its own: a cluster node keeps the chat in NATS (--nats-storage)", name))
			}
		}
	case cfg.memory && (set["data-dir"] || set["fsync-interval"] || set["history-age"] || set["history-disk-bytes"]):
		errs = append(errs, errors.New("--memory keeps nothing on disk: leave out --data-dir, --fsync-interval, --history-age and --history-disk-bytes, or --memory"))
	case !cfg.memory && cfg.dataDir == "":
		errs = append(errs, errors.New("--data-dir must name a directory (or use --memory to keep nothing on disk)"))
	}
	if cfg.historyAge < 0 {
		errs = append(errs, fmt.Errorf("--history-age must be 0 (for ever) or positive, such as 720h, got %s", cfg.historyAge))
	}
	if cfg.historyDiskBytes < 0 {
		errs = append(errs, fmt.Errorf("--history-disk-bytes must be 0 (no bound) or positive, got %d", cfg.historyDiskBytes))
	}
	if cfg.fsyncInterval < 0 {
		errs = append(errs, fmt.Errorf("--fsync-interval must be 0 (every write) or positive, such as 1s, got %s", cfg.fsyncInterval))
	}
	return errors.Join(errs...)
}
