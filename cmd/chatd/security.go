package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/server"
)

// security is what --tls-* and --auth-* set up.
type security struct {
	tls     *tls.Config     // nil: plaintext
	signIn  string          // the sign-in key's kind, "" for none
	options []server.Option // for server.New
}

// minAdminToken is the shortest admin token chatd takes: one that cannot
// be guessed.
const minAdminToken = 32

// loadSecurity reads the files that --tls-cert, --tls-key and
// --auth-jwt-key name. Each problem names its flag.
func loadSecurity(cfg config, log *slog.Logger) (security, error) {
	var sec security
	if cfg.tlsCert != "" {
		certs, err := certfile.New(certfile.Config{
			CertFile:   cfg.tlsCert,
			KeyFile:    cfg.tlsKey,
			CheckEvery: certfile.DefaultCheckEvery,
			Logger:     log,
		})
		if err != nil {
			return sec, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		sec.tls = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
		sec.options = append(sec.options, server.WithTLS(sec.tls))
	}
	if cfg.authKeyFile != "" {
		data, err := os.ReadFile(cfg.authKeyFile)
		if err != nil {
			return sec, fmt.Errorf("--auth-jwt-key: %w", err)
		}
		key, err := auth.ParseKey(data)
		if err != nil {
			return sec, fmt.Errorf("--auth-jwt-key %s: %w", cfg.authKeyFile, err)
		}
		v, err := auth.NewVerifier(auth.Config{Key: key, Issuer: cfg.authIssuer, Audience: cfg.authAudience, AdminClaim: cfg.authAdminClaim})
		if err != nil {
			return sec, fmt.Errorf("--auth-jwt-key: %w", err)
		}
		sec.signIn = key.String()
		sec.options = append(sec.options, server.WithAuth(v))
	}
	if cfg.adminTokenFile != "" {
		data, err := os.ReadFile(cfg.adminTokenFile)
		if err != nil {
			return sec, fmt.Errorf("--admin-token-file: %w", err)
		}
		token := strings.TrimSpace(string(data))
		if len(token) < minAdminToken {
			return sec, fmt.Errorf("--admin-token-file %s: the token is %d bytes; use at least %d random ones (openssl rand -base64 32)", cfg.adminTokenFile, len(token), minAdminToken)
		}
		sec.options = append(sec.options, server.WithAdminToken(token))
	}
	return sec, nil
}

// describe is the line chatd prints about TLS and sign-in, after the
// one with its gRPC address (which scripts read, and which stays as it
// was); "" for neither.
func (sec security) describe() string {
	var parts []string
	if sec.tls != nil {
		parts = append(parts, "TLS on both ports")
	}
	if sec.signIn != "" {
		parts = append(parts, "sign-in required, tokens verified with an "+sec.signIn)
	}
	return strings.Join(parts, "; ")
}

// scheme is the page's URL scheme.
func (sec security) scheme() string {
	if sec.tls != nil {
		return "https"
	}
	return "http"
}
