package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The policy the cloud_armor role makes: the allow-list at priority 1000, the default rule deny(403).
const rolePolicy = `{"name": "uc1-security-policy", "rules": [
  {"priority": 2147483647, "action": "deny(403)", "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}},
  {"priority": 1000, "action": "allow", "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["203.0.113.0/24"]}}}
]}`

func policy(t *testing.T, js string) *ArmorPolicy {
	t.Helper()
	var p ArmorPolicy
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func TestAllowListExcludingTheClientDenies(t *testing.T) {
	p := policy(t, rolePolicy)
	if v := p.Evaluate(netip.MustParseAddr("127.0.0.1")); v.Allow || v.Status != 403 || v.Priority != 2147483647 {
		t.Errorf("client outside the allow-list: %+v, want deny 403 by the default rule", v)
	}
	if v := p.Evaluate(netip.MustParseAddr("203.0.113.77")); !v.Allow || v.Priority != 1000 {
		t.Errorf("client inside the allow-list: %+v, want allow by rule 1000", v)
	}
}

func TestRulesByPriorityAndPreview(t *testing.T) {
	p := policy(t, `{"name": "p", "rules": [
	  {"priority": 10, "action": "deny(404)", "preview": true, "match": {"config": {"srcIpRanges": ["127.0.0.1/32"]}}},
	  {"priority": 20, "action": "deny(502)", "match": {"config": {"srcIpRanges": ["127.0.0.0/8"]}}},
	  {"priority": 5, "action": "allow", "match": {"config": {"srcIpRanges": ["10.0.0.0/8"]}}}]}`)
	if v := p.Evaluate(netip.MustParseAddr("127.0.0.1")); v.Allow || v.Status != 502 {
		t.Errorf("a preview rule is not enforced; the next match decides: %+v", v)
	}
	if v := p.Evaluate(netip.MustParseAddr("192.0.2.1")); !v.Allow {
		t.Errorf("no rule matches: allowed, got %+v", v)
	}
}

func TestExpressions(t *testing.T) {
	client := netip.MustParseAddr("127.0.0.1")
	cases := map[string]bool{
		"inIpRange(origin.ip, '127.0.0.0/8')":                                        true,
		"inIpRange(origin.ip, '10.0.0.0/8')":                                         false,
		"!inIpRange(origin.ip, '10.0.0.0/8')":                                        true,
		"inIpRange(origin.ip, '10.0.0.0/8') || inIpRange(origin.ip, '127.0.0.1/32')": true,
		"inIpRange(origin.ip, '127.0.0.0/8') && origin.region_code == 'CH'":          false,
		"origin.ip == '127.0.0.1'":                                                   true,
		"origin.region_code != 'CH'":                                                 true,
		"(origin.ip == '127.0.0.2' || origin.ip == '127.0.0.1') && !false_thing":     false, // unsupported term: no match
	}
	for expr, want := range cases {
		got, err := evalExpr(expr, client)
		if err != nil && want {
			t.Errorf("%s: %v", expr, err)
		}
		if got != want {
			t.Errorf("%s: got %v, want %v", expr, got, want)
		}
	}
}

func TestArmorStoreReadsTheRegionalPolicy(t *testing.T) {
	var paths []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unauthenticated", 401)
			return
		}
		if r.URL.Path != "/compute/compute/v1/projects/local-project/regions/us-central1/securityPolicies/uc1-security-policy" {
			http.Error(w, "not found", 404)
			return
		}
		_, _ = w.Write([]byte(rolePolicy))
	}))
	defer fake.Close()
	store := NewArmorStore(fake.URL, "tok", "local-project", "us-central1")
	p, err := store.Policy(context.Background(), "uc1-security-policy", true)
	if err != nil || len(p.Rules) != 2 {
		t.Fatalf("policy: %v %v", p, err)
	}
	if _, err := store.Policy(context.Background(), "uc1-security-policy", true); err != nil || len(paths) != 1 {
		t.Errorf("a second read within the cache period asks again: %v %v", paths, err)
	}
	if _, err := store.Policy(context.Background(), "uc1-security-policy", false); err == nil {
		t.Error("the global policy of that name does not exist: an error")
	}
}
