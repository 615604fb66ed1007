package main

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/internal/tlstest"
	"github.com/chatd/chatd/server"
)

// startTLSServer serves over TLS with a certificate of a CA made for the
// test, and returns the address and the CA.
func startTLSServer(t *testing.T, opts ...server.Option) (string, *tlstest.CA) {
	t.Helper()
	ca := tlstest.NewCA(t)
	_, certFile, keyFile := ca.IssueFiles()
	certs, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := servertest.Start(t, server.DefaultConfig(), slog.New(slog.DiscardHandler),
		append(opts, server.WithTLS(&tls.Config{GetCertificate: certs.GetCertificate}))...)
	return addr, ca
}

// signInServer requires tokens signed with authtest.Secret, on a clock the
// test moves.
func signInServer(t *testing.T) (string, *authtest.Clock) {
	t.Helper()
	clock := authtest.NewClock(time.Now())
	key, err := auth.ParseKey([]byte(authtest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Key: key, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := servertest.Start(t, server.DefaultConfig(), slog.New(slog.DiscardHandler), server.WithAuth(v))
	return addr, clock
}

func tokenAt(t *testing.T, clock *authtest.Clock, sub string, d time.Duration) string {
	return authtest.HS256(t, authtest.Claims{Subject: sub, Expires: clock.Now().Add(d)})
}

func TestTLSFlags(t *testing.T) {
	t.Parallel()
	addr, ca := startTLSServer(t)
	plain := startServer(t).addr
	badCA := authtest.WriteFile(t, "not-a-ca.pem", []byte("hello\n"))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"trusted", []string{"--server", addr, "--tls", "--ca-file", ca.CertFile}, exitOK, ""},
		{"--ca-file implies --tls", []string{"--server", addr, "--ca-file", ca.CertFile}, exitOK, ""},
		{"system roots", []string{"--server", addr, "--tls"}, exitUnreachable, "not signed by a CA this system trusts; give its CA with --ca-file"},
		{"another CA", []string{"--server", addr, "--ca-file", tlstest.NewCA(t).CertFile}, exitUnreachable, "not signed by a CA in --ca-file"},
		{"plaintext to TLS", []string{"--server", addr}, exitUnreachable, "if chatd serves TLS, add --tls"},
		{"TLS to plaintext", []string{"--server", plain, "--tls"}, exitUnreachable, "it does not speak TLS; drop --tls"},
		{"bad CA file", []string{"--server", addr, "--ca-file", badCA}, exitUsage, "holds no PEM certificate"},
		{"missing CA file", []string{"--server", addr, "--ca-file", badCA + ".gone"}, exitUsage, "--ca-file: open"},
	} {
		code, _, stderr := runCLI(t, t.Context(), "", append([]string{"who"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit code %d, stderr %q; want %d saying %q", tc.name, code, stderr, tc.code, tc.stderr)
		}
	}
}

func TestTokenFlags(t *testing.T) {
	t.Parallel()
	addr, clock := signInServer(t)
	good := tokenAt(t, clock, "alice", time.Hour)
	file := authtest.WriteFile(t, "token", []byte(good+"\n"))
	empty := authtest.WriteFile(t, "empty", nil)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"who without a token", []string{"who"}, exitSignIn, "sign-in required"},
		{"who with --token", []string{"who", "--token", good}, exitOK, ""},
		{"who with --token-file", []string{"who", "--token-file", file}, exitOK, ""},
		{"channels with an expired token", []string{"channels", "--token", tokenAt(t, clock, "alice", -time.Hour)}, exitSignIn, "token expired"},
		{"send under another name", []string{"send", "--name", "bob", "--token", good, "hi"}, exitSignIn, `signed in as "alice"`},
		{"send under the token's name", []string{"send", "--name", "alice", "--token", good, "hi"}, exitOK, ""},
		{"forged token", []string{"who", "--token", authtest.None(t, authtest.Claims{Subject: "alice", Expires: clock.Now().Add(time.Hour)})}, exitSignIn, "signature"},
		{"both", []string{"who", "--token", good, "--token-file", file}, exitUsage, "use one"},
		{"empty file", []string{"who", "--token-file", empty}, exitUsage, "is empty"},
		{"missing file", []string{"who", "--token-file", empty + ".gone"}, exitUsage, "--token-file: open"},
	} {
		code, _, stderr := runCLI(t, t.Context(), "", append(tc.args, "--server", addr)...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit code %d, stderr %q; want %d saying %q", tc.name, code, stderr, tc.code, tc.stderr)
		}
		if code == exitSignIn && !strings.Contains(stderr, "--token-file or $"+tokenEnv) {
			t.Errorf("%s: stderr %q does not say how to give a token", tc.name, stderr)
		}
	}
}

// The token comes from CHATD_TOKEN when no flag gives one. Not parallel:
// it sets the environment.
func TestTokenFromEnvironment(t *testing.T) {
	addr, clock := signInServer(t)
	t.Setenv(tokenEnv, tokenAt(t, clock, "alice", time.Hour))
	if code, _, stderr := runCLI(t, t.Context(), "", "who", "--server", addr); code != exitOK {
		t.Errorf("who with $%s: exit code %d, stderr %q", tokenEnv, code, stderr)
	}
	t.Setenv(tokenEnv, "garbage")
	if code, _, stderr := runCLI(t, t.Context(), "", "who", "--server", addr); code != exitSignIn {
		t.Errorf("who with a bad $%s: exit code %d, stderr %q; want %d", tokenEnv, code, stderr, exitSignIn)
	}
}

// A session whose token expires is ended by chatd; join reconnects,
// reading --token-file again, and resumes with the renewed token. Once
// the file holds no valid token, it gives up with exitSignIn.
func TestTokenFileRenewedOnReconnect(t *testing.T) {
	t.Parallel()
	addr, fake := signInServer(t)
	file := filepath.Join(t.TempDir(), "token")
	write := func(tok string) {
		t.Helper()
		if err := os.WriteFile(file+".new", []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	write(tokenAt(t, fake, "alice", time.Minute))
	alice := startLive(t, t.Context(), "--name", "alice", "--server", addr, "--token-file", file, "--reconnect-timeout", "5s")
	alice.expect(t, clock+`\* you joined #general`)

	write(tokenAt(t, fake, "alice", time.Hour)) // the agent renews it
	fake.Advance(time.Minute + auth.Leeway)
	alice.expect(t, `^chatctl: connection lost \(your sign-in token expired.*\); reconnecting`)
	alice.expect(t, clock+`\* reconnected: nothing missed$`)
	alice.send(t, "still me")
	alice.expect(t, clock+`#general alice: still me$`)

	// No renewal this time: the rejoin is refused, and not tried again.
	fake.Advance(time.Hour + auth.Leeway)
	if code := alice.wait(t); code != exitSignIn {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitSignIn, alice.stderr)
	}
	if s := alice.stderr.String(); !strings.Contains(s, "cannot rejoin: token expired") {
		t.Errorf("stderr %q does not say the token expired", s)
	}
}
