package ratelog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chatd/chatd/internal/ratelog"
)

// lockedBuffer is a buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSuffix(l.b.String(), "\n"), "\n")
}

func TestHandlerBoundsAndCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		log := slog.New(ratelog.NewHandler(slog.NewTextHandler(&buf, nil), 10, 50))
		// A churn: 1,000 records at once, from loggers with attributes,
		// as the server's per-stream loggers are.
		for i := range 1000 {
			log.With("peer", i).Info("joined")
		}
		if got := len(buf.lines()); got != 50 {
			t.Fatalf("%d lines logged of 1,000 at once; want the burst of 50", got)
		}
		// A second later, ten more may pass; the first says what was
		// dropped.
		time.Sleep(time.Second)
		for range 20 {
			log.Info("left")
		}
		lines := buf.lines()
		if len(lines) != 60 {
			t.Fatalf("%d lines after a second; want 60", len(lines))
		}
		if !strings.Contains(lines[50], "dropped=950") {
			t.Errorf("first line after the drop: %q; want dropped=950", lines[50])
		}
		if strings.Contains(lines[51], "dropped") {
			t.Errorf("second line after the drop: %q; want no count (nothing dropped since the last)", lines[51])
		}
	})
}

func TestHandlerOff(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(ratelog.NewHandler(slog.NewTextHandler(&buf, nil), 0, 0))
	for range 500 {
		log.WithGroup("g").Info("joined", "n", 1)
	}
	if got := len(buf.lines()); got != 500 {
		t.Errorf("%d lines of 500 with the limit off", got)
	}
}

func TestHandlerKeepsLevels(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(ratelog.NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), 1, 1))
	log.Info("quiet")
	log.Warn("loud")
	if lines := buf.lines(); len(lines) != 1 || !strings.Contains(lines[0], "loud") {
		t.Errorf("logged %q; want only the warning: records below the level spend nothing", lines)
	}
}
