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
import datetime
import http.client
import json
import socket
import ssl
import time
import traceback

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gateway_status import (
    GATE_PROBES,
    GATEWAY_GROUP,
    GKE_NETWORKING_GROUP,
    GKE_POLICY_KINDS,
    INFERENCE_GROUPS,
    Blocker,
    GateResult,
    GateTracker,
    blockers_of,
    evaluate,
    make_gateway_ref,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_waiter import (
    WatchSet,
    find_resource,
)

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
except ImportError:  # pragma: no cover - AnsibleK8SModule reports the missing kubernetes library
    get_api_client = None
    CoreException = Exception

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
BODY_EXCERPT = 512

PROBE_SPEC = dict(
    name=dict(type="str"),
    scheme=dict(type="str", choices=["http", "https"], default="http"),
    host=dict(type="str"),
    port=dict(type="int"),
    path=dict(type="str", default="/"),
    method=dict(type="str", default="GET"),
    headers=dict(type="dict", default={}),
    body=dict(type="raw"),
    status_code=dict(type="list", elements="int", default=[200]),
    response_headers=dict(type="dict", default={}),
    response_contains=dict(type="str"),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="float", default=10),
)

MODULE_ARG_SPEC = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str", default="default"),
    routes=dict(type="list", elements="str"),
    route_namespaces=dict(type="list", elements="str"),
    check_inference_pools=dict(type="bool", default=True),
    check_policies=dict(type="bool", default=True),
    policy_kinds=dict(type="list", elements="str", default=list(GKE_POLICY_KINDS)),
    timeout=dict(type="int", default=900),
    probes=dict(type="list", elements="dict", default=[], options=PROBE_SPEC),
    probe_address=dict(type="str"),
    probe_interval=dict(type="float", default=5),
    probe_success_threshold=dict(type="int", default=1),
    log_path=dict(type="path"),
)


# --------------------------------------------------------------------------- HTTP probes


class _ResolvedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address with a different TLS server name (curl --resolve)."""

    def __init__(self, address, port, server_hostname, **kwargs):
        http.client.HTTPSConnection.__init__(self, address, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def parse_address(value):
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port or None)."""
    if not value:
        return None, None
    value = value.strip()
    if value.startswith("["):
        host, _sep, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, None
    return host, (int(port) if port else None)


def probe_defaults(probe):
    """Fill the defaults of a probe dict (as the argument spec would)."""
    p = dict((k, copy.deepcopy(v.get("default"))) for k, v in PROBE_SPEC.items())
    p.update(dict((k, v) for k, v in (probe or {}).items() if v is not None))
    p["method"] = (p.get("method") or "GET").upper()
    if not p.get("port"):
        p["port"] = 443 if p["scheme"] == "https" else 80
    return p


def probe_label(probe, address=None):
    if probe.get("name"):
        return probe["name"]
    return "%s %s" % (probe["method"], probe_url(probe, address))


def probe_url(probe, address=None):
    host = probe.get("host") or address or "<gateway address>"
    default_port = 443 if probe["scheme"] == "https" else 80
    hostport = host if probe["port"] == default_port else "%s:%s" % (host, probe["port"])
    return "%s://%s%s" % (probe["scheme"], hostport, probe.get("path") or "/")


def _encode_body(probe, headers):
    body = probe.get("body")
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return json.dumps(body).encode("utf-8")
    if isinstance(body, bytes):
        return body
    return str(body).encode("utf-8")


def run_probe(probe, address, connect_port=None, timeout_cap=None):
    """Send one probe request; return a dict describing the outcome (``ok``, ``error``...)."""
    probe = probe_defaults(probe)
    port = connect_port or probe["port"]
    host = probe.get("host") or address
    default_port = 443 if probe["scheme"] == "https" else 80
    host_header = host if probe["port"] == default_port else "%s:%s" % (host, probe["port"])
    timeout = float(probe["request_timeout"])
    if timeout_cap is not None:
        timeout = max(0.5, min(timeout, timeout_cap))
    result = {
        "name": probe_label(probe, address),
        "url": probe_url(probe, address),
        "connect": "%s:%s" % (address, port),
        "method": probe["method"],
        "ok": False,
        "status": None,
        "error": None,
        "headers": {},
        "body": None,
    }
    headers = {"Host": host_header, "User-Agent": "gke_ai.inference_gateway.gateway_ready", "Connection": "close"}
    for k, v in (probe.get("headers") or {}).items():
        headers[str(k)] = str(v)
    body = _encode_body(probe, headers)
    if probe["scheme"] == "https":
        if probe["validate_certs"]:
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        conn = _ResolvedHTTPSConnection(address, port, host, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request(probe["method"], probe.get("path") or "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read(65536) if probe["method"] != "HEAD" else b""
        text = data.decode("utf-8", "replace")
        result["status"] = resp.status
        rheaders = {}
        for k, v in resp.getheaders():
            k = k.lower()
            rheaders[k] = v if k not in rheaders else rheaders[k] + ", " + v
        result["headers"] = rheaders
        result["body"] = text[:BODY_EXCERPT]
        problems = []
        if resp.status not in probe["status_code"]:
            problems.append("status %s, expected %s" % (resp.status, " or ".join(str(c) for c in probe["status_code"])))
        for name, expected in (probe.get("response_headers") or {}).items():
            values = resp.msg.get_all(name) or []
            if not values:
                problems.append("header %s missing, expected %r" % (name, str(expected)))
            elif str(expected) not in [v.strip() for v in values]:
                problems.append("header %s is %r, expected %r" % (name, ", ".join(values), str(expected)))
        if probe.get("response_contains") and probe["response_contains"] not in text:
            problems.append("body does not contain %r" % probe["response_contains"])
        if problems:
            excerpt = " ".join(text.split())[:160]
            result["error"] = "; ".join(problems) + ("; body: %s" % excerpt if excerpt else "")
        else:
            result["ok"] = True
    except (socket.timeout, TimeoutError):
        result["error"] = "timed out after %.1fs" % timeout
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()
    return result


class ProbeSet(object):
    """Retry state of all probes: attempts, consecutive successes, when each passed."""

    def __init__(self, probes, interval=5.0, success_threshold=1, start=None, clock=time.monotonic):
        self.probes = [probe_defaults(p) for p in probes or []]
        self.interval = float(interval)
        self.threshold = max(1, int(success_threshold))
        self.clock = clock
        self.start = clock() if start is None else start
        self.state = [{"attempts": 0, "streak": 0, "ok": False, "skipped": False, "seconds": None, "last": None}
                      for _p in self.probes]
        self._next = None
        self.address = None
        self.connect_port = None

    def __len__(self):
        return len(self.probes)

    @property
    def ready(self):
        return all(s["ok"] or s["skipped"] for s in self.state)

    @property
    def attempted(self):
        return any(s["attempts"] for s in self.state)

    def due(self, now=None):
        now = self.clock() if now is None else now
        return self._next is None or now >= self._next

    def seconds_until_due(self, now=None):
        now = self.clock() if now is None else now
        return 0.0 if self._next is None else max(0.0, self._next - now)

    def run(self, address, connect_port=None, deadline=None, only_safe=False):
        """Run every probe that has not passed yet, once. Returns a list of (label, outcome text)."""
        self.address, self.connect_port = address, connect_port
        changes = []
        for probe, st in zip(self.probes, self.state):
            if st["ok"] or st["skipped"]:
                continue
            if only_safe and probe["method"] not in SAFE_METHODS:
                st["skipped"] = True
                changes.append((probe_label(probe, address), "skipped in check mode (%s is not read-only)" % probe["method"]))
                continue
            cap = None if deadline is None else max(0.5, deadline - self.clock())
            res = run_probe(probe, address, connect_port, timeout_cap=cap)
            st["attempts"] += 1
            previous = st["last"]
            st["last"] = res
            if res["ok"]:
                st["streak"] += 1
                if st["streak"] >= self.threshold:
                    st["ok"] = True
                    st["seconds"] = round(self.clock() - self.start, 3)
                    changes.append((res["name"], "passed after %d attempt(s): HTTP %s" % (st["attempts"], res["status"])))
                else:
                    changes.append((res["name"], "success %d/%d" % (st["streak"], self.threshold)))
            else:
                st["streak"] = 0
                if previous is None or previous.get("error") != res["error"]:
                    changes.append((res["name"], "attempt %d: %s" % (st["attempts"], res["error"])))
        self._next = self.clock() + self.interval
        return changes

    def gate(self, waiting_for=None):
        if not self.probes:
            return GateResult(True, applicable=False, notes=["no probes configured"])
        blockers = []
        notes = []
        for probe, st in zip(self.probes, self.state):
            label = probe_label(probe, self.address)
            if st["skipped"]:
                notes.append("probe %s skipped in check mode" % label)
                continue
            if st["ok"]:
                continue
            if st["last"] is None:
                blockers.append(Blocker("Probe", None, label, detail="not sent yet%s" % (
                    " (waiting for %s)" % waiting_for if waiting_for else "")))
            else:
                last = st["last"]
                blockers.append(Blocker("Probe", None, label, detail="%s %s via %s after %d attempt(s): %s" % (
                    last["method"], last["url"], last["connect"], st["attempts"], last["error"])))
        return GateResult(not blockers, blockers, notes=notes)

    def results(self):
        out = []
        for probe, st in zip(self.probes, self.state):
            last = st["last"] or {}
            out.append({
                "name": probe_label(probe, self.address),
                "url": last.get("url") or probe_url(probe, self.address),
                "connect": last.get("connect"),
                "ok": st["ok"],
                "skipped": st["skipped"],
                "attempts": st["attempts"],
                "seconds": st["seconds"],
                "status": last.get("status"),
                "error": last.get("error"),
                "headers": last.get("headers") or {},
                "body": last.get("body"),
            })
        return out


# --------------------------------------------------------------------------- orchestration


def _split_ref(item, default_namespace):
    if "/" in item:
        ns, name = item.split("/", 1)
        return ns, name
    return default_namespace, item


class GatewayReadiness(object):
    def __init__(self, module, dyn_client, params, check_mode, start):
        self.module = module
        self.client = dyn_client
        self.params = params
        self.check_mode = check_mode
        self.start = start
        self.deadline = start + params["timeout"]
        self.ns = params["namespace"]
        self.ref = make_gateway_ref(self.ns, params["name"])
        self.tracker = GateTracker(start)
        self.warnings = []
        self._logger = getattr(module, "_module", module)
        self.explicit_routes = [_split_ref(r, self.ns) for r in params.get("routes") or []] or None
        host, port = parse_address(params.get("probe_address"))
        self.probe_host, self.probe_port = host, port
        self.probes = ProbeSet(params.get("probes") or [], params["probe_interval"],
                               params["probe_success_threshold"], start=start)
        self.watches = WatchSet(dyn_client, self.deadline, watch=not check_mode, on_error=self._watch_error)
        self.cluster_wide = False

    # -- logging
    def log(self, lines):
        for line in lines:
            try:
                self._logger.log("gateway_ready %s/%s %s" % (self.ns, self.params["name"], line))
            except Exception:  # pragma: no cover - syslog may be unavailable
                pass
            if self.params.get("log_path"):
                try:
                    with open(self.params["log_path"], "a") as f:
                        f.write("%s %s/%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), self.ns, self.params["name"], line))
                except (IOError, OSError) as e:
                    self.warnings.append("cannot write log_path %s: %s" % (self.params["log_path"], e))
                    self.params["log_path"] = None

    def _watch_error(self, scope, text):
        self.log([self.tracker.note(time.monotonic(), "watch %s: %s (retrying)" % (scope, text))])

    # -- discovery
    def discover(self):
        self.gw_res = find_resource(self.client, "Gateway", group=GATEWAY_GROUP)
        if self.gw_res is None:
            raise _Fatal("The Gateway API (%s, kind Gateway) is not served by this cluster; "
                         "install the Gateway API CRDs (GKE: enable the Gateway API)." % GATEWAY_GROUP)
        self.route_res = find_resource(self.client, "HTTPRoute", group=GATEWAY_GROUP)
        self.pool_res = {}
        if self.params["check_inference_pools"]:
            for group in INFERENCE_GROUPS:
                res = find_resource(self.client, "InferencePool", group=group)
                if res is not None:
                    self.pool_res[group] = res
        self.policy_res = {}
        if self.params["check_policies"]:
            for kind in self.params["policy_kinds"]:
                res = find_resource(self.client, kind, group=GKE_NETWORKING_GROUP)
                if res is not None:
                    self.policy_res[kind] = res
        return {
            "gateway": self.gw_res.group_version,
            "httproute": self.route_res.group_version if self.route_res else None,
            "inference_pools": [r.group_version for r in self.pool_res.values()],
            "policies": dict((k, r.group_version) for k, r in self.policy_res.items()),
        }

    def open_watches(self):
        self.watches.ensure(self.gw_res, self.ns, self.params["name"])
        err = self.watches.scope_error(self.gw_res, self.ns, self.params["name"])
        if err:
            raise _Fatal("Cannot read Gateway %s/%s: %s" % (self.ns, self.params["name"], err))
        if self.route_res is not None:
            if self.explicit_routes:
                namespaces = sorted(set(ns for ns, _n in self.explicit_routes))
            else:
                namespaces = self.params.get("route_namespaces") or [self.ns]
            if "*" in namespaces:
                namespaces = [None]
                self.cluster_wide = True  # pools and policies too: one watch per kind, not per namespace
            for ns in namespaces:
                self.watches.ensure(self.route_res, ns)

    # -- evaluation
    def snapshot(self):
        report = None
        for _round in range(5):
            gw = self.watches.get(self.gw_res, self.ns, self.params["name"])
            routes = self.watches.objects(self.route_res) if self.route_res is not None else []
            pools = {}
            for group, res in self.pool_res.items():
                for obj in self.watches.objects(res):
                    m = obj.get("metadata") or {}
                    pools[(group, m.get("namespace"), m.get("name"))] = obj
            policies = []
            for res in self.policy_res.values():
                policies.extend(self.watches.objects(res))
            report = evaluate(
                gw, self.ref, routes, pools, policies,
                explicit_routes=self.explicit_routes,
                routes_served=self.route_res is not None,
                pool_groups_served=set(self.pool_res),
                check_pools=self.params["check_inference_pools"],
                check_policies=self.params["check_policies"],
            )
            added = False
            for group, namespaces in report["needs"]["pools"].items():
                for ns in namespaces:
                    added = self.watches.ensure(self.pool_res[group], None if self.cluster_wide else ns) or added
            for ns in report["needs"]["policy_namespaces"]:
                for res in self.policy_res.values():
                    added = self.watches.ensure(res, None if self.cluster_wide else ns) or added
            if not added:
                break
        return report

    def run(self):
        api_versions = self.discover()
        self.open_watches()
        probe_safe_only = self.check_mode
        report = None
        while True:
            report = self.snapshot()
            gates = dict(report["gates"])
            now = time.monotonic()
            status_ready = all(g.ready for g in gates.values())
            address = self.probe_host or report["address"]
            if len(self.probes):
                if status_ready and address and self.probes.due(now):
                    changes = self.probes.run(address, self.probe_port, self.deadline, only_safe=probe_safe_only)
                    now = time.monotonic()
                    self.log([self.tracker.note(now, "probe %s: %s" % c) for c in changes])
                waiting_for = None if status_ready else "the status gates"
                gates[GATE_PROBES] = self.probes.gate(waiting_for)
            self.log(self.tracker.update(gates, now))
            ready = all(g.ready for g in gates.values())
            if ready or self.check_mode or now >= self.deadline:
                break
            wait = self.deadline - now
            if len(self.probes) and status_ready:
                wait = min(wait, self.probes.seconds_until_due(now))
            self.watches.wait(wait)
        self.watches.close()
        for scope, err in sorted(self.watches.failed_scopes().items()):
            self.warnings.append("could not list %s (treated as absent): %s" % (scope, err))
        for pool in report["inference_pools"]:
            if pool.get("served") is False:
                self.warnings.append("InferencePool %s/%s uses API group %s, which this cluster does not serve; "
                                     "the pool was not checked" % (pool["namespace"], pool["name"], pool["group"]))
        summary = self.tracker.summary()
        gate_out = {}
        for name, gate in gates.items():
            entry = gate.to_dict()
            entry["seconds"] = summary.get(name, {}).get("seconds") if gate.state != "blocked" else None
            entry.pop("ready", None)
            gate_out[name] = entry
        finished_mono, finished_wall = time.monotonic(), time.time()
        result = dict(
            changed=False,
            ready=ready,
            address=report["address"],
            addresses=report["addresses"],
            elapsed=round(finished_mono - self.start, 3),
            started_at=_rfc3339(finished_wall - (finished_mono - self.start)),
            finished_at=_rfc3339(finished_wall),
            gates=gate_out,
            blockers=blockers_of(gates),
            wait_log=list(self.tracker.log),
            gateway=report["gateway"],
            routes=report["routes"],
            inference_pools=report["inference_pools"],
            policies=report["policies"],
            probes=self.probes.results(),
            api_versions=api_versions,
        )
        return result


class _Fatal(Exception):
    pass


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main():
    argument_spec = copy.deepcopy(AUTH_ARG_SPEC)
    argument_spec.update(copy.deepcopy(MODULE_ARG_SPEC))
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True, check_pyyaml=False)
    params = module.params
    if params["timeout"] < 0:
        module.fail_json(msg="timeout must be >= 0")
    if params["probe_interval"] <= 0:
        module.fail_json(msg="probe_interval must be > 0")
    if params["probe_success_threshold"] < 1:
        module.fail_json(msg="probe_success_threshold must be >= 1")
    for item in params.get("routes") or []:
        ns, name = _split_ref(item, params["namespace"])
        if not ns or not name or "/" in name:
            module.fail_json(msg="routes: %r is not 'name' or 'namespace/name'" % item)
    try:
        parse_address(params.get("probe_address"))
    except ValueError:
        module.fail_json(msg="probe_address: %r is not host, host:port or [v6]:port" % params["probe_address"])

    start = time.monotonic()
    try:
        client = get_api_client(module=module)
    except CoreException as e:
        module.fail_json(msg=to_native(e))
    runner = GatewayReadiness(module, client.client, params, module.check_mode, start)
    try:
        result = runner.run()
    except _Fatal as e:
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
