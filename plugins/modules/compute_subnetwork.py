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
  - gke_ai.inference_gateway.gcp.wait
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - A region holds one C(ACTIVE) proxy-only subnet per network; a second one fails with Google's message.
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

import ipaddress

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpError,
    GcpModule,
    diff_result,
    request_id,
)

PROXY_PURPOSES = ("REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY")
IMMUTABLE = ("network", "ip_cidr_range", "purpose")


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        region=dict(type="str", required=True),
        network=dict(type="str"),
        ip_cidr_range=dict(type="str"),
        purpose=dict(type="str", default="REGIONAL_MANAGED_PROXY",
                     choices=["REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "PRIVATE", "PRIVATE_SERVICE_CONNECT",
                              "PRIVATE_NAT"]),
        role=dict(type="str", choices=["ACTIVE", "BACKUP"]),
        description=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )


def subnet_path(project, region, name=None):
    path = "compute/v1/projects/%s/regions/%s/subnetworks" % (project, region)
    return "%s/%s" % (path, name) if name else path


def network_ref(project, network):
    """A network name, partial path or URL -> ``projects/P/global/networks/N``."""
    if "/" not in network:
        return "projects/%s/global/networks/%s" % (project, network)
    idx = network.find("projects/")
    return network[idx:] if idx >= 0 else network


def validate_params(params):
    problems = []
    if params["state"] != "present":
        return problems
    for key in ("network", "ip_cidr_range"):
        if not params.get(key):
            problems.append("%s is required with state=present" % key)
    if params.get("ip_cidr_range"):
        try:
            net = ipaddress.ip_network(params["ip_cidr_range"], strict=True)
            if net.version != 4:
                problems.append("ip_cidr_range must be an IPv4 range")
        except ValueError as e:
            problems.append("ip_cidr_range %r is not a CIDR range: %s" % (params["ip_cidr_range"], e))
    if params.get("role") and params["purpose"] not in PROXY_PURPOSES:
        problems.append("role applies only to purpose REGIONAL_MANAGED_PROXY or GLOBAL_MANAGED_PROXY")
    return problems


def desired_state(project, params):
    out = {"network": network_ref(project, params["network"]), "ip_cidr_range": params["ip_cidr_range"],
           "purpose": params["purpose"]}
    if params["purpose"] in PROXY_PURPOSES:
        out["role"] = params.get("role") or "ACTIVE"
    return out


def current_state(subnet):
    out = {"network": network_ref("", subnet.get("network") or ""), "ip_cidr_range": subnet.get("ipCidrRange"),
           "purpose": subnet.get("purpose") or "PRIVATE"}
    if out["purpose"] in PROXY_PURPOSES:
        out["role"] = subnet.get("role")
    return out


def insert_body(name, project, params):
    desired = desired_state(project, params)
    body = {"name": name, "network": desired["network"], "ipCidrRange": desired["ip_cidr_range"],
            "purpose": desired["purpose"]}
    if "role" in desired:
        body["role"] = desired["role"]
    if params.get("description"):
        body["description"] = params["description"]
    return body


def plan(current, desired):
    """(immutable fields that differ, True when the role must change)."""
    immutable = [k for k in IMMUTABLE if current.get(k) != desired.get(k)]
    return immutable, "role" in desired and current.get("role") != desired["role"]


class SubnetworkRunner(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.actions = []
        self.operations = []

    def label(self):
        return "subnetwork %s in %s" % (self.params["name"], self.params["region"])

    def call(self, method, path, body, action, resource=None):
        op = self.module.client.request(method, "compute", path, body=body, query={"requestId": request_id()},
                                        action=action, resource=resource or self.label())
        self.operations.append(op.get("name", ""))
        if self.params["wait"]:
            self.module.client.wait_operation(op, "compute", "compute", self.params["timeout"], action,
                                              project=self.module.project)
        return op

    def result(self, changed, subnet, before, after):
        result = dict(changed=changed, subnetwork=subnet or {}, actions=self.actions, operations=self.operations)
        if self.module._diff:
            result["diff"] = diff_result(before, after, header=self.label())
        return result

    def run(self):
        p = self.params
        problems = validate_params(p)
        if problems:
            raise GcpError("; ".join(problems), kind="invalid")
        project = self.module.project
        client = self.module.client
        path = subnet_path(project, p["region"], p["name"])
        subnet = client.get("compute", path, action="read %s" % self.label(), resource=self.label())
        check = self.module.check_mode
        if p["state"] == "absent":
            if subnet is None:
                return self.result(False, None, {}, {})
            self.actions.append("delete")
            if not check:
                self.call("DELETE", path, None, "delete %s" % self.label())
            return self.result(True, subnet if check else None, {"exists": True}, {"exists": False})
        desired = desired_state(project, p)
        if subnet is None:
            self.actions.append("create")
            if not check:
                self.call("POST", subnet_path(project, p["region"]), insert_body(p["name"], project, p),
                          "create %s" % self.label(), resource="region %s of project %s" % (p["region"], project))
                subnet = client.get("compute", path, action="read %s" % self.label(), resource=self.label())
            return self.result(True, subnet, {}, desired)
        current = current_state(subnet)
        before = {k: current.get(k) for k in desired}
        immutable, role_change = plan(current, desired)
        if immutable:
            parts = ["%s (is %s, wanted %s)" % (k, current.get(k), desired.get(k)) for k in immutable]
            raise GcpError("%s: %s cannot change on an existing subnet; delete it first (state: absent; nothing may "
                           "use it) and create it again" % (self.label(), "; ".join(parts)), kind="invalid")
        if p.get("description") is not None and (subnet.get("description") or "") != p["description"]:
            self.module.warn("%s: the description differs from the one asked for; Google cannot change it after "
                             "creation, so it is left as it is" % self.label())
        if not role_change:
            return self.result(False, subnet, before, desired)
        self.actions.append("set_role")
        if not check:
            body = {"role": desired["role"], "fingerprint": subnet.get("fingerprint")}
            if body["fingerprint"] is None:
                body.pop("fingerprint")
            action = "set the role of %s to %s" % (self.label(), desired["role"])
            try:
                self.call("PATCH", path, body, action)
            except GcpError as e:
                if e.http_status != 412:
                    raise
                # changed since it was read: once more with the new fingerprint
                fresh = client.request("GET", "compute", path, action="read %s" % self.label(), resource=self.label())
                body["fingerprint"] = fresh.get("fingerprint")
                self.call("PATCH", path, body, action)
            subnet = client.get("compute", path, action="read %s" % self.label(), resource=self.label())
        return self.result(True, subnet, before, desired)


def main():
    module = GcpModule(argument_spec(), wait=True)
    module.run(lambda m: SubnetworkRunner(m).run())


if __name__ == "__main__":
    main()
