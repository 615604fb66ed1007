package server_test

// These examples use only what the package exports, and public packages:
// what a program of another module has.

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Build a server that requires sign-in and takes one session from each
// client address, serve it, and join it with tokens.
func ExampleWithAuth() {
	// The secret the issuer signs tokens with (HS256); a PEM public key
	// would do too, for RS256, ES256 or EdDSA tokens.
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := server.NewVerifier(secret, "https://id.example", "chatd")
	if err != nil {
		log.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.PerClient = server.ClientLimits{MaxConns: 10, MaxSessions: 1, JoinRate: 5, JoinBurst: 10}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.WithAuth(v))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := chatv1.NewChatServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = client.ListUsers(ctx, &chatv1.ListUsersRequest{})
	fmt.Println("without a token:", status.Code(err))

	// A token signs in the user its "sub" names: a join with no username
	// takes that one.
	token := func(user string) string {
		t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject:   user,
			Issuer:    "https://id.example",
			Audience:  jwt.ClaimStrings{"chatd"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}).SignedString(secret)
		if err != nil {
			log.Fatal(err)
		}
		return t
	}
	join := func(user string) (*chatv1.Welcome, error) {
		stream, err := client.Chat(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token(user)))
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{}}}); err != nil {
			return nil, err
		}
		ev, err := stream.Recv()
		return ev.GetWelcome(), err
	}
	w, err := join("ada")
	fmt.Println("ada joins as:", w.GetYou().GetUsername(), status.Code(err))
	// A second session from this address is past PerClient.MaxSessions.
	_, err = join("bob")
	fmt.Println("bob, from the same address:", status.Code(err))
	// Output:
	// without a token: Unauthenticated
	// ada joins as: ada OK
	// bob, from the same address: ResourceExhausted
}

// Put a front of one's own before the server, as chatd's gateway does for
// browsers: it accepts the connections, counted by the server's Limiter,
// works out each request's client (here from the X-Forwarded-For of a
// trusted proxy) and hands the request to the server, whose limits then
// count that client rather than the front.
func ExampleNewClientContext() {
	cfg := server.DefaultConfig()
	cfg.PerClient = server.ClientLimits{
		MaxSessions: 1,
		// The proxy in front of the front, in this example the client
		// itself: what it says of its clients is believed.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	lim := srv.Admission()
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, "no address", http.StatusBadRequest)
			return
		}
		client := lim.ClientAddr(remote.Addr(), r.Header.Values("X-Forwarded-For"))
		// The server is told the client, rather than left to read the
		// header itself, as a browser's websocket would not show it.
		r.Header.Del("X-Forwarded-For")
		srv.GRPCServer().ServeHTTP(w, r.WithContext(server.NewClientContext(r.Context(), client)))
	})
	// gRPC over HTTP/2 without TLS, as grpc.NewClient dials below.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: front, Protocols: &protocols}
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go hs.Serve(lim.Listen(lis))

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := chatv1.NewChatServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	join := func(user, from string) error {
		stream, err := client.Chat(metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", from))
		if err != nil {
			return err
		}
		if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: user}}}); err != nil {
			return err
		}
		_, err = stream.Recv() // the welcome, or why not
		return err
	}
	fmt.Println("ada from 192.0.2.1:", status.Code(join("ada", "192.0.2.1")))
	fmt.Println("bob from 192.0.2.1:", status.Code(join("bob", "192.0.2.1")))
	fmt.Println("cy from 192.0.2.2:", status.Code(join("cy", "192.0.2.2")))
	// Output:
	// ada from 192.0.2.1: OK
	// bob from 192.0.2.1: ResourceExhausted
	// cy from 192.0.2.2: OK
}
