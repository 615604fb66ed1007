package chatclient

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/chatd/chatd/internal/grpcdial"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultDialTimeout is how long [Dial] waits for a server when
// Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Config says where chatd is and how to reach it. The zero Config is not
// usable: it has no Servers. A Config is only read, so one may be shared by
// any number of goroutines and clients.
type Config struct {
	// Servers are chatd's gRPC addresses, host:port: one chatd, or the
	// nodes of a cluster, tried in turn.
	Servers []string
	// DialTimeout bounds each attempt to connect to one server; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS, if set, is used to talk to chatd over TLS (chatd run with
	// --tls-cert); nil means plaintext.
	TLS *tls.Config
	// Token, if set, is a sign-in token (a JWT, for a chatd run with
	// --auth-jwt-key), sent with every call as "authorization: Bearer".
	// It may go over plaintext, for a chatd on loopback.
	Token string
	// DeviceKey, if set, joins as another device of a user who is in the
	// chat already: the [Client.DeviceKey] of one of that user's devices
	// (a laptop's, for a phone). Without it, a name in use is refused.
	// With sign-in it is not needed: a token for the same user is proof
	// enough. It is secret: whoever has it can join as the user.
	DeviceKey string
	// ReconnectTimeout is how long a [Client] tries to take its session
	// back after its stream breaks; 0 means it does not try, and Recv
	// returns why the stream ended.
	ReconnectTimeout time.Duration
	// DialOptions are passed to gRPC after chatclient's own, so that one
	// of them (credentials of the caller's, say) wins over chatclient's.
	DialOptions []grpc.DialOption
}

// dialTimeout is c's DialTimeout, or its default.
func (c *Config) dialTimeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return DefaultDialTimeout
}

// UnreachableError is [Dial]'s error when no chatd answered at an address:
// the connection was refused, the name did not resolve, the server closed
// the connection before gRPC was set up, or nothing answered in time.
type UnreachableError = grpcdial.UnreachableError

// Dial connects to chatd at addr (host:port) with cfg's credentials and
// options, and waits until the connection is ready, the first attempt
// fails (an *[UnreachableError]), cfg's DialTimeout passes (the same, with
// TimedOut set) or ctx ends. It does not retry: [Retry] does, with
// backoff.
//
// The connection has fixed flow-control windows, since grpc-go's
// estimation of the bandwidth-delay product costs chatd a write for nearly
// every event it sends, and keepalive pings every 30s while a stream is
// open, to find a server that vanished without closing the connection
// (chatd refuses pings more often than every 10s).
func Dial(ctx context.Context, addr string, cfg Config) (*grpc.ClientConn, error) {
	return grpcdial.Dial(ctx, addr, cfg.dialTimeout(), DialOptions(cfg)...)
}

// DialOptions are the gRPC dial options [Dial] uses for cfg: credentials,
// fixed windows, keepalive, then cfg.DialOptions. They are exported for
// programs that manage connections of their own.
func DialOptions(cfg Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.Token)))
	}
	opts = append(opts, grpcdial.FixedWindows()...)
	opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time:                30 * time.Second,
		Timeout:             20 * time.Second,
		PermitWithoutStream: false,
	}))
	return append(opts, cfg.DialOptions...)
}

// bearer puts a sign-in token in every call's metadata.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that a token can go to a chatd on
// loopback without TLS.
func (b bearer) RequireTransportSecurity() bool { return false }
