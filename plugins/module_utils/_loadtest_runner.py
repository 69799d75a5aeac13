# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``loadtest_run`` does: plan a run (``_loadtest``'s rules), check its target with one request, run the tool
in its own process group with the cluster sampled on a thread, stop it at the time cap, and read its results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpClient,
    GcpError,
    RetryPolicy,
    credentials_from_params,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import HttpTransportError, KeepAliveSession
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import open_client

INTERRUPT_GRACE_S = 15


# --------------------------------------------------------------------------- the plan


def _executable(binary):
    found = shutil.which(binary)
    if not found:
        raise lt.LoadTestError("%s not found (not a path to an executable, nor on PATH)" % binary)
    return found


def plan(params, run_dir):
    """(argv, environment additions, files to write {path: text}, expected requests, expected seconds)."""
    base = params["url"].rstrip("/")
    if params["tool"] == "hey":
        hey = params["hey"]
        body_file = os.path.join(run_dir, "body.json")
        argv = lt.hey_command(hey["binary"], base + "/v1/completions", body_file, hey["concurrency"],
                              requests=hey["requests"], duration=hey["duration"], rate=hey["rate"],
                              timeout=hey["timeout"], host=params["host"])
        body = lt.hey_body(params["model"], hey["prompt"], hey["max_tokens"])
        requests, seconds = lt.hey_expected(hey["concurrency"], hey["requests"], hey["duration"], hey["rate"],
                                            hey["timeout"])
        return argv, {}, {body_file: json.dumps(body)}, requests, seconds
    perf = params["inference_perf"]
    config = lt.inference_perf_config(
        perf["preset"], base, params["model"], perf["rates"], perf["stage_duration"],
        os.path.join(run_dir, "reports"), tokenizer=perf["tokenizer"], host=params["host"],
        streaming=perf["streaming"], api_type=perf["api_type"], request_timeout=perf["request_timeout"],
        num_workers=perf["num_workers"], seed=perf["seed"], overrides=perf["overrides"])
    config_file = os.path.join(run_dir, "config.yml")
    offline = perf["offline"]
    if offline is None:
        offline = bool(perf["tokenizer"]) and os.path.isdir(perf["tokenizer"])
    env = {"HF_HUB_OFFLINE": "1"} if offline else {}
    requests, seconds = lt.inference_perf_expected(config)
    # JSON is YAML: inference-perf reads the file with yaml.safe_load.
    return ([perf["binary"], "--config_file", config_file], env, {config_file: json.dumps(config, indent=1)},
            requests, seconds)


# --------------------------------------------------------------------------- preflight


PREFLIGHT_RETRY_S = 2.0
RETRYABLE_STATUS = (500, 502, 503, 504)


def preflight(params, sleep=time.sleep, clock=time.monotonic):
    """One small completion; LoadTestError unless HTTP 200.

    A gateway that was just programmed answers 5xx (or not at all) until its backends and endpoint picker are
    healthy, on GKE for minutes: those answers are retried for ``preflight_wait`` seconds. Any other status fails at
    once (a 404 is a wrong host or route, not a warm-up)."""
    deadline = clock() + params["preflight_wait"]
    while True:
        try:
            _preflight_once(params)
            return
        except _RetryablePreflight as error:
            if clock() + PREFLIGHT_RETRY_S > deadline:
                if params["preflight_wait"] > 0:
                    raise lt.LoadTestError("%s (still so after %d s of retries)" % (error, params["preflight_wait"]))
                raise lt.LoadTestError(str(error))
            sleep(PREFLIGHT_RETRY_S)


class _RetryablePreflight(Exception):
    pass


def _preflight_once(params):
    from urllib.parse import urlsplit

    url = params["url"].rstrip("/") + "/v1/completions"
    headers = {"Content-Type": "application/json"}
    if params["host"]:
        headers["Host"] = params["host"]
    body = json.dumps({"model": params["model"], "prompt": "ping", "max_tokens": 1})
    session = KeepAliveSession()
    try:
        if urlsplit(url).scheme == "https":
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # as hey and the walkthrough's curl -k: the gateway's cert is for the host
            session = KeepAliveSession(tls_context=context)
        response = session.request("POST", url, data=body, headers=headers, timeout=params["preflight_timeout"])
    except HttpTransportError as error:
        hint = ("Is the Gateway's address reachable from this machine (an internal load balancer is not, from "
                "outside its VPC)?" if params["host"] else
                "A ClusterIP is reachable only from inside the cluster's network: give the Service's URL as this "
                "machine reaches it (a port-forward), or run the load test in the cluster.")
        raise _RetryablePreflight("preflight: no answer from %s%s: %s. %s" % (
            url, " (Host %s)" % params["host"] if params["host"] else "", error, hint))
    finally:
        session.close()
    if response.status_code != 200:
        message = "preflight: %s%s answered HTTP %d: %s" % (
            url, " (Host %s)" % params["host"] if params["host"] else "", response.status_code,
            response.text[:300].strip())
        if response.status_code in RETRYABLE_STATUS:
            raise _RetryablePreflight(message)
        raise lt.LoadTestError(message)


# --------------------------------------------------------------------------- sampling


def _probes(module, api_log):
    """The sampler's probes: the Deployment's replicas, the pool's KV-cache use (its GCP client's retries go to
    ``api_log``)."""
    sample = module.params["sample"]
    probes = {}
    if sample["deployment"]:
        state = {}

        def replicas(_started, now):
            if "client" not in state:
                # the connection kubernetes.core would make (K8S_AUTH_*, KUBECONFIG, in-cluster)
                state["client"] = open_client({"kubeconfig": module.params["kubeconfig"],
                                               "context": module.params["context"]})
                state["resource"] = state["client"].resource("apps/v1", "Deployment")
            deployment = state["client"].get(state["resource"], sample["deployment"], sample["namespace"])
            return [(now, list(lt.replicas_sample(deployment)))]

        probes["replicas"] = replicas
    if sample["pool"]:
        gcp = {}

        def kv_cache(started, now):
            if "client" not in gcp:
                credentials, project = credentials_from_params(module.params)
                gcp["project"] = module.params["project"] or project
                if not gcp["project"]:
                    raise GcpError("no Google Cloud project (project option or GCP_PROJECT)", kind="invalid")
                gcp["client"] = GcpClient(credentials, endpoint=module.params["api_endpoint"],
                                          retry=RetryPolicy(max_retries=1), timeout=10)
                gcp["client"].log = api_log
            query = {"filter": lt.kv_cache_filter(sample["pool"]),
                     "interval.startTime": _rfc3339(started - 60), "interval.endTime": _rfc3339(now)}
            answer = gcp["client"].request("GET", "monitoring", "v3/projects/%s/timeSeries" % gcp["project"],
                                           query=query, action="read the KV-cache metric")
            return [point for point in lt.kv_points(answer, _parse_rfc3339) if point[0] >= started]

        probes["kv_cache"] = kv_cache
    return probes


def _rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + (".%06dZ" % int((epoch % 1) * 1e6))


def _parse_rfc3339(text):
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- running


def _interrupt(proc):
    """SIGINT to the tool's process group (hey and inference-perf report what they have), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, INTERRUPT_GRACE_S), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def execute(module, argv, env_extra, run_dir, time_cap, api_log):
    """Runs the tool with the sampler; returns (exit code, capped, wall start, wall end, monotonic start, sampler)."""
    sampler = lt.Sampler(_probes(module, api_log), interval=module.params["sample"]["interval"])
    stdout_path = os.path.join(run_dir, "stdout.txt")
    stderr_path = os.path.join(run_dir, "stderr.txt")
    env = dict(os.environ, **env_extra)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        # the run's time 0: the first sample (taken before the tool starts) and the tool's own clock count from here
        wall_start, mono_start = time.time(), time.perf_counter()
        sampler.start()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=run_dir,
                                start_new_session=True)
        capped = False
        try:
            proc.wait(timeout=time_cap)
        except subprocess.TimeoutExpired:
            capped = True
            _interrupt(proc)
        finally:
            if proc.poll() is None:
                _interrupt(proc)
        wall_end = time.time()
        sampler.stop()
    return proc.returncode, capped, wall_start, wall_end, mono_start, sampler


def collect(params, run_dir, wall_start, wall_end, mono_start, expected_requests, capped):
    """(stages, records) from the tool's output."""
    if params["tool"] == "hey":
        with open(os.path.join(run_dir, "stdout.txt")) as stream:
            records = lt.parse_hey_csv(stream.read())
        hey = params["hey"]
        missing = 0
        if hey["requests"] is not None and expected_requests is not None and not capped:
            # hey's CSV has a line per HTTP answer only; the rest of a count it finished got none
            # (an interrupted run simply never sent the rest)
            missing = max(0, expected_requests - len(records))
        stage = lt.hey_stage(records, wall_end - wall_start, requested_rate=hey["rate"], missing=missing)
        return [stage], records
    stages, entries = lt.read_inference_perf(os.path.join(run_dir, "reports"))
    return stages, lt.inference_perf_requests(entries, mono_start)


def _tail(path, size=2000):
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - size))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run(module):
    params = module.params
    for key in ("time_cap", "preflight_timeout"):
        if params[key] <= 0:
            raise lt.LoadTestError("%s must be > 0" % key)
    if params["preflight_wait"] < 0:
        raise lt.LoadTestError("preflight_wait must be >= 0")
    if params["max_requests"] < 0:
        raise lt.LoadTestError("max_requests must be >= 0 (0: no limit)")
    if params["sample"]["interval"] <= 0:
        raise lt.LoadTestError("sample.interval must be > 0")
    if params["sample"]["deployment"] and not params["sample"]["namespace"]:
        raise lt.LoadTestError("sample.deployment needs sample.namespace")
    run_dir = os.path.join(params["output_dir"], params["name"])
    argv, env_extra, files, expected_requests, expected_seconds = plan(params, run_dir)
    lt.check_caps(expected_requests, expected_seconds, params["max_requests"] or None, params["time_cap"])
    result = {"command": argv, "expected": {"requests": expected_requests, "seconds": expected_seconds},
              "path": os.path.join(params["output_dir"], params["name"] + ".json"), "api_log": []}
    if module.check_mode:
        result["changed"] = True
        return result
    argv[0] = _executable(argv[0])
    if params["preflight"]:
        preflight(params)
    if params["plan"]:
        result["changed"] = False
        return result
    os.makedirs(run_dir, exist_ok=True)
    for path, text in files.items():
        with open(path, "w") as stream:
            stream.write(text)
    code, capped, wall_start, wall_end, mono_start, sampler = execute(module, argv, env_extra, run_dir,
                                                                      params["time_cap"], result["api_log"])
    stages, records = collect(params, run_dir, wall_start, wall_end, mono_start, expected_requests, capped)
    if not stages and not records:
        raise lt.LoadTestError("%s exited with %s and left no results (%s): %s" % (
            params["tool"], code, run_dir, _tail(os.path.join(run_dir, "stderr.txt"))))
    run = {
        "name": params["name"],
        "tool": params["tool"],
        "target": {"url": params["url"], "host": params["host"], "model": params["model"]},
        "labels": params["labels"],
        "workload": (params["hey"] if params["tool"] == "hey" else
                     {k: v for k, v in params["inference_perf"].items() if k not in ("binary", "overrides")}),
        "command": argv,
        "started": wall_start,
        "ended": wall_end,
        "duration_s": wall_end - wall_start,
        "exit_code": code,
        "capped": capped,
        "stages": stages,
        "totals": lt.totals(stages),
        "timeline": lt.status_timeline(records, 1.0, wall_end - wall_start),
        "samples": {"interval_s": params["sample"]["interval"],
                    "deployment": params["sample"]["deployment"], "pool": params["sample"]["pool"],
                    "replicas": sampler.series("replicas", wall_start),
                    "kv_cache": sampler.series("kv_cache", wall_start),
                    "errors": sampler.errors},
    }
    if code != 0 and not capped:
        run["stderr_tail"] = _tail(os.path.join(run_dir, "stderr.txt"))
    with open(result["path"], "w") as stream:
        json.dump(run, stream, indent=1, sort_keys=True)
    result.update(changed=True, run=run)
    if code != 0 and not capped:
        result["failed"] = True
        result["msg"] = "%s exited with %s: %s" % (params["tool"], code, run["stderr_tail"][-500:])
    return result
