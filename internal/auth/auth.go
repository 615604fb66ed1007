// Package auth checks the JWTs that sign users in to chatd: a token names
// its user in "sub", is signed with the one key chatd is given (an HMAC
// secret, or an RSA, ECDSA or Ed25519 public key), and expires.
//
// What it refuses, and why:
//   - a token signed with another algorithm than the key's kind allows: the
//     accepted algorithms are pinned to the key, so that "alg": "none", or an
//     HS256 token whose HMAC secret is the server's RSA public key (which is
//     public), never verifies (algorithm confusion);
//   - a token without "exp": a token that never expires cannot be taken back;
//   - a token whose "iss" or "aud" is not the configured one, when one is;
//   - a token without "sub", the user it signs in.
//
// Clocks differ between the issuer and chatd: "exp", "nbf" and "iat" are
// checked with [Leeway] to spare.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/metadata"
)

// Leeway is the clock skew allowed between a token's issuer and chatd when
// "exp", "nbf" and "iat" are checked.
const Leeway = 30 * time.Second

// MaxTokenBytes bounds the tokens chatd parses: a token is a few hundred
// bytes, and a larger one is refused before any decoding.
const MaxTokenBytes = 8 << 10

// Config is how tokens are checked.
type Config struct {
	// Key is what signs tokens: see [ParseKey].
	Key *Key
	// Issuer, if not empty, is the "iss" every token must have.
	Issuer string
	// Audience, if not empty, must be among a token's "aud".
	Audience string
	// Clock tells the time; nil is the system's.
	Clock Clock
	// AdminClaim, if not empty, is the claim that makes a token's holder
	// an admin of the chat, when it is the JSON value true.
	AdminClaim string
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	clock  Clock
	parser *jwt.Parser
}

// Identity is who a valid token signs in, and until when.
type Identity struct {
	// Subject is the token's "sub": the username it signs in.
	Subject string
	// Expires is the token's "exp".
	Expires time.Time
	// Admin says the token's admin claim (Config.AdminClaim) is true.
	Admin bool
}

// claims are a token's registered claims, and whether its admin claim is
// true.
type claims struct {
	jwt.RegisteredClaims
	adminClaim string
	admin      bool
}

// UnmarshalJSON reads the registered claims, and the admin claim if one is
// configured.
func (c *claims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	if c.adminClaim == "" {
		return nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	c.admin = string(all[c.adminClaim]) == "true"
	return nil
}

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Key == nil {
		return nil, errors.New("auth: no key")
	}
	clock := cfg.Clock
	if clock == nil {
		clock = SystemClock()
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Key.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(clock.Now),
		// Only base64url without padding, as RFC 7515 says: one token has
		// one spelling.
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{cfg: cfg, clock: clock, parser: jwt.NewParser(opts...)}, nil
}

// Error is why a token was refused, in words safe to show its holder: they
// say what is wrong with the token, never anything about the key.
type Error struct {
	// Expired is set for a token that was valid but has expired: its
	// holder needs a fresh one, not a different one.
	Expired bool
	Msg     string
}

func (e *Error) Error() string { return e.Msg }

// ErrMissing is the error for a call that carries no token.
var ErrMissing = &Error{Msg: "sign-in required: send a token in the metadata \"authorization: Bearer <token>\""}

// Verify checks token and returns who it signs in; a refusal is an *[Error].
func (v *Verifier) Verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrMissing
	}
	if len(token) > MaxTokenBytes {
		return Identity{}, &Error{Msg: fmt.Sprintf("invalid token: longer than %d bytes", MaxTokenBytes)}
	}
	claims := &claims{adminClaim: v.cfg.AdminClaim}
	_, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		// The parser has checked the algorithm against the key's already
		// (WithValidMethods): the key is the one key, whatever the header
		// says ("kid" is not used).
		return v.cfg.Key.verify, nil
	})
	if err != nil {
		return Identity{}, refusal(err)
	}
	if claims.Subject == "" {
		return Identity{}, &Error{Msg: "invalid token: it has no \"sub\" (the username it signs in)"}
	}
	return Identity{Subject: claims.Subject, Expires: claims.ExpiresAt.Time, Admin: claims.admin}, nil
}

// refusal says why the parser refused a token. The parser's own messages
// are written for the server's operator; these are for the token's holder.
func refusal(err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{Expired: true, Msg: "token expired: get a fresh one"}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return &Error{Msg: "invalid token: it is not from the issuer this server trusts (\"iss\")"}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &Error{Msg: "invalid token: it is not for this server (\"aud\")"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The parser says which claim only in its message.
		for _, c := range []struct{ claim, why string }{
			{"exp", "chatd takes only tokens that expire"},
			{"iss", "this server takes tokens from one issuer"},
			{"aud", "this server takes tokens meant for it"},
		} {
			if strings.Contains(err.Error(), c.claim+" claim is required") {
				return &Error{Msg: fmt.Sprintf("invalid token: it has no %q; %s", c.claim, c.why)}
			}
		}
		return &Error{Msg: "invalid token: it lacks a claim this server requires"}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &Error{Msg: "invalid token: it is not valid yet (\"nbf\" or \"iat\" is in the future)"}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &Error{Msg: "invalid token: not a well-formed JWT"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		// An algorithm other than the key's ends here too.
		return &Error{Msg: "invalid token: its signature does not verify with this server's key"}
	}
	return &Error{Msg: "invalid token"}
}

// FromMetadata returns the bearer token of a call's "authorization"
// metadata, "" if it has none; an error if the metadata is there but is not
// one "Bearer" token.
func FromMetadata(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", &Error{Msg: "more than one \"authorization\" in the metadata: send one"}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", &Error{Msg: "\"authorization\" must be \"Bearer <token>\""}
	}
	return strings.TrimSpace(token), nil
}
