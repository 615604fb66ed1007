package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"github.com/chatd/chatd/internal/recvwindow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Server is a ready-to-serve gRPC server carrying the chat service, its
// admin service, the standard health service and server reflection.
type Server struct {
	grpc   *grpc.Server
	svc    *service
	admin  *adminService
	lim    *admission.Limiter
	health *health.Server
	cl     *Cluster // the node's part in the chat's log: its own, or a cluster's
}

// New builds the server of a node that is a chat of its own, kept in
// memory (a restart clears it), from cfg and opts (TLS, sign-in,
// metrics), or says which settings are wrong. It is running once
// returned; Shutdown stops it. logger gets a line for every join, leave and
// refusal: in production, give it a rate-limited handler (see
// internal/ratelog), or clients decide how much it writes. For a chat
// kept on disk, or a node of a cluster, see NewCluster.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := newOptions(opts)
	lim := admission.New(cfg.PerClient, logger)
	h := newSoloHub(cfg, lim)
	s := newServer(cfg, h, lim, logger, o.grpcOptions(cfg)...)
	s.cl = h.cl
	s.setAuth(o)
	if err := s.registerMetrics(o); err != nil {
		return nil, err
	}
	return s, nil
}

// NewCluster builds a server that is one node of the cluster whose log is
// log, with opts as New. Its Cluster must be run (see [Server.Cluster])
// for it to serve: until it has caught up with the log, health says
// NOT_SERVING and joins are refused with UNAVAILABLE.
func NewCluster(cfg Config, ccfg ClusterConfig, log Log, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ccfg.Validate(); err != nil {
		return nil, err
	}
	o := newOptions(opts)
	lim := admission.New(cfg.PerClient, logger)
	h, cl := newClusterHub(cfg, ccfg, log, lim, logger)
	h.archive = o.archive
	s := newServer(cfg, h, lim, logger, o.grpcOptions(cfg)...)
	s.setAuth(o)
	s.cl = cl
	if err := s.registerMetrics(o); err != nil {
		return nil, err
	}
	s.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	cl.onStatus = func(serving bool) {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if serving {
			st = healthpb.HealthCheckResponse_SERVING
		}
		s.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, st)
		s.health.SetServingStatus("", st)
	}
	return s, nil
}

// newServer builds the server; extra are more gRPC options. They come
// first, so that the metrics' interceptors are the outermost and see
// every call, whatever interceptors chained after them do with it.
func newServer(cfg Config, hub *hub, lim *admission.Limiter, logger *slog.Logger, extra ...grpc.ServerOption) *Server {
	// The receive window of a stream bounds what a client can make the
	// server buffer for it unread: a stream is not read while its
	// catch-up waits (see readLoop). A fixed window also turns off gRPC's
	// window growth, which a client could push to 16 MiB a stream.
	const window = 64 << 10
	svc := newService(cfg, hub, lim, logger)
	g := grpc.NewServer(append(extra,
		// Calls that would be refused for their address's limits are
		// refused before gRPC spends a goroutine on them (see refuse.go).
		grpc.InTapHandle(svc.tap),
		grpc.ForceServerCodecV2(newWireCodec()),
		// The innermost interceptor: the gateway's grpc-web streams are
		// read only as far as their handlers receive (see
		// internal/recvwindow), as the window below does for native ones.
		grpc.ChainStreamInterceptor(recvwindow.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		// HPACK lets a client repeat one table entry with a byte per
		// header on the wire, and gRPC decodes every one (base64 too, for
		// -bin keys) and keeps them for the stream's life: bound what one
		// stream's metadata may decode to, and how many streams one
		// connection may have.
		grpc.MaxHeaderListSize(uint32(cfg.MaxHeaderBytes)),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxStreamsPerConn)),
		grpc.InitialWindowSize(window),
		grpc.InitialConnWindowSize(window),
		// Server pings find peers that vanished without closing (network
		// cut, machine gone); their streams' contexts are then cancelled.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinClientPing,
			PermitWithoutStream: true,
		}),
	)...)
	s := &Server{grpc: g, svc: svc, lim: lim, health: health.NewServer()}
	chatv1.RegisterChatServiceServer(g, s.svc)
	s.admin = &adminService{svc: svc, logger: logger.With("logger", "admin")}
	chatv1.RegisterAdminServiceServer(g, s.admin)
	healthpb.RegisterHealthServer(g, s.health)
	s.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(g)
	return s
}

// setAuth gives the service and o's sign-in interceptors, if any, to each
// other.
func (s *Server) setAuth(o *options) {
	s.svc.auth = o.auth
	s.admin.tokenHash, s.admin.verifier = o.adminToken, o.auth
	if o.authn != nil {
		o.authn.svc = s.svc
	}
}

// Serving reports whether the server takes new sessions, as its health
// service says: not once it is shutting down, nor while a cluster node has
// not caught up with the cluster's log or cannot reach it.
func (s *Server) Serving() bool {
	if s.svc.hub.isClosing() {
		return false
	}
	return s.cl.Serving()
}

// Cluster returns the node's part in the chat's log.
func (s *Server) Cluster() *Cluster { return s.cl }

// GRPCServer returns the underlying gRPC server, for gateways that serve
// the same services another way.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Users returns who is online now, as ListUsers answers.
func (s *Server) Users() []*chatv1.User { return s.svc.hub.Users() }

// Stop stops the server at once, as a crash would end it: every connection
// closed, the hub shut, nobody told (not the chat's other nodes either).
// Shutdown is the graceful way.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.svc.hub.Shutdown()
}

// Limiter counts what each client address holds and does, against the
// server's [ClientLimits]; a server has one, [Server.Admission]. Its
// methods are safe for concurrent use. A front that serves the same
// clients another way (chatd's gateway serves browsers over HTTP) uses
// two of them:
//   - Listen(lis) returns lis with its connections counted against
//     MaxConns, as [Server.Serve]'s are;
//   - ClientAddr(remote, xff) returns the client's address for a request
//     from remote carrying the X-Forwarded-For values xff: remote itself,
//     unless remote is one of the TrustedProxies.
//
// The front then tells the server who the client is, with
// [NewClientContext]. (Limiter is chatd's internal admission.Limiter,
// under this package's name.)
type Limiter = admission.Limiter

// Admission returns what counts each client address's connections,
// sessions and calls, for a front that serves the same clients another
// way (see [Limiter]), so that both count together.
func (s *Server) Admission() *Limiter { return s.lim }

// NewClientContext returns ctx carrying client, the address a front
// worked out for a request (Limiter.ClientAddr). A call that the server
// serves with that context (through [Server.GRPCServer]'s ServeHTTP, say)
// counts against client's limits, not against the address it came from,
// which is the front's.
func NewClientContext(ctx context.Context, client netip.Addr) context.Context {
	return admission.NewContext(ctx, client)
}

// Serve accepts connections on lis until Shutdown, refusing those past
// the limit on connections per client address; see grpc.Server.Serve.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(s.lim.Listen(lis)) }

// Shutdown stops accepting streams, ends every session with UNAVAILABLE
// and waits for the handlers to return. If ctx ends first, it closes every
// connection at once.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown() // health checks now answer NOT_SERVING
	// The chat holds this node's users (and its streams end with
	// UNAVAILABLE) while their clients come back: to another node, or
	// to this one once it is back with its state.
	s.cl.Stop(ctx)
	// GracefulStop waits for running streams, and chat streams only end
	// when told to: end them all first, so that every session ends with
	// UNAVAILABLE and none is seen to leave as its connection is drained.
	// Joins that race in are refused by the closed hub.
	s.svc.hub.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
}
