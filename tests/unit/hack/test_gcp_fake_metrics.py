"""Unit tests of the GCP fake's metrics path: the GCE metadata server, Cloud Monitoring v3 and the Managed
Prometheus collector (hack/gcp_fake/{metadata,monitoring,monitoring_filter,gmp}.py).

The metadata server and Monitoring are judged with Google's own Python clients (google-auth's metadata
client and compute-engine credentials; google-api-python-client's monitoring v3 client) against the fake on
a loopback port; the collector scrapes real HTTP servers on loopback.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake import gmp, monitoring_filter  # noqa: E402
from gcp_fake.server import Fake, serve  # noqa: E402
from gcp_fake.world import World  # noqa: E402

TOKEN = "metrics-test-token"
KV = "prometheus.googleapis.com/inference_pool_average_kv_cache_utilization/gauge"
TARGET = {"project_id": "local-project", "location": "us-central1", "cluster": "local-cluster",
          "namespace": "gemma", "job": "vllm-gemma-3-1b", "instance": "epp-0:metrics"}
# The adapter's calls, as custom-metrics-stackdriver-adapter v0.16.9 sends them (see hack/metrics_adapter).
ADAPTER_DESCRIPTORS_FILTER = ('resource.labels.project_id = "local-project" AND resource.labels.cluster_name = '
                              '"local-cluster" AND resource.labels.location = "us-central1" AND resource.type = '
                              'one_of("k8s_pod","k8s_node","k8s_container")')
ADAPTER_EXTERNAL_FILTER = f'metric.type = "{KV}" AND metric.labels.name = "vllm-gemma-3-1b"'


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def served():
    """(world, port): a fake on a loopback port for the real clients."""
    world = World(TOKEN)
    server = serve(Fake(world))
    yield world, server.server_address[1]
    server.shutdown()


@pytest.fixture
def world(served):
    w, _port = served
    w.reset()
    return w


@pytest.fixture
def monitoring_api(served, monkeypatch):
    """google-api-python-client's monitoring v3 client pointed at the fake."""
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    _world, port = served
    return build("monitoring", "v3", credentials=Credentials(TOKEN), static_discovery=True, cache_discovery=False,
                 client_options={"api_endpoint": f"http://127.0.0.1:{port}/monitoring/"})


def write_kv(world, value, ts, **labels):
    world.monitoring.write(KV, "GAUGE", "DOUBLE", {"name": "vllm-gemma-3-1b", **labels}, "prometheus_target",
                           TARGET, ts, value)


# --------------------------------------------------------------------------- filter language

@pytest.mark.parametrize("text", [
    ADAPTER_DESCRIPTORS_FILTER,
    ADAPTER_EXTERNAL_FILTER,
    'metric.labels.name = one_of("a","b") AND NOT metric.labels.name = one_of("c","d")',
    'metric.labels : name AND resource.labels.instance = starts_with("epp")',
    'metric.labels.node = monitoring.regex.full_match("^(n1|n2)$") OR (resource.type = gce_instance)',
    'metric.labels.code > 199 metric.labels.code < 300',
])
def test_filters_the_adapter_and_people_write_parse(text):
    assert monitoring_filter.parse(text) is not None


@pytest.mark.parametrize("text, message", [
    ('metric.type = ', "expected a value"),
    ('foo.bar = "x"', "unknown selector 'foo.bar'"),
    ('metric.type = "x" AND (metric.labels.a = "b"', r"expected \)"),
    ('metric.labels.a = one_of()', "needs at least one argument"),
    ('metric.labels.a = monitoring.regex.full_match("(")', "invalid regular expression"),
])
def test_bad_filters_are_rejected_with_a_reason(text, message):
    with pytest.raises(monitoring_filter.FilterError, match=message):
        monitoring_filter.parse(text)


def test_filter_semantics():
    series = {"metric": {"type": KV, "labels": {"name": "pool-a", "code": "200"}},
              "resource": {"type": "prometheus_target", "labels": TARGET}, "project": "local-project"}

    def m(text):
        return monitoring_filter.matches(monitoring_filter.parse(text), series)

    assert m(f'metric.type = "{KV}" AND metric.labels.name = "pool-a"')
    assert not m('metric.labels.name = "pool-b"')
    assert m('metric.labels.name = one_of("pool-b","pool-a")')
    assert not m('NOT metric.labels.name = one_of("pool-a")')
    assert m('metric.labels : name') and not m('metric.labels : absent')
    assert m('metric.labels.absent != "x"') and not m('metric.labels.absent = "x"')
    assert m('metric.labels.code > 199 AND metric.labels.code < 300')
    assert m('resource.labels.instance = monitoring.regex.full_match("epp-[0-9]+:metrics")')
    assert m('metric.labels.name = "nope" OR resource.labels.namespace = "gemma"')
    assert m('resource.labels.project_id = "local-project" resource.type = prometheus_target')


# --------------------------------------------------------------------------- metadata server

def test_metadata_server_answers_googles_metadata_client(served, monkeypatch):
    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata
    from google.auth.transport.requests import Request

    _world, port = served
    # What GCE_METADATA_HOST=127.0.0.1:PORT does (google-auth reads the variable once, at import).
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", f"127.0.0.1:{port}")
    request = Request()
    assert _metadata.get_project_id(request) == "local-project"
    assert _metadata.get(request, "instance/attributes/cluster-name") == "local-cluster"
    assert _metadata.get(request, "instance/attributes/cluster-location") == "us-central1"
    assert _metadata.get(request, "instance/hostname").endswith(".c.local-project.internal")
    credentials = compute_engine.Credentials(scopes=["https://www.googleapis.com/auth/monitoring.read"])
    credentials.refresh(request)
    assert credentials.token == TOKEN  # the token every API of the fake accepts


def test_metadata_server_wants_the_flavor_header(served):
    import urllib.error
    import urllib.request

    _world, port = served
    url = f"http://127.0.0.1:{port}/computeMetadata/v1/project/project-id"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 403
    req = urllib.request.Request(url, headers={"Metadata-Flavor": "Google", "X-Forwarded-For": "1.2.3.4"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 403
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Metadata-Flavor": "Google"}), timeout=5) as r:
        assert r.headers["Metadata-Flavor"] == "Google" and r.read() == b"local-project"


# --------------------------------------------------------------------------- Cloud Monitoring

def test_adapter_calls_through_the_python_client(world, monitoring_api):
    now = time.time()
    for i, value in enumerate((0.2, 0.5, 0.633)):
        write_kv(world, value, now - 100 + 30 * i)
    projects = monitoring_api.projects()
    desc = projects.metricDescriptors().get(name=f"projects/local-project/metricDescriptors/{KV}").execute()
    assert (desc["metricKind"], desc["valueType"], desc["type"]) == ("GAUGE", "DOUBLE", KV)
    assert {label["key"] for label in desc["labels"]} == {"name"}
    series = projects.timeSeries().list(
        name="projects/local-project", filter=ADAPTER_EXTERNAL_FILTER, interval_startTime=rfc3339(now - 300),
        interval_endTime=rfc3339(now + 1), aggregation_perSeriesAligner="ALIGN_NEXT_OLDER",
        aggregation_alignmentPeriod="300s").execute()["timeSeries"]
    assert len(series) == 1
    assert series[0]["resource"] == {"type": "prometheus_target", "labels": TARGET}
    assert series[0]["points"][0]["value"] == {"doubleValue": 0.633}  # the newest sample of the window
    raw = projects.timeSeries().list(name="projects/local-project", filter=ADAPTER_EXTERNAL_FILTER,
                                     interval_startTime=rfc3339(now - 300), interval_endTime=rfc3339(now + 1)
                                     ).execute()["timeSeries"][0]["points"]
    assert [p["value"]["doubleValue"] for p in raw] == [0.633, 0.5, 0.2]  # newest first
    # The start-up call: no pod, node or container series in a GMP-only project, so no custom metric.
    assert projects.metricDescriptors().list(name="projects/local-project",
                                             filter=ADAPTER_DESCRIPTORS_FILTER).execute().get("metricDescriptors") == []
    listed = projects.metricDescriptors().list(name="projects/local-project",
                                               filter='metric.type = starts_with("prometheus.googleapis.com/")').execute()
    assert [d["type"] for d in listed["metricDescriptors"]] == [KV]


def test_time_series_window_aligners_and_reducers(world, monitoring_api):
    now = time.time()
    write_kv(world, 0.9, now - 400, pod="epp-old")  # outside a 300s window
    write_kv(world, 0.2, now - 30, pod="epp-0")
    write_kv(world, 0.6, now - 20, pod="epp-1")
    ts = monitoring_api.projects().timeSeries()

    def call(**params):
        base = dict(name="projects/local-project", filter=ADAPTER_EXTERNAL_FILTER,
                    interval_startTime=rfc3339(now - 300), interval_endTime=rfc3339(now))
        base.update(params)
        return ts.list(**base).execute().get("timeSeries", [])

    assert sorted(s["metric"]["labels"]["pod"] for s in call(aggregation_perSeriesAligner="ALIGN_NEXT_OLDER",
                                                             aggregation_alignmentPeriod="300s")) == ["epp-0", "epp-1"]
    mean = call(aggregation_perSeriesAligner="ALIGN_NEXT_OLDER", aggregation_alignmentPeriod="300s",
                aggregation_crossSeriesReducer="REDUCE_MEAN", aggregation_groupByFields=["metric.labels.name"])
    assert len(mean) == 1 and mean[0]["metric"]["labels"] == {"name": "vllm-gemma-3-1b"}
    assert mean[0]["points"][0]["value"]["doubleValue"] == pytest.approx(0.4)
    headers = call(view="HEADERS")
    assert headers and all("points" not in s for s in headers)
    assert len(call(pageSize=1)) == 1


@pytest.mark.parametrize("params, message", [
    ({"aggregation_perSeriesAligner": "ALIGN_RATE", "aggregation_alignmentPeriod": "60s"},
     "cannot be applied to metrics with kind GAUGE"),
    ({"aggregation_perSeriesAligner": "ALIGN_MEAN", "aggregation_alignmentPeriod": "30s"}, "at least 60 seconds"),
    ({"aggregation_perSeriesAligner": "ALIGN_MEAN"}, "alignment period is required"),
    ({"filter": 'metric.labels.name = "x"'}, "exactly one metric type"),
    ({"interval_endTime": "yesterday"}, "Invalid time format"),
])
def test_time_series_list_rejects_what_monitoring_rejects(world, monitoring_api, params, message):
    from googleapiclient.errors import HttpError

    write_kv(world, 0.5, time.time() - 5)
    base = dict(name="projects/local-project", filter=ADAPTER_EXTERNAL_FILTER, interval_endTime=rfc3339(time.time()))
    base.update(params)
    with pytest.raises(HttpError) as err:
        monitoring_api.projects().timeSeries().list(**base).execute()
    assert err.value.status_code == 400 and message in err.value.reason


def test_unknown_descriptor_and_other_project(world, monitoring_api):
    from googleapiclient.errors import HttpError

    with pytest.raises(HttpError) as err:
        monitoring_api.projects().metricDescriptors().get(
            name="projects/local-project/metricDescriptors/prometheus.googleapis.com/nope/gauge").execute()
    assert err.value.status_code == 404
    with pytest.raises(HttpError) as err:
        monitoring_api.projects().timeSeries().list(name="projects/other", filter=ADAPTER_EXTERNAL_FILTER,
                                                    interval_endTime=rfc3339(time.time())).execute()
    assert err.value.status_code == 403


def test_time_series_create_then_read(world, monitoring_api):
    end = rfc3339(time.time())
    series = {"metric": {"type": "custom.googleapis.com/queue", "labels": {"q": "a"}},
              "resource": {"type": "k8s_pod", "labels": {"project_id": "local-project", "location": "us-central1",
                                                         "cluster_name": "local-cluster", "namespace_name": "gemma",
                                                         "pod_name": "p-0"}},
              "points": [{"interval": {"endTime": end}, "value": {"int64Value": "7"}}]}
    monitoring_api.projects().timeSeries().create(name="projects/local-project",
                                                  body={"timeSeries": [series]}).execute()
    out = monitoring_api.projects().timeSeries().list(
        name="projects/local-project", filter='metric.type = "custom.googleapis.com/queue"',
        interval_startTime=rfc3339(time.time() - 60), interval_endTime=rfc3339(time.time() + 1)).execute()
    assert out["timeSeries"][0]["points"][0]["value"] == {"int64Value": "7"}
    # A pod metric now exists, so the adapter's start-up list finds it.
    listed = monitoring_api.projects().metricDescriptors().list(name="projects/local-project",
                                                                filter=ADAPTER_DESCRIPTORS_FILTER).execute()
    assert [d["type"] for d in listed["metricDescriptors"]] == ["custom.googleapis.com/queue"]


# --------------------------------------------------------------------------- Managed Prometheus

EXPOSITION = """\
# HELP inference_pool_average_kv_cache_utilization The average kv cache utilization for an inference server pool.
# TYPE inference_pool_average_kv_cache_utilization gauge
inference_pool_average_kv_cache_utilization{name="vllm-gemma-3-1b"} 0.45
# TYPE inference_objective_request_total counter
inference_objective_request_total{model_name="gemma",target_model_name="gemma"} 12
# TYPE lat histogram
lat_bucket{le="0.1"} 2
lat_bucket{le="1"} 5
lat_bucket{le="+Inf"} 6
lat_sum 4.5
lat_count 6
plain{job="x"} 3
"""


def test_exposition_to_gmp_metric_types():
    types, samples = gmp.parse_exposition(EXPOSITION)
    out = {m: (k, vt, labels, v) for m, k, vt, labels, v in gmp.to_monarch(types, samples)}
    assert out[KV] == ("GAUGE", "DOUBLE", {"name": "vllm-gemma-3-1b"}, 0.45)
    assert out["prometheus.googleapis.com/inference_objective_request_total/counter"][:2] == ("CUMULATIVE", "DOUBLE")
    kind, value_type, _labels, dist = out["prometheus.googleapis.com/lat/histogram"]
    assert (kind, value_type) == ("CUMULATIVE", "DISTRIBUTION")
    assert dist["bucketOptions"]["explicitBuckets"]["bounds"] == [0.1, 1.0]
    assert dist["bucketCounts"] == ["2", "3", "1"] and dist["count"] == "6" and dist["mean"] == 0.75
    assert "prometheus.googleapis.com/plain/unknown" in out and "prometheus.googleapis.com/plain/unknown:counter" in out


def pod(name, ip, labels, ports=(("metrics", 9090),), phase="Running", ns="gemma", owner=("ReplicaSet", "epp-7d9f")):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": dict(labels),
                         "ownerReferences": [{"kind": owner[0], "name": owner[1], "controller": True}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "epp", "ports": [
                {"name": n, "containerPort": p} for n, p in ports]}]},
            "status": {"podIP": ip, "phase": phase}}


def pod_monitoring(port="metrics", secret="epp-metrics-reader-secret", name="vllm-gemma-3-1b", interval="5s"):
    ep = {"port": port, "scheme": "http", "interval": interval, "path": "/metrics"}
    if secret:
        ep["authorization"] = {"type": "Bearer", "credentials": {"secret": {"name": secret, "key": "token"}}}
    return {"metadata": {"name": name, "namespace": "gemma", "generation": 3},
            "spec": {"endpoints": [ep], "selector": {"matchLabels": {"app": "epp"}},
                     "targetLabels": {"metadata": [
                         "container", "pod", "top_level_controller_name", "top_level_controller_type"]}}}


def test_targets_follow_gmp_relabelling():
    pods = [pod("epp-7d9f-abcde", "10.244.0.5", {"app": "epp", "pod-template-hash": "7d9f"}),
            pod("other", "10.244.0.6", {"app": "x"}),
            pod("done", "10.244.0.7", {"app": "epp"}, phase="Succeeded"),
            pod("pending", "", {"app": "epp"})]
    (t,) = gmp.targets_for("PodMonitoring", pod_monitoring(), pods)
    assert t.address == ("10.244.0.5", 9090) and t.pool == "PodMonitoring/gemma/vllm-gemma-3-1b/metrics"
    assert t.labels == {"project_id": "local-project", "location": "us-central1", "cluster": "local-cluster",
                        "namespace": "gemma", "pod": "epp-7d9f-abcde", "container": "epp",
                        "top_level_controller_name": "epp", "top_level_controller_type": "Deployment",
                        "job": "vllm-gemma-3-1b", "instance": "epp-7d9f-abcde:metrics"}
    assert t.interval == 5.0
    assert gmp.targets_for("PodMonitoring", pod_monitoring(port="metricz"), pods) == []  # no such port name
    (numeric,) = gmp.targets_for("PodMonitoring", pod_monitoring(port=9091), pods)
    assert numeric.address == ("10.244.0.5", 9091) and "container" not in numeric.labels
    cpm = pod_monitoring()
    cpm["metadata"].pop("namespace")
    cpm["spec"].pop("targetLabels")
    (cluster_target,) = gmp.targets_for("ClusterPodMonitoring", cpm, pods)
    assert cluster_target.labels["namespace"] == "gemma" and "pod" not in cluster_target.labels


class MetricsServer:
    """A loopback /metrics endpoint that wants a bearer token, like the EPP behind the chart's metrics auth."""

    def __init__(self, token="reader-token", body=EXPOSITION):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.seen.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.seen = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    """The API reads and status writes the collector makes, over in-memory objects (the integration test
    exercises the real API server)."""

    def __init__(self, objects, pods, secrets, target_status=True):
        self.objects, self.pods, self.secrets, self.patches = objects, pods, secrets, []
        self.target_status = target_status

    def get(self, path):
        if path.endswith("/podmonitorings"):
            return {"items": self.objects}
        if path.endswith("/clusterpodmonitorings"):
            return {"items": []}
        if path == "/api/v1/pods":
            return {"items": self.pods}
        if path.endswith("/operatorconfigs/config"):
            return {"features": {"targetStatus": {"enabled": self.target_status}}}
        name = path.rsplit("/", 1)[1]
        if "/secrets/" in path and name in self.secrets:
            return {"data": {"token": base64.b64encode(self.secrets[name].encode()).decode()}}
        raise gmp.KubeError(404, "not found")

    def patch(self, path, body):
        self.patches.append((path, body))
        return {}


def collector_for(world, port, pm, secrets, target_status=True):
    pods = [pod("epp-7d9f-abcde", "127.0.0.1", {"app": "epp", "pod-template-hash": "7d9f"},
                ports=(("metrics", port),))]
    cluster = Cluster([pm], pods, secrets, target_status)
    return gmp.Collector(world, cluster, cluster), cluster


def scrape_once(collector):
    collector.sync()
    (target,) = collector.targets.values()
    collector.scrape(target)
    return target


def test_collector_scrapes_with_the_secret_and_writes_gmp_series(world):
    server = MetricsServer()
    try:
        collector, cluster = collector_for(world, server.port, pod_monitoring(),
                                           {"epp-metrics-reader-secret": "reader-token"})
        target = scrape_once(collector)
    finally:
        server.close()
    assert (target.health, target.last_error) == ("up", "") and server.seen == ["Bearer reader-token"]
    (series,) = world.monitoring.snapshot(KV)
    assert series.resource == {"type": "prometheus_target", "labels": {
        "project_id": "local-project", "location": "us-central1", "cluster": "local-cluster", "namespace": "gemma",
        "job": "vllm-gemma-3-1b", "instance": "epp-7d9f-abcde:metrics"}}
    assert series.metric["labels"] == {"name": "vllm-gemma-3-1b", "pod": "epp-7d9f-abcde", "container": "epp",
                                       "top_level_controller_name": "epp",
                                       "top_level_controller_type": "Deployment"}
    assert series.values == [0.45]
    (up,) = world.monitoring.snapshot("prometheus.googleapis.com/up/gauge")
    assert up.values == [1.0]
    collector.write_statuses()
    (path, body), = cluster.patches
    assert path == "/apis/monitoring.googleapis.com/v1/namespaces/gemma/podmonitorings/vllm-gemma-3-1b/status"
    (endpoint,) = body["status"]["endpointStatuses"]
    assert (endpoint["name"], endpoint["activeTargets"], endpoint["unhealthyTargets"]) == \
        ("PodMonitoring/gemma/vllm-gemma-3-1b/metrics", 1, 0)
    assert endpoint["sampleGroups"][0]["sampleTargets"][0]["health"] == "up"
    assert body["status"]["conditions"][0]["type"] == "ConfigurationCreateSuccess"
    assert body["status"]["observedGeneration"] == 3


@pytest.mark.parametrize("case, expect", [
    ("missing secret", 'unable to read authorization credentials: secret gemma/epp-metrics-reader-secret not '
                       'found or forbidden'),
    ("wrong token", "server returned HTTP status 401 Unauthorized"),
    ("wrong port", "connect: connection refused"),
])
def test_failing_targets_show_prometheus_errors_in_target_status(world, case, expect):
    server = MetricsServer()
    secrets = {} if case == "missing secret" else {
        "epp-metrics-reader-secret": "wrong" if case == "wrong token" else "reader-token"}
    pm = pod_monitoring(port=1 if case == "wrong port" else "metrics")
    if case == "wrong port":
        pm["spec"]["endpoints"][0]["port"] = server.port + 1 if server.port < 65535 else server.port - 1
    try:
        collector, cluster = collector_for(world, server.port, pm, secrets)
        target = scrape_once(collector)
    finally:
        server.close()
    assert target.health == "down" and expect in target.last_error
    collector.write_statuses()
    (endpoint,) = cluster.patches[0][1]["status"]["endpointStatuses"]
    assert endpoint["unhealthyTargets"] == 1
    assert expect in endpoint["sampleGroups"][0]["sampleTargets"][0]["lastError"]
    (up,) = world.monitoring.snapshot("prometheus.googleapis.com/up/gauge")
    assert up.values == [0.0] and world.monitoring.snapshot(KV) == []


def test_no_endpoint_statuses_without_target_status(world):
    server = MetricsServer()
    try:
        collector, cluster = collector_for(world, server.port, pod_monitoring(),
                                           {"epp-metrics-reader-secret": "reader-token"}, target_status=False)
        scrape_once(collector)
    finally:
        server.close()
    collector.write_statuses()
    status = cluster.patches[0][1]["status"]
    assert status["endpointStatuses"] is None and status["conditions"][0]["status"] == "True"


def test_a_target_keeps_its_schedule_and_health_across_syncs(world):
    server = MetricsServer()
    try:
        collector, _cluster = collector_for(world, server.port, pod_monitoring(interval="1s"),
                                            {"epp-metrics-reader-secret": "reader-token"})
        collector.sync()
        collector.run_due()  # a scrape starts on the target...
        collector.sync()  # ...while the targets are read again
        (target,) = collector.targets.values()
        wait = time.monotonic() + 10
        while target.health != "up" and time.monotonic() < wait:
            time.sleep(0.05)
        assert target.health == "up"  # the running scrape's result landed on the target the collector keeps
        time.sleep(1.1)
        collector.run_due()  # and it is due again after its interval
        while len(server.seen) < 2 and time.monotonic() < wait:
            time.sleep(0.05)
    finally:
        server.close()
    assert len(server.seen) == 2
