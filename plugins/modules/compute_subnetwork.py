#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compute_subnetwork
short_description: Manage a VPC subnet, such as the proxy-only subnet a regional Application Load Balancer needs
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Creates or deletes a subnet of a VPC network through the Compute Engine API (C(subnetworks)). Its
    default is the proxy-only subnet that GKE's regional external and internal Gateways
    (C(gke-l7-regional-external-managed), C(gke-l7-rilb)) need in their region, with purpose
    C(REGIONAL_MANAGED_PROXY) and role C(ACTIVE).
  - The network, the IP range and the purpose cannot change on an existing subnet - a difference fails the task
    with the current and wanted values. The role (C(ACTIVE)/C(BACKUP)) of a proxy-only subnet is changed in place
    (C(subnetworks.patch)).
  - Check mode reports what would change; C(--diff) shows the managed fields before and after.
options:
  name:
    description:
      - Name of the subnet.
    type: str
    required: true
  region:
    description:
      - Region of the subnet, for example C(us-central1).
    type: str
    required: true
  network:
    description:
      - The VPC network, as a name (C(default)), C(projects/P/global/networks/N), or a URL.
      - Required with O(state=present).
    type: str
  ip_cidr_range:
    description:
      - The primary IPv4 range, for example C(10.129.0.0/23) (Google recommends a /23 for proxy-only subnets).
      - Required with O(state=present).
    type: str
  purpose:
    description:
      - Purpose of the subnet. V(REGIONAL_MANAGED_PROXY) is the proxy-only subnet of regional Envoy-based
        load balancers, V(GLOBAL_MANAGED_PROXY) the one of cross-region ones, V(PRIVATE) an ordinary subnet.
    type: str
    choices: [ REGIONAL_MANAGED_PROXY, GLOBAL_MANAGED_PROXY, PRIVATE, PRIVATE_SERVICE_CONNECT, PRIVATE_NAT ]
    default: REGIONAL_MANAGED_PROXY
  role:
    description:
      - Role of a proxy-only subnet, V(ACTIVE) (in use) or V(BACKUP) (ready to take over).
      - Defaults to V(ACTIVE) for the C(*_MANAGED_PROXY) purposes and must not be set for the others.
    type: str
    choices: [ ACTIVE, BACKUP ]
  description:
    description:
      - Description of the subnet, set at creation (Google cannot change it later; a difference is reported
        as a warning).
    type: str
  adopt_active:
    description:
      - With O(purpose) C(*_MANAGED_PROXY) and O(role) V(ACTIVE), when no subnet is named O(name), manage the
        region's existing ACTIVE proxy-only subnet of that purpose on O(network) instead, whatever its name (a
        region and network hold only one, so creating a second would fail). The result's RV(adopted) names it, a
        warning says so, and its IP range is left as it is (a range cannot change in place; the region's load
        balancers use the subnet).
      - V(false) creates O(name), which fails while another ACTIVE proxy-only subnet exists.
    type: bool
    default: true
  state:
    description:
      - V(present) creates the subnet; V(absent) deletes it (nothing may use it).
    type: str
    choices: [ present, absent ]
    default: present
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
  - A region holds one C(ACTIVE) proxy-only subnet per network; with O(adopt_active=false) a second one fails with
    Google's message.
  - Every change carries a C(requestId), so a retried request is applied once.
  - Permissions needed - C(compute.subnetworks.get), C(compute.subnetworks.create), C(compute.subnetworks.update),
    C(compute.subnetworks.delete), C(compute.networks.updatePolicy), C(compute.regionOperations.get)
    (role C(roles/compute.networkAdmin)).
seealso:
  - name: Proxy-only subnets for Envoy-based load balancers
    description: Why regional Application Load Balancers need one, and its sizing.
    link: https://cloud.google.com/load-balancing/docs/proxy-only-subnets
"""

EXAMPLES = r"""
- name: The proxy-only subnet for a regional external Gateway in us-central1
  gke_ai.inference_gateway.compute_subnetwork:
    project: my-project
    region: us-central1
    name: proxy-only-us-central1
    network: default
    ip_cidr_range: 10.129.0.0/23

- name: Remove it
  gke_ai.inference_gateway.compute_subnetwork:
    project: my-project
    region: us-central1
    name: proxy-only-us-central1
    state: absent
"""

RETURN = r"""
subnetwork:
  description:
    - The subnet as the Compute Engine API returns it after the task (in check mode, before it). Empty when it
      does not exist.
  returned: always
  type: dict
  sample:
    name: proxy-only-us-central1
    network: https://www.googleapis.com/compute/v1/projects/my-project/global/networks/default
    ipCidrRange: 10.129.0.0/23
    purpose: REGIONAL_MANAGED_PROXY
    role: ACTIVE
    state: READY
adopted:
  description: The name of the region's ACTIVE proxy-only subnet managed in place of O(name) (see O(adopt_active));
    null when the subnet is O(name).
  returned: when O(state=present)
  type: str
  sample: my-proxy-only-subnet
actions:
  description: What the task did (or would do) - C(create), C(set_role), C(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
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
  sample: []
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._compute_subnetwork import (
    Subnetwork,
    argument_spec,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule


def main():
    GcpModule(argument_spec(), wait=True, render=True).run_resource(Subnetwork)


if __name__ == "__main__":
    main()
