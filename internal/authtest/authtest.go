// Package authtest makes what tests of chatd's sign-in need: keys, tokens
// signed with them (and forged ones), and a clock the test moves on.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Secret is an HMAC secret long enough for chatd.
const Secret = "0123456789abcdef0123456789abcdef-test-secret"

// RSAKey returns a new 2048-bit RSA key and its public key in PEM.
func RSAKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPEM(t, &k.PublicKey)
}

// ECKey returns a new P-256 key and its public key in PEM.
func ECKey(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPEM(t, &k.PublicKey)
}

// EdKey returns a new Ed25519 key and its public key in PEM.
func EdKey(t testing.TB) (ed25519.PrivateKey, []byte) {
	t.Helper()
	pub, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPEM(t, pub)
}

func pubPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// WriteFile writes data to a new file in a test's temporary directory and
// returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Claims are a token's claims; zero fields are left out.
type Claims struct {
	Subject  string
	Issuer   string
	Audience string
	Expires  time.Time // zero: no "exp"
	IssuedAt time.Time
	// Extra are more claims, by name: an admin claim, for one.
	Extra map[string]any
}

func (c Claims) jwt() jwt.RegisteredClaims {
	rc := jwt.RegisteredClaims{Subject: c.Subject, Issuer: c.Issuer}
	if c.Audience != "" {
		rc.Audience = jwt.ClaimStrings{c.Audience}
	}
	if !c.Expires.IsZero() {
		rc.ExpiresAt = jwt.NewNumericDate(c.Expires)
	}
	if !c.IssuedAt.IsZero() {
		rc.IssuedAt = jwt.NewNumericDate(c.IssuedAt)
	}
	return rc
}

// Sign returns a token with claims, signed by method with key.
func Sign(t testing.TB, method jwt.SigningMethod, key any, c Claims) string {
	t.Helper()
	var claims jwt.Claims = c.jwt()
	if len(c.Extra) > 0 {
		b, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		m := jwt.MapClaims{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.Extra {
			m[k] = v
		}
		claims = m
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// HS256 returns a token with claims signed with [Secret].
func HS256(t testing.TB, c Claims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodHS256, []byte(Secret), c)
}

// None returns an unsigned token ("alg": "none") with claims.
func None(t testing.TB, c Claims) string {
	t.Helper()
	return Sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)
}

// Raw returns a token made by hand: header and claims as JSON, and the
// signature bytes as they are, for forgeries no library would sign.
func Raw(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	enc := func(v map[string]any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Clock is a clock that moves only when told to, for [auth.Clock].
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*timer]struct{}
}

type timer struct {
	at time.Time
	f  func()
}

// NewClock returns a clock at now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, timers: make(map[*timer]struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc runs f once the clock has been moved d on.
func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &timer{at: c.now.Add(d), f: f}
	c.timers[tm] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[tm]
		delete(c.timers, tm)
		return ok
	}
}

// Timers returns how many functions wait for the clock.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock d on and runs, each in its own goroutine as
// time.AfterFunc would, every function whose time has come.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	for tm := range c.timers {
		if !tm.at.After(c.now) {
			due = append(due, tm)
			delete(c.timers, tm)
		}
	}
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, tm := range due {
		go tm.f()
	}
}

// Bearer is token as "authorization" metadata wants it.
func Bearer(token string) string { return "Bearer " + strings.TrimSpace(token) }
