# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load tests: what hey and inference-perf are asked to do, and their results read into one shape.

Pure functions (no process, no network) so that every rule is unit-tested: the inference-perf presets and the
configuration built from them, hey's command line, the request and time caps, and the parsers of both tools'
output. ``loadtest_run`` runs the tools and samples the cluster; ``_loadtest_report`` draws the report.

A *run* (the module's result, one JSON file per run) is::

    {"name", "tool", "target": {"url", "host", "model"}, "labels": {...}, "started", "ended" (epoch seconds),
     "exit_code", "capped", "stages": [stage...], "totals": {...}, "timeline": {...}, "samples": {...}}

and a *stage* (one QPS step of a sweep; hey's run is one stage)::

    {"index", "requested_rate" (QPS or None), "achieved_rate", "duration_s", "requests", "successes", "failures",
     "status_codes": {"200": n, "503": n, "TimeoutError": n}, "throughput": {"requests_per_s",
     "output_tokens_per_s"}, "latency": {"e2e": dist, "ttft": dist, "itl": dist, "tpot": dist}}

where a *dist* is ``{"mean", "p50", "p90", "p99", "min", "max"}`` in seconds (only what the tool measures:
hey, which reads whole responses, has no TTFT or ITL).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re

INFERENCE_PERF_VERSION = "0.7.0"
WALKTHROUGH_PROMPT = "What are the top 5 most popular programming languages? Please be brief."
PERCENTILES = (50, 90, 99)
# How long inference-perf takes to start (imports, tokenizer) and to write its reports, beyond its stages.
INFERENCE_PERF_OVERHEAD_S = 60
STAGE_INTERVAL_S = 1.0


class LoadTestError(Exception):
    """A load test that cannot run as asked; the message says what to change."""


def _fixed(tokens):
    return {"type": "fixed", "mean": tokens, "min": tokens, "max": tokens, "std_dev": 0}


def _normal(mean, std_dev, low, high):
    return {"type": "normal", "mean": mean, "std_dev": std_dev, "min": low, "max": high}


# inference-perf workloads (its `data` section). Token counts are of the benchmark's tokenizer.
PRESETS = {
    "walkthrough": {
        "description": "the walkthrough's hey request: one short question (about 16 tokens), 200 tokens out",
        "data": {"type": "random", "input_distribution": _fixed(16), "output_distribution": _fixed(200)},
    },
    "prefill-heavy": {
        "description": "long prompts, short answers (about 1,024 tokens in, 32 out): prompt processing dominates",
        "data": {"type": "random", "input_distribution": _normal(1024, 128, 512, 2048),
                 "output_distribution": _fixed(32)},
    },
    "decode-heavy": {
        "description": "short prompts, long answers (about 64 tokens in, 512 out): token generation dominates",
        "data": {"type": "random", "input_distribution": _normal(64, 16, 16, 128),
                 "output_distribution": _fixed(512)},
    },
    "shared-prefix": {
        "description": "8 system prompts of 512 tokens, each shared by 16 questions of 64 tokens, 128 tokens out: "
                       "what prefix-cache-aware routing is for",
        "data": {"type": "shared_prefix", "shared_prefix": {
            "num_groups": 8, "num_prompts_per_group": 16, "system_prompt_len": 512, "question_len": 64,
            "output_len": 128}},
    },
}


def deep_merge(base, override):
    """``override`` merged into a copy of ``base``, dictionaries recursively (lists and scalars replace)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------- inference-perf


def check_sweep(rates, stage_duration):
    """Rates (QPS, > 0) and the stage duration (whole seconds > 0) of a sweep, or LoadTestError."""
    if not rates:
        raise LoadTestError("inference-perf needs at least one rate (QPS) in rates")
    for rate in rates:
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate > 0:
            raise LoadTestError("every rate must be a number of requests per second > 0, got %r" % (rate,))
    if not isinstance(stage_duration, int) or isinstance(stage_duration, bool) or stage_duration <= 0:
        raise LoadTestError("stage_duration must be a whole number of seconds > 0, got %r" % (stage_duration,))


def inference_perf_config(preset, base_url, model, rates, stage_duration, output_dir, tokenizer=None,
                          host=None, streaming=True, api_type="completion", request_timeout=60,
                          num_workers=1, teardown_grace=None, seed=None, overrides=None):
    """The inference-perf configuration (a dict to dump as YAML) for one sweep against ``base_url``.

    One constant-rate stage per rate, ``stage_duration`` seconds each: inference-perf stops by itself after the
    last stage and waits at most ``teardown_grace`` seconds (default: the request timeout) for the requests
    still in flight. ``host`` is sent as the Host header (the gateway routes on it). ``tokenizer`` is a local
    tokenizer directory or a Hub model id (default: the served model's name, fetched from the Hub).
    ``overrides`` is merged last, for anything the options do not cover (inference-perf's own keys)."""
    if preset not in PRESETS:
        raise LoadTestError("unknown inference-perf preset %r; one of %s" % (preset, ", ".join(sorted(PRESETS))))
    check_sweep(rates, stage_duration)
    if api_type not in ("completion", "chat"):
        raise LoadTestError("api_type must be completion or chat, got %r" % (api_type,))
    grace = request_timeout if teardown_grace is None else teardown_grace
    config = {
        "api": {"type": api_type, "streaming": bool(streaming)},
        "data": copy.deepcopy(PRESETS[preset]["data"]),
        "load": {
            "type": "constant",
            "interval": STAGE_INTERVAL_S,
            "stages": [{"rate": rate, "duration": stage_duration} for rate in rates],
            "num_workers": num_workers,
            "request_timeout": request_timeout,
            "stage_teardown_grace_seconds": grace,
        },
        "server": {"type": "vllm", "model_name": model, "base_url": base_url, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": tokenizer or model},
        "report": {"request_lifecycle": {
            "summary": True, "per_stage": True, "per_request": True,
            "per_request_fields": {"request": False, "response": False, "info": False, "response_chunks": False,
                                   "computed_metrics": True},
        }},
        "storage": {"local_storage": {"path": output_dir}},
    }
    if host:
        config["api"]["headers"] = {"Host": host}
    if seed is not None:
        config["load"]["base_seed"] = seed
    return deep_merge(config, overrides)


def inference_perf_expected(config):
    """(requests, seconds) a configuration asks for: the sum over stages of rate x duration, and the stages'
    time plus the pauses between them, the teardown grace and inference-perf's own start and report time."""
    load = config.get("load") or {}
    stages = load.get("stages") or []
    requests = int(math.ceil(sum(stage["rate"] * stage["duration"] for stage in stages)))
    seconds = sum(stage["duration"] for stage in stages) + load.get("interval", STAGE_INTERVAL_S) * max(
        0, len(stages) - 1) + (load.get("stage_teardown_grace_seconds") or 0) + INFERENCE_PERF_OVERHEAD_S
    return requests, int(math.ceil(seconds))


# --------------------------------------------------------------------------- hey


def hey_body(model, prompt=WALKTHROUGH_PROMPT, max_tokens=200):
    """The walkthrough's completion request."""
    return {"model": model, "max_tokens": max_tokens, "prompt": prompt}


def hey_command(binary, url, body_file, concurrency, requests=None, duration=None, rate=None, timeout=60,
                host=None):
    """hey's argv for ``concurrency`` workers sending ``requests`` in all, or for ``duration`` seconds (which wins), at
    ``rate`` requests per second in all (hey's -q is per worker, so it gets rate / concurrency), with per-request
    records as CSV on stdout. The URL comes last: hey reads flags only before it."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise LoadTestError("concurrency must be a whole number >= 1, got %r" % (concurrency,))
    if duration is not None:
        requests = None  # as hey itself: -z wins over -n
    elif requests is None:
        raise LoadTestError("hey needs requests (a count) or duration (seconds)")
    argv = [binary, "-c", str(concurrency)]
    if duration is not None:
        if not isinstance(duration, int) or duration <= 0:
            raise LoadTestError("duration must be a whole number of seconds > 0, got %r" % (duration,))
        argv += ["-z", "%ds" % duration]
    else:
        if not isinstance(requests, int) or requests < concurrency:
            raise LoadTestError("requests must be a whole number >= concurrency (%d): hey gives each worker "
                                "requests / concurrency, got %r" % (concurrency, requests))
    if requests is not None:
        argv += ["-n", str(requests)]
    if rate is not None:
        if not isinstance(rate, (int, float)) or not rate > 0:
            raise LoadTestError("rate must be a number of requests per second > 0, got %r" % (rate,))
        argv += ["-q", _float_text(rate / concurrency)]
    if not isinstance(timeout, int) or timeout < 1:
        raise LoadTestError("timeout must be a whole number of seconds >= 1, got %r" % (timeout,))
    argv += ["-t", str(timeout), "-m", "POST", "-T", "application/json", "-D", body_file, "-o", "csv"]
    if host:
        argv += ["-host", host]
    return argv + [url]


def _float_text(value):
    return ("%.6f" % value).rstrip("0").rstrip(".")


def hey_expected(concurrency, requests=None, duration=None, rate=None, timeout=60):
    """(requests at most, or None when only time bounds them; seconds at most) of a hey run. hey gives each worker
    requests // concurrency, then waits for the requests in flight (at most the per-request timeout). A duration
    wins over a count, as in hey."""
    if duration is not None:
        most = int(math.ceil(rate * duration)) + concurrency if rate else None
        return most, duration + timeout + 5
    sent = (requests // concurrency) * concurrency
    seconds = None
    if rate:
        seconds = int(math.ceil(sent / float(rate))) + timeout + 5
    return sent, seconds


def check_caps(expected_requests, expected_seconds, max_requests=None, time_cap=None):
    """LoadTestError when a run would exceed its caps, before anything is sent. A run without a bound on its
    requests needs no request cap check; a run whose time is unbounded by itself is cut at the time cap."""
    if max_requests and expected_requests is not None and expected_requests > max_requests:
        raise LoadTestError("the run would send %d requests, more than max_requests (%d): lower the rate, the "
                            "duration or the count, or raise max_requests" % (expected_requests, max_requests))
    if time_cap and expected_seconds is not None and expected_seconds > time_cap:
        raise LoadTestError("the run needs up to %d s, more than time_cap (%d s): shorten it or raise time_cap"
                            % (expected_seconds, time_cap))


# --------------------------------------------------------------------------- statistics


def percentile(values, pct):
    """The ``pct`` percentile of ``values`` with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution(values):
    """``{"mean", "p50", "p90", "p99", "min", "max"}`` of ``values`` (None when empty)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    out = {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    for pct in PERCENTILES:
        out["p%d" % pct] = percentile(values, pct)
    return out


def status_timeline(records, bucket_s=1.0, end_s=None):
    """Requests by outcome per time bucket (by their start, seconds from the run's start):
    ``{"bucket_s", "t": [bucket starts], "codes": {outcome: [count per bucket]}}``."""
    last = max([r["t"] for r in records] + [end_s or 0.0])
    buckets = int(last // bucket_s) + 1 if records or end_s else 0
    codes = {}
    for record in records:
        series = codes.setdefault(str(record["status"]), [0] * buckets)
        series[int(max(record["t"], 0.0) // bucket_s)] += 1
    return {"bucket_s": bucket_s, "t": [round(i * bucket_s, 6) for i in range(buckets)],
            "codes": dict(sorted(codes.items()))}


def count_statuses(records):
    counts = {}
    for record in records:
        counts[str(record["status"])] = counts.get(str(record["status"]), 0) + 1
    return dict(sorted(counts.items()))


def is_success(status):
    return str(status).isdigit() and 200 <= int(status) < 300


# --------------------------------------------------------------------------- hey output


def parse_hey_csv(text):
    """hey's ``-o csv`` records as ``{"t", "latency", "ttfb", "status"}`` (seconds; t from hey's start).

    hey writes one line per request that got an HTTP answer; requests that got none (timeouts, refused
    connections) are only counted in its text summary, which -o csv leaves out."""
    records = []
    header = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        fields = line.split(",")
        if header is None:
            if fields[0] != "response-time":
                continue  # anything hey printed before its header
            header = fields
            continue
        row = dict(zip(header, fields))
        try:
            records.append({"t": float(row["offset"]), "latency": float(row["response-time"]),
                            "ttfb": float(row["DNS+dialup"]) + float(row["Request-write"]) +
                            float(row["Response-delay"]),
                            "status": str(int(row["status-code"]))})
        except (KeyError, ValueError):
            raise LoadTestError("hey printed a CSV line that is not a request record: %r" % line)
    if header is None and text.strip():
        raise LoadTestError("hey's output has no CSV header (response-time,...): %r" % text[:200])
    return records


def hey_stage(records, wall_seconds, requested_rate=None, missing=0):
    """hey's run as one stage. ``missing`` requests got no HTTP answer (hey's CSV leaves them out; known only
    for a request count); they count as failures with the outcome ``no-response``."""
    ok = [r for r in records if is_success(r["status"])]
    statuses = count_statuses(records)
    if missing:
        statuses["no-response"] = missing
    total = len(records) + missing
    return {
        "index": 0,
        "requested_rate": requested_rate,
        "achieved_rate": total / wall_seconds if wall_seconds > 0 else None,
        "duration_s": wall_seconds,
        "requests": total,
        "successes": len(ok),
        "failures": total - len(ok),
        "status_codes": statuses,
        "throughput": {"requests_per_s": len(ok) / wall_seconds if wall_seconds > 0 else None,
                       "output_tokens_per_s": None},
        "latency": {"e2e": distribution([r["latency"] for r in ok]),
                    "ttfb": distribution([r["ttfb"] for r in ok])},
    }


# --------------------------------------------------------------------------- inference-perf output

_STAGE_FILE = re.compile(r"^stage_(\d+)_lifecycle_metrics\.json$")
_HTTP_ERROR = re.compile(r"^(?:HTTP Error )?(\d{3})\b")  # "HTTP Error 503" per request, "503 - Service Unavailable" per stage
_LATENCY_KEYS = {"e2e": "request_latency", "ttft": "time_to_first_token", "itl": "inter_token_latency",
                 "tpot": "time_per_output_token"}


def _tool_dist(summary):
    """inference-perf's summary of one metric in our dist shape."""
    if not summary or summary.get("mean") is None:
        return None
    return {"mean": summary["mean"], "p50": summary.get("median"), "p90": summary.get("p90"),
            "p99": summary.get("p99"), "min": summary.get("min"), "max": summary.get("max")}


def outcome_of(error):
    """A per-request error of inference-perf as an outcome: the HTTP status, or the error's type."""
    if not error:
        return "200"
    kind = str(error.get("error_type") or "error")
    match = _HTTP_ERROR.match(kind)
    return match.group(1) if match else kind


def inference_perf_stage(index, data):
    """One ``stage_N_lifecycle_metrics.json`` in our stage shape."""
    load = data.get("load_summary") or {}
    successes = data.get("successes") or {}
    failures = data.get("failures") or {}
    latency = successes.get("latency") or {}
    throughput = successes.get("throughput") or {}
    statuses = {}
    if successes.get("count"):
        statuses["200"] = successes["count"]
    for label, info in sorted((failures.get("by_label") or {}).items()):
        count = info.get("count", 0) if isinstance(info, dict) else int(info)
        outcome = outcome_of({"error_type": label})
        statuses[outcome] = statuses.get(outcome, 0) + count
    ok, failed = successes.get("count") or 0, failures.get("count") or 0
    return {
        "index": index,
        "requested_rate": load.get("requested_rate"),
        "achieved_rate": load.get("achieved_rate"),
        "duration_s": data.get("benchmark_time_seconds"),
        "requests": ok + failed,
        "successes": ok,
        "failures": failed,
        "status_codes": statuses,
        "throughput": {"requests_per_s": throughput.get("requests_per_sec"),
                       "output_tokens_per_s": throughput.get("output_tokens_per_sec")},
        "latency": {ours: _tool_dist(latency.get(theirs)) for ours, theirs in _LATENCY_KEYS.items()},
    }


def inference_perf_requests(entries, monotonic_start):
    """Per-request records of ``per_request_lifecycle_metrics.json`` as ``{"t", "latency", "status", ...}``:
    t in seconds from ``monotonic_start`` (the tool's times are of the machine's monotonic clock)."""
    records = []
    for entry in entries:
        record = {"t": entry["start_time"] - monotonic_start, "latency": entry["end_time"] - entry["start_time"],
                  "status": outcome_of(entry.get("error"))}
        metrics = entry.get("computed_metrics") or {}
        for ours, theirs in (("ttft", "time_to_first_token"), ("itl", "inter_token_latency"),
                             ("output_tokens", "output_tokens")):
            if metrics.get(theirs) is not None:
                record[ours] = metrics[theirs]
        records.append(record)
    records.sort(key=lambda r: r["t"])
    return records


def read_inference_perf(report_dir):
    """(stages, per-request entries) from an inference-perf report directory; stages in their order."""
    stages = []
    names = os.listdir(report_dir) if os.path.isdir(report_dir) else []
    for name in names:
        match = _STAGE_FILE.match(name)
        if match:
            with open(os.path.join(report_dir, name)) as stream:
                stages.append(inference_perf_stage(int(match.group(1)), json.load(stream)))
    stages.sort(key=lambda stage: stage["index"])
    entries = []
    per_request = os.path.join(report_dir, "per_request_lifecycle_metrics.json")
    if os.path.isfile(per_request):
        with open(per_request) as stream:
            entries = json.load(stream)
    return stages, entries


def totals(stages):
    """The run's totals over its stages."""
    out = {"requests": 0, "successes": 0, "failures": 0, "status_codes": {}}
    for stage in stages:
        for key in ("requests", "successes", "failures"):
            out[key] += stage.get(key) or 0
        for code, count in stage["status_codes"].items():
            out["status_codes"][code] = out["status_codes"].get(code, 0) + count
    out["status_codes"] = dict(sorted(out["status_codes"].items()))
    out["error_rate"] = out["failures"] / out["requests"] if out["requests"] else None
    return out


# --------------------------------------------------------------------------- cluster samples


KV_CACHE_METRIC = "prometheus.googleapis.com/inference_pool_average_kv_cache_utilization/gauge"


def kv_cache_filter(pool):
    """The Cloud Monitoring filter of a pool's average KV-cache use (the EPP's metric, as GMP stores it)."""
    return 'metric.type = "%s" AND metric.labels.name = "%s"' % (KV_CACHE_METRIC, pool)


def _point_value(value):
    for key in ("doubleValue", "int64Value"):
        if key in (value or {}):
            return float(value[key])
    return None


def kv_points(response, parse_time):
    """``[(epoch seconds, value)]`` of a timeSeries.list answer, oldest first; series of the same pool (one per
    EPP replica) are averaged per point time."""
    by_time = {}
    for series in (response or {}).get("timeSeries") or []:
        for point in series.get("points") or []:
            value = _point_value(point.get("value"))
            if value is None:
                continue
            when = parse_time((point.get("interval") or {}).get("endTime"))
            by_time.setdefault(when, []).append(value)
    return sorted((when, sum(values) / len(values)) for when, values in by_time.items())


def replicas_sample(deployment):
    """(desired, ready) replicas of a Deployment object (None when it is gone)."""
    if not deployment:
        return None, None
    return ((deployment.get("spec") or {}).get("replicas"),
            (deployment.get("status") or {}).get("readyReplicas") or 0)


class Sampler(object):
    """Samples the cluster while a load runs: each probe is called every ``interval`` seconds on a thread.

    ``probes`` maps a name to a function of (run start, now) returning a list of ``(epoch seconds, value)``
    points (a value may be a list, e.g. desired and ready replicas). Points are kept once per time, sorted.
    A probe that raises is recorded in ``errors`` (its count and last message) and tried again: the load test
    goes on without its series rather than failing."""

    def __init__(self, probes, interval=2.0, clock=None, event=None):
        import threading
        import time

        self.probes = probes
        self.interval = interval
        self.clock = clock or time.time
        self.stop_event = event or threading.Event()
        self.points = dict((name, {}) for name in probes)
        self.errors = {}
        self.started = None
        self._thread = None

    def sample_once(self, now=None):
        now = self.clock() if now is None else now
        for name, probe in self.probes.items():
            try:
                for when, value in probe(self.started, now):
                    self.points[name][when] = value
            except Exception as error:  # pylint: disable=broad-except
                entry = self.errors.setdefault(name, {"count": 0, "last": None})
                entry["count"] += 1
                entry["last"] = "%s: %s" % (type(error).__name__, error)

    def _loop(self):
        while not self.stop_event.wait(self.interval):
            self.sample_once()

    def start(self):
        import threading

        self.started = self.clock()
        self.sample_once(self.started)
        self._thread = threading.Thread(target=self._loop, name="loadtest-sampler", daemon=True)
        self._thread.start()

    def stop(self):
        """Stops the thread and takes one last sample (metrics that arrive late, like Monitoring's points)."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval * 2))
        self.sample_once()

    def series(self, name, origin):
        """``[[seconds from origin, value...]]`` of one probe, oldest first."""
        out = []
        for when in sorted(self.points.get(name, {})):
            value = self.points[name][when]
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            out.append([round(when - origin, 3)] + values)
        return out
