// Package certreload serves a TLS certificate from PEM files that can be
// replaced while the server runs: Reload reads them again (on SIGHUP,
// say) and swaps the certificate atomically; a bad new pair keeps the
// old one.
package certreload

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
)

// Cert is a reloadable certificate. Create it with Load.
type Cert struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads the certificate and key files (PEM) for the first time.
func Load(certFile, keyFile string) (*Cert, error) {
	c := &Cert{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On error the certificate in use stays.
func (c *Cert) Reload() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parsing TLS certificate %s: %w", c.certFile, err)
		}
	}
	c.cur.Store(&cert)
	return nil
}

// Leaf returns the certificate in use.
func (c *Cert) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// GetCertificate is tls.Config's GetCertificate: the certificate in use.
func (c *Cert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}
