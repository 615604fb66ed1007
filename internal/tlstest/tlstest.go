// Package tlstest makes a certificate authority for a test, and server
// certificates it signs for localhost, written to files as chatd takes
// them.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	t    testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is the CA's certificate, PEM, for clients to trust.
	CertFile string
	// Pool holds the CA's certificate.
	Pool *x509.CertPool
	dir  string
	n    int64
}

// NewCA makes a CA whose files are in the test's temporary directory.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "chatd test CA " + t.Name()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{t: t, cert: cert, key: key, dir: t.TempDir(), Pool: x509.NewCertPool(), n: 1}
	ca.Pool.AddCert(cert)
	ca.CertFile = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Leaf is a server certificate the CA signed.
type Leaf struct {
	// Serial tells one leaf from another: handshakes show which they got.
	Serial *big.Int
	// CertPEM and KeyPEM are the certificate and its key, PEM.
	CertPEM, KeyPEM []byte
}

// Issue signs a new certificate for localhost, 127.0.0.1 and ::1.
func (ca *CA) Issue() Leaf {
	t := ca.t
	t.Helper()
	ca.n++
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.n),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Leaf{
		Serial:  tmpl.SerialNumber,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

// IssueFiles issues a certificate and writes it to two new files in the
// CA's directory, returning their paths.
func (ca *CA) IssueFiles() (leaf Leaf, certFile, keyFile string) {
	ca.t.Helper()
	leaf = ca.Issue()
	certFile = filepath.Join(ca.dir, "server.pem")
	keyFile = filepath.Join(ca.dir, "server-key.pem")
	Replace(ca.t, certFile, keyFile, leaf)
	return leaf, certFile, keyFile
}

// Replace writes leaf over certFile and keyFile as a renewal does: each
// written beside its file and renamed over it, so that no reader sees half
// a file.
func Replace(t testing.TB, certFile, keyFile string, leaf Leaf) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, leaf.KeyPEM}, {certFile, leaf.CertPEM}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// ClientConfig is a TLS client config that trusts only the CA.
func (ca *CA) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
