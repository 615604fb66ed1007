package e2e_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/authtest"
	"github.com/chatd/chatd/internal/tlstest"
	"github.com/chromedp/chromedp"
)

// secureChatd is a chatd serving both ports over TLS with a certificate of
// a CA made for the test, and requiring sign-in with tokens signed by
// authtest.Secret, issued by "test-idp".
type secureChatd struct {
	*chatd
	url                       string // https://host:port of the page
	ca                        *tlstest.CA
	leaf                      tlstest.Leaf
	certFile, keyFile, secret string
}

func startSecureChatd(t *testing.T) *secureChatd {
	t.Helper()
	ca := tlstest.NewCA(t)
	leaf, certFile, keyFile := ca.IssueFiles()
	secret := authtest.WriteFile(t, "jwt.key", []byte(authtest.Secret+"\n"))
	p := start(t, chatdBin, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--tls-cert", certFile, "--tls-key", keyFile, "--auth-jwt-key", secret, "--auth-issuer", "test-idp")
	t.Cleanup(func() { p.terminate(t) })
	addr := strings.TrimPrefix(p.expect(t, `^chatd: gRPC listening on `), "chatd: gRPC listening on ")
	p.expect(t, `^chatd: TLS on both ports; sign-in required, tokens verified with an HMAC secret`)
	url := strings.TrimPrefix(p.expect(t, `^chatd: chat page on https://`), "chatd: chat page on ")
	return &secureChatd{chatd: &chatd{proc: p, addr: addr}, url: url, ca: ca, leaf: leaf, certFile: certFile, keyFile: keyFile, secret: secret}
}

// token is a token for sub from test-idp, valid for d.
func token(t *testing.T, sub string, d time.Duration) string {
	t.Helper()
	return authtest.HS256(t, authtest.Claims{Subject: sub, Issuer: "test-idp", Expires: time.Now().Add(d), IssuedAt: time.Now()})
}

// serialAt is the serial of the certificate a new TLS connection to addr
// gets, trusting only ca.
func serialAt(t *testing.T, addr string, ca *tlstest.CA) *big.Int {
	t.Helper()
	cfg := ca.ClientConfig()
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// chatctl over TLS with sign-in, and a certificate renewed under a live
// session: the session goes on, and new connections get the new one.
func TestChatctlOverTLSWithSignIn(t *testing.T) {
	t.Parallel()
	srv := startSecureChatd(t)
	tlsFlags := []string{"--server", srv.addr, "--ca-file", srv.ca.CertFile}

	code, _, stderr := runChatctl(t, "", append([]string{"who"}, tlsFlags...)...)
	if code != exitSignIn || !strings.Contains(stderr, "sign-in required") {
		t.Errorf("who without a token: exit %d, stderr %q; want %d, sign-in required", code, stderr, exitSignIn)
	}
	code, _, stderr = runChatctl(t, "", "who", "--server", srv.addr, "--token", token(t, "alice", time.Hour))
	if code != exitUnreachable || !strings.Contains(stderr, "add --tls") {
		t.Errorf("who in plaintext: exit %d, stderr %q; want %d and a hint to add --tls", code, stderr, exitUnreachable)
	}
	code, _, stderr = runChatctl(t, "", "who", "--server", srv.addr, "--tls", "--token", token(t, "alice", time.Hour))
	if code != exitUnreachable || !strings.Contains(stderr, "--ca-file") {
		t.Errorf("who with the system's CAs: exit %d, stderr %q; want %d and a hint to give --ca-file", code, stderr, exitUnreachable)
	}

	tokenFile := authtest.WriteFile(t, "alice.jwt", []byte(token(t, "alice", time.Hour)))
	alice := chatctl(t, append([]string{"join", "--name", "alice", "--token-file", tokenFile}, tlsFlags...)...)
	alice.expect(t, clock+`\* you joined as alice$`)
	code, _, stderr = runChatctl(t, "", append([]string{"send", "--name", "mallory", "--token", token(t, "bob", time.Hour), "hi"}, tlsFlags...)...)
	if code != exitSignIn || !strings.Contains(stderr, `signed in as "bob"`) {
		t.Errorf("send under another name: exit %d, stderr %q; want %d", code, stderr, exitSignIn)
	}

	// The certificate is renewed; chatd looks at the files at most once a
	// second, on a handshake.
	if got := serialAt(t, srv.addr, srv.ca); got.Cmp(srv.leaf.Serial) != 0 {
		t.Fatalf("serial %s, want %s", got, srv.leaf.Serial)
	}
	renewed := srv.ca.Issue()
	tlstest.Replace(t, srv.certFile, srv.keyFile, renewed)
	deadline := time.Now().Add(waitTimeout)
	for serialAt(t, srv.addr, srv.ca).Cmp(renewed.Serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("new connections still get serial %s %s after the renewal", srv.leaf.Serial, waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.expectIn(t, srv.stderr, "stderr", `took the renewed TLS certificate`)

	code, _, stderr = runChatctl(t, "", append([]string{"send", "--name", "bob", "--token", token(t, "bob", time.Hour), "after the renewal"}, tlsFlags...)...)
	if code != exitOK {
		t.Fatalf("send after the renewal: exit %d, stderr %q", code, stderr)
	}
	alice.expect(t, clock+`#general bob: after the renewal$`)
	alice.send(t, "still on the old connection")
	alice.expect(t, clock+`#general alice: still on the old connection$`)
	alice.send(t, "/quit")
	if code := alice.wait(t); code != exitOK {
		t.Errorf("alice exit %d, want 0; stderr:\n%s", code, alice.stderr)
	}
}

// spkiHash is what Chromium's --ignore-certificate-errors-spki-list takes
// for a certificate: the base64 SHA-256 of its public key.
func spkiHash(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// The page over https and wss, signed in by a token in its URL's
// fragment, which it takes off the URL; without a token it says how to
// sign in.
//
// Chromium is told to accept the test server's one key
// (--ignore-certificate-errors-spki-list), not to ignore certificate
// errors at large: Debian's chromium trusts only the system's NSS store,
// which a test should not write to. Chain checks are tested with chatctl
// and Go clients against the test CA instead.
func TestBrowserOverTLSWithSignIn(t *testing.T) {
	t.Parallel()
	srv := startSecureChatd(t)
	browser := newBrowser(t, chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash(t, srv.leaf.CertPEM)))

	// No token: the form, and a refusal that says how to sign in.
	anon := openTab(t, browser, "anonymous", srv.url)
	anon.login(t, "eve")
	anon.waitVisible(t, "login-error", true)
	if got := anon.text(t, "#login-error"); len(got) != 1 || !strings.Contains(got[0], "needs you to sign in") {
		t.Errorf("login error %q, want it to say the chat needs a sign-in", got)
	}

	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr, "--ca-file", srv.ca.CertFile, "--token", token(t, "bob", time.Hour))
	bob.expect(t, clock+`\* you joined as bob$`)

	ctx, cancel := chromedp.NewContext(browser)
	alice := &tab{ctx: ctx, cancel: cancel, name: "alice"}
	t.Cleanup(alice.close)
	if err := chromedp.Run(ctx); err != nil {
		t.Fatal(err)
	}
	alice.run(t, chromedp.Navigate(srv.url+"/#token="+token(t, "alice", time.Hour)))
	alice.waitUsers(t, "bob", "alice you")
	var href string
	alice.eval(t, "location.href", &href)
	if strings.Contains(href, "token") {
		t.Errorf("the page's URL is %q: the token is still in it", href)
	}
	bob.expect(t, clock+`\* alice joined$`)
	alice.say(t, "hello over wss")
	bob.expect(t, clock+`#general alice: hello over wss$`)
	bob.send(t, "hi alice")
	alice.waitLine(t, "#messages li.message", "bobhi alice")

	// A reload signs in again from the tab's storage and resumes.
	alice.run(t, chromedp.Reload())
	alice.waitUsers(t, "bob", "alice you")
	bob.send(t, "after the reload")
	alice.waitLine(t, "#messages li.message", "bobafter the reload")
}
