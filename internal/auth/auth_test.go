package auth_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/auth"
	"github.com/chatd/chatd/internal/authtest"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/metadata"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func verifier(t *testing.T, keyFile []byte, iss, aud string) *auth.Verifier {
	t.Helper()
	key, err := auth.ParseKey(keyFile)
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	v, err := auth.NewVerifier(auth.Config{Key: key, Issuer: iss, Audience: aud, Clock: authtest.NewClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func valid(sub string) authtest.Claims {
	return authtest.Claims{Subject: sub, Issuer: "https://id.example", Audience: "chatd", Expires: now.Add(time.Hour), IssuedAt: now}
}

// refused checks that v refuses token with a message containing want.
func refused(t *testing.T, v *auth.Verifier, token, want string) {
	t.Helper()
	id, err := v.Verify(token)
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("Verify accepted the token (sub %q) or failed with %v, want it refused with %q", id.Subject, err, want)
	}
	if !strings.Contains(ae.Msg, want) {
		t.Errorf("Verify refused with %q, want it to say %q", ae.Msg, want)
	}
}

func TestVerifyAcceptsEachKeyKind(t *testing.T) {
	t.Parallel()
	rsaKey, rsaPub := authtest.RSAKey(t)
	ecKey, ecPub := authtest.ECKey(t)
	edKey, edPub := authtest.EdKey(t)
	for _, tc := range []struct {
		name   string
		file   []byte
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", []byte(authtest.Secret + "\n"), jwt.SigningMethodHS256, []byte(authtest.Secret)},
		{"HS512", []byte(authtest.Secret), jwt.SigningMethodHS512, []byte(authtest.Secret)},
		{"RS256", rsaPub, jwt.SigningMethodRS256, rsaKey},
		{"ES256", ecPub, jwt.SigningMethodES256, ecKey},
		{"EdDSA", edPub, jwt.SigningMethodEdDSA, edKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(t, tc.file, "https://id.example", "chatd")
			id, err := v.Verify(authtest.Sign(t, tc.method, tc.key, valid("alice")))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Subject != "alice" || !id.Expires.Equal(now.Add(time.Hour)) {
				t.Errorf("Verify = %+v, want alice until %s", id, now.Add(time.Hour))
			}
		})
	}
}

func TestVerifyRefusesForgedTokens(t *testing.T) {
	t.Parallel()
	rsaKey, rsaPub := authtest.RSAKey(t)
	otherRSA, _ := authtest.RSAKey(t)
	ecKey, _ := authtest.ECKey(t)
	rsaV := verifier(t, rsaPub, "", "")
	hmacV := verifier(t, []byte(authtest.Secret), "", "")
	claims := valid("alice")

	t.Run("alg none", func(t *testing.T) {
		refused(t, rsaV, authtest.None(t, claims), "signature does not verify")
		refused(t, hmacV, authtest.None(t, claims), "signature does not verify")
	})
	t.Run("alg none by hand, with a signature", func(t *testing.T) {
		tok := authtest.Raw(t, map[string]any{"alg": "none", "typ": "JWT"}, map[string]any{"sub": "alice", "exp": now.Add(time.Hour).Unix()}, []byte("x"))
		refused(t, hmacV, tok, "signature does not verify")
	})
	t.Run("HS256 signed with the RSA public key as secret", func(t *testing.T) {
		// The classic algorithm confusion: the public key is public, and a
		// server that let the token pick HMAC would verify with it.
		refused(t, rsaV, authtest.Sign(t, jwt.SigningMethodHS256, rsaPub, claims), "signature does not verify")
		der := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
		refused(t, rsaV, authtest.Sign(t, jwt.SigningMethodHS256, der, claims), "signature does not verify")
	})
	t.Run("RS256 from another key", func(t *testing.T) {
		refused(t, rsaV, authtest.Sign(t, jwt.SigningMethodRS256, otherRSA, claims), "signature does not verify")
	})
	t.Run("ES256 for an RSA key", func(t *testing.T) {
		refused(t, rsaV, authtest.Sign(t, jwt.SigningMethodES256, ecKey, claims), "signature does not verify")
	})
	t.Run("PS256 with the right RSA key", func(t *testing.T) {
		// Another algorithm for the same kind of key: not pinned, refused.
		refused(t, rsaV, authtest.Sign(t, jwt.SigningMethodPS256, rsaKey, claims), "signature does not verify")
	})
	t.Run("HS256 with another secret", func(t *testing.T) {
		refused(t, hmacV, authtest.Sign(t, jwt.SigningMethodHS256, []byte("another secret, also thirty-two bytes long"), claims), "signature does not verify")
	})
	t.Run("claims changed after signing", func(t *testing.T) {
		tok := authtest.HS256(t, claims)
		other := authtest.HS256(t, valid("mallory"))
		parts, forged := strings.Split(tok, "."), strings.Split(other, ".")
		refused(t, hmacV, parts[0]+"."+forged[1]+"."+parts[2], "signature does not verify")
	})
	t.Run("malformed", func(t *testing.T) {
		refused(t, hmacV, "not.a.jwt", "not a well-formed JWT")
		refused(t, hmacV, "abc", "not a well-formed JWT")
		refused(t, hmacV, strings.Repeat("a", auth.MaxTokenBytes+1), "longer than")
	})
	t.Run("missing", func(t *testing.T) {
		refused(t, hmacV, "", "sign-in required")
	})
}

func TestVerifyChecksClaims(t *testing.T) {
	t.Parallel()
	v := verifier(t, []byte(authtest.Secret), "https://id.example", "chatd")
	with := func(f func(*authtest.Claims)) string {
		c := valid("alice")
		f(&c)
		return authtest.HS256(t, c)
	}
	refused(t, v, with(func(c *authtest.Claims) { c.Issuer = "https://evil.example" }), "issuer")
	refused(t, v, with(func(c *authtest.Claims) { c.Issuer = "" }), "no \"iss\"")
	refused(t, v, with(func(c *authtest.Claims) { c.Audience = "another-service" }), "\"aud\"")
	refused(t, v, with(func(c *authtest.Claims) { c.Audience = "" }), "\"aud\"")
	refused(t, v, with(func(c *authtest.Claims) { c.Expires = time.Time{} }), "no \"exp\"")
	refused(t, v, with(func(c *authtest.Claims) { c.Subject = "" }), "no \"sub\"")
	refused(t, v, with(func(c *authtest.Claims) { c.IssuedAt = now.Add(time.Hour) }), "not valid yet")

	// Expired: past the leeway, refused as expired; within it, taken.
	_, err := v.Verify(with(func(c *authtest.Claims) { c.Expires = now.Add(-auth.Leeway - time.Second) }))
	var ae *auth.Error
	if !errors.As(err, &ae) || !ae.Expired {
		t.Errorf("a token expired %s ago: Verify = %v, want an expired refusal", auth.Leeway+time.Second, err)
	}
	if _, err := v.Verify(with(func(c *authtest.Claims) { c.Expires = now.Add(-auth.Leeway + time.Second) })); err != nil {
		t.Errorf("a token expired within the leeway: Verify = %v, want it taken", err)
	}
}

func TestVerifyWithoutIssuerOrAudienceTakesAny(t *testing.T) {
	t.Parallel()
	v := verifier(t, []byte(authtest.Secret), "", "")
	c := valid("alice")
	c.Issuer, c.Audience = "whoever", "whatever"
	if _, err := v.Verify(authtest.HS256(t, c)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestParseKeyRefuses(t *testing.T) {
	t.Parallel()
	rsaKey, _ := authtest.RSAKey(t)
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	small, err := rsa.GenerateKey(strings.NewReader(strings.Repeat("not random at all ", 1000)), 1024)
	if err != nil {
		small = nil
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"short secret", []byte("hunter2\n"), "at least 32 bytes"},
		{"private key", priv, "private key"},
		{"broken PEM", []byte("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"), "PEM"},
		{"garbage in a PEM block", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")}), "cannot read"},
		{"two blocks", append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("a")}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("b")})...), "more than one"},
	} {
		if _, err := auth.ParseKey(tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseKey = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if small != nil {
		der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
		if _, err := auth.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err == nil || !strings.Contains(err.Error(), "2048") {
			t.Errorf("1024-bit RSA key: ParseKey = %v, want refused", err)
		}
	}
}

func TestFromMetadata(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vals    []string
		want    string
		wantErr bool
	}{
		{nil, "", false},
		{[]string{"Bearer abc"}, "abc", false},
		{[]string{"bearer  abc "}, "abc", false},
		{[]string{"Basic abc"}, "", true},
		{[]string{"Bearer"}, "", true},
		{[]string{"Bearer "}, "", true},
		{[]string{"Bearer a", "Bearer b"}, "", true},
	} {
		md := metadata.MD{}
		for _, v := range tc.vals {
			md.Append("authorization", v)
		}
		got, err := auth.FromMetadata(metadata.NewIncomingContext(context.Background(), md))
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("FromMetadata(%q) = %q, %v; want %q, error %v", tc.vals, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	clock := authtest.NewClock(now)
	key, _ := auth.ParseKey([]byte(authtest.Secret))
	v, _ := auth.NewVerifier(auth.Config{Key: key, Clock: clock})
	expired, stop := v.Expiry(auth.Identity{Subject: "alice", Expires: now.Add(time.Minute)})
	defer stop()
	clock.Advance(time.Minute + auth.Leeway - time.Second)
	select {
	case <-expired:
		t.Fatal("expired before exp plus the leeway")
	default:
	}
	clock.Advance(time.Second)
	select {
	case <-expired:
	case <-time.After(10 * time.Second):
		t.Fatal("not expired at exp plus the leeway")
	}
	_, stop2 := v.Expiry(auth.Identity{Subject: "bob", Expires: now.Add(time.Hour)})
	stop2()
	if n := clock.Timers(); n != 0 {
		t.Errorf("%d timers left after stop, want 0", n)
	}
}
