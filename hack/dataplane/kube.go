package main

// A small list-and-watch client of the Kubernetes API on net/http: what the data plane needs from client-go's
// informers (a local cache per resource, kept current by a watch, relisted on 410 Gone or a broken stream),
// without client-go's build cost.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

type KubeClient struct {
	server string
	token  string
	http   *http.Client // requests with a timeout
	watch  *http.Client // long-lived watch streams
}

// kubeconfig is the subset of a kubeconfig file the local environment writes (JSON, bearer token).
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			CertificateAuthority     string `json:"certificate-authority"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token     string `json:"token"`
			TokenFile string `json:"tokenFile"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

func NewKubeClient(path string) (*KubeClient, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := json.Unmarshal(raw, &kc); err != nil {
		return nil, fmt.Errorf("%s: not a JSON kubeconfig (the local environment writes JSON): %w", path, err)
	}
	clusterName, userName := "", ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext || kc.CurrentContext == "" {
			clusterName, userName = c.Context.Cluster, c.Context.User
			break
		}
	}
	client := &KubeClient{}
	tlsConfig := &tls.Config{}
	for _, c := range kc.Clusters {
		if c.Name != clusterName && clusterName != "" {
			continue
		}
		client.server = c.Cluster.Server
		var ca []byte
		if c.Cluster.CertificateAuthorityData != "" {
			if ca, err = base64.StdEncoding.DecodeString(c.Cluster.CertificateAuthorityData); err != nil {
				return nil, fmt.Errorf("%s: certificate-authority-data: %w", path, err)
			}
		} else if c.Cluster.CertificateAuthority != "" {
			if ca, err = os.ReadFile(c.Cluster.CertificateAuthority); err != nil {
				return nil, err
			}
		}
		if len(ca) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca) {
				return nil, fmt.Errorf("%s: no certificate in the cluster's certificate authority", path)
			}
			tlsConfig.RootCAs = pool
		}
		tlsConfig.InsecureSkipVerify = c.Cluster.InsecureSkipTLSVerify
		break
	}
	for _, u := range kc.Users {
		if u.Name != userName && userName != "" {
			continue
		}
		client.token = u.User.Token
		if client.token == "" && u.User.TokenFile != "" {
			tok, err := os.ReadFile(u.User.TokenFile)
			if err != nil {
				return nil, err
			}
			client.token = string(tok)
		}
		break
	}
	if client.server == "" {
		return nil, fmt.Errorf("%s: no cluster server", path)
	}
	transport := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 8, ForceAttemptHTTP2: true}
	client.http = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	client.watch = &http.Client{Transport: transport}
	return client, nil
}

type apiStatusError struct {
	Code int
	Body string
}

func (e *apiStatusError) Error() string { return fmt.Sprintf("API status %d: %s", e.Code, e.Body) }

func (c *KubeClient) get(ctx context.Context, path string, client *http.Client) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &apiStatusError{resp.StatusCode, string(body)}
	}
	return resp, nil
}

// ---------------------------------------------------------------- informers

// Resource is one kind the data plane caches: its collection path and how to decode one object.
type Resource struct {
	Name     string // for logs
	Path     string // e.g. /apis/gateway.networking.k8s.io/v1/gateways
	Query    string // extra list/watch parameters, e.g. fieldSelector=type%3Dkubernetes.io%2Ftls
	Decode   func(json.RawMessage) (any, ObjectMeta, error)
	Optional bool // the kind's CRD may be absent: retried quietly
}

func decoder[T any](meta func(*T) ObjectMeta) func(json.RawMessage) (any, ObjectMeta, error) {
	return func(raw json.RawMessage) (any, ObjectMeta, error) {
		obj := new(T)
		if err := json.Unmarshal(raw, obj); err != nil {
			return nil, ObjectMeta{}, err
		}
		return obj, meta(obj), nil
	}
}

// Cache holds the decoded objects of every resource, keyed by namespace/name, and signals every change.
type Cache struct {
	mu      sync.RWMutex
	objects map[string]map[string]any // resource name -> key -> object
	synced  map[string]bool
	changed chan struct{}
}

func NewCache() *Cache {
	return &Cache{objects: map[string]map[string]any{}, synced: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (c *Cache) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *Cache) replace(resource string, objs map[string]any) {
	c.mu.Lock()
	c.objects[resource] = objs
	c.synced[resource] = true
	c.mu.Unlock()
	c.notify()
}

func (c *Cache) put(resource, key string, obj any) {
	c.mu.Lock()
	if c.objects[resource] == nil {
		c.objects[resource] = map[string]any{}
	}
	if obj == nil {
		delete(c.objects[resource], key)
	} else {
		c.objects[resource][key] = obj
	}
	c.mu.Unlock()
	c.notify()
}

// All returns the objects of one resource (a copy of the map; the objects are shared and never mutated).
func All[T any](c *Cache, resource string) []*T {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*T, 0, len(c.objects[resource]))
	for _, o := range c.objects[resource] {
		out = append(out, o.(*T))
	}
	return out
}

func (c *Cache) Synced(resources []Resource) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, r := range resources {
		if !c.synced[r.Name] && !r.Optional {
			return false
		}
	}
	return true
}

type listResponse struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// Run lists and watches one resource until ctx ends.
func (c *KubeClient) Run(ctx context.Context, r Resource, cache *Cache) {
	backoff := time.Second
	missingLogged := false
	for ctx.Err() == nil {
		rv, err := c.list(ctx, r, cache)
		if err != nil {
			var se *apiStatusError
			if errors.As(err, &se) && se.Code == http.StatusNotFound && r.Optional {
				if !missingLogged {
					log.Printf("%s: not served (CRD not installed yet); retrying", r.Name)
					missingLogged = true
				}
				cache.replace(r.Name, map[string]any{})
			} else if ctx.Err() == nil {
				log.Printf("%s: list failed: %v", r.Name, err)
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if missingLogged {
			log.Printf("%s: served now", r.Name)
			missingLogged = false
		}
		backoff = time.Second
		if err := c.watchFrom(ctx, r, rv, cache); err != nil && ctx.Err() == nil {
			log.Printf("%s: watch ended: %v; relisting", r.Name, err)
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (c *KubeClient) list(ctx context.Context, r Resource, cache *Cache) (string, error) {
	objs := map[string]any{}
	cont := ""
	var rv string
	for {
		q := url.Values{"limit": {"500"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		path := r.Path + "?" + q.Encode()
		if r.Query != "" {
			path += "&" + r.Query
		}
		resp, err := c.get(ctx, path, c.http)
		if err != nil {
			return "", err
		}
		var list listResponse
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		for _, raw := range list.Items {
			obj, meta, err := r.Decode(raw)
			if err != nil {
				log.Printf("%s: cannot decode an object: %v", r.Name, err)
				continue
			}
			objs[meta.Key()] = obj
		}
		rv, cont = list.Metadata.ResourceVersion, list.Metadata.Continue
		if cont == "" {
			break
		}
	}
	cache.replace(r.Name, objs)
	return rv, nil
}

// errGone asks for a relist (the watch's resourceVersion is too old).
var errGone = errors.New("resource version too old (410 Gone)")

func (c *KubeClient) watchFrom(ctx context.Context, r Resource, rv string, cache *Cache) error {
	for ctx.Err() == nil {
		q := url.Values{"watch": {"1"}, "resourceVersion": {rv}, "allowWatchBookmarks": {"true"},
			"timeoutSeconds": {"300"}}
		path := r.Path + "?" + q.Encode()
		if r.Query != "" {
			path += "&" + r.Query
		}
		resp, err := c.get(ctx, path, c.watch)
		if err != nil {
			return err
		}
		next, err := c.consume(resp.Body, r, cache, rv)
		resp.Body.Close()
		if err != nil {
			return err
		}
		rv = next
	}
	return ctx.Err()
}

func (c *KubeClient) consume(body io.Reader, r Resource, cache *Cache, rv string) (string, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(body, 64*1024))
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return rv, nil // server-side timeout: watch again from rv
			}
			return rv, err
		}
		switch ev.Type {
		case "ERROR":
			var st struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone {
				return rv, errGone
			}
			return rv, fmt.Errorf("watch error %d: %s", st.Code, st.Message)
		case "BOOKMARK":
			var m struct {
				Metadata ObjectMeta `json:"metadata"`
			}
			if json.Unmarshal(ev.Object, &m) == nil {
				rv = m.Metadata.ResourceVersion
			}
		case "ADDED", "MODIFIED", "DELETED":
			obj, meta, err := r.Decode(ev.Object)
			if err != nil {
				log.Printf("%s: cannot decode an event: %v", r.Name, err)
				continue
			}
			rv = meta.ResourceVersion
			if ev.Type == "DELETED" {
				cache.put(r.Name, meta.Key(), nil)
			} else {
				cache.put(r.Name, meta.Key(), obj)
			}
		}
	}
}
