package main

// The listening side: one socket per Gateway address and listener port of the current snapshot, opened and
// closed as Gateways are programmed and deleted, plus the admin endpoint on loopback.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func logf(format string, args ...any) { log.Printf(format, args...) }

// State holds the current snapshot.
type State struct {
	snap  atomic.Pointer[Snapshot]
	ready atomic.Bool
}

func (s *State) Snapshot() *Snapshot {
	if p := s.snap.Load(); p != nil {
		return p
	}
	return &Snapshot{Backends: map[BackendID]*Backend{}}
}

type binding struct {
	addr     string // ip:port
	address  string
	port     int
	tls      bool
	regional bool
	server   *http.Server
	sources  atomic.Pointer[[]string]
	certs    atomic.Pointer[[]*tls.Certificate]
	problems atomic.Pointer[[]string]
	resolved atomic.Int64 // unix nanos of the last resolution
}

type Listeners struct {
	proxy *Proxy
	certs *CertStore
	mu    sync.Mutex
	binds map[string]*binding
}

func NewListeners(p *Proxy, c *CertStore) *Listeners {
	return &Listeners{proxy: p, certs: c, binds: map[string]*binding{}}
}

type bindSpec struct {
	address  string
	port     int
	tls      bool
	regional bool
	sources  []string
}

// Update opens what the snapshot needs and closes the rest.
func (l *Listeners) Update(snap *Snapshot) {
	wanted := map[string]*bindSpec{}
	for _, g := range snap.Gateways {
		for _, lc := range g.Listeners {
			addr := net.JoinHostPort(g.Address, strconv.Itoa(lc.Port))
			spec := wanted[addr]
			if spec == nil {
				spec = &bindSpec{address: g.Address, port: lc.Port, tls: lc.Protocol == "HTTPS",
					regional: g.Class != "gke-l7-global-external-managed" && g.Class != "gke-l7-gxlb"}
				wanted[addr] = spec
			}
			spec.sources = append(spec.sources, lc.Certs...)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, b := range l.binds {
		if spec, ok := wanted[addr]; !ok || spec.tls != b.tls {
			l.close(b)
			delete(l.binds, addr)
		}
	}
	for addr, spec := range wanted {
		b := l.binds[addr]
		if b == nil {
			var err error
			if b, err = l.open(addr, spec); err != nil {
				logf("listen %s: %v", addr, err)
				continue
			}
			l.binds[addr] = b
		}
		sources := spec.sources
		b.sources.Store(&sources)
		if b.tls {
			l.resolve(b)
		}
	}
}

func (l *Listeners) resolve(b *binding) {
	certs, problems := l.certs.Resolve(context.Background(), *b.sources.Load(), b.regional)
	b.certs.Store(&certs)
	b.problems.Store(&problems)
	b.resolved.Store(time.Now().UnixNano())
	for _, p := range problems {
		logf("listener %s: %s", b.addr, p)
	}
}

func (l *Listeners) open(addr string, spec *bindSpec) (*binding, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &binding{addr: addr, address: spec.address, port: spec.port, tls: spec.tls, regional: spec.regional}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.proxy.ServeHTTP(b.address, b.port, b.tls, w, r)
	})
	b.server = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 610 * time.Second,
		ErrorLog: log.New(discard{}, "", 0)}
	if spec.tls {
		b.server.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				certs := *b.certs.Load()
				if len(certs) == 0 && time.Since(time.Unix(0, b.resolved.Load())) > 2*time.Second {
					l.resolve(b)
					certs = *b.certs.Load()
				}
				if c := pickCertificate(certs, hello.ServerName); c != nil {
					return c, nil
				}
				return nil, fmt.Errorf("no certificate for %s", b.addr)
			}}
		go func() { _ = b.server.ServeTLS(ln, "", "") }()
	} else {
		go func() { _ = b.server.Serve(ln) }()
	}
	logf("listening on %s (%s)", addr, map[bool]string{true: "HTTPS", false: "HTTP"}[spec.tls])
	return b, nil
}

func (l *Listeners) close(b *binding) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = b.server.Shutdown(ctx)
	_ = b.server.Close()
	logf("closed %s", b.addr)
}

func (l *Listeners) CloseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, b := range l.binds {
		l.close(b)
		delete(l.binds, addr)
	}
}

func (l *Listeners) Addresses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for addr := range l.binds {
		out = append(out, addr)
	}
	sort.Strings(out)
	return out
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ---------------------------------------------------------------- admin endpoint

type backendReport struct {
	Backend     string           `json:"backend"`
	Kind        string           `json:"kind"`
	Namespace   string           `json:"namespace"`
	Name        string           `json:"name"`
	Port        int              `json:"port,omitempty"`
	Problem     string           `json:"problem,omitempty"`
	HealthCheck string           `json:"health_check"`
	Policy      string           `json:"health_check_policy,omitempty"`
	Healthy     int              `json:"healthy"`
	Endpoints   []EndpointHealth `json:"endpoints"`
	Timeout     float64          `json:"timeout_seconds"`
	Armor       string           `json:"security_policy,omitempty"`
	Picker      string           `json:"endpoint_picker,omitempty"`
}

type routeReport struct {
	Route     string   `json:"route"`
	Hostnames []string `json:"hostnames"`
}

type listenerReport struct {
	Name     string        `json:"name"`
	Address  string        `json:"address"`
	Protocol string        `json:"protocol"`
	Routes   []routeReport `json:"routes"`
	Problem  string        `json:"problem,omitempty"`
}

type gatewayReport struct {
	Gateway    string           `json:"gateway"`
	Class      string           `json:"class"`
	Address    string           `json:"address"`
	Listeners  []listenerReport `json:"listeners"`
	Extensions []string         `json:"extensions"`
}

func AdminHandler(state *State, health *HealthChecker, listeners *Listeners) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !state.ready.Load() {
			http.Error(w, "not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/gateways", func(w http.ResponseWriter, _ *http.Request) {
		snap := state.Snapshot()
		out := []gatewayReport{}
		for _, g := range snap.Gateways {
			gr := gatewayReport{Gateway: g.Key(), Class: g.Class, Address: g.Address, Extensions: []string{}}
			for _, lc := range g.Listeners {
				lr := listenerReport{Name: lc.Name, Address: net.JoinHostPort(g.Address, strconv.Itoa(lc.Port)),
					Protocol: lc.Protocol, Problem: lc.Problem, Routes: []routeReport{}}
				for _, r := range lc.Routes {
					lr.Routes = append(lr.Routes, routeReport{Route: r.Namespace + "/" + r.Name, Hostnames: r.Hostnames})
				}
				gr.Listeners = append(gr.Listeners, lr)
			}
			for _, e := range g.Extensions {
				gr.Extensions = append(gr.Extensions, e.Source)
			}
			out = append(out, gr)
		}
		writeJSON(w, map[string]any{"gateways": out, "listening": listeners.Addresses()})
	})
	mux.HandleFunc("/backends", func(w http.ResponseWriter, _ *http.Request) {
		snap := state.Snapshot()
		out := []backendReport{}
		for id, be := range snap.Backends {
			rep := backendReport{Backend: id.String(), Kind: id.Kind, Namespace: id.Namespace, Name: id.Name,
				Port: id.Port, Problem: be.Problem, HealthCheck: be.Health.Describe(), Policy: be.Health.Policy,
				Endpoints: health.Report(be), Timeout: be.Timeout.Seconds(), Armor: be.ArmorPolicy}
			for _, e := range rep.Endpoints {
				if e.State == "HEALTHY" {
					rep.Healthy++
				}
			}
			if be.Picker != nil {
				rep.Picker = be.Picker.ID.String()
			}
			out = append(out, rep)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Backend < out[j].Backend })
		writeJSON(w, map[string]any{"backends": out})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
