package certfile_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/certfile"
	"github.com/chatd/chatd/internal/tlstest"
)

// fakeNow is a clock the test moves.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func serial(t *testing.T, r *certfile.Reloader) *big.Int {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber
}

func TestReloadWhenTheFilesChange(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	first, certFile, keyFile := ca.IssueFiles()
	clock := &fakeNow{t: time.Now()}
	var log syncBuf
	r, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: 5 * time.Second, Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(t, r); got.Cmp(first.Serial) != 0 {
		t.Fatalf("serial %s, want %s", got, first.Serial)
	}

	second := ca.Issue()
	tlstest.Replace(t, certFile, keyFile, second)
	if got := serial(t, r); got.Cmp(first.Serial) != 0 {
		t.Errorf("files looked at again before CheckEvery passed: serial %s, want still %s", got, first.Serial)
	}
	clock.add(5 * time.Second)
	if got := serial(t, r); got.Cmp(second.Serial) != 0 {
		t.Errorf("after the renewal: serial %s, want %s", got, second.Serial)
	}

	// A key that does not match the certificate: the old pair stays.
	third := ca.Issue()
	bad := tlstest.Leaf{CertPEM: third.CertPEM, KeyPEM: ca.Issue().KeyPEM}
	tlstest.Replace(t, certFile, keyFile, bad)
	clock.add(5 * time.Second)
	if got := serial(t, r); got.Cmp(second.Serial) != 0 {
		t.Errorf("after a bad pair: serial %s, want still %s", got, second.Serial)
	}
	if !strings.Contains(log.String(), "do not load") {
		t.Errorf("a bad pair was not logged; log:\n%s", log.String())
	}
	// Then the right key arrives: taken.
	tlstest.Replace(t, certFile, keyFile, third)
	clock.add(5 * time.Second)
	if got := serial(t, r); got.Cmp(third.Serial) != 0 {
		t.Errorf("after the good pair: serial %s, want %s", got, third.Serial)
	}

	// Files gone: the certificate in use stays.
	os.Remove(certFile)
	clock.add(5 * time.Second)
	if got := serial(t, r); got.Cmp(third.Serial) != 0 {
		t.Errorf("with the files gone: serial %s, want still %s", got, third.Serial)
	}
}

func TestNewRefusesABadPair(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	_, certFile, keyFile := ca.IssueFiles()
	if _, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: ca.CertFile}); err == nil {
		t.Error("New took a CA certificate for a key")
	}
	if _, err := certfile.New(certfile.Config{CertFile: certFile + ".missing", KeyFile: keyFile}); err == nil {
		t.Error("New took a missing file")
	}
}

// A connection made before a renewal keeps working on the old
// certificate; the next one gets the new one.
func TestRenewalKeepsConnections(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	first, certFile, keyFile := ca.IssueFiles()
	r, err := certfile.New(certfile.Config{CertFile: certFile, KeyFile: keyFile, CheckEvery: 0})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: r.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the listener and the connections are closed
	t.Cleanup(func() { lis.Close() })
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); _, _ = io.Copy(c, c) })
		}
	})
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", lis.Addr().String(), ca.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echo := func(c *tls.Conn) {
		t.Helper()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: %q, %v", buf, err)
		}
	}
	old := dial()
	echo(old)
	second := ca.Issue()
	tlstest.Replace(t, certFile, keyFile, second)
	fresh := dial()
	if got := fresh.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(second.Serial) != 0 {
		t.Errorf("new connection got serial %s, want the renewed %s", got, second.Serial)
	}
	echo(old)
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.Serial) != 0 {
		t.Errorf("old connection has serial %s, want %s", got, first.Serial)
	}
}
