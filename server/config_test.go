package server_test

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/server"
)

func TestDefaultConfigIsValid(t *testing.T) {
	t.Parallel()
	if err := server.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v; want nil", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		edit func(*server.Config)
		want string
	}{
		{func(c *server.Config) { c.MaxSessions = 0 }, "max sessions"},
		{func(c *server.Config) { c.JoinTimeout = 0 }, "join timeout"},
		{func(c *server.Config) { c.QueueSize = 0 }, "queue size"},
		{func(c *server.Config) { c.MessageRate = -1 }, "message rate"},
		{func(c *server.Config) { c.MessageRate, c.MessageBurst = 1, 0 }, "message burst"},
		{func(c *server.Config) { c.MaxRecvMsgSize = server.MaxTextBytes }, "max receive message size"},
		{func(c *server.Config) { c.KeepaliveTime = 999 * time.Millisecond }, "keepalive time"},
		{func(c *server.Config) { c.KeepaliveTimeout = 0 }, "keepalive timeout"},
		{func(c *server.Config) { c.KeepaliveMinClientPing = -time.Second }, "client ping"},
		{func(c *server.Config) { c.HistorySize = -1 }, "history size"},
		{func(c *server.Config) { c.MaxChannels = 0 }, "max channels"},
		{func(c *server.Config) { c.MaxChannelsPerUser = 0 }, "max channels per user"},
		{func(c *server.Config) { c.ResumeGrace = -time.Second }, "resume grace"},
		{func(c *server.Config) { c.WriteDelay = -time.Millisecond }, "write delay"},
		{func(c *server.Config) { c.WriteDelay = 2 * time.Second }, "write delay"},
		{func(c *server.Config) { c.ResumeBuffer = -1 }, "resume buffer"},
		{func(c *server.Config) { c.ResumeBufferBytes = -1 }, "resume buffer bytes"},
	} {
		cfg := testConfig(tc.edit)
		srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v; want an error about %s", cfg, err, tc.want)
		}
		if srv != nil {
			t.Errorf("New returned a server along with error %v", err)
		}
	}
	// Rate limiting off needs no burst.
	if err := testConfig(func(c *server.Config) { c.MessageRate, c.MessageBurst = 0, 0 }).Validate(); err != nil {
		t.Errorf("rate 0 with burst 0: %v; want valid", err)
	}
	// Every problem is reported at once.
	err := testConfig(func(c *server.Config) { c.MaxSessions, c.QueueSize = 0, 0 }).Validate()
	if err == nil || !strings.Contains(err.Error(), "max sessions") || !strings.Contains(err.Error(), "queue size") {
		t.Errorf("Validate with two bad settings = %v; want both reported", err)
	}
}

// Validate names each bad setting by its field, so that a program can
// name it as its users know it, and in prose otherwise.
func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	err := testConfig(func(c *server.Config) {
		c.MaxSessions, c.KeepaliveTime = 0, 10*time.Millisecond
		c.PerClient.JoinRate, c.PerClient.JoinBurst = 1, 0
	}).Validate()
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *server.SettingError
		if !errors.As(e, &se) {
			t.Fatalf("Validate gave %T %v; want a *server.SettingError", e, e)
		}
		got = append(got, se.Field+": "+se.Error()+" | "+se.Describe(func(f string) string {
			if f == "PerClient.JoinRate" {
				return "" // prose
			}
			return "<" + f + ">"
		}))
	}
	want := []string{
		"MaxSessions: max sessions must be at least 1, got 0 | <MaxSessions> must be at least 1, got 0",
		"PerClient.JoinBurst: join burst per address must be at least 1 while join rate per address is on, got 0 | <PerClient.JoinBurst> must be at least 1 while join rate per address is on, got 0",
		"KeepaliveTime: keepalive time must be at least 1s (gRPC's minimum), got 10ms | <KeepaliveTime> must be at least 1s (gRPC's minimum), got 10ms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate said\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every setting Validate can refuse has a name in prose.
func TestEverySettingHasAName(t *testing.T) {
	t.Parallel()
	bad := server.Config{MaxRecvMsgSize: 1, MessageRate: 1, RefusalRate: 1}
	bad.PerClient.JoinRate, bad.PerClient.ListRate = 1, 1
	bad.MaxSessions, bad.HistorySize, bad.ResumeBuffer, bad.ResumeGrace = -1, -1, -1, -1
	bad.HistoryBytes, bad.ResumeBufferBytes, bad.KeepaliveMinClientPing = -1, -1, -1
	bad.PerClient.MaxConns, bad.PerClient.MaxUnjoined, bad.PerClient.MaxSessions = -1, -1, -1
	errs := bad.Validate().(interface{ Unwrap() []error }).Unwrap()
	for _, e := range errs {
		var se *server.SettingError
		if !errors.As(e, &se) {
			t.Errorf("Validate gave %T %v; want a *server.SettingError", e, e)
		} else if strings.Contains(e.Error(), se.Field) {
			t.Errorf("%q names %s by its field; want its name in prose", e, se.Field)
		}
	}
	if len(errs) < 25 {
		t.Errorf("%d errors for a config with every setting wrong:\n%v", len(errs), bad.Validate())
	}
}
