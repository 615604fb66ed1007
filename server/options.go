package server

import (
	"crypto/tls"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Option changes how [New] and [NewCluster] build a server, besides its
// limits: TLS, sign-in, metrics, an archive.
type Option func(*options)

// Each Option is written beside what it sets up: WithTLS and WithAuth in
// auth.go, WithMetrics in metrics.go, WithArchive in archive.go.

type options struct {
	tls   *tls.Config
	auth  *Verifier
	reg   prometheus.Registerer
	grpc  *grpcprom.ServerMetrics // made by grpcOptions if reg is set
	authn *authenticator          // made by grpcOptions if auth is set

	archive Archive

	adminToken []byte // SHA-256 of WithAdminToken's token
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
