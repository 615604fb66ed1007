package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/ratelog"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of run's logger
// and the test's reads.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(--help) = %v, want flag.ErrHelp", err)
	}
	help := stderr.String()
	fs, _ := newFlagSet()
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(help, "-"+f.Name+" ") {
			t.Errorf("--help does not mention -%s:\n%s", f.Name, help)
		}
	})
	for _, want := range []string{
		"(default info)", // as --log-level takes it, not slog's INFO
		fmt.Sprintf("in bytes; at least %d (the longest message", server.MinRecvMsgSize),
		fmt.Sprintf("at least %d (the longest message, twice)", server.MinQueueBytes),
		fmt.Sprintf("in bytes; at least %d (default", server.MinHeaderBytes),
		"at least 1s (default 25s)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "INFO") {
		t.Errorf("--help shows a level in capitals:\n%s", help)
	}
}

// Every setting of server.Config has a flag, and the errors of its
// Validate name that flag.
func TestEverySettingHasAFlag(t *testing.T) {
	t.Parallel()
	fs, _ := newFlagSet()
	var fields func(typ reflect.Type, prefix string)
	fields = func(typ reflect.Type, prefix string) {
		for f := range typ.Fields() {
			if f.Type.Kind() == reflect.Struct {
				fields(f.Type, prefix+f.Name+".")
				continue
			}
			name, ok := settingFlags[prefix+f.Name]
			if !ok {
				t.Errorf("server.Config's %s%s has no flag in settingFlags", prefix, f.Name)
			} else if fs.Lookup(name) == nil {
				t.Errorf("settingFlags gives %s%s the flag --%s, which chatd does not have", prefix, f.Name, name)
			}
		}
	}
	fields(reflect.TypeFor[server.Config](), "")

	// A config with every setting wrong, as far as Validate checks: each
	// error names a flag, not a setting in prose.
	bad := server.Config{MaxRecvMsgSize: 1, MessageRate: 1, RefusalRate: 1}
	bad.PerClient.JoinRate, bad.PerClient.ListRate = 1, 1
	bad.MaxSessions, bad.HistorySize, bad.ResumeBuffer, bad.ResumeGrace = -1, -1, -1, -1
	bad.HistoryBytes, bad.ResumeBufferBytes, bad.KeepaliveMinClientPing = -1, -1, -1
	bad.PerClient.MaxConns, bad.PerClient.MaxUnjoined, bad.PerClient.MaxSessions = -1, -1, -1
	err := settingErrors(bad.Validate())
	if err == nil {
		t.Fatal("a config with every setting wrong is valid")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) < 25 {
		t.Errorf("%d errors for a config with every setting wrong, want one a setting:\n%s", len(lines), err)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "--") {
			t.Errorf("error %q does not start with the flag", line)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "--"), " ")
		if fs.Lookup(name) == nil {
			t.Errorf("error %q names no flag of chatd", line)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.7,fd00::/8,::ffff:172.16.0.1", "--trusted-proxies", "203.0.113.0/24"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range cfg.server.PerClient.TrustedProxies {
		got = append(got, p.String())
	}
	want := "10.0.0.0/8 192.168.1.7/32 fd00::/8 172.16.0.1/32 203.0.113.0/24"
	if strings.Join(got, " ") != want {
		t.Errorf("--trusted-proxies gave %v; want %s", got, want)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // the error, from its start
	}{
		{[]string{"--log-format", "xml"}, `--log-format must be text or json, got "xml"`},
		{[]string{"--log-level", "loud"}, `--log-level must be debug, info, warn or error, got "loud"`},
		{[]string{"--max-sessions", "0"}, "--max-sessions must be at least 1, got 0"},
		{[]string{"--max-sessions", "ten"}, `--max-sessions must be a whole number, such as 10000, got "ten"`},
		{[]string{"--message-rate", "fast"}, `--message-rate must be a number, such as 10, got "fast"`},
		{[]string{"--join-timeout", "5"}, `--join-timeout must be a duration, such as 10s or 1m30s, got "5"`},
		{[]string{"--keepalive-time", "100ms"}, "--keepalive-time must be at least 1s (gRPC's minimum), got 100ms"},
		{[]string{"--max-recv-msg-size", "100"}, fmt.Sprintf("--max-recv-msg-size must be at least %d bytes", server.MinRecvMsgSize)},
		{[]string{"--message-rate", "-1"}, "--message-rate must be 0 (off) or positive, got -1"},
		{[]string{"--message-burst", "0"}, "--message-burst must be at least 1 while --message-rate is on, got 0"},
		{[]string{"--history-size", "-1"}, "--history-size must not be negative, got -1"},
		{[]string{"--max-channels", "0"}, "--max-channels must be at least 1 (for general), got 0"},
		{[]string{"--max-channels-per-user", "0"}, "--max-channels-per-user must be at least 1, got 0"},
		{[]string{"--resume-grace", "-1s"}, "--resume-grace must be 0 (off) or positive, got -1s"},
		{[]string{"--resume-buffer", "-5"}, "--resume-buffer must not be negative, got -5"},
		{[]string{"--resume-buffer-bytes", "-5"}, "--resume-buffer-bytes must not be negative, got -5"},
		{[]string{"--history-bytes", "-1"}, "--history-bytes must not be negative, got -1"},
		{[]string{"--queue-bytes", "100"}, fmt.Sprintf("--queue-bytes must be at least %d", server.MinQueueBytes)},
		{[]string{"--max-header-bytes", "100"}, "--max-header-bytes must be at least 4096, got 100"},
		{[]string{"--max-streams-per-conn", "0"}, "--max-streams-per-conn must be at least 1, got 0"},
		{[]string{"--max-unjoined", "0"}, "--max-unjoined must be at least 1, got 0"},
		{[]string{"--max-conns-per-ip", "-1"}, "--max-conns-per-ip must be 0 (no limit) or positive, got -1"},
		{[]string{"--join-rate-per-ip", "-1"}, "--join-rate-per-ip must be 0 (off) or positive, got -1"},
		{[]string{"--join-burst-per-ip", "0"}, "--join-burst-per-ip must be at least 1 while --join-rate-per-ip is on, got 0"},
		{[]string{"--list-rate-per-ip", "1", "--list-burst-per-ip", "0"}, "--list-burst-per-ip must be at least 1 while --list-rate-per-ip is on, got 0"},
		{[]string{"--refusal-rate", "-2"}, "--refusal-rate must be 0 (off) or positive, got -2"},
		{[]string{"--keepalive-min-client-ping", "-1s"}, "--keepalive-min-client-ping must not be negative, got -1s"},
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, `--trusted-proxies: "10.0.0.0/33" is not a CIDR`},
		{[]string{"--trusted-proxies", "proxy.example"}, `--trusted-proxies: "proxy.example" is not an address or a CIDR`},
		{[]string{"--log-rate", "-1"}, "--log-rate must be 0 (log everything) or positive, got -1"},
		{[]string{"--shutdown-timeout", "0s"}, "--shutdown-timeout must be positive, such as 10s, got 0s"},
		{[]string{"--return-memory", "-1s"}, "--return-memory must be 0 (off) or positive, such as 10s, got -1s"},
		{[]string{"extra"}, `unexpected argument "extra": chatd takes flags only (see chatd --help)`},
		{[]string{"--max-session", "5"}, "unknown flag --max-session: did you mean --max-sessions? (see chatd --help)"},
		{[]string{"--frobnicate"}, "unknown flag --frobnicate (see chatd --help)"},
		{[]string{"--grpc-addr"}, "--grpc-addr needs a value, such as localhost:50051 (see chatd --help)"},
		{[]string{"---grpc-addr", "x"}, `bad flag syntax "---grpc-addr": write --name value or --name=value (see chatd --help)`},

		// Addresses are checked before anything listens.
		{[]string{"--grpc-addr", ""}, "--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: chatd cannot run without it"},
		{[]string{"--grpc-addr", "localhost"}, `--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: "localhost" has no port`},
		{[]string{"--grpc-addr", "localhost:"}, `--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: "localhost:" has no port`},
		{[]string{"--grpc-addr", "::1"}, `--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: "::1" has no port, or is an IPv6 address out of brackets ([::1]:port)`},
		{[]string{"--grpc-addr", "localhost:65536"}, `--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: "localhost:65536" has no valid port (1 to 65535, or 0 for any free one)`},
		{[]string{"--grpc-addr", "localhost:port"}, `--grpc-addr must be host:port, such as localhost:50051, or :50051 for every interface: "localhost:port" has no valid port`},
		{[]string{"--http-addr", "http://localhost:8080"}, `--http-addr must be host:port, such as localhost:8080, or :8080 for every interface, or empty for none: "http://localhost:8080" is a URL, not an address`},
		{[]string{"--http-addr", "8080"}, `--http-addr must be host:port, such as localhost:8080, or :8080 for every interface, or empty for none: "8080" has no port`},
		{[]string{"--debug-addr", "localhost"}, `--debug-addr must be host:port, such as localhost:6060, or empty for none: "localhost" has no port`},
		{[]string{"--metrics-addr", "9090"}, `--metrics-addr must be host:port, such as localhost:9090, or empty for none: "9090" has no port`},

		// Origins are checked when the flags are, HTTP on or not.
		{[]string{"--http-addr", "", "--allowed-origins", "chat.example.com"}, `--allowed-origins: "chat.example.com" has no scheme: write https://chat.example.com`},
		{[]string{"--allowed-origins", "https://ok.example,ftp://x"}, `--allowed-origins: "ftp://x" is not an origin a page can have: its scheme must be https or http`},
		{[]string{"--allowed-origins", "https://chat.example.com/chat"}, `--allowed-origins: "https://chat.example.com/chat" is more than an origin: pages are allowed by their origin alone, scheme://host[:port], so write https://chat.example.com`},
		{[]string{"--allowed-origins", "https://*.example.com"}, `--allowed-origins: "https://*.example.com": an origin has no wildcards`},

		// What only listening can tell.
		{[]string{"--grpc-addr", "256.0.0.1:1"}, "cannot listen for gRPC"},
		{[]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "256.0.0.1:1"}, "cannot serve HTTP"},
		{[]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--metrics-addr", "256.0.0.1:1"}, "cannot serve metrics"},

		// Where the chat is kept.
		{[]string{"--memory", "--data-dir", "/tmp/x"}, "--memory keeps nothing on disk: leave out --data-dir, --fsync-interval, --history-age and --history-disk-bytes, or --memory"},
		{[]string{"--memory", "--fsync-interval", "0"}, "--memory keeps nothing on disk"},
		{[]string{"--data-dir", ""}, "--data-dir must name a directory (or use --memory to keep nothing on disk)"},
		{[]string{"--fsync-interval", "-1s"}, "--fsync-interval must be 0 (every write) or positive, such as 1s, got -1s"},
		{[]string{"--history-age", "-1h"}, "--history-age must be 0 (for ever) or positive, such as 720h, got -1h0m0s"},
		{[]string{"--history-disk-bytes", "-1"}, "--history-disk-bytes must be 0 (no bound) or positive, got -1"},
		{[]string{"--memory", "--history-age", "1h"}, "--memory keeps nothing on disk"},
		{[]string{"--nats-url", "nats://localhost:4222", "--memory"}, "--memory is for a chatd of its own: a cluster node keeps the chat in NATS (--nats-storage)"},
		{[]string{"--nats-url", "nats://localhost:4222", "--data-dir", "d"}, "--data-dir is for a chatd of its own"},
		{[]string{"--seed-from", "chatd-data"}, "--seed-from only mean something in a cluster: add --nats-url"},
	} {
		var stderr bytes.Buffer
		args := tc.args
		if !slices.Contains(args, "--data-dir") && !slices.Contains(args, "--memory") {
			// Those that get as far as opening the data directory must
			// not make one in the package's folder.
			args = append([]string{"--data-dir", t.TempDir()}, args...)
		}
		err := run(context.Background(), args, io.Discard, &stderr)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error saying %q", tc.args, err, tc.want)
			continue
		}
		// One line, not the usage after Go's "parse error".
		if strings.Contains(err.Error(), "\n") || stderr.Len() != 0 {
			t.Errorf("run(%q) = %q and wrote %q; want one line and nothing else", tc.args, err, stderr.String())
		}
	}

	// Every problem is reported, one line each.
	err := run(context.Background(), []string{"--max-sessions", "0", "--grpc-addr", "localhost", "--log-format", "xml"}, io.Discard, io.Discard)
	if err == nil || len(strings.Split(err.Error(), "\n")) != 3 {
		t.Errorf("run with three bad flags = %v; want three lines", err)
	}
}

func TestGoodAddressesAndOrigins(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--grpc-addr", ":50051", "--http-addr", ":8080"},
		{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--debug-addr", ""},
		{"--grpc-addr", "[::1]:50051", "--http-addr", "[::]:8080", "--debug-addr", "localhost:6060", "--metrics-addr", "localhost:9090"},
		{"--grpc-addr", "0.0.0.0:50051", "--http-addr", "chat.example.com:443"},
	} {
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("parseFlags(%q) = %v, want the addresses taken", args, err)
		}
	}
	if cfg, err := parseFlags([]string{"--log-level", "WARN"}, io.Discard); err != nil || cfg.logLevel != slog.LevelWarn {
		t.Errorf("--log-level WARN gave %v, %v; want warn", cfg.logLevel, err)
	}
	// An origin with a trailing / or its scheme's default port names one
	// origin all the same: it is taken as the browser writes it.
	cfg, err := parseFlags([]string{"--allowed-origins", "https://Chat.Example.com/, http://localhost:3000/,https://x.example:443", "--allowed-origins", "*"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(cfg.allowedOrigins, " "), "https://chat.example.com http://localhost:3000 https://x.example *"; got != want {
		t.Errorf("--allowed-origins gave %s; want %s", got, want)
	}
}

// TestServesUntilCancelled starts chatd on a free port, talks to it, and
// checks that cancelling run's context ends every session with UNAVAILABLE
// and makes run return.
func TestServesUntilCancelled(t *testing.T) {
	dataDir := t.TempDir()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdoutR, stdoutW := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", dataDir, "--log-format", "json", "--shutdown-timeout", "5s"}, stdoutW, logs)
		stdoutW.Close()
	}()

	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading chatd's first line: %v", err)
	}
	go io.Copy(io.Discard, stdoutR) //nolint:errcheck // drain until run ends
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "chatd: gRPC listening on ")
	if !ok {
		t.Fatalf("first line = %q, want it to say where chatd listens", line)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := chatv1.NewChatServiceClient(conn)
	stream, err := client.Chat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "alice"}}}); err != nil {
		t.Fatal(err)
	}
	ev, err := stream.Recv()
	if err != nil || ev.GetWelcome() == nil {
		t.Fatalf("first event = %v, %v; want a welcome", ev, err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetChannelJoined().GetChannel() != "general" {
		t.Fatalf("second event = %v, %v; want general's channel_joined", ev, err)
	}

	// The message is acknowledged, and its text stays out of the logs.
	const secret = "secret-text-1234"
	if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: secret}}}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetMessage().GetText() != secret {
		t.Fatalf("event after send = %v, %v; want the echoed message", ev, err)
	}

	cancel()
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "shutting down") {
		t.Errorf("after shutdown, Recv = %v; want UNAVAILABLE saying the server is shutting down", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after its context was cancelled, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of its context being cancelled")
	}
	for _, want := range []string{`"msg":"started"`, `"msg":"joined"`, `"user":"alice"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs show message text at info level:\n%s", logs.String())
	}
}

// gRPC's own errors (the grpc-web wrapper's, one per broken websocket) go
// to chatd's log, under its bound; its info and warnings are dropped.
func TestGRPCLogGoesToChatdLog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	g := &grpcLog{}
	g.Errorf("before %s", "set-up") // dropped: nowhere to go yet
	g.use(slog.New(ratelog.NewHandler(slog.NewTextHandler(&buf, nil), 1, 2)))
	g.Info("chatty")
	g.Warningf("meh %d", 1)
	for i := range 5 {
		g.Errorf("Unable to read first websocket message: %d", i)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "first websocket message: 0") || !strings.Contains(lines[0], "from=grpc") {
		t.Errorf("logged %q; want the first 2 errors only (the bound's burst), from grpc", lines)
	}
}

// chatd's JSON log writes every duration as a string, as the text log and
// the flags write it, not as nanoseconds; and a user is "user" in every
// record, joined or refused.
func TestJSONLogsDurationsAndUsersOneWay(t *testing.T) {
	dataDir := t.TempDir()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdoutR, stdoutW := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", dataDir, "--log-format", "json", "--shutdown-timeout", "1500ms"}, stdoutW, logs)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading chatd's first line: %v", err)
	}
	go io.Copy(io.Discard, stdoutR) //nolint:errcheck // drain until run ends
	addr := strings.TrimPrefix(strings.TrimSpace(line), "chatd: gRPC listening on ")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	join := func(name string) (grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse], error) {
		stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		return stream, err
	}
	if _, err := join("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := join("alice"); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second join as alice: %v; want ALREADY_EXISTS", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	durations := map[string]string{} // key: value, of every duration seen
	users := map[string]string{}     // msg: user
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if _, ok := rec["username"]; ok {
			t.Errorf("log line %s names the user username=, not user=", line)
		}
		if u, ok := rec["user"].(string); ok {
			users[rec["msg"].(string)] = u
		}
		for _, k := range []string{"resume_grace", "timeout", "join_timeout", "silent_for"} {
			v, ok := rec[k]
			if !ok {
				continue
			}
			s, isString := v.(string)
			if _, err := time.ParseDuration(s); !isString || err != nil {
				t.Errorf("log line %s writes %s as %v; want a duration such as \"30s\"", line, k, v)
			}
			durations[k] = s
		}
	}
	if durations["resume_grace"] != "30s" || durations["timeout"] != "1.5s" {
		t.Errorf("logged durations %v; want resume_grace 30s (started) and timeout 1.5s (shutting down)", durations)
	}
	if users["joined"] != "alice" || users["join refused"] != "alice" {
		t.Errorf("logged users %v; want alice under user= when joined and when refused", users)
	}
}

func TestLoggerWritesDurationsAsStrings(t *testing.T) {
	t.Parallel()
	for format, want := range map[string]string{
		"json": `"d":"1.5s","g":{"e":"2m0s"},"f":"250ms"`,
		"text": `d=1.5s g.e=2m0s f=250ms`,
	} {
		var buf bytes.Buffer
		log := newLogger(&buf, format, slog.LevelInfo)
		log.With("d", 1500*time.Millisecond).Info("m", slog.Group("g", "e", 2*time.Minute), slog.Duration("f", 250*time.Millisecond))
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s log wrote %s; want %s", format, buf.String(), want)
		}
	}
}

// The tables of flags and limits in docs/ (chatd's own flags in
// operations.md, the limits in limits.md, a cluster node's in cluster.md)
// give every flag of chatd with its default, and the least value of those
// that have one.
func TestDocsDocumentEveryFlag(t *testing.T) {
	t.Parallel()
	var text string
	for _, page := range []struct{ path, heading string }{
		{"../../docs/operations.md", "## chatd flags\n"},
		{"../../docs/limits.md", "# Limits\n"},
		{"../../docs/cluster.md", "# Cluster\n"},
	} {
		b, err := os.ReadFile(page.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), page.heading) && !strings.Contains(string(b), "\n"+page.heading) {
			t.Fatalf("%s has no heading %q", page.path, strings.TrimSpace(page.heading))
		}
		text += string(b)
	}
	fs, _ := newFlagSet()
	flagsCell := regexp.MustCompile("^`--[a-z-]+`(, `--[a-z-]+`)*$")
	code := regexp.MustCompile("`([^`]*)`")
	documented := map[string]bool{}
	rows := map[string]string{} // flag: its row
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		for i := 0; i+1 < len(cells); i++ {
			if !flagsCell.MatchString(cells[i]) {
				continue
			}
			var names, defaults []string
			for _, m := range code.FindAllStringSubmatch(cells[i], -1) {
				names = append(names, strings.TrimPrefix(m[1], "--"))
			}
			if cells[i+1] == "none" {
				defaults = []string{""}
			}
			for _, m := range code.FindAllStringSubmatch(cells[i+1], -1) {
				defaults = append(defaults, m[1])
			}
			if len(names) != len(defaults) {
				t.Errorf("docs row %q gives %d flags but %d defaults", line, len(names), len(defaults))
				break
			}
			for j, name := range names {
				f := fs.Lookup(name)
				if f == nil {
					t.Errorf("docs document --%s, which chatd does not have", name)
					continue
				}
				documented[name] = true
				rows[name] += line
				if f.DefValue != defaults[j] {
					t.Errorf("docs give --%s the default %q; chatd's is %q", name, defaults[j], f.DefValue)
				}
			}
			break
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("the tables of docs/operations.md, limits.md and cluster.md do not document --%s", f.Name)
		}
	})
	for name, least := range map[string]string{
		"max-recv-msg-size": fmt.Sprintf("at least %d", server.MinRecvMsgSize),
		"queue-bytes":       fmt.Sprintf("at least %d", server.MinQueueBytes),
		"max-header-bytes":  fmt.Sprintf("at least %d", server.MinHeaderBytes),
		"keepalive-time":    "at least " + server.MinKeepaliveTime.String(),
	} {
		if !strings.Contains(rows[name], least) {
			t.Errorf("the docs' row of --%s does not say %q:\n%s", name, least, rows[name])
		}
	}
}
