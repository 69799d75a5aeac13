package main

// One request through the simulated load balancer, in GKE's order: listener (by port and hostname), the
// Gateway's routing extensions (GCPRoutingExtension: BBR), route matching (404 when nothing matches), the
// rule's filters (redirect, header modifiers, rewrite), the backend by weight, Cloud Armor of the backend's
// GCPBackendPolicy, then a Service endpoint (round robin over healthy endpoints) or, for an InferencePool, the
// endpoint its endpoint picker chooses; the response streams back (through the picker for pools).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Local-only response headers, for tests and the smoke playbook (GKE adds nothing like them).
const (
	HeaderEndpoint = "X-Infgw-Local-Endpoint" // ip:port that served the request
	HeaderPod      = "X-Infgw-Local-Pod"      // namespace/name of the pod behind it
	HeaderBackend  = "X-Infgw-Local-Backend"  // the backend (Service ns/name:port or InferencePool ns/name)
	HeaderRoute    = "X-Infgw-Local-Route"    // the HTTPRoute namespace/name and rule index
)

const maxRequestBody = 32 << 20

// poolClasses serve InferencePool backends (GKE's regional Application Load Balancers), as gke_sim decides.
var poolClasses = map[string]bool{"gke-l7-regional-external-managed": true, "gke-l7-rilb": true}

type Proxy struct {
	state     *State
	health    *HealthChecker
	grpc      *GRPCPool
	armor     *ArmorStore
	transport *http.Transport
	rr        sync.Map // BackendID -> *atomic.Uint64
	accessLog bool
}

func NewProxy(state *State, health *HealthChecker, grpcPool *GRPCPool, armor *ArmorStore, d *Dialer, accessLog bool) *Proxy {
	t := &http.Transport{DialContext: d.DialContext, MaxIdleConns: 256, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 60 * time.Second, DisableCompression: true, ForceAttemptHTTP2: false}
	return &Proxy{state: state, health: health, grpc: grpcPool, armor: armor, transport: t, accessLog: accessLog}
}

// exchange is the state of one request.
type exchange struct {
	w        http.ResponseWriter
	r        *http.Request
	start    time.Time
	gw       *GatewayConfig
	scheme   string
	header   http.Header
	path     string // path and query as forwarded
	host     string
	body     []byte
	route    string
	backend  string
	endpoint Endpoint
	status   int
	respMod  []*HeaderModifier
}

func (x *exchange) reply(status int, body string) {
	x.status = status
	h := x.w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Via", "1.1 google")
	x.w.WriteHeader(status)
	_, _ = io.WriteString(x.w, body)
}

// ServeHTTP handles a request that arrived on a Gateway address and port.
func (p *Proxy) ServeHTTP(address string, port int, tlsOn bool, w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, r: r, start: time.Now(), scheme: map[bool]string{true: "https", false: "http"}[tlsOn]}
	defer func() {
		if p.accessLog {
			endpoint := "-"
			if x.endpoint.IP != "" {
				endpoint = x.endpoint.Addr()
			}
			logf("access %s %s %s%s -> %d route=%s backend=%s endpoint=%s pod=%s %.1fms", r.RemoteAddr, r.Method,
				r.Host, r.URL.RequestURI(), x.status, x.route, x.backend, endpoint, x.endpoint.Pod,
				float64(time.Since(x.start).Microseconds())/1000)
		}
	}()
	snap := p.state.Snapshot()
	for _, g := range snap.Gateways {
		if g.Address == address {
			x.gw = g
			break
		}
	}
	if x.gw == nil {
		x.reply(http.StatusNotFound, "default backend - 404\n")
		return
	}
	req := &RouteRequest{Host: r.Host, Path: r.URL.Path, Method: r.Method, Header: r.Header.Clone(), Query: r.URL.Query()}
	listener := pickListener(x.gw, port, req)
	if listener == nil {
		x.reply(http.StatusNotFound, "default backend - 404\n")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		x.reply(http.StatusBadRequest, "cannot read the request body\n")
		return
	}
	if len(body) > maxRequestBody {
		x.reply(http.StatusRequestEntityTooLarge, "request body too large\n")
		return
	}
	x.body, x.header, x.path, x.host = body, req.Header, r.URL.RequestURI(), r.Host
	prepareHeaders(x, r)

	// Routing extensions run before route matching (GKE: route extensions on the forwarding rule).
	for _, ext := range x.gw.Extensions {
		if !ext.Events["RequestHeaders"] && !ext.Events["RequestBody"] {
			continue
		}
		if done := p.callExtension(x, ext); done {
			return
		}
	}
	req.Header, req.Path = x.header, pathOnly(x.path)
	req.Query = queryOf(x.path)
	m := Match(listener.Routes, req)
	if m == nil {
		x.reply(http.StatusNotFound, "default backend - 404\n")
		return
	}
	x.route = fmt.Sprintf("%s/%s#%d", m.Route.Namespace, m.Route.Name, m.RuleIndex)
	if done := applyFilters(x, m); done {
		return
	}
	ref := chooseBackendRef(m.Rule.BackendRefs)
	if ref == nil {
		x.reply(http.StatusInternalServerError, "no backend for this route rule\n")
		return
	}
	be := snap.Backend(BackendIDOf(m.Route.Namespace, *ref))
	if be == nil {
		x.reply(http.StatusInternalServerError, "backend not resolved\n")
		return
	}
	x.backend = be.ID.String()
	if be.Problem != "" {
		x.reply(http.StatusInternalServerError, be.Problem+"\n")
		return
	}
	if be.ArmorPolicy != "" {
		if done := p.cloudArmor(x, be); done {
			return
		}
	}
	if be.ID.Kind == "InferencePool" && !poolClasses[x.gw.Class] {
		// gke_sim reports the route InvalidKind: GKE does not program InferencePool backends on this class.
		x.reply(http.StatusInternalServerError, "InferencePool backends are not supported by GatewayClass "+x.gw.Class+"\n")
		return
	}
	if be.ID.Kind == "InferencePool" {
		p.servePool(x, be)
	} else {
		p.serveService(x, be)
	}
}

func pathOnly(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

func queryOf(uri string) map[string][]string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		q, _ := url.ParseQuery(uri[i+1:])
		return q
	}
	return map[string][]string{}
}

// prepareHeaders: what the load balancer adds before anything sees the request.
func prepareHeaders(x *exchange, r *http.Request) {
	for _, h := range hopHeaders {
		x.header.Del(h)
	}
	client := ClientAddr(r.RemoteAddr).String()
	if prior := x.header.Get("X-Forwarded-For"); prior != "" {
		client = prior + ", " + client
	}
	x.header.Set("X-Forwarded-For", client+", "+x.gw.Address)
	x.header.Set("X-Forwarded-Proto", x.scheme)
	if x.header.Get("X-Request-Id") == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		x.header.Set("X-Request-Id", hex.EncodeToString(b[:]))
	}
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "Proxy-Authorization", "Proxy-Authenticate"}

// pickListener: the listeners on this port whose hostname accepts the host; the most specific one wins (exact
// hostname, then the longest wildcard, then none).
func pickListener(g *GatewayConfig, port int, req *RouteRequest) *ListenerConfig {
	var best *ListenerConfig
	score := func(l *ListenerConfig) int {
		if l.Hostname == nil || *l.Hostname == "" {
			return 0
		}
		if strings.HasPrefix(*l.Hostname, "*") {
			return len(*l.Hostname)
		}
		return 1000 + len(*l.Hostname)
	}
	for _, l := range g.Listeners {
		if l.Port != port || !ListenerAccepts(l.Hostname, req) {
			continue
		}
		if best == nil || score(l) > score(best) {
			best = l
		}
	}
	return best
}

func pseudoHeaders(x *exchange) [][2]string {
	return [][2]string{{":method", x.r.Method}, {":path", x.path}, {":authority", x.host}, {":scheme", x.scheme}}
}

// callExtension runs one routing extension; true when it answered the request itself (or failed closed).
func (p *Proxy) callExtension(x *exchange, ext *ExtensionConfig) bool {
	fail := func(err error) bool {
		if ext.FailOpen {
			logf("extension %s failed open: %v", ext.Source, err)
			return false
		}
		logf("extension %s failed: %v", ext.Source, err)
		x.reply(http.StatusInternalServerError, "routing extension error\n")
		return true
	}
	if ext.Backend.Problem != "" {
		return fail(errors.New(ext.Backend.Problem))
	}
	eps := p.health.HealthyEndpoints(ext.Backend)
	if len(eps) == 0 {
		return fail(fmt.Errorf("%s has no healthy endpoint", ext.Backend.ID))
	}
	ep := eps[p.next(ext.Backend.ID)%uint64(len(eps))]
	conn, err := p.grpc.Conn(ep.Addr(), true)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(x.r.Context(), 10*ext.Timeout)
	defer cancel()
	sess, err := OpenSession(ctx, conn, ext.Timeout)
	if err != nil {
		return fail(err)
	}
	defer sess.Close()
	res, err := sess.RequestPhase(pseudoHeaders(x), x.header, x.body)
	var imm *ImmediateError
	if errors.As(err, &imm) {
		writeImmediate(x, imm)
		return true
	}
	if err != nil {
		return fail(err)
	}
	for _, m := range res.Mutations {
		ApplyMutation(x.header, &x.path, m)
	}
	x.body = res.Body
	return false
}

func writeImmediate(x *exchange, imm *ImmediateError) {
	if imm.Headers != nil {
		ApplyMutation(x.w.Header(), nil, imm.Headers)
	}
	x.reply(imm.Status, string(imm.Body))
}

func (p *Proxy) next(id BackendID) uint64 {
	v, _ := p.rr.LoadOrStore(id, new(atomic.Uint64))
	return v.(*atomic.Uint64).Add(1) - 1
}

// chooseBackendRef picks by weight (default 1; weight 0 never).
func chooseBackendRef(refs []BackendRef) *BackendRef {
	total := 0
	for _, r := range refs {
		total += deref(r.Weight, 1)
	}
	if total <= 0 {
		return nil
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(total)))
	pick := int(n.Int64())
	for i := range refs {
		w := deref(refs[i].Weight, 1)
		if pick < w {
			return &refs[i]
		}
		pick -= w
	}
	return nil
}

// applyFilters runs the rule's filters; true when a redirect answered.
func applyFilters(x *exchange, m *RouteMatch) bool {
	for _, f := range m.Rule.Filters {
		switch f.Type {
		case "RequestRedirect":
			redirect(x, m, f)
			return true
		case "RequestHeaderModifier":
			modifyHeaders(x.header, f.RequestHeaderModifier)
		case "ResponseHeaderModifier":
			x.respMod = append(x.respMod, f.ResponseHeaderModifier)
		case "URLRewrite":
			if u := f.URLRewrite; u != nil {
				if u.Hostname != nil {
					x.host = *u.Hostname
				}
				if u.Path != nil {
					x.path = rewritePath(x.path, u.Path, m.PrefixMatched)
				}
			}
		}
	}
	return false
}

func modifyHeaders(h http.Header, mod *HeaderModifier) {
	if mod == nil {
		return
	}
	for _, s := range mod.Set {
		h.Set(s.Name, s.Value)
	}
	for _, a := range mod.Add {
		h.Add(a.Name, a.Value)
	}
	for _, name := range mod.Remove {
		h.Del(name)
	}
}

// rewritePath applies ReplaceFullPath or ReplacePrefixMatch to a path with query.
func rewritePath(uri string, mod *HTTPPathModifier, matchedPrefix string) string {
	path, query := pathOnly(uri), ""
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		query = uri[i:]
	}
	switch {
	case mod.Type == "ReplaceFullPath" && mod.ReplaceFullPath != nil:
		path = *mod.ReplaceFullPath
	case mod.Type == "ReplacePrefixMatch" && mod.ReplacePrefixMatch != nil && matchedPrefix != "":
		prefix := strings.TrimSuffix(matchedPrefix, "/")
		rest := strings.TrimPrefix(path, prefix)
		repl := strings.TrimSuffix(*mod.ReplacePrefixMatch, "/")
		path = repl + rest
		if path == "" {
			path = "/"
		}
	}
	return path + query
}

func redirect(x *exchange, m *RouteMatch, f HTTPRouteFilter) {
	rr := f.RequestRedirect
	if rr == nil {
		x.reply(http.StatusInternalServerError, "invalid redirect filter\n")
		return
	}
	scheme := deref(rr.Scheme, x.scheme)
	host := x.host
	reqPort := ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, reqPort = h, p
	}
	if rr.Hostname != nil {
		host = *rr.Hostname
	}
	// Port: the filter's; otherwise the scheme's well-known port when the scheme changes (Gateway API), or the
	// request's port.
	port := reqPort
	if rr.Port != nil {
		port = strconv.Itoa(*rr.Port)
	} else if rr.Scheme != nil && *rr.Scheme != x.scheme {
		port = ""
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	hostport := host
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	path := x.path
	if rr.Path != nil {
		path = rewritePath(path, rr.Path, m.PrefixMatched)
	}
	code := deref(rr.StatusCode, http.StatusFound)
	x.w.Header().Set("Location", scheme+"://"+hostport+path)
	x.reply(code, "")
}

// cloudArmor: true when the policy denied the request.
func (p *Proxy) cloudArmor(x *exchange, be *Backend) bool {
	regional := x.gw.Class != "gke-l7-global-external-managed" && x.gw.Class != "gke-l7-gxlb"
	policy, err := p.armor.Policy(x.r.Context(), be.ArmorPolicy, regional)
	if err != nil {
		// GKE would not have attached a policy it cannot read; the request is denied rather than let through
		// unchecked, and the log says why.
		logf("cloud armor: %s: security policy %s: %v", be.ID, be.ArmorPolicy, err)
		x.reply(http.StatusForbidden, "403 Forbidden: security policy unavailable\n")
		return true
	}
	client := ClientAddr(x.r.RemoteAddr)
	if !client.IsValid() {
		client = netip.IPv4Unspecified()
	}
	v := policy.Evaluate(client)
	if v.Allow {
		return false
	}
	// GFE's own error page, as the walkthrough shows it for deny(403); the route's response header filters apply.
	logf("cloud armor: %s: security policy %s rule %d denies %s with %d", be.ID, policy.Name, v.Priority, client, v.Status)
	body := fmt.Sprintf(`<!doctype html><meta charset="utf-8"><meta name=viewport content="width=device-width, `+
		`initial-scale=1"><title>%d</title>%d %s`, v.Status, v.Status, http.StatusText(v.Status))
	h := x.w.Header()
	for _, mod := range x.respMod {
		modifyHeaders(h, mod)
	}
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Via", "1.1 google")
	x.status = v.Status
	x.w.WriteHeader(v.Status)
	_, _ = io.WriteString(x.w, body)
	return true
}

func (p *Proxy) serveService(x *exchange, be *Backend) {
	eps := p.health.HealthyEndpoints(be)
	if len(eps) == 0 {
		x.reply(http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	x.endpoint = eps[p.next(be.ID)%uint64(len(eps))]
	ctx, cancel := context.WithTimeout(x.r.Context(), be.Timeout)
	defer cancel()
	resp, err := p.forward(ctx, x)
	if err != nil {
		replyUpstreamError(x, err, ctx)
		return
	}
	defer resp.Body.Close()
	writeResponseHeaders(x, resp.StatusCode, resp.Header)
	copyStreaming(x.w, resp.Body)
}

func (p *Proxy) servePool(x *exchange, be *Backend) {
	healthy := p.health.HealthyEndpoints(be)
	if len(healthy) == 0 {
		x.reply(http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	ctx, cancel := context.WithTimeout(x.r.Context(), be.Timeout)
	defer cancel()
	failOpen := func(why error) {
		logf("endpoint picker of %s failed open: %v", be.ID, why)
		x.endpoint = healthy[p.next(be.ID)%uint64(len(healthy))]
		resp, err := p.forward(ctx, x)
		if err != nil {
			replyUpstreamError(x, err, ctx)
			return
		}
		defer resp.Body.Close()
		writeResponseHeaders(x, resp.StatusCode, resp.Header)
		copyStreaming(x.w, resp.Body)
	}
	failClosed := func(why error) {
		logf("endpoint picker of %s failed: %v", be.ID, why)
		x.reply(http.StatusInternalServerError, "endpoint picker error\n")
	}
	fail := failClosed
	if be.PickerFailOpen {
		fail = failOpen
	}
	picker := be.Picker
	if picker.Problem != "" {
		fail(errors.New(picker.Problem))
		return
	}
	pickers := p.health.HealthyEndpoints(picker)
	if len(pickers) == 0 {
		fail(fmt.Errorf("%s has no ready endpoint", picker.ID))
		return
	}
	ep := pickers[p.next(picker.ID)%uint64(len(pickers))]
	conn, err := p.grpc.Conn(ep.Addr(), true)
	if err != nil {
		fail(err)
		return
	}
	sess, err := OpenSession(ctx, conn, 10*time.Second)
	if err != nil {
		fail(err)
		return
	}
	defer sess.Close()
	res, err := sess.RequestPhase(pseudoHeaders(x), x.header, x.body)
	var imm *ImmediateError
	if errors.As(err, &imm) {
		writeImmediate(x, imm)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	for _, m := range res.Mutations {
		ApplyMutation(x.header, &x.path, m)
	}
	x.body = res.Body
	chosen := false
	x.endpoint, chosen = p.resolvePick(be.ID, Destination(res))
	if !chosen {
		logf("endpoint picker of %s chose %v: not a healthy endpoint of the pool", be.ID, Destination(res))
		x.reply(http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	x.header.Del(destinationHeader)
	resp, err := p.forward(ctx, x)
	if err != nil {
		replyUpstreamError(x, err, ctx)
		return
	}
	defer resp.Body.Close()
	mutation, err := sess.ResponseHeaders(resp.StatusCode, resp.Header, false)
	if errors.As(err, &imm) {
		writeImmediate(x, imm)
		return
	}
	if err != nil {
		logf("endpoint picker of %s: response headers: %v", be.ID, err)
		x.reply(http.StatusInternalServerError, "endpoint picker error\n")
		return
	}
	h := resp.Header.Clone()
	h.Del("Content-Length") // the body comes back through the picker, which may change it
	ApplyMutation(h, nil, mutation)
	writeResponseHeaders(x, resp.StatusCode, h)
	flush := func() {
		if f, ok := x.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if err := sess.ResponseBody(resp.Body, x.w, flush); err != nil && ctx.Err() == nil {
		logf("endpoint picker of %s: response body: %v", be.ID, err)
	}
}

// resolvePick finds the picker's choice among the pool's healthy endpoints. The picker and this load balancer watch
// the same pods separately: a pod that just became Ready may be picked before this side has it, or before its first
// health check answered (which starts at once). For up to a second the choice is looked up again as the snapshot
// and the health checks catch up; a choice that is still not a healthy endpoint of the pool then is refused.
func (p *Proxy) resolvePick(id BackendID, dests []string) (Endpoint, bool) {
	deadline := time.Now().Add(time.Second)
	for {
		be := p.state.Snapshot().Backend(id)
		pending := false
		for _, dest := range dests {
			for _, ep := range be.Endpoints {
				if ep.Addr() != dest {
					continue
				}
				if p.health.Healthy(be, ep) {
					return ep, true
				}
				pending = pending || !p.health.Known(be, ep)
			}
		}
		known := false
		for _, dest := range dests {
			for _, ep := range be.Endpoints {
				known = known || ep.Addr() == dest
			}
		}
		if (known && !pending) || time.Now().After(deadline) {
			return Endpoint{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forward sends the (mutated) request to x.endpoint.
func (p *Proxy) forward(ctx context.Context, x *exchange) (*http.Response, error) {
	target := "http://" + x.endpoint.Addr() + x.path
	req, err := http.NewRequestWithContext(ctx, x.r.Method, target, strings.NewReader(string(x.body)))
	if err != nil {
		return nil, err
	}
	req.Header = x.header.Clone()
	req.Header.Del("Content-Length")
	req.ContentLength = int64(len(x.body))
	if len(x.body) == 0 {
		req.Body = http.NoBody
	}
	req.Host = x.host
	return p.transport.RoundTrip(req)
}

func replyUpstreamError(x *exchange, err error, ctx context.Context) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		x.reply(http.StatusGatewayTimeout, "upstream request timeout")
		return
	}
	logf("upstream %s: %v", x.endpoint.Addr(), err)
	x.reply(http.StatusServiceUnavailable,
		"upstream connect error or disconnect/reset before headers. reset reason: connection failure")
}

func writeResponseHeaders(x *exchange, status int, upstream http.Header) {
	h := x.w.Header()
	for k, vs := range upstream {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, hh := range hopHeaders {
		h.Del(hh)
	}
	for _, mod := range x.respMod {
		modifyHeaders(h, mod)
	}
	h.Set("Via", "1.1 google")
	h.Set(HeaderEndpoint, x.endpoint.Addr())
	if x.endpoint.Pod != "" {
		h.Set(HeaderPod, x.endpoint.Pod)
	}
	h.Set(HeaderBackend, x.backend)
	h.Set(HeaderRoute, x.route)
	x.status = status
	x.w.WriteHeader(status)
}

// copyStreaming copies the body, flushing after every read so that server-sent events pass as they come.
func copyStreaming(w http.ResponseWriter, body io.Reader) {
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32*1024)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
