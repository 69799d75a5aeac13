# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_loadtest.py: the inference-perf presets and configuration, hey's command line,
# the request and time caps, the statistics, and the parsers of both tools' real output (fixtures/loadtest: a hey
# -o csv run and an inference-perf 0.7.0 sweep of two stages, with HTTP 503s, against a streaming server).
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt

FIXTURES = Path(__file__).parent / "fixtures" / "loadtest"


# --------------------------------------------------------------------------- inference-perf configuration

@pytest.mark.parametrize("preset", sorted(lt.PRESETS))
def test_every_preset_makes_a_sweep_with_one_stage_per_rate(preset):
    config = lt.inference_perf_config(preset, "http://10.0.0.1", "google/gemma-3-1b-it", [1, 2.5, 4], 20, "/out",
                                      tokenizer="/tok", host="api.example.com")
    assert config["load"]["stages"] == [{"rate": 1, "duration": 20}, {"rate": 2.5, "duration": 20},
                                        {"rate": 4, "duration": 20}]
    assert config["load"]["type"] == "constant"
    assert config["data"] == lt.PRESETS[preset]["data"] and config["data"] is not lt.PRESETS[preset]["data"]
    assert config["api"] == {"type": "completion", "streaming": True, "headers": {"Host": "api.example.com"}}
    assert config["server"] == {"type": "vllm", "model_name": "google/gemma-3-1b-it", "base_url": "http://10.0.0.1",
                                "ignore_eos": True}
    assert config["tokenizer"] == {"pretrained_model_name_or_path": "/tok"}
    assert config["storage"] == {"local_storage": {"path": "/out"}}
    fields = config["report"]["request_lifecycle"]["per_request_fields"]
    assert fields["computed_metrics"] is True and fields["response"] is False  # per-request times, no bodies


def test_presets_differ_in_the_direction_their_names_say():
    def mean(preset, key):
        return lt.PRESETS[preset]["data"][key]["mean"]

    assert mean("prefill-heavy", "input_distribution") > 10 * mean("prefill-heavy", "output_distribution")
    assert mean("decode-heavy", "output_distribution") > 5 * mean("decode-heavy", "input_distribution")
    assert lt.PRESETS["walkthrough"]["data"]["output_distribution"]["mean"] == 200  # the walkthrough's max_tokens
    shared = lt.PRESETS["shared-prefix"]["data"]
    assert shared["type"] == "shared_prefix"
    assert shared["shared_prefix"]["system_prompt_len"] > shared["shared_prefix"]["question_len"]


def test_the_tokenizer_defaults_to_the_model_and_overrides_merge_last():
    config = lt.inference_perf_config("walkthrough", "http://x", "m/model", [1], 5, "/o", request_timeout=30,
                                      overrides={"load": {"num_workers": 4}, "api": {"streaming": False}})
    assert config["tokenizer"]["pretrained_model_name_or_path"] == "m/model"
    assert "headers" not in config["api"]
    assert config["api"]["streaming"] is False and config["api"]["type"] == "completion"
    assert config["load"]["num_workers"] == 4 and config["load"]["request_timeout"] == 30
    assert config["load"]["stage_teardown_grace_seconds"] == 30  # waits at most one request timeout


@pytest.mark.parametrize("kwargs,message", [
    ({"preset": "nope"}, "unknown inference-perf preset 'nope'"),
    ({"rates": []}, "at least one rate"),
    ({"rates": [1, 0]}, "> 0, got 0"),
    ({"rates": [True]}, "got True"),
    ({"stage_duration": 2.5}, "whole number of seconds"),
    ({"api_type": "embeddings"}, "completion or chat"),
])
def test_a_bad_sweep_is_refused_with_its_reason(kwargs, message):
    args = dict(preset="walkthrough", base_url="http://x", model="m", rates=[1], stage_duration=10, output_dir="/o")
    args.update(kwargs)
    with pytest.raises(lt.LoadTestError, match=message):
        lt.inference_perf_config(**args)


def test_the_expected_requests_and_time_of_a_sweep():
    config = lt.inference_perf_config("walkthrough", "http://x", "m", [1, 2.5], 10, "/o", request_timeout=20)
    requests, seconds = lt.inference_perf_expected(config)
    assert requests == 35  # 10 + 25
    assert seconds == 20 + 1 + 20 + lt.INFERENCE_PERF_OVERHEAD_S  # stages, pause, teardown grace, start and report


# --------------------------------------------------------------------------- hey

def test_hey_command_is_the_walkthroughs_shape_with_csv_records():
    argv = lt.hey_command("hey", "http://34.1.2.3/v1/completions", "/tmp/body.json", 250, requests=45000,
                          timeout=60, host="api.example.com")
    assert argv == ["hey", "-c", "250", "-n", "45000", "-t", "60", "-m", "POST", "-T", "application/json",
                    "-D", "/tmp/body.json", "-o", "csv", "-host", "api.example.com",
                    "http://34.1.2.3/v1/completions"]


def test_hey_rate_is_split_over_the_workers_and_duration_replaces_the_count():
    argv = lt.hey_command("hey", "http://x/v1/completions", "/b", 8, requests=300, duration=30, rate=10)
    assert argv[:7] == ["hey", "-c", "8", "-z", "30s", "-q", "1.25"]
    assert "-n" not in argv and argv[-1] == "http://x/v1/completions"


@pytest.mark.parametrize("kwargs,message", [
    ({"concurrency": 0, "requests": 10}, "concurrency must be"),
    ({"concurrency": 4}, "needs requests"),
    ({"concurrency": 10, "requests": 5}, r"requests must be a whole number >= concurrency \(10\)"),
    ({"concurrency": 2, "duration": 0}, "duration must be"),
    ({"concurrency": 2, "requests": 4, "rate": 0}, "rate must be"),
    ({"concurrency": 2, "requests": 4, "timeout": 0}, "timeout must be"),
])
def test_bad_hey_settings_are_refused_before_hey_is_run(kwargs, message):
    with pytest.raises(lt.LoadTestError, match=message):
        lt.hey_command("hey", "http://x", "/b", **kwargs)


def test_hey_expected_counts_what_each_worker_sends():
    assert lt.hey_expected(10, requests=105) == (100, None)  # hey ignores the remainder of requests / workers
    assert lt.hey_expected(10, requests=100, rate=5, timeout=60) == (100, 20 + 60 + 5)
    assert lt.hey_expected(4, duration=30, timeout=10) == (None, 45)  # only time bounds it
    assert lt.hey_expected(4, duration=30, rate=2, timeout=10) == (64, 45)


def test_caps_refuse_a_run_before_it_starts():
    lt.check_caps(100, 50, max_requests=100, time_cap=50)
    lt.check_caps(None, None, max_requests=1, time_cap=1)  # nothing known: the time cap cuts it while it runs
    with pytest.raises(lt.LoadTestError, match=r"would send 101 requests, more than max_requests \(100\)"):
        lt.check_caps(101, 10, max_requests=100)
    with pytest.raises(lt.LoadTestError, match=r"needs up to 61 s, more than time_cap \(60 s\)"):
        lt.check_caps(1, 61, time_cap=60)


# --------------------------------------------------------------------------- statistics

def test_percentiles_interpolate_between_ranks_as_numpy_does():
    values = [0.1, 0.4, 0.2, 0.3]  # sorted: .1 .2 .3 .4
    assert lt.percentile(values, 50) == pytest.approx(0.25)
    assert lt.percentile(values, 90) == pytest.approx(0.37)
    assert lt.percentile([5.0], 99) == 5.0
    assert lt.percentile([], 50) is None
    dist = lt.distribution(list(range(1, 101)))
    assert dist == {"mean": 50.5, "min": 1, "max": 100, "p50": 50.5, "p90": pytest.approx(90.1),
                    "p99": pytest.approx(99.01)}
    assert lt.distribution([None]) is None


def test_status_timeline_buckets_requests_by_start_and_outcome():
    records = [{"t": 0.1, "status": "200"}, {"t": 0.9, "status": "503"}, {"t": 2.5, "status": "200"},
               {"t": -0.01, "status": "TimeoutError"}]
    timeline = lt.status_timeline(records, 1.0, end_s=3.2)
    assert timeline == {"bucket_s": 1.0, "t": [0.0, 1.0, 2.0, 3.0],
                        "codes": {"200": [1, 0, 1, 0], "503": [1, 0, 0, 0], "TimeoutError": [1, 0, 0, 0]}}
    assert lt.status_timeline([], 1.0) == {"bucket_s": 1.0, "t": [], "codes": {}}


# --------------------------------------------------------------------------- hey's output

def test_parse_hey_csv_of_a_real_run():
    records = lt.parse_hey_csv("Summary noise\n" + (FIXTURES / "hey.csv").read_text())
    assert len(records) == 6
    assert records[0] == {"t": 0.0003, "latency": 0.2892, "ttfb": pytest.approx(0.0031 + 0.0003 + 0.2856),
                          "status": "200"}
    assert [r["status"] for r in records] == ["200", "200", "200", "503", "200", "429"]
    assert lt.parse_hey_csv("response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,"
                            "offset\n") == []  # every request failed without an HTTP answer
    with pytest.raises(lt.LoadTestError, match="no CSV header"):
        lt.parse_hey_csv("Summary:\n  Total: 1 secs\n")
    with pytest.raises(lt.LoadTestError, match="not a request record"):
        lt.parse_hey_csv("response-time,status-code,offset\nabc,200,0.1\n")


def test_hey_stage_counts_outcomes_and_missing_answers():
    records = lt.parse_hey_csv((FIXTURES / "hey.csv").read_text())
    stage = lt.hey_stage(records, 2.0, requested_rate=3.0, missing=2)
    assert stage["requests"] == 8 and stage["successes"] == 4 and stage["failures"] == 4
    assert stage["status_codes"] == {"200": 4, "429": 1, "503": 1, "no-response": 2}
    assert stage["achieved_rate"] == 4.0 and stage["throughput"]["requests_per_s"] == 2.0
    assert stage["latency"]["e2e"]["max"] == 0.2892 and stage["latency"]["e2e"]["min"] == 0.2813  # 200s only
    assert stage["latency"]["e2e"]["p50"] == pytest.approx((0.2866 + 0.2879) / 2)
    assert "ttft" not in stage["latency"]  # hey reads whole responses


# --------------------------------------------------------------------------- inference-perf's output

def test_read_inference_perf_stages_of_a_real_sweep():
    stages, entries = lt.read_inference_perf(str(FIXTURES / "inference-perf"))
    assert [s["index"] for s in stages] == [0, 1]
    assert [s["requested_rate"] for s in stages] == [2.0, 4.0]
    raw = json.loads((FIXTURES / "inference-perf" / "stage_1_lifecycle_metrics.json").read_text())
    second = stages[1]
    assert second["successes"] == raw["successes"]["count"] and second["failures"] == raw["failures"]["count"] == 2
    assert second["status_codes"] == {"200": raw["successes"]["count"], "503": 2}  # "503 - Service Unavailable"
    ttft = raw["successes"]["latency"]["time_to_first_token"]
    assert second["latency"]["ttft"] == {"mean": ttft["mean"], "p50": ttft["median"], "p90": ttft["p90"],
                                         "p99": ttft["p99"], "min": ttft["min"], "max": ttft["max"]}
    assert second["latency"]["itl"]["p50"] == raw["successes"]["latency"]["inter_token_latency"]["median"]
    assert second["throughput"]["output_tokens_per_s"] == raw["successes"]["throughput"]["output_tokens_per_sec"]
    assert 0.19 < second["latency"]["ttft"]["p50"] < 0.3  # the server streamed its first token after 200 ms
    assert len(entries) == 8


def test_inference_perf_requests_are_timed_from_the_runs_start_with_their_outcome():
    _stages, entries = lt.read_inference_perf(str(FIXTURES / "inference-perf"))
    origin = min(e["start_time"] for e in entries) - 10.0
    records = lt.inference_perf_requests(entries, origin)
    assert records[0]["t"] == pytest.approx(10.0)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    failed = [r for r in records if r["status"] != "200"]
    assert len(failed) == sum(1 for e in entries if e["error"]) >= 2
    assert all(r["status"] == "503" and "ttft" not in r for r in failed)
    ok = [r for r in records if r["status"] == "200"]
    assert all(0.19 < r["ttft"] < 0.3 and 0.015 < r["itl"] < 0.03 and r["output_tokens"] == 10 for r in ok)


def test_outcome_of_errors():
    assert lt.outcome_of(None) == "200"
    assert lt.outcome_of({"error_type": "HTTP Error 429"}) == "429"
    assert lt.outcome_of({"error_type": "TimeoutError"}) == "TimeoutError"
    assert lt.outcome_of({"error_type": "ClientConnectorError"}) == "ClientConnectorError"


def test_totals_add_up_the_stages():
    stages, _entries = lt.read_inference_perf(str(FIXTURES / "inference-perf"))
    total = lt.totals(stages)
    assert total["requests"] == sum(s["requests"] for s in stages)
    assert total["status_codes"]["503"] == sum(s["status_codes"].get("503", 0) for s in stages)
    assert total["error_rate"] == pytest.approx(total["failures"] / total["requests"])
    assert lt.totals([])["error_rate"] is None


def test_a_missing_report_directory_reads_as_nothing(tmp_path):
    assert lt.read_inference_perf(str(tmp_path / "absent")) == ([], [])


# --------------------------------------------------------------------------- cluster samples

def test_kv_points_average_the_pools_series_per_time():
    answer = {"timeSeries": [
        {"points": [{"interval": {"endTime": "t2"}, "value": {"doubleValue": 0.5}},
                    {"interval": {"endTime": "t1"}, "value": {"doubleValue": 0.25}}]},
        {"points": [{"interval": {"endTime": "t2"}, "value": {"doubleValue": 0.7}},
                    {"interval": {"endTime": "t3"}, "value": {"int64Value": "1"}},
                    {"interval": {"endTime": "t4"}, "value": {}}]},
    ]}
    times = {"t1": 1.0, "t2": 2.0, "t3": 3.0, "t4": 4.0}
    assert lt.kv_points(answer, times.get) == [(1.0, 0.25), (2.0, pytest.approx(0.6)), (3.0, 1.0)]
    assert lt.kv_points({}, times.get) == []
    assert 'metric.labels.name = "vllm-gemma-3-1b"' in lt.kv_cache_filter("vllm-gemma-3-1b")


def test_replicas_sample():
    assert lt.replicas_sample({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}) == (3, 2)
    assert lt.replicas_sample({"spec": {"replicas": 1}, "status": {}}) == (1, 0)
    assert lt.replicas_sample(None) == (None, None)


def test_sampler_keeps_one_point_per_time_and_survives_a_failing_probe():
    clock = iter([100.0, 101.0, 102.0, 103.0, 104.0])
    calls = []

    def replicas(started, now):
        calls.append((started, now))
        return [(now, [1 if now < 102 else 2, 1])]

    def kv_cache(started, now):
        if now == 101.0:
            raise RuntimeError("monitoring answered 503")
        return [(100.5, 0.1)] + ([(now - 0.5, 0.4)] if now > 101 else [])  # old points come back in later queries

    sampler = lt.Sampler({"replicas": replicas, "kv_cache": kv_cache}, interval=60, clock=lambda: next(clock),
                         event=threading.Event())
    sampler.start()  # one sample at once (100)
    sampler.sample_once()  # 101: kv_cache fails
    sampler.sample_once()  # 102
    sampler.stop()  # one more (103)
    assert calls[0] == (100.0, 100.0)
    assert sampler.series("replicas", 100.0) == [[0.0, 1, 1], [1.0, 1, 1], [2.0, 2, 1], [3.0, 2, 1]]
    assert sampler.series("kv_cache", 100.0) == [[0.5, 0.1], [1.5, 0.4], [2.5, 0.4]]
    assert sampler.errors == {"kv_cache": {"count": 1, "last": "RuntimeError: monitoring answered 503"}}
