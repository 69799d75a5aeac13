#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gateway_ready
short_description: Wait until a GKE Gateway, its HTTPRoutes, InferencePools and GKE policies are ready
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Waits until a Gateway API C(Gateway) is serving, as written by the GKE Gateway controller, and everything
    behind it is wired up. C(kubernetes.core.k8s) with C(wait_condition) only sees top-level
    C(status.conditions); Gateway API route and InferencePool status lives in per-parent C(status.parents[]),
    and GKE takes minutes to program a load balancer.
  - The module opens watches (list, then watch from the list's C(resourceVersion)) and re-evaluates on every
    change until all gates pass or O(timeout) expires. The gates, in order, are
  - V(gateway_accepted) - the Gateway's C(Accepted) condition is C(True) with C(observedGeneration) equal to
    C(metadata.generation).
  - V(gateway_programmed) - C(Programmed) is C(True) at the current generation and C(status.addresses) holds at
    least one address.
  - V(routes) - every HTTPRoute attached to the Gateway (all routes of O(route_namespaces) whose
    C(spec.parentRefs) name it, or exactly the O(routes) given) has, for each of its parentRefs naming the
    Gateway, a C(status.parents[]) entry with C(Accepted=True) and C(ResolvedRefs=True) (and no GKE
    C(Reconciled=False)), not older than the route's generation.
  - V(inference_pools) - every InferencePool used as a backend by those routes reports, in its parent entry
    for the Gateway, C(Accepted=True) (and C(ResolvedRefs=True) when reported). Both
    C(inference.networking.k8s.io) (v1, C(status.parents)) and C(inference.networking.x-k8s.io) (v1alpha2,
    C(status.parent)) are understood; the module detects which groups the cluster serves. When no
    InferencePool API is served, or no route uses a pool, the gate is not applicable.
  - V(policies) - GKE policies (O(policy_kinds)) that target the Gateway, its routes or their backends (Services,
    InferencePools) are C(Attached=True), or C(Accepted=True) in their C(status.ancestors[]) entry for the
    Gateway. Kinds whose CRD is not installed are skipped.
  - V(probes) - optional HTTP requests sent to the Gateway address with a chosen C(Host) header (the
    C(curl --resolve) pattern), retried every O(probe_interval) seconds until the expected status, headers and
    body come back. This rides out the minutes during which a freshly programmed GKE load balancer answers
    C(404 fault filter abort). Probes start once every status gate passed.
  - >-
    On timeout the task fails with a message naming every object and condition still blocking, with its
    reason and message, for example
    C(HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: service "x" not found).
  - The result reports the address, the conditions of every object, and when each gate passed (seconds since
    the start of the task).
options:
  name:
    description:
      - Name of the Gateway (C(gateway.networking.k8s.io)).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Gateway.
    type: str
    default: default
  routes:
    description:
      - Explicit HTTPRoutes to gate on, as C(name) (in O(namespace)) or C(namespace/name).
      - Each must exist and reference the Gateway in C(spec.parentRefs); a missing route blocks until it appears.
      - When omitted, every HTTPRoute in O(route_namespaces) whose C(spec.parentRefs) name the Gateway is gated.
    type: list
    elements: str
  route_namespaces:
    description:
      - Namespaces searched for HTTPRoutes attached to the Gateway when O(routes) is not given.
      - Defaults to the Gateway's namespace. Use V(*) for all namespaces (needs cluster-wide list/watch rights);
        InferencePools and policies are then watched cluster-wide as well.
    type: list
    elements: str
  check_inference_pools:
    description:
      - Gate on the InferencePools used as backends by the gated routes.
    type: bool
    default: true
  check_policies:
    description:
      - Gate on the GKE policies (O(policy_kinds)) that target the Gateway, its routes or their backends.
    type: bool
    default: true
  policy_kinds:
    description:
      - GKE policy kinds (group C(networking.gke.io)) to check. Kinds whose CRD is not served are ignored.
    type: list
    elements: str
    default: [HealthCheckPolicy, GCPBackendPolicy, GCPGatewayPolicy, GCPSessionAffinityPolicy, GCPRoutingExtension,
              GCPTrafficExtension]
  timeout:
    description:
      - Overall time budget in seconds for all gates and probes, counted from the start of the task.
      - GKE usually programs a regional load balancer in 1.5 to 3 minutes, a multi-cluster Gateway in up to 10,
        and routes take a few more minutes to carry traffic.
      - V(0) evaluates once and fails if anything blocks (check mode evaluates once and never fails).
    type: int
    default: 900
  probes:
    description:
      - HTTP requests to send through the Gateway once every status gate passed. Each is retried every
        O(probe_interval) seconds until it succeeds O(probe_success_threshold) times in a row, or O(timeout).
      - The request connects to the Gateway address (or O(probe_address)) and carries O(probes[].host) in the
        C(Host) header (and as TLS SNI for HTTPS), like C(curl --resolve host:port:address).
      - In check mode each probe whose method is GET, HEAD or OPTIONS is sent once; other probes are skipped.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Label used in the result and in failure messages. Defaults to C(METHOD url).
        type: str
      scheme:
        description:
          - URL scheme.
        type: str
        choices: [http, https]
        default: http
      host:
        description:
          - Host name sent in the C(Host) header and as TLS SNI, for example V(bbr.example.com).
          - Defaults to the address connected to.
        type: str
      port:
        description:
          - Port of the Gateway listener. Defaults to 80 for http and 443 for https.
        type: int
      path:
        description:
          - Request path, with query string if any.
        type: str
        default: /
      method:
        description:
          - HTTP method.
        type: str
        default: GET
      headers:
        description:
          - Extra request headers.
        type: dict
        default: {}
      body:
        description:
          - Request body. A dict or list is sent as JSON (with C(Content-Type application/json) unless set in
            O(probes[].headers)); a string is sent as is.
        type: raw
      status_code:
        description:
          - Accepted response status codes.
        type: list
        elements: int
        default: [200]
      response_headers:
        description:
          - Response headers that must be present with exactly these values (header names are case-insensitive),
            for example C(x-infgw-selected) with value C(bbr-gemma3-1b).
        type: dict
        default: {}
      response_contains:
        description:
          - A string the response body must contain.
        type: str
      validate_certs:
        description:
          - Verify the TLS certificate of https probes against O(probes[].host).
        type: bool
        default: true
      request_timeout:
        description:
          - Seconds to wait for one response.
        type: float
        default: 10
  probe_address:
    description:
      - Connect probes to this address instead of the Gateway's first C(status.addresses) value, as
        C(host) or C(host:port) (C([v6addr]:port) for IPv6). A port here replaces O(probes[].port) for the
        connection only; the C(Host) header keeps the probe's port. Useful behind a bastion or a port-forward.
    type: str
  probe_interval:
    description:
      - Seconds between probe attempts. Watch events are still processed in between.
    type: float
    default: 5
  probe_success_threshold:
    description:
      - Consecutive successful attempts each probe needs to pass.
    type: int
    default: 1
  log_path:
    description:
      - Append each progress line of the wait log (gates passing, blockers changing, probe outcomes) to this
        file on the managed host as it happens, so a long wait can be followed with C(tail -f).
      - The same lines are returned in RV(wait_log) and sent to the managed host's syslog/journal.
    type: path
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.read_only
requirements:
  - python >= 3.8
  - kubernetes >= 24.2.0
notes:
  - The module never changes anything and always returns C(changed=false).
  - API discovery happens once at the start. A CRD installed while the module waits is not picked up.
  - Conditions of the GKE Gateway that the Gateway API deprecated (C(Scheduled), C(Ready)) are returned but
    never gated on. Listener conditions that are C(False) are listed as blockers only while C(Programmed) is
    not C(True), to explain it.
  - Ansible shows a module's output only when it returns. Follow a long wait with O(log_path), or read
    RV(wait_log) afterwards.
  - Needs C(list) and C(watch) on Gateways, HTTPRoutes, InferencePools and the GKE policy kinds in the
    namespaces involved. A kind that cannot be listed is reported in the warnings and treated as absent.
seealso:
  - module: kubernetes.core.k8s_info
  - name: Gateway API status conventions
    description: How Gateway API controllers report status on Gateways and routes.
    link: https://gateway-api.sigs.k8s.io/guides/implementers/
  - name: GKE Inference Gateway
    description: Deploy GKE Inference Gateway.
    link: https://cloud.google.com/kubernetes-engine/docs/how-to/deploy-gke-inference-gateway
"""

EXAMPLES = r"""
- name: Wait for the inference Gateway and every route attached to it
  gke_ai.inference_gateway.gateway_ready:
    name: vllm-xlb
    namespace: gemma
    timeout: 900
  register: gw

- name: Show the address and how long GKE took
  ansible.builtin.debug:
    msg: "{{ gw.address }} programmed after {{ gw.gates.gateway_programmed.seconds }}s"

- name: Wait for the body-based-routing routes and prove traffic reaches the 1b model
  gke_ai.inference_gateway.gateway_ready:
    name: vllm-xlb
    namespace: gemma
    routes: [bbr-gemma3-1b, bbr-gemma3-4b]
    probes:
      - name: bbr-1b
        host: bbr.example.com
        path: /v1/completions
        method: POST
        body:
          model: google/gemma-3-1b-it
          prompt: Why is the sky blue? Please be brief.
          max_tokens: 20
        status_code: [200]
        response_headers:
          x-infgw-selected: bbr-gemma3-1b
    probe_interval: 10
    probe_success_threshold: 2
    log_path: /tmp/vllm-xlb-ready.log

- name: Probe through a local port-forward instead of the load balancer address
  gke_ai.inference_gateway.gateway_ready:
    name: vllm-xlb
    namespace: gemma
    probe_address: 127.0.0.1:8080
    probes:
      - host: api.example.com
        path: /v1/models

- name: Read-only snapshot of the readiness report (no waiting)
  gke_ai.inference_gateway.gateway_ready:
    name: vllm-xlb
    namespace: gemma
    kubeconfig: ~/.kube/gke-config
    context: gke_my-project_us-central1_my-gke-cluster
  check_mode: true
  register: snapshot

- name: List what is still blocking
  ansible.builtin.debug:
    var: snapshot.blockers
"""

RETURN = r"""
ready:
  description:
    - Whether every gate passed. Always V(true) on success when not in check mode; in check mode the state of
      the snapshot.
  returned: always
  type: bool
  sample: true
address:
  description: First address in the Gateway's C(status.addresses), or V(null).
  returned: always
  type: str
  sample: 34.118.12.7
addresses:
  description: All address values of the Gateway.
  returned: always
  type: list
  elements: str
  sample: [34.118.12.7]
elapsed:
  description: Seconds spent by the module.
  returned: always
  type: float
  sample: 128.42
started_at:
  description: When the module started (UTC, RFC 3339 with microseconds).
  returned: always
  type: str
  sample: "2026-11-26T10:00:00.500000Z"
finished_at:
  description:
    - When the module finished (UTC, RFC 3339 with microseconds). Compare with a condition's
      C(lastTransitionTime) to see how soon after the controller's change the module returned.
  returned: always
  type: str
  sample: "2026-11-26T10:02:08.920000Z"
gates:
  description:
    - One entry per gate (V(gateway_accepted), V(gateway_programmed), V(routes), V(inference_pools),
      V(policies) and, with O(probes), V(probes)).
  returned: always
  type: dict
  contains:
    state:
      description: V(passed), V(blocked) or V(not_applicable).
      type: str
      sample: passed
    seconds:
      description:
        - Seconds from the start of the task until the gate (last) passed or was found not applicable;
          V(null) while blocked.
      type: float
      sample: 97.311
    blockers:
      description: Blocker lines of this gate at the end.
      type: list
      elements: str
      sample: []
    notes:
      description: Why a gate is not applicable, and similar remarks.
      type: list
      elements: str
      sample: ["no InferencePool backends referenced by the gated routes"]
  sample:
    gateway_accepted: {state: passed, seconds: 0.041, blockers: [], notes: []}
    gateway_programmed: {state: passed, seconds: 97.311, blockers: [], notes: []}
    routes: {state: passed, seconds: 98.02, blockers: [], notes: []}
    inference_pools: {state: not_applicable, seconds: 0.041, blockers: [], notes: ["no InferencePool backends referenced by the gated routes"]}
    policies: {state: passed, seconds: 0.041, blockers: [], notes: []}
    probes: {state: passed, seconds: 212.5, blockers: [], notes: []}
blockers:
  description:
    - Every object and condition still keeping a gate closed, one line each, in gate order.
      Empty when ready.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound:
      service "vllm-gemma-3-9b" not found
wait_log:
  description:
    - Time-stamped progress lines (seconds since the start), in order. Gates passing or regressing, the
      blocker each gate waits on when it changes, and probe outcomes.
  returned: always
  type: list
  elements: str
  sample:
    - "+0.0s gate gateway_accepted passed"
    - "+0.0s waiting on gateway_programmed: Gateway gemma/vllm-xlb: Programmed=Unknown Pending: Waiting for controller"
    - "+97.3s gate gateway_programmed passed"
gateway:
  description: The Gateway's status.
  returned: always
  type: dict
  contains:
    namespace:
      description: Namespace.
      type: str
    name:
      description: Name.
      type: str
    found:
      description: Whether the Gateway exists.
      type: bool
    generation:
      description: C(metadata.generation).
      type: int
    gateway_class:
      description: C(spec.gatewayClassName).
      type: str
    addresses:
      description: C(status.addresses).
      type: list
      elements: dict
    conditions:
      description:
        - Conditions by type, each with C(status), C(reason), C(message), C(observedGeneration) and
          C(lastTransitionTime).
      type: dict
    listeners:
      description: C(name), C(attached_routes) and C(conditions) of each listener.
      type: list
      elements: dict
  sample:
    namespace: gemma
    name: vllm-xlb
    found: true
    generation: 1
    gateway_class: gke-l7-regional-external-managed
    addresses: [{type: IPAddress, value: 34.118.12.7}]
    conditions:
      Accepted: {status: "True", reason: Accepted, message: "", observedGeneration: 1,
                 lastTransitionTime: "2026-11-26T10:00:17Z"}
      Programmed: {status: "True", reason: Programmed, message: "", observedGeneration: 1,
                   lastTransitionTime: "2026-11-26T10:01:52Z"}
    listeners: [{name: http, attached_routes: 3, conditions: {}}]
routes:
  description:
    - The gated HTTPRoutes with their C(status.parents[]) entries for this Gateway, their backends and whether
      they passed.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: gemma
      name: bbr-gemma3-1b
      found: true
      ready: true
      generation: 1
      hostnames: [bbr.example.com]
      parents:
        - parentRef: {group: gateway.networking.k8s.io, kind: Gateway, name: vllm-xlb}
          controllerName: networking.gke.io/gateway
          conditions:
            Accepted: {status: "True", reason: Accepted, message: "", observedGeneration: 1,
                       lastTransitionTime: "2026-11-26T10:02:10Z"}
            ResolvedRefs: {status: "True", reason: ResolvedRefs, message: "", observedGeneration: 1,
                           lastTransitionTime: "2026-11-26T10:02:10Z"}
      backends: [{group: "", kind: Service, namespace: gemma, name: vllm-gemma-3-1b, port: 8000}]
inference_pools:
  description:
    - InferencePools used as backends by the gated routes, with API group, whether that group is served, and
      their parent entry for this Gateway.
  returned: always
  type: list
  elements: dict
  sample:
    - namespace: gemma
      name: vllm-gemma-3-1b
      group: inference.networking.k8s.io
      api_version: inference.networking.k8s.io/v1
      found: true
      served: true
      ready: true
      generation: 1
      parents:
        - parentRef: {group: gateway.networking.k8s.io, kind: Gateway, namespace: gemma, name: vllm-xlb}
          controllerName: networking.gke.io/gateway
          conditions:
            Accepted: {status: "True", reason: Accepted, message: "", observedGeneration: 1,
                       lastTransitionTime: "2026-11-26T10:02:10Z"}
policies:
  description: GKE policies targeting the Gateway, its routes or their backends, with their status.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: HealthCheckPolicy
      namespace: gemma
      name: vllm-gemma-3-1b
      ready: true
      generation: 1
      targets: [{group: inference.networking.k8s.io, kind: InferencePool, namespace: gemma, name: vllm-gemma-3-1b}]
      conditions:
        Attached: {status: "True", reason: Attached, message: "", observedGeneration: null,
                   lastTransitionTime: "2026-11-26T10:02:11Z"}
      ancestors: []
probes:
  description: One entry per probe, with its last attempt.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Probe label.
      type: str
    url:
      description: URL requested (host from O(probes[].host)).
      type: str
    connect:
      description: C(address:port) connected to.
      type: str
    ok:
      description: Whether the probe passed.
      type: bool
    skipped:
      description: Whether the probe was not run (check mode and a method that is not read-only).
      type: bool
    attempts:
      description: Requests sent.
      type: int
    seconds:
      description: Seconds from the start of the task until the probe passed, or V(null).
      type: float
    status:
      description: HTTP status of the last response, or V(null) if none came back.
      type: int
    error:
      description: Why the last attempt did not pass, or V(null).
      type: str
    headers:
      description: Response headers of the last response (lower-cased names).
      type: dict
    body:
      description: First 512 characters of the last response body.
      type: str
  sample:
    - name: bbr-1b
      url: http://bbr.example.com/v1/completions
      connect: 34.118.12.7:80
      ok: true
      skipped: false
      attempts: 14
      seconds: 212.5
      status: 200
      error: null
      headers: {x-infgw-selected: bbr-gemma3-1b, content-type: application/json}
      body: '{"id":"cmpl-1","object":"text_completion"}'
api_versions:
  description: API versions the cluster serves for the kinds involved (V(null) or absent when not served).
  returned: always
  type: dict
  sample:
    gateway: gateway.networking.k8s.io/v1
    httproute: gateway.networking.k8s.io/v1
    inference_pools: [inference.networking.k8s.io/v1]
    policies: {HealthCheckPolicy: networking.gke.io/v1, GCPBackendPolicy: networking.gke.io/v1}
"""

import copy
import time
import traceback

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gateway_wait import (
    MODULE_ARG_SPEC,
    GatewayReadiness,
    GatewayWaitError,
    check_params,
)

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
except ImportError:  # pragma: no cover - AnsibleK8SModule reports the missing kubernetes library
    get_api_client = None
    CoreException = Exception


def main():
    argument_spec = copy.deepcopy(AUTH_ARG_SPEC)
    argument_spec.update(copy.deepcopy(MODULE_ARG_SPEC))
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True, check_pyyaml=False)
    params = module.params
    problem = check_params(params)
    if problem:
        module.fail_json(msg=problem)
    start = time.monotonic()
    try:
        client = get_api_client(module=module)
    except CoreException as e:
        module.fail_json(msg=to_native(e))
    runner = GatewayReadiness(module, client.client, params, module.check_mode, start)
    try:
        result = runner.run()
    except GatewayWaitError as e:
        runner.watches.close()
        module.fail_json(msg=to_native(e), wait_log=list(runner.tracker.log))
    except Exception as e:  # API errors etc.: report with the progress so far
        runner.watches.close()
        module.fail_json(msg="gateway_ready failed: %s" % to_native(e), exception=traceback.format_exc(),
                         wait_log=list(runner.tracker.log))
    for w in runner.warnings:
        module.warn(w)
    if result["ready"] or module.check_mode:
        module.exit_json(**result)
    gw = "Gateway %s/%s" % (params["namespace"], params["name"])
    msg = "Timed out after %ss waiting for %s; still blocking: %s" % (
        params["timeout"], gw, "; ".join(result["blockers"]) or "unknown")
    module.fail_json(msg=msg, **result)


if __name__ == "__main__":
    main()
