package main

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestBothPoolVersionsAndOnlyProgrammedGateways(t *testing.T) {
	c := NewCache()
	put(t, c, resGatewayClasses, decodeOf(resGatewayClasses),
		`{"metadata": {"name": "gke-l7-rilb"}, "spec": {"controllerName": "networking.gke.io/gateway"}}`,
		`{"metadata": {"name": "other"}, "spec": {"controllerName": "example.com/else"}}`)
	put(t, c, resGateways, decodeOf(resGateways),
		`{"metadata": {"name": "programmed", "namespace": "ns"}, "spec": {"gatewayClassName": "gke-l7-rilb",
		   "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Terminate",
		     "options": {"networking.gke.io/cert-manager-certs": "a, b"}}},
		     {"name": "tls", "port": 8443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"kind": "Secret", "name": "s"}]}}]},
		   "status": {"addresses": [{"value": "127.0.0.2"}], "conditions": [{"type": "Programmed", "status": "True"}]}}`,
		`{"metadata": {"name": "pending", "namespace": "ns"}, "spec": {"gatewayClassName": "gke-l7-rilb", "listeners": []},
		   "status": {"conditions": [{"type": "Programmed", "status": "Unknown"}]}}`,
		`{"metadata": {"name": "failed", "namespace": "ns"}, "spec": {"gatewayClassName": "gke-l7-rilb", "listeners": []},
		   "status": {"addresses": [{"value": "127.0.0.3"}], "conditions": [{"type": "Programmed", "status": "False"}]}}`,
		`{"metadata": {"name": "foreign", "namespace": "ns"}, "spec": {"gatewayClassName": "other", "listeners": []},
		   "status": {"addresses": [{"value": "127.0.0.4"}], "conditions": [{"type": "Programmed", "status": "True"}]}}`)
	put(t, c, resRoutes, decodeOf(resRoutes),
		`{"metadata": {"name": "r", "namespace": "ns"}, "spec": {"parentRefs": [{"name": "programmed", "sectionName": "https"}],
		  "rules": [{"backendRefs": [{"group": "inference.networking.x-k8s.io", "kind": "InferencePool", "name": "old"},
		                             {"name": "bbr", "port": 9004}]}]},
		  "status": {"parents": [{"parentRef": {"name": "programmed", "sectionName": "https"}, "controllerName": "networking.gke.io/gateway",
		    "conditions": [{"type": "Accepted", "status": "True"}]}]}}`)
	put(t, c, resPoolsX, decodeOf(resPoolsX), `{"apiVersion": "inference.networking.x-k8s.io/v1alpha2",
	  "metadata": {"name": "old", "namespace": "ns"}, "spec": {"selector": {"app": "old"}, "targetPortNumber": 8000,
	  "extensionRef": {"name": "old-epp", "failureMode": "FailOpen"}}}`)
	put(t, c, resPods, decodeOf(resPods),
		`{"metadata": {"name": "ready", "namespace": "ns", "labels": {"app": "old"}},
		  "status": {"phase": "Running", "podIP": "10.244.0.5", "conditions": [{"type": "Ready", "status": "True"}]}}`,
		`{"metadata": {"name": "starting", "namespace": "ns", "labels": {"app": "old"}},
		  "status": {"phase": "Running", "podIP": "10.244.0.6", "conditions": [{"type": "Ready", "status": "False"}]}}`,
		`{"metadata": {"name": "elsewhere", "namespace": "other", "labels": {"app": "old"}},
		  "status": {"phase": "Running", "podIP": "10.244.0.7", "conditions": [{"type": "Ready", "status": "True"}]}}`)
	put(t, c, resServices, decodeOf(resServices),
		`{"metadata": {"name": "old-epp", "namespace": "ns"}, "spec": {"ports": [{"name": "grpc", "port": 9002}]}}`,
		`{"metadata": {"name": "bbr", "namespace": "ns"}, "spec": {"ports": [{"name": "grpc", "port": 9004}]}}`)
	put(t, c, resHealthChecks, decodeOf(resHealthChecks),
		`{"metadata": {"name": "bbr-healthcheck", "namespace": "ns"}, "spec": {"targetRef": {"group": "", "kind": "Service", "name": "bbr"},
		  "default": {"config": {"type": "GRPC", "grpcHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": 9005}}}}}`,
		`{"metadata": {"name": "younger", "namespace": "ns", "creationTimestamp": "2030-01-01T00:00:00Z"},
		  "spec": {"targetRef": {"group": "", "kind": "Service", "name": "bbr"}, "default": {"config": {"type": "TCP"}}}}`)

	snap := BuildSnapshot(c)
	if len(snap.Gateways) != 1 || snap.Gateways[0].Name != "programmed" {
		t.Fatalf("served gateways: %+v", snap.Gateways)
	}
	g := snap.Gateways[0]
	if got := g.Listeners[0].Certs; len(got) != 2 || got[0] != "certmanager:a" || got[1] != "certmanager:b" {
		t.Errorf("certificate manager certificates: %v", got)
	}
	if got := g.Listeners[1].Certs; len(got) != 1 || got[0] != "secret:ns/s" {
		t.Errorf("secret certificate: %v", got)
	}
	if len(g.Listeners[0].Routes) != 1 || len(g.Listeners[1].Routes) != 0 {
		t.Errorf("sectionName https attaches to that listener only")
	}
	pool := snap.Backend(BackendID{Kind: "InferencePool", Group: PoolGroupX, Namespace: "ns", Name: "old"})
	if len(pool.Endpoints) != 1 || pool.Endpoints[0].Addr() != "10.244.0.5:8000" || pool.Endpoints[0].Pod != "ns/ready" {
		t.Errorf("v1alpha2 pool endpoints (ready pods of the namespace on targetPortNumber): %+v", pool.Endpoints)
	}
	if pool.Picker == nil || pool.Picker.ID.Port != 9002 || !pool.PickerFailOpen || pool.Picker.Health.Type != "" {
		t.Errorf("v1alpha2 extensionRef (default port 9002, FailOpen, readiness only): %+v", pool.Picker)
	}
	if pool.Health.Type != "HTTP" || pool.Health.Path != "/" || pool.Health.Port != 0 || pool.Timeout != 30*time.Second {
		t.Errorf("a pool without policies: GKE's default check and timeout: %+v", pool)
	}
	bbr := snap.Backend(BackendID{Kind: "Service", Namespace: "ns", Name: "bbr", Port: 9004})
	if bbr.Health.Type != "GRPC" || bbr.Health.Port != 9005 || bbr.Health.Policy != "ns/bbr-healthcheck" {
		t.Errorf("the oldest HealthCheckPolicy of a target wins: %+v", bbr.Health)
	}
	if bbr.Problem != "" || len(bbr.Endpoints) != 0 {
		t.Errorf("a Service without slices has no endpoint and no problem: %+v", bbr)
	}
}

func TestPickCertificateBySNI(t *testing.T) {
	if pickCertificate(nil, "x") != nil {
		t.Error("no certificates: none")
	}
	a, wild := selfSigned(t, "a.example.org"), selfSigned(t, "*.example.com", "example.com")
	certs := []*tls.Certificate{&a, &wild}
	for sni, want := range map[string]*tls.Certificate{"api.example.com": &wild, "example.com": &wild,
		"a.example.org": &a, "": &a, "unknown.test": &a} {
		if got := pickCertificate(certs, sni); got != want {
			t.Errorf("SNI %q: wrong certificate", sni)
		}
	}
}
