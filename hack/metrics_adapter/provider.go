package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apierr "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// ttlCache is the adapter's optional metric-kind and external-value caches (off when ttl is 0).
type ttlCache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	size    int
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, size int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, size: size, entries: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(key string) (V, bool) {
	var zero V
	if c.ttl <= 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Now().After(e.expires) {
		delete(c.entries, key)
		return zero, false
	}
	return e.value, true
}

func (c *ttlCache[V]) add(key string, value V) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size { // full: drop the expired, then an arbitrary one
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = ttlEntry[V]{value: value, expires: time.Now().Add(c.ttl)}
}

type metricKind struct{ kind, valueType string }

type stackdriverProvider struct {
	kube                 kubernetes.Interface
	mapper               apimeta.RESTMapper
	monitoring           *monitoringClient
	cfg                  gceConfig
	fallbackToContainers bool
	distributions        bool
	customMetrics        []provider.CustomMetricInfo
	kinds                *ttlCache[metricKind]
	external             *ttlCache[*external_metrics.ExternalMetricValueList]
	now                  func() time.Time
}

// metricKindOf: projects.metricDescriptors.get, in the project the selector names (resource.labels.project_id)
// or the cluster's.
func (p *stackdriverProvider) metricKindOf(ctx context.Context, name string, sel labels.Selector) (metricKind, string, error) {
	project, err := selectorProject(sel, p.cfg.Project)
	if err != nil {
		return metricKind{}, "", err
	}
	if k, ok := p.kinds.get(project + "/" + name); ok {
		return k, project, nil
	}
	d, err := p.monitoring.getMetricDescriptor(ctx, project, name)
	if err != nil {
		klog.V(4).Infof("failed to get descriptor for metric %q: %v", name, err)
		return metricKind{}, "", notFound(fmt.Sprintf("the server could not find the descriptor for metric %q", name))
	}
	k := metricKind{d.MetricKind, d.ValueType}
	p.kinds.add(project+"/"+name, k)
	return k, project, nil
}

func selectorProject(sel labels.Selector, fallback string) (string, error) {
	reqs, _ := sel.Requirements()
	for _, req := range reqs {
		if req.Key() == "resource.labels.project_id" {
			if op := string(req.Operator()); op == "=" || op == "==" {
				return req.Values().List()[0], nil
			}
			return "", labelNotAllowed(fmt.Sprintf("Project selector must use '=' or '==': You used %s", req.Operator()))
		}
	}
	return fallback, nil
}

// GetExternalMetric: metricDescriptors.get for the kind, then timeSeries.list over the last 5 minutes; one
// value per series, its newest point.
func (p *stackdriverProvider) GetExternalMetric(ctx context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	cacheKey := namespace + "\x00" + sel.String() + "\x00" + info.Metric
	if v, ok := p.external.get(cacheKey); ok {
		return v, nil
	}
	name := metricName(info.Metric)
	kind, project, err := p.metricKindOf(ctx, name, sel)
	if err != nil {
		return nil, err
	}
	if kind.valueType == "DISTRIBUTION" && !p.distributions {
		return nil, apierr.NewBadRequest("Distributions are not supported")
	}
	filter := fmt.Sprintf("metric.type = %q", name)
	reducer := ""
	if !sel.Empty() {
		var terms string
		terms, reducer, err = selectorFilter(sel, externalLabelPrefixes, externalFullLabels)
		if err != nil {
			return nil, err
		}
		filter = joinFilters(filter, terms)
	} else {
		project = p.cfg.Project
	}
	series, err := p.monitoring.listTimeSeries(ctx, newQuery(project, filter, kind.kind, kind.valueType, reducer, p.now()))
	if err != nil {
		return nil, err
	}
	out := &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{}}
	for _, s := range series {
		q, end, err := pointQuantity(s)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, external_metrics.ExternalMetricValue{
			MetricName: info.Metric, MetricLabels: seriesLabels(s), Timestamp: metav1.NewTime(end), Value: q})
	}
	p.external.add(cacheKey, out)
	return out, nil
}

// ListAllExternalMetrics: the adapter lists one placeholder (Monitoring has too many to list).
func (p *stackdriverProvider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	return []provider.ExternalMetricInfo{{Metric: "externalmetrics"}}
}

func (p *stackdriverProvider) ListAllMetrics() []provider.CustomMetricInfo { return p.customMetrics }

func (p *stackdriverProvider) GetMetricByName(ctx context.Context, name types.NamespacedName, info provider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValue, error) {
	var objects []metav1.ObjectMeta
	nodes := name.Namespace == ""
	if nodes {
		if info.GroupResource.Resource != "nodes" {
			return nil, notImplemented(fmt.Sprintf("Get root scoped metric by name for resource %q", info.GroupResource.Resource))
		}
		node, err := p.kube.CoreV1().Nodes().Get(ctx, name.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		objects = append(objects, node.ObjectMeta)
	} else {
		if info.GroupResource.Resource != "pods" {
			return nil, notImplemented(fmt.Sprintf("Get namespaced metric by name for resource %q", info.GroupResource.Resource))
		}
		pod, err := p.kube.CoreV1().Pods(name.Namespace).Get(ctx, name.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		objects = append(objects, pod.ObjectMeta)
	}
	values, err := p.objectMetrics(ctx, info, sel, name.Namespace, objects, nodes)
	if err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return nil, notFound(fmt.Sprintf("the server could not find the metric %q for %s %q", info.Metric, info.GroupResource.String(), name.Name))
	}
	return &values[0], nil
}

func (p *stackdriverProvider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info provider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValueList, error) {
	var objects []metav1.ObjectMeta
	nodes := namespace == ""
	opts := metav1.ListOptions{LabelSelector: selector.String()}
	if nodes {
		if info.GroupResource.Resource != "nodes" {
			return nil, notImplemented(fmt.Sprintf("Get root scoped metric by selector for resource %q", info.GroupResource.Resource))
		}
		list, err := p.kube.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, n := range list.Items {
			objects = append(objects, n.ObjectMeta)
		}
	} else {
		if info.GroupResource.Resource != "pods" {
			return nil, notImplemented(fmt.Sprintf("Get namespaced metric by selector for resource %q", info.GroupResource.Resource))
		}
		list, err := p.kube.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, pod := range list.Items {
			objects = append(objects, pod.ObjectMeta)
		}
	}
	values, err := p.objectMetrics(ctx, info, sel, namespace, objects, nodes)
	if err != nil {
		return nil, err
	}
	return &custom_metrics.MetricValueList{Items: values}, nil
}

// objectMetrics queries a pod or node metric for objects in slices of 100 (one_of's limit), falling back to
// k8s_container series when the pods have none and the fallback is on.
func (p *stackdriverProvider) objectMetrics(ctx context.Context, info provider.CustomMetricInfo, sel labels.Selector, namespace string, objects []metav1.ObjectMeta, nodes bool) ([]custom_metrics.MetricValue, error) {
	name := metricName(info.Metric)
	kind, _, err := p.metricKindOf(ctx, name, sel)
	if err != nil {
		return nil, err
	}
	if kind.valueType == "DISTRIBUTION" && !p.distributions {
		return nil, apierr.NewBadRequest("distributions are not supported")
	}
	terms, reducer := "", ""
	if !sel.Empty() {
		if terms, reducer, err = selectorFilter(sel, customLabelPrefixes, customFullLabels); err != nil {
			return nil, err
		}
	}
	s := podSchema
	switch {
	case strings.HasPrefix(name, prometheusMetricPrefix):
		s = prometheusSchema
	case nodes:
		s = nodeSchema
	}
	query := func(s resourceSchema) ([]custom_metrics.MetricValue, error) {
		var out []custom_metrics.MetricValue
		for i := 0; i < len(objects); i += maxOneOfArgs {
			chunk := objects[i:min(i+maxOneOfArgs, len(objects))]
			var podNames, nodeNames []string
			for _, o := range chunk {
				if nodes {
					nodeNames = append(nodeNames, o.Name)
				} else {
					podNames = append(podNames, o.Name)
				}
			}
			filter := joinFilters(terms, objectFilter(p.cfg, s, name, namespace, podNames, nodeNames))
			series, err := p.monitoring.listTimeSeries(ctx, newQuery(p.cfg.Project, filter, kind.kind, kind.valueType, reducer, p.now()))
			if err != nil {
				return nil, err
			}
			if s.resourceType == "k8s_container" {
				if err := checkOneContainerPerPod(series, info.Metric); err != nil {
					return nil, err
				}
			}
			values, err := valuesByObject(series, nodes)
			if err != nil {
				return nil, err
			}
			for _, o := range chunk {
				v, ok := values[o.Namespace+":"+o.Name]
				if !ok {
					continue
				}
				out = append(out, p.metricValue(info, sel, o, v))
			}
		}
		return out, nil
	}
	values, err := query(s)
	if err != nil {
		return nil, err
	}
	if len(values) == 0 && p.fallbackToContainers && !nodes && s.resourceType == "k8s_pod" {
		return query(containerSchema)
	}
	return values, nil
}

func (p *stackdriverProvider) metricValue(info provider.CustomMetricInfo, sel labels.Selector, o metav1.ObjectMeta, q resource.Quantity) custom_metrics.MetricValue {
	kind := "Pod"
	if o.Namespace == "" {
		kind = "Node"
	}
	if k, err := p.mapper.KindFor(info.GroupResource.WithVersion("")); err == nil {
		kind = k.Kind
	}
	var selector *metav1.LabelSelector
	if !sel.Empty() {
		selector, _ = metav1.ParseToLabelSelector(sel.String())
	}
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{APIVersion: "/__internal", Kind: kind, Name: o.Name, Namespace: o.Namespace},
		Metric:          custom_metrics.MetricIdentifier{Name: info.Metric, Selector: selector},
		Timestamp:       metav1.NewTime(p.now()),
		Value:           q,
	}
}

// listCustomMetrics is the start-up metricDescriptors.list: INT64 and DOUBLE descriptors of pods and nodes
// (and containers with the fallback) become custom metrics; only the first unless --list-full-custom-metrics.
func listCustomMetrics(ctx context.Context, m *monitoringClient, cfg gceConfig, withContainers, full bool) ([]provider.CustomMetricInfo, error) {
	descriptors, err := m.listMetricDescriptors(ctx, cfg.Project, descriptorsFilter(cfg, withContainers))
	if err != nil {
		return nil, err
	}
	out := []provider.CustomMetricInfo{}
	for _, d := range descriptors {
		if d.ValueType == "INT64" || d.ValueType == "DOUBLE" {
			out = append(out, provider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "*"},
				Metric: escapeMetric(d.Type), Namespaced: true})
		}
	}
	if !full && len(out) > 1 {
		out = out[:1]
	}
	return out, nil
}
