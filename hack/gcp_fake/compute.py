"""compute v1: Cloud Armor security policies (global and regional), subnetworks, and their operations.

Resources appear (and change) when their operation is DONE; a name with a create in flight is
already taken (a second insert is 409). Updates need the current `fingerprint` (a stale or missing
one is 412 conditionNotMet / 400, as the field descriptions say).
"""

from __future__ import annotations

import copy
import ipaddress
import re
import secrets
import time
import zlib

from . import nodeshapes
from .errors import GoogleError, HTTP_OF_RPC, invalid
from .world import (PROJECT, PROJECT_NUMBER, REGION, SEEDERS, Call, World, handler, new_etag, now_rfc3339,
                    rpc_status_name, same_bytes)

NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_PRIORITY = 2147483647
ACTIONS = ("allow", "deny(403)", "deny(404)", "deny(502)", "redirect", "throttle", "rate_based_ban")
REGIONS = (REGION, "us-east1", "us-west1", "europe-west4")
ZONES_OF = {REGION: ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
            "us-east1": ("us-east1-b", "us-east1-c", "us-east1-d"),
            "us-west1": ("us-west1-a", "us-west1-b", "us-west1-c"),
            "europe-west4": ("europe-west4-a", "europe-west4-b", "europe-west4-c")}


def seed(world: World) -> None:
    world.request_ids = {}
    world.networks = {"default": {"kind": "compute#network", "name": "default", "id": _id(),
                                  "selfLink": world.link("compute", f"projects/{PROJECT}/global/networks/default"),
                                  "autoCreateSubnetworks": True}}
    subnet = {"name": "default", "network": world.networks["default"]["selfLink"], "ipCidrRange": "10.128.0.0/20",
              "purpose": "PRIVATE", "stackType": "IPV4_ONLY", "privateIpGoogleAccess": True}
    world.subnetworks[f"{REGION}/default"] = _finish_subnet(world, subnet, REGION)


SEEDERS.append(seed)


def _id() -> str:
    return str(secrets.randbits(63))


def _project(call: Call) -> str:
    project = call.params["project"]
    if project == PROJECT_NUMBER:
        project = PROJECT
    if project != PROJECT:
        raise GoogleError(404, f"The resource 'projects/{project}' was not found", reason="notFound")
    return project


def _region(call: Call) -> str:
    region = call.params["region"]
    if region not in REGIONS:
        raise GoogleError(404, f"The resource 'projects/{PROJECT}/regions/{region}' was not found", reason="notFound")
    return region


def _nf(path: str) -> GoogleError:
    return GoogleError(404, f"The resource '{path}' was not found", reason="notFound")


def _check_name(name, field: str = "resource.name") -> None:
    if not name:
        raise GoogleError(400, f"Required field '{field}' not specified", reason="required")
    if not NAME.match(name):
        raise invalid(f"Invalid value for field '{field}': '{name}'. Must be a match of regex "
                      "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")


def _mask(call: Call) -> list:
    return [f.strip() for f in (call.query.get("updateMask") or "").split(",") if f.strip()]


def _camel(name: str) -> str:
    """An update-mask path element as the JSON name (gcloud writes rate_limit_options, Google takes both)."""
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _fingerprint(current: dict, body: dict, field: str = "resource.fingerprint") -> None:
    given = (body or {}).get("fingerprint")
    if not given:
        raise GoogleError(400, f"Required field '{field}' not specified", reason="required")
    if not same_bytes(given, current["fingerprint"]):
        raise GoogleError(412, "Supplied fingerprint does not match current fingerprint.", reason="conditionNotMet",
                          status="FAILED_PRECONDITION")


def render_op(world: World, op) -> dict:
    status = op.status()
    scope = f"regions/{op.location}" if op.location else "global"
    out = {"kind": "compute#operation", "id": op.op_id, "name": op.name, "operationType": op.op_type,
           "targetLink": op.target_link, "targetId": op.target_id or "0", "status": status,
           "user": f"infgw-local@{PROJECT}.iam.gserviceaccount.com", "progress": 100 if status == "DONE" else 0,
           "insertTime": op.start_time, "startTime": op.start_time, "selfLink": op.self_link}
    if op.location:
        out["region"] = world.link("compute", f"projects/{PROJECT}/{scope}")
    if status == "DONE":
        out["endTime"] = op.end_time
        if op.error:
            http = HTTP_OF_RPC.get(op.error["code"], 500)
            out["error"] = {"errors": [{"code": op.error.get("compute_code") or rpc_status_name(op.error["code"]),
                                        "message": op.error["message"]}]}
            out["httpErrorStatusCode"] = http
            out["httpErrorMessage"] = rpc_status_name(op.error["code"]).replace("_", " ")
    return out


def _replayed(fn):
    """A retried request with a requestId already seen gets the first request's operation (no new change)."""
    def wrapped(call: Call):
        request_id = call.query.get("requestId")
        if request_id and request_id in call.world.request_ids:
            return render_op(call.world, call.world.operations[call.world.request_ids[request_id]])
        return fn(call)
    return wrapped


def _op(call: Call, op_type: str, path: str, region: str, effect, target_id: str = ""):
    world = call.world
    request_id = call.query.get("requestId")
    if call.query.get("validateOnly"):
        effect = None
    op = world.new_operation(call, "compute", op_type, path, world.link("compute", path), region, effect=effect,
                             target_id=target_id)
    if request_id:
        world.request_ids[request_id] = op.key
    return render_op(world, op)


# --------------------------------------------------------------------------- security policies

def _policy_key(call: Call, regional: bool, name: str | None = None) -> tuple[str, str, str]:
    project = _project(call)
    region = _region(call) if regional else ""
    name = name if name is not None else call.params["securityPolicy"]
    scope = f"regions/{region}" if regional else "global"
    return f"{scope}/{name}", f"projects/{project}/{scope}/securityPolicies/{name}", region


def _policy(call: Call, regional: bool) -> tuple[str, str, str, dict]:
    key, path, region = _policy_key(call, regional)
    policy = call.world.security_policies.get(key)
    if policy is None:
        raise _nf(path)
    return key, path, region, policy


def _validate_rule(rule: dict, where: str = "resource") -> dict:
    rule = copy.deepcopy(rule)
    priority = int(rule.get("priority", 0))
    if not 0 <= priority <= DEFAULT_PRIORITY:
        raise invalid(f"Invalid value for field '{where}.priority': '{priority}'. Must be between 0 and {DEFAULT_PRIORITY}.")
    rule["priority"] = priority
    action = rule.get("action")
    if not action:
        raise GoogleError(400, f"Required field '{where}.action' not specified", reason="required")
    if action not in ACTIONS:
        raise invalid(f"Invalid value for field '{where}.action': '{action}'. Must be one of {', '.join(ACTIONS)}.")
    if action in ("throttle", "rate_based_ban") and not rule.get("rateLimitOptions"):
        raise invalid(f"Invalid value for field '{where}.rateLimitOptions': rateLimitOptions must be set for {action}.")
    match = rule.get("match")
    if not match:
        raise GoogleError(400, f"Required field '{where}.match' not specified", reason="required")
    if match.get("versionedExpr"):
        ranges = (match.get("config") or {}).get("srcIpRanges") or []
        if not ranges:
            raise invalid(f"Invalid value for field '{where}.match.config.srcIpRanges': srcIpRanges must be set with "
                          "versionedExpr SRC_IPS_V1.")
        if len(ranges) > 10:
            raise invalid(f"Invalid value for field '{where}.match.config.srcIpRanges': at most 10 ranges per rule.")
        for r in ranges:
            if r != "*":
                try:
                    ipaddress.ip_network(r, strict=False)
                except ValueError:
                    raise invalid(f"Invalid value for field '{where}.match.config.srcIpRanges': '{r}'. "
                                  "Must be an IP address or CIDR range.") from None
    elif not (match.get("expr") or {}).get("expression"):
        raise invalid(f"Invalid value for field '{where}.match': set versionedExpr with config, or expr.")
    rule.setdefault("preview", False)
    rule["kind"] = "compute#securityPolicyRule"
    return rule


def _default_rule() -> dict:
    return {"kind": "compute#securityPolicyRule", "description": "default rule", "priority": DEFAULT_PRIORITY,
            "action": "allow", "preview": False,
            "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}}


def _policy_list(call: Call, regional: bool):
    project = _project(call)
    region = _region(call) if regional else ""
    prefix = f"regions/{region}/" if regional else "global/"
    scope = f"regions/{region}" if regional else "global"
    call.world.tick()
    items = [copy.deepcopy(p) for k, p in sorted(call.world.security_policies.items()) if k.startswith(prefix)]
    return {"kind": "compute#securityPolicyList", "id": f"projects/{project}/{scope}/securityPolicies",
            "items": items}


def _policy_insert(call: Call, regional: bool):
    world, body = call.world, call.body or {}
    _check_name(body.get("name"))
    key, path, region = _policy_key(call, regional, body["name"])
    if key in world.security_policies or key in world.reserved:
        raise GoogleError(409, f"The resource '{path}' already exists", reason="alreadyExists")
    rules = [_validate_rule(r, f"resource.rules[{i}]") for i, r in enumerate(body.get("rules") or [])]
    priorities = [r["priority"] for r in rules]
    if len(set(priorities)) != len(priorities):
        raise invalid("Invalid value for field 'resource.rules': two rules have the same priority.")
    if DEFAULT_PRIORITY not in priorities:
        rules.append(_default_rule())
    policy = copy.deepcopy(body)
    policy.update({"kind": "compute#securityPolicy", "id": _id(), "creationTimestamp": now_rfc3339(),
                   "selfLink": world.link("compute", path), "fingerprint": new_etag(), "labelFingerprint": new_etag(),
                   "rules": sorted(rules, key=lambda r: r["priority"])})
    policy.setdefault("type", "CLOUD_ARMOR")
    policy.setdefault("description", "")
    if regional:
        policy["region"] = world.link("compute", f"projects/{PROJECT}/regions/{region}")
    world.reserved.add(key)

    def effect():
        world.reserved.discard(key)
        world.security_policies[key] = policy
    op = _op(call, "insert", path, region, effect, policy["id"])
    if call.query.get("validateOnly"):
        world.reserved.discard(key)
    return op


def _policy_patch(call: Call, regional: bool):
    body = call.body or {}
    _key, path, region, policy = _policy(call, regional)
    _fingerprint(policy, body)
    if "rules" in body:
        raise invalid("Invalid value for field 'resource.rules': rules cannot be changed with patch; use addRule, "
                      "patchRule and removeRule.")
    if body.get("name") and body["name"] != policy["name"]:
        raise invalid(f"Invalid value for field 'resource.name': '{body['name']}'. The name cannot be changed.")
    cleared = [_camel(f) for f in _mask(call)]

    def effect():
        for field, value in body.items():
            if field not in ("fingerprint", "name"):
                policy[field] = copy.deepcopy(value)
        for field in cleared:
            if field not in body and field not in ("name", "rules"):
                policy.pop(field, None)
        policy["fingerprint"] = new_etag()
    return _op(call, "patch", path, region, effect, policy["id"])


def _policy_delete(call: Call, regional: bool):
    world = call.world
    key, path, region, policy = _policy(call, regional)

    def effect():
        world.security_policies.pop(key, None)
    return _op(call, "delete", path, region, effect, policy["id"])


def _rule_at(policy: dict, priority: int, path: str) -> dict:
    for rule in policy["rules"]:
        if rule["priority"] == priority:
            return rule
    raise invalid(f"Invalid value for field 'priority': '{priority}'. The rule at priority {priority} does not exist "
                  f"in security policy '{path}'.")


def _add_rule(call: Call, regional: bool):
    _key, path, region, policy = _policy(call, regional)
    rule = _validate_rule(call.body or {})
    if any(r["priority"] == rule["priority"] for r in policy["rules"]):
        raise invalid(f"Invalid value for field 'resource.priority': '{rule['priority']}'. A rule with priority "
                      f"{rule['priority']} already exists in security policy '{path}'.")

    def effect():
        policy["rules"] = sorted(policy["rules"] + [rule], key=lambda r: r["priority"])
        policy["fingerprint"] = new_etag()
    return _op(call, "addSecurityPolicyRule" if not regional else "addRule", path, region, effect, policy["id"])


def _patch_rule(call: Call, regional: bool):
    _key, path, region, policy = _policy(call, regional)
    priority = int(call.query.get("priority") or 0)
    current = _rule_at(policy, priority, path)
    merged = copy.deepcopy(current)
    merged.update(copy.deepcopy(call.body or {}))
    for field in _mask(call):  # fields named in updateMask and absent from the body are cleared
        top = _camel(field.split(".")[0])
        if top not in (call.body or {}) and top not in ("priority", "action", "match"):
            merged.pop(top, None)
    rule = _validate_rule(merged)
    if rule["priority"] != priority and any(r["priority"] == rule["priority"] for r in policy["rules"]):
        raise invalid(f"Invalid value for field 'resource.priority': '{rule['priority']}'. A rule with priority "
                      f"{rule['priority']} already exists in security policy '{path}'.")

    def effect():
        policy["rules"] = sorted([r for r in policy["rules"] if r["priority"] != priority] + [rule],
                                 key=lambda r: r["priority"])
        policy["fingerprint"] = new_etag()
    return _op(call, "patchSecurityPolicyRule" if not regional else "patchRule", path, region, effect, policy["id"])


def _remove_rule(call: Call, regional: bool):
    _key, path, region, policy = _policy(call, regional)
    priority = int(call.query.get("priority") or 0)
    _rule_at(policy, priority, path)
    if priority == DEFAULT_PRIORITY:
        raise invalid("Invalid value for field 'priority': '2147483647'. The default rule cannot be removed.")

    def effect():
        policy["rules"] = [r for r in policy["rules"] if r["priority"] != priority]
        policy["fingerprint"] = new_etag()
    return _op(call, "removeSecurityPolicyRule" if not regional else "removeRule", path, region, effect, policy["id"])


def _get_rule(call: Call, regional: bool):
    _key, path, _region, policy = _policy(call, regional)
    return copy.deepcopy(_rule_at(policy, int(call.query.get("priority") or 0), path))


for _regional, _prefix in ((False, "compute.securityPolicies"), (True, "compute.regionSecurityPolicies")):
    handler(f"{_prefix}.list")(lambda call, r=_regional: _policy_list(call, r))
    handler(f"{_prefix}.get")(lambda call, r=_regional: copy.deepcopy(_policy(call, r)[3]))
    handler(f"{_prefix}.insert")(_replayed(lambda call, r=_regional: _policy_insert(call, r)))
    handler(f"{_prefix}.patch")(_replayed(lambda call, r=_regional: _policy_patch(call, r)))
    handler(f"{_prefix}.delete")(_replayed(lambda call, r=_regional: _policy_delete(call, r)))
    handler(f"{_prefix}.addRule")(lambda call, r=_regional: _add_rule(call, r))
    handler(f"{_prefix}.patchRule")(lambda call, r=_regional: _patch_rule(call, r))
    handler(f"{_prefix}.removeRule")(lambda call, r=_regional: _remove_rule(call, r))
    handler(f"{_prefix}.getRule")(lambda call, r=_regional: _get_rule(call, r))


# --------------------------------------------------------------------------- aggregated lists

def _aggregated(call: Call, kind: str, field: str, scopes: dict) -> dict:
    """An aggregatedList answer: one entry per scope, with a NO_RESULTS_ON_PAGE warning where a scope has none.

    `filter` and `orderBy` are not evaluated (gcloud filters again on its side); every item is returned.
    """
    project = _project(call)
    items = {}
    for scope, found in scopes.items():
        if found:
            items[scope] = {field: found}
        elif call.query.get("includeAllScopes"):
            items[scope] = {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": f"There are no results for scope "
                                        f"'{scope}' on this page.", "data": [{"key": "scope", "value": scope}]}}
    return {"kind": f"compute#{kind}AggregatedList", "id": f"projects/{project}/aggregated/{field}", "items": items,
            "selfLink": call.world.link("compute", f"projects/{project}/aggregated/{field}")}


@handler("compute.subnetworks.aggregatedList")
def aggregated_subnets(call: Call):
    call.world.tick()
    scopes = {f"regions/{r}": [copy.deepcopy(s) for k, s in sorted(call.world.subnetworks.items())
                               if k.startswith(r + "/")] for r in REGIONS}
    return _aggregated(call, "subnetwork", "subnetworks", scopes)


@handler("compute.securityPolicies.aggregatedList")
def aggregated_policies(call: Call):
    call.world.tick()
    scopes = {"global": [copy.deepcopy(p) for k, p in sorted(call.world.security_policies.items())
                         if k.startswith("global/")]}
    scopes.update({f"regions/{r}": [copy.deepcopy(p) for k, p in sorted(call.world.security_policies.items())
                                    if k.startswith(f"regions/{r}/")] for r in REGIONS})
    return dict(_aggregated(call, "securityPolicies", "securityPolicies", scopes),
                kind="compute#securityPoliciesAggregatedList")


# --------------------------------------------------------------------------- accelerator types

# Every zone of the fake offers every accelerator a local node shape knows (hack/localcluster/nodes.py), plus the
# virtual-workstation (-vws) variants of the L4 and T4 that the walkthrough's filter excludes.
def accelerator_catalogue() -> dict:
    kinds = {shape.accelerator: shape.accelerator_count for shape in nodeshapes.nodes.MACHINE_TYPES.values()
             if shape.accelerator}
    for attachable in nodeshapes.nodes.ATTACHABLE_ACCELERATORS:
        kinds.setdefault(attachable, 4)
    for base in ("nvidia-l4", "nvidia-tesla-t4"):
        kinds[f"{base}-vws"] = kinds.get(base, 1)
    return {name: max(count, {"nvidia-l4": 8, "nvidia-tesla-t4": 4}.get(name, count)) for name, count in kinds.items()}


def _accelerator(world: World, zone: str, name: str, cards: int) -> dict:
    model = name.removeprefix("nvidia-").removeprefix("tesla-").removesuffix("-vws").upper()
    description = f"NVIDIA {model}" + (" Virtual Workstation" if name.endswith("-vws") else "")
    return {"kind": "compute#acceleratorType", "id": str(zlib.crc32(f"{zone}/{name}".encode())), "name": name,
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "description": description,
            "zone": world.link("compute", f"projects/{PROJECT}/zones/{zone}"), "maximumCardsPerInstance": cards,
            "selfLink": world.link("compute", f"projects/{PROJECT}/zones/{zone}/acceleratorTypes/{name}")}


def _zone(call: Call) -> str:
    zone = call.params["zone"]
    if not any(zone in zones for zones in ZONES_OF.values()):
        raise _nf(f"projects/{PROJECT}/zones/{zone}")
    return zone


@handler("compute.acceleratorTypes.aggregatedList")
def aggregated_accelerators(call: Call):
    catalogue = accelerator_catalogue()
    scopes = {f"zones/{z}": [_accelerator(call.world, z, n, c) for n, c in sorted(catalogue.items())]
              for zones in ZONES_OF.values() for z in zones}
    return _aggregated(call, "acceleratorType", "acceleratorTypes", scopes)


@handler("compute.acceleratorTypes.list")
def list_accelerators(call: Call):
    project, zone = _project(call), _zone(call)
    return {"kind": "compute#acceleratorTypeList", "id": f"projects/{project}/zones/{zone}/acceleratorTypes",
            "items": [_accelerator(call.world, zone, n, c) for n, c in sorted(accelerator_catalogue().items())],
            "selfLink": call.world.link("compute", f"projects/{project}/zones/{zone}/acceleratorTypes")}


@handler("compute.acceleratorTypes.get")
def get_accelerator(call: Call):
    _project(call)
    zone, name = _zone(call), call.params["acceleratorType"]
    cards = accelerator_catalogue().get(name)
    if cards is None:
        raise _nf(f"projects/{PROJECT}/zones/{zone}/acceleratorTypes/{name}")
    return _accelerator(call.world, zone, name, cards)


# --------------------------------------------------------------------------- subnetworks

_SUBNET_PATCHABLE = ("description", "logConfig", "enableFlowLogs", "role", "secondaryIpRanges", "stackType",
                     "ipv6AccessType", "privateIpv6GoogleAccess", "allowSubnetCidrRoutesOverlap", "ipCidrRange",
                     "privateIpGoogleAccess", "fingerprint", "purpose", "name", "network", "region")


def _finish_subnet(world: World, subnet: dict, region: str) -> dict:
    net = ipaddress.ip_network(subnet["ipCidrRange"])
    subnet.update({"kind": "compute#subnetwork", "id": _id(), "creationTimestamp": now_rfc3339(),
                   "region": world.link("compute", f"projects/{PROJECT}/regions/{region}"),
                   "selfLink": world.link("compute", f"projects/{PROJECT}/regions/{region}/subnetworks/{subnet['name']}"),
                   "fingerprint": new_etag()})
    if subnet.get("purpose", "PRIVATE") in ("PRIVATE", "PRIVATE_RFC_1918"):
        subnet["gatewayAddress"] = str(next(net.hosts()))
    subnet.setdefault("purpose", "PRIVATE")
    subnet.setdefault("stackType", "IPV4_ONLY")
    if subnet["purpose"] in ("REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER"):
        subnet["state"] = "READY"
    else:
        subnet.setdefault("privateIpGoogleAccess", False)
    return subnet


def _network_name(world: World, ref: str) -> str:
    m = re.search(r"(?:^|/)(?:projects/([^/]+)/)?global/networks/([^/]+)$", ref) or re.fullmatch(r"()([a-z][-a-z0-9]*)", ref)
    if not m or (m.group(1) and m.group(1) not in (PROJECT, PROJECT_NUMBER)) or m.group(2) not in world.networks:
        raise GoogleError(404, f"The resource '{ref}' was not found", reason="notFound")
    return m.group(2)


def _subnet(call: Call) -> tuple[str, str, str, dict]:
    project, region = _project(call), _region(call)
    path = f"projects/{project}/regions/{region}/subnetworks/{call.params['subnetwork']}"
    key = f"{region}/{call.params['subnetwork']}"
    subnet = call.world.subnetworks.get(key)
    if subnet is None:
        raise _nf(path)
    return key, path, region, subnet


def _check_cidr(world: World, cidr: str, network_link: str, skip_key: str = "") -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError:
        raise invalid(f"Invalid value for field 'resource.ipCidrRange': '{cidr}'. Invalid IPCidrRange: {cidr} is not "
                      "a valid CIDR range (host bits must be zero).") from None
    if net.version != 4 or not net.is_private or net.prefixlen > 29:
        raise invalid(f"Invalid value for field 'resource.ipCidrRange': '{cidr}'. Must be a private IPv4 range of "
                      "/29 or larger.")
    for key, other in world.subnetworks.items():
        if key == skip_key or other["network"].rsplit("/", 1)[-1] != network_link.rsplit("/", 1)[-1]:
            continue
        if net.overlaps(ipaddress.ip_network(other["ipCidrRange"])):
            other_region = key.split("/", 1)[0]
            raise invalid(f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork '{other['name']}' in region "
                          f"'{other_region}'.")
    return net


@handler("compute.subnetworks.list")
def list_subnets(call: Call):
    project, region = _project(call), _region(call)
    call.world.tick()
    items = [copy.deepcopy(s) for k, s in sorted(call.world.subnetworks.items()) if k.startswith(region + "/")]
    return {"kind": "compute#subnetworkList", "id": f"projects/{project}/regions/{region}/subnetworks", "items": items,
            "selfLink": call.world.link("compute", f"projects/{project}/regions/{region}/subnetworks")}


@handler("compute.subnetworks.get")
def get_subnet(call: Call):
    return copy.deepcopy(_subnet(call)[3])


@handler("compute.subnetworks.insert")
@_replayed
def insert_subnet(call: Call):
    world, body = call.world, copy.deepcopy(call.body or {})
    project, region = _project(call), _region(call)
    _check_name(body.get("name"))
    path = f"projects/{project}/regions/{region}/subnetworks/{body['name']}"
    key = f"{region}/{body['name']}"
    if key in world.subnetworks or key in world.reserved:
        raise GoogleError(409, f"The resource '{path}' already exists", reason="alreadyExists")
    if body.get("region") and body["region"].rsplit("/", 1)[-1] != region:
        raise invalid(f"Invalid value for field 'resource.region': '{body['region']}'. It must match the URL's region "
                      f"'{region}'.")
    if not body.get("network"):
        raise GoogleError(400, "Required field 'resource.network' not specified", reason="required")
    network = _network_name(world, body["network"])
    body["network"] = world.networks[network]["selfLink"]
    if not body.get("ipCidrRange"):
        raise GoogleError(400, "Required field 'resource.ipCidrRange' not specified", reason="required")
    _check_cidr(world, body["ipCidrRange"], body["network"])
    purpose = body.get("purpose", "PRIVATE")
    if purpose in ("REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER"):
        if not body.get("role"):
            raise GoogleError(400, "Required field 'resource.role' not specified: a proxy-only subnetwork needs role "
                                   "ACTIVE or BACKUP.", reason="required")
        if body.get("privateIpGoogleAccess"):
            raise invalid("Invalid value for field 'resource.privateIpGoogleAccess': 'true'. Private Google Access is "
                          "not supported for proxy-only subnetworks.")
        for other in world.subnetworks.values():
            if (other.get("purpose") == purpose and other.get("role") == body["role"] == "ACTIVE"
                    and other["network"] == body["network"] and other["region"].endswith("/" + region)):
                raise invalid(f"Invalid value for field 'resource.role': 'ACTIVE'. An ACTIVE subnetwork with purpose "
                              f"{purpose} already exists in region '{region}' for network '{network}': "
                              f"'{other['name']}'.")
    elif body.get("role"):
        raise invalid(f"Invalid value for field 'resource.role': '{body['role']}'. Role can only be set for "
                      "proxy-only subnetworks.")
    subnet = _finish_subnet(world, body, region)
    world.reserved.add(key)

    def effect():
        world.reserved.discard(key)
        world.subnetworks[key] = subnet
    op = _op(call, "insert", path, region, effect, subnet["id"])
    if call.query.get("validateOnly"):
        world.reserved.discard(key)
    return op


@handler("compute.subnetworks.patch")
@_replayed
def patch_subnet(call: Call):
    world, body = call.world, call.body or {}
    key, path, region, subnet = _subnet(call)
    _fingerprint(subnet, body)
    for field, value in body.items():
        if field not in _SUBNET_PATCHABLE:
            raise invalid(f"Invalid value for field 'resource.{field}': the field cannot be patched.")
        if field in ("purpose", "name", "network", "region") and value not in (subnet.get(field), None) \
                and not (field in ("network", "region") and str(value).rsplit("/", 1)[-1] == subnet[field].rsplit("/", 1)[-1]):
            raise invalid(f"Invalid value for field 'resource.{field}': '{value}'. The field cannot be changed.")
    if body.get("ipCidrRange") and body["ipCidrRange"] != subnet["ipCidrRange"]:
        new = _check_cidr(world, body["ipCidrRange"], subnet["network"], skip_key=key)
        if not ipaddress.ip_network(subnet["ipCidrRange"]).subnet_of(new):
            raise invalid(f"Invalid value for field 'resource.ipCidrRange': '{body['ipCidrRange']}'. The range can "
                          "only be expanded to a range that contains the current one.")

    promoted = body.get("role") == "ACTIVE" and subnet.get("role") == "BACKUP"

    def effect():
        if promoted:
            # Promoting a BACKUP proxy-only subnet demotes the region's ACTIVE one (one ACTIVE per region and network).
            for other in world.subnetworks.values():
                if (other is not subnet and other.get("role") == "ACTIVE" and other.get("purpose") == subnet["purpose"]
                        and other["network"] == subnet["network"] and other["region"] == subnet["region"]):
                    other["role"] = "BACKUP"
                    other["fingerprint"] = new_etag()
        for field, value in body.items():
            if field not in ("fingerprint", "name", "network", "region", "purpose"):
                subnet[field] = copy.deepcopy(value)
        subnet["fingerprint"] = new_etag()
    return _op(call, "patch", path, region, effect, subnet["id"])


@handler("compute.subnetworks.delete")
@_replayed
def delete_subnet(call: Call):
    world = call.world
    key, path, region, subnet = _subnet(call)

    def effect():
        world.subnetworks.pop(key, None)
    return _op(call, "delete", path, region, effect, subnet["id"])


# --------------------------------------------------------------------------- operations

class Wait:
    """Returned by the wait methods: the server sleeps (outside the lock) until the operation is DONE."""

    def __init__(self, op, render):
        self.op = op
        self.render = render

    def remaining(self) -> float:
        return min(120.0, max(0.0, self.op.created + self.op.delay - time.monotonic()))


def _op_path(call: Call, regional: bool) -> str:
    project = _project(call)
    scope = f"regions/{_region(call)}" if regional else "global"
    return f"projects/{project}/{scope}/operations/{call.params['operation']}"


@handler("compute.globalOperations.get")
def get_global_op(call: Call):
    return render_op(call.world, call.world.operation("compute", _op_path(call, False)))


@handler("compute.regionOperations.get")
def get_region_op(call: Call):
    return render_op(call.world, call.world.operation("compute", _op_path(call, True)))


@handler("compute.globalOperations.wait")
def wait_global_op(call: Call):
    return Wait(call.world.operation("compute", _op_path(call, False)), render_op)


@handler("compute.regionOperations.wait")
def wait_region_op(call: Call):
    return Wait(call.world.operation("compute", _op_path(call, True)), render_op)


@handler("compute.networks.get")
def get_network(call: Call):
    _project(call)
    network = call.world.networks.get(call.params["network"])
    if network is None:
        raise _nf(f"projects/{PROJECT}/global/networks/{call.params['network']}")
    return copy.deepcopy(network)
