package main

// The Cloud Monitoring v3 calls the custom-metrics-stackdriver-adapter makes (metricDescriptors.list and .get,
// timeSeries.list), as plain REST: the same paths and query parameters as google.golang.org/api/monitoring/v3
// sends, without that module (one more large download and compile for three GETs). Responses are decoded into
// the fields the adapter reads.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const defaultMonitoringEndpoint = "https://monitoring.googleapis.com/"

type monitoringClient struct {
	base string // ends with "/"; "v3/..." is appended, as the generated client's BasePath
	http *http.Client
}

type metricDescriptor struct {
	Type       string `json:"type"`
	MetricKind string `json:"metricKind"`
	ValueType  string `json:"valueType"`
}

type listMetricDescriptorsResponse struct {
	MetricDescriptors []metricDescriptor `json:"metricDescriptors"`
	NextPageToken     string             `json:"nextPageToken"`
}

type typedValue struct {
	Int64Value  *string  `json:"int64Value"` // int64 is a JSON string in Google's APIs
	DoubleValue *float64 `json:"doubleValue"`
	BoolValue   *bool    `json:"boolValue"`
}

type point struct {
	Interval struct {
		StartTime string `json:"startTime"`
		EndTime   string `json:"endTime"`
	} `json:"interval"`
	Value *typedValue `json:"value"`
}

type timeSeries struct {
	Metric struct {
		Type   string            `json:"type"`
		Labels map[string]string `json:"labels"`
	} `json:"metric"`
	Resource struct {
		Type   string            `json:"type"`
		Labels map[string]string `json:"labels"`
	} `json:"resource"`
	MetricKind string  `json:"metricKind"`
	ValueType  string  `json:"valueType"`
	Points     []point `json:"points"`
}

type listTimeSeriesResponse struct {
	TimeSeries    []timeSeries `json:"timeSeries"`
	NextPageToken string       `json:"nextPageToken"`
}

// googleError is an error answer of a Google API, kept whole for the adapter's log and the API status.
type googleError struct {
	Code    int
	Message string
	URL     string
}

func (e *googleError) Error() string {
	return fmt.Sprintf("googleapi: Error %d: %s (GET %s)", e.Code, e.Message, e.URL)
}

func newMonitoringClient(endpoint string, httpClient *http.Client) (*monitoringClient, error) {
	if endpoint == "" {
		endpoint = defaultMonitoringEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("provided StackdriverEndpoint %v is not correct url", endpoint)
	}
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	return &monitoringClient{base: endpoint, http: httpClient}, nil
}

func (c *monitoringClient) get(ctx context.Context, path string, query url.Values, out any) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("alt", "json")
	query.Set("prettyPrint", "false")
	full := c.base + "v3/" + path + "?" + query.Encode()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "google-api-go-client/0.5 custom-metrics-stackdriver-adapter-local")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var wrapped struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &wrapped) == nil && wrapped.Error.Message != "" {
			msg = wrapped.Error.Message
		}
		return &googleError{Code: resp.StatusCode, Message: msg, URL: full}
	}
	return json.Unmarshal(body, out)
}

// listMetricDescriptors: GET v3/projects/{p}/metricDescriptors?filter=..., every page.
func (c *monitoringClient) listMetricDescriptors(ctx context.Context, project, filter string) ([]metricDescriptor, error) {
	var all []metricDescriptor
	token := ""
	for {
		q := url.Values{"filter": {filter}}
		if token != "" {
			q.Set("pageToken", token)
		}
		var page listMetricDescriptorsResponse
		if err := c.get(ctx, "projects/"+project+"/metricDescriptors", q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.MetricDescriptors...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// getMetricDescriptor: GET v3/projects/{p}/metricDescriptors/{type} (the type keeps its slashes).
func (c *monitoringClient) getMetricDescriptor(ctx context.Context, project, metricType string) (*metricDescriptor, error) {
	var d metricDescriptor
	if err := c.get(ctx, "projects/"+project+"/metricDescriptors/"+metricType, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// timeSeriesQuery is one projects.timeSeries.list call as the adapter builds it.
type timeSeriesQuery struct {
	Project         string
	Filter          string
	Start, End      time.Time
	Aligner         string
	AlignmentPeriod time.Duration
	Reducer         string
}

func (q timeSeriesQuery) values() url.Values {
	v := url.Values{
		"filter":                       {q.Filter},
		"interval.startTime":           {q.Start.UTC().Format(time.RFC3339)},
		"interval.endTime":             {q.End.UTC().Format(time.RFC3339)},
		"aggregation.perSeriesAligner": {q.Aligner},
		"aggregation.alignmentPeriod":  {fmt.Sprintf("%ds", int64(q.AlignmentPeriod.Seconds()))},
	}
	if q.Reducer != "" {
		v.Set("aggregation.crossSeriesReducer", q.Reducer)
	}
	return v
}

func (c *monitoringClient) listTimeSeries(ctx context.Context, q timeSeriesQuery) ([]timeSeries, error) {
	var all []timeSeries
	token := ""
	for {
		v := q.values()
		if token != "" {
			v.Set("pageToken", token)
		}
		var page listTimeSeriesResponse
		if err := c.get(ctx, "projects/"+q.Project+"/timeSeries", v, &page); err != nil {
			return nil, err
		}
		all = append(all, page.TimeSeries...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}
