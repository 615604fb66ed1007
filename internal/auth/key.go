package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinSecretBytes is the shortest HMAC secret taken: RFC 7518 asks for a
// key at least as long as the hash, 32 bytes for HS256.
const MinSecretBytes = 32

// MinRSABits is the smallest RSA key taken (RFC 7518 asks for 2048).
const MinRSABits = 2048

// Key is the key tokens are verified with, and the algorithms its kind
// allows.
type Key struct {
	verify  any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	methods []string // the "alg" values taken: only those of verify's kind
	kind    string   // for messages: "HMAC secret", "RSA public key", …
}

// String names the key's kind and its algorithms.
func (k *Key) String() string { return fmt.Sprintf("%s (%s)", k.kind, strings.Join(k.methods, ", ")) }

// ParseKey reads what a key file holds: a PEM public key (PKIX "PUBLIC
// KEY", PKCS#1 "RSA PUBLIC KEY", or a "CERTIFICATE" whose key is used),
// or else an HMAC secret, the file's bytes without a trailing newline.
//
// The algorithms follow from the key, never from a token: an RSA key
// verifies RS256, RS384 and RS512; an ECDSA key the one algorithm of its
// curve (ES256 for P-256, ES384, ES512); an Ed25519 key EdDSA; a secret
// HS256, HS384 and HS512. A file that looks like PEM but is not a public
// key is an error, never taken for a secret: a public key used as an HMAC
// secret is exactly what an attacker can sign with.
func ParseKey(data []byte) (*Key, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePEM(data)
	}
	secret := bytes.TrimRight(data, "\r\n")
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("an HMAC secret must be at least %d bytes, got %d (make one with: openssl rand -hex 32)", MinSecretBytes, len(secret))
	}
	return &Key{verify: bytes.Clone(secret), methods: []string{"HS256", "HS384", "HS512"}, kind: "HMAC secret"}, nil
}

func parsePEM(data []byte) (*Key, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the file looks like PEM but holds no PEM block")
	}
	if p, _ := pem.Decode(rest); p != nil {
		return nil, fmt.Errorf("the file holds more than one PEM block (%q, then %q): give only the public key", block.Type, p.Type)
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		if bytes.Contains([]byte(block.Type), []byte("PRIVATE")) {
			return nil, fmt.Errorf("the file holds a private key (%s): give chatd the public key only (openssl pkey -in key.pem -pubout)", block.Type)
		}
		return nil, fmt.Errorf("the file holds a %q PEM block, not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the %s: %v", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("the RSA key has %d bits; at least %d are needed", k.N.BitLen(), MinRSABits)
		}
		return &Key{verify: k, methods: []string{"RS256", "RS384", "RS512"}, kind: "RSA public key"}, nil
	case *ecdsa.PublicKey:
		alg, ok := map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[k.Curve]
		if !ok {
			return nil, fmt.Errorf("the ECDSA key's curve %s has no JWT algorithm: use P-256, P-384 or P-521", k.Curve.Params().Name)
		}
		return &Key{verify: k, methods: []string{alg}, kind: "ECDSA " + k.Curve.Params().Name + " public key"}, nil
	case ed25519.PublicKey:
		return &Key{verify: k, methods: []string{"EdDSA"}, kind: "Ed25519 public key"}, nil
	}
	return nil, fmt.Errorf("the key is a %T, which chatd cannot verify tokens with: use an HMAC secret or an RSA, ECDSA or Ed25519 public key", pub)
}
