// Package certfile serves a TLS certificate from its files and takes a new
// one from them when they change, as they do when a certificate is renewed
// (certbot, cert-manager): no restart, and no connection dropped. The
// files are looked at on a handshake, at most once per [Config.CheckEvery];
// a connection already made keeps the certificate it was made with.
//
// A new pair that does not load (a key that does not match, a file half
// written) is logged and the old certificate kept; the files are tried
// again once either changes again.
package certfile

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is how often, at most, the files are looked at.
const DefaultCheckEvery = time.Second

// Config names the files and how often to look at them.
type Config struct {
	// CertFile is the PEM certificate chain, the server's own first;
	// KeyFile its PEM private key.
	CertFile, KeyFile string
	// CheckEvery is the least time between two looks at the files; 0
	// looks on every handshake. Negative is [DefaultCheckEvery].
	CheckEvery time.Duration
	// Logger gets a line for each certificate taken, or refused.
	Logger *slog.Logger
	// Now tells the time; nil is time.Now.
	Now func() time.Time
}

// Reloader holds the certificate. Its methods are safe for concurrent use.
type Reloader struct {
	cfg Config

	mu        sync.Mutex
	cert      *tls.Certificate
	tried     stamp     // the files as they were at the last load, good or not
	lastCheck time.Time // when the files were last looked at
}

// stamp is what tells that a file changed: its size and time of change,
// for each of the two files.
type stamp struct {
	certSize, keySize int64
	certTime, keyTime time.Time
}

// New loads the pair named in cfg, and fails if it does not load.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("both a certificate file and a key file are needed")
	}
	if cfg.CheckEvery < 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Reloader{cfg: cfg}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.tried, r.lastCheck = cert, st, cfg.Now()
	return r, nil
}

// GetCertificate is for [tls.Config.GetCertificate].
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.cfg.Now(); now.Sub(r.lastCheck) >= r.cfg.CheckEvery {
		r.lastCheck = now
		r.checkLocked()
	}
	return r.cert, nil
}

// checkLocked loads the files if they changed since the last try.
func (r *Reloader) checkLocked() {
	st, err := r.stat()
	if err != nil {
		if st != r.tried {
			r.cfg.Logger.Warn("cannot read the TLS certificate files: keeping the certificate in use", "err", err)
			r.tried = st
		}
		return
	}
	if st == r.tried {
		return
	}
	r.tried = st
	cert, err := r.load()
	if err != nil {
		// Perhaps half written: tried again when either file changes.
		r.cfg.Logger.Warn("the TLS certificate files changed but do not load: keeping the certificate in use", "err", err)
		return
	}
	r.cert = cert
	r.cfg.Logger.Info("took the renewed TLS certificate", "cert_file", r.cfg.CertFile, "not_after", cert.Leaf.NotAfter)
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.cfg.CertFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(r.cfg.KeyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certSize: c.Size(), keySize: k.Size(), certTime: c.ModTime(), keyTime: k.ModTime()}, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the TLS certificate %s with the key %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	// LoadX509KeyPair fills Leaf (Go 1.23 on); a chain that is not a
	// certificate would have failed above.
	return &cert, nil
}
