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
    C(connection=local)) against an OpenAI-compatible endpoint, either the Gateway's address with a C(Host) header that
    selects a route, or a model Service directly.
  - V(hey) is the walkthrough's load generator (U(https://github.com/rakyll/hey), v0.1.5). O(hey.concurrency)
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
  plan:
    description:
      - Only check the run (caps, tool arguments, the executable, and the preflight request) and return its command
        line, without sending the load. A role checks every run this way before the first one starts.
    type: bool
    default: false
  preflight:
    description: Send one completion request first and fail unless it gets HTTP 200.
    type: bool
    default: true
  preflight_timeout:
    description: Seconds the preflight request may take.
    type: int
    default: 30
  preflight_wait:
    description:
      - Seconds to keep retrying the preflight request, every 2 s, while the target answers HTTP 500, 502, 503 or 504
        or does not answer: a gateway that was just programmed does so until its backends and endpoint picker are
        healthy. Any other status fails at once. V(0) tries once.
    type: int
    default: 120
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
        description: Seconds to send for (hey C(-z)); when set, O(hey.requests) is ignored, as hey does.
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
api_log:
  description: Retries of the Cloud Monitoring reads made to sample the KV-cache use (empty when not sampled).
  returned: always
  type: list
  elements: dict
command:
  description: The tool's command line.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest_runner as runner
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpError, gcp_argument_spec


def argument_spec():
    spec = gcp_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        tool=dict(type="str", required=True, choices=["hey", "inference_perf"]),
        url=dict(type="str", required=True),
        host=dict(type="str"),
        model=dict(type="str", required=True),
        output_dir=dict(type="path", required=True),
        plan=dict(type="bool", default=False),
        preflight=dict(type="bool", default=True),
        preflight_timeout=dict(type="int", default=30),
        preflight_wait=dict(type="int", default=120),
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
            max_tokens=dict(type="int", default=200, no_log=False),
        )),
        inference_perf=dict(type="dict", default={}, options=dict(
            binary=dict(type="str", default="inference-perf"),
            preset=dict(type="str", default="walkthrough", choices=sorted(lt.PRESETS)),
            rates=dict(type="list", elements="float", default=[1.0]),
            stage_duration=dict(type="int", default=30),
            streaming=dict(type="bool", default=True),
            api_type=dict(type="str", default="completion", choices=["completion", "chat"]),
            request_timeout=dict(type="int", default=60),
            tokenizer=dict(type="str", no_log=False),
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


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result = runner.run(module)
    except (lt.LoadTestError, GcpError) as error:
        module.fail_json(msg=str(error))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
