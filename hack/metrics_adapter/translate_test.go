package main

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

var cfg = gceConfig{Project: "local-project", Location: "us-central1", Cluster: "local-cluster"}

func TestSelectorFilterIsTheAdapters(t *testing.T) {
	cases := map[string]string{
		"metric.labels.name=vllm-gemma-3-1b":                    `metric.labels.name = "vllm-gemma-3-1b"`,
		"metric.labels.name in (a,b)":                           `metric.labels.name = one_of("a","b")`,
		"metric.labels.name notin (a,b)":                        `NOT metric.labels.name = one_of("a","b")`,
		"resource.labels.namespace!=x":                          `resource.labels.namespace != "x"`,
		"metric.labels.code>200":                                `metric.labels.code > 200`,
		"metric.labels.name":                                    `metric.labels : name`,
		"resource.type=prometheus_target,metric.labels.name=p1": `metric.labels.name = "p1" AND resource.type = "prometheus_target"`,
	}
	for selector, want := range cases {
		sel, err := labels.Parse(selector)
		if err != nil {
			t.Fatal(err)
		}
		got, reducer, err := selectorFilter(sel, externalLabelPrefixes, externalFullLabels)
		if err != nil || got != want || reducer != "" {
			t.Errorf("%s: got %q, %q, %v; want %q", selector, got, reducer, err, want)
		}
	}
}

func TestSelectorFilterRefusals(t *testing.T) {
	for _, selector := range []string{"foo.bar=x", "!metric.labels.name", "reducer in (REDUCE_MEAN,REDUCE_SUM)", "reducer=REDUCE_NOPE"} {
		sel, err := labels.Parse(selector)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := selectorFilter(sel, externalLabelPrefixes, externalFullLabels); err == nil {
			t.Errorf("%s: accepted", selector)
		}
	}
	sel, _ := labels.Parse("reducer=REDUCE_MEAN,metric.labels.name=p")
	if _, reducer, err := selectorFilter(sel, externalLabelPrefixes, externalFullLabels); err != nil || reducer != "REDUCE_MEAN" {
		t.Errorf("reducer: %q %v", reducer, err)
	}
}

func TestObjectFiltersAreSortedLikeTheAdapters(t *testing.T) {
	got := objectFilter(cfg, prometheusSchema, "prometheus.googleapis.com/vllm:num_requests_running/gauge", "gemma",
		[]string{"p-1", "p-2"}, nil)
	want := `metric.labels.pod = one_of("p-1","p-2") AND metric.type = "prometheus.googleapis.com/vllm:num_requests_running/gauge" AND ` +
		`resource.labels.cluster = "local-cluster" AND resource.labels.location = "us-central1" AND ` +
		`resource.labels.namespace = "gemma" AND resource.labels.project_id = "local-project" AND resource.type = "prometheus_target"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = objectFilter(cfg, nodeSchema, "custom.googleapis.com/x", "", nil, []string{"n1", "n2"})
	want = `metric.type = "custom.googleapis.com/x" AND resource.labels.cluster_name = "local-cluster" AND ` +
		`resource.labels.location = "us-central1" AND resource.labels.node_name = monitoring.regex.full_match("^(n1|n2)$") AND ` +
		`resource.labels.project_id = "local-project" AND resource.type = "k8s_node"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestQueryWindowAndAligners(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 30, 500, time.UTC)
	q := newQuery("p", "f", "GAUGE", "DOUBLE", "", now).values()
	if q.Get("interval.startTime") != "2026-12-04T11:55:30Z" || q.Get("interval.endTime") != "2026-12-04T12:00:30Z" ||
		q.Get("aggregation.perSeriesAligner") != "ALIGN_NEXT_OLDER" || q.Get("aggregation.alignmentPeriod") != "300s" ||
		q.Has("aggregation.crossSeriesReducer") {
		t.Errorf("gauge query %v", q)
	}
	q = newQuery("p", "f", "CUMULATIVE", "DOUBLE", "REDUCE_SUM", now).values()
	if q.Get("aggregation.perSeriesAligner") != "ALIGN_RATE" || q.Get("aggregation.alignmentPeriod") != "60s" ||
		q.Get("aggregation.crossSeriesReducer") != "REDUCE_SUM" {
		t.Errorf("counter query %v", q)
	}
}

func TestPointValues(t *testing.T) {
	double, i64 := 0.633, "7"
	s := timeSeries{Points: []point{{Value: &typedValue{DoubleValue: &double}}}}
	s.Points[0].Interval.EndTime = "2026-12-04T12:00:00Z"
	if q, _, err := pointQuantity(s); err != nil || q.String() != "633m" {
		t.Errorf("double: %v %v", q.String(), err)
	}
	s.Points[0].Value = &typedValue{Int64Value: &i64}
	if q, _, err := pointQuantity(s); err != nil || q.String() != "7" {
		t.Errorf("int64: %v %v", q.String(), err)
	}
	if _, _, err := pointQuantity(timeSeries{}); err == nil {
		t.Error("a series without points was accepted")
	}
}
