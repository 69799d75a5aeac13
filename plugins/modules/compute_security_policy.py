#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compute_security_policy
short_description: Manage a Cloud Armor security policy and its rules, regional or global
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Creates, updates and deletes a Cloud Armor backend security policy through the Compute Engine API,
    regional (C(regionSecurityPolicies), when O(region) is set, as regional external and internal Application
    Load Balancers need) or global (C(securityPolicies)).
  - Rules are identified by their priority. On an existing policy, a rule whose priority is new is added
    (C(addRule)), one that differs is replaced (C(patchRule)), and with O(purge_rules=true) one that is not
    listed is removed (C(removeRule)). The default rule (priority V(2147483647)) always exists; it can be
    changed but never removed.
  - A new policy is created with all its rules in one request.
  - Check mode reports what would change; C(--diff) shows the description and the rules before and after.
  - To attach the policy to a GKE Gateway's backends, reference it from a C(GCPBackendPolicy) (the collection's
    C(cloud_armor) role does that).
options:
  name:
    description:
      - Name of the security policy.
    type: str
    required: true
  region:
    description:
      - Region of a regional security policy, for example C(us-central1). Omit for a global policy.
    type: str
  state:
    description:
      - V(present) creates or updates the policy; V(absent) deletes it (it must not be in use by a backend
        service).
    type: str
    choices: [ present, absent ]
    default: present
  description:
    description:
      - Description of the policy. Compared and updated only when set.
    type: str
  type:
    description:
      - The policy type. V(CLOUD_ARMOR) (backend security policy) when not set at creation.
      - Cannot change on an existing policy; a difference fails the task.
    type: str
    choices: [ CLOUD_ARMOR, CLOUD_ARMOR_EDGE, CLOUD_ARMOR_NETWORK ]
  rules:
    description:
      - The rules of the policy, by priority. When not set, the rules are not managed.
      - A rule matches either source IP ranges (O(rules[].src_ip_ranges), the C(SRC_IPS_V1) expression) or a
        Common Expression Language O(rules[].expression).
    type: list
    elements: dict
    suboptions:
      priority:
        description:
          - Priority of the rule, V(0) (evaluated first) to V(2147483647) (the default rule). Unique in the policy.
        type: int
        required: true
      action:
        description:
          - What a matching request gets. V(allow), or a denial with the given HTTP status.
        type: str
        required: true
        choices: [ allow, deny(403), deny(404), deny(502) ]
      src_ip_ranges:
        description:
          - Source CIDR ranges (at most ten), or C(*) for any source. The order does not matter.
          - For the default rule, C(["*"]) when neither this nor O(rules[].expression) is set.
        type: list
        elements: str
      expression:
        description:
          - A CEL match expression, for example C(origin.region_code == 'CH').
        type: str
      description:
        description:
          - Description of the rule.
        type: str
        default: ""
      preview:
        description:
          - Log what the rule would do without enforcing it.
        type: bool
        default: false
  purge_rules:
    description:
      - Remove rules whose priority is not in O(rules) (the default rule excepted).
      - With V(false), rules not listed are left alone.
    type: bool
    default: true
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.render
  - gke_ai.inference_gateway.gcp.wait
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Rule changes are made one operation at a time, each waited for, so a failure leaves the policy at a known
    step. Rules are changed before others are added, and removed last.
  - Creations, deletions and description changes carry a C(requestId), so a retried request is applied once. A
    description change that meets a stale fingerprint (HTTP 412, someone changed the policy meanwhile) is tried
    once more with the new one.
  - Permissions needed - C(compute.securityPolicies.get), C(compute.securityPolicies.create),
    C(compute.securityPolicies.update), C(compute.securityPolicies.delete) (global) or the
    C(compute.regionSecurityPolicies.*) ones (regional), and C(compute.globalOperations.get) or
    C(compute.regionOperations.get); role C(roles/compute.securityAdmin).
seealso:
  - name: Cloud Armor security policies
    description: Concepts, actions and rules language.
    link: https://cloud.google.com/armor/docs/security-policy-overview
"""

EXAMPLES = r"""
- name: The walkthrough's regional policy, an allow-list at priority 1000 and a default deny-403
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    description: Allow only the office to the inference gateway
    rules:
      - priority: 1000
        action: allow
        src_ip_ranges: [203.0.113.0/24, 198.51.100.7/32]
        description: office
      - priority: 2147483647
        action: deny(403)
        description: default deny

- name: A global policy that blocks one country, in preview first
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    name: edge-policy
    rules:
      - priority: 500
        action: deny(404)
        expression: "origin.region_code == 'XX'"
        preview: true

- name: Add a rule without touching the others
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    purge_rules: false
    rules:
      - priority: 900
        action: allow
        src_ip_ranges: [192.0.2.10/32]

- name: Delete the policy
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    state: absent
"""

RETURN = r"""
security_policy:
  description:
    - The policy as the Compute Engine API returns it after the task (in check mode, before it). Empty when it
      does not exist.
  returned: always
  type: dict
  sample:
    name: vllm-armor
    type: CLOUD_ARMOR
    region: https://www.googleapis.com/compute/v1/projects/my-project/regions/us-central1
    selfLink: https://www.googleapis.com/compute/v1/projects/my-project/regions/us-central1/securityPolicies/vllm-armor
    rules:
      - priority: 1000
        action: allow
        match:
          versionedExpr: SRC_IPS_V1
          config:
            srcIpRanges: [203.0.113.0/24]
actions:
  description:
    - What the task did (or would do), in order - C(create), C(delete), C(update_description),
      C(patch_rule:<priority>), C(add_rule:<priority>), C(remove_rule:<priority>).
  returned: always
  type: list
  elements: str
  sample: ["patch_rule:2147483647", "add_rule:1000"]
operations:
  description: Names of the long-running operations the task started.
  returned: always
  type: list
  elements: str
  sample: [operation-1764158400000-abcdef]
api_log:
  description: Retries of API requests and operations waited for during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: [{event: operation, action: add rule 1000 to security policy vllm-armor, operation: op-1, polls: 1,
            seconds: 1.2}]
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._compute_security_policy import (
    SecurityPolicy,
    argument_spec,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule


def main():
    GcpModule(argument_spec(), wait=True, render=True).run_resource(SecurityPolicy)


if __name__ == "__main__":
    main()
