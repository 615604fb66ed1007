package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// scrape is what chatd's /metrics said once, as Prometheus's own parser
// reads it.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics fetches url and parses it.
func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// value is the value of the series of name with labels (name="value"
// pairs, all of the series' labels or some): a counter's or a gauge's
// value, a histogram's count, or its sum if name ends in _sum. It fails the
// test if no series matches.
func (s scrape) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fam, sum := s[name], false
	if fam == nil {
		if base, ok := strings.CutSuffix(name, "_sum"); ok {
			fam, sum = s[base], true
		}
	}
	if fam == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil && sum:
			return m.GetHistogram().GetSampleSum()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("/metrics has no %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// metricsURL is where the chatd started with --metrics-addr serves
// /metrics, as it says on stdout.
func metricsURL(t *testing.T, d *chatd) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^chatd: metrics on (http://\S+/metrics)$`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("chatd did not say where its metrics are:\n%s", d.stdout)
	}
	return m[1]
}

// waitMetric scrapes url until the series of name with labels is want,
// for a gauge that follows what chatd does a moment later.
func waitMetric(t *testing.T, url, name string, labels []string, want float64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		v := scrapeMetrics(t, url).value(t, name, labels...)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v after %s; want %v", name, labels, v, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counted is a Chat stream that counts every event it receives.
type counted struct {
	name   string
	stream grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	cancel context.CancelFunc
	events chan *chatv1.ChatResponse
	ended  chan error
	got    *atomic.Int64 // shared by the test's streams
	token  string
	seq    uint64
}

// openCounted opens a stream on conn and sends a join as name, with a
// resume token and last seq if given. Its events wait in a buffer of
// buffer events for the test to read them: once that is full, the stream
// is no longer read.
func openCounted(t *testing.T, conn *grpc.ClientConn, name, token string, lastSeq uint64, got *atomic.Int64, buffer int) *counted {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{name: name, stream: stream, cancel: cancel, events: make(chan *chatv1.ChatResponse, buffer), ended: make(chan error, 1), got: got}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(c.events)
				c.ended <- err
				return
			}
			got.Add(1)
			select {
			case c.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	c.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name, ResumeToken: token, LastSeq: lastSeq}}})
	return c
}

func (c *counted) send(t *testing.T, req *chatv1.ChatRequest) {
	t.Helper()
	if err := c.stream.Send(req); err != nil {
		t.Fatalf("%s: send: %v", c.name, err)
	}
}

// until reads events until one satisfies done, and returns it.
func (c *counted) until(t *testing.T, what string, done func(*chatv1.ChatResponse) bool) *chatv1.ChatResponse {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("%s: stream ended (%v) before %s", c.name, <-c.ended, what)
			}
			if ev.GetSeq() != 0 {
				c.seq = ev.GetSeq()
			}
			if w := ev.GetWelcome(); w != nil && w.GetResumeToken() != "" {
				c.token = w.GetResumeToken()
			}
			if done(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: no %s within %s", c.name, what, waitTimeout)
		}
	}
}

// end reads events until the stream ends, and returns its status.
func (c *counted) end(t *testing.T) *status.Status {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				if err := <-c.ended; err != io.EOF {
					return status.Convert(err)
				}
				return status.New(codes.OK, "")
			}
		case <-timeout:
			t.Fatalf("%s: stream did not end within %s", c.name, waitTimeout)
		}
	}
}

func (c *counted) welcomed(t *testing.T) *chatv1.Welcome {
	t.Helper()
	return c.until(t, "welcome", func(ev *chatv1.ChatResponse) bool { return ev.GetWelcome() != nil }).GetWelcome()
}

func (c *counted) message(t *testing.T, text string) {
	t.Helper()
	c.until(t, "message "+text, func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == text })
}

func sendTo(text, channel, recipient string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text, Channel: channel, Recipient: recipient}}}
}

// TestMetrics runs a scenario on a real chatd with --metrics-addr (joins,
// a refused join, a channel and a private message, a refused request, a
// disconnect and a resume, a logout, a client too slow) and checks, by
// scraping /metrics and parsing it with Prometheus's parser, that every
// metric moved by what the scenario did.
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := startChatd(t, "--metrics-addr", "127.0.0.1:0", "--message-rate", "0", "--queue-size", "64")
	url := metricsURL(t, d)
	before := scrapeMetrics(t, url)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		before.value(t, name) // the Go and process collectors are there
	}
	if before.value(t, "chatd_chat_channels") != 1 || before.value(t, "chatd_chat_sessions", "state=online") != 0 {
		t.Fatalf("a new chatd has %v channels and %v sessions online; want 1 and 0",
			before.value(t, "chatd_chat_channels"), before.value(t, "chatd_chat_sessions", "state=online"))
	}

	conn := dialGRPC(t, d.addr)
	var got atomic.Int64 // events every stream of the test received
	alice := openCounted(t, conn, "alice", "", 0, &got, 4096)
	alice.welcomed(t)
	bob := openCounted(t, conn, "bob", "", 0, &got, 4096)
	bob.welcomed(t)
	alice.until(t, "bob's join", func(ev *chatv1.ChatResponse) bool { return ev.GetUserJoined().GetUser().GetUsername() == "bob" })

	// A name taken, in another letter case.
	taken := openCounted(t, conn, "ALICE", "", 0, &got, 4096)
	if st := taken.end(t); st.Code() != codes.AlreadyExists {
		t.Fatalf("join as ALICE ended %v; want ALREADY_EXISTS", st)
	}

	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: "rust"}}})
	alice.until(t, "#rust joined", func(ev *chatv1.ChatResponse) bool { return ev.GetChannelJoined().GetChannel() == "rust" })
	alice.send(t, sendTo("hello all", "", ""))
	alice.message(t, "hello all")
	bob.message(t, "hello all")
	alice.send(t, sendTo("psst", "", "bob"))
	alice.message(t, "psst")
	bob.message(t, "psst")
	alice.send(t, sendTo("anyone?", "nowhere", ""))
	alice.until(t, "the refusal", func(ev *chatv1.ChatResponse) bool { return ev.GetRejected().GetCode() == int32(codes.NotFound) })

	// bob's connection drops; alice sees him leave; he is held.
	bob.cancel()
	alice.until(t, "bob's leave", func(ev *chatv1.ChatResponse) bool { return ev.GetUserLeft().GetUser().GetUsername() == "bob" })
	mid := scrapeMetrics(t, url)
	if on, held := mid.value(t, "chatd_chat_sessions", "state=online"), mid.value(t, "chatd_chat_sessions", "state=held"); on != 1 || held != 1 {
		t.Errorf("with bob disconnected: %v sessions online and %v held; want 1 and 1", on, held)
	}
	// bob's handler returns just after the hub has applied his leave.
	waitMetric(t, url, "chatd_streams", []string{"state=joined"}, 1)
	bob2 := openCounted(t, conn, "bob", bob.token, bob.seq, &got, 4096)
	if w := bob2.welcomed(t); w.GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("bob's resume: %v; want RECOVERY_COMPLETE", w.GetRecovery())
	}
	alice.until(t, "bob's return", func(ev *chatv1.ChatResponse) bool { return ev.GetUserJoined().GetResumed() })

	alice.send(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
	if st := alice.end(t); st.Code() != codes.OK {
		t.Fatalf("alice's logout ended %v; want OK", st)
	}
	bob2.until(t, "alice's logout", func(ev *chatv1.ChatResponse) bool {
		return ev.GetUserLeft().GetReason() == chatv1.LeaveReason_LEAVE_REASON_LOGOUT
	})

	// Every event the streams got was counted as a delivery, once: the
	// count catches up with what was received as soon as the writers have
	// counted their last batch.
	var after scrape
	deadline := time.Now().Add(waitTimeout)
	for {
		after = scrapeMetrics(t, url)
		delta := after.value(t, "chatd_deliveries_total") - before.value(t, "chatd_deliveries_total")
		if delta == float64(got.Load()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd_deliveries_total moved by %v; the streams received %d events", delta, got.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	moved := func(name string, want float64, labels ...string) {
		t.Helper()
		if d := after.value(t, name, labels...) - before.value(t, name, labels...); d != want {
			t.Errorf("%s%v moved by %v; want %v", name, labels, d, want)
		}
	}
	is := func(name string, want float64, labels ...string) {
		t.Helper()
		if v := after.value(t, name, labels...); v != want {
			t.Errorf("%s%v is %v; want %v", name, labels, v, want)
		}
	}
	moved("chatd_joins_total", 2, "result=new")
	moved("chatd_joins_total", 1, "result=resumed")
	moved("chatd_joins_total", 1, "result=refused")
	moved("chatd_resumes_total", 1, "outcome=complete")
	moved("chatd_resumes_total", 0, "outcome=expired")
	moved("chatd_refusals_total", 1, "grpc_code=AlreadyExists")
	moved("chatd_refusals_total", 1, "grpc_code=NotFound")
	moved("chatd_refusals_total", 0, "grpc_code=InvalidArgument")
	moved("chatd_messages_total", 1, "kind=channel")
	moved("chatd_messages_total", 1, "kind=private")
	moved("chatd_leaves_total", 1, "reason=disconnected")
	moved("chatd_leaves_total", 1, "reason=logout")
	moved("chatd_leaves_total", 0, "reason=too_slow")
	moved("chatd_slow_drops_total", 0)
	// The writers take every delivery in some batch: the depths they saw
	// add up to the deliveries.
	moved("chatd_queue_depth_sum", float64(got.Load()))
	// Commands: alice, bob, ALICE (refused by the hub) and bob's resume;
	// three sends (one refused); alice's channel join; bob's disconnect
	// and alice's logout.
	moved("chatd_hub_lock_held_seconds", 4, "command=join")
	moved("chatd_hub_lock_held_seconds", 3, "command=send")
	moved("chatd_hub_lock_held_seconds", 1, "command=join_channel")
	moved("chatd_hub_lock_held_seconds", 2, "command=leave")
	is("chatd_chat_sessions", 1, "state=online")
	is("chatd_chat_sessions", 0, "state=held")
	is("chatd_chat_channels", 2)
	is("chatd_streams", 1, "state=joined")
	is("chatd_streams", 0, "state=unjoined")
	// gRPC's own: four Chat streams, the refused one with its code.
	moved("grpc_server_started_total", 4, "grpc_method=Chat")
	moved("grpc_server_handled_total", 1, "grpc_method=Chat", "grpc_code=AlreadyExists")
	moved("grpc_server_handled_total", 1, "grpc_method=Chat", "grpc_code=OK")
	// Requests: alice's join, channel join, three sends and leave; the
	// joins of bob, ALICE and bob again.
	moved("grpc_server_msg_received_total", 9, "grpc_method=Chat")
	// Chat's events are counted in chatd_deliveries_total, not there.
	for _, m := range after["grpc_server_msg_sent_total"].GetMetric() {
		if hasLabels(m, []string{"grpc_method=Chat"}) {
			t.Errorf("grpc_server_msg_sent_total has a series for Chat: %v", m)
		}
	}
	after.value(t, "grpc_server_msg_sent_total", "grpc_method=ListUsers")

	// carol stops reading while bob talks: her windows and queue fill,
	// and she is dropped as too slow. bob waits for each message to come
	// back before the next, so that only carol falls behind.
	// A fixed window (no growth with the bandwidth estimate): what
	// chatd can send before carol reads is bounded.
	slowConn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slowConn.Close() })
	carol := openCounted(t, slowConn, "carol", "", 0, &got, 0)
	carol.welcomed(t) // and nothing more
	bob2.until(t, "carol's join", func(ev *chatv1.ChatResponse) bool { return ev.GetUserJoined().GetUser().GetUsername() == "carol" })
	long := strings.Repeat("x", 4000)
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("carol was not dropped as too slow after 1000 messages of 4000 bytes")
		}
		text := fmt.Sprintf("%d %s", i, long)
		bob2.send(t, sendTo(text, "", ""))
		ev := bob2.until(t, "message or carol's leave", func(ev *chatv1.ChatResponse) bool {
			return ev.GetMessage().GetText() == text || ev.GetUserLeft().GetUser().GetUsername() == "carol"
		})
		if ev.GetUserLeft() != nil {
			if r := ev.GetUserLeft().GetReason(); r != chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW {
				t.Fatalf("carol left with %v; want TOO_SLOW", r)
			}
			break
		}
	}
	// carol's handler counts her stream's end a moment after bob hears
	// of it.
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chatd_slow_drops_total", nil, 1},
		{"chatd_leaves_total", []string{"reason=too_slow"}, 1},
		{"chatd_joins_total", []string{"result=new"}, 1},
	} {
		waitMetric(t, url, c.name, c.labels, after.value(t, c.name, c.labels...)+c.want)
	}
	if held := scrapeMetrics(t, url).value(t, "chatd_chat_sessions", "state=held"); held != 1 {
		t.Errorf("after carol's drop: %v sessions held; want 1 (carol's, for a resume)", held)
	}

	// A token chatd does not know starts a new session; bob's token on a
	// new stream takes his session from the stream that has it.
	last := scrapeMetrics(t, url)
	dave := openCounted(t, conn, "dave", "bm90LWEtdG9rZW4", 7, &got, 4096)
	if w := dave.welcomed(t); w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE {
		t.Fatalf("dave's join with an unknown token: %v; want RECOVERY_INCOMPLETE", w.GetRecovery())
	}
	bob3 := openCounted(t, conn, "bob", bob2.token, bob2.seq, &got, 4096)
	bob3.welcomed(t)
	if st := bob2.end(t); st.Code() != codes.Aborted {
		t.Fatalf("bob's replaced stream ended %v; want ABORTED", st)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chatd_resumes_total", []string{"outcome=expired"}, 1},
		{"chatd_resumes_total", []string{"outcome=complete"}, 1},
		{"chatd_joins_total", []string{"result=new"}, 1},
		{"chatd_joins_total", []string{"result=resumed"}, 1},
		{"chatd_leaves_total", []string{"reason=replaced"}, 1},
	} {
		waitMetric(t, url, c.name, c.labels, last.value(t, c.name, c.labels...)+c.want)
	}
}
