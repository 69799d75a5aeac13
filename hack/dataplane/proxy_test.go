package main

// The whole request path on real sockets: routes, a BBR-like and an EPP-like ext_proc server speaking the
// FULL_DUPLEX_STREAMED protocol the way GIE's do (answers only after the body's end, destination in metadata and
// header, streamed bodies both ways), model-server stand-ins on two loopback "pod" addresses, health checks and
// Cloud Armor. The real EPP and BBR are exercised by tests/integration/test_dataplane.py.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"
)

// ---------------------------------------------------------------- a fake ext_proc server

type fakeProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
	mode      string        // "bbr" or "epp"
	pick      func() string // epp: the endpoint to choose
	immediate atomic.Int32  // epp: answer with this status instead
	sawResp   atomic.Int32  // epp: response phases seen
}

func setHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func streamed(body []byte, eos bool) *extprocv3.CommonResponse {
	return &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{
		StreamedResponse: &extprocv3.StreamedBodyResponse{Body: body, EndOfStream: eos}}}}
}

func (f *fakeProcessor) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	var body []byte
	for {
		req, err := srv.Recv()
		if err != nil {
			return nil
		}
		switch r := req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			if r.RequestHeaders.EndOfStream {
				_ = srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
					RequestHeaders: &extprocv3.HeadersResponse{}}})
			}
		case *extprocv3.ProcessingRequest_RequestBody:
			body = append(body, r.RequestBody.Body...)
			if !r.RequestBody.EndOfStream {
				continue
			}
			if code := f.immediate.Load(); code != 0 && f.mode == "epp" {
				return srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
					ImmediateResponse: &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)},
						Body: []byte("no capacity")}}})
			}
			var parsed struct{ Model string }
			_ = json.Unmarshal(body, &parsed)
			hr := &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{}}}
			resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}}
			muts := &hr.Response.HeaderMutation.SetHeaders
			if f.mode == "bbr" && parsed.Model != "" {
				*muts = append(*muts, setHeader("X-Gateway-Model-Name", parsed.Model))
			}
			if f.mode == "epp" {
				dest := f.pick()
				*muts = append(*muts, setHeader(destinationHeader, dest), setHeader("Content-Length", strconv.Itoa(len(body))))
				md, _ := structpb.NewStruct(map[string]any{destinationMDSpace: map[string]any{destinationHeader: dest}})
				resp.DynamicMetadata = md
			}
			_ = srv.Send(resp)
			// The body back in two chunks, as a streamed response.
			half := len(body) / 2
			_ = srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
				RequestBody: &extprocv3.BodyResponse{Response: streamed(body[:half], false)}}})
			_ = srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
				RequestBody: &extprocv3.BodyResponse{Response: streamed(body[half:], true)}}})
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			f.sawResp.Add(1)
			_ = srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
				ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-went-into-resp-headers", "true")}}}}}})
		case *extprocv3.ProcessingRequest_ResponseBody:
			_ = srv.Send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
				ResponseBody: &extprocv3.BodyResponse{Response: streamed(r.ResponseBody.Body, r.ResponseBody.EndOfStream)}}})
		}
	}
}

func selfSigned(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serveProcessor(t *testing.T, f *fakeProcessor) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})))
	extprocv3.RegisterExternalProcessorServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------- model server stand-ins

// modelServer listens on ip:port and answers like the simulator: /health, and completions naming the model.
func modelServer(t *testing.T, ip string, port int, model string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen %s:%d: %v", ip, port, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) })
	mux.HandleFunc("/v1/completions", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "data: {\"model\":%q,\"chunk\":%d}\n\n", model, i)
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"model": model, "host": r.Host, "received": string(body),
			"xff": r.Header.Get("X-Forwarded-For")})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func freePortOn(t *testing.T, ips ...string) int {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		ln, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		for _, ip := range ips[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		ln.Close()
		if ok {
			return port
		}
	}
	t.Fatal("no common free port")
	return 0
}

// ---------------------------------------------------------------- the cluster as the cache holds it

func put(t *testing.T, c *Cache, resource string, decode func(json.RawMessage) (any, ObjectMeta, error), docs ...string) {
	t.Helper()
	objs := map[string]any{}
	for _, d := range docs {
		obj, meta, err := decode(json.RawMessage(d))
		if err != nil {
			t.Fatalf("%s: %v\n%s", resource, err, d)
		}
		objs[meta.Key()] = obj
	}
	c.replace(resource, objs)
}

func decodeOf(name string) func(json.RawMessage) (any, ObjectMeta, error) {
	for _, r := range resources() {
		if r.Name == name {
			return r.Decode
		}
	}
	panic(name)
}

const accepted = `"conditions": [{"type": "Accepted", "status": "True"}]`

func parents(gw string) string {
	return `"status": {"parents": [{"parentRef": {"name": "` + gw + `"}, "controllerName": "networking.gke.io/gateway", ` + accepted + `}]}`
}

type world struct {
	cache     *Cache
	proxy     *Proxy
	health    *HealthChecker
	state     *State
	epp       *fakeProcessor
	modelPort int
	slices    []string // svc-a, bbr, epp
	armorHits atomic.Int32
}

func newWorld(t *testing.T, hcPath, failureMode string) *world {
	t.Helper()
	w := &world{cache: NewCache()}
	w.modelPort = freePortOn(t, "127.0.0.2", "127.0.0.3")
	modelServer(t, "127.0.0.2", w.modelPort, "model-a")
	modelServer(t, "127.0.0.3", w.modelPort, "model-a")
	bbrPort := serveProcessor(t, &fakeProcessor{mode: "bbr"})
	w.epp = &fakeProcessor{mode: "epp", pick: func() string { return "127.0.0.3:" + strconv.Itoa(w.modelPort) }}
	eppPort := serveProcessor(t, w.epp)
	armor := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.armorHits.Add(1)
		_, _ = rw.Write([]byte(rolePolicy))
	}))
	t.Cleanup(armor.Close)
	c, mp := w.cache, strconv.Itoa(w.modelPort)
	put(t, c, resGatewayClasses, decodeOf(resGatewayClasses),
		`{"metadata": {"name": "gke-l7-regional-external-managed"}, "spec": {"controllerName": "networking.gke.io/gateway"}}`)
	put(t, c, resGateways, decodeOf(resGateways), `{"metadata": {"name": "gw", "namespace": "ns"},
	  "spec": {"gatewayClassName": "gke-l7-regional-external-managed", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
	  "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.9"}], "conditions": [{"type": "Programmed", "status": "True"}]}}`)
	put(t, c, resRoutes, decodeOf(resRoutes),
		`{"metadata": {"name": "pool-route", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
		  "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["api.example.com"], "rules": [{
		    "matches": [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "X-Gateway-Model-Name", "value": "model-a"}]}],
		    "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "pool-a"}],
		    "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x-infgw-selected", "value": "pool-route"}]}}]}]},
		  `+parents("gw")+`}`,
		`{"metadata": {"name": "host-route", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
		  "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"], "rules": [{
		    "backendRefs": [{"name": "svc-a", "port": 8000}]}]}, `+parents("gw")+`}`,
		`{"metadata": {"name": "redirect", "namespace": "ns"},
		  "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["old.example.com"], "rules": [{
		    "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]}, `+parents("gw")+`}`,
		`{"metadata": {"name": "not-accepted", "namespace": "ns"},
		  "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["refused.example.com"], "rules": [{
		    "backendRefs": [{"name": "svc-a", "port": 8000}]}]}}`)
	put(t, c, resServices, decodeOf(resServices),
		`{"metadata": {"name": "svc-a", "namespace": "ns"}, "spec": {"ports": [{"name": "http", "port": 8000, "targetPort": `+mp+`}]}}`,
		`{"metadata": {"name": "epp", "namespace": "ns"}, "spec": {"ports": [{"name": "grpc-ext-proc", "port": 9002}]}}`,
		`{"metadata": {"name": "bbr", "namespace": "ns"}, "spec": {"ports": [{"name": "grpc", "port": 9004}]}}`)
	w.slices = []string{}
	slice := func(svc, port, portName string, ips ...string) string {
		var eps []string
		for _, ip := range ips {
			eps = append(eps, `{"addresses": ["`+ip+`"], "conditions": {"ready": true}}`)
		}
		return `{"metadata": {"name": "` + svc + `-x", "namespace": "ns", "labels": {"kubernetes.io/service-name": "` + svc + `"}},
		  "endpoints": [` + strings.Join(eps, ",") + `], "ports": [{"name": "` + portName + `", "port": ` + port + `}]}`
	}
	w.slices = []string{slice("svc-a", mp, "http", "127.0.0.2", "127.0.0.3"), slice("bbr", strconv.Itoa(bbrPort), "grpc", "127.0.0.1"),
		slice("epp", strconv.Itoa(eppPort), "grpc-ext-proc", "127.0.0.1")}
	put(t, c, resSlices, decodeOf(resSlices), w.slices...)
	pod := func(name, ip string) string {
		return `{"metadata": {"name": "` + name + `", "namespace": "ns", "labels": {"app": "a"}},
		  "status": {"phase": "Running", "podIP": "` + ip + `", "conditions": [{"type": "Ready", "status": "True"}]}}`
	}
	put(t, c, resPods, decodeOf(resPods), pod("a-1", "127.0.0.2"), pod("a-2", "127.0.0.3"))
	put(t, c, resPoolsV1, decodeOf(resPoolsV1), `{"apiVersion": "inference.networking.k8s.io/v1",
	  "metadata": {"name": "pool-a", "namespace": "ns"}, "spec": {"selector": {"matchLabels": {"app": "a"}},
	  "targetPorts": [{"number": `+mp+`}], "endpointPickerRef": {"name": "epp", "port": {"number": 9002}, "failureMode": "`+failureMode+`"}}}`)
	put(t, c, resPoolsX, decodeOf(resPoolsX))
	put(t, c, resHealthChecks, decodeOf(resHealthChecks), `{"metadata": {"name": "pool-a", "namespace": "ns"},
	  "spec": {"targetRef": {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "pool-a"},
	  "default": {"checkIntervalSec": 1, "config": {"type": "HTTP", "httpHealthCheck": {"requestPath": "`+hcPath+`", "port": `+mp+`}}}}}`)
	put(t, c, resBackendPols, decodeOf(resBackendPols), `{"metadata": {"name": "svc-a", "namespace": "ns"},
	  "spec": {"targetRef": {"group": "", "kind": "Service", "name": "svc-a"}, "default": {"timeoutSec": 5, "securityPolicy": "uc1-security-policy"}}}`)
	put(t, c, resRoutingExts, decodeOf(resRoutingExts), `{"metadata": {"name": "body-based-router", "namespace": "ns"},
	  "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
	    "extensionChains": [{"name": "chain1", "extensions": [{"name": "ext1", "timeout": "1s",
	      "supportedEvents": ["RequestHeaders", "RequestBody", "RequestTrailers"], "requestBodySendMode": "FullDuplexStreamed",
	      "backendRef": {"group": "", "kind": "Service", "name": "bbr", "port": 9004}}]}]},
	  "status": {"ancestors": [{"ancestorRef": {"name": "gw", "namespace": "ns"}, "controllerName": "networking.gke.io/gateway", `+accepted+`}]}}`)
	put(t, c, resSecrets, decodeOf(resSecrets))

	dialer, _ := NewDialer("")
	pool := NewGRPCPool(dialer)
	w.state = &State{}
	w.health = NewHealthChecker(dialer, pool, nil)
	w.proxy = NewProxy(w.state, w.health, pool, NewArmorStore(armor.URL, "tok", "local-project", "us-central1"), dialer, false)
	snap := BuildSnapshot(c)
	w.state.snap.Store(snap)
	w.health.Update(snap)
	t.Cleanup(func() { w.health.Update(&Snapshot{}) })
	return w
}

func (w *world) waitHealth(t *testing.T, id BackendID, healthy int) {
	t.Helper()
	be := w.state.Snapshot().Backend(id)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, known := 0, 0
		for _, e := range w.health.Report(be) {
			if e.State != "UNKNOWN" {
				known++
			}
			if e.State == "HEALTHY" {
				n++
			}
		}
		if known == len(be.Endpoints) && n == healthy {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not %d healthy endpoints: %+v", id, healthy, w.health.Report(be))
}

func (w *world) do(method, host, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	w.proxy.ServeHTTP("127.0.0.9", 80, false, rec, r)
	return rec
}

var poolA = BackendID{Kind: "InferencePool", Group: PoolGroupV1, Namespace: "ns", Name: "pool-a"}

func TestBodyBasedRoutingToThePickedEndpoint(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	w.waitHealth(t, poolA, 2)
	rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a", "prompt": "hi"}`)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	mp := strconv.Itoa(w.modelPort)
	if got := rec.Header().Get(HeaderEndpoint); got != "127.0.0.3:"+mp {
		t.Errorf("served by %s, want the picked 127.0.0.3:%s", got, mp)
	}
	if got := rec.Header().Get(HeaderPod); got != "ns/a-2" {
		t.Errorf("pod %q", got)
	}
	if rec.Header().Get("x-infgw-selected") != "pool-route" || rec.Header().Get("x-went-into-resp-headers") != "true" {
		t.Errorf("route filter and picker response mutations not applied: %v", rec.Header())
	}
	var out map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if out["received"] != `{"model": "model-a", "prompt": "hi"}` || out["host"] != "api.example.com" {
		t.Errorf("the model server did not get the body and host through both processors: %v", out)
	}
	if !strings.HasPrefix(out["xff"], "127.0.0.1, 127.0.0.9") {
		t.Errorf("X-Forwarded-For: %q", out["xff"])
	}
	if w.epp.sawResp.Load() == 0 {
		t.Error("the picker never saw the response phase")
	}

	if rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "unknown"}`); rec.Code != 404 {
		t.Errorf("unknown model: %d, want 404", rec.Code)
	}
	if rec := w.do("POST", "refused.example.com", "/", `{}`); rec.Code != 404 {
		t.Errorf("a route gke_sim did not accept is served: %d", rec.Code)
	}
}

func TestStreamingPassesThroughThePicker(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	w.waitHealth(t, poolA, 2)
	rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a", "stream": true}`)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	if n := strings.Count(rec.Body.String(), "data: "); n != 4 || !strings.HasSuffix(rec.Body.String(), "data: [DONE]\n\n") {
		t.Errorf("events lost: %q", rec.Body)
	}
	if !rec.Flushed {
		t.Error("never flushed")
	}
}

func TestHealthCheckPathNotServedMeansNoHealthyUpstream(t *testing.T) {
	w := newWorld(t, "/not-served", "FailClose")
	w.waitHealth(t, poolA, 0)
	rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`)
	if rec.Code != 503 || rec.Body.String() != "no healthy upstream" {
		t.Errorf("got %d %q, want 503 no healthy upstream", rec.Code, rec.Body)
	}
	for _, e := range w.health.Report(w.state.Snapshot().Backend(poolA)) {
		if !strings.Contains(e.LastError, "/not-served answered 404") {
			t.Errorf("the report does not say why: %+v", e)
		}
	}
}

func TestPickerImmediateResponseAndFailureModes(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	w.waitHealth(t, poolA, 2)
	w.epp.immediate.Store(429)
	if rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`); rec.Code != 429 || rec.Body.String() != "no capacity" {
		t.Errorf("immediate response: %d %q", rec.Code, rec.Body)
	}
	w.epp.immediate.Store(0)
	w.epp.pick = func() string { return "10.9.9.9:1" }
	if rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`); rec.Code != 503 {
		t.Errorf("a pick outside the pool: %d, want 503", rec.Code)
	}

	// The picker unreachable: FailClose answers 500, FailOpen serves a healthy endpoint of the pool.
	for _, mode := range []string{"FailClose", "FailOpen"} {
		w := newWorld(t, "/health", mode)
		put(t, w.cache, resSlices, decodeOf(resSlices), w.slices[:2]...) // the picker has no endpoint
		snap := BuildSnapshot(w.cache)
		w.state.snap.Store(snap)
		w.health.Update(snap)
		w.waitHealth(t, poolA, 2)
		rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`)
		want := map[string]int{"FailClose": 500, "FailOpen": 200}[mode]
		if rec.Code != want {
			t.Errorf("%s: %d %s, want %d", mode, rec.Code, rec.Body, want)
		}
	}
}

func TestServiceBackendCloudArmorAndRedirect(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	svc := BackendID{Kind: "Service", Namespace: "ns", Name: "svc-a", Port: 8000}
	be := w.state.Snapshot().Backend(svc)
	if be.Timeout != 5*time.Second || be.ArmorPolicy != "uc1-security-policy" || be.Health.Path != "/" {
		t.Fatalf("GCPBackendPolicy or the default health check not applied: %+v", be)
	}
	// GKE's default check probes "/", which the stand-ins do not serve: no healthy endpoint.
	w.waitHealth(t, svc, 0)
	rec := w.do("GET", "a.example.com", "/", "")
	if rec.Code != 403 || !strings.HasSuffix(rec.Body.String(), "<title>403</title>403 Forbidden") {
		t.Errorf("the allow-list excludes 127.0.0.1: %d %q, want 403 (Cloud Armor before the backend)", rec.Code, rec.Body)
	}
	if w.armorHits.Load() != 1 {
		t.Errorf("policy reads: %d", w.armorHits.Load())
	}
	rec = w.do("GET", "old.example.com", "/x?y=1", "")
	if rec.Code != 301 || rec.Header().Get("Location") != "https://old.example.com/x?y=1" {
		t.Errorf("redirect: %d %v", rec.Code, rec.Header())
	}
}

func TestPoolsOnlyOnRegionalClasses(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	put(t, w.cache, resGatewayClasses, decodeOf(resGatewayClasses),
		`{"metadata": {"name": "gke-l7-global-external-managed"}, "spec": {"controllerName": "networking.gke.io/gateway"}}`)
	put(t, w.cache, resGateways, decodeOf(resGateways), `{"metadata": {"name": "gw", "namespace": "ns"},
	  "spec": {"gatewayClassName": "gke-l7-global-external-managed", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
	  "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.9"}], "conditions": [{"type": "Programmed", "status": "True"}]}}`)
	w.state.snap.Store(BuildSnapshot(w.cache))
	// The fixture's extension status still says Accepted (gke_sim would say NotAllowed here), so BBR runs and the
	// pool route matches: the load balancer refuses the pool backend itself.
	rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "not supported by GatewayClass gke-l7-global-external-managed") {
		t.Errorf("pool behind a global class: %d %q", rec.Code, rec.Body)
	}
}

// A request that comes before the first health check of every endpoint answered waits for it (GKE's NEG readiness
// gate keeps the last healthy endpoint until its successor is healthy at the load balancer), instead of a 503.
func TestRequestBeforeTheFirstCheckWaitsForIt(t *testing.T) {
	w := newWorld(t, "/health", "FailClose")
	w.waitHealth(t, poolA, 2)
	snap := w.state.Snapshot()
	w.health.Update(&Snapshot{}) // every check forgotten: the endpoints are new to the health checker again
	go func() {
		time.Sleep(200 * time.Millisecond)
		w.health.Update(snap) // their first checks start only now
	}()
	rec := w.do("POST", "api.example.com", "/v1/completions", `{"model": "model-a"}`)
	if rec.Code != 200 {
		t.Errorf("got %d %q before the first check, want 200", rec.Code, rec.Body)
	}
}
