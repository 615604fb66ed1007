package server

import (
	"context"
	"log/slog"
	"net"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Server is a ready-to-serve gRPC server carrying the chat service, the
// standard health service and server reflection.
type Server struct {
	grpc   *grpc.Server
	svc    *Service
	health *health.Server
}

// New builds a server from cfg, or says which settings are wrong.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := grpc.NewServer(
		grpc.ForceServerCodecV2(newWireCodec()),
		// Most sessions are idle most of the time: give a connection's
		// 32 KiB write buffer back to a pool between writes instead of
		// keeping one per connection for ever.
		grpc.SharedWriteBuffer(true),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
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
	)
	s := &Server{grpc: g, svc: NewService(cfg, log), health: health.NewServer()}
	chatv1.RegisterChatServiceServer(g, s.svc)
	healthpb.RegisterHealthServer(g, s.health)
	s.health.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(g)
	return s, nil
}

// GRPCServer returns the underlying gRPC server, for gateways that serve
// the same services another way.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// Service returns the chat service.
func (s *Server) Service() *Service { return s.svc }

// Serve accepts connections on lis until Shutdown; see grpc.Server.Serve.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(lis) }

// Shutdown stops accepting streams, ends every session with UNAVAILABLE
// and waits for the handlers to return. If ctx ends first, it closes every
// connection at once.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown() // health checks now answer NOT_SERVING
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
