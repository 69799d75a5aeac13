"""container v1: node pools of the one seeded cluster, and their operations.

Node counts: `initialNodeCount` and setSize's `nodeCount` are per zone (times the pool's
locations), autoscaling `minNodeCount`/`maxNodeCount` per zone, `totalMin/MaxNodeCount` for the
whole pool, as on GKE. The current size is not part of the NodePool resource (GKE does not
show it either); /_fake/state shows it under pool_sizes.
"""

from __future__ import annotations

import base64
import copy
import logging
import re

from . import nodeshapes
from .errors import GoogleError, invalid
from .world import CLUSTER, CLUSTER_NAME, PROJECT, PROJECT_NUMBER, REGION, SEEDERS, ZONES, Call, World, handler, new_etag

LOG = logging.getLogger("gcp_fake.container")
VERSION = "1.33.5-gke.1080000"
# NodeConfig.oauthScopes: "If unspecified, no scopes are added, unless Cloud Logging or Cloud Monitoring are enabled,
# in which case their required scopes will be added." The seeded cluster has both enabled.
LOGGING_MONITORING_SCOPES = ("https://www.googleapis.com/auth/logging.write",
                             "https://www.googleapis.com/auth/monitoring")
POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
PREFIX = "container.projects.locations"


def seed(world: World) -> None:
    """The cluster's default-pool (the local environment's CPU nodes)."""
    name = f"{CLUSTER_NAME}/nodePools/default-pool"
    pool = _with_defaults(world, {
        "name": "default-pool",
        "config": {"machineType": "e2-standard-4"},
        "initialNodeCount": 1,
        "locations": list(ZONES[:2]),
    })
    pool["status"] = "RUNNING"
    world.node_pools[name] = pool
    world.pool_sizes[name] = world.seed_default_pool_nodes


SEEDERS.append(seed)


# --------------------------------------------------------------------------- helpers

def _cluster(call: Call, ids: tuple = ("projectsId", "locationsId", "clustersId")) -> str:
    project, location, cluster = (call.params[i] for i in ids)
    if project == PROJECT_NUMBER:
        project = PROJECT
    if project != PROJECT:
        raise GoogleError(404, f"Project \"{project}\" not found or deleted.")
    if location != REGION or cluster != CLUSTER:
        raise GoogleError(404, f"Not found: projects/{project}/locations/{location}/clusters/{cluster}.")
    return CLUSTER_NAME


def _pool_name(call: Call) -> str:
    return f"{_cluster(call)}/nodePools/{call.params['nodePoolsId']}"


def _pool(world: World, name: str) -> dict:
    pool = world.node_pools.get(name)
    if pool is None:
        raise GoogleError(404, f"Not found: {name}.")
    return pool


def _busy(world: World, name: str) -> None:
    op = world.running_on(name)
    if op is not None:
        raise GoogleError(400, f"Cluster is running incompatible operation {op.name}.", status="FAILED_PRECONDITION",
                          reason="failedPrecondition")


def _with_defaults(world: World, pool: dict) -> dict:
    pool = copy.deepcopy(pool)
    config = pool.setdefault("config", {})
    config.setdefault("machineType", "e2-medium")
    config.setdefault("diskSizeGb", 100)
    config.setdefault("diskType", "pd-balanced")
    config.setdefault("imageType", "COS_CONTAINERD")
    config.setdefault("serviceAccount", "default")
    if not config.get("oauthScopes"):
        config["oauthScopes"] = list(LOGGING_MONITORING_SCOPES)
    config.setdefault("metadata", {"disable-legacy-endpoints": "true"})
    pool.setdefault("initialNodeCount", 0 if pool.get("autoscaling", {}).get("enabled") else 3)
    pool.setdefault("locations", list(ZONES))
    if "autoscaling" in pool:
        pool["autoscaling"] = stored_autoscaling(pool["autoscaling"], bool(config.get("spot")))
    pool.setdefault("management", {"autoUpgrade": True, "autoRepair": True})
    pool.setdefault("upgradeSettings", {"maxSurge": 1, "strategy": "SURGE"})
    pool.setdefault("maxPodsConstraint", {"maxPodsPerNode": "110"})
    pool.setdefault("podIpv4CidrSize", 24)
    pool.setdefault("version", VERSION)
    name = pool["name"]
    pool["selfLink"] = world.link("container", f"{CLUSTER_NAME}/nodePools/{name}")
    pool["instanceGroupUrls"] = [
        world.link("compute", f"projects/{PROJECT}/zones/{z}/instanceGroupManagers/gke-{CLUSTER}-{name}-grp")
        for z in pool["locations"]]
    pool["etag"] = new_etag()
    return pool


def _validate_pool(pool: dict) -> None:
    name = pool.get("name")
    if not name:
        raise invalid("nodePool.name must be set.")
    if not POOL_NAME.match(name):
        raise invalid(f"Invalid node pool name \"{name}\": must be 1-40 characters, lowercase letters, numbers and "
                      "hyphens, start with a letter and end with a letter or number.")
    if int(pool.get("initialNodeCount", 0)) < 0:
        raise invalid("nodePool.initial_node_count must be >= 0.")
    for loc in pool.get("locations", []):
        if loc not in ZONES:
            raise invalid(f"Location \"{loc}\" is not a zone of the cluster's region \"{REGION}\" "
                          f"(node locations must be in {', '.join(ZONES)}).")
    config = pool.get("config", {})
    nodeshapes.shape_for(config.get("machineType", "e2-medium"), config.get("accelerators", []), ZONES[0])
    for i, taint in enumerate(config.get("taints", [])):
        if not taint.get("key"):
            raise invalid(f"nodePool.config.taints[{i}].key must be set.")
        if taint.get("effect", "EFFECT_UNSPECIFIED") == "EFFECT_UNSPECIFIED":
            raise invalid(f"nodePool.config.taints[{i}].effect must be set.")
    _validate_autoscaling(pool.get("autoscaling"))


def _validate_autoscaling(auto: dict | None) -> None:
    if not auto or not auto.get("enabled"):
        return
    per_zone = bool(int(auto.get("minNodeCount") or 0) or int(auto.get("maxNodeCount") or 0))
    total = bool(int(auto.get("totalMinNodeCount") or 0) or int(auto.get("totalMaxNodeCount") or 0))
    if per_zone and total:
        raise invalid("Autoscaling: the per-zone limits (min_node_count, max_node_count) and the total limits "
                      "(total_min_node_count, total_max_node_count) cannot both be set.")
    lo, hi = ((auto.get("totalMinNodeCount", 0), auto.get("totalMaxNodeCount", 0)) if total
              else (auto.get("minNodeCount", 0), auto.get("maxNodeCount", 0)))
    if int(lo) < 0 or int(hi) < 1 or int(lo) > int(hi):
        raise invalid(f"Autoscaling: invalid limits min {lo}, max {hi} (need 0 <= min <= max and max >= 1).")


def stored_autoscaling(auto: dict | None, spot: bool = False) -> dict:
    """NodePoolAutoscaling as GKE keeps it: disabled is an empty message (gcloud's --no-enable-autoscaling sends
    zeros and LOCATION_POLICY_UNSPECIFIED), enabled gets the default location policy (BALANCED, ANY for Spot VMs)."""
    auto = copy.deepcopy(auto or {})
    if not auto.get("enabled"):
        return {}
    if auto.get("locationPolicy", "LOCATION_POLICY_UNSPECIFIED") == "LOCATION_POLICY_UNSPECIFIED":
        auto["locationPolicy"] = "ANY" if spot else "BALANCED"
    total = "totalMinNodeCount" in auto or "totalMaxNodeCount" in auto
    for key in (("minNodeCount", "maxNodeCount") if total else ("totalMinNodeCount", "totalMaxNodeCount")):
        if not int(auto.get(key) or 0):
            auto.pop(key, None)  # the zero of the other kind of limits gcloud sends
    return auto


def bounds(pool: dict) -> tuple[int, int] | None:
    """(min, max) total node count when autoscaling is enabled, else None."""
    auto = pool.get("autoscaling") or {}
    if not auto.get("enabled"):
        return None
    zones = len(pool.get("locations") or ZONES)
    if "totalMinNodeCount" in auto or "totalMaxNodeCount" in auto:
        return int(auto.get("totalMinNodeCount", 0)), int(auto.get("totalMaxNodeCount", 0))
    return int(auto.get("minNodeCount", 0)) * zones, int(auto.get("maxNodeCount", 0)) * zones


def clamp(pool: dict, size: int) -> int:
    limits = bounds(pool)
    return size if limits is None else max(limits[0], min(limits[1], size))


def sync_nodes(world: World, name: str, victims=()) -> None:
    """Make the local cluster's kwok nodes match the pool (no-op without a cluster)."""
    if world.kube is None:
        return
    pool = world.node_pools.get(name)
    short = name.rsplit("/", 1)[-1]
    try:
        if pool is None:
            world.kube.resize(short, 0, None)
        else:
            world.kube.resize(short, world.pool_sizes.get(name, 0), pool, victims=victims)
    except Exception:  # pylint: disable=broad-exception-caught
        # The API state stays as Google would have it; the node sync is retried by the next change.
        LOG.exception("node sync of %s failed", name)


def _op(call: Call, op_type: str, name: str, effect, on_error=None):
    op = call.world.new_operation(call, "container", op_type, name, call.world.link("container", name), REGION,
                                  effect=effect, on_error=on_error)
    return render_op(call.world, op)


def render_op(_world: World, op) -> dict:
    status = op.status()
    out = {"name": op.name, "zone": op.location, "location": op.location, "operationType": op.op_type,
           "status": status, "selfLink": op.self_link, "targetLink": op.target_link, "startTime": op.start_time}
    if status == "DONE":
        out["endTime"] = op.end_time
        if op.error:
            out["error"] = {"code": op.error["code"], "message": op.error["message"]}
            out["statusMessage"] = op.error["message"]
    else:
        out["progress"] = {"status": status}
    return out


def _public(pool: dict) -> dict:
    return copy.deepcopy(pool)


# --------------------------------------------------------------------------- handlers

@handler(f"{PREFIX}.clusters.nodePools.list")
def list_pools(call: Call):
    cluster = _cluster(call)
    return {"nodePools": [_public(p) for n, p in sorted(call.world.node_pools.items()) if n.startswith(cluster + "/")]}


@handler(f"{PREFIX}.clusters.nodePools.get")
def get_pool(call: Call):
    return _public(_pool(call.world, _pool_name(call)))


@handler(f"{PREFIX}.clusters.nodePools.create")
def create_pool(call: Call):
    world, cluster = call.world, _cluster(call)
    body = call.body or {}
    if body.get("parent") and body["parent"] != cluster:
        raise invalid(f"parent \"{body['parent']}\" does not match the URL's \"{cluster}\".")
    if "nodePool" not in body:
        raise invalid("nodePool must be set.")
    spec = body["nodePool"]
    _validate_pool(spec)
    name = f"{cluster}/nodePools/{spec['name']}"
    if name in world.node_pools:
        raise GoogleError(409, f"Already exists: {name}.", reason="alreadyExists")
    pool = _with_defaults(world, spec)
    pool["status"] = "PROVISIONING"
    world.node_pools[name] = pool
    size = clamp(pool, int(pool["initialNodeCount"]) * len(pool["locations"]))

    def effect():
        world.pool_sizes[name] = size
        pool["status"] = "RUNNING"
        pool["etag"] = new_etag()
        sync_nodes(world, name)

    def failed(error):
        pool["status"] = "ERROR"
        pool["statusMessage"] = error["message"]
        world.pool_sizes[name] = 0
    return _op(call, "CREATE_NODE_POOL", name, effect, failed)


@handler(f"{PREFIX}.clusters.nodePools.delete")
def delete_pool(call: Call):
    world, name = call.world, _pool_name(call)
    pool = _pool(world, name)
    _busy(world, name)
    pool["status"] = "STOPPING"

    def effect():
        world.node_pools.pop(name, None)
        world.pool_sizes.pop(name, None)
        sync_nodes(world, name)

    def failed(_error):
        pool["status"] = "RUNNING"
    return _op(call, "DELETE_NODE_POOL", name, effect, failed)


def _mutation(call: Call, op_type: str, apply, name: str | None = None):
    """An update-like operation: RECONCILING until DONE, then `apply(pool)` and a node sync."""
    world, name = call.world, name or _pool_name(call)
    pool = _pool(world, name)
    _busy(world, name)
    if pool.get("status") not in ("RUNNING", "RECONCILING"):
        raise GoogleError(400, f"Node pool \"{pool['name']}\" is in status {pool.get('status')}; it must be RUNNING.",
                          status="FAILED_PRECONDITION", reason="failedPrecondition")
    pool["status"] = "RECONCILING"

    def effect():
        victims = apply(pool) or ()
        pool["status"] = "RUNNING"
        pool["etag"] = new_etag()
        sync_nodes(world, name, victims)

    def failed(_error):
        pool["status"] = "RUNNING"
    return _op(call, op_type, name, effect, failed)


@handler(f"{PREFIX}.clusters.nodePools.setSize")
def set_size(call: Call):
    count = (call.body or {}).get("nodeCount")
    if count is None or int(count) < 0:
        raise invalid("node_count must be set and >= 0.")
    world, name = call.world, _pool_name(call)

    def apply(pool):
        world.pool_sizes[name] = int(count) * len(pool["locations"])
    return _mutation(call, "SET_NODE_POOL_SIZE", apply)


@handler(f"{PREFIX}.clusters.nodePools.setAutoscaling")
def set_autoscaling(call: Call):
    auto = (call.body or {}).get("autoscaling")
    if auto is None:
        raise invalid("autoscaling must be set.")
    _validate_autoscaling(auto)
    world, name = call.world, _pool_name(call)

    return _set_autoscaling(call, name, auto)


def _set_autoscaling(call: Call, name: str, auto: dict):
    world = call.world

    def apply(pool):
        pool["autoscaling"] = stored_autoscaling(auto, bool(pool["config"].get("spot")))
        world.pool_sizes[name] = clamp(pool, world.pool_sizes.get(name, 0))
    return _mutation(call, "UPDATE_CLUSTER", apply, name)


@handler(f"{PREFIX}.clusters.nodePools.setManagement")
def set_management(call: Call):
    management = (call.body or {}).get("management")
    if management is None:
        raise invalid("management must be set.")

    def apply(pool):
        pool["management"] = copy.deepcopy(management)
    return _mutation(call, "SET_NODE_POOL_MANAGEMENT", apply)


# UpdateNodePoolRequest fields and where they land in the NodePool.
_UPDATE_CONFIG = ("machineType", "diskSizeGb", "diskType", "imageType", "accelerators", "tags", "gvnic",
                  "resourceLabels", "workloadMetadataConfig", "kubeletConfig", "linuxNodeConfig", "storagePools",
                  "loggingConfig", "fastSocket", "gcfsConfig", "confidentialNodes", "containerdConfig",
                  "resourceManagerTags", "windowsNodeConfig", "bootDisk", "maxRunDuration", "flexStart",
                  "taintConfig")


@handler(f"{PREFIX}.clusters.nodePools.update")
def update_pool(call: Call):
    body = call.body or {}
    world, name = call.world, _pool_name(call)
    pool = _pool(world, name)
    if body.get("etag") and body["etag"] != pool["etag"]:
        raise GoogleError(409, f"Etag \"{body['etag']}\" does not match the current etag of node pool {name}.",
                          status="ABORTED", reason="aborted")
    probe = copy.deepcopy(pool)
    _apply_update(probe, body)
    _validate_pool(probe)
    new_machines = _machine(probe) != _machine(pool)

    def apply(target):
        _apply_update(target, body)
        target["instanceGroupUrls"] = _with_defaults(world, target)["instanceGroupUrls"]
        if "locations" in body:
            world.pool_sizes[name] = clamp(target, int(target.get("initialNodeCount", 0)) * len(target["locations"])
                                           if bounds(target) is None else world.pool_sizes.get(name, 0))
        if world.kube is not None and new_machines:
            world.kube.resize(target["name"], 0, None)  # new machines: the nodes are recreated
        # Otherwise (labels, taints, the GPU driver version...) the nodes are relabelled where they are. GKE rolls
        # such changes out with a surge upgrade, a new node before an old one goes; the fake keeps the nodes.
    return _mutation(call, "UPGRADE_NODES", apply)


def _machine(pool: dict) -> tuple:
    """What the nodes are: machine type and accelerator type and count (not the driver version)."""
    config = pool.get("config") or {}
    accelerators = tuple((a.get("acceleratorType"), int(a.get("acceleratorCount") or 0))
                         for a in config.get("accelerators") or [])
    return config.get("machineType"), accelerators


def _apply_update(pool: dict, body: dict) -> None:
    config = pool.setdefault("config", {})
    for key in _UPDATE_CONFIG:
        if key in body:
            config[key] = copy.deepcopy(body[key])
    if "labels" in body:
        config["labels"] = dict((body["labels"] or {}).get("labels", {}))
    if "taints" in body:
        config["taints"] = list((body["taints"] or {}).get("taints", []))
    if "locations" in body and body["locations"]:
        pool["locations"] = list(body["locations"])
    if "nodeVersion" in body and body["nodeVersion"] not in ("", "-", "latest"):
        pool["version"] = body["nodeVersion"]
    for key in ("upgradeSettings", "queuedProvisioning", "maintenancePolicy", "nodeDrainConfig"):
        if key in body:
            pool[key] = copy.deepcopy(body[key])
    if "nodeNetworkConfig" in body:
        pool["networkConfig"] = copy.deepcopy(body["nodeNetworkConfig"])


@handler(f"{PREFIX}.operations.get")
def get_operation(call: Call):
    project, location = call.params["projectsId"], call.params["locationsId"]
    if project == PROJECT_NUMBER:
        project = PROJECT
    op = call.world.operation("container", f"projects/{project}/locations/{location}/operations/"
                                           f"{call.params['operationsId']}")
    return render_op(call.world, op)


@handler(f"{PREFIX}.operations.list")
def list_operations(call: Call):
    call.world.tick()
    return {"operations": [render_op(call.world, op) for op in call.world.operations.values()
                           if op.kind == "container"]}


def cluster_resource(world: World) -> dict:
    """The seeded cluster as clusters.get returns it; endpoint and CA are the local API server's when the fake
    was started with --cluster-endpoint and --cluster-ca-file (so get-credentials gives a working kubeconfig)."""
    pools = [_public(p) for n, p in sorted(world.node_pools.items()) if n.startswith(CLUSTER_NAME + "/")]
    default = world.node_pools.get(f"{CLUSTER_NAME}/nodePools/default-pool") or {}
    master_auth = {}
    if world.cluster_ca_pem:
        master_auth["clusterCaCertificate"] = base64.b64encode(world.cluster_ca_pem.encode()).decode()
    return {
        "name": CLUSTER, "id": "0123456789abcdef", "location": REGION, "zone": REGION, "locations": list(ZONES),
        "status": "RUNNING", "selfLink": world.link("container", CLUSTER_NAME),
        "createTime": "2025-01-01T00:00:00+00:00", "initialClusterVersion": VERSION,
        "currentMasterVersion": VERSION, "currentNodeVersion": VERSION,
        "currentNodeCount": sum(size for n, size in world.pool_sizes.items() if n.startswith(CLUSTER_NAME + "/")),
        "endpoint": world.cluster_endpoint, "masterAuth": master_auth,
        "network": "default", "subnetwork": "default",
        "networkConfig": {"network": f"projects/{PROJECT}/global/networks/default",
                          "subnetwork": f"projects/{PROJECT}/regions/{REGION}/subnetworks/default",
                          "gatewayApiConfig": {"channel": "CHANNEL_STANDARD"}},
        "clusterIpv4Cidr": "10.4.0.0/14", "servicesIpv4Cidr": "10.96.0.0/12",
        "loggingService": "logging.googleapis.com/kubernetes",
        "monitoringService": "monitoring.googleapis.com/kubernetes",
        "releaseChannel": {"channel": "REGULAR"},
        "nodeConfig": copy.deepcopy(default.get("config") or {}),
        "nodePools": pools,
        "workloadIdentityConfig": {"workloadPool": f"{PROJECT}.svc.id.goog"},
    }


@handler(f"{PREFIX}.clusters.get")
def get_cluster(call: Call):
    _cluster(call)
    return cluster_resource(call.world)


@handler(f"{PREFIX}.clusters.list")
def list_clusters(call: Call):
    project, location = call.params["projectsId"], call.params["locationsId"]
    if project not in (PROJECT, PROJECT_NUMBER):
        raise GoogleError(404, f"Project \"{project}\" not found or deleted.")
    if location not in ("-", REGION) + ZONES:
        raise GoogleError(404, f"Location \"{location}\" not found.")
    return {"clusters": [cluster_resource(call.world)] if location in ("-", REGION) else []}


@handler(f"{PREFIX}.clusters.update")
def update_cluster(call: Call):
    """ClusterUpdate: "Exactly one update can be applied to a cluster with each request". The fake implements the
    one gcloud's `node-pools update --enable-autoscaling` sends (desiredNodePoolAutoscaling with desiredNodePoolId)."""
    cluster = _cluster(call)
    update = (call.body or {}).get("update") or {}
    fields = sorted(k for k, v in update.items() if k != "desiredNodePoolId" and v is not None)
    if len(fields) != 1:
        raise invalid(f"Exactly one update can be applied to a cluster with each request, got {len(fields)}"
                      f"{': ' + ', '.join(fields) if fields else ''}.")
    if fields != ["desiredNodePoolAutoscaling"]:
        raise GoogleError(501, f"ClusterUpdate.{fields[0]} is not implemented by the local fake (it implements "
                               "desiredNodePoolAutoscaling).", status="UNIMPLEMENTED", reason="notImplemented")
    pool_id = update.get("desiredNodePoolId")
    if not pool_id:
        raise invalid("desired_node_pool_id must be set with desired_node_pool_autoscaling: the cluster has more "
                      "than one node pool.")
    auto = update["desiredNodePoolAutoscaling"]
    _validate_autoscaling(auto)
    return _set_autoscaling(call, f"{cluster}/nodePools/{pool_id}", auto)
