package main

// What the custom-metrics-stackdriver-adapter (v0.16.9, new resource model) does between the metrics APIs and
// Cloud Monitoring: metric names, label selectors turned into Monitoring filters, the time window and aligners,
// and time series turned back into metric values. Written from the adapter's documented behaviour and its
// observed requests; the filter strings are the adapter's, byte for byte.

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	apierr "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

const (
	prometheusMetricPrefix = "prometheus.googleapis.com"
	maxOneOfArgs           = 100 // Monitoring's limit on one_of() arguments
	// The adapter's fixed windows (adapter.go: rateInterval 5m, alignmentPeriod 1m).
	requestWindow       = 5 * time.Minute
	rateAlignmentPeriod = 1 * time.Minute
)

var (
	externalLabelPrefixes = []string{"metric.labels", "resource.labels", "metadata.system_labels", "metadata.user_labels"}
	externalFullLabels    = []string{"resource.type", "reducer"}
	customLabelPrefixes   = []string{"metric.labels"}
	customFullLabels      = []string{"reducer"}
	allowedReducers       = map[string]bool{
		"REDUCE_NONE": true, "REDUCE_MEAN": true, "REDUCE_MIN": true, "REDUCE_MAX": true, "REDUCE_SUM": true,
		"REDUCE_STDDEV": true, "REDUCE_COUNT": true, "REDUCE_COUNT_TRUE": true, "REDUCE_COUNT_FALSE": true,
		"REDUCE_FRACTION_TRUE": true, "REDUCE_PERCENTILE_99": true, "REDUCE_PERCENTILE_95": true,
		"REDUCE_PERCENTILE_50": true, "REDUCE_PERCENTILE_05": true,
	}
)

// gceConfig is what the adapter learns from the metadata server at start.
type gceConfig struct {
	Project, Location, Cluster, Instance string
}

// metricName turns the API's escaped name ("a|b|c") into the Monitoring type ("a/b/c").
func metricName(escaped string) string { return strings.ReplaceAll(escaped, "|", "/") }

func escapeMetric(name string) string { return strings.ReplaceAll(name, "/", "|") }

func labelNotAllowed(label string) error {
	return apierr.NewBadRequest(fmt.Sprintf("Metric label: %q is not allowed", label))
}

func notFound(message string) error {
	return &apierr.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound,
		Reason: metav1.StatusReasonNotFound, Message: message}}
}

func notImplemented(operation string) error {
	return &apierr.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotImplemented,
		Reason: metav1.StatusReasonBadRequest, Message: fmt.Sprintf("Operation: %q is not implemented", operation)}}
}

func allowedLabel(key string, prefixes, full []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p+".") {
			return true
		}
	}
	for _, f := range full {
		if key == f {
			return true
		}
	}
	return false
}

func quoteAll(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strconv.Quote(v)
	}
	return out
}

// selectorFilter turns a metric label selector into Monitoring filter terms joined by AND, and the reducer
// ("reducer=REDUCE_X" in the selector), as the adapter's filterForSelector does.
func selectorFilter(sel labels.Selector, prefixes, full []string) (string, string, error) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return "", "", apierr.NewBadRequest(fmt.Sprintf("Label selector is impossible to match: %s", sel))
	}
	var terms []string
	reducer := ""
	for _, req := range reqs {
		key, values := req.Key(), req.Values().List()
		if key == "reducer" {
			if req.Operator() != selection.Equals && req.Operator() != selection.DoubleEquals {
				return "", "", labelNotAllowed(fmt.Sprintf("Reducer must use '=' or '==': You used %s", req.Operator()))
			}
			if len(values) != 1 || !allowedReducers[values[0]] {
				return "", "", labelNotAllowed("Specified reducer is not supported: " + strings.Join(values, ","))
			}
			reducer = values[0]
			continue
		}
		if req.Operator() == selection.DoesNotExist {
			return "", "", apierr.NewBadRequest("Label selector with operator DoesNotExist is not allowed")
		}
		if !allowedLabel(key, prefixes, full) {
			return "", "", labelNotAllowed(key)
		}
		switch req.Operator() {
		case selection.Equals, selection.DoubleEquals:
			terms = append(terms, fmt.Sprintf("%s = %q", key, values[0]))
		case selection.NotEquals:
			terms = append(terms, fmt.Sprintf("%s != %q", key, values[0]))
		case selection.In:
			if len(values) == 1 {
				terms = append(terms, fmt.Sprintf("%s = %q", key, values[0]))
			} else {
				terms = append(terms, fmt.Sprintf("%s = one_of(%s)", key, strings.Join(quoteAll(values), ",")))
			}
		case selection.NotIn:
			if len(values) == 1 {
				terms = append(terms, fmt.Sprintf("%s != %q", key, values[0]))
			} else {
				terms = append(terms, fmt.Sprintf("NOT %s = one_of(%s)", key, strings.Join(quoteAll(values), ",")))
			}
		case selection.Exists:
			prefix, suffix := "", ""
			for _, p := range prefixes {
				if strings.HasPrefix(key, p+".") {
					prefix, suffix = p, strings.TrimPrefix(key, p+".")
				}
			}
			if prefix == "" {
				return "", "", labelNotAllowed(key)
			}
			terms = append(terms, fmt.Sprintf("%s : %s", prefix, suffix))
		case selection.GreaterThan, selection.LessThan:
			n, err := strconv.ParseInt(values[0], 10, 64)
			if err != nil {
				return "", "", apierr.NewInternalError(fmt.Errorf("Unexpected error: value %s could not be parsed to integer", values[0]))
			}
			op := ">"
			if req.Operator() == selection.LessThan {
				op = "<"
			}
			terms = append(terms, fmt.Sprintf("%s %s %v", key, op, n))
		default:
			return "", "", notImplemented(fmt.Sprintf("Selector with operator %q", req.Operator()))
		}
	}
	return strings.Join(terms, " AND "), reducer, nil
}

func joinFilters(filters ...string) string {
	var parts []string
	for _, f := range filters {
		if f != "" {
			parts = append(parts, f)
		}
	}
	return strings.Join(parts, " AND ")
}

// The label names of each resource schema (the adapter's FilterBuilder schemas).
type resourceSchema struct {
	resourceType, project, cluster, location, namespace, pods, nodes string
}

var (
	podSchema        = resourceSchema{"k8s_pod", "resource.labels.project_id", "resource.labels.cluster_name", "resource.labels.location", "resource.labels.namespace_name", "resource.labels.pod_name", ""}
	containerSchema  = resourceSchema{"k8s_container", "resource.labels.project_id", "resource.labels.cluster_name", "resource.labels.location", "resource.labels.namespace_name", "resource.labels.pod_name", ""}
	nodeSchema       = resourceSchema{"k8s_node", "resource.labels.project_id", "resource.labels.cluster_name", "resource.labels.location", "", "", "resource.labels.node_name"}
	prometheusSchema = resourceSchema{"prometheus_target", "resource.labels.project_id", "resource.labels.cluster", "resource.labels.location", "resource.labels.namespace", "metric.labels.pod", "metric.labels.node"}
)

// objectFilter is the filter of a custom (pod or node) metric query: the adapter's QueryBuilder.composeFilter,
// its terms sorted as its FilterBuilder.Build does.
func objectFilter(cfg gceConfig, s resourceSchema, metric, namespace string, pods, nodes []string) string {
	terms := []string{
		fmt.Sprintf("resource.type = %q", s.resourceType),
		fmt.Sprintf("metric.type = %q", metric),
		fmt.Sprintf("%s = %q", s.project, cfg.Project),
		fmt.Sprintf("%s = %q", s.cluster, cfg.Cluster),
		fmt.Sprintf("%s = %q", s.location, cfg.Location),
	}
	if len(nodes) > 0 {
		terms = append(terms, fmt.Sprintf("%s = monitoring.regex.full_match(%q)", s.nodes, "^("+strings.Join(nodes, "|")+")$"))
	} else {
		if namespace != "" {
			terms = append(terms, fmt.Sprintf("%s = %q", s.namespace, namespace))
		}
		quoted := quoteAll(pods)
		switch {
		case len(quoted) == 1:
			terms = append(terms, fmt.Sprintf("%s = %s", s.pods, quoted[0]))
		case len(quoted) > 1 && len(quoted) <= maxOneOfArgs:
			terms = append(terms, fmt.Sprintf("%s = one_of(%s)", s.pods, strings.Join(quoted, ",")))
		}
	}
	sort.Strings(terms)
	return strings.Join(terms, " AND ")
}

// descriptorsFilter is the start-up metricDescriptors.list filter (new resource model).
func descriptorsFilter(cfg gceConfig, withContainers bool) string {
	types := `resource.type = one_of("k8s_pod","k8s_node")`
	if withContainers {
		types = `resource.type = one_of("k8s_pod","k8s_node","k8s_container")`
	}
	return fmt.Sprintf("resource.labels.project_id = %q AND resource.labels.cluster_name = %q AND resource.labels.location = %q AND %s",
		cfg.Project, cfg.Cluster, cfg.Location, types)
}

// newQuery is the adapter's createListTimeseriesRequestProject: the last 5 minutes, aligned per series by the
// metric's kind.
func newQuery(project, filter, metricKind, valueType, reducer string, now time.Time) timeSeriesQuery {
	q := timeSeriesQuery{Project: project, Filter: filter, Start: now.Add(-requestWindow), End: now,
		Aligner: "ALIGN_NEXT_OLDER", AlignmentPeriod: requestWindow, Reducer: reducer}
	if metricKind == "DELTA" || metricKind == "CUMULATIVE" {
		q.Aligner, q.AlignmentPeriod = "ALIGN_RATE", rateAlignmentPeriod
	}
	if valueType == "DISTRIBUTION" {
		q.Aligner = "ALIGN_DELTA"
	}
	return q
}

// pointQuantity is the newest point of a series (Monitoring returns points newest first) as a quantity.
func pointQuantity(s timeSeries) (resource.Quantity, time.Time, error) {
	if len(s.Points) == 0 || s.Points[0].Value == nil {
		return resource.Quantity{}, time.Time{}, apierr.NewInternalError(fmt.Errorf("Empty time series returned from Stackdriver"))
	}
	p := s.Points[0]
	end, err := time.Parse(time.RFC3339, p.Interval.EndTime)
	if err != nil {
		return resource.Quantity{}, time.Time{}, apierr.NewInternalError(fmt.Errorf("Timeseries from Stackdriver has incorrect end time: %s", p.Interval.EndTime))
	}
	switch {
	case p.Value.Int64Value != nil:
		n, err := strconv.ParseInt(*p.Value.Int64Value, 10, 64)
		if err != nil {
			return resource.Quantity{}, end, apierr.NewInternalError(fmt.Errorf("bad int64Value %q", *p.Value.Int64Value))
		}
		return *resource.NewQuantity(n, resource.DecimalSI), end, nil
	case p.Value.DoubleValue != nil:
		return *resource.NewMilliQuantity(int64(*p.Value.DoubleValue*1000), resource.DecimalSI), end, nil
	}
	return resource.Quantity{}, end, apierr.NewBadRequest(fmt.Sprintf("Expected metric of type DoubleValue or Int64Value, but received TypedValue: %+v", *p.Value))
}

// seriesLabels are the labels an external metric value carries: metric.labels.*, resource.type, resource.labels.*.
func seriesLabels(s timeSeries) map[string]string {
	out := map[string]string{"resource.type": s.Resource.Type}
	for k, v := range s.Metric.Labels {
		out["metric.labels."+k] = v
	}
	for k, v := range s.Resource.Labels {
		out["resource.labels."+k] = v
	}
	return out
}

// objectKey names the pod ("namespace:name") or node (":name") a series belongs to.
func objectKey(s timeSeries, nodes bool) (string, error) {
	switch s.Resource.Type {
	case "k8s_pod", "k8s_container":
		return s.Resource.Labels["namespace_name"] + ":" + s.Resource.Labels["pod_name"], nil
	case "k8s_node":
		return ":" + s.Resource.Labels["node_name"], nil
	case "prometheus_target":
		if nodes {
			return ":" + s.Metric.Labels["node"], nil
		}
		return s.Resource.Labels["namespace"] + ":" + s.Metric.Labels["pod"], nil
	}
	return "", apierr.NewInternalError(fmt.Errorf("Stackdriver returned incorrect resource type %q", s.Resource.Type))
}

// valuesByObject sums each object's series (a pod's containers), as the adapter does.
func valuesByObject(series []timeSeries, nodes bool) (map[string]resource.Quantity, error) {
	out := map[string]resource.Quantity{}
	for _, s := range series {
		q, _, err := pointQuantity(s)
		if err != nil {
			return nil, err
		}
		key, err := objectKey(s, nodes)
		if err != nil {
			return nil, err
		}
		sum := out[key]
		sum.Add(q)
		out[key] = sum
	}
	return out, nil
}

// checkOneContainerPerPod: with container fallback, at most one container of a pod may carry the metric.
func checkOneContainerPerPod(series []timeSeries, metric string) error {
	seen := map[string]string{}
	for _, s := range series {
		key, err := objectKey(s, false)
		if err != nil {
			return err
		}
		container, ok := s.Resource.Labels["container_name"]
		if !ok {
			return apierr.NewInternalError(fmt.Errorf("container_name is missing"))
		}
		if prev, ok := seen[key]; ok && prev != container {
			return apierr.NewBadRequest(fmt.Sprintf("Only one container in pod can have specific metric. Containers %s %s have the same metric %s in pod %s", prev, container, metric, key))
		}
		seen[key] = container
	}
	return nil
}
