package e2e_test

// Hostile clients against the real chatd binary, for what only the
// binary's own wiring shows.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A client joining and disconnecting in a loop makes chatd log a line per
// join and per leave; --log-rate bounds them, and the lines logged say how
// many were dropped before them: nothing goes missing unaccounted.
func TestChurnCannotFloodTheLog(t *testing.T) {
	t.Parallel()
	const rate, churns = 5, 300
	// The limits per address would stop the churn first: turn them off
	// to see the log's own bound.
	srv := startChatd(t, "--log-rate", fmt.Sprint(rate), "--join-rate-per-ip", "0", "--max-sessions-per-ip", "0", "--list-rate-per-ip", "0", "--resume-grace", "0")
	srv.expectIn(t, srv.stderr, "stderr", `msg=started`)
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	began := time.Now()
	for i := range churns {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: fmt.Sprint("churn", i)}}}); err != nil {
			t.Fatal(err)
		}
		if ev, err := stream.Recv(); err != nil || ev.GetWelcome() == nil {
			t.Fatalf("join %d: %v, %v; want a welcome", i, ev, err)
		}
		cancel()
	}
	elapsed := time.Since(began)
	// 600 joins and leaves happened; a burst of ten times the rate, and
	// the rate since, may be logged.
	lines := strings.Count(srv.stderr.String(), "\n")
	if bound := 1 + 10*rate + int(elapsed.Seconds()*rate) + 2; lines > bound {
		t.Errorf("%d log lines for %d joins and leaves in %s; want at most %d at --log-rate %d", lines, 2*churns, elapsed.Round(time.Millisecond), bound, rate)
	}
	// Every churn is over (its leave applied, and logged or dropped, a
	// moment before) once nobody is online.
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		resp, err := chatv1.NewChatServiceClient(conn).ListUsers(context.Background(), &chatv1.ListUsersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetUsers()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d users still online %s after the churn; want none", len(resp.GetUsers()), waitTimeout)
		}
	}
	// A line logged once the rate allows it again says what was dropped
	// before it, if anything still was.
	time.Sleep(time.Second / rate)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: "late"}}})
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	srv.expectIn(t, srv.stderr, "stderr", `msg=joined .*user=late`)
	// Each of the 600 joins and leaves was logged, or counted in the
	// dropped= of a line logged after it.
	logged, dropped := 0, 0
	for _, line := range strings.Split(srv.stderr.String(), "\n") {
		if strings.Contains(line, "user=churn") {
			logged++
		}
		if i := strings.Index(line, " dropped="); i >= 0 {
			var n int
			if _, err := fmt.Sscanf(line[i:], " dropped=%d", &n); err != nil {
				t.Fatalf("log line %q: dropped= is not a number: %v", line, err)
			}
			dropped += n
		}
	}
	if dropped == 0 || logged+dropped != 2*churns {
		t.Errorf("the log has %d lines of the churn and says %d were dropped; want some dropped, and %d in all", logged, dropped, 2*churns)
	}
}
