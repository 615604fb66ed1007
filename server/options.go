package server

import (
	"context"
	"crypto/tls"
	"strings"

	"github.com/chatd/chatd/internal/auth"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
)

// Option changes how [New] and [NewCluster] build a server, besides its
// limits: TLS, sign-in, metrics.
type Option func(*options)

type options struct {
	tls   *tls.Config
	auth  *auth.Verifier
	reg   prometheus.Registerer
	grpc  *grpcprom.ServerMetrics // made by grpcOptions if reg is set
	authn *authenticator          // made by grpcOptions if auth is set

	archive Archive
}

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

func newOptions(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// grpcOptions returns the gRPC server options the options call for. The
// metrics' interceptors come first, outermost, so that calls that sign-in
// refuses are counted too.
func (o *options) grpcOptions(cfg Config) []grpc.ServerOption {
	var g []grpc.ServerOption
	if o.reg != nil {
		o.grpc = grpcprom.NewServerMetrics()
		g = append(g,
			grpc.ChainUnaryInterceptor(o.grpc.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(keepRaw, o.grpc.StreamServerInterceptor()))
	}
	return append(g, o.securityOptions(cfg)...)
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
