# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""The inference gateway's dashboard: the panels users look at, from the data model, as Cloud Monitoring queries.

``panels(...)`` is the one list of panels - each a title, a unit and its series, every series one Cloud Monitoring
``timeSeries.list`` query (a filter and an aggregation) - that ``dashboard(...)`` lays out as a Cloud Monitoring
dashboard (the ``monitoring_dashboard`` module's ``definition``) and that anything else drawing the same panels
(a local report over the GCP fake's time series) evaluates the same way.

The metrics are the ones the stack exports, as Managed Prometheus names them
(``prometheus.googleapis.com/<metric>/<kind>``, resource ``prometheus_target``):

* the endpoint pickers': ``<prefix>_request_total``, ``<prefix>_request_error_total`` (counters) and
  ``<prefix>_request_duration_seconds`` (histogram), per model (``model_name``), where ``<prefix>`` is the GIE
  profile's (``inference_objective`` from v1.0, ``inference_model`` before); ``inference_pool_average_kv_cache_
  utilization``, ``inference_pool_average_queue_size`` and ``inference_pool_ready_pods`` per pool (``name``);
* vLLM's (``vllm:time_to_first_token_seconds``, ``vllm:num_requests_waiting``), per ``model_name``, scraped by
  the ``monitoring`` role's PodMonitoring;
* kube-state-metrics' (``kube_deployment_status_replicas_ready``, ``kube_horizontalpodautoscaler_status_desired_
  replicas``, ``kube_node_status_capacity``), as GKE's kube state metrics package and GMP's kube-state-metrics
  exporter write them. The objects they describe are named in metric labels (``deployment``,
  ``horizontalpodautoscaler``, ``node``), so those panels select by name rather than by the target's namespace.
"""

from __future__ import annotations

import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpError

PROMETHEUS = "prometheus.googleapis.com/%s/%s"
ALIGNMENT_PERIOD = "60s"
COLUMNS = 48
TILE_WIDTH = 24
TILE_HEIGHT = 16
GPU_RESOURCE = "nvidia_com_gpu"  # kube-state-metrics' name of the nvidia.com/gpu resource


def _quote(value):
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def _one_of(label, values):
    values = sorted(set(values))
    if len(values) == 1:
        return "%s = %s" % (label, _quote(values[0]))
    return "%s = one_of(%s)" % (label, ", ".join(_quote(v) for v in values))


def series(metric, kind, aligner, reducer, group_by, selectors, legend, percentile=None):
    """One query of a panel: the metric (a Prometheus name and GMP kind), the filter's other selectors, and how
    to aggregate (``perSeriesAligner``/``crossSeriesReducer`` over ``groupByFields`` per ``ALIGNMENT_PERIOD``)."""
    metric_type = PROMETHEUS % (metric, kind)
    terms = ["metric.type = %s" % _quote(metric_type), 'resource.type = "prometheus_target"'] + list(selectors)
    return {
        "metric_type": metric_type,
        "filter": " AND ".join(terms),
        "aggregation": {"alignmentPeriod": ALIGNMENT_PERIOD, "perSeriesAligner": aligner,
                        "crossSeriesReducer": reducer, "groupByFields": list(group_by)},
        "legend": legend,
    }


def panels(models, namespace, cluster, model_metric_prefix="inference_objective"):
    """The dashboard's panels, in order: ``[{"id", "title", "unit", "series": [series...], "thresholds"}]``.

    ``models`` are entries of ``infgw_models_resolved`` (``pool_name``, ``deployment_name``, ``autoscaling``);
    ``namespace`` and ``cluster`` narrow the Prometheus targets to the stack's.
    """
    models = list(models or [])
    if not models:
        raise ValueError("the dashboard needs at least one model")
    if model_metric_prefix not in ("inference_objective", "inference_model"):
        raise ValueError("model_metric_prefix must be inference_objective or inference_model, not %r"
                         % model_metric_prefix)
    target = ['resource.label.cluster = %s' % _quote(cluster), 'resource.label.namespace = %s' % _quote(namespace)]
    pools = _one_of("metric.label.name", [m["pool_name"] for m in models])
    autoscaled = [m for m in models if (m.get("autoscaling") or {}).get("enabled")]
    by_model = ["metric.label.model_name"]
    p = model_metric_prefix
    out = [
        {"id": "requests", "title": "Requests per second by model", "unit": "1/s", "series": [
            series(p + "_request_total", "counter", "ALIGN_RATE", "REDUCE_SUM", by_model, target,
                   "${metric.labels.model_name}")]},
        {"id": "errors", "title": "Errors per second by model and code", "unit": "1/s", "series": [
            series(p + "_request_error_total", "counter", "ALIGN_RATE", "REDUCE_SUM",
                   by_model + ["metric.label.error_code"], target,
                   "${metric.labels.model_name} ${metric.labels.error_code}")]},
        {"id": "latency", "title": "Request latency by model (p50, p95)", "unit": "s", "series": [
            series(p + "_request_duration_seconds", "histogram", "ALIGN_DELTA", "REDUCE_PERCENTILE_%s" % pct,
                   by_model, target, "p%s ${metric.labels.model_name}" % pct) for pct in ("50", "95")]},
        {"id": "ttft", "title": "Time to first token by model (p95, model servers)", "unit": "s", "series": [
            series("vllm:time_to_first_token_seconds", "histogram", "ALIGN_DELTA", "REDUCE_PERCENTILE_95", by_model,
                   target, "p95 ${metric.labels.model_name}")]},
        {"id": "kv_cache", "title": "KV-cache use by pool", "unit": "10^2.%", "series": [
            series("inference_pool_average_kv_cache_utilization", "gauge", "ALIGN_MEAN", "REDUCE_MEAN",
                   ["metric.label.name"], target + [pools], "${metric.labels.name}")],
         "thresholds": _hpa_thresholds(autoscaled)},
        {"id": "queue", "title": "Queued requests by pool", "unit": "1", "series": [
            series("inference_pool_average_queue_size", "gauge", "ALIGN_MEAN", "REDUCE_MEAN", ["metric.label.name"],
                   target + [pools], "average ${metric.labels.name}"),
            series("vllm:num_requests_waiting", "gauge", "ALIGN_MEAN", "REDUCE_SUM", by_model, target,
                   "waiting ${metric.labels.model_name}")]},
        {"id": "replicas", "title": "Ready replicas and HPA desired replicas", "unit": "1",
         "series": _replica_series(models, autoscaled, cluster, target + [pools])},
        {"id": "gpu_nodes", "title": "GPU nodes", "unit": "1", "series": [
            series("kube_node_status_capacity", "gauge", "ALIGN_MEAN", "REDUCE_COUNT", [],
                   ['resource.label.cluster = %s' % _quote(cluster),
                    'metric.label.resource = %s' % _quote(GPU_RESOURCE)], "nodes with GPUs"),
            series("kube_node_status_capacity", "gauge", "ALIGN_MEAN", "REDUCE_SUM", [],
                   ['resource.label.cluster = %s' % _quote(cluster),
                    'metric.label.resource = %s' % _quote(GPU_RESOURCE)], "GPUs")]},
    ]
    return out


def _replica_series(models, autoscaled, cluster, pool_selectors):
    """Ready pods as each endpoint picker counts them, ready replicas of each Deployment, and what each HPA wants."""
    in_cluster = "resource.label.cluster = %s" % _quote(cluster)
    out = [
        series("inference_pool_ready_pods", "gauge", "ALIGN_MEAN", "REDUCE_MEAN", ["metric.label.name"],
               pool_selectors, "ready pods ${metric.labels.name}"),
        series("kube_deployment_status_replicas_ready", "gauge", "ALIGN_MEAN", "REDUCE_MAX",
               ["metric.label.deployment"],
               [in_cluster, _one_of("metric.label.deployment", [m["deployment_name"] for m in models])],
               "ready ${metric.labels.deployment}"),
    ]
    if autoscaled:
        out.append(series("kube_horizontalpodautoscaler_status_desired_replicas", "gauge", "ALIGN_MEAN", "REDUCE_MAX",
                          ["metric.label.horizontalpodautoscaler"],
                          [in_cluster, _one_of("metric.label.horizontalpodautoscaler",
                                               [m["deployment_name"] for m in autoscaled])],
                          "HPA desired ${metric.labels.horizontalpodautoscaler}"))
    return out


def _hpa_thresholds(autoscaled):
    """A line at each HPA's KV-cache target (the value at which it adds replicas)."""
    targets = {}
    for m in autoscaled:
        value = (m.get("autoscaling") or {}).get("target_kv_cache_utilization")
        if value in (None, ""):
            continue
        targets.setdefault(_quantity(value), []).append(m["pool_name"])
    return [{"value": value, "label": "HPA target %s" % ", ".join(names)} for value, names in sorted(targets.items())]


def _quantity(value):
    """A Kubernetes quantity as the HPA target is written (``500m``, ``0.5``, ``1``) -> a float."""
    text = str(value).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000.0
    return float(text)


def widget(panel):
    """A panel as a Cloud Monitoring ``Widget`` (an xyChart, one data set per series)."""
    chart = {"dataSets": [{
        "plotType": "LINE",
        "targetAxis": "Y1",
        "legendTemplate": s["legend"],
        "minAlignmentPeriod": ALIGNMENT_PERIOD,
        "timeSeriesQuery": {"unitOverride": panel["unit"],
                            "timeSeriesFilter": {"filter": s["filter"], "aggregation": dict(s["aggregation"])}},
    } for s in panel["series"]], "yAxis": {"scale": "LINEAR"}}
    thresholds = panel.get("thresholds") or []
    if thresholds:
        chart["thresholds"] = [{"value": t["value"], "label": t["label"], "color": "YELLOW", "direction": "ABOVE",
                                "targetAxis": "Y1"} for t in thresholds]
    return {"title": panel["title"], "xyChart": chart}


def dashboard(panel_list, columns=COLUMNS):
    """The ``definition`` of the dashboard: a mosaic of the panels, two per row."""
    per_row = columns // TILE_WIDTH
    tiles = []
    for index, panel in enumerate(panel_list):
        tiles.append({"xPos": (index % per_row) * TILE_WIDTH, "yPos": (index // per_row) * TILE_HEIGHT,
                      "width": TILE_WIDTH, "height": TILE_HEIGHT, "widget": widget(panel)})
    return {"mosaicLayout": {"columns": columns, "tiles": tiles}}


# --------------------------------------------------------------------------------------
# the panels' data, read back (the load test report draws them from Cloud Monitoring)


def time_series_query(one_series, start, end):
    """The ``timeSeries.list`` query parameters of a panel's series over ``[start, end]`` (RFC 3339 times)."""
    aggregation = one_series["aggregation"]
    query = {"filter": one_series["filter"], "interval.startTime": start, "interval.endTime": end,
             "aggregation.alignmentPeriod": aggregation["alignmentPeriod"],
             "aggregation.perSeriesAligner": aggregation["perSeriesAligner"],
             "aggregation.crossSeriesReducer": aggregation["crossSeriesReducer"]}
    if aggregation.get("groupByFields"):
        query["aggregation.groupByFields"] = list(aggregation["groupByFields"])
    return query


def legend(template, time_series):
    """A data set's ``legendTemplate`` filled from one answered TimeSeries (``${metric.labels.KEY}``,
    ``${resource.labels.KEY}``), as the console names the line."""
    values = {"metric.labels": (time_series.get("metric") or {}).get("labels") or {},
              "resource.labels": (time_series.get("resource") or {}).get("labels") or {}}

    def fill(match):
        scope, key = match.group(1), match.group(2)
        return str(values[scope].get(key, ""))
    return re.sub(r"\$\{(metric\.labels|resource\.labels)\.([A-Za-z0-9_:.-]+)\}", fill, template).strip() or "(all)"


def _value(value):
    for key in ("doubleValue", "int64Value"):
        if key in (value or {}):
            return float(value[key])
    return None


def series_points(answer, template, parse_time):
    """``[{"legend", "points": [[epoch seconds, value]...]}]`` of a ``timeSeries.list`` answer, oldest point first
    (a point is at the end of its alignment period)."""
    out = []
    for time_series in (answer or {}).get("timeSeries") or []:
        points = []
        for point in time_series.get("points") or []:
            value = _value(point.get("value"))
            when = (point.get("interval") or {}).get("endTime")
            if value is not None and when:
                points.append([parse_time(when), value])
        out.append({"legend": legend(template, time_series), "points": sorted(points)})
    return sorted(out, key=lambda s: s["legend"])


def read_panels(client, project, panel_list, start, end, origin, to_rfc3339, parse_time):
    """Each panel's series from Cloud Monitoring over ``[start, end]`` (epoch seconds), each query the dashboard's
    own: ``[{"id", "title", "unit", "thresholds", "series": [{"legend", "points": [[seconds from origin, value]]}],
    "errors"}]``. A query the API refuses (a reducer it lacks) is the panel's error, not the caller's."""
    out = []
    for panel in panel_list:
        entry = {"id": panel["id"], "title": panel["title"], "unit": panel["unit"],
                 "thresholds": panel.get("thresholds") or [], "series": [], "errors": []}
        for one in panel["series"]:
            try:
                answer = client.request("GET", "monitoring", "v3/projects/%s/timeSeries" % project,
                                        query=time_series_query(one, to_rfc3339(start), to_rfc3339(end)),
                                        action="read the dashboard panel %s" % panel["title"])
            except GcpError as e:
                entry["errors"].append("%s: %s" % (one["legend"], e.message or e.msg))
                continue
            for line in series_points(answer, one["legend"], parse_time):
                line["points"] = [[round(when - origin, 3), value] for when, value in line["points"]]
                entry["series"].append(line)
        out.append(entry)
    return out
