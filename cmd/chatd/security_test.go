package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/tlstest"
)

// Bad --tls-* and --auth-* flags, and files they cannot use, stop chatd
// before it listens, with one line naming the flag.
func TestBadSecurityFlagsAreRefused(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	_, certFile, keyFile := ca.IssueFiles()
	short := authtest.WriteFile(t, "short", []byte("hunter2\n"))
	privPEM := authtest.WriteFile(t, "priv.pem", ca.Issue().KeyPEM)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-key", keyFile}, "--tls-cert and --tls-key go together"},
		{[]string{"--auth-issuer", "https://id.example"}, "--auth-issuer needs --auth-jwt-key"},
		{[]string{"--auth-audience", "chatd"}, "--auth-audience needs --auth-jwt-key"},
		{[]string{"--tls-cert", certFile, "--tls-key", ca.CertFile}, "--tls-cert/--tls-key: cannot load the TLS certificate"},
		{[]string{"--tls-cert", certFile + ".gone", "--tls-key", keyFile}, "--tls-cert/--tls-key: stat"},
		{[]string{"--auth-jwt-key", short}, "--auth-jwt-key " + short + ": an HMAC secret must be at least 32 bytes"},
		{[]string{"--auth-jwt-key", privPEM}, "--auth-jwt-key " + privPEM + ": the file holds a private key"},
		{[]string{"--auth-jwt-key", short + ".gone"}, "--auth-jwt-key: open"},
	} {
		args := append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "", "--data-dir", t.TempDir()}, tc.args...)
		var stderr bytes.Buffer
		err := run(context.Background(), args, io.Discard, &stderr)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error saying %q", tc.args, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") || stderr.Len() != 0 {
			t.Errorf("run(%q) = %q and wrote %q; want one line and nothing else", tc.args, err, stderr.String())
		}
	}
}
