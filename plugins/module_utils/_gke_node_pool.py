# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A GKE node pool for ``converge``: options, request bodies, normalisation and the in-place / recreate plan
(the ``gke_ai.inference_gateway.gke_node_pool`` module is its documentation and ``main()``)."""

from __future__ import annotations

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpError,
    GcpResource,
    Plan,
    managed_view,
)

RECREATE_FIELDS = ("machine_type", "accelerator", "disk_size_gb", "disk_type", "spot", "service_account",
                   "oauth_scopes")
# In the order GKE gets them; "accelerator" is in place when only its GPU driver version differs.
IN_PLACE_FIELDS = ("node_locations", "labels", "taints", "accelerator", "autoscaling", "node_count")
BUSY_STATUSES = ("PROVISIONING", "RECONCILING", "STOPPING")
INCOMPATIBLE_OPERATION = "incompatible operation"
GPU_TAINT_KEY = "nvidia.com/gpu"
DRIVER_VERSIONS = ("LATEST", "DEFAULT", "INSTALLATION_DISABLED")

_SCOPE = "https://www.googleapis.com/auth/"
# gcloud's default scopes for a node pool (gke-default): what `gcloud container node-pools create` sends.
GCLOUD_DEFAULT_SCOPES = tuple(_SCOPE + s for s in (
    "devstorage.read_only", "logging.write", "monitoring", "service.management.readonly", "servicecontrol",
    "trace.append"))
# gcloud's scope aliases (gcloud compute instances create --help); any other name X is .../auth/X.
SCOPE_ALIASES = {
    "gke-default": GCLOUD_DEFAULT_SCOPES,
    "bigquery": (_SCOPE + "bigquery",),
    "cloud-platform": (_SCOPE + "cloud-platform",),
    "cloud-source-repos": (_SCOPE + "source.full_control",),
    "cloud-source-repos-ro": (_SCOPE + "source.read_only",),
    "compute-ro": (_SCOPE + "compute.readonly",),
    "compute-rw": (_SCOPE + "compute",),
    "datastore": (_SCOPE + "datastore",),
    "logging-write": (_SCOPE + "logging.write",),
    "monitoring": (_SCOPE + "monitoring",),
    "monitoring-read": (_SCOPE + "monitoring.read",),
    "monitoring-write": (_SCOPE + "monitoring.write",),
    "pubsub": (_SCOPE + "pubsub",),
    "service-control": (_SCOPE + "servicecontrol",),
    "service-management": (_SCOPE + "service.management.readonly",),
    "sql-admin": (_SCOPE + "sqlservice.admin",),
    "storage-full": (_SCOPE + "devstorage.full_control",),
    "storage-ro": (_SCOPE + "devstorage.read_only",),
    "storage-rw": (_SCOPE + "devstorage.read_write",),
    "taskqueue": (_SCOPE + "taskqueue",),
    "trace": (_SCOPE + "trace.append",),
    "userinfo-email": (_SCOPE + "userinfo.email",),
}


def argument_spec():
    return dict(
        location=dict(type="str", required=True),
        cluster=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        machine_type=dict(type="str"),
        accelerator=dict(type="dict", options=dict(
            type=dict(type="str", required=True),
            count=dict(type="int", default=1),
            gpu_driver_version=dict(type="str", choices=list(DRIVER_VERSIONS)),
        )),
        node_locations=dict(type="list", elements="str"),
        autoscaling=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True),
            min_node_count=dict(type="int", aliases=["min_nodes"]),
            max_node_count=dict(type="int", aliases=["max_nodes"]),
            total_min_node_count=dict(type="int", aliases=["total_min_nodes"]),
            total_max_node_count=dict(type="int", aliases=["total_max_nodes"]),
            location_policy=dict(type="str", choices=["BALANCED", "ANY"]),
        ), mutually_exclusive=[("min_node_count", "total_min_node_count"), ("min_node_count", "total_max_node_count"),
                               ("max_node_count", "total_min_node_count"), ("max_node_count", "total_max_node_count")]),
        initial_node_count=dict(type="int"),
        node_count=dict(type="int"),
        spot=dict(type="bool"),
        labels=dict(type="dict"),
        taints=dict(type="list", elements="dict", options=dict(
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", default=""),
            effect=dict(type="str", required=True, choices=["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"]),
        )),
        service_account=dict(type="str"),
        oauth_scopes=dict(type="list", elements="str"),
        disk_size_gb=dict(type="int"),
        disk_type=dict(type="str"),
        recreate=dict(type="bool", default=False),
    )


# --------------------------------------------------------------------------------------
# pure functions: paths, normalisation, plans, request bodies


def cluster_path(project, location, cluster):
    return "v1/projects/%s/locations/%s/clusters/%s" % (project, location, cluster)


def pool_path(project, location, cluster, name):
    return "%s/nodePools/%s" % (cluster_path(project, location, cluster), name)


def expand_scopes(scopes):
    """OAuth scopes as GKE takes them: full URLs, gcloud's aliases expanded, sorted and unique."""
    out = set()
    for scope in scopes:
        scope = scope.strip()
        if "://" in scope:
            out.add(scope)
        else:
            out.update(SCOPE_ALIASES.get(scope, (_SCOPE + scope,)))
    return sorted(out)


def validate_params(params):
    """Cross-field checks argument_spec cannot express; returns a list of messages."""
    problems = []
    for key in ("initial_node_count", "node_count", "disk_size_gb"):
        if params.get(key) is not None and params[key] < 0:
            problems.append("%s must be >= 0" % key)
    acc = params.get("accelerator")
    if acc and acc.get("count") is not None and acc["count"] < 1:
        problems.append("accelerator.count must be >= 1")
    auto = params.get("autoscaling")
    if auto and auto.get("enabled", True):
        per_zone = auto.get("min_node_count") is not None or auto.get("max_node_count") is not None
        total = auto.get("total_min_node_count") is not None or auto.get("total_max_node_count") is not None
        if per_zone and auto.get("max_node_count") is None:
            problems.append("autoscaling.max_node_count is required with autoscaling.min_node_count")
        if total and auto.get("total_max_node_count") is None:
            problems.append("autoscaling.total_max_node_count is required with autoscaling.total_min_node_count")
        if not per_zone and not total:
            problems.append("autoscaling with enabled=true needs max_node_count (per zone) or total_max_node_count")
        for lo, hi in (("min_node_count", "max_node_count"), ("total_min_node_count", "total_max_node_count")):
            low, high = auto.get(lo) or 0, auto.get(hi)
            if low < 0:
                problems.append("autoscaling.%s must be >= 0" % lo)
            if high is not None and high < max(low, 1):
                problems.append("autoscaling.%s must be >= 1 and >= autoscaling.%s" % (hi, lo))
        if params.get("node_count") is not None:
            problems.append("node_count cannot be combined with autoscaling.enabled=true (the autoscaler owns the "
                            "size); use initial_node_count for the size at creation")
    if params.get("node_locations") is not None and not params["node_locations"]:
        problems.append("node_locations must not be empty")
    if params.get("oauth_scopes") is not None and not [s for s in params["oauth_scopes"] if s.strip()]:
        problems.append("oauth_scopes must not be empty (leave it unset for gcloud's defaults)")
    return problems


def normalize_autoscaling(auto):
    """Autoscaling in option shape, whether from the options or from the API (already converted)."""
    if auto is None:
        return None
    if not auto.get("enabled"):
        return {"enabled": False}
    out = {"enabled": True}
    if auto.get("total_max_node_count") is not None:
        out["total_min_node_count"] = auto.get("total_min_node_count") or 0
        out["total_max_node_count"] = auto["total_max_node_count"]
    else:
        out["min_node_count"] = auto.get("min_node_count") or 0
        out["max_node_count"] = auto.get("max_node_count") or 0
    if auto.get("location_policy"):
        out["location_policy"] = auto["location_policy"]
    return out


def normalize_taints(taints):
    if taints is None:
        return None
    out = [{"key": t["key"], "value": t.get("value") or "", "effect": t["effect"]} for t in taints]
    return sorted(out, key=lambda t: (t["key"], t["effect"], t["value"]))


def desired_state(params):
    """The managed fields the task sets, in option shape (unset ones are absent)."""
    desired = {}
    for key in ("machine_type", "spot", "service_account", "disk_size_gb", "disk_type", "node_count"):
        if params.get(key) is not None:
            desired[key] = params[key]
    if params.get("labels") is not None:
        desired["labels"] = dict((str(k), str(v)) for k, v in params["labels"].items())
    if params.get("node_locations") is not None:
        desired["node_locations"] = sorted(set(params["node_locations"]))
    if params.get("taints") is not None:
        desired["taints"] = normalize_taints(params["taints"])
    if params.get("autoscaling") is not None:
        desired["autoscaling"] = normalize_autoscaling(params["autoscaling"])
    if params.get("oauth_scopes") is not None:
        desired["oauth_scopes"] = expand_scopes(params["oauth_scopes"])
    acc = params.get("accelerator")
    if acc is not None:
        desired["accelerator"] = {"type": acc["type"], "count": acc.get("count") or 1}
        if acc.get("gpu_driver_version"):
            desired["accelerator"]["gpu_driver_version"] = acc["gpu_driver_version"]
    return desired


def current_state(pool, node_count=None):
    """A NodePool resource in option shape (every managed field; None where GKE reports nothing).

    Fields at their zero value may be missing from the API's JSON (proto3): a missing count is 0.
    """
    config = pool.get("config") or {}
    accs = config.get("accelerators") or []
    accelerator = None
    if accs:
        first = accs[0]
        accelerator = {"type": first.get("acceleratorType"), "count": int(first.get("acceleratorCount") or 0)}
        driver = (first.get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion")
        if driver and driver != "GPU_DRIVER_VERSION_UNSPECIFIED":
            accelerator["gpu_driver_version"] = driver
    api_auto = pool.get("autoscaling") or {}
    auto = {"enabled": bool(api_auto.get("enabled"))}
    if "totalMaxNodeCount" in api_auto or "totalMinNodeCount" in api_auto:
        auto["total_min_node_count"] = int(api_auto.get("totalMinNodeCount") or 0)
        auto["total_max_node_count"] = int(api_auto.get("totalMaxNodeCount") or 0)
    else:
        auto["min_node_count"] = int(api_auto.get("minNodeCount") or 0)
        auto["max_node_count"] = int(api_auto.get("maxNodeCount") or 0)
    policy = api_auto.get("locationPolicy")
    if policy and policy != "LOCATION_POLICY_UNSPECIFIED":
        auto["location_policy"] = policy
    return {
        "machine_type": config.get("machineType"),
        "accelerator": accelerator,
        "disk_size_gb": config.get("diskSizeGb"),
        "disk_type": config.get("diskType"),
        "spot": bool(config.get("spot")),
        "service_account": config.get("serviceAccount"),
        "oauth_scopes": sorted(set(config.get("oauthScopes") or [])),
        "node_locations": sorted(pool.get("locations") or []),
        "labels": dict(config.get("labels") or {}),
        "taints": normalize_taints(config.get("taints") or []),
        "autoscaling": normalize_autoscaling(auto),
        "node_count": node_count if node_count is not None else int(pool.get("initialNodeCount") or 0),
    }


def comparable(current, desired):
    """``current`` reduced to what ``desired`` manages, so equal means nothing to do."""
    view = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "accelerator" and have is not None and "gpu_driver_version" not in want:
            have = dict((k, v) for k, v in have.items() if k != "gpu_driver_version")
        elif key == "autoscaling" and have is not None and want.get("enabled"):
            if "location_policy" not in want:
                have = dict((k, v) for k, v in have.items() if k != "location_policy")
        elif key == "autoscaling" and have is not None and not want.get("enabled"):
            have = {"enabled": have.get("enabled", False)} if not have.get("enabled") else have
        elif key == "taints" and have is not None:
            wanted_keys = set(t["key"] for t in want)
            have = [t for t in have if t["key"] != GPU_TAINT_KEY or GPU_TAINT_KEY in wanted_keys]
        view[key] = have
    return view


def _driver_only(have, want):
    """Whether two accelerators differ in their GPU driver version only (GKE changes that in place)."""
    if not have or not want:
        return False
    return (have.get("type"), have.get("count")) == (want.get("type"), want.get("count"))


def plan_changes(current, desired):
    """(fields needing a new pool, fields updatable in place), from option-shape dicts."""
    have = comparable(current, desired)
    changed = [k for k in desired if have.get(k) != desired[k]]
    if "autoscaling" in changed and not desired["autoscaling"].get("enabled") and \
            not (have.get("autoscaling") or {}).get("enabled"):
        changed.remove("autoscaling")
    recreate = sorted(k for k in changed if k in RECREATE_FIELDS
                      and not (k == "accelerator" and _driver_only(have.get(k), desired[k])))
    in_place = [k for k in IN_PLACE_FIELDS if k in changed and k not in recreate]
    return recreate, in_place


def recreate_message(name, fields, have, desired):
    parts = ["%s (is %s, wanted %s)" % (f, _show(have.get(f)), _show(desired.get(f))) for f in fields]
    return ("node pool %s: %s cannot change on an existing node pool (GKE needs a new pool for %s). Set "
            "recreate: true to delete and recreate the pool (its nodes and their Pods go away), or keep the current "
            "values" % (name, "; ".join(parts), "it" if len(fields) == 1 else "them"))


def _show(value):
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, value[k]) for k in sorted(value))
    return str(value)


def autoscaling_body(auto):
    """NodePoolAutoscaling from the option shape."""
    if not auto.get("enabled"):
        return {"enabled": False}
    body = {"enabled": True}
    if "total_max_node_count" in auto:
        body["totalMinNodeCount"] = auto.get("total_min_node_count") or 0
        body["totalMaxNodeCount"] = auto["total_max_node_count"]
    else:
        body["minNodeCount"] = auto.get("min_node_count") or 0
        body["maxNodeCount"] = auto["max_node_count"]
    if auto.get("location_policy"):
        body["locationPolicy"] = auto["location_policy"]
    return body


def taints_body(taints):
    return [{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in taints]


def accelerator_body(acc):
    """AcceleratorConfig from the option shape."""
    item = {"acceleratorType": acc["type"], "acceleratorCount": str(acc["count"])}
    if acc.get("gpu_driver_version"):
        item["gpuDriverInstallationConfig"] = {"gpuDriverVersion": acc["gpu_driver_version"]}
    return item


def create_body(name, params):
    """CreateNodePoolRequest for the options. Without oauth_scopes, gcloud's six default scopes: GKE itself would
    give a pool created with none only the logging and monitoring scopes."""
    desired = desired_state(params)
    config = {"oauthScopes": desired.get("oauth_scopes") or list(GCLOUD_DEFAULT_SCOPES)}
    if desired.get("machine_type"):
        config["machineType"] = desired["machine_type"]
    if desired.get("disk_size_gb") is not None:
        config["diskSizeGb"] = desired["disk_size_gb"]
    if desired.get("disk_type"):
        config["diskType"] = desired["disk_type"]
    if desired.get("spot") is not None:
        config["spot"] = desired["spot"]
    if desired.get("service_account"):
        config["serviceAccount"] = desired["service_account"]
    if desired.get("labels") is not None:
        config["labels"] = desired["labels"]
    if desired.get("taints") is not None:
        config["taints"] = taints_body(desired["taints"])
    if desired.get("accelerator"):
        config["accelerators"] = [accelerator_body(desired["accelerator"])]
    pool = {"name": name, "config": config}
    if desired.get("node_locations"):
        pool["locations"] = desired["node_locations"]
    auto = desired.get("autoscaling")
    if auto is not None and auto.get("enabled"):
        pool["autoscaling"] = autoscaling_body(auto)
    initial = params.get("initial_node_count")
    if initial is None:
        initial = params.get("node_count")
    if initial is None:
        initial = 0 if auto and auto.get("enabled") else 1
    pool["initialNodeCount"] = initial
    return {"nodePool": pool}


def update_requests(path, desired, fields):
    """The in-place changes as [(action, http method, path, body)], in the order GKE should get them."""
    out = []
    for field in fields:
        if field == "node_locations":
            out.append(("update_locations", "PUT", path, {"locations": desired["node_locations"]}))
        elif field == "labels":
            out.append(("update_labels", "PUT", path, {"labels": {"labels": desired["labels"]}}))
        elif field == "taints":
            out.append(("update_taints", "PUT", path, {"taints": {"taints": taints_body(desired["taints"])}}))
        elif field == "accelerator":
            # what `gcloud container node-pools update --accelerator type=...,gpu-driver-version=...` sends
            out.append(("update_accelerator", "PUT", path, {"accelerators": [accelerator_body(desired["accelerator"])]}))
        elif field == "autoscaling":
            out.append(("set_autoscaling", "POST", path + ":setAutoscaling",
                        {"autoscaling": autoscaling_body(desired["autoscaling"])}))
        elif field == "node_count":
            out.append(("set_size", "POST", path + ":setSize", {"nodeCount": desired["node_count"]}))
    return out


def instance_group_manager_path(url):
    """An instanceGroupUrls entry -> Google's path of its instance group manager, or None."""
    marker = "/projects/"
    if marker not in (url or ""):
        return None
    rest = url[url.index(marker) + 1:]
    parts = rest.split("/")
    # projects/P/zones/Z/instanceGroupManagers|instanceGroups/NAME
    if len(parts) != 6 or parts[2] != "zones" or parts[4] not in ("instanceGroupManagers", "instanceGroups"):
        return None
    return "compute/v1/projects/%s/zones/%s/instanceGroupManagers/%s" % (parts[1], parts[3], parts[5])


# --------------------------------------------------------------------------------------
# the resource


class NodePool(GcpResource):
    service = "container"
    operation_style = "container"
    result_key = "node_pool"

    def __init__(self, module):
        super(NodePool, self).__init__(module)
        self.name = self.params["name"]

    def path(self):
        return pool_path(self.project, self.params["location"], self.params["cluster"], self.name)

    def label(self):
        return "node pool %s" % self.path()[3:]

    def validate(self):
        return validate_params(self.params) if not self.absent else []

    def read(self):
        return self.client.get("container", self.path(), action="read node pool %s" % self.name,
                               resource=self.label())

    def read_node_count(self, pool):
        paths = [p for p in (instance_group_manager_path(u) for u in pool.get("instanceGroupUrls") or []) if p]
        if not paths:
            return None
        sizes = []
        for path in paths:
            try:
                mig = self.client.request("GET", "compute", path, action="read the size of node pool %s" % self.name,
                                          resource="instance group manager %s" % path.split("/", 2)[2])
            except GcpError as e:
                if e.http_status not in (404, 501):
                    raise
                self.module.warn("node pool %s: cannot read the size of its instance groups (HTTP %s); comparing "
                                 "node_count with the pool's initialNodeCount instead" % (self.name, e.http_status))
                return None
            sizes.append(int(mig.get("targetSize") or 0))
        return max(sizes) if sizes else None

    def _create(self):
        parent = cluster_path(self.project, self.params["location"], self.params["cluster"])
        return Change("create", "POST", parent + "/nodePools", create_body(self.name, self.params),
                      description="create node pool %s" % self.name, resource="cluster %s" % parent[3:])

    def _delete(self):
        return Change("delete", "DELETE", self.path(), description="delete node pool %s" % self.name)

    def plan(self, current):
        if self.absent:
            if current is None:
                return Plan([], changed_fields=[])
            return Plan([self._delete()], {"exists": True}, {"exists": False}, changed_fields=[])
        desired = desired_state(self.params)
        keys = sorted(desired)
        if current is None:
            return Plan([self._create()], {}, desired, changed_fields=keys)
        count = self.read_node_count(current) if "node_count" in desired else None
        have = current_state(current, count)
        recreate, in_place = plan_changes(have, desired)
        fields = sorted(recreate + in_place)
        plan = Plan([], managed_view(comparable(have, desired), keys), managed_view(desired, keys),
                    changed_fields=fields)
        if recreate and not self.params["recreate"]:
            raise GcpError(recreate_message(self.name, recreate, comparable(have, desired), desired), kind="invalid",
                           resource=self.label())
        if recreate:
            plan.changes = [self._delete(), self._create()]
        else:
            plan.changes = [Change(action, method, path, body, description="%s of node pool %s"
                                   % (action.replace("_", " "), self.name))
                            for action, method, path, body in update_requests(self.path(), desired, in_place)]
        return plan

    def before_changes(self, current):
        """A pool still provisioning or reconciling cannot take another change: wait until it settled."""
        if not current or current.get("status") not in BUSY_STATUSES or not self.wait:
            return current
        return self.client.wait_until(
            self.read, lambda pool: not pool or pool.get("status") not in BUSY_STATUSES, current,
            self.params["timeout"], lambda pool: "node pool %s is still %s" % (self.name, pool.get("status")))

    def send(self, change):
        """While GKE runs another operation on the cluster (HTTP 400 FAILED_PRECONDITION "Cluster is running
        incompatible operation"), wait and send again, up to ``timeout`` when waiting."""
        clock, sleep = self.client.clock, self.client.sleep
        deadline = clock() + self.params["timeout"]
        intervals = self.client.poll.intervals()
        while True:
            try:
                return super(NodePool, self).send(change)
            except GcpError as e:
                busy = e.http_status == 400 and INCOMPATIBLE_OPERATION in (e.message or "")
                if not busy or not self.wait or clock() >= deadline:
                    raise
                delay = min(next(intervals), max(0.0, deadline - clock()))
                self.client.log.append({"event": "cluster_busy", "action": change.description, "reason": e.message,
                                        "delay": round(delay, 3)})
                sleep(delay)
