#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gateway_smoke
short_description: Send one inference request per route through the gateway and check which model answers
version_added: 0.2.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Sends each request of O(probes) once, in order, to the gateway address with the probe's host in the C(Host)
    header (and as the TLS server name), like C(curl --resolve host:port:address), and checks the answer - the
    status, the response headers asked for, and that the OpenAI-style answer (a JSON object, or the first event of a
    stream) names the expected model.
  - Reports for each request the model that answered, the status, the latency and, on the local environment, the
    pod that served it (the local load balancer simulator names it in a response header; GKE does not).
  - Fails naming every route that did not answer correctly, after all requests were sent.
  - The C(gke_ai.inference_gateway.smoke_probes) filter makes one request per route from the data model (each
    model's host route, BBR route and pool route); C(gke_ai.inference_gateway.chat_ui_probe) makes the request the
    chat UI's backend makes. C(playbooks/smoke.yml) puts them together.
options:
  address:
    description:
      - Address to connect to (the Gateway's C(status.addresses) value). A probe's own O(probes[].address) wins.
      - Without either, the probe's host is resolved by DNS.
    type: str
  probes:
    description:
      - The requests, as C(smoke_probes) returns them.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label in the report and in the failure message.
        type: str
        required: true
      route:
        description: The route (HTTPRoute or route rule) the request is meant for.
        type: str
      kind:
        description: What kind of route it is (C(host), C(bbr), C(pool), C(chat_ui)); reported as is.
        type: str
      address:
        description: Address to connect to for this probe (overrides O(address)).
        type: str
      scheme:
        description: URL scheme.
        type: str
        choices: [http, https]
        default: http
      host:
        description: Host name sent in the C(Host) header and as TLS SNI.
        type: str
        required: true
      port:
        description: Listener port; 80 or 443 by default.
        type: int
      path:
        description: Request path.
        type: str
        default: /v1/completions
      method:
        description: HTTP method.
        type: str
        default: POST
      headers:
        description: Extra request headers.
        type: dict
        default: {}
      body:
        description: Request body; a dict or list is sent as JSON.
        type: raw
      status_code:
        description: Accepted status codes.
        type: list
        elements: int
        default: [200]
      expected_model:
        description: The model the answer must name (its C(model) field).
        type: str
      response_headers:
        description: Response headers that must have exactly these values.
        type: dict
        default: {}
      response_contains:
        description:
          - Not checked by this module (the model is compared exactly); accepted so that one probe list serves both
            this module and C(gateway_ready).
        type: str
      request_timeout:
        description: Seconds to wait for one answer; O(timeout) by default.
        type: float
  validate_certs:
    description: Verify the certificate of HTTPS requests against the probe's host.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 60
  fail_on_error:
    description: Fail when a route did not answer correctly (the results are returned either way).
    type: bool
    default: true
extends_documentation_fragment:
  - gke_ai.inference_gateway.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module changes nothing (it sends inference requests); check mode sends them too.
  diff_mode:
    support: none
seealso:
  - module: gke_ai.inference_gateway.gateway_ready
requirements:
  - python >= 3.8
"""

EXAMPLES = r"""
- name: One request per route through the gateway
  gke_ai.inference_gateway.gateway_smoke:
    address: "{{ infgw_gateway_address }}"
    probes: "{{ infgw_models_resolved | gke_ai.inference_gateway.smoke_probes(infgw_gateway_resolved) }}"
  register: smoke

- name: Show what answered
  ansible.builtin.debug:
    msg: "{{ smoke.report }}"
"""

RETURN = r"""
results:
  description: One entry per probe, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The probe's label., type: str}
    route: {description: The route it was meant for., type: str}
    kind: {description: The kind of route., type: str}
    host: {description: The host name sent., type: str}
    status: {description: "HTTP status, null when nothing answered.", type: int}
    model: {description: The model named by the answer., type: str}
    answer: {description: The start of the generated text., type: str}
    expected_model: {description: The model expected., type: str}
    seconds: {description: Latency of the whole answer., type: float}
    pod: {description: "The pod that served it (local environment only, C(namespace/name)); null on GKE.", type: str}
    endpoint: {description: "The endpoint that served it (local environment only, C(ip:port)).", type: str}
    ok: {description: Whether the answer is what the route should give., type: bool}
    error: {description: "What was wrong, null when ok.", type: str}
  sample:
    - {name: "BBR route bbr-gemma3-1b: bbr.example.com", route: bbr-gemma3-1b, kind: bbr, host: bbr.example.com,
       status: 200, model: google/gemma-3-1b-it, expected_model: google/gemma-3-1b-it, seconds: 0.41,
       pod: gemma/vllm-gemma-3-1b-7d9c-x2x4k, endpoint: "10.244.0.7:8000", ok: true, error: null}
report:
  description: One line per probe for people (PASS/FAIL, label, model, status, latency, pod).
  returned: always
  type: list
  elements: str
failed_routes:
  description: Routes that did not answer correctly.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._smoke import (
    failure_message, report_line, run)

PROBE_SPEC = dict(
    name=dict(type="str", required=True),
    route=dict(type="str"),
    kind=dict(type="str"),
    address=dict(type="str"),
    scheme=dict(type="str", choices=["http", "https"], default="http"),
    host=dict(type="str", required=True),
    port=dict(type="int"),
    path=dict(type="str", default="/v1/completions"),
    method=dict(type="str", default="POST"),
    headers=dict(type="dict", default={}),
    body=dict(type="raw"),
    status_code=dict(type="list", elements="int", default=[200]),
    expected_model=dict(type="str"),
    response_headers=dict(type="dict", default={}),
    response_contains=dict(type="str"),
    request_timeout=dict(type="float"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str"),
            probes=dict(type="list", elements="dict", required=True, options=PROBE_SPEC),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="float", default=60),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    results = run(p["probes"], address=p["address"], validate_certs=p["validate_certs"], timeout=p["timeout"])
    out = dict(changed=False, results=results, report=[report_line(r) for r in results],
               failed_routes=[r["route"] or r["name"] for r in results if not r["ok"]])
    message = failure_message(results)
    if message and p["fail_on_error"]:
        module.fail_json(msg=message, **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
