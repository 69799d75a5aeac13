package main

// Active health checks, as GKE's load balancer runs them from a HealthCheckPolicy (or its default check):
// every endpoint of every backend in use is probed on the policy's port and path every checkIntervalSec; an
// endpoint becomes unhealthy after unhealthyThreshold failures in a row and healthy again after
// healthyThreshold successes. A new endpoint (or one whose check changed) is unknown until its first probe,
// which decides at once, so that a fresh backend does not wait thresholds × interval. Unknown and unhealthy
// endpoints get no traffic.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

type hcState struct {
	Known      bool      `json:"known"`
	Healthy    bool      `json:"healthy"`
	Successes  int       `json:"-"`
	Failures   int       `json:"-"`
	LastError  string    `json:"last_error,omitempty"`
	LastCheck  time.Time `json:"last_check"`
	CheckCount int       `json:"checks"`
}

type hcTarget struct {
	key     string
	backend BackendID
	ep      Endpoint
	check   HealthCheck
	cancel  context.CancelFunc
	state   hcState
}

type HealthChecker struct {
	dialer  *Dialer
	grpc    *GRPCPool
	client  *http.Client
	tlsCli  *http.Client
	mu      sync.RWMutex
	targets map[string]*hcTarget
	onFlip  func() // called when an endpoint's health changes
}

func NewHealthChecker(d *Dialer, g *GRPCPool, onFlip func()) *HealthChecker {
	plain := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	secure := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // #nosec G402: GCLB does not verify backends
	return &HealthChecker{dialer: d, grpc: g, client: &http.Client{Transport: plain},
		tlsCli: &http.Client{Transport: secure}, targets: map[string]*hcTarget{}, onFlip: onFlip}
}

func hcKey(id BackendID, ep Endpoint, hc HealthCheck) string {
	return fmt.Sprintf("%s|%s|%+v", id, ep.Addr(), hc)
}

// Update starts checks for the endpoints of the snapshot's backends and stops the others.
func (h *HealthChecker) Update(snap *Snapshot) {
	wanted := map[string]*hcTarget{}
	for id, be := range snap.Backends {
		if be.Health.Type == "" {
			continue
		}
		for _, ep := range be.Endpoints {
			k := hcKey(id, ep, be.Health)
			wanted[k] = &hcTarget{key: k, backend: id, ep: ep, check: be.Health}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, t := range h.targets {
		if _, ok := wanted[k]; !ok {
			t.cancel()
			delete(h.targets, k)
		}
	}
	for k, t := range wanted {
		if _, ok := h.targets[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.cancel = cancel
		h.targets[k] = t
		go h.run(ctx, t)
	}
}

func (h *HealthChecker) run(ctx context.Context, t *hcTarget) {
	for {
		err := h.probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		h.record(t, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(t.check.Interval):
		}
	}
}

func (h *HealthChecker) record(t *hcTarget, err error) {
	h.mu.Lock()
	s := &t.state
	before := s.Known && s.Healthy
	s.LastCheck, s.CheckCount = time.Now(), s.CheckCount+1
	if err == nil {
		s.Successes, s.Failures, s.LastError = s.Successes+1, 0, ""
		if !s.Known || s.Successes >= t.check.Healthy {
			s.Healthy = true
		}
	} else {
		s.Failures, s.Successes, s.LastError = s.Failures+1, 0, err.Error()
		if !s.Known || s.Failures >= t.check.Unhealthy {
			s.Healthy = false
		}
	}
	s.Known = true
	after := s.Healthy
	h.mu.Unlock()
	if before != after {
		state := "UNHEALTHY"
		if after {
			state = "HEALTHY"
		}
		logf("health: %s endpoint %s (%s) is %s (%s)%s", t.backend, t.ep.Addr(), t.ep.Pod, state,
			t.check.Describe(), map[bool]string{true: "", false: ": " + s.LastError}[after])
		if h.onFlip != nil {
			h.onFlip()
		}
	}
}

func (h *HealthChecker) probe(ctx context.Context, t *hcTarget) error {
	port := t.check.Port
	if port == 0 {
		port = t.ep.Port
	}
	addr := net.JoinHostPort(t.ep.IP, strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, t.check.Timeout)
	defer cancel()
	switch t.check.Type {
	case "TCP":
		conn, err := h.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	case "GRPC":
		conn, err := h.grpc.Conn(addr, false)
		if err != nil {
			return err
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: t.check.GRPCService})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("gRPC health status %s", resp.Status)
		}
		return nil
	}
	scheme, client := "http", h.client
	if t.check.Type == "HTTPS" || t.check.Type == "HTTP2" {
		scheme, client = "https", h.tlsCli
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+t.check.Path, nil)
	if err != nil {
		return err
	}
	if t.check.Host != "" {
		req.Host = t.check.Host
	}
	req.Header.Set("User-Agent", "GoogleHC/1.0")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %d", t.check.Path, resp.StatusCode)
	}
	if t.check.Response != "" && !strings.Contains(string(body), t.check.Response) {
		return fmt.Errorf("GET %s: response does not contain %q", t.check.Path, t.check.Response)
	}
	return nil
}

// Healthy: the endpoint passed its backend's check (always true for backends without an active check).
func (h *HealthChecker) Healthy(be *Backend, ep Endpoint) bool {
	if be.Health.Type == "" {
		return true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	t, ok := h.targets[hcKey(be.ID, ep, be.Health)]
	return ok && t.state.Known && t.state.Healthy
}

// Known: the endpoint's first health check answered (always true without an active check).
func (h *HealthChecker) Known(be *Backend, ep Endpoint) bool {
	if be.Health.Type == "" {
		return true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	t, ok := h.targets[hcKey(be.ID, ep, be.Health)]
	return ok && t.state.Known
}

// firstCheckWait: how long a request waits for a new endpoint's first check when no endpoint of its backend is
// healthy yet. GKE holds a pod's readiness (the NEG readiness gate) until the load balancer's check passes, so a
// rolling update never removes the last healthy endpoint before its successor is healthy at the load balancer;
// here the endpoint set follows EndpointSlices at once, and this short wait stands in for that gate.
const firstCheckWait = 2 * time.Second

// HealthyEndpoints of a backend, in the backend's order (waiting up to firstCheckWait for the first check of new
// endpoints when none is healthy).
func (h *HealthChecker) HealthyEndpoints(be *Backend) []Endpoint {
	deadline := time.Now().Add(firstCheckWait)
	for {
		var out []Endpoint
		pending := false
		for _, ep := range be.Endpoints {
			if h.Healthy(be, ep) {
				out = append(out, ep)
			} else if !h.Known(be, ep) {
				pending = true
			}
		}
		if len(out) > 0 || !pending || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EndpointHealth is one line of the admin report.
type EndpointHealth struct {
	Address string `json:"address"`
	Pod     string `json:"pod,omitempty"`
	State   string `json:"state"` // HEALTHY, UNHEALTHY, UNKNOWN
	hcState
}

func (h *HealthChecker) Report(be *Backend) []EndpointHealth {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := []EndpointHealth{}
	for _, ep := range be.Endpoints {
		eh := EndpointHealth{Address: ep.Addr(), Pod: ep.Pod, State: "HEALTHY"}
		if be.Health.Type != "" {
			eh.State = "UNKNOWN"
			if t, ok := h.targets[hcKey(be.ID, ep, be.Health)]; ok {
				eh.hcState = t.state
				if t.state.Known {
					eh.State = map[bool]string{true: "HEALTHY", false: "UNHEALTHY"}[t.state.Healthy]
				}
			}
		}
		out = append(out, eh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}
