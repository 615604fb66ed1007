package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Sign-in, when the server has a verifier (see [WithAuth]):
//   - every call needs a valid token in its "authorization: Bearer …"
//     metadata, checked here before the handler runs, except the health
//     service's: load balancers and orchestrators probe it without a
//     token, and it tells nothing but whether chatd serves. Reflection is
//     not exempt: the API is public, but a client that can list it with a
//     token (grpcurl -H) loses nothing, and every call without a token is
//     one less parser exposed to anyone;
//   - a Chat stream may carry the token in its join instead (a browser's
//     websocket cannot set metadata), so a stream without one is let
//     through to the join, which must then have it; a stream with a bad
//     one is refused at once;
//   - the join's username must be the token's "sub" (or empty, for it); a
//     resume is a join, so it needs a valid token for the same user too:
//     the resume token takes back a session, it signs no one in;
//   - a session ends when its token expires, as a disconnect: it is kept
//     for the resume grace, and a join with a fresh token resumes it.

// WithTLS serves gRPC over TLS with cfg (which should pick its
// certificate with GetCertificate, to take renewals, as chatd's does with
// internal/certfile). gRPC's ALPN protocol is added to it.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithAuth requires sign-in with tokens that v verifies (see
// [NewVerifier]).
func WithAuth(v *Verifier) Option { return func(o *options) { o.auth = v } }

// Verifier checks the JWTs that sign users in: a token must be signed with
// the verifier's one key, by an algorithm of that key's kind (never the
// one the token names: "none", or an HMAC keyed with a public key, never
// verifies), expire ("exp"), and name the user it signs in ("sub"); its
// "exp", "nbf" and "iat" are checked with 30 seconds to spare for clock
// skew. Its methods are safe for concurrent use. (Verifier is chatd's
// internal auth.Verifier, under this package's name.)
type Verifier = auth.Verifier

// NewVerifier returns a verifier of tokens signed with key, what a key file
// holds (chatd's --auth-jwt-key): a PEM public key ("PUBLIC KEY", "RSA
// PUBLIC KEY", or a "CERTIFICATE" whose key is used) for tokens signed
// with RS256, RS384 or RS512 (an RSA key of at least 2048 bits), ES256,
// ES384 or ES512 (an ECDSA key, by its curve) or EdDSA (Ed25519); or else
// an HMAC secret of at least 32 bytes (trailing newlines are not part
// of it) for HS256, HS384 and HS512. A PEM block that is not a public key is
// an error, never taken for a secret. If issuer is not empty, every token
// must have it as its "iss"; if audience is not empty, it must be among a
// token's "aud".
func NewVerifier(key []byte, issuer, audience string) (*Verifier, error) {
	k, err := auth.ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign-in key: %w", err)
	}
	return auth.NewVerifier(auth.Config{Key: k, Issuer: issuer, Audience: audience})
}

// securityOptions are the gRPC server options that TLS and sign-in add.
func (o *options) securityOptions(cfg Config) []grpc.ServerOption {
	var g []grpc.ServerOption
	if o.tls != nil {
		g = append(g, grpc.Creds(credentials.NewTLS(o.tls)),
			// A handshake costs the server work and memory: one that has
			// not finished (with HTTP/2's preface) within the join timeout
			// is dropped, not held for gRPC's default 120 s.
			grpc.ConnectionTimeout(cfg.JoinTimeout))
	}
	if o.auth != nil {
		o.authn = &authenticator{v: o.auth}
		g = append(g, grpc.ChainUnaryInterceptor(o.authn.unary), grpc.ChainStreamInterceptor(o.authn.stream))
	}
	return g
}

// authenticator checks the token of each call.
type authenticator struct {
	v   *auth.Verifier
	svc *service // counts the calls refused; set before the server serves
}

// refuseSignIn returns the status of a call refused sign-in: a refusal before
// any session, counted as the service counts those (see refuse.go).
func (a *authenticator) refuseSignIn(ctx context.Context, err error) error {
	client, _ := a.svc.lim.FromContext(ctx)
	return a.svc.refuseFrom(ctx, client, err)
}

// exempt reports whether method may be called without a sign-in token:
// the health service's, and the admin service's, which checks its callers
// itself (an admin token is not a sign-in token; see admin.go).
func exempt(method string) bool {
	return strings.HasPrefix(method, "/"+healthpb.Health_ServiceDesc.ServiceName+"/") ||
		strings.HasPrefix(method, "/"+chatv1.AdminService_ServiceDesc.ServiceName+"/")
}

// chatMethod is the full name of the Chat stream.
var chatMethod = "/" + chatv1.ChatService_ServiceDesc.ServiceName + "/Chat"

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !exempt(info.FullMethod) {
		id, err := a.fromMetadata(ctx, false)
		if err != nil {
			return nil, a.refuseSignIn(ctx, err)
		}
		ctx = context.WithValue(ctx, identityKey{}, id)
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if exempt(info.FullMethod) {
		return handler(srv, ss)
	}
	id, err := a.fromMetadata(ss.Context(), info.FullMethod == chatMethod)
	if err != nil {
		return a.refuseSignIn(ss.Context(), err)
	}
	if id != nil {
		ss = &identityStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), identityKey{}, id)}
	}
	return handler(srv, ss)
}

// fromMetadata verifies the token of a call's metadata. With optional, a
// call without one gets a nil identity rather than an error.
func (a *authenticator) fromMetadata(ctx context.Context, optional bool) (*auth.Identity, error) {
	token, err := auth.FromMetadata(ctx)
	if err != nil {
		return nil, authError(err)
	}
	if token == "" && optional {
		return nil, nil
	}
	id, err := a.v.Verify(token)
	if err != nil {
		return nil, authError(err)
	}
	return &id, nil
}

// identityKey is the context key of a call's verified *auth.Identity.
type identityKey struct{}

// identityStream is a stream whose context carries its identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// authError is a refusal of sign-in as the service shows it.
func authError(err error) error {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return &Error{Kind: ErrUnauthenticated, Msg: ae.Msg}
	}
	return &Error{Kind: ErrUnauthenticated, Msg: "sign-in failed"}
}

// expiryKey is the context key of a session's token expiry channel.
type expiryKey struct{}

// signInExpired returns the channel closed when the token a session signed
// in with expires; nil, which never is, without sign-in.
func signInExpired(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(expiryKey{}).(<-chan struct{})
	return ch
}

// errSignInExpired ends a session whose token expired.
var errSignInExpired = &Error{Kind: ErrUnauthenticated, Msg: auth.Expired.Msg}

// signIn checks that a join may enter under its username, and returns
// the username to join under, with ctx carrying when the session's sign-in
// expires (see signInExpired); the wait for that ends with ctx. Without
// sign-in, it is the join's username and ctx as they are.
func (svc *service) signIn(ctx context.Context, join *chatv1.Join) (context.Context, string, error) {
	if svc.auth == nil {
		return ctx, join.GetUsername(), nil
	}
	var id auth.Identity
	if token := join.GetAuthToken(); token != "" {
		got, err := svc.auth.Verify(token)
		if err != nil {
			return ctx, "", authError(err)
		}
		id = got
	} else if got, ok := ctx.Value(identityKey{}).(*auth.Identity); ok {
		id = *got
	} else {
		return ctx, "", &Error{Kind: ErrUnauthenticated, Msg: "sign-in required: send a token in the metadata \"authorization: Bearer <token>\" or in the join's auth_token"}
	}
	username := join.GetUsername()
	switch {
	case username == "":
		username = id.Subject
	case username != id.Subject:
		return ctx, "", &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf("you are signed in as %q: join under that name, or leave the username empty", id.Subject)}
	}
	expired, stop := svc.auth.Expiry(id)
	context.AfterFunc(ctx, stop)
	return context.WithValue(ctx, expiryKey{}, expired), username, nil
}
