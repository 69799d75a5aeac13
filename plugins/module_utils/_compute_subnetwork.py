# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A VPC subnet (the proxy-only subnet of a regional load balancer) for ``converge`` (the
``gke_ai.inference_gateway.compute_subnetwork`` module is its documentation and ``main()``)."""

from __future__ import annotations

import ipaddress

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpError,
    GcpResource,
    Plan,
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
        adopt_active=dict(type="bool", default=True),
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


def active_proxy_subnet(subnets, project, network, purpose):
    """The ACTIVE proxy-only subnet of ``purpose`` on ``network`` among ``subnets`` (API shape), or None: a region
    and network hold one at most."""
    wanted = network_ref(project, network)
    for subnet in subnets:
        if subnet.get("purpose") == purpose and subnet.get("role") == "ACTIVE" and \
                network_ref(project, subnet.get("network") or "") == wanted:
            return subnet
    return None


def plan_changes(current, desired):
    """(immutable fields that differ, True when the role must change)."""
    immutable = [k for k in IMMUTABLE if current.get(k) != desired.get(k)]
    return immutable, "role" in desired and current.get("role") != desired["role"]


# --------------------------------------------------------------------------------------
# the resource


class Subnetwork(GcpResource):
    service = "compute"
    operation_style = "compute"
    conflict_statuses = (412,)  # a stale fingerprint: read the subnet again, plan again, once
    result_key = "subnetwork"

    adopted = None  # the name of the region's ACTIVE proxy-only subnet managed instead of params["name"]

    @property
    def name(self):
        return self.adopted or self.params["name"]

    def path(self, name=True):
        return subnet_path(self.project, self.params["region"], self.name if name else None)

    def label(self):
        return "subnetwork %s in %s" % (self.name, self.params["region"])

    def validate(self):
        return validate_params(self.params)

    def read(self):
        p = self.params
        self.adopted = None
        found = self.client.get("compute", self.path(), action="read %s" % self.label(), resource=self.label())
        if found is not None or self.absent or not p.get("adopt_active", True) or \
                p["purpose"] not in PROXY_PURPOSES or (p.get("role") or "ACTIVE") != "ACTIVE":
            return found
        other = active_proxy_subnet(self.list_region(), self.project, p["network"], p["purpose"])
        if other is not None:
            self.adopted = other["name"]
        return other

    def list_region(self):
        """Every subnet of the region (all pages)."""
        items, token = [], None
        while True:
            page = self.client.get("compute", subnet_path(self.project, self.params["region"]),
                                   action="list the subnetworks of %s" % self.params["region"],
                                   resource="region %s of project %s" % (self.params["region"], self.project),
                                   query={"pageToken": token} if token else None) or {}
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return items

    def plan(self, current):
        p, label = self.params, self.label()
        if self.absent:
            return self.deletion_plan(current, Change("delete", "DELETE", self.path(), query={"requestId": request_id()},
                                                      description="delete %s" % label))
        desired = desired_state(self.project, p)
        if current is None:
            return Plan([Change("create", "POST", self.path(name=False), insert_body(p["name"], self.project, p),
                                query={"requestId": request_id()}, description="create %s" % label,
                                resource="region %s of project %s" % (p["region"], self.project))], {}, desired,
                        adopted=None)
        have = current_state(current)
        immutable, role_change = plan_changes(have, desired)
        if self.adopted:
            # The region's one ACTIVE proxy-only subnet, made under another name (by hand, say): managed as it is.
            # Its range cannot change in place, and the load balancers of the region use it.
            self.module.warn("%s: adopted, the region's ACTIVE %s subnet of network %s (the task names it %s)%s"
                             % (label, p["purpose"], p["network"], p["name"],
                                "; its range %s is left as it is (wanted %s: a subnet's range cannot change in "
                                "place, and the region's load balancers use it)"
                                % (have["ip_cidr_range"], desired["ip_cidr_range"]) if immutable else ""))
            desired = dict(desired, **dict((k, have.get(k)) for k in immutable))
            immutable = []
        if immutable:
            parts = ["%s (is %s, wanted %s)" % (k, have.get(k), desired.get(k)) for k in immutable]
            raise GcpError("%s: %s cannot change on an existing subnet; delete it first (state: absent; nothing may "
                           "use it) and create it again" % (label, "; ".join(parts)), kind="invalid")
        if p.get("description") is not None and (current.get("description") or "") != p["description"]:
            self.module.warn("%s: the description differs from the one asked for; Google cannot change it after "
                             "creation, so it is left as it is" % label)
        result = Plan([], dict((k, have.get(k)) for k in desired), desired, adopted=self.adopted)
        if role_change:
            body = {"role": desired["role"]}
            if current.get("fingerprint") is not None:
                body["fingerprint"] = current["fingerprint"]
            result.changes.append(Change("set_role", "PATCH", self.path(), body, query={"requestId": request_id()},
                                         description="set the role of %s to %s" % (label, desired["role"])))
        return result
