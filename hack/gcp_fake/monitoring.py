"""Cloud Monitoring v3: metric descriptors and time series, as the custom-metrics adapter and a person read them.

The data comes from the Managed Prometheus collector (gmp.py), which writes scraped samples here the way GMP
writes them to Monarch: metric type prometheus.googleapis.com/<name>/<kind>, resource prometheus_target.

Served (method ids of monitoring.v3.json):
* projects.metricDescriptors.list (filter over the descriptors' types, and over the series for resource and
  metric-label selectors: a descriptor matches when one of its series does), .get (404 for an unknown type)
* projects.timeSeries.list: filter (one metric type, required), interval (endTime required, startTime
  optional), aggregation (perSeriesAligner ALIGN_NONE/NEXT_OLDER/MEAN/MIN/MAX/SUM/COUNT/DELTA/RATE with an
  alignmentPeriod of at least 60s; crossSeriesReducer REDUCE_NONE/MEAN/MIN/MAX/SUM/COUNT with groupByFields),
  view FULL/HEADERS, pageSize/pageToken. Other aligners and reducers are in the document but answer 501.
  An aligner the metric's kind does not allow is 400, as Monitoring answers.
Points come back newest first; int64 values as strings.
"""

from __future__ import annotations

import bisect
import copy
import datetime
import math
import re
import threading

from . import monitoring_filter
from .errors import GoogleError, invalid, permission_denied
from .world import PROJECT, PROJECT_NUMBER, SEEDERS, Call, handler

RETENTION_SECONDS = 3600.0  # points older than this are dropped (the local environment lives for hours at most)
MAX_POINTS = 2000  # per series
MIN_ALIGNMENT_SECONDS = 60
ALIGNERS = {"ALIGN_NONE", "ALIGN_NEXT_OLDER", "ALIGN_MEAN", "ALIGN_MIN", "ALIGN_MAX", "ALIGN_SUM", "ALIGN_COUNT",
            "ALIGN_DELTA", "ALIGN_RATE"}
REDUCERS = {"REDUCE_NONE", "REDUCE_MEAN", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_SUM", "REDUCE_COUNT"}


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="microseconds") \
        .replace("+00:00", "Z")


def parse_time(name: str, value: str) -> float:
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid(f"Field {name} had an invalid value of \"{value}\": Invalid time format: "
                      "expected an RFC 3339 timestamp.") from None


def parse_duration(name: str, value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", value or "")
    if not m:
        raise invalid(f"Field {name} had an invalid value of \"{value}\": expected a duration in seconds "
                      "with the suffix 's', like \"60s\".")
    return float(m.group(1))


class Series:
    """One time series: its identity and its points [(timestamp, value)], oldest first."""

    def __init__(self, metric_type: str, metric_labels: dict, resource_type: str, resource_labels: dict,
                 kind: str, value_type: str):
        self.metric = {"type": metric_type, "labels": dict(metric_labels)}
        self.resource = {"type": resource_type, "labels": dict(resource_labels)}
        self.kind = kind
        self.value_type = value_type
        self.times: list = []
        self.values: list = []

    def view(self) -> dict:
        return {"metric": self.metric, "resource": self.resource, "project": self.resource["labels"].get(
            "project_id", PROJECT)}

    def add(self, ts: float, value) -> None:
        if self.times and ts <= self.times[-1]:
            return  # Monitoring rejects out-of-order points
        self.times.append(ts)
        self.values.append(value)
        cut = bisect.bisect_left(self.times, ts - RETENTION_SECONDS)
        cut = max(cut, len(self.times) - MAX_POINTS)
        if cut > 0:
            del self.times[:cut], self.values[:cut]


class Store:
    """Every descriptor and series of the project, behind its own lock (the collector writes from its threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.descriptors: dict = {}  # type -> MetricDescriptor
        self.series: dict = {}  # key -> Series

    def write(self, metric_type: str, kind: str, value_type: str, metric_labels: dict, resource_type: str,
              resource_labels: dict, ts: float, value, description: str = "") -> None:
        key = (metric_type, tuple(sorted(metric_labels.items())), resource_type,
               tuple(sorted(resource_labels.items())))
        with self.lock:
            desc = self.descriptors.get(metric_type)
            if desc is None:
                desc = self.descriptors[metric_type] = {
                    "name": f"projects/{PROJECT}/metricDescriptors/{metric_type}",
                    "type": metric_type, "metricKind": kind, "valueType": value_type,
                    "labels": [], "monitoredResourceTypes": [resource_type],
                    "description": description or f"Prometheus metric {metric_type.split('/')[1]}",
                    "displayName": "/".join(metric_type.split("/")[1:]),
                    "unit": "1" if value_type != "DISTRIBUTION" else "",
                }
            known = {label["key"] for label in desc["labels"]}
            for name in sorted(set(metric_labels) - known):
                desc["labels"].append({"key": name, "valueType": "STRING"})
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = Series(metric_type, metric_labels, resource_type, resource_labels,
                                                   kind, value_type)
            series.add(ts, value)

    def snapshot(self, metric_type: str | None = None) -> list:
        """Copies of the series (of one type), safe to read while the collector writes."""
        out = []
        with self.lock:
            for s in self.series.values():
                if metric_type is None or s.metric["type"] == metric_type:
                    c = copy.copy(s)
                    c.times, c.values = list(s.times), list(s.values)
                    out.append(c)
        return out


def seed(world) -> None:
    world.monitoring = Store()


SEEDERS.append(seed)


def _project(call: Call, permission: str) -> str:
    name = call.params.get("name") or f"projects/{call.params.get('projectsId', '')}"
    project = name.split("/")[1] if name.startswith("projects/") else ""
    if project not in (PROJECT, PROJECT_NUMBER):
        raise permission_denied(permission, f"projects/{project}")
    return project


def _filter(text: str | None, required: bool):
    if not text:
        if required:
            raise invalid("Field filter had an invalid value of \"\": the filter must name a metric type, like "
                          "metric.type = \"custom.googleapis.com/my_metric\".")
        return None
    try:
        return monitoring_filter.parse(text)
    except monitoring_filter.FilterError as exc:
        raise invalid(f"Field filter had an invalid value of \"{text}\": {exc}.") from None


# --------------------------------------------------------------------------- metricDescriptors

@handler("monitoring.projects.metricDescriptors.list")
def list_descriptors(call: Call):
    _project(call, "monitoring.metricDescriptors.list")
    expr = _filter(call.query.get("filter"), required=False)
    store = call.world.monitoring
    with store.lock:
        descriptors = sorted(store.descriptors.values(), key=lambda d: d["type"])
        series = list(store.series.values())
    out = []
    for desc in descriptors:
        if expr is None:
            out.append(desc)
            continue
        only_type = monitoring_filter.selectors(expr) <= {"metric.type"}
        if only_type:
            probe = {"metric": {"type": desc["type"], "labels": {}}, "resource": {"type": "", "labels": {}}}
            if monitoring_filter.matches(expr, probe):
                out.append(desc)
        elif any(s.metric["type"] == desc["type"] and monitoring_filter.matches(expr, s.view()) for s in series):
            out.append(desc)
    page, token = _page(out, call.query)
    result = {"metricDescriptors": copy.deepcopy(page)}
    if token:
        result["nextPageToken"] = token
    return result


def _descriptor_name(call: Call) -> tuple[str, str]:
    name = call.params.get("name")
    if name is None:  # the flat route: no '/' in the type
        name = f"projects/{call.params['projectsId']}/metricDescriptors/{call.params['metricDescriptorsId']}"
    return name, name.split("/metricDescriptors/", 1)[1]


@handler("monitoring.projects.metricDescriptors.get")
def get_descriptor(call: Call):
    _project(call, "monitoring.metricDescriptors.get")
    _name, metric_type = _descriptor_name(call)
    with call.world.monitoring.lock:
        desc = call.world.monitoring.descriptors.get(metric_type)
    if desc is None:
        raise GoogleError(404, f"Could not find descriptor for metric '{metric_type}'.", reason="notFound")
    return copy.deepcopy(desc)


def _page(items: list, query: dict) -> tuple[list, str]:
    size = int(query.get("pageSize") or 0) or len(items) or 1
    try:
        start = int(query.get("pageToken") or 0)
    except ValueError:
        raise invalid(f"Invalid page token: {query.get('pageToken')}") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


# --------------------------------------------------------------------------- timeSeries.list

def _allowed(aligner: str, kind: str, value_type: str) -> bool:
    if aligner in ("ALIGN_RATE", "ALIGN_DELTA"):
        return kind in ("CUMULATIVE", "DELTA")
    if aligner in ("ALIGN_MEAN", "ALIGN_SUM", "ALIGN_MIN", "ALIGN_MAX"):
        return value_type in ("INT64", "DOUBLE") or (aligner == "ALIGN_SUM" and value_type == "DISTRIBUTION")
    return True


def _number(value) -> float:
    return float(value["count"]) if isinstance(value, dict) else float(value)


def _align(series: Series, aligner: str, period: float, start: float, end: float) -> list:
    """[(interval start, interval end, value, value type)] newest first."""
    lo = bisect.bisect_right(series.times, start)
    hi = bisect.bisect_right(series.times, end)
    times, values = series.times[lo:hi], series.values[lo:hi]
    if aligner == "ALIGN_NONE":
        origin = series.times[0] if series.times else start  # a cumulative series counts from its first point
        return [(times[i] if series.kind == "GAUGE" else origin, times[i], values[i], series.value_type)
                for i in range(len(times) - 1, -1, -1)]
    points = []
    t = end
    while t > start:
        window_lo = bisect.bisect_right(series.times, t - period)
        window_hi = bisect.bisect_right(series.times, t)
        window_v = series.values[window_lo:window_hi]
        before = series.values[window_lo - 1] if window_lo > 0 else None
        t_prev = t - period
        if window_v:
            if aligner == "ALIGN_NEXT_OLDER":
                points.append((t, t, window_v[-1], series.value_type))
            elif aligner == "ALIGN_COUNT":
                points.append((t, t, len(window_v), "INT64"))
            elif aligner == "ALIGN_MEAN":
                points.append((t, t, sum(map(_number, window_v)) / len(window_v), "DOUBLE"))
            elif aligner == "ALIGN_MIN":
                points.append((t, t, min(map(_number, window_v)), series.value_type))
            elif aligner == "ALIGN_MAX":
                points.append((t, t, max(map(_number, window_v)), series.value_type))
            elif aligner == "ALIGN_SUM":
                points.append((t, t, sum(map(_number, window_v)), series.value_type))
            else:  # DELTA / RATE of a cumulative or delta series
                if series.kind == "DELTA":
                    delta = sum(map(_number, window_v))
                else:
                    first = _number(before) if before is not None else _number(window_v[0])
                    delta, prev = 0.0, first
                    for v in map(_number, window_v):
                        delta += v - prev if v >= prev else v  # a counter reset starts from zero
                        prev = v
                if aligner == "ALIGN_RATE":
                    points.append((t, t, delta / period, "DOUBLE"))
                else:
                    value_type = "INT64" if series.value_type == "INT64" else "DOUBLE"
                    points.append((t_prev, t, delta, value_type))
        t -= period
    return points


def _typed(value, value_type: str) -> dict:
    if value_type == "INT64":
        return {"int64Value": str(int(value))}
    if value_type == "BOOL":
        return {"boolValue": bool(value)}
    if value_type == "DISTRIBUTION":
        return {"distributionValue": copy.deepcopy(value)}
    number = float(value)
    return {"doubleValue": number if math.isfinite(number) else str(number)}


def _reduce(reducer: str, values: list) -> tuple:
    numbers = [_number(v) for v in values]
    if reducer == "REDUCE_COUNT":
        return len(numbers), "INT64"
    if reducer == "REDUCE_SUM":
        return sum(numbers), "DOUBLE"
    if reducer == "REDUCE_MIN":
        return min(numbers), "DOUBLE"
    if reducer == "REDUCE_MAX":
        return max(numbers), "DOUBLE"
    return sum(numbers) / len(numbers), "DOUBLE"


def _group_key(series: Series, fields: list) -> tuple:
    view = series.view()
    return tuple((f, monitoring_filter._lookup(f, view)) for f in fields)  # pylint: disable=protected-access


@handler("monitoring.projects.timeSeries.list")
def list_time_series(call: Call):
    _project(call, "monitoring.timeSeries.list")
    q = call.query
    expr = _filter(q.get("filter"), required=True)
    types = monitoring_filter.metric_types(expr)
    if len(types) != 1:
        raise invalid(f"Field filter had an invalid value of \"{q.get('filter')}\": A filter must specify exactly "
                      "one metric type, like metric.type = \"custom.googleapis.com/my_metric\".")
    if not q.get("interval.endTime"):
        raise invalid("Field interval.endTime had an invalid value of \"\": the end time of the interval is required.")
    end = parse_time("interval.endTime", q["interval.endTime"])
    start = parse_time("interval.startTime", q["interval.startTime"]) if q.get("interval.startTime") else end - 1e-6
    if start > end:
        raise invalid("Field interval.startTime had an invalid value: the start time must not be after the end time.")
    aligner = q.get("aggregation.perSeriesAligner") or "ALIGN_NONE"
    reducer = q.get("aggregation.crossSeriesReducer") or "REDUCE_NONE"
    group_by = q.get("aggregation.groupByFields") or []
    for name, value, known in (("aggregation.perSeriesAligner", aligner, ALIGNERS),
                               ("aggregation.crossSeriesReducer", reducer, REDUCERS)):
        if value not in known:
            raise GoogleError(501, f"{name} {value} is valid but not implemented by the local fake (it implements "
                                   f"{', '.join(sorted(known))}).")
    for prefix in ("secondaryAggregation.",):
        if any(k.startswith(prefix) for k in q):
            raise GoogleError(501, "secondaryAggregation is not implemented by the local fake.")
    period = 0.0
    if aligner != "ALIGN_NONE":
        if not q.get("aggregation.alignmentPeriod"):
            raise invalid("Field aggregation.alignmentPeriod had an invalid value of \"\": an alignment period is "
                          "required with a per-series aligner other than ALIGN_NONE.")
        period = parse_duration("aggregation.alignmentPeriod", q["aggregation.alignmentPeriod"])
        if period < MIN_ALIGNMENT_SECONDS:
            raise invalid(f"Field aggregation.alignmentPeriod had an invalid value of "
                          f"\"{q['aggregation.alignmentPeriod']}\": The alignment period must be at least 60 seconds.")
    if reducer != "REDUCE_NONE" and aligner == "ALIGN_NONE":
        raise invalid("Field aggregation.perSeriesAligner had an invalid value of \"ALIGN_NONE\": a cross-series "
                      "reducer needs a per-series aligner.")
    store = call.world.monitoring
    with store.lock:
        desc = store.descriptors.get(types[0])
    if desc is not None and not _allowed(aligner, desc["metricKind"], desc["valueType"]):
        raise invalid(f"Field aggregation.perSeriesAligner had an invalid value of \"{aligner}\": The aligner cannot "
                      f"be applied to metrics with kind {desc['metricKind']} and value type {desc['valueType']}.")
    headers_only = q.get("view") == "HEADERS"
    out = []
    for series in store.snapshot(types[0]):
        if not monitoring_filter.matches(expr, series.view()):
            continue
        points = _align(series, aligner, period, start, end)
        if points:
            out.append((series, points))
    if reducer != "REDUCE_NONE":
        out = _reduce_series(out, reducer, group_by)
    rendered = []
    for series, points in sorted(out, key=lambda sp: (sorted(sp[0].metric["labels"].items()),
                                                     sorted(sp[0].resource["labels"].items()))):
        value_type = points[0][3]
        kind = series.kind if aligner in ("ALIGN_NONE", "ALIGN_NEXT_OLDER") else \
            ("DELTA" if aligner == "ALIGN_DELTA" else "GAUGE")
        item = {"metric": copy.deepcopy(series.metric), "resource": copy.deepcopy(series.resource),
                "metricKind": kind, "valueType": value_type}
        if desc is not None and desc.get("unit"):
            item["unit"] = desc["unit"]
        if not headers_only:
            item["points"] = [{"interval": {"startTime": rfc3339(s), "endTime": rfc3339(e)},
                               "value": _typed(v, vt)} for s, e, v, vt in points]
        rendered.append(item)
    page, token = _page(rendered, q)
    result = {"timeSeries": page}
    if token:
        result["nextPageToken"] = token
    return result


def _reduce_series(aligned: list, reducer: str, group_by: list) -> list:
    groups: dict = {}
    for series, points in aligned:
        groups.setdefault(_group_key(series, group_by), []).append((series, points))
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        first = members[0][0]
        merged = Series(first.metric["type"], {}, first.resource["type"], {}, first.kind, first.value_type)
        for field, value in key:
            if value is None:
                continue
            scope, _, label = field.partition(".labels.")
            if label:
                (merged.metric if scope == "metric" else merged.resource)["labels"][label] = value
        by_time: dict = {}
        for _series, points in members:
            for s, e, v, _vt in points:
                by_time.setdefault((s, e), []).append(v)
        reduced = []
        for (s, e), values in sorted(by_time.items(), key=lambda kv: -kv[0][1]):
            value, value_type = _reduce(reducer, values)
            reduced.append((s, e, value, value_type))
        out.append((merged, reduced))
    return out


# --------------------------------------------------------------------------- timeSeries.create

_VALUE_TYPES = {"int64Value": "INT64", "doubleValue": "DOUBLE", "boolValue": "BOOL", "stringValue": "STRING",
                "distributionValue": "DISTRIBUTION"}


@handler("monitoring.projects.timeSeries.create")
def create_time_series(call: Call):
    """Writes one point per series, as custom metrics writers (and GMP's exporter) do; a new metric type gets a
    descriptor from its first write, a point older than the series' newest is refused."""
    _project(call, "monitoring.timeSeries.create")
    items = (call.body or {}).get("timeSeries") or []
    if not items or len(items) > 200:
        raise invalid("Field timeSeries had an invalid value: between 1 and 200 time series are required.")
    store = call.world.monitoring
    errors = []
    for i, ts in enumerate(items):
        metric, resource = ts.get("metric") or {}, ts.get("resource") or {}
        points = ts.get("points") or []
        if not metric.get("type") or not resource.get("type"):
            errors.append(f"timeSeries[{i}]: metric.type and resource.type are required")
            continue
        if len(points) != 1:
            errors.append(f"timeSeries[{i}]: Only one point can be written per TimeSeries per request.")
            continue
        value = points[0].get("value") or {}
        if len(value) != 1:
            errors.append(f"timeSeries[{i}]: the point needs exactly one typed value")
            continue
        (field_name, raw), = value.items()
        value_type = _VALUE_TYPES[field_name]
        if value_type == "STRING":
            errors.append(f"timeSeries[{i}]: STRING values are not implemented by the local fake")
            continue
        kind = ts.get("metricKind") or "GAUGE"
        with store.lock:
            desc = store.descriptors.get(metric["type"])
        if desc is not None and (desc["metricKind"], desc["valueType"]) != (kind, value_type):
            errors.append(f"timeSeries[{i}]: Value type for metric {metric['type']} must be {desc['valueType']} "
                          f"and kind {desc['metricKind']}, but is {value_type} and {kind}.")
            continue
        end = parse_time(f"timeSeries[{i}].points[0].interval.endTime",
                         ((points[0].get("interval") or {}).get("endTime") or ""))
        number = int(raw) if value_type == "INT64" else raw if value_type in ("DISTRIBUTION", "BOOL") else float(raw)
        store.write(metric["type"], kind, value_type, metric.get("labels") or {}, resource["type"],
                    resource.get("labels") or {}, end, number)
    if errors:
        raise invalid("One or more TimeSeries could not be written: " + "; ".join(errors))
    return {}
