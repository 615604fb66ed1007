package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/ratelog"
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
	for _, name := range []string{
		"grpc-addr", "http-addr", "allowed-origins", "log-format", "log-level", "shutdown-timeout", "max-sessions", "join-timeout",
		"queue-size", "message-rate", "message-burst", "max-recv-msg-size", "keepalive-time",
		"keepalive-timeout", "keepalive-min-client-ping", "history-size", "max-channels", "max-channels-per-user",
		"resume-grace", "resume-buffer", "resume-buffer-bytes", "history-bytes", "max-header-bytes",
		"max-streams-per-conn", "max-unjoined", "max-conns-per-ip", "max-unjoined-per-ip", "max-sessions-per-ip",
		"join-rate-per-ip", "join-burst-per-ip", "list-rate-per-ip", "list-burst-per-ip", "trusted-proxies",
		"refusal-rate", "refusal-burst", "log-rate", "queue-bytes",
	} {
		if !strings.Contains(stderr.String(), "-"+name) {
			t.Errorf("--help does not mention -%s:\n%s", name, stderr.String())
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
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format must be text or json"},
		{[]string{"--max-sessions", "0"}, "max sessions must be at least 1"},
		{[]string{"--keepalive-time", "100ms"}, "keepalive time must be at least 1s"},
		{[]string{"--max-recv-msg-size", "100"}, "max receive message size must be at least"},
		{[]string{"--message-rate", "-1"}, "message rate must be 0 (off) or positive"},
		{[]string{"--history-size", "-1"}, "history size must not be negative"},
		{[]string{"--max-channels", "0"}, "max channels must be at least 1"},
		{[]string{"--max-channels-per-user", "0"}, "max channels per user must be at least 1"},
		{[]string{"--resume-grace", "-1s"}, "resume grace must be 0 (off) or positive"},
		{[]string{"--resume-buffer", "-5"}, "resume buffer must not be negative"},
		{[]string{"--resume-buffer-bytes", "-5"}, "resume buffer bytes must not be negative"},
		{[]string{"--history-bytes", "-1"}, "history bytes must not be negative"},
		{[]string{"--queue-bytes", "100"}, "queue bytes must be at least"},
		{[]string{"--max-header-bytes", "100"}, "max header bytes must be at least 4096"},
		{[]string{"--max-streams-per-conn", "0"}, "max streams per connection must be at least 1"},
		{[]string{"--max-unjoined", "0"}, "max unjoined streams must be at least 1"},
		{[]string{"--max-conns-per-ip", "-1"}, "max connections per address must be 0 (no limit) or positive"},
		{[]string{"--join-rate-per-ip", "-1"}, "join rate per address must be 0 (off) or positive"},
		{[]string{"--join-burst-per-ip", "0"}, "join rate per address: its burst must be at least 1"},
		{[]string{"--list-rate-per-ip", "1", "--list-burst-per-ip", "0"}, "list rate per address: its burst must be at least 1"},
		{[]string{"--refusal-rate", "-2"}, "refusal rate must be 0 (off) or positive"},
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, `"10.0.0.0/33" is not a CIDR`},
		{[]string{"--trusted-proxies", "proxy.example"}, `"proxy.example" is not an address or a CIDR`},
		{[]string{"--log-rate", "-1"}, "--log-rate must be 0 (log everything) or positive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--grpc-addr", "256.0.0.1:1"}, "cannot listen for gRPC"},
		{[]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "256.0.0.1:1"}, "cannot serve HTTP"},
		{[]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--allowed-origins", "ftp://x"}, "cannot serve HTTP: gateway: allowed origin"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// TestServesUntilCancelled starts chatd on a free port, talks to it, and
// checks that cancelling run's context ends every session with UNAVAILABLE
// and makes run return.
func TestServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdoutR, stdoutW := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--log-format", "json", "--shutdown-timeout", "5s"}, stdoutW, logs)
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
