package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/internal/tlstest"
	"github.com/chatd/chatd/server"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// authServer is a server that requires sign-in with tokens signed by
// authtest.Secret, issued by "test-idp" for "chatd", on a clock the test
// moves.
type authServer struct {
	*testServer
	clock *authtest.Clock
}

func startAuthServer(t *testing.T, cfg server.Config, opts ...server.Option) *authServer {
	t.Helper()
	clock := authtest.NewClock(time.Now())
	key, err := auth.ParseKey([]byte(authtest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Key: key, Issuer: "test-idp", Audience: "chatd", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	srv, addr := servertest.Start(t, cfg, slog.New(slog.NewTextHandler(logw, nil)), append(opts, server.WithAuth(v))...)
	return &authServer{testServer: &testServer{srv: srv, addr: addr}, clock: clock}
}

// token is a valid token for sub, expiring in d.
func (as *authServer) token(t *testing.T, sub string, d time.Duration) string {
	t.Helper()
	now := as.clock.Now()
	return authtest.HS256(t, authtest.Claims{Subject: sub, Issuer: "test-idp", Audience: "chatd", Expires: now.Add(d), IssuedAt: now})
}

// withToken is ctx carrying token as the call's bearer token.
func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", authtest.Bearer(token))
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openStreamCtx is openStream with the stream's context made by edit.
func openStreamCtx(t *testing.T, conn *grpc.ClientConn, edit func(context.Context) context.Context) *client {
	t.Helper()
	return openStreamWith(t, conn, edit)
}

// joinReqToken is a join as name carrying token.
func joinReqToken(name, token string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name, AuthToken: token}}}
}

func TestSignInUnaryCalls(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	conn := dial(t, as.addr)
	chat := chatv1.NewChatServiceClient(conn)
	_, rsaPub := authtest.RSAKey(t)
	now := as.clock.Now()
	claims := authtest.Claims{Subject: "alice", Issuer: "test-idp", Audience: "chatd", Expires: now.Add(time.Hour)}

	for _, tc := range []struct {
		name  string
		ctx   func(context.Context) context.Context
		want  codes.Code
		inMsg string
	}{
		{"no token", func(c context.Context) context.Context { return c }, codes.Unauthenticated, "sign-in required"},
		{"valid", func(c context.Context) context.Context { return withToken(c, as.token(t, "alice", time.Hour)) }, codes.OK, ""},
		{"not bearer", func(c context.Context) context.Context {
			return metadata.AppendToOutgoingContext(c, "authorization", "Basic YWxpY2U6cHc=")
		}, codes.Unauthenticated, "Bearer"},
		{"alg none", func(c context.Context) context.Context { return withToken(c, authtest.None(t, claims)) }, codes.Unauthenticated, "signature"},
		{"HS256 with a public key as secret", func(c context.Context) context.Context {
			return withToken(c, authtest.Sign(t, jwt.SigningMethodHS256, rsaPub, claims))
		}, codes.Unauthenticated, "signature"},
		{"expired", func(c context.Context) context.Context {
			old := claims
			old.Expires = now.Add(-time.Hour)
			return withToken(c, authtest.HS256(t, old))
		}, codes.Unauthenticated, "expired"},
		{"wrong issuer", func(c context.Context) context.Context {
			c2 := claims
			c2.Issuer = "evil-idp"
			return withToken(c, authtest.HS256(t, c2))
		}, codes.Unauthenticated, "issuer"},
		{"wrong audience", func(c context.Context) context.Context {
			c2 := claims
			c2.Audience = "another-app"
			return withToken(c, authtest.HS256(t, c2))
		}, codes.Unauthenticated, "aud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []struct {
				name string
				f    func(context.Context) error
			}{
				{"ListUsers", func(c context.Context) error { _, err := chat.ListUsers(c, &chatv1.ListUsersRequest{}); return err }},
				{"ListChannels", func(c context.Context) error {
					_, err := chat.ListChannels(c, &chatv1.ListChannelsRequest{})
					return err
				}},
			} {
				err := call.f(tc.ctx(callCtx(t)))
				st := status.Convert(err)
				if st.Code() != tc.want || !strings.Contains(st.Message(), tc.inMsg) {
					t.Errorf("%s = %v; want %v saying %q", call.name, describe(err), tc.want, tc.inMsg)
				}
			}
		})
	}
}

// Load balancers probe health without a token; reflection needs one.
func TestSignInExemptsHealthOnly(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	conn := dial(t, as.addr)
	resp, err := healthpb.NewHealthClient(conn).Check(callCtx(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a token = %v, %v; want SERVING", resp, err)
	}
	listServices := func(ctx context.Context) error {
		rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return err
		}
		// A stream the server has already refused fails Send with io.EOF:
		// Recv has its status.
		if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		_, err = rs.Recv()
		return err
	}
	if err := listServices(callCtx(t)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("reflection without a token = %v; want UNAUTHENTICATED", describe(err))
	}
	if err := listServices(withToken(callCtx(t), as.token(t, "alice", time.Hour))); err != nil {
		t.Errorf("reflection with a token = %v; want it served", describe(err))
	}
}

func TestSignInChat(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	conn := dial(t, as.addr)
	noCtx := func(c context.Context) context.Context { return c }

	t.Run("token in the join", func(t *testing.T) {
		c := openStreamCtx(t, conn, noCtx)
		c.send(t, joinReqToken("alice", as.token(t, "alice", time.Hour)))
		if ev := c.next(t); ev.GetWelcome().GetYou().GetUsername() != "alice" {
			t.Fatalf("got %v, want a welcome for alice", ev)
		}
	})
	t.Run("token in the metadata", func(t *testing.T) {
		c := openStreamCtx(t, conn, func(ctx context.Context) context.Context { return withToken(ctx, as.token(t, "bob", time.Hour)) })
		c.send(t, joinReq("bob"))
		if ev := c.next(t); ev.GetWelcome().GetYou().GetUsername() != "bob" {
			t.Fatalf("got %v, want a welcome for bob", ev)
		}
	})
	t.Run("empty username joins as sub", func(t *testing.T) {
		c := openStreamCtx(t, conn, noCtx)
		c.send(t, joinReqToken("", as.token(t, "carol", time.Hour)))
		if ev := c.next(t); ev.GetWelcome().GetYou().GetUsername() != "carol" {
			t.Fatalf("got %v, want a welcome for carol", ev)
		}
	})
	t.Run("no token", func(t *testing.T) {
		c := openStreamCtx(t, conn, noCtx)
		c.send(t, joinReq("dave"))
		if st := c.expectEnd(t, codes.Unauthenticated); !strings.Contains(st.Message(), "auth_token") {
			t.Errorf("message %q does not say where the token goes", st.Message())
		}
	})
	t.Run("someone else's name", func(t *testing.T) {
		c := openStreamCtx(t, conn, noCtx)
		c.send(t, joinReqToken("alice", as.token(t, "mallory", time.Hour)))
		if st := c.expectEnd(t, codes.PermissionDenied); !strings.Contains(st.Message(), `"mallory"`) {
			t.Errorf("message %q does not say who the token signs in", st.Message())
		}
		c = openStreamCtx(t, conn, func(ctx context.Context) context.Context { return withToken(ctx, as.token(t, "mallory", time.Hour)) })
		c.send(t, joinReq("Mallory")) // another spelling is another name
		c.expectEnd(t, codes.PermissionDenied)
	})
	t.Run("bad token in the metadata is refused before the join", func(t *testing.T) {
		c := openStreamCtx(t, conn, func(ctx context.Context) context.Context {
			return withToken(ctx, authtest.None(t, authtest.Claims{Subject: "erin", Expires: time.Now().Add(time.Hour)}))
		})
		c.expectEnd(t, codes.Unauthenticated) // nothing sent: refused at once
	})
	t.Run("bad tokens in the join", func(t *testing.T) {
		now := as.clock.Now()
		for _, tok := range []string{
			authtest.None(t, authtest.Claims{Subject: "erin", Issuer: "test-idp", Audience: "chatd", Expires: now.Add(time.Hour)}),
			authtest.HS256(t, authtest.Claims{Subject: "erin", Issuer: "test-idp", Audience: "chatd", Expires: now.Add(-time.Hour)}),
			authtest.HS256(t, authtest.Claims{Subject: "erin", Issuer: "test-idp", Audience: "chatd"}),
			"garbage",
		} {
			c := openStreamCtx(t, conn, noCtx)
			c.send(t, joinReqToken("erin", tok))
			c.expectEnd(t, codes.Unauthenticated)
		}
	})
	t.Run("the join's token wins over the metadata's", func(t *testing.T) {
		c := openStreamCtx(t, conn, func(ctx context.Context) context.Context { return withToken(ctx, as.token(t, "frank", time.Hour)) })
		c.send(t, joinReqToken("frank", "garbage"))
		c.expectEnd(t, codes.Unauthenticated)
	})
}

// A stream whose token expires is ended with UNAUTHENTICATED as a
// disconnect: kept for the resume grace, and resumed with a fresh token
// for the same user, and not without one.
func TestSignInExpiryEndsStreamForResume(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	conn := dial(t, as.addr)
	watcher := openStreamCtx(t, conn, func(c context.Context) context.Context { return c })
	watcher.name = "watcher"
	watcher.send(t, joinReqToken("watcher", as.token(t, "watcher", 24*time.Hour)))
	watcher.next(t)
	watcher.expectChannelCatchUp(t, "general")

	alice := openStreamCtx(t, conn, func(c context.Context) context.Context { return c })
	alice.name = "alice"
	alice.send(t, joinReqToken("alice", as.token(t, "alice", time.Minute)))
	welcome := alice.next(t)
	alice.expectChannelCatchUp(t, "general")
	expectJoined(t, "watcher", watcher.next(t), "alice", false)

	// Just before exp plus the leeway: still on.
	as.clock.Advance(time.Minute + auth.Leeway - time.Second)
	alice.say(t, "still here", "c1")
	expectMessage(t, "alice", alice.next(t), "alice", "still here", "c1")
	expectMessage(t, "watcher", watcher.next(t), "alice", "still here", "c1")

	as.clock.Advance(time.Second)
	if st := alice.expectEnd(t, codes.Unauthenticated); !strings.Contains(st.Message(), "expired") {
		t.Errorf("end message %q does not say the token expired", st.Message())
	}
	expectLeft(t, "watcher", watcher.next(t), "alice", chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED)
	watcher.say(t, "while you were out", "c2")
	expectMessage(t, "watcher", watcher.next(t), "watcher", "while you were out", "c2")

	token := welcome.GetWelcome().GetResumeToken()
	resume := func(authToken string) *client {
		c := openStreamCtx(t, conn, func(c context.Context) context.Context { return c })
		c.name = "alice"
		req := resumeReq("alice", token, alice.lastSeq)
		req.GetJoin().AuthToken = authToken
		c.send(t, req)
		return c
	}
	// The resume token alone signs no one in; nor does someone else's.
	resume("").expectEnd(t, codes.Unauthenticated)
	resume(as.token(t, "mallory", time.Hour)).expectEnd(t, codes.PermissionDenied)
	// The old token is expired.
	resume(as.token(t, "alice", -time.Hour)).expectEnd(t, codes.Unauthenticated)

	back := resume(as.token(t, "alice", time.Hour))
	ev := back.next(t)
	if w := ev.GetWelcome(); w == nil || w.GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		t.Fatalf("resume with a fresh token: got %v; want a welcome with RECOVERY_COMPLETE", ev)
	}
	expectMessage(t, "alice", back.next(t), "watcher", "while you were out", "c2")
}

// The expiry timer goes with the stream: a stream that ends first
// leaves no timer behind.
func TestSignInExpiryTimerStopsWithStream(t *testing.T) {
	t.Parallel()
	as := startAuthServer(t, testConfig(nil))
	conn := dial(t, as.addr)
	c := openStreamCtx(t, conn, func(c context.Context) context.Context { return c })
	c.name = "alice"
	c.send(t, joinReqToken("alice", as.token(t, "alice", time.Hour)))
	c.next(t)
	if n := as.clock.Timers(); n != 1 {
		t.Fatalf("%d expiry timers while a session runs, want 1", n)
	}
	c.send(t, leaveReq())
	c.drainToEnd(t, codes.OK)
	waitFor(t, "the expiry timer to stop", func() bool { return as.clock.Timers() == 0 })
}

// Over TLS, a renewed certificate is taken by the next connection while a
// session on the old one goes on.
func TestTLSRenewalKeepsSessions(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	first, certFile, keyFile := ca.IssueFiles()
	certs, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: 0})
	if err != nil {
		t.Fatal(err)
	}
	logw := &testLogWriter{t: t}
	t.Cleanup(logw.stop)
	_, addr := servertest.Start(t, testConfig(nil), slog.New(slog.NewTextHandler(logw, nil)),
		server.WithTLS(&tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}))
	creds := grpc.WithTransportCredentials(credentials.NewTLS(ca.ClientConfig()))
	tlsDial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, creds)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	serialOf := func(conn *grpc.ClientConn) string {
		var p peer.Peer
		if _, err := chatv1.NewChatServiceClient(conn).ListUsers(callCtx(t), &chatv1.ListUsersRequest{}, grpc.Peer(&p)); err != nil {
			t.Fatalf("ListUsers over TLS: %v", err)
		}
		info, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok {
			t.Fatalf("the call's peer has %T, want TLS", p.AuthInfo)
		}
		return info.State.PeerCertificates[0].SerialNumber.String()
	}

	oldConn := tlsDial()
	alice := joinOn(t, oldConn, "alice")
	if got := serialOf(oldConn); got != first.Serial.String() {
		t.Fatalf("serial %s, want %s", got, first.Serial)
	}
	second := ca.Issue()
	tlstest.Replace(t, certFile, keyFile, second)

	newConn := tlsDial()
	if got := serialOf(newConn); got != second.Serial.String() {
		t.Errorf("a connection after the renewal got serial %s, want %s", got, second.Serial)
	}
	bob := joinOn(t, newConn, "bob")
	expectJoined(t, "alice", alice.next(t), "bob", false)
	alice.say(t, "still here", "c1")
	expectMessage(t, "alice", alice.next(t), "alice", "still here", "c1")
	expectMessage(t, "bob", bob.next(t), "alice", "still here", "c1")

	// A plaintext client gets nowhere.
	plain := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := chatv1.NewChatServiceClient(plain).ListUsers(ctx, &chatv1.ListUsersRequest{}); err == nil {
		t.Error("a plaintext call to a TLS server succeeded")
	}
}
