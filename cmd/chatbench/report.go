package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one invocation measured. It is printed as text and
// as one JSON line; figures that could not be measured are null, not 0.
type report struct {
	Members   int      `json:"members"`
	Devices   int      `json:"devices"`  // sessions per member: 1, or --devices
	Sessions  int      `json:"sessions"` // members × devices: the per-session figures are over these
	Senders   int      `json:"senders"`
	Mode      string   `json:"mode"`              // "saturated", "rate", "join-only" or "typing-only" (--senders 0 with --typers)
	Window    *int     `json:"window"`            // saturated mode
	Rate      *float64 `json:"rate_per_s"`        // rate mode: messages per second, in total
	DurationS *float64 `json:"duration_s"`        // how long senders (and typers) sent
	Conns     int      `json:"conns"`             // 0: one gRPC connection per member
	Transport string   `json:"transport"`         // how members reach chatd: "grpc" or "grpc-web" (the page's way, through the gateway)
	ClientBDP bool     `json:"client_bdp"`        // gRPC members use grpc-go's default flow control, not fixed windows
	Channels  int      `json:"channels"`          // 0: everyone in general; else members spread over this many channels
	Chatd     *result  `json:"chatd"`             // never null in a printed report
	Baseline  *result  `json:"baseline"`          // null with --baseline=false
	Ratio     *float64 `json:"chatd_vs_baseline"` // chatd's deliveries/s over the baseline's
	OK        bool     `json:"ok"`                // no loss, duplicate, gap, error or refusal

	// Typers: members that type in their channel during the send phase,
	// a request every typing_every_s in bursts of typing_for_s with
	// typing_pause_s between them (0: one burst); null without typers.
	Typers       int      `json:"typers"`
	TypingEveryS *float64 `json:"typing_every_s"`
	TypingForS   *float64 `json:"typing_for_s"`
	TypingPauseS *float64 `json:"typing_pause_s"`
}

// result is what one run against one server, or one cluster, measured.
// For a cluster, the server_ figures are the totals over its chatd nodes,
// and nodes and nats give each process's.
type result struct {
	Server    string `json:"server"`               // what was measured
	ServerPID int    `json:"server_pid,omitempty"` // one server: whose CPU and memory are reported

	Joined  int     `json:"joined"`        // sessions welcomed: every device of every member
	JoinS   float64 `json:"join_s"`        // first join sent → last welcome received
	SettleS float64 `json:"join_settle_s"` // → every session has received every member's join

	Sent               uint64   `json:"sent"`
	Rejected           uint64   `json:"rejected"`            // sends the server refused
	StopRefused        uint64   `json:"refused_stopping"`    // of those, refused by a node stopping (--restart-node): told, not sent, no failure
	Deliveries         uint64   `json:"deliveries"`          // messages received, summed over sessions (every device of every member)
	ExpectedDeliveries uint64   `json:"expected_deliveries"` // what sessions still online should have received
	SendS              float64  `json:"send_s"`              // first send → last delivery
	DeliveriesPerS     *float64 `json:"deliveries_per_s"`
	LatencyMS          *latency `json:"latency_ms"` // send → receipt, over every delivery
	DrainTimedOut      bool     `json:"drain_timed_out"`

	Lost       uint64 `json:"lost"`       // expected but never received (slow-dropped members excluded)
	Duplicated uint64 `json:"duplicated"` // received again, or out of order
	SeqGaps    uint64 `json:"seq_gaps"`   // events whose seq did not follow the previous one
	Foreign    uint64 `json:"foreign"`    // messages chatbench did not send (someone else chatting)
	// Misdelivered: with --channels, messages a member got from a sender
	// in another channel than its own.
	Misdelivered uint64 `json:"misdelivered"`
	SlowDropped  int    `json:"slow_dropped"` // sessions the server dropped as too slow
	Errors       int    `json:"errors"`       // sessions that ended otherwise before the end
	FirstError   string `json:"first_error,omitempty"`

	// Typing (--typers). Typing events are unnumbered and none is a
	// delivery; chatd sends one to a conversation only when what it shows
	// changes, and past 3 typers it shows "several" and sends nothing for
	// changes among them.
	TypingSent     uint64 `json:"typing_sent"`     // typing requests the typers sent, stops included
	TypingStops    uint64 `json:"typing_stops"`    // of them, stopped
	TypingRejected uint64 `json:"typing_rejected"` // typing requests the server refused
	TypingEvents   uint64 `json:"typing_events"`   // typing events received, summed over sessions
	// TypingShownAtEnd: sessions still shown someone typing after every
	// typer had stopped.
	TypingShownAtEnd int `json:"typing_shown_at_end"`

	ServerJoinCPUS         *float64 `json:"server_join_cpu_s"`                   // joins, until every member has every join
	ServerCPUS             *float64 `json:"server_cpu_s"`                        // during the send phase and the drain
	PhaseS                 float64  `json:"phase_s"`                             // how long server_cpu_s was measured over: the send phase and the drain
	ServerCPUPerS          *float64 `json:"server_cpu_s_per_s"`                  // server_cpu_s over phase_s: what a load costs when it has no deliveries to count (typing)
	ServerCPUPerMillion    *float64 `json:"server_cpu_s_per_million_deliveries"` // a delivery is one message to one session (device)
	ServerRSSBeforeMiB     *float64 `json:"server_rss_before_mib"`               // before the joins
	ServerRSSJoinedMiB     *float64 `json:"server_rss_joined_mib"`               // every session joined and idle
	ServerMemPerSessionKiB *float64 `json:"server_mem_per_session_kib"`          // the RSS's growth over joined: per device, not per member
	ChatbenchCPUS          *float64 `json:"chatbench_cpu_s"`                     // chatbench's own process during the send phase
	Unavailable            []string `json:"unavailable,omitempty"`

	Nodes   []*nodeResult  `json:"nodes,omitempty"`   // a cluster: each chatd node's figures, in --server order
	NATS    *natsResult    `json:"nats,omitempty"`    // the nats-server chatbench started for a cluster
	Restart *restartResult `json:"restart,omitempty"` // --restart-node: what restarting it did

	Problems []string `json:"problems,omitempty"` // why this run is not OK

	nodes int // how many chatd nodes the members were spread over
}

// latency is a distribution in milliseconds.
type latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// unavailable notes a figure that could not be measured, and why. Figures
// missing for the same reason (no --server-pid) share one note, so that
// the advice is given once.
func (r *result) unavailable(what string, err error) {
	why := ": " + err.Error()
	for i, u := range r.Unavailable {
		if whats, ok := strings.CutSuffix(u, why); ok {
			r.Unavailable[i] = whats + " and " + what + why
			return
		}
	}
	r.Unavailable = append(r.Unavailable, what+why)
}

// account adds up the members' counters once their receive goroutines have
// ended, and says what is wrong.
func (r *result) account(ms []*member, senders int) {
	// What each sender's messages should have reached: all it sent, less
	// what the server refused, less what was in flight when it moved and
	// never came back (see move.go). A sender dropped as too slow may have
	// sent messages the server never took, and one whose move never
	// settled may have had messages in flight that the chat did not take;
	// for them, what their best-served member got is the most that can be
	// expected.
	want := make([]uint64, senders)
	for s, m := range ms[:senders] {
		want[s] = m.snd.sent.Load() - m.snd.rejected.Load() - m.snd.unconfirmed.Load()
		r.Sent += m.snd.sent.Load()
		r.Rejected += m.snd.rejected.Load()
		r.StopRefused += m.snd.stopRefused.Load()
		if m.early && errors.Is(m.endErr, errSlowDropped) || m.snd.unsettled.Load() {
			want[s] = 0
			for _, o := range ms {
				want[s] = max(want[s], o.got[s])
			}
		}
		if m.snd.sendErr != nil {
			r.fail(fmt.Errorf("%s could not send: %w", m.name, m.snd.sendErr))
		}
	}
	var h histogram
	var rejection, typingRejection string
	for _, m := range ms {
		h.merge(m.hist)
		r.TypingEvents += m.typingEvents.Load()
		if t := m.typ; t != nil {
			r.TypingSent += t.sent.Load()
			r.TypingStops += t.stops.Load()
			r.TypingRejected += t.rejected.Load()
			if typingRejection == "" {
				typingRejection = m.rejected
			}
			if t.err != nil {
				r.fail(fmt.Errorf("%s could not type: %w", m, t.err))
			}
		}
		if m.typingShown.Load() && !m.early {
			r.TypingShownAtEnd++
		}
		r.Deliveries += m.received.Load()
		r.Duplicated += m.dup
		r.SeqGaps += m.seqGaps
		r.Foreign += m.foreign
		r.Misdelivered += m.misdelivered
		if rejection == "" && m.snd != nil {
			rejection = m.rejected
		}
		if m.early {
			if errors.Is(m.endErr, errSlowDropped) {
				r.SlowDropped++
			} else if m.endErr != nil {
				r.fail(fmt.Errorf("%s: session ended: %w", m, m.endErr))
			}
			continue
		}
		for s, w := range want {
			if ms[s].group != m.group {
				continue // in another channel: not for m
			}
			r.ExpectedDeliveries += w
			r.Lost += w - min(w, m.got[s])
		}
	}
	// A message that reached members but never came back to its own
	// sender, though the sender's session was resumed complete, is lost
	// to the sender: counted once, by the member that got the most.
	var unechoed uint64
	for s, m := range ms[:senders] {
		if m.early || m.snd.unsettled.Load() {
			continue
		}
		var most uint64
		for _, o := range ms {
			if !o.early {
				most = max(most, o.got[s])
			}
		}
		unechoed += most - min(most, want[s])
	}
	r.Lost += unechoed
	if h.n > 0 {
		r.LatencyMS = &latency{P50: millis(h.quantile(0.50)), P99: millis(h.quantile(0.99)), P999: millis(h.quantile(0.999)), Max: millis(h.quantile(1))}
	}
	if r.SendS > 0 && r.Deliveries > 0 {
		r.DeliveriesPerS = ptr(float64(r.Deliveries) / r.SendS)
	}
	r.ServerCPUPerMillion = perMillion(r.ServerCPUS, r.Deliveries)
	if r.ServerCPUS != nil && r.PhaseS > 0 {
		r.ServerCPUPerS = ptr(*r.ServerCPUS / r.PhaseS)
	}
	r.accountNodes(ms)

	if r.Lost > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages lost (of %d expected)", r.Lost, r.ExpectedDeliveries))
	}
	if unechoed > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of the messages lost reached other members but never came back to their sender", unechoed))
	}
	if r.Duplicated > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages duplicated or out of order", r.Duplicated))
	}
	if r.Misdelivered > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages reached members of another channel than theirs", r.Misdelivered))
	}
	if r.SeqGaps > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d gaps in the event seq", r.SeqGaps))
	}
	if r.Rejected > r.StopRefused {
		r.Problems = append(r.Problems, fmt.Sprintf("the server refused %d messages (%q): run chatd with --message-rate 0", r.Rejected-r.StopRefused, rejection))
	}
	if r.TypingRejected > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the server refused %d typing requests (%q)", r.TypingRejected, typingRejection))
	}
	if r.TypingSent > 0 && r.TypingEvents == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d typing requests sent, and no session got a typing event", r.TypingSent))
	}
	if r.TypingShownAtEnd > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d sessions were still shown someone typing after every typer had stopped", r.TypingShownAtEnd))
	}
	if r.Errors > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d sessions failed, the first with: %s", r.Errors, r.FirstError))
	}
}

func (r *result) fail(err error) {
	if r.Errors == 0 {
		r.FirstError = err.Error()
	}
	r.Errors++
}

// finish works out the ratio and whether the whole invocation is OK.
func (rep *report) finish() {
	rep.OK = rep.Chatd != nil && len(rep.Chatd.Problems) == 0
	if rep.Baseline != nil {
		rep.OK = rep.OK && len(rep.Baseline.Problems) == 0
		if c, b := rep.Chatd.DeliveriesPerS, rep.Baseline.DeliveriesPerS; c != nil && b != nil && *b > 0 {
			rep.Ratio = ptr(*c / *b)
		}
	}
}

// problems lists what went wrong, for the error chatbench exits with.
func (rep *report) problems() []string {
	var out []string
	for _, r := range []*result{rep.Chatd, rep.Baseline} {
		if r == nil {
			continue
		}
		for _, p := range r.Problems {
			out = append(out, r.Server+": "+p)
		}
	}
	return out
}

// writeJSON writes the report as one line, with nothing before it on the
// line, so that `chatbench … | tail -1 | jq` works.
func (rep *report) writeJSON(w io.Writer) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeText writes the report for people: a column per server.
func (rep *report) writeText(w io.Writer) {
	members := fmt.Sprintf("%d members", rep.Members)
	if rep.Devices > 1 {
		members += fmt.Sprintf(" on %d devices each (%d sessions)", rep.Devices, rep.Sessions)
	}
	switch rep.Mode {
	case "saturated":
		fmt.Fprintf(w, "%s, %d senders, saturated (window %d per sender) for %gs\n", members, rep.Senders, *rep.Window, *rep.DurationS)
	case "rate":
		fmt.Fprintf(w, "%s, %d senders, %g messages/s in total for %gs\n", members, rep.Senders, *rep.Rate, *rep.DurationS)
	case "typing-only":
		fmt.Fprintf(w, "%s, nobody sending, %d typing for %gs\n", members, rep.Typers, *rep.DurationS)
	default:
		fmt.Fprintf(w, "%s joining, nobody sending\n", members)
	}
	how := "native gRPC, fixed flow-control windows"
	switch {
	case rep.Transport == "grpc-web":
		how = "grpc-web over websockets, through the gateway"
	case rep.ClientBDP:
		how = "native gRPC, grpc-go's default flow control (BDP pings)"
	}
	where := "all in general"
	if rep.Channels > 0 {
		where = fmt.Sprintf("spread over %d channels besides general, each message to its channel only", rep.Channels)
	}
	fmt.Fprintf(w, "members: %s; %s\n", how, where)
	if rep.Typers > 0 {
		bursts := fmt.Sprintf("in bursts of %gs, each ended by a stop, %gs apart", *rep.TypingForS, *rep.TypingPauseS)
		if *rep.TypingPauseS == 0 {
			bursts = "for the whole phase, then a stop"
		}
		fmt.Fprintf(w, "typers: %d, each typing in its channel every %gs %s\n", rep.Typers, *rep.TypingEveryS, bursts)
	}
	rs := []*result{rep.Chatd}
	if rep.Baseline != nil {
		rs = append(rs, rep.Baseline)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label string, f func(r *result) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	row("", func(r *result) string { return r.Server })
	row("sessions joined", func(r *result) string { return fmt.Sprint(r.Joined) })
	row("all joined in", func(r *result) string { return fmt.Sprintf("%.3f s", r.JoinS) })
	row("every join received in", func(r *result) string { return fmt.Sprintf("%.3f s", r.SettleS) })
	row("server CPU for the joins", func(r *result) string { return num(r.ServerJoinCPUS, "%.2f s") })
	if rep.Senders > 0 {
		row("messages sent", func(r *result) string { return fmt.Sprint(r.Sent) })
		row("deliveries", func(r *result) string { return fmt.Sprint(r.Deliveries) })
		row("deliveries/s", func(r *result) string { return num(r.DeliveriesPerS, "%.0f") })
		lat := func(f func(l *latency) float64) func(r *result) string {
			return func(r *result) string {
				if r.LatencyMS == nil {
					return "n/a"
				}
				return fmt.Sprintf("%.3f ms", f(r.LatencyMS))
			}
		}
		row("latency p50", lat(func(l *latency) float64 { return l.P50 }))
		row("latency p99", lat(func(l *latency) float64 { return l.P99 }))
		row("latency p99.9", lat(func(l *latency) float64 { return l.P999 }))
		row("latency max", lat(func(l *latency) float64 { return l.Max }))
		row("lost", func(r *result) string { return fmt.Sprint(r.Lost) })
		row("duplicated", func(r *result) string { return fmt.Sprint(r.Duplicated) })
		if rep.Channels > 0 {
			row("to another channel", func(r *result) string { return fmt.Sprint(r.Misdelivered) })
		}
	}
	if rep.Typers > 0 {
		row("typing requests sent (stops)", func(r *result) string { return fmt.Sprintf("%d (%d)", r.TypingSent, r.TypingStops) })
		row("typing events received", func(r *result) string { return fmt.Sprint(r.TypingEvents) })
	}
	if rep.DurationS != nil {
		row("server CPU", func(r *result) string {
			if r.ServerCPUS == nil {
				return "n/a"
			}
			return fmt.Sprintf("%.2f s in %.1f s", *r.ServerCPUS, r.PhaseS)
		})
		row("server CPU per second", func(r *result) string { return num(r.ServerCPUPerS, "%.3f s") })
		if rep.Senders > 0 {
			row("server CPU per 1M deliveries", func(r *result) string { return num(r.ServerCPUPerMillion, "%.2f s") })
		}
		row("chatbench CPU", func(r *result) string { return num(r.ChatbenchCPUS, "%.2f s") })
	}
	row("dropped as too slow", func(r *result) string { return fmt.Sprint(r.SlowDropped) })
	row("server RSS before joins", func(r *result) string { return num(r.ServerRSSBeforeMiB, "%.1f MiB") })
	row("server RSS joined, idle", func(r *result) string { return num(r.ServerRSSJoinedMiB, "%.1f MiB") })
	row("server memory per session", func(r *result) string { return num(r.ServerMemPerSessionKiB, "%.1f KiB") })
	tw.Flush()
	if len(rep.Chatd.Nodes) > 0 {
		fmt.Fprintf(w, "%s, node by node (server figures above are the nodes' totals; nats-server's CPU is not in them):\n", rep.Chatd.Server)
		writeNodes(w, rep.Chatd)
	}
	if r := rep.Chatd.Restart; r != nil {
		writeRestart(w, r)
	}
	if rep.Ratio != nil {
		fmt.Fprintf(w, "chatd delivers %.2f× the raw TCP baseline's deliveries/s\n", *rep.Ratio)
	}
	if rep.Baseline != nil {
		fmt.Fprintln(w, "(the baseline server runs inside chatbench: its CPU and memory are not measured apart; chatbench CPU includes it)")
	}
	for _, r := range rs {
		for _, u := range r.Unavailable {
			fmt.Fprintf(w, "%s: unavailable: %s\n", r.Server, u)
		}
	}
	switch {
	case rep.OK && rep.Chatd.Restart != nil:
		fmt.Fprintln(w, "OK: no message lost or duplicated, every member back with a complete resume, nobody seen to leave or come back")
	case rep.OK && rep.Typers > 0:
		fmt.Fprintln(w, "OK: no message lost or duplicated, no typing refused, nobody shown typing once the typers stopped")
	case rep.OK:
		fmt.Fprintln(w, "OK: no message lost or duplicated")
	}
	for _, p := range rep.problems() {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}

func num(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// summary is the one-line error for a report that is not OK.
func (rep *report) summary() error {
	return errors.New(strings.Join(rep.problems(), "; "))
}
