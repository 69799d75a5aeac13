package main

// What the load balancer serves, computed from the cache: the Gateways gke_sim programmed (GKE classes,
// Programmed=True, an address in status), their listeners, the routes gke_sim accepted on them, the routing
// extensions it accepted, and the backends with their policies. A Snapshot is immutable; the proxy reads the
// current one for every request.

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

const gkeController = "networking.gke.io/gateway"

// Resource names in the cache.
const (
	resGatewayClasses = "gatewayclasses"
	resGateways       = "gateways"
	resRoutes         = "httproutes"
	resServices       = "services"
	resSlices         = "endpointslices"
	resPods           = "pods"
	resSecrets        = "secrets"
	resPoolsV1        = "inferencepools.v1"
	resPoolsX         = "inferencepools.v1alpha2"
	resHealthChecks   = "healthcheckpolicies"
	resBackendPols    = "gcpbackendpolicies"
	resRoutingExts    = "gcproutingextensions"
)

func resources() []Resource {
	return []Resource{
		{Name: resGatewayClasses, Path: "/apis/gateway.networking.k8s.io/v1/gatewayclasses", Optional: true,
			Decode: decoder(func(o *GatewayClass) ObjectMeta { return o.Metadata })},
		{Name: resGateways, Path: "/apis/gateway.networking.k8s.io/v1/gateways", Optional: true,
			Decode: decoder(func(o *Gateway) ObjectMeta { return o.Metadata })},
		{Name: resRoutes, Path: "/apis/gateway.networking.k8s.io/v1/httproutes", Optional: true,
			Decode: decoder(func(o *HTTPRoute) ObjectMeta { return o.Metadata })},
		{Name: resServices, Path: "/api/v1/services",
			Decode: decoder(func(o *Service) ObjectMeta { return o.Metadata })},
		{Name: resSlices, Path: "/apis/discovery.k8s.io/v1/endpointslices",
			Decode: decoder(func(o *EndpointSlice) ObjectMeta { return o.Metadata })},
		{Name: resPods, Path: "/api/v1/pods",
			Decode: decoder(func(o *Pod) ObjectMeta { return o.Metadata })},
		{Name: resSecrets, Path: "/api/v1/secrets", Query: "fieldSelector=type%3Dkubernetes.io%2Ftls",
			Decode: decoder(func(o *Secret) ObjectMeta { return o.Metadata })},
		{Name: resPoolsV1, Path: "/apis/" + PoolGroupV1 + "/v1/inferencepools", Optional: true,
			Decode: decoder(func(o *InferencePool) ObjectMeta { return o.Metadata })},
		{Name: resPoolsX, Path: "/apis/" + PoolGroupX + "/v1alpha2/inferencepools", Optional: true,
			Decode: decoder(func(o *InferencePool) ObjectMeta { return o.Metadata })},
		{Name: resHealthChecks, Path: "/apis/networking.gke.io/v1/healthcheckpolicies", Optional: true,
			Decode: decoder(func(o *HealthCheckPolicy) ObjectMeta { return o.Metadata })},
		{Name: resBackendPols, Path: "/apis/networking.gke.io/v1/gcpbackendpolicies", Optional: true,
			Decode: decoder(func(o *GCPBackendPolicy) ObjectMeta { return o.Metadata })},
		{Name: resRoutingExts, Path: "/apis/networking.gke.io/v1/gcproutingextensions", Optional: true,
			Decode: decoder(func(o *GCPRoutingExtension) ObjectMeta { return o.Metadata })},
	}
}

// BackendID names a backend as the load balancer knows it: a Service port or an InferencePool.
type BackendID struct {
	Kind      string // Service | InferencePool
	Group     string // "" for Service; the pool's API group
	Namespace string
	Name      string
	Port      int // Service port; 0 for pools
}

func (b BackendID) String() string {
	if b.Kind == "Service" {
		return fmt.Sprintf("Service %s/%s:%d", b.Namespace, b.Name, b.Port)
	}
	return fmt.Sprintf("InferencePool %s/%s", b.Namespace, b.Name)
}

// Endpoint is one address of a backend, with the pod behind it when known.
type Endpoint struct {
	IP   string
	Port int
	Pod  string // namespace/name
}

func (e Endpoint) Addr() string { return net.JoinHostPort(e.IP, strconv.Itoa(e.Port)) }

// HealthCheck is how the load balancer probes a backend's endpoints (a HealthCheckPolicy, or GKE's default).
type HealthCheck struct {
	Policy             string // namespace/name of the HealthCheckPolicy; "" for the default check
	Type               string // HTTP, HTTPS, HTTP2, GRPC, TCP; "" for no active check (ready endpoints are healthy)
	Port               int    // 0: the endpoint's serving port
	Path               string
	Host               string
	Response           string
	GRPCService        string
	Interval, Timeout  time.Duration
	Healthy, Unhealthy int
}

func (h HealthCheck) Describe() string {
	if h.Type == "" {
		return "none (endpoint readiness only)"
	}
	port := "serving port"
	if h.Port != 0 {
		port = "port " + strconv.Itoa(h.Port)
	}
	switch h.Type {
	case "GRPC", "TCP":
		return fmt.Sprintf("%s on %s", h.Type, port)
	}
	return fmt.Sprintf("%s %s on %s", h.Type, h.Path, port)
}

// Backend is a resolved backend: endpoints, health check, policy.
type Backend struct {
	ID          BackendID
	Endpoints   []Endpoint
	Health      HealthCheck
	Timeout     time.Duration // GCPBackendPolicy timeoutSec (GKE's default 30 s)
	ArmorPolicy string        // Cloud Armor security policy name, "" for none
	// Pools only: the endpoint picker.
	Picker         *Backend
	PickerFailOpen bool
	Problem        string // why the backend cannot be served (missing Service, ...); "" when it can
}

// ExtensionConfig is one GCPRoutingExtension extension, in chain order.
type ExtensionConfig struct {
	Source   string // namespace/name of the GCPRoutingExtension and the extension name
	Backend  *Backend
	Timeout  time.Duration
	FailOpen bool
	Events   map[string]bool
}

type ListenerConfig struct {
	Name     string
	Port     int
	Protocol string
	Hostname *string
	Certs    []string // certificate sources, resolved by the TLS store (secret:ns/name, certmanager:location/name)
	Routes   []*RouteConfig
	Problem  string
}

type GatewayConfig struct {
	Namespace, Name string
	Class           string
	Address         string
	Listeners       []*ListenerConfig
	Extensions      []*ExtensionConfig
}

func (g *GatewayConfig) Key() string { return g.Namespace + "/" + g.Name }

// Snapshot is everything the proxy needs, immutable once built.
type Snapshot struct {
	Gateways []*GatewayConfig
	Backends map[BackendID]*Backend
	PodsByIP map[string]string // pod IP -> namespace/name
}

func (s *Snapshot) Backend(id BackendID) *Backend { return s.Backends[id] }

// ---------------------------------------------------------------- building

type builder struct {
	cache      *Cache
	region     string
	services   map[string]*Service
	slices     map[string][]*EndpointSlice // namespace/service -> slices
	pods       []*Pod
	podsByIP   map[string]string
	healths    map[string]*HealthCheckPolicy // target key -> oldest policy
	backendPol map[string]*GCPBackendPolicy
	poolsV1    map[string]*InferencePool
	poolsX     map[string]*InferencePool
	backends   map[BackendID]*Backend
}

func targetKey(group, kind, namespace, name string) string {
	return group + "|" + kind + "|" + namespace + "/" + name
}

// oldest keeps GKE's one-policy-per-target rule as gke_sim applies it: the oldest policy wins.
func older(a, b ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(b.CreationTimestamp) {
		return a.CreationTimestamp.Before(b.CreationTimestamp)
	}
	return a.Key() < b.Key()
}

// BuildSnapshot computes the snapshot from the cache.
func BuildSnapshot(cache *Cache) *Snapshot {
	b := &builder{cache: cache, services: map[string]*Service{}, slices: map[string][]*EndpointSlice{},
		podsByIP: map[string]string{}, healths: map[string]*HealthCheckPolicy{},
		backendPol: map[string]*GCPBackendPolicy{}, poolsV1: map[string]*InferencePool{},
		poolsX: map[string]*InferencePool{}, backends: map[BackendID]*Backend{}}
	for _, s := range All[Service](cache, resServices) {
		b.services[s.Metadata.Key()] = s
	}
	for _, s := range All[EndpointSlice](cache, resSlices) {
		svc := s.Metadata.Labels["kubernetes.io/service-name"]
		if svc != "" {
			k := s.Metadata.Namespace + "/" + svc
			b.slices[k] = append(b.slices[k], s)
		}
	}
	b.pods = All[Pod](cache, resPods)
	for _, p := range b.pods {
		if p.Status.PodIP != "" && p.Metadata.DeletionTimestamp == nil {
			b.podsByIP[p.Status.PodIP] = p.Metadata.Key()
		}
	}
	for _, p := range All[HealthCheckPolicy](cache, resHealthChecks) {
		t := p.Spec.TargetRef
		ns := t.Namespace
		if ns == "" {
			ns = p.Metadata.Namespace
		}
		k := targetKey(t.Group, t.Kind, ns, t.Name)
		if cur, ok := b.healths[k]; !ok || older(p.Metadata, cur.Metadata) {
			b.healths[k] = p
		}
	}
	for _, p := range All[GCPBackendPolicy](cache, resBackendPols) {
		t := p.Spec.TargetRef
		ns := t.Namespace
		if ns == "" {
			ns = p.Metadata.Namespace
		}
		k := targetKey(t.Group, t.Kind, ns, t.Name)
		if cur, ok := b.backendPol[k]; !ok || older(p.Metadata, cur.Metadata) {
			b.backendPol[k] = p
		}
	}
	for _, p := range All[InferencePool](cache, resPoolsV1) {
		b.poolsV1[p.Metadata.Key()] = p
	}
	for _, p := range All[InferencePool](cache, resPoolsX) {
		b.poolsX[p.Metadata.Key()] = p
	}

	classes := map[string]bool{}
	for _, gc := range All[GatewayClass](cache, resGatewayClasses) {
		if gc.Spec.ControllerName == gkeController {
			classes[gc.Metadata.Name] = true
		}
	}
	routes := All[HTTPRoute](cache, resRoutes)
	exts := All[GCPRoutingExtension](cache, resRoutingExts)
	snap := &Snapshot{Backends: b.backends, PodsByIP: b.podsByIP}
	for _, gw := range All[Gateway](cache, resGateways) {
		if !classes[gw.Spec.GatewayClassName] || gw.Metadata.DeletionTimestamp != nil {
			continue
		}
		if !conditionTrue(gw.Status.Conditions, "Programmed") || len(gw.Status.Addresses) == 0 {
			continue // gke_sim has not programmed it (or failed to): GKE serves nothing there
		}
		snap.Gateways = append(snap.Gateways, b.gateway(gw, routes, exts))
	}
	sort.Slice(snap.Gateways, func(i, j int) bool { return snap.Gateways[i].Key() < snap.Gateways[j].Key() })
	return snap
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func (b *builder) gateway(gw *Gateway, routes []*HTTPRoute, exts []*GCPRoutingExtension) *GatewayConfig {
	g := &GatewayConfig{Namespace: gw.Metadata.Namespace, Name: gw.Metadata.Name, Class: gw.Spec.GatewayClassName,
		Address: gw.Status.Addresses[0].Value}
	for i := range gw.Spec.Listeners {
		l := &gw.Spec.Listeners[i]
		lc := &ListenerConfig{Name: l.Name, Port: l.Port, Protocol: l.Protocol, Hostname: l.Hostname}
		if l.Protocol == "HTTPS" && l.TLS != nil {
			if names := l.TLS.Options["networking.gke.io/cert-manager-certs"]; names != "" {
				for _, n := range strings.Split(names, ",") {
					lc.Certs = append(lc.Certs, "certmanager:"+strings.TrimSpace(n))
				}
			}
			for _, ref := range l.TLS.CertificateRefs {
				ns := ref.Namespace
				if ns == "" {
					ns = g.Namespace
				}
				lc.Certs = append(lc.Certs, "secret:"+ns+"/"+ref.Name)
			}
		}
		if l.Protocol == "HTTPS" {
			if m := gw.Metadata.Annotations["networking.gke.io/certmap"]; m != "" {
				lc.Certs = append(lc.Certs, "certmap:"+m)
			}
			if len(lc.Certs) == 0 {
				lc.Problem = "HTTPS listener without a certificate"
			}
		}
		g.Listeners = append(g.Listeners, lc)
	}
	for _, route := range routes {
		if route.Metadata.DeletionTimestamp != nil {
			continue
		}
		rc := b.route(route)
		for _, ref := range route.Spec.ParentRefs {
			if !b.routeAccepted(route, ref, g) {
				continue
			}
			for _, lc := range g.Listeners {
				if parentSelects(ref, lc) && !contains(lc.Routes, rc) {
					lc.Routes = append(lc.Routes, rc)
				}
			}
		}
	}
	for _, lc := range g.Listeners {
		SortRoutes(lc.Routes)
	}
	sort.Slice(exts, func(i, j int) bool { return older(exts[i].Metadata, exts[j].Metadata) })
	for _, ext := range exts {
		if ext.Metadata.Namespace != g.Namespace || !extensionAccepted(ext, g) {
			continue
		}
		for _, chain := range ext.Spec.ExtensionChains {
			for _, e := range chain.Extensions {
				if e.BackendRef == nil {
					continue
				}
				timeout := time.Second
				if d, err := time.ParseDuration(e.Timeout); err == nil && d > 0 {
					timeout = d
				}
				events := map[string]bool{}
				for _, ev := range e.SupportedEvents {
					events[ev] = true
				}
				id := BackendID{Kind: "Service", Namespace: g.Namespace, Name: e.BackendRef.Name, Port: e.BackendRef.Port}
				g.Extensions = append(g.Extensions, &ExtensionConfig{
					Source:  fmt.Sprintf("GCPRoutingExtension %s/%s %s/%s", ext.Metadata.Namespace, ext.Metadata.Name, chain.Name, e.Name),
					Backend: b.service(id, true), Timeout: timeout, FailOpen: e.FailOpen, Events: events})
			}
		}
	}
	return g
}

func contains(list []*RouteConfig, r *RouteConfig) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

// routeAccepted: gke_sim's status entry for this parentRef says Accepted=True (the two must agree on which
// routes a Gateway serves; gke_sim implements allowedRoutes, sectionName and hostname intersection).
func (b *builder) routeAccepted(route *HTTPRoute, ref ParentReference, g *GatewayConfig) bool {
	if deref(ref.Kind, "Gateway") != "Gateway" || deref(ref.Group, "gateway.networking.k8s.io") != "gateway.networking.k8s.io" {
		return false
	}
	ns := deref(ref.Namespace, route.Metadata.Namespace)
	if ns != g.Namespace || ref.Name != g.Name {
		return false
	}
	for _, p := range route.Status.Parents {
		if p.ControllerName != gkeController || p.ParentRef.Name != ref.Name ||
			deref(p.ParentRef.Namespace, route.Metadata.Namespace) != ns ||
			deref(p.ParentRef.SectionName, "") != deref(ref.SectionName, "") ||
			deref(p.ParentRef.Port, 0) != deref(ref.Port, 0) {
			continue
		}
		return conditionTrue(p.Conditions, "Accepted")
	}
	return false
}

func parentSelects(ref ParentReference, l *ListenerConfig) bool {
	if ref.SectionName != nil && *ref.SectionName != l.Name {
		return false
	}
	if ref.Port != nil && *ref.Port != l.Port {
		return false
	}
	return l.Protocol == "HTTP" || l.Protocol == "HTTPS"
}

func extensionAccepted(ext *GCPRoutingExtension, g *GatewayConfig) bool {
	for _, a := range ext.Status.Ancestors {
		ns := a.AncestorRef.Namespace
		if ns == "" {
			ns = ext.Metadata.Namespace
		}
		if a.ControllerName == gkeController && a.AncestorRef.Name == g.Name && ns == g.Namespace {
			return conditionTrue(a.Conditions, "Accepted")
		}
	}
	return false
}

func (b *builder) route(route *HTTPRoute) *RouteConfig {
	rc := &RouteConfig{Namespace: route.Metadata.Namespace, Name: route.Metadata.Name,
		Created: route.Metadata.CreationTimestamp, Hostnames: route.Spec.Hostnames, Rules: route.Spec.Rules}
	for _, rule := range route.Spec.Rules {
		for _, ref := range rule.BackendRefs {
			b.backendOf(route.Metadata.Namespace, ref)
		}
	}
	return rc
}

// BackendIDOf names the backend a backendRef points at (resolved or not).
func BackendIDOf(routeNamespace string, ref BackendRef) BackendID {
	group, kind := deref(ref.Group, ""), deref(ref.Kind, "Service")
	ns := deref(ref.Namespace, routeNamespace)
	if kind == "Service" && group == "" {
		return BackendID{Kind: "Service", Namespace: ns, Name: ref.Name, Port: deref(ref.Port, 0)}
	}
	return BackendID{Kind: kind, Group: group, Namespace: ns, Name: ref.Name}
}

func (b *builder) backendOf(routeNamespace string, ref BackendRef) *Backend {
	id := BackendIDOf(routeNamespace, ref)
	switch {
	case id.Kind == "Service" && id.Group == "":
		return b.service(id, false)
	case id.Kind == "InferencePool" && (id.Group == PoolGroupV1 || id.Group == PoolGroupX):
		return b.pool(id)
	}
	be := &Backend{ID: id, Problem: "unsupported backend kind " + id.Group + "/" + id.Kind}
	b.backends[id] = be
	return be
}

func (b *builder) policies(group, kind, ns, name string, be *Backend, defaultPort int) {
	be.Timeout = 30 * time.Second // GKE's backend service default
	if p := b.backendPol[targetKey(group, kind, ns, name)]; p != nil {
		if p.Spec.Default.TimeoutSec != nil && *p.Spec.Default.TimeoutSec > 0 {
			be.Timeout = time.Duration(*p.Spec.Default.TimeoutSec) * time.Second
		}
		be.ArmorPolicy = p.Spec.Default.SecurityPolicy
	}
	be.Health = healthCheckOf(b.healths[targetKey(group, kind, ns, name)], defaultPort)
}

// healthCheckOf turns a HealthCheckPolicy into a probe; without one, GKE's default: HTTP GET / on the serving
// port every 5 s (the note: GKE probes "/" whatever the pod's readiness probe says).
func healthCheckOf(p *HealthCheckPolicy, servingPort int) HealthCheck {
	hc := HealthCheck{Type: "HTTP", Path: "/", Interval: 5 * time.Second, Timeout: 5 * time.Second, Healthy: 2,
		Unhealthy: 2}
	if p == nil {
		return hc
	}
	hc.Policy = p.Metadata.Key()
	d := p.Spec.Default
	if d.CheckIntervalSec > 0 {
		hc.Interval = time.Duration(d.CheckIntervalSec) * time.Second
	}
	if d.TimeoutSec > 0 {
		hc.Timeout = time.Duration(d.TimeoutSec) * time.Second
	}
	if d.HealthyThreshold > 0 {
		hc.Healthy = d.HealthyThreshold
	}
	if d.UnhealthyThreshold > 0 {
		hc.Unhealthy = d.UnhealthyThreshold
	}
	if d.Config.Type != "" {
		hc.Type = d.Config.Type
	}
	var probe *HealthCheckProbe
	switch hc.Type {
	case "HTTPS":
		probe = d.Config.HTTPSHealthCheck
	case "HTTP2":
		probe = d.Config.HTTP2HealthCheck
	case "GRPC":
		probe = d.Config.GRPCHealthCheck
	case "TCP":
		probe = d.Config.TCPHealthCheck
	default:
		probe = d.Config.HTTPHealthCheck
	}
	if probe != nil {
		if probe.Port != 0 && probe.PortSpecification != "USE_SERVING_PORT" {
			hc.Port = probe.Port
		}
		if probe.RequestPath != "" {
			hc.Path = probe.RequestPath
		}
		hc.Host, hc.Response, hc.GRPCService = probe.Host, probe.Response, probe.GRPCServiceName
	}
	return hc
}

// service resolves a Service port. A route backend without a HealthCheckPolicy gets GKE's default check; an
// extension backend (BBR, an endpoint picker) without one is checked by nothing but its pods' readiness.
func (b *builder) service(id BackendID, extension bool) *Backend {
	if be, ok := b.backends[id]; ok {
		return be
	}
	be := &Backend{ID: id}
	b.backends[id] = be
	svc := b.services[id.Namespace+"/"+id.Name]
	if svc == nil {
		be.Problem = fmt.Sprintf("Service %s/%s not found", id.Namespace, id.Name)
		return be
	}
	var port *ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == id.Port || (id.Port == 0 && len(svc.Spec.Ports) == 1) {
			port = &svc.Spec.Ports[i]
			break
		}
	}
	if port == nil {
		be.Problem = fmt.Sprintf("Service %s/%s has no port %d", id.Namespace, id.Name, id.Port)
		return be
	}
	servingPort := 0
	for _, s := range b.slices[id.Namespace+"/"+id.Name] {
		epPort := 0
		for _, p := range s.Ports {
			if deref(p.Name, "") == port.Name && p.Port != nil {
				epPort = *p.Port
			}
		}
		if epPort == 0 {
			continue
		}
		servingPort = epPort
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue // not in the NEG until Ready
			}
			for _, addr := range ep.Addresses {
				pod := b.podsByIP[addr]
				if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
					pod = ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
				}
				be.Endpoints = append(be.Endpoints, Endpoint{IP: addr, Port: epPort, Pod: pod})
			}
		}
	}
	sortEndpoints(be.Endpoints)
	b.policies("", "Service", id.Namespace, id.Name, be, servingPort)
	if extension && be.Health.Policy == "" {
		be.Health = HealthCheck{} // no active check
	}
	return be
}

func sortEndpoints(eps []Endpoint) {
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].IP != eps[j].IP {
			return eps[i].IP < eps[j].IP
		}
		return eps[i].Port < eps[j].Port
	})
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty pool selector selects nothing
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (b *builder) pool(id BackendID) *Backend {
	if be, ok := b.backends[id]; ok {
		return be
	}
	be := &Backend{ID: id}
	b.backends[id] = be
	pools := b.poolsV1
	if id.Group == PoolGroupX {
		pools = b.poolsX
	}
	pool := pools[id.Namespace+"/"+id.Name]
	if pool == nil {
		be.Problem = fmt.Sprintf("InferencePool %s/%s not found", id.Namespace, id.Name)
		return be
	}
	ports := pool.Ports()
	selector := pool.MatchLabels()
	for _, p := range b.pods {
		if p.Metadata.Namespace != id.Namespace || !p.Ready() || !labelsMatch(selector, p.Metadata.Labels) {
			continue
		}
		for _, port := range ports {
			be.Endpoints = append(be.Endpoints, Endpoint{IP: p.Status.PodIP, Port: port, Pod: p.Metadata.Key()})
		}
	}
	sortEndpoints(be.Endpoints)
	servingPort := 0
	if len(ports) > 0 {
		servingPort = ports[0]
	}
	b.policies(id.Group, "InferencePool", id.Namespace, id.Name, be, servingPort)
	svc, port, failOpen, ok := pool.EndpointPicker()
	if !ok {
		be.Problem = fmt.Sprintf("InferencePool %s/%s has no endpoint picker reference", id.Namespace, id.Name)
		return be
	}
	be.Picker = b.service(BackendID{Kind: "Service", Namespace: id.Namespace, Name: svc, Port: port}, true)
	be.PickerFailOpen = failOpen
	return be
}
