package main

import (
	"net/http"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func rule(matches ...HTTPRouteMatch) HTTPRouteRule { return HTTPRouteRule{Matches: matches} }

func prefix(p string) *HTTPPathMatch { return &HTTPPathMatch{Type: "PathPrefix", Value: p} }
func exact(p string) *HTTPPathMatch  { return &HTTPPathMatch{Type: "Exact", Value: p} }

func header(name, value string) HTTPHeaderMatch { return HTTPHeaderMatch{Name: name, Value: value} }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func route(name string, created time.Time, hostnames []string, rules ...HTTPRouteRule) *RouteConfig {
	return &RouteConfig{Namespace: "gemma", Name: name, Created: created, Hostnames: hostnames, Rules: rules}
}

func request(host, path string, headers ...string) *RouteRequest {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &RouteRequest{Host: host, Path: path, Method: "POST", Header: h, Query: map[string][]string{}}
}

func winner(t *testing.T, routes []*RouteConfig, r *RouteRequest) string {
	t.Helper()
	m := Match(routes, r)
	if m == nil {
		return "404"
	}
	return m.Route.Name + "#" + string(rune('0'+m.RuleIndex))
}

// The walkthrough's routes as the roles render them: the host route (header match on host, the default backend
// last), one BBR route per model (model header AND path in one match) and one pool route per model.
func walkthroughRoutes() []*RouteConfig {
	host := route("gemma-host-based-routing", t0, []string{"1b.example.com", "4b.example.com", "3b.example.com"},
		rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{header("host", "4b.example.com")}}),
		rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{header("host", "3b.example.com")}}),
		HTTPRouteRule{})
	bbr := func(name, model string, extra ...string) *RouteConfig {
		r := rule(HTTPRouteMatch{Path: prefix("/"), Headers: []HTTPHeaderMatch{
			{Type: "Exact", Name: "X-Gateway-Model-Name", Value: model}}})
		for _, e := range extra {
			r.Matches = append(r.Matches, HTTPRouteMatch{Path: prefix("/"), Headers: []HTTPHeaderMatch{
				{Type: "Exact", Name: "X-Gateway-Model-Name", Value: e}}})
		}
		return route(name, t0.Add(time.Minute), []string{"bbr.example.com"}, r)
	}
	return []*RouteConfig{host,
		bbr("bbr-gemma3-1b", "google/gemma-3-1b-it", "food-review"),
		bbr("bbr-gemma3-4b", "google/gemma-3-4b-it"),
		bbr("bbr-llama3-3b", "meta-llama/Llama-3.2-3B-Instruct")}
}

func TestWalkthroughRoutes(t *testing.T) {
	routes := walkthroughRoutes()
	cases := []struct {
		name string
		req  *RouteRequest
		want string
	}{
		{"host route 4b", request("4b.example.com", "/v1/completions"), "gemma-host-based-routing#0"},
		{"host route 3b with port", request("3b.example.com:80", "/v1/completions"), "gemma-host-based-routing#2"}, // the header match compares the authority as sent
		{"host route default backend", request("1b.example.com", "/v1/completions"), "gemma-host-based-routing#2"},
		{"host is case-insensitive for hostnames", request("1B.Example.COM", "/"), "gemma-host-based-routing#2"},
		{"unknown host", request("other.example.com", "/"), "404"},
		{"bbr model", request("bbr.example.com", "/v1/completions", "X-Gateway-Model-Name", "google/gemma-3-4b-it"), "bbr-gemma3-4b#0"},
		{"bbr lora adapter", request("bbr.example.com", "/v1/completions", "x-gateway-model-name", "food-review"), "bbr-gemma3-1b#0"},
		{"bbr unknown model", request("bbr.example.com", "/v1/completions", "X-Gateway-Model-Name", "nope"), "404"},
		{"bbr without model", request("bbr.example.com", "/v1/models"), "404"},
	}
	for _, c := range cases {
		if got := winner(t, routes, c.req); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestPathPrefixIsElementWise(t *testing.T) {
	routes := []*RouteConfig{route("r", t0, nil, rule(HTTPRouteMatch{Path: prefix("/v1/")}))}
	for path, want := range map[string]string{"/v1": "r#0", "/v1/": "r#0", "/v1/completions": "r#0", "/v10": "404", "/": "404"} {
		if got := winner(t, routes, request("h", path)); got != want {
			t.Errorf("%s: got %s, want %s", path, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	older, newer := t0, t0.Add(time.Hour)
	cases := []struct {
		name   string
		routes []*RouteConfig
		req    *RouteRequest
		want   string
	}{
		{"exact hostname beats wildcard", []*RouteConfig{
			route("wild", older, []string{"*.example.com"}, rule(HTTPRouteMatch{Path: exact("/x")})),
			route("exact", newer, []string{"a.example.com"}, rule()),
		}, request("a.example.com", "/x"), "exact#0"},
		{"wildcard covers several labels, not the bare domain", []*RouteConfig{
			route("wild", older, []string{"*.example.com"}, rule()),
		}, request("example.com", "/"), "404"},
		{"longer wildcard beats shorter", []*RouteConfig{
			route("short", older, []string{"*.com"}, rule()),
			route("long", newer, []string{"*.example.com"}, rule()),
		}, request("a.example.com", "/"), "long#0"},
		{"route with hostname beats route without", []*RouteConfig{
			route("any", older, nil, rule()),
			route("named", newer, []string{"a.example.com"}, rule()),
		}, request("a.example.com", "/"), "named#0"},
		{"exact path beats longer prefix", []*RouteConfig{
			route("prefix", older, nil, rule(HTTPRouteMatch{Path: prefix("/v1/completions/long")})),
			route("exact", newer, nil, rule(HTTPRouteMatch{Path: exact("/v1/completions/long")})),
		}, request("h", "/v1/completions/long"), "exact#0"},
		{"longest prefix wins across routes", []*RouteConfig{
			route("short", older, nil, rule(HTTPRouteMatch{Path: prefix("/")})),
			route("long", newer, nil, rule(HTTPRouteMatch{Path: prefix("/v1")})),
		}, request("h", "/v1/models"), "long#0"},
		{"method match beats none", []*RouteConfig{
			route("nomethod", older, nil, rule(HTTPRouteMatch{Path: prefix("/")})),
			route("method", newer, nil, rule(HTTPRouteMatch{Path: prefix("/"), Method: ptr("POST")})),
		}, request("h", "/"), "method#0"},
		{"more header matches win", []*RouteConfig{
			route("one", older, nil, rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{header("a", "1")}})),
			route("two", newer, nil, rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{header("a", "1"), header("b", "2")}})),
		}, request("h", "/", "a", "1", "b", "2"), "two#0"},
		{"oldest route wins a tie", []*RouteConfig{
			route("b-new", newer, nil, rule()),
			route("a-old", older, nil, rule()),
		}, request("h", "/"), "a-old#0"},
		{"name breaks a tie of age", []*RouteConfig{
			route("zeta", older, nil, rule()),
			route("alpha", older, nil, rule()),
		}, request("h", "/"), "alpha#0"},
		{"first rule of a route wins a tie", []*RouteConfig{
			route("r", older, nil, rule(HTTPRouteMatch{Path: prefix("/a")}), rule(HTTPRouteMatch{Path: prefix("/a")})),
		}, request("h", "/a/b"), "r#0"},
		{"a more specific later rule beats an earlier one", []*RouteConfig{
			route("r", older, nil, rule(), rule(HTTPRouteMatch{Path: prefix("/a")})),
		}, request("h", "/a"), "r#1"},
		{"query parameter match", []*RouteConfig{
			route("plain", older, nil, rule()),
			route("query", newer, nil, rule(HTTPRouteMatch{QueryParams: []HTTPHeaderMatch{{Name: "v", Value: "2"}}})),
		}, &RouteRequest{Host: "h", Path: "/", Method: "GET", Header: http.Header{}, Query: map[string][]string{"v": {"2"}}}, "query#0"},
		{"regular expression header", []*RouteConfig{
			route("re", older, nil, rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{{Type: "RegularExpression", Name: "m", Value: "gemma-.*"}}})),
		}, request("h", "/", "m", "gemma-3-1b"), "re#0"},
		{"regular expression is anchored", []*RouteConfig{
			route("re", older, nil, rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{{Type: "RegularExpression", Name: "m", Value: "gemma"}}})),
		}, request("h", "/", "m", "xgemmax"), "404"},
		{"header value is case-sensitive", []*RouteConfig{
			route("r", older, nil, rule(HTTPRouteMatch{Headers: []HTTPHeaderMatch{header("m", "Gemma")}})),
		}, request("h", "/", "m", "gemma"), "404"},
	}
	for _, c := range cases {
		if got := winner(t, c.routes, c.req); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestListenerHostname(t *testing.T) {
	if !ListenerAccepts(nil, request("anything", "/")) {
		t.Error("a listener without hostname takes every host")
	}
	if !ListenerAccepts(ptr("*.example.com"), request("api.example.com:443", "/")) {
		t.Error("a wildcard listener takes a subdomain (port ignored)")
	}
	if ListenerAccepts(ptr("api.example.com"), request("bbr.example.com", "/")) {
		t.Error("an exact listener refuses another host")
	}
}

func TestWeightedBackendChoice(t *testing.T) {
	refs := []BackendRef{{Name: "a", Weight: ptr(3)}, {Name: "b", Weight: ptr(1)}, {Name: "never", Weight: ptr(0)}}
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		counts[chooseBackendRef(refs).Name]++
	}
	if counts["never"] != 0 {
		t.Errorf("a backend of weight 0 got %d requests", counts["never"])
	}
	if share := float64(counts["a"]) / 4000; share < 0.70 || share > 0.80 {
		t.Errorf("weight 3 of 4 got %.2f of the requests (%v)", share, counts)
	}
	if chooseBackendRef([]BackendRef{{Name: "z", Weight: ptr(0)}}) != nil {
		t.Error("only zero weights: no backend (500)")
	}
	if chooseBackendRef(nil) != nil {
		t.Error("no backendRefs: no backend (500)")
	}
}

func TestRewritePath(t *testing.T) {
	cases := []struct {
		uri, typ, value, matched, want string
	}{
		{"/v1/completions?x=1", "ReplaceFullPath", "/other", "", "/other?x=1"},
		{"/api/v1/completions", "ReplacePrefixMatch", "/v1", "/api/v1", "/v1/completions"},
		{"/api", "ReplacePrefixMatch", "/", "/api", "/"},
		{"/api/x", "ReplacePrefixMatch", "/", "/api/", "/x"},
	}
	for _, c := range cases {
		mod := &HTTPPathModifier{Type: c.typ}
		if c.typ == "ReplaceFullPath" {
			mod.ReplaceFullPath = &c.value
		} else {
			mod.ReplacePrefixMatch = &c.value
		}
		if got := rewritePath(c.uri, mod, c.matched); got != c.want {
			t.Errorf("%s %s %s: got %s, want %s", c.uri, c.typ, c.value, got, c.want)
		}
	}
}
