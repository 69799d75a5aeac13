package main

// HTTPRoute matching and precedence as the Gateway API specifies (HTTPRoute hostnames and HTTPRouteRule
// matches, v1.4):
//
//   - a request is handled by a listener whose hostname matches it, then by the routes attached to that
//     listener whose hostnames match it (a route without hostnames matches every host the listener takes);
//   - among every match of every rule of those routes that the request satisfies, precedence goes to the
//     largest number of characters in a matching non-wildcard hostname, then in a matching hostname; then to an
//     Exact path match, a PathPrefix match with the most characters, a method match, the most header matches,
//     the most query parameter matches; then to the oldest route, the route first by "namespace/name", and
//     within a route to the first matching rule;
//   - nothing matches: 404.
//
// RegularExpression path matches rank with PathPrefix matches by the length of their pattern (the spec leaves
// their precedence to the implementation). Header matches compare the value exactly (names without regard to
// case); the header "host" is the request's authority, as in Envoy.

import (
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// RouteRequest is what matching reads from a request (after the routing extensions ran).
type RouteRequest struct {
	Host    string // authority as sent (may carry a port)
	Path    string // without the query
	Method  string
	Header  http.Header
	Query   map[string][]string
	hostKey string // lower-case host without port, computed once
}

func (r *RouteRequest) hostname() string {
	if r.hostKey == "" {
		h := r.Host
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		r.hostKey = strings.ToLower(strings.TrimSuffix(h, "."))
	}
	return r.hostKey
}

// RouteConfig is an HTTPRoute as attached to one listener.
type RouteConfig struct {
	Namespace string
	Name      string
	Created   time.Time
	Hostnames []string
	Rules     []HTTPRouteRule
}

// RouteMatch is the winning route, rule and match entry.
type RouteMatch struct {
	Route     *RouteConfig
	RuleIndex int
	Rule      *HTTPRouteRule
	Match     HTTPRouteMatch
	// PrefixMatched is the PathPrefix value that matched (for ReplacePrefixMatch filters), "" otherwise.
	PrefixMatched string
}

// hostnameMatches: exact (case-insensitive) or a wildcard "*.suffix" that covers one or more labels.
func hostnameMatches(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	if strings.HasPrefix(pattern, "*.") {
		suffix := pattern[1:] // ".example.com"
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return pattern == host
}

// ListenerAccepts tells whether a listener with this hostname (nil: any) takes the request's host.
func ListenerAccepts(listenerHostname *string, r *RouteRequest) bool {
	return listenerHostname == nil || *listenerHostname == "" || hostnameMatches(*listenerHostname, r.hostname())
}

// routeHostScore: whether the route takes the host, and the characters of its best exact and wildcard matches.
func routeHostScore(route *RouteConfig, r *RouteRequest) (ok bool, exact int, any int) {
	if len(route.Hostnames) == 0 {
		return true, 0, 0
	}
	host := r.hostname()
	for _, h := range route.Hostnames {
		if !hostnameMatches(h, host) {
			continue
		}
		ok = true
		if !strings.HasPrefix(h, "*") && len(h) > exact {
			exact = len(h)
		}
		if len(h) > any {
			any = len(h)
		}
	}
	return ok, exact, any
}

var regexCache sync.Map // pattern -> *regexp.Regexp (nil when invalid)

func compiled(pattern string) *regexp.Regexp {
	if re, ok := regexCache.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		re = nil
	}
	regexCache.Store(pattern, re)
	return re
}

// pathMatches returns whether the path matches and the matched prefix (PathPrefix only).
func pathMatches(m *HTTPPathMatch, path string) (bool, string) {
	typ, value := "PathPrefix", "/"
	if m != nil {
		if m.Type != "" {
			typ = m.Type
		}
		if m.Value != "" {
			value = m.Value
		}
	}
	switch typ {
	case "Exact":
		return path == value, ""
	case "RegularExpression":
		re := compiled(value)
		return re != nil && re.MatchString(path), ""
	default: // PathPrefix: element-wise; a trailing slash in the value is ignored
		prefix := strings.TrimSuffix(value, "/")
		if prefix == "" {
			return true, "/"
		}
		if path == prefix || strings.HasPrefix(path, prefix+"/") {
			return true, value
		}
		return false, ""
	}
}

func headerValue(r *RouteRequest, name string) (string, bool) {
	if strings.EqualFold(name, "host") || name == ":authority" {
		return r.Host, r.Host != ""
	}
	values := r.Header.Values(name)
	if len(values) == 0 {
		return "", false
	}
	return strings.Join(values, ","), true
}

func valueMatches(typ, pattern, value string) bool {
	if typ == "RegularExpression" {
		re := compiled(pattern)
		return re != nil && re.MatchString(value)
	}
	return value == pattern
}

func matchApplies(m *HTTPRouteMatch, r *RouteRequest) (bool, string) {
	ok, prefix := pathMatches(m.Path, r.Path)
	if !ok {
		return false, ""
	}
	if m.Method != nil && *m.Method != r.Method {
		return false, ""
	}
	for _, h := range m.Headers {
		v, present := headerValue(r, h.Name)
		if !present || !valueMatches(h.Type, h.Value, v) {
			return false, ""
		}
	}
	for _, q := range m.QueryParams {
		values := r.Query[q.Name]
		if len(values) == 0 || !valueMatches(q.Type, q.Value, values[0]) {
			return false, ""
		}
	}
	return true, prefix
}

// precedence of one candidate: compared field by field, larger first unless noted.
type candidate struct {
	hostExact, hostAny   int
	exactPath            bool
	pathLen              int
	method               bool
	headers, queryParams int
	created              time.Time // older first
	key                  string    // namespace/name, first first
	rule, match          int       // first first
	result               RouteMatch
}

func (a *candidate) before(b *candidate) bool {
	switch {
	case a.hostExact != b.hostExact:
		return a.hostExact > b.hostExact
	case a.hostAny != b.hostAny:
		return a.hostAny > b.hostAny
	case a.exactPath != b.exactPath:
		return a.exactPath
	case a.pathLen != b.pathLen:
		return a.pathLen > b.pathLen
	case a.method != b.method:
		return a.method
	case a.headers != b.headers:
		return a.headers > b.headers
	case a.queryParams != b.queryParams:
		return a.queryParams > b.queryParams
	case !a.created.Equal(b.created):
		return a.created.Before(b.created)
	case a.key != b.key:
		return a.key < b.key
	case a.rule != b.rule:
		return a.rule < b.rule
	default:
		return a.match < b.match
	}
}

// defaultMatch is what a rule without matches has: PathPrefix "/".
var defaultMatch = HTTPRouteMatch{Path: &HTTPPathMatch{Type: "PathPrefix", Value: "/"}}

// Match picks the route rule that handles the request, or nil (404).
func Match(routes []*RouteConfig, r *RouteRequest) *RouteMatch {
	var best *candidate
	for _, route := range routes {
		ok, hostExact, hostAny := routeHostScore(route, r)
		if !ok {
			continue
		}
		key := route.Namespace + "/" + route.Name
		for ri := range route.Rules {
			rule := &route.Rules[ri]
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []HTTPRouteMatch{defaultMatch}
			}
			for mi := range matches {
				m := &matches[mi]
				applies, prefix := matchApplies(m, r)
				if !applies {
					continue
				}
				c := &candidate{hostExact: hostExact, hostAny: hostAny, method: m.Method != nil,
					headers: len(m.Headers), queryParams: len(m.QueryParams), created: route.Created, key: key,
					rule: ri, match: mi,
					result: RouteMatch{Route: route, RuleIndex: ri, Rule: rule, Match: *m, PrefixMatched: prefix}}
				if m.Path != nil && m.Path.Type == "Exact" {
					c.exactPath = true
				}
				if m.Path != nil && m.Path.Value != "" {
					c.pathLen = len(m.Path.Value)
				} else {
					c.pathLen = 1 // the default "/"
				}
				if best == nil || c.before(best) {
					best = c
				}
			}
		}
	}
	if best == nil {
		return nil
	}
	return &best.result
}

// SortRoutes orders routes as precedence ties are broken (oldest, then namespace/name); Match does not need it,
// but listings (the admin endpoint) read better.
func SortRoutes(routes []*RouteConfig) {
	sort.Slice(routes, func(i, j int) bool {
		if !routes[i].Created.Equal(routes[j].Created) {
			return routes[i].Created.Before(routes[j].Created)
		}
		return routes[i].Namespace+"/"+routes[i].Name < routes[j].Namespace+"/"+routes[j].Name
	})
}
