package main

// Cloud Armor as the load balancer enforces it for a backend whose GCPBackendPolicy names a security policy:
// the policy is read from the GCP fake's compute API (regionSecurityPolicies.get for the regional classes,
// securityPolicies.get otherwise), its rules are evaluated by ascending priority against the client's address, and the first
// rule that matches decides (allow, or deny(403|404|502) with that status). Rules in preview are logged, not
// enforced. Matches: SRC_IPS_V1 srcIpRanges ("*" is everything), and in CEL expressions the forms
// inIpRange(origin.ip, 'cidr') and origin.ip == 'addr', combined with &&, || and !; other attributes
// (origin.region_code, request.headers...) are not modelled and never match.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type ArmorRule struct {
	Priority int64  `json:"priority"`
	Action   string `json:"action"`
	Preview  bool   `json:"preview"`
	Match    struct {
		VersionedExpr string `json:"versionedExpr"`
		Config        struct {
			SrcIPRanges []string `json:"srcIpRanges"`
		} `json:"config"`
		Expr struct {
			Expression string `json:"expression"`
		} `json:"expr"`
	} `json:"match"`
}

type ArmorPolicy struct {
	Name  string      `json:"name"`
	Rules []ArmorRule `json:"rules"`
}

// Verdict of a policy for one client.
type Verdict struct {
	Allow    bool
	Status   int
	Priority int64
}

// Evaluate applies the policy's rules to a client address. A policy without a matching rule allows (Cloud
// Armor always has a default rule; a policy read without one is treated as allow-all).
func (p *ArmorPolicy) Evaluate(client netip.Addr) Verdict {
	rules := append([]ArmorRule(nil), p.Rules...)
	sort.Slice(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	for _, r := range rules {
		if !ruleMatches(&r, client) {
			continue
		}
		if r.Preview {
			logf("cloud armor: policy %s rule %d (%s) matches %s in preview: not enforced", p.Name, r.Priority, r.Action, client)
			continue
		}
		return actionVerdict(r.Action, r.Priority)
	}
	return Verdict{Allow: true, Priority: -1}
}

func actionVerdict(action string, priority int64) Verdict {
	if action == "allow" {
		return Verdict{Allow: true, Priority: priority}
	}
	if strings.HasPrefix(action, "deny(") && strings.HasSuffix(action, ")") {
		if code, err := strconv.Atoi(action[5 : len(action)-1]); err == nil {
			return Verdict{Status: code, Priority: priority}
		}
	}
	// redirect, throttle, rate_based_ban: not modelled; they let the request through here.
	return Verdict{Allow: true, Priority: priority}
}

func ruleMatches(r *ArmorRule, client netip.Addr) bool {
	if expr := strings.TrimSpace(r.Match.Expr.Expression); expr != "" {
		ok, err := evalExpr(expr, client)
		if err != nil {
			logf("cloud armor: rule %d: %v; the rule does not match", r.Priority, err)
			return false
		}
		return ok
	}
	for _, cidr := range r.Match.Config.SrcIPRanges {
		if inRange(cidr, client) {
			return true
		}
	}
	return false
}

func inRange(cidr string, client netip.Addr) bool {
	cidr = strings.TrimSpace(cidr)
	if cidr == "*" {
		return true
	}
	if !strings.Contains(cidr, "/") {
		a, err := netip.ParseAddr(cidr)
		return err == nil && a.Unmap() == client.Unmap()
	}
	prefix, err := netip.ParsePrefix(cidr)
	return err == nil && prefix.Contains(client.Unmap())
}

// ---------------------------------------------------------------- a small CEL subset

var exprToken = regexp.MustCompile(`\s*(&&|\|\||!=|==|!|\(|\)|,|'[^']*'|"[^"]*"|[A-Za-z_][A-Za-z0-9_.]*)`)

type exprParser struct {
	toks   []string
	pos    int
	client netip.Addr
}

func evalExpr(expr string, client netip.Addr) (bool, error) {
	var toks []string
	rest := expr
	for strings.TrimSpace(rest) != "" {
		m := exprToken.FindStringSubmatchIndex(rest)
		if m == nil || m[0] != 0 {
			return false, fmt.Errorf("unsupported expression %q", expr)
		}
		toks = append(toks, rest[m[2]:m[3]])
		rest = rest[m[1]:]
	}
	p := &exprParser{toks: toks, client: client}
	v, err := p.or()
	if err == nil && p.pos != len(p.toks) {
		err = fmt.Errorf("unsupported expression %q", expr)
	}
	if err != nil {
		return false, err
	}
	return v, nil
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) next() string { t := p.peek(); p.pos++; return t }

func (p *exprParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.peek() == "||" {
		p.next()
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *exprParser) and() (bool, error) {
	v, err := p.unary()
	for err == nil && p.peek() == "&&" {
		p.next()
		var w bool
		w, err = p.unary()
		v = v && w
	}
	return v, err
}

func unquote(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	return "", false
}

func (p *exprParser) unary() (bool, error) {
	switch t := p.next(); {
	case t == "!":
		v, err := p.unary()
		return !v, err
	case t == "(":
		v, err := p.or()
		if err == nil && p.next() != ")" {
			err = fmt.Errorf("missing )")
		}
		return v, err
	case t == "inIpRange":
		if p.next() != "(" || p.next() != "origin.ip" || p.next() != "," {
			return false, fmt.Errorf("inIpRange takes (origin.ip, 'range')")
		}
		cidr, ok := unquote(p.next())
		if !ok || p.next() != ")" {
			return false, fmt.Errorf("inIpRange takes (origin.ip, 'range')")
		}
		return inRange(cidr, p.client), nil
	case strings.HasPrefix(t, "origin.") || strings.HasPrefix(t, "request."):
		op := p.next()
		value, ok := unquote(p.next())
		if !ok || (op != "==" && op != "!=") {
			return false, fmt.Errorf("unsupported comparison on %s", t)
		}
		var eq bool
		if t == "origin.ip" {
			eq = inRange(value, p.client) && !strings.Contains(value, "/")
		} // other attributes are unknown locally: never equal
		return eq == (op == "=="), nil
	default:
		return false, fmt.Errorf("unsupported term %q", t)
	}
}

// ---------------------------------------------------------------- reading policies from the GCP fake

type ArmorStore struct {
	endpoint string // http://127.0.0.1:<port>
	token    string
	project  string
	region   string
	client   *http.Client
	mu       sync.Mutex
	cache    map[string]armorEntry
	ttl      time.Duration
}

type armorEntry struct {
	policy  *ArmorPolicy
	err     error
	fetched time.Time
}

func NewArmorStore(endpoint, token, project, region string) *ArmorStore {
	return &ArmorStore{endpoint: strings.TrimRight(endpoint, "/"), token: token, project: project, region: region,
		client: &http.Client{Timeout: 5 * time.Second}, cache: map[string]armorEntry{}, ttl: 2 * time.Second}
}

// Policy returns the named security policy (regional for regional classes), cached for two seconds: the
// load balancer picks up a policy change within seconds here (minutes on GKE).
func (s *ArmorStore) Policy(ctx context.Context, name string, regional bool) (*ArmorPolicy, error) {
	if s.endpoint == "" {
		return nil, fmt.Errorf("no GCP endpoint configured (--gcp-endpoint) to read security policy %s", name)
	}
	scope := "global"
	if regional {
		scope = "regions/" + s.region
	}
	// The compute API's own path under the fake's per-service prefix, as the collection's modules address it
	// (INFGW_GCP_API_ENDPOINT http://127.0.0.1:<port>/{service}/ + compute/v1/...).
	path := fmt.Sprintf("/compute/compute/v1/projects/%s/%s/securityPolicies/%s", s.project, scope, name)
	s.mu.Lock()
	e, ok := s.cache[path]
	s.mu.Unlock()
	if ok && time.Since(e.fetched) < s.ttl {
		return e.policy, e.err
	}
	policy, err := s.fetch(ctx, path)
	s.mu.Lock()
	s.cache[path] = armorEntry{policy, err, time.Now()}
	s.mu.Unlock()
	return policy, err
}

func (s *ArmorStore) fetch(ctx context.Context, path string) (*ArmorPolicy, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var p ArmorPolicy
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ClientAddr is the address Cloud Armor evaluates: the TCP peer of the load balancer.
func ClientAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
