package server

import (
	"context"
	"errors"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// This file counts what happens on this node, for Prometheus. Counting
// always happens, with the client library's atomic counters, whether or
// not anyone reads them; WithMetrics only shows them, through a registry
// of the caller's, never a global one.
//
// A cluster's nodes apply every command, so anything counted in apply code
// would be counted once per node: what is counted here is what this
// node's own streams and requests did, counted where the node handles
// them (service.go, the writer, the slow drop). The whole chat's state
// (sessions, channels, nodes) is read at scrape time instead, under
// names that say "chat" or "cluster", since summing those over nodes is
// wrong.
//
// On the hot path nothing looks up a label or takes a lock: counters with
// labels are resolved once, here, and a delivery costs one atomic add per
// batch the writer sends.

// WithMetrics registers the server's metrics with reg, for Prometheus:
// what this node's sessions did (joins, messages, deliveries, refusals,
// leaves, …), the chat's state (sessions, channels; in a cluster, nodes
// and the log), and gRPC's own server metrics. The server counts whether
// or not it has this option, at the cost of an atomic add here and there;
// with it, it also runs gRPC's metrics interceptors. reg is the caller's
// own registry, never the global one, so that servers side by side (in
// tests) each have theirs.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// Result labels of chatd_joins_total.
const (
	joinNew = iota
	joinResumed
	joinRefused
	joinResults
)

var joinResultNames = [joinResults]string{"new", "resumed", "refused"}

// Outcome labels of chatd_resumes_total.
const (
	resumeComplete   = iota // the session, with every event missed
	resumeIncomplete        // the session, from a fresh catch-up: events missed were no longer kept; labelled "snapshot"
	resumeExpired           // the token was unknown (expired, or the session ended): a new session
	resumeRefused           // the join was refused
	resumeOutcomes
)

var resumeOutcomeNames = [resumeOutcomes]string{"complete", "snapshot", "expired", "refused"}

// Kind labels of chatd_messages_total.
const (
	msgChannel = iota
	msgPrivate
	msgKinds
)

var msgKindNames = [msgKinds]string{"channel", "private"}

// Command labels of chatd_hub_lock_held_seconds.
const (
	cmdJoin = iota
	cmdLeave
	cmdSend
	cmdJoinChannel
	cmdLeaveChannel
	cmdHeartbeat
	cmdNodeStop
	cmdOther // deadlines falling due, entries that do not decode, commands of a newer chatd
	cmdKinds
)

var cmdKindNames = [cmdKinds]string{"join", "leave", "send", "join_channel", "leave_channel", "heartbeat", "node_stop", "other"}

// Reason labels of chatd_leaves_total.
var leaveReasonNames = []string{"logout", "disconnected", "too_slow", "server_shutdown", "replaced"}

// maxCode is the last gRPC code: chatd_refusals_total has a counter for
// each.
const maxCode = codes.Unauthenticated

// metrics is what a node counts. Every field is safe for concurrent use.
type metrics struct {
	joins      [joinResults]prometheus.Counter
	resumes    [resumeOutcomes]prometheus.Counter
	leaves     *prometheus.CounterVec // rare: looked up by label
	messages   [msgKinds]prometheus.Counter
	deliveries prometheus.Counter
	refusals   [maxCode + 1]prometheus.Counter
	slowDrops  prometheus.Counter
	queueDepth prometheus.Histogram
	lockHeld   [cmdKinds]prometheus.Observer
	applyLag   prometheus.Histogram

	own []prometheus.Collector // what to register
}

func newMetrics() *metrics {
	m := &metrics{}
	joins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_joins_total",
		Help: "Joins this node's streams sent, by result: new (a new session), resumed (an existing session taken back with its resume token) or refused.",
	}, []string{"result"})
	for i, name := range joinResultNames {
		m.joins[i] = joins.WithLabelValues(name)
	}
	resumes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_resumes_total",
		Help: "Joins with a resume token on this node, by outcome: complete (every event missed replayed), snapshot (the session back, but from a fresh snapshot: it missed more than was kept), expired (the token was unknown, its session over: a new session) or refused.",
	}, []string{"outcome"})
	for i, name := range resumeOutcomeNames {
		m.resumes[i] = resumes.WithLabelValues(name)
	}
	m.leaves = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_leaves_total",
		Help: "Streams of this node that ended after their join, by reason: logout, disconnected (the client went away, or this node was cut off from the cluster), too_slow (see chatd_slow_drops_total), server_shutdown, replaced (its session resumed on another stream).",
	}, []string{"reason"})
	for _, name := range leaveReasonNames {
		m.leaves.WithLabelValues(name)
	}
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_messages_total",
		Help: "Messages this node's sessions sent and the chat took, by kind: channel or private.",
	}, []string{"kind"})
	for i, name := range msgKindNames {
		m.messages[i] = messages.WithLabelValues(name)
	}
	m.deliveries = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatd_deliveries_total",
		Help: "Events this node wrote to its streams: messages, presence, snapshots and answers, one per stream that got it.",
	})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chatd_refusals_total",
		Help: "Requests this node refused, by the gRPC code the client got: joins (the stream's status), requests in a session (a rejected event, or the stream's end for too many of them) and list calls.",
	}, []string{"grpc_code"})
	for c := codes.OK + 1; c <= maxCode; c++ {
		m.refusals[c] = refusals.WithLabelValues(c.String())
	}
	m.slowDrops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chatd_slow_drops_total",
		Help: "Streams of this node dropped because their client fell more than --queue-size events (or --queue-bytes) behind.",
	})
	m.queueDepth = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chatd_queue_depth",
		Help: "Events waiting for a stream when its writer took them to send as one batch: how far behind this node's writers run. Sampled once per batch, not at each enqueue; the largest possible is --queue-size plus a snapshot.",
		// Up to the default --queue-size.
		Buckets: prometheus.ExponentialBuckets(1, 2, 11),
	})
	lockHeld := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chatd_hub_lock_held_seconds",
		Help: "How long applying one command held the hub's lock on this node, by command: everything else waits meanwhile. A send holds it while its event is queued for every member of its channel. In a cluster every node applies every node's commands.",
		// 1µs to 262ms.
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
	}, []string{"command"})
	for i, name := range cmdKindNames {
		m.lockHeld[i] = lockHeld.WithLabelValues(name)
	}
	m.applyLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "chatd_cluster_apply_lag_seconds",
		Help: "For the commands this node's clients asked for (joins, messages, channel changes, logouts): the time from appending one to the cluster's log to applying it here, by this node's clock.",
		// 250µs to 8s.
		Buckets: prometheus.ExponentialBuckets(250e-6, 2, 16),
	})
	m.own = []prometheus.Collector{joins, resumes, m.leaves, messages, m.deliveries, refusals, m.slowDrops, m.queueDepth, lockHeld}
	return m
}

// refused counts a refusal of a request, if err is one: an *Error that
// chatd answered with. A client that went away was not refused.
func (m *metrics) refused(err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	m.refusedCode(Status(err).Code())
}

// refusedCode counts a refusal answered with code.
func (m *metrics) refusedCode(c codes.Code) {
	if c > codes.OK && c <= maxCode {
		m.refusals[c].Inc()
	}
}

// left counts a stream's end after its join.
func (m *metrics) left(reason chatv1.LeaveReason, replaced bool) {
	if replaced {
		m.leaves.WithLabelValues("replaced").Inc()
		return
	}
	m.leaves.WithLabelValues(reasonName(reason)).Inc()
}

// joined counts a join, and what came of its resume token if it had one.
func (m *metrics) joined(s *stream, withToken bool, err error) {
	switch {
	case err != nil:
		m.joins[joinRefused].Inc()
		if withToken {
			m.resumes[resumeRefused].Inc()
		}
	case s.resumed:
		m.joins[joinResumed].Inc()
		if s.recovery == chatv1.Recovery_RECOVERY_COMPLETE {
			m.resumes[resumeComplete].Inc()
		} else {
			m.resumes[resumeIncomplete].Inc()
		}
	default:
		m.joins[joinNew].Inc()
		if withToken {
			m.resumes[resumeExpired].Inc()
		}
	}
}

// lockTime records how long a command of kind held the hub's lock, from
// start (chatd_hub_lock_held_seconds).
func (m *metrics) lockTime(kind int, start time.Time) {
	m.lockHeld[kind].Observe(time.Since(start).Seconds())
}

// commandKind is cmd's label in chatd_hub_lock_held_seconds.
func commandKind(cmd *clusterv1.Command) int {
	switch cmd.GetAction().(type) {
	case *clusterv1.Command_Join:
		return cmdJoin
	case *clusterv1.Command_Leave:
		return cmdLeave
	case *clusterv1.Command_Send:
		return cmdSend
	case *clusterv1.Command_JoinChannel:
		return cmdJoinChannel
	case *clusterv1.Command_LeaveChannel:
		return cmdLeaveChannel
	case *clusterv1.Command_Heartbeat:
		return cmdHeartbeat
	case *clusterv1.Command_NodeStop:
		return cmdNodeStop
	}
	return cmdOther
}

// stateCollector reads the chat's state, and this node's streams, at
// scrape time.
type stateCollector struct {
	svc *service
	cl  *Cluster

	sessions, channels, streams         *prometheus.Desc
	nodes, position, connected, serving *prometheus.Desc
}

func newStateCollector(svc *service, cl *Cluster) *stateCollector {
	const whole = " In a cluster every node reports the whole chat: take one node's figure (or max), never the sum over nodes."
	return &stateCollector{
		svc: svc,
		cl:  cl,
		sessions: prometheus.NewDesc("chatd_chat_sessions",
			"Sessions of the whole chat, by state: online (a stream is attached, on any node) or held (no stream: kept for a resume for up to --resume-grace, after a disconnect or while its node restarts)."+whole,
			[]string{"state"}, nil),
		channels: prometheus.NewDesc("chatd_chat_channels",
			"Channels of the whole chat, general included, empty ones too (they are dropped only to make room)."+whole, nil, nil),
		streams: prometheus.NewDesc("chatd_streams",
			"Chat streams open on this node, by state: unjoined (waiting for the client's join) or joined (a session's stream).",
			[]string{"state"}, nil),
		nodes: prometheus.NewDesc("chatd_cluster_nodes",
			"Nodes of the cluster this node has heard from within --node-timeout, itself included, as the log shows them."+whole, nil, nil),
		position: prometheus.NewDesc("chatd_cluster_log_position",
			"Position in the cluster's log of the last entry this node applied: nodes that are caught up show the same.", nil, nil),
		connected: prometheus.NewDesc("chatd_cluster_nats_connected",
			"1 while this node is connected to NATS, 0 while not.", nil, nil),
		serving: prometheus.NewDesc("chatd_cluster_serving",
			"1 while this node takes new sessions (caught up with the log, and NATS within reach), 0 while not: as its health service says.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sessions
	ch <- c.channels
	ch <- c.streams
	ch <- c.nodes
	ch <- c.position
	ch <- c.connected
	ch <- c.serving
}

// Collect implements prometheus.Collector. It holds the hub's lock only
// to read a few counts: none of it walks the members.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.svc.hub
	h.mu.Lock()
	parked, held, all := len(h.parked), h.held, len(h.byToken)
	channels, nodes := len(h.channels), len(h.nodes)
	position := c.cl.applied
	h.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.sessions, float64(all-parked-held), "online")
	gauge(c.sessions, float64(parked+held), "held")
	gauge(c.channels, float64(channels))
	joined := c.svc.joined.Load()
	gauge(c.streams, float64(c.svc.room.Len()), "unjoined")
	gauge(c.streams, float64(joined), "joined")
	gauge(c.nodes, float64(nodes))
	gauge(c.position, float64(position))
	gauge(c.connected, bool01(c.cl.log.Connected()))
	gauge(c.serving, bool01(c.cl.Serving()))
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// gRPC's metrics interceptor counts every message a stream sends in
// grpc_server_msg_sent_total, at the cost of a label lookup (three strings
// hashed, a read lock, a slice allocated) per message: for the chat's
// events, that cost about 20% more CPU per delivery in chatbench (see
// docs/PERFORMANCE.md). So the chat's writer sends on the stream beneath
// the interceptor's (see writerStream), and counts its events itself, per
// batch, in chatd_deliveries_total; grpc_server_msg_sent_total counts the
// other streams' messages, and leaves Chat out.

// rawStreamKey keeps, in a stream's context, the stream beneath gRPC's
// metrics interceptor.
type rawStreamKey struct{}

// keepRaw is a stream interceptor, outside gRPC's metrics one, that puts
// the stream it is given in the stream's context.
func keepRaw(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &rawCarrier{ServerStream: ss, ctx: context.WithValue(ss.Context(), rawStreamKey{}, ss)})
}

type rawCarrier struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *rawCarrier) Context() context.Context { return s.ctx }

// writerStream returns the stream the chat's writer sends on: the one
// beneath gRPC's metrics interceptor, if there is one.
func writerStream(stream grpc.ServerStream) grpc.ServerStream {
	if raw, ok := stream.Context().Value(rawStreamKey{}).(grpc.ServerStream); ok {
		return raw
	}
	return stream
}

// withoutChatSent is gRPC's server metrics without the series of
// grpc_server_msg_sent_total for Chat, which would stay at 0 (see
// writerStream): a dashboard should not take it for a count.
type withoutChatSent struct{ *grpcprom.ServerMetrics }

func (c withoutChatSent) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		c.ServerMetrics.Collect(all)
		close(all)
	}()
	for m := range all {
		if !isChatSent(m) {
			ch <- m
		}
	}
}

func isChatSent(m prometheus.Metric) bool {
	if !strings.Contains(m.Desc().String(), `"grpc_server_msg_sent_total"`) {
		return false
	}
	var d dto.Metric
	if m.Write(&d) != nil {
		return false
	}
	for _, l := range d.GetLabel() {
		if l.GetName() == "grpc_method" && l.GetValue() == "Chat" {
			return true
		}
	}
	return false
}

// registerMetrics registers what s counts with o's registry, if any.
func (s *Server) registerMetrics(o *options) error {
	if o.reg == nil {
		return nil
	}
	met := s.svc.hub.met
	cs := append([]prometheus.Collector{newStateCollector(s.svc, s.cl), withoutChatSent{o.grpc}, met.applyLag}, met.own...)
	for _, c := range cs {
		if err := o.reg.Register(c); err != nil {
			return err
		}
	}
	// Every method's series from the start, at 0, so that rates and
	// dashboards have them before the first call.
	o.grpc.InitializeMetrics(s.grpc)
	return nil
}
