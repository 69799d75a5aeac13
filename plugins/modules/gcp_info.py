#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gcp_info
short_description: Read the Google Cloud side of the inference gateway stack, for a status report
version_added: 0.2.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Reads, in one task, the Google Cloud resources the collection's roles manage - the node pools of a GKE cluster,
    Cloud Armor security policies, VPC subnets (the proxy-only subnet), Certificate Manager certificates, and whether
    members hold roles in the project's IAM policy. Changes nothing.
  - Each item is read on its own. A resource that does not exist is reported with C(found=false); one that cannot be
    read (a missing permission, an API that is not enabled) with C(found=null) and its C(error), and the task still
    succeeds, so a status report shows everything it could read.
  - C(playbooks/status.yml) uses it for the Google Cloud part of its report.
options:
  location:
    description:
      - The cluster's location (region or zone). Required with O(cluster).
    type: str
  cluster:
    description:
      - The GKE cluster whose node pools are listed. No node pools are read when not set.
    type: str
  region:
    description:
      - The region of the security policies, subnets and certificates to read; global ones when not set
        (subnets are always regional and need it).
    type: str
  security_policies:
    description:
      - Names of Cloud Armor security policies to read (regional in O(region), or global).
    type: list
    elements: str
    default: []
  subnetworks:
    description:
      - Names of subnets of O(region) to read (the proxy-only subnet).
    type: list
    elements: str
    default: []
  certificates:
    description:
      - Names of Certificate Manager certificates to read (in O(region), or global).
    type: list
    elements: str
    default: []
  iam_members:
    description:
      - Members whose (unconditional) role bindings in the project's IAM policy are checked. The policy is read once.
    type: list
    elements: dict
    default: []
    suboptions:
      role:
        description: The role, for example C(roles/monitoring.viewer).
        type: str
        required: true
      member:
        description: The principal, as in M(gke_ai.inference_gateway.project_iam_member).
        type: str
        required: true
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode changes nothing about what it does.
  diff_mode:
    support: none
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.attributes
notes:
  - Permissions needed - C(container.nodePools.list), C(compute.securityPolicies.get) or
    C(compute.regionSecurityPolicies.get), C(compute.subnetworks.get), C(certificatemanager.certs.get),
    C(resourcemanager.projects.getIamPolicy), for what the task asks (a viewer role of each service is enough).
seealso:
  - module: gke_ai.inference_gateway.gke_node_pool
  - module: gke_ai.inference_gateway.compute_security_policy
  - module: gke_ai.inference_gateway.project_iam_member
"""

EXAMPLES = r"""
- name: The walkthrough's Google Cloud side
  gke_ai.inference_gateway.gcp_info:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    region: us-central1
    security_policies: [uc1-security-policy]
    subnetworks: [proxy-only-us-central1]
    certificates: [uc1-wildcard]
    iam_members:
      - role: roles/monitoring.viewer
        member: >-
          principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter
  register: gcp_side
"""

RETURN = r"""
node_pools:
  description: The cluster's node pools as the GKE API lists them (C(NodePool) resources); null when not read.
  returned: always
  type: list
  elements: dict
node_pools_error:
  description: Why the node pools could not be read, or null.
  returned: always
  type: str
security_policies:
  description: One item per requested policy - C(name), C(region), C(found), C(resource) (the policy) or C(error).
  returned: always
  type: list
  elements: dict
subnetworks:
  description: One item per requested subnet - C(name), C(region), C(found), C(resource) or C(error).
  returned: always
  type: list
  elements: dict
certificates:
  description: One item per requested certificate - C(name), C(location), C(found), C(resource) or C(error).
  returned: always
  type: list
  elements: dict
iam_members:
  description: One item per requested member - C(role), C(member), C(present) (null when unread) or C(error).
  returned: always
  type: list
  elements: dict
  sample: [{role: roles/monitoring.viewer, member: "principal://...", present: true}]
api_log:
  description: Retries of API requests during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp_info import argument_spec, read_all


def main():
    module = GcpModule(argument_spec(), required_together=[("location", "cluster")])
    module.run(lambda m: dict(changed=False, **read_all(m.client, m.project, m.params)))


if __name__ == "__main__":
    main()
