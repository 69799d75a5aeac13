# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""Read what the stack has in Google Cloud, for a status report (``gke_ai.inference_gateway.gcp_info``).

Each item is read on its own: a missing resource is ``found: false``, and an error (a missing permission, an API
that is off) is the item's ``error``, so one unreadable item does not hide the others.
"""

from __future__ import annotations

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._certificate_manager_certificate import (
    cert_path,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._compute_security_policy import policy_path
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._compute_subnetwork import subnet_path
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpError
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gke_node_pool import cluster_path
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._project_iam_member import (
    binding_members,
    get_policy_request,
    member_key,
)


def argument_spec():
    return dict(
        location=dict(type="str"),
        cluster=dict(type="str"),
        region=dict(type="str"),
        security_policies=dict(type="list", elements="str", default=[]),
        subnetworks=dict(type="list", elements="str", default=[]),
        certificates=dict(type="list", elements="str", default=[]),
        iam_members=dict(type="list", elements="dict", default=[], options=dict(
            role=dict(type="str", required=True), member=dict(type="str", required=True))),
    )


def _item(read, **fields):
    """``fields`` plus ``found`` and the resource (under ``resource``), or the error that kept it unread."""
    out = dict(fields)
    try:
        resource = read()
    except GcpError as e:
        out.update(found=None, error=e.msg)
        return out
    out.update(found=resource is not None, resource=resource or {})
    return out


def read_all(client, project, params):
    """The result of the module: node_pools, security_policies, subnetworks, certificates, iam_members."""
    if params.get("subnetworks") and not params.get("region"):
        raise GcpError("subnetworks are regional: set region", kind="invalid")
    out = {"node_pools": None, "node_pools_error": None}
    if params.get("cluster"):
        path = cluster_path(project, params["location"], params["cluster"]) + "/nodePools"
        try:
            out["node_pools"] = client.request("GET", "container", path, action="list the node pools",
                                               resource="cluster %s" % params["cluster"]).get("nodePools") or []
        except GcpError as e:
            out["node_pools_error"] = e.msg
    region = params.get("region")
    out["security_policies"] = [
        _item(lambda n=n: client.get("compute", policy_path(project, n, region), action="read security policy %s" % n),
              name=n, region=region)
        for n in params.get("security_policies") or []]
    out["subnetworks"] = [
        _item(lambda n=n: client.get("compute", subnet_path(project, region, n), action="read subnetwork %s" % n),
              name=n, region=region)
        for n in params.get("subnetworks") or []]
    out["certificates"] = [
        _item(lambda n=n: client.get("certificatemanager", cert_path(project, region or "global", n),
                                     action="read certificate %s" % n),
              name=n, location=region or "global")
        for n in params.get("certificates") or []]
    out["iam_members"] = []
    if params.get("iam_members"):
        try:
            policy = client.request("POST", "cloudresourcemanager", "v1/projects/%s:getIamPolicy" % project,
                                    body=get_policy_request(), action="read the IAM policy",
                                    resource="project %s" % project)
            error = None
        except GcpError as e:
            policy, error = None, e.msg
        for wanted in params["iam_members"]:
            item = dict(role=wanted["role"], member=wanted["member"])
            if error:
                item.update(present=None, error=error)
            else:
                keys = set(member_key(m) for m in binding_members(policy, wanted["role"]))
                item["present"] = member_key(wanted["member"]) in keys
            out["iam_members"].append(item)
    return out
