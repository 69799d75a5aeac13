#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: loadtest_run
short_description: Send a load test (hey or inference-perf) to an inference endpoint and sample the cluster meanwhile
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Runs one load test from the machine the module runs on (the controller, with C(delegate_to) or
    C(connection=local)) against an OpenAI-compatible endpoint: the Gateway's address with a C(Host) header that
    selects a route, or a model Service directly.
  - V(hey) is the walkthrough's load generator (U(https://github.com/rakyll/hey), v0.1.5): O(hey.concurrency)
    workers send the walkthrough's completion request, O(hey.requests) in all or for O(hey.duration) seconds,
    optionally at O(hey.rate) requests per second. hey reads whole responses, so it measures end-to-end latency
    and time to first byte, not time to first token.
  - V(inference_perf) is the Kubernetes serving benchmark (PyPI C(inference-perf) 0.7.0, Python 3.12 or later, in
    its own virtualenv). The module writes its configuration from a preset (O(inference_perf.preset)) and a QPS
    sweep (O(inference_perf.rates), one stage of O(inference_perf.stage_duration) seconds per rate) and streams
    responses, so it measures time to first token (TTFT) and inter-token latency (ITL) as well.
  - Every run stops by itself. The module refuses, before sending anything, a run that would send more than
    O(max_requests) requests or need more than O(time_cap) seconds; a tool still running at O(time_cap) is
    interrupted (SIGINT, then SIGKILL after 15 seconds) and the run is marked C(capped).
  - Before the load, one completion request (O(preflight)) checks that the target answers, so that a wrong address,
    an unreachable ClusterIP or a missing route fails at once with the answer it got.
  - While the load runs, a thread samples every O(sample.interval) seconds the desired and ready replicas of
    O(sample.deployment) (from the Kubernetes API) and the pool's average KV-cache use
    (C(inference_pool_average_kv_cache_utilization) of O(sample.pool), from the Cloud Monitoring API, where Managed
    Prometheus stores the endpoint picker's metrics). A sample that fails is counted in C(run.samples.errors) and
    does not stop the run.
  - The run is written to O(output_dir)/O(name).json (and the tool's own output under O(output_dir)/O(name)/), in
    the shape the M(gke_ai.inference_gateway.loadtest_report) module reads.
options:
  name:
    description: The run's name (a file name), such as the route it measures (V(pool), V(service)).
    type: str
    required: true
  tool:
    description: The load generator.
    type: str
    choices: [hey, inference_perf]
    required: true
  url:
    description:
      - The endpoint's base URL, without a path, such as C(http://34.1.2.3) (a Gateway address) or
        C(http://10.96.0.12:8000) (a Service's ClusterIP). Requests go to C(/v1/completions) (or
        C(/v1/chat/completions)).
    type: str
    required: true
  host:
    description: The C(Host) header, which selects the Gateway's HTTPRoute (C(curl --resolve) in the walkthrough).
    type: str
  model:
    description: The model name sent in each request's body (BBR routes on it).
    type: str
    required: true
  output_dir:
    description: Directory the run's JSON and the tool's raw output are written to (created when missing).
    type: path
    required: true
  preflight:
    description: Send one completion request first and fail unless it gets HTTP 200.
    type: bool
    default: true
  preflight_timeout:
    description: Seconds the preflight request may take.
    type: int
    default: 30
  max_requests:
    description: The most requests a run may plan to send; V(0) means no limit.
    type: int
    default: 0
  time_cap:
    description: The most seconds a run may take; the tool is interrupted at this point if still running.
    type: int
    default: 3600
  hey:
    description: The hey run, for O(tool=hey).
    type: dict
    default: {}
    suboptions:
      binary:
        description: The hey executable (a path, or a name on E(PATH)).
        type: str
        default: hey
      concurrency:
        description: Concurrent workers (hey C(-c)).
        type: int
        default: 10
      requests:
        description: Requests in all (hey C(-n)); each worker sends O(hey.requests) / O(hey.concurrency).
        type: int
      duration:
        description: Seconds to send for (hey C(-z)), instead of O(hey.requests).
        type: int
      rate:
        description: Requests per second in all (hey's C(-q) is per worker, so it gets O(hey.rate) / O(hey.concurrency)).
        type: float
      timeout:
        description: Seconds each request may take (hey C(-t)).
        type: int
        default: 60
      prompt:
        description: The completion prompt.
        type: str
        default: What are the top 5 most popular programming languages? Please be brief.
      max_tokens:
        description: The completion's C(max_tokens).
        type: int
        default: 200
  inference_perf:
    description: The inference-perf run, for O(tool=inference_perf).
    type: dict
    default: {}
    suboptions:
      binary:
        description: The inference-perf executable of its virtualenv.
        type: str
        default: inference-perf
      preset:
        description:
          - The workload. V(walkthrough) is the walkthrough's request (about 16 tokens in, 200 out);
            V(prefill-heavy) about 1,024 in and 32 out; V(decode-heavy) about 64 in and 512 out;
            V(shared-prefix) 8 system prompts of 512 tokens each shared by 16 questions, 128 out.
        type: str
        choices: [walkthrough, prefill-heavy, decode-heavy, shared-prefix]
        default: walkthrough
      rates:
        description: The QPS sweep, one constant-rate stage per value, in order.
        type: list
        elements: float
        default: [1.0]
      stage_duration:
        description: Seconds per stage.
        type: int
        default: 30
      streaming:
        description: Stream responses (needed for TTFT and ITL).
        type: bool
        default: true
      api_type:
        description: C(/v1/completions) or C(/v1/chat/completions).
        type: str
        choices: [completion, chat]
        default: completion
      request_timeout:
        description: Seconds each request may take; also how long the tool waits for requests in flight after the
          last stage.
        type: int
        default: 60
      tokenizer:
        description:
          - The tokenizer inference-perf sizes prompts and counts tokens with, a local directory or a Hugging Face
            model id. Default is O(model) from the Hugging Face Hub (the Gemma models need E(HF_TOKEN) and an
            accepted license).
        type: str
      offline:
        description:
          - Run with E(HF_HUB_OFFLINE=1) (nothing fetched from the Hub). Default is on when O(inference_perf.tokenizer)
            is a local directory.
        type: bool
      num_workers:
        description: inference-perf's worker processes.
        type: int
        default: 1
      seed:
        description: The random seed of the generated prompts (default is the time).
        type: int
      overrides:
        description: inference-perf configuration keys merged over the generated configuration.
        type: dict
        default: {}
  sample:
    description: What to sample while the load runs.
    type: dict
    default: {}
    suboptions:
      namespace:
        description: Namespace of O(sample.deployment).
        type: str
      deployment:
        description: The model server Deployment whose desired and ready replicas are sampled.
        type: str
      pool:
        description: The InferencePool whose average KV-cache use is read from Cloud Monitoring.
        type: str
      interval:
        description: Seconds between samples.
        type: float
        default: 2.0
  kubeconfig:
    description:
      - The kubeconfig the replicas are read with. Default is E(K8S_AUTH_KUBECONFIG), then E(KUBECONFIG), then
        C(~/.kube/config), as kubernetes.core does.
    type: path
  context:
    description: The kubeconfig context. Default is E(K8S_AUTH_CONTEXT), then the current context.
    type: str
  labels:
    description: Values copied into the run's result (route, preset, anything the report should show).
    type: dict
    default: {}
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.local_files
notes:
  - The Google Cloud options are used only to read the KV-cache metric from Cloud Monitoring (C(monitoring.read)).
  - Run the module with C(async) and C(poll) for a progress line while a long run goes on.
requirements:
  - python >= 3.8
  - hey (v0.1.5; C(go install github.com/rakyll/hey@v0.1.5), or Debian's C(hey) package) for O(tool=hey)
  - inference-perf 0.7.0 in a Python 3.12 virtualenv for O(tool=inference_perf)
seealso:
  - module: gke_ai.inference_gateway.loadtest_report
"""

EXAMPLES = r"""
- name: The walkthrough's hey run through the InferencePool route
  gke_ai.inference_gateway.loadtest_run:
    name: pool
    tool: hey
    url: http://34.1.2.3
    host: api.example.com
    model: google/gemma-3-4b-it
    output_dir: /tmp/loadtest
    hey: {concurrency: 250, requests: 45000, timeout: 60}
    sample: {namespace: gemma, deployment: vllm-gemma-3-4b, pool: vllm-gemma-3-4b}
  async: 3700
  poll: 10

- name: A QPS sweep with inference-perf, offline tokenizer
  gke_ai.inference_gateway.loadtest_run:
    name: pool
    tool: inference_perf
    url: http://34.1.2.3
    host: api.example.com
    model: google/gemma-3-1b-it
    output_dir: /tmp/loadtest
    inference_perf:
      binary: /opt/inference-perf/bin/inference-perf
      tokenizer: /opt/inference-perf/tokenizer
      preset: decode-heavy
      rates: [1, 2, 4]
      stage_duration: 60
"""

RETURN = r"""
run:
  description: The run, as written to O(output_dir)/O(name).json.
  returned: always
  type: dict
  contains:
    stages:
      description: One entry per QPS stage (hey has one), with request counts, outcomes (C(status_codes)),
        throughput, and latency distributions (C(e2e), and for inference-perf C(ttft), C(itl), C(tpot)) in seconds.
      type: list
      elements: dict
    totals:
      description: Requests, successes, failures, outcomes and error rate over all stages.
      type: dict
    timeline:
      description: Requests by outcome per second of the run (C(t), C(codes)).
      type: dict
    samples:
      description: C(replicas) as [seconds, desired, ready], C(kv_cache) as [seconds, value], and C(errors) of
        the sampling.
      type: dict
    capped:
      description: Whether the tool was interrupted at O(time_cap).
      type: bool
  sample:
    name: pool
    tool: hey
    capped: false
    totals: {requests: 300, successes: 300, failures: 0, status_codes: {"200": 300}, error_rate: 0.0}
path:
  description: The run's JSON file.
  returned: always
  type: str
command:
  description: The tool's command line.
  returned: always
  type: list
  elements: str
"""

import json
import os
import shutil
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpClient,
    GcpError,
    RetryPolicy,
    credentials_from_params,
    gcp_argument_spec,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import HttpTransportError, KeepAliveSession
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    KubeClient,
    resolve_connection,
)

INTERRUPT_GRACE_S = 15


def argument_spec():
    spec = gcp_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        tool=dict(type="str", required=True, choices=["hey", "inference_perf"]),
        url=dict(type="str", required=True),
        host=dict(type="str"),
        model=dict(type="str", required=True),
        output_dir=dict(type="path", required=True),
        preflight=dict(type="bool", default=True),
        preflight_timeout=dict(type="int", default=30),
        max_requests=dict(type="int", default=0),
        time_cap=dict(type="int", default=3600),
        hey=dict(type="dict", default={}, options=dict(
            binary=dict(type="str", default="hey"),
            concurrency=dict(type="int", default=10),
            requests=dict(type="int"),
            duration=dict(type="int"),
            rate=dict(type="float"),
            timeout=dict(type="int", default=60),
            prompt=dict(type="str", default=lt.WALKTHROUGH_PROMPT),
            max_tokens=dict(type="int", default=200),
        )),
        inference_perf=dict(type="dict", default={}, options=dict(
            binary=dict(type="str", default="inference-perf"),
            preset=dict(type="str", default="walkthrough", choices=sorted(lt.PRESETS)),
            rates=dict(type="list", elements="float", default=[1.0]),
            stage_duration=dict(type="int", default=30),
            streaming=dict(type="bool", default=True),
            api_type=dict(type="str", default="completion", choices=["completion", "chat"]),
            request_timeout=dict(type="int", default=60),
            tokenizer=dict(type="str"),
            offline=dict(type="bool"),
            num_workers=dict(type="int", default=1),
            seed=dict(type="int"),
            overrides=dict(type="dict", default={}),
        )),
        sample=dict(type="dict", default={}, options=dict(
            namespace=dict(type="str"),
            deployment=dict(type="str"),
            pool=dict(type="str"),
            interval=dict(type="float", default=2.0),
        )),
        kubeconfig=dict(type="path"),
        context=dict(type="str"),
        labels=dict(type="dict", default={}),
    )
    return spec


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


def preflight(params):
    """One small completion; LoadTestError unless HTTP 200."""
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
        raise lt.LoadTestError("preflight: no answer from %s%s: %s. Is the address reachable from this machine? "
                               "(A ClusterIP is reachable only inside the cluster: set the Service URL to a "
                               "port-forward, or run the load test in the cluster.)"
                               % (url, " (Host %s)" % params["host"] if params["host"] else "", error))
    finally:
        session.close()
    if response.status_code != 200:
        raise lt.LoadTestError("preflight: %s%s answered HTTP %d: %s" % (
            url, " (Host %s)" % params["host"] if params["host"] else "", response.status_code,
            response.text[:300].strip()))


# --------------------------------------------------------------------------- sampling


def _probes(module):
    sample = module.params["sample"]
    probes = {}
    if sample["deployment"]:
        state = {}

        def replicas(_started, now):
            if "client" not in state:
                state["client"] = KubeClient(resolve_connection(kubeconfig=module.params["kubeconfig"],
                                                                context=module.params["context"]), timeout=10)
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


def execute(module, argv, env_extra, run_dir, time_cap):
    """Runs the tool with the sampler; returns (exit code, capped, wall start, wall end, monotonic start, sampler)."""
    sampler = lt.Sampler(_probes(module), interval=module.params["sample"]["interval"])
    stdout_path = os.path.join(run_dir, "stdout.txt")
    stderr_path = os.path.join(run_dir, "stderr.txt")
    env = dict(os.environ, **env_extra)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        sampler.start()
        wall_start, mono_start = time.time(), time.perf_counter()
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


def run_module(module):
    params = module.params
    for key in ("time_cap", "preflight_timeout"):
        if params[key] <= 0:
            raise lt.LoadTestError("%s must be > 0" % key)
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
              "path": os.path.join(params["output_dir"], params["name"] + ".json")}
    if module.check_mode:
        result["changed"] = True
        return result
    argv[0] = _executable(argv[0])
    if params["preflight"]:
        preflight(params)
    os.makedirs(run_dir, exist_ok=True)
    for path, text in files.items():
        with open(path, "w") as stream:
            stream.write(text)
    code, capped, wall_start, wall_end, mono_start, sampler = execute(module, argv, env_extra, run_dir,
                                                                      params["time_cap"])
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


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = run_module(module)
    except (lt.LoadTestError, GcpError) as error:
        module.fail_json(msg=str(error))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
