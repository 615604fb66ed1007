package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// tokenEnv is the environment variable chatctl takes a sign-in token from
// when neither --token nor --token-file is given.
const tokenEnv = "CHATD_TOKEN"

// security is how chatctl talks to a chatd that serves TLS or wants
// sign-in: the flags, and what they load.
type security struct {
	tls       bool
	caFile    string
	token     string
	tokenFile string

	roots      *x509.CertPool // from caFile; nil for the system's
	tokenFrom  string         // where the token comes from, for messages: "--token", …
	handshakes *handshakeLog  // the TLS handshakes' last error, for dial's message
}

// define adds the flags to fs.
func (s *security) define(fs *flag.FlagSet) {
	fs.BoolVar(&s.tls, "tls", false, "talk to chatd over TLS (chatd run with --tls-cert), checking its certificate against the system's CAs, or --ca-file's")
	fs.StringVar(&s.caFile, "ca-file", "", "PEM `file` of the CA certificates to trust for chatd's certificate instead of the system's (implies --tls)")
	fs.StringVar(&s.token, "token", "", "sign-in `token` (a JWT) for a chatd run with --auth-jwt-key; without --token or --token-file, $"+tokenEnv+" is used. A token on the command line shows in ps: prefer the environment or --token-file")
	fs.StringVar(&s.tokenFile, "token-file", "", "`file` holding the sign-in token, read again for every connection and reconnection, so that an agent renewing the file keeps a long session signed in")
}

// load checks the flags and reads the CA file, and the token from the
// environment if no flag gives one. A problem is a usage error.
func (s *security) load() error {
	if s.token != "" && s.tokenFile != "" {
		return errors.New("--token and --token-file both give the token: use one")
	}
	switch {
	case s.token != "":
		s.tokenFrom = "--token"
	case s.tokenFile != "":
		s.tokenFrom = "--token-file"
		if _, err := readToken(s.tokenFile); err != nil {
			return err
		}
	default:
		if s.token = strings.TrimSpace(os.Getenv(tokenEnv)); s.token != "" {
			s.tokenFrom = "$" + tokenEnv
		}
	}
	if s.caFile != "" {
		s.tls = true
		data, err := os.ReadFile(s.caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %v", err)
		}
		s.roots = x509.NewCertPool()
		if !s.roots.AppendCertsFromPEM(data) {
			return fmt.Errorf("--ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", s.caFile)
		}
	}
	s.handshakes = &handshakeLog{}
	return nil
}

// readToken reads a token file: its one line.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %v", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	return tok, nil
}

// dialOptions are the gRPC options for the transport and the token.
func (s *security) dialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if s.tls {
		creds := credentials.NewTLS(&tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12})
		opts = append(opts, grpc.WithTransportCredentials(&recordingCreds{TransportCredentials: creds, log: s.handshakes}))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if s.tokenFrom != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(&tokenCreds{s: s}))
	}
	return opts
}

// tokenCreds puts the token in every call's metadata.
type tokenCreds struct{ s *security }

func (c *tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok := c.s.token
	if c.s.tokenFile != "" {
		var err error
		if tok, err = readToken(c.s.tokenFile); err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity is false so that a token can go to a chatd on
// loopback without TLS; anywhere else, use --tls, or the token travels in
// clear.
func (c *tokenCreds) RequireTransportSecurity() bool { return false }

// handshakeLog keeps the last TLS handshake's error.
type handshakeLog struct {
	mu  sync.Mutex
	err error
}

func (l *handshakeLog) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *handshakeLog) last() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// recordingCreds are TLS credentials that keep why a handshake failed:
// gRPC only says the connection did not come up.
type recordingCreds struct {
	credentials.TransportCredentials
	log *handshakeLog
}

func (c *recordingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	c.log.set(err)
	return nc, info, err
}

func (c *recordingCreds) Clone() credentials.TransportCredentials {
	return &recordingCreds{TransportCredentials: c.TransportCredentials.Clone(), log: c.log}
}

// explainHandshake says what to do about a connection that did not come
// up, from the TLS handshake's error if there was one; "" if it has
// nothing to add.
func (s *security) explainHandshake(addr string) string {
	err := s.handshakes.last()
	if !s.tls {
		// A plaintext client's preface is not a TLS ClientHello: a TLS
		// chatd closes the connection.
		return fmt.Sprintf("cannot reach chatd at %s: the connection was closed before gRPC was set up (is that chatd's gRPC port? if chatd serves TLS, add --tls)", addr)
	}
	if err == nil {
		return ""
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &record):
		return fmt.Sprintf("cannot reach chatd at %s over TLS: it does not speak TLS; drop --tls (and --ca-file) if it serves plaintext", addr)
	case errors.As(err, &unknown):
		if s.caFile != "" {
			return fmt.Sprintf("cannot reach chatd at %s over TLS: its certificate is not signed by a CA in --ca-file %s", addr, s.caFile)
		}
		return fmt.Sprintf("cannot reach chatd at %s over TLS: its certificate is not signed by a CA this system trusts; give its CA with --ca-file", addr)
	case errors.As(err, &hostname):
		return fmt.Sprintf("cannot reach chatd at %s over TLS: its certificate is not for this name (%v); connect with a name the certificate has", addr, hostname.Error())
	case errors.As(err, &invalid):
		return fmt.Sprintf("cannot reach chatd at %s over TLS: its certificate is not valid: %v", addr, err)
	}
	return fmt.Sprintf("cannot reach chatd at %s over TLS: %v", addr, err)
}

// signInError is a refusal of sign-in, with what to do about it.
func signInError(err error) error {
	return withExitCode(exitSignIn, fmt.Errorf("%w (give a valid token with --token, --token-file or $%s; a token's sub is the name it signs in)", err, tokenEnv))
}
