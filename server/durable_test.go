package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/disklog"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
)

// fullLog is a data directory's log whose disk can be made full: while it
// is, appends fail as disklog's do when a write fails.
type fullLog struct {
	*disklog.Log
	full atomic.Bool
}

func (l *fullLog) Append(ctx context.Context, id string, data []byte) error {
	if l.full.Load() {
		return fmt.Errorf("%w: cannot write to the data directory: no space left on device", server.ErrNotAppended)
	}
	return l.Log.Append(ctx, id, data)
}

// A full disk refuses what would change the chat, at once, with
// UNAVAILABLE saying why (never a crash, never a message echoed and then
// lost), and the chat goes on when there is space again.
func TestFullDiskRefusesThenRecovers(t *testing.T) {
	l, err := disklog.Open(disklog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fl := &fullLog{Log: l}
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	srv, addr := servertest.StartOn(t, testConfig(nil), server.SoloConfig(), fl, slog.New(slog.NewTextHandler(logw, nil)))
	ts := &testServer{srv: srv, addr: addr}
	ts.admin = dial(t, addr)
	alice := join(t, ts, "alice")
	alice.say(t, "before", "m1")
	expectMessage(t, "alice", alice.next(t), "alice", "before", "m1")

	fl.full.Store(true)
	alice.say(t, "while full", "m2")
	ev := alice.next(t)
	if r := ev.GetRejected(); r == nil || r.GetClientId() != "m2" || codes.Code(r.GetCode()) != codes.Unavailable || !strings.Contains(r.GetReason(), "no space left on device") {
		t.Fatalf("a message sent while the disk is full: %v; want it rejected UNAVAILABLE saying there is no space", ev)
	}
	bob := openStream(t, dial(t, addr))
	bob.send(t, joinReq("bob"))
	if st := bob.expectEnd(t, codes.Unavailable); !strings.Contains(st.Message(), "no space left on device") {
		t.Fatalf("a join while the disk is full: %q; want UNAVAILABLE saying there is no space", st.Message())
	}

	fl.full.Store(false)
	alice.say(t, "after", "m3")
	expectMessage(t, "alice", alice.next(t), "alice", "after", "m3")
	join(t, ts, "bob")
}

// A busy chat is snapshot by the entries it applies, not only by the
// clock: however many messages a second it takes, a restart replays at
// most SnapshotEntries of its log.
func TestSnapshotByEntries(t *testing.T) {
	l, err := disklog.Open(disklog.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ccfg := server.SoloConfig()
	ccfg.SnapshotEvery = time.Hour // never, within the test
	ccfg.SnapshotEntries = 10
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	srv, addr := servertest.StartOn(t, testConfig(func(c *server.Config) { c.MessageRate = 0 }), ccfg, l, slog.New(slog.NewTextHandler(logw, nil)))
	ts := &testServer{srv: srv, addr: addr}
	ts.admin = dial(t, addr)
	alice := join(t, ts, "alice")
	if got := srv.Cluster().Saved(); got != 0 {
		t.Fatalf("a snapshot at %d before ten entries were applied", got)
	}
	for i := range 25 {
		id := fmt.Sprint("m", i)
		alice.say(t, "hello", id)
		expectMessage(t, "alice", alice.next(t), "alice", "hello", id)
	}
	// 26 entries at least (a join, 25 messages): snapshots at 10 and 20
	// entries after the start.
	waitFor(t, "a snapshot after twenty entries", func() bool { return srv.Cluster().Saved() >= 20 })
	if got, applied := srv.Cluster().Saved(), srv.Cluster().Applied(); applied-got >= 10+5 {
		t.Fatalf("last snapshot at %d with %d applied: more than SnapshotEntries behind", got, applied)
	}
}
