package main

// Certificates of HTTPS listeners: TLS Secrets (certificateRefs), and Certificate Manager certificates
// (tls.options networking.gke.io/cert-manager-certs), which only Google's load balancer can read with their
// private keys: here they come from the GCP fake's control endpoint /_fake/state, the fake's own view of its
// world. The certificate is chosen by SNI among the listener's certificates (SANs, wildcards included); without
// SNI, or when none matches, the first is served, as GCLB does.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

type CertStore struct {
	cache    *Cache
	endpoint string
	region   string
	client   *http.Client
	mu       sync.Mutex
	cm       map[string]*tls.Certificate // certificatemanager full name -> certificate
	cmAt     time.Time
	cmErr    error
	parsed   map[string]*tls.Certificate // secret key@resourceVersion -> certificate
}

func NewCertStore(cache *Cache, gcpEndpoint, region string) *CertStore {
	return &CertStore{cache: cache, endpoint: strings.TrimRight(gcpEndpoint, "/"), region: region,
		client: &http.Client{Timeout: 5 * time.Second}, cm: map[string]*tls.Certificate{},
		parsed: map[string]*tls.Certificate{}}
}

type fakeState struct {
	Certificates map[string]struct {
		PemCertificate string `json:"pemCertificate"`
		SelfManaged    struct {
			PemCertificate string `json:"pemCertificate"`
			PemPrivateKey  string `json:"pemPrivateKey"`
		} `json:"selfManaged"`
	} `json:"certificates"`
}

func (s *CertStore) refreshCertManager(ctx context.Context) {
	if s.endpoint == "" {
		s.cmErr = fmt.Errorf("no GCP endpoint configured (--gcp-endpoint)")
		return
	}
	if time.Since(s.cmAt) < 5*time.Second {
		return
	}
	s.cmAt = time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+"/_fake/state", nil)
	resp, err := s.client.Do(req)
	if err != nil {
		s.cmErr = err
		return
	}
	defer resp.Body.Close()
	var st fakeState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		s.cmErr = err
		return
	}
	s.cmErr = nil
	s.cm = map[string]*tls.Certificate{}
	for name, c := range st.Certificates {
		pemCert := c.SelfManaged.PemCertificate
		if pemCert == "" {
			pemCert = c.PemCertificate
		}
		cert, err := tls.X509KeyPair([]byte(pemCert), []byte(c.SelfManaged.PemPrivateKey))
		if err != nil {
			logf("certificates: %s: %v", name, err)
			continue
		}
		s.cm[name] = &cert
	}
}

// Resolve turns a listener's certificate sources into certificates, with a problem for each that failed.
func (s *CertStore) Resolve(ctx context.Context, sources []string, regional bool) ([]*tls.Certificate, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var certs []*tls.Certificate
	var problems []string
	secrets := map[string]*Secret{}
	for _, sec := range All[Secret](s.cache, resSecrets) {
		secrets[sec.Metadata.Key()] = sec
	}
	for _, src := range sources {
		kind, ref, _ := strings.Cut(src, ":")
		switch kind {
		case "secret":
			sec := secrets[ref]
			if sec == nil {
				problems = append(problems, "TLS Secret "+ref+" not found")
				continue
			}
			k := ref + "@" + sec.Metadata.ResourceVersion
			cert := s.parsed[k]
			if cert == nil {
				c, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
				if err != nil {
					problems = append(problems, fmt.Sprintf("TLS Secret %s: %v", ref, err))
					continue
				}
				cert = &c
				s.parsed[k] = cert
			}
			certs = append(certs, cert)
		case "certmanager":
			s.refreshCertManager(ctx)
			location := "global"
			if regional {
				location = s.region
			}
			var found *tls.Certificate
			for name, c := range s.cm {
				if strings.HasSuffix(name, "/locations/"+location+"/certificates/"+ref) {
					found = c
				}
			}
			if found == nil {
				msg := fmt.Sprintf("Certificate Manager certificate %s not found in %s", ref, location)
				if s.cmErr != nil {
					msg += fmt.Sprintf(" (reading the GCP fake: %v)", s.cmErr)
				}
				problems = append(problems, msg)
				continue
			}
			certs = append(certs, found)
		case "certmap":
			problems = append(problems, "certificate map "+ref+": certificate maps are not modelled by the GCP fake")
		}
	}
	return certs, problems
}

// pickCertificate chooses by SNI.
func pickCertificate(certs []*tls.Certificate, serverName string) *tls.Certificate {
	if len(certs) == 0 {
		return nil
	}
	serverName = strings.ToLower(serverName)
	if serverName != "" {
		for _, c := range certs {
			leaf := c.Leaf
			if leaf == nil && len(c.Certificate) > 0 {
				leaf, _ = x509.ParseCertificate(c.Certificate[0])
			}
			if leaf != nil && leaf.VerifyHostname(serverName) == nil {
				return c
			}
		}
	}
	return certs[0]
}
