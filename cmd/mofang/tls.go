package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme/autocert"

	"github.com/mofang-live/mofang/internal/certreload"
	"github.com/mofang-live/mofang/internal/realip"
)

// tlsSetup is the service's TLS: the configuration of the HTTPS and RTMPS
// listeners, and the certificate files SIGHUP reloads (nil with ACME).
type tlsSetup struct {
	config *tls.Config
	cert   *certreload.Cert
	acme   *autocert.Manager
}

// tlsSetup builds the TLS of the settings: nil when TLS is off.
func (c *config) tlsSetup() (*tlsSetup, error) {
	files := c.TLSCert != "" || c.TLSKey != ""
	switch {
	case files && c.ACMEDomain != "":
		return nil, errors.New("tls-cert/tls-key and acme-domain: give one or the other")
	case files && (c.TLSCert == "" || c.TLSKey == ""):
		return nil, errors.New("tls-cert and tls-key go together")
	case !files && c.ACMEDomain == "":
		if c.RTMPSAddr != "" {
			return nil, errors.New("rtmps-addr needs tls-cert and tls-key, or acme-domain")
		}
		if c.ACMEEmail != "" {
			return nil, errors.New("acme-email needs acme-domain")
		}
		return nil, nil
	}
	if files {
		cert, err := certreload.Load(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, err
		}
		return &tlsSetup{cert: cert, config: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: cert.GetCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		}}, nil
	}
	var domains []string
	for _, d := range strings.Split(c.ACMEDomain, ",") {
		if d = strings.TrimSpace(d); d != "" {
			if strings.ContainsAny(d, "/:* ") {
				return nil, fmt.Errorf("acme-domain %q: want a host name", d)
			}
			domains = append(domains, d)
		}
	}
	if len(domains) == 0 {
		return nil, fmt.Errorf("acme-domain %q: no domain", c.ACMEDomain)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(filepath.Join(c.DataDir, "acme")),
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      c.ACMEEmail,
	}
	cfg := m.TLSConfig() // answers the TLS-ALPN-01 challenges too
	cfg.MinVersion = tls.VersionTLS12
	return &tlsSetup{config: cfg, acme: m}, nil
}

// reload reads the certificate files again (SIGHUP); a bad new pair keeps
// the old certificate.
func (t *tlsSetup) reload(log *slog.Logger) {
	if t == nil || t.cert == nil {
		log.Info("SIGHUP: no certificate files to reload")
		return
	}
	if err := t.cert.Reload(); err != nil {
		log.Error("TLS certificate not reloaded: keeping the one in use", "err", err)
		return
	}
	leaf := t.cert.Leaf()
	log.Info("TLS certificate reloaded", "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "expires", leaf.NotAfter)
}

// trustedProxies parses the trusted-proxies setting.
func (c *config) trustedProxies() ([]netip.Prefix, error) {
	p, err := realip.ParsePrefixes(c.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted-proxies: %w", err)
	}
	return p, nil
}

// proxyProtocolFrom parses the proxy-protocol-from setting.
func (c *config) proxyProtocolFrom() ([]netip.Prefix, error) {
	p, err := realip.ParsePrefixes(c.ProxyProtocolFrom)
	if err != nil {
		return nil, fmt.Errorf("proxy-protocol-from: %w", err)
	}
	return p, nil
}
