# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""The data model of the collection: resolution into the facts the roles read, and its validation.

Pure functions over plain data, unit-tested without Ansible. The ``gke_ai.inference_gateway.data_model`` action runs
them on the controller (roles/common); its callers own the inputs:

- ``values``: the data model's variables (``infgw_*``) as the inventory, ``-e`` and the role defaults set them;
- ``defaults``: roles/common/defaults/main.yml, the one place of every default. The dict-shaped settings
  (``infgw_gateway``, ``infgw_model_defaults``...) are merged over it, so an inventory only states what differs.

:func:`validate` returns every problem at once, each message starting with the inventory field it is about.
Types, required keys and unknown keys are the job of roles/common/meta/argument_specs.yml, which runs first; the
checks here are the ones the API server or Google would make later (after earlier steps had already changed
things), and the conflicts between fields that nobody else checks.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from decimal import Decimal, InvalidOperation

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._machine_types import (
    KNOWN_ACCELERATORS,
    node_pool_problems,
)

# infgw_gateway.class shorthands -> GKE GatewayClass names (anything else is taken literally).
GATEWAY_CLASS_SHORTHANDS = {
    "external": "gke-l7-regional-external-managed",
    "internal": "gke-l7-rilb",
}
METRICS_ADAPTER_PRINCIPAL = ("principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/"
                             "{project}.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")
# The keys of an infgw_nodepools entry: gke_node_pool's options the gpu_nodepool role passes on.
NODE_POOL_KEYS = ("name", "machine_type", "accelerator", "node_locations", "autoscaling", "initial_node_count",
                  "node_count", "spot", "labels", "taints", "service_account", "disk_size_gb", "disk_type", "recreate")
CLOUD_ARMOR_ALLOW_PRIORITY = 1000      # the allow-list's first rule (roles/cloud_armor), one rule per 10 ranges
CLOUD_ARMOR_RANGES_PER_RULE = 10       # Cloud Armor's limit of srcIpRanges in one rule
CLOUD_ARMOR_DEFAULT_PRIORITY = 2147483647


# --------------------------------------------------------------------------------------------------------------
# values as the Kubernetes API server validates them (k8s.io/apimachinery/pkg/util/validation, resource.Quantity)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_QUANTITY_SUFFIX = {
    "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10 ** 3, "M": 10 ** 6,
    "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30,
    "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
}


def is_dns1123_label(value, max_length=63):
    return isinstance(value, str) and len(value) <= max_length and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value):
    return isinstance(value, str) and len(value) <= 253 and all(
        _DNS1123_LABEL.match(part) for part in value.split("."))


def is_dns_name(value):
    """A hostname as Gateway API takes it (a leading ``*.`` allowed)."""
    return isinstance(value, str) and len(value) <= 253 and bool(_DNS_NAME.match(value))


def parse_quantity(value):
    """A Kubernetes resource quantity (``25Gi``, ``500m``, ``1e3``) -> Decimal, or None when the API server would
    reject it (``25 GB``, ``25GB``, ``''``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * Decimal(_QUANTITY_SUFFIX[suffix])
    except (InvalidOperation, ValueError):
        return None


def is_env_var_name(value):
    """What the API server accepts since RelaxedEnvironmentVariableValidation: printable ASCII without ``=``."""
    return isinstance(value, str) and value != "" and "=" not in value and all(" " <= c <= "~" for c in value)


def is_image(value):
    return isinstance(value, str) and value != "" and not any(c.isspace() for c in value)


# --------------------------------------------------------------------------------------------------------------
# values as Google Cloud validates them

DASHBOARD_ID_MAX = 100
_DASHBOARD_ID = re.compile(r"^[A-Za-z0-9_-]{1,%d}$" % DASHBOARD_ID_MAX)
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")  # Prometheus' durations, as PodMonitoring's interval takes them
_GCP_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_GCP_PROJECT = re.compile(r"^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")


def is_gcp_name(value, max_length=63):
    """A Compute Engine / Certificate Manager resource name (RFC 1035 label)."""
    return isinstance(value, str) and len(value) <= max_length and bool(_GCP_NAME.match(value))


def region_of(location):
    """The region of a region or zone name, or None when it is neither."""
    if not isinstance(location, str):
        return None
    if _REGION.match(location):
        return location
    match = _ZONE.match(location)
    return match.group(1) if match else None


def ip_range_problem(value, strict=False):
    """Why ``value`` is not an IP address or CIDR range (``10.0.0.0/33``), or None."""
    if not isinstance(value, str) or not value:
        return "is not an IP range (address or CIDR)"
    address, _slash, prefix = value.partition("/")
    try:
        family = ipaddress.ip_address(address).version
    except ValueError:
        return "is not an IP range (%s is not an IPv4 or IPv6 address)" % address
    limit = 32 if family == 4 else 128
    if _slash and (not prefix.isdigit() or int(prefix) > limit):
        return "is not an IP range (the prefix length of an IPv%d range is 0 to %d)" % (family, limit)
    try:
        ipaddress.ip_network(value, strict=strict)
    except ValueError as error:
        return "is not an IP range (%s)" % error
    return None


# --------------------------------------------------------------------------------------------------------------
# helpers

def combine(base, override, recursive=False):
    """ansible.builtin.combine of two dicts (lists are replaced, not merged)."""
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in (override or {}).items():
        if recursive and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = combine(out[key], value, recursive=True)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_bool(value):
    """Ansible's ``| bool``: yes/on/true/1 (any case) are true, everything else false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "true", "1", "y", "t")


def unset(value):
    """A flat launch-time choice left blank: null, '' (an AWX survey) or []."""
    return value is None or value == "" or value == []


def q(value):
    """A value in a message, as JSON (so "" and "a b" read unambiguously)."""
    return json.dumps(value, default=str)


def as_int(value):
    """An int, or None when `value` is not a whole number (argument_specs converts; this is for the derived)."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Problems(list):
    """The messages of a validation: ``<field>: <what is wrong>``."""

    def add(self, field, message):
        self.append("%s: %s" % (field, message))


# --------------------------------------------------------------------------------------------------------------
# resolution

def selected_models(values):
    """infgw_select_models as a list of names ([] = all); a comma-separated string is accepted (AWX)."""
    chosen = values.get("infgw_select_models")
    if isinstance(chosen, str):
        chosen = chosen.split(",")
    return [str(name).strip() for name in (chosen or []) if str(name).strip()]


def resolve_model(entry, model_defaults, flat, pool_suffix=""):
    """One infgw_models entry over infgw_model_defaults and the flat launch-time choices, with derived names (the
    pool, its EPP and helm release are vllm-<name><pool_suffix>: the profile's, so that upgrade.yml can run two
    profiles side by side)."""
    m = combine(combine(model_defaults, entry, recursive=True), flat, recursive=True)
    name = m.get("name")
    short = m.get("short_name") or name
    rname = "vllm-%s" % name
    autoscaling = m.get("autoscaling") or {}
    lora = m.get("lora_adapters") or []
    m.update(
        short_name=short,
        resource_name=rname,
        deployment_name=rname,
        service_name=rname,
        pool_name=rname + pool_suffix,
        epp_name=rname + pool_suffix + "-epp",
        labels={"app": rname},
        health_check_policy_name=rname + "-hc",
        bbr_route_name="bbr-%s" % short,
        infp_route_name="infp-%s" % short,
        host=m.get("host") or None,
        default_backend=to_bool(m.get("default_backend") or False),
        gpus=as_int(m.get("gpus")),
        replicas=as_int(m.get("replicas")),
        autoscaling=autoscaling,
        replicas_managed_by_hpa=to_bool(autoscaling.get("enabled", False)),
        startup_failure_threshold=as_int(m.get("startup_budget_seconds")),
        lora_adapters=lora,
        served_model_names=[m.get("model")] + [adapter.get("name") for adapter in lora],
        objective=m.get("objective") or None,
        env=m.get("env") or {},
        vllm_args=m.get("vllm_args") or [],
    )
    return m


def resolve(values, defaults, profile):
    """The facts roles/common sets, from the data model's variables.

    `defaults` is roles/common/defaults/main.yml (templated): the dict-shaped settings are merged over it.
    `profile` is the profile file's infgw_profile_data, or None when infgw_profile names no profile."""
    selected = selected_models(values)
    flat_model = {}
    if not unset(values.get("infgw_replicas")):
        flat_model["replicas"] = as_int(values["infgw_replicas"])
    if not unset(values.get("infgw_autoscaling_enabled")):
        flat_model["autoscaling"] = {"enabled": to_bool(values["infgw_autoscaling_enabled"])}
    model_defaults = combine(defaults.get("infgw_model_defaults"), values.get("infgw_model_defaults"), recursive=True)
    profile_data = combine(profile, values.get("infgw_profile_overrides"), recursive=True) if profile else {}
    suffix = str(profile_data.get("pool_suffix") or "")
    models = [resolve_model(entry, model_defaults, flat_model, suffix) for entry in values.get("infgw_models") or []
              if not selected or entry.get("name") in selected]

    gateway = combine(defaults.get("infgw_gateway"), values.get("infgw_gateway"), recursive=True)
    if not unset(values.get("infgw_gateway_class")):
        gateway["class"] = values["infgw_gateway_class"]
    parent_ref = {"name": gateway.get("name")}
    if gateway.get("redirect_http_to_https"):
        parent_ref["sectionName"] = "https"
    gateway.update(class_name=GATEWAY_CLASS_SHORTHANDS.get(gateway.get("class"), gateway.get("class")),
                   parent_refs=[parent_ref])

    cloud_armor = combine(defaults.get("infgw_cloud_armor"), values.get("infgw_cloud_armor"))
    if not unset(values.get("infgw_cloud_armor_enabled")):
        cloud_armor["enabled"] = to_bool(values["infgw_cloud_armor_enabled"])
    if selected:
        cloud_armor["pools"] = [pool for pool in cloud_armor.get("pools") or [] if pool in selected]

    gcp = combine(defaults.get("infgw_gcp"), values.get("infgw_gcp"))
    gcp["cluster_location"] = gcp.get("cluster_location") or gcp.get("region")

    return {
        "infgw_profile_data": profile_data,
        "infgw_models_resolved": models,
        "infgw_gateway_resolved": gateway,
        "infgw_chat_ui_resolved": combine(defaults.get("infgw_chat_ui"), values.get("infgw_chat_ui")),
        "infgw_cloud_armor_resolved": cloud_armor,
        "infgw_gcp_resolved": gcp,
        "infgw_proxy_subnet_resolved": combine(defaults.get("infgw_proxy_subnet"), values.get("infgw_proxy_subnet")),
        "infgw_monitoring_resolved": resolve_monitoring(defaults, values, gcp),
        # the custom metrics adapter's Workload Identity principal: hpa_metrics grants it a role, teardown revokes it
        "infgw_metrics_adapter_principal": METRICS_ADAPTER_PRINCIPAL.format(
            number=gcp.get("project_number") or "", project=gcp.get("project") or ""),
    }


def resolve_monitoring(defaults, values, gcp):
    """infgw_monitoring over its defaults; the dashboard's id and title default to the cluster and namespace's."""
    monitoring = combine(defaults.get("infgw_monitoring"), values.get("infgw_monitoring"))
    where = (gcp.get("cluster") or "", values.get("infgw_namespace") or "")
    monitoring["dashboard_id"] = monitoring.get("dashboard_id") or ("infgw-%s-%s" % where)[:DASHBOARD_ID_MAX]
    monitoring["dashboard_title"] = monitoring.get("dashboard_title") or "Inference gateway %s/%s" % where
    monitoring["dashboard_labels"] = monitoring.get("dashboard_labels") or {}
    return monitoring


def pool_releases(models, profile, chart_values=None, values_by_model=None, metrics_secret=None, namespace=None):
    """One inferencepool chart release per model: name, values (dict) and typed set_values.

    Values are the profile's pool_chart_values, then `chart_values`, then the model's own `values_by_model`,
    then (profiles whose chart only references the metrics secret) ``{name, namespace}`` of `metrics_secret`, then
    the pool's selector; the port and EPP replicas are --set, so that they win over every values file."""
    def nested(dotted, leaf):
        tree = leaf
        for key in reversed(dotted.split(".")):
            tree = {key: tree}
        return tree

    base = combine(profile.get("pool_chart_values") or {}, chart_values or {}, recursive=True)
    secret = {}
    if metrics_secret and not profile.get("metrics_via_chart") and profile.get("metrics_secret_value"):
        secret = nested(profile["metrics_secret_value"], {"name": metrics_secret, "namespace": namespace})
    releases = []
    for m in models:
        chart = combine(base, (values_by_model or {}).get(m["name"]) or {}, recursive=True)
        chart = combine(chart, secret, recursive=True)
        chart = combine(chart, nested(profile["pool_selector_value"], m["labels"]), recursive=True)
        sets = [{"value": "%s=%d" % (path, int(m["port"])), "value_type": "raw"}
                for path in profile.get("pool_port_values") or []]
        sets.append({"value": "%s=%d" % (profile["pool_epp_replicas_value"], int(m["pool"]["epp_replicas"])),
                     "value_type": "raw"})
        releases.append({"name": m["pool_name"], "values": chart, "set_values": sets})
    return releases


# --------------------------------------------------------------------------------------------------------------
# validation

def step_runs(step, run_tags, skip_tags):
    """Whether a site.yml step (a role tagged with its name) runs for these --tags / --skip-tags."""
    run_tags = run_tags or ["all"]
    return ("all" in run_tags or step in run_tags) and step not in (skip_tags or [])


def validate(values, resolved, profiles, hf_token_set=True, run_tags=None, skip_tags=None):
    """Every problem of the data model, as ``<field>: <message>`` lines; [] when it is good.

    `resolved` is what :func:`resolve` made of `values`; `profiles` the names of the known profiles."""
    problems = Problems()
    models = resolved["infgw_models_resolved"]
    _check_globals(problems, values, profiles)
    hosts = _check_models(problems, values, models)
    if to_bool(values.get("infgw_require_hf_token", True)) and step_runs("vllm_model", run_tags, skip_tags) \
            and models and not hf_token_set:
        problems.add("infgw_hf_token", "empty, but %d model(s) are deployed and need it (export HF_TOKEN, or set "
                     "infgw_hf_token from a vault)" % len(models))
    _check_gateway(problems, resolved["infgw_gateway_resolved"], hosts)
    names = [m.get("name") for m in models]
    _check_chat_ui(problems, resolved["infgw_chat_ui_resolved"], resolved["infgw_gateway_resolved"], names)
    _check_cloud_armor(problems, resolved["infgw_cloud_armor_resolved"], resolved["infgw_gcp_resolved"], names)
    _check_gcp(problems, values, resolved)
    _check_monitoring(problems, resolved["infgw_monitoring_resolved"])
    return list(problems)


def _check_globals(problems, values, profiles):
    profile = values.get("infgw_profile")
    if profile not in profiles:
        problems.add("infgw_profile", "unknown profile %s; known: %s" % (q(profile), ", ".join(profiles)))
    if not is_dns1123_label(values.get("infgw_namespace")):
        problems.add("infgw_namespace", "%s is not a DNS-1123 label (lowercase letters, digits and -, at most 63 "
                     "characters)" % q(values.get("infgw_namespace")))
    if not is_dns1123_subdomain(values.get("infgw_hf_secret_name")):
        problems.add("infgw_hf_secret_name", "%s is not a Secret name (a DNS-1123 subdomain)"
                     % q(values.get("infgw_hf_secret_name")))
    known = [m.get("name") for m in values.get("infgw_models") or []]
    for name in selected_models(values):
        if name not in known:
            problems.add("infgw_select_models", "%s is not the name of a model in infgw_models (%s)"
                         % (q(name), ", ".join(str(n) for n in known)))
    for var in ("infgw_replicas", "infgw_scale_replicas"):
        if not unset(values.get(var)) and (as_int(values[var]) is None or as_int(values[var]) < 0):
            problems.add(var, "must be 0 or more, got %s" % values[var])


def _check_resources(problems, field, resources):
    for key, value in (resources or {}).items():
        if value is None:
            continue
        amount = parse_quantity(value)
        if amount is None:
            problems.add("%s.resources.%s" % (field, key),
                         "%s is not a Kubernetes quantity (a number with an optional suffix and no space: 25Gi, "
                         "500M, 6, 500m)" % q(value))
        elif amount < 0:
            problems.add("%s.resources.%s" % (field, key), "must not be negative, got %s" % value)


def _check_models(problems, values, models):
    """Checks each model and across models; -> {hostname: the field that has it}."""
    names, shorts, objectives, defaults_seen = [], [], [], []
    hosts = {}
    served = {}   # a name clients ask for -> the field that serves it
    accelerators = set(KNOWN_ACCELERATORS) | set(values.get("infgw_extra_accelerators") or [])
    for index, m in enumerate(models):
        f = "infgw_models[%d]" % index
        name = m.get("name")
        if not is_dns1123_label(name, 54):
            problems.add(f + ".name", "%s is not a DNS-1123 label (lowercase letters, digits and -, starting and "
                         "ending alphanumeric, at most 54 characters so that vllm-<name>-epp fits in 63)" % q(name))
        elif name in names:
            problems.add(f + ".name", "duplicate model name %s (also infgw_models[%d])" % (q(name), names.index(name)))
        names.append(name)
        short = m.get("short_name")
        if short != name:
            if not is_dns1123_label(short, 58):
                problems.add(f + ".short_name", "%s is not a DNS-1123 label of at most 58 characters (routes are named "
                             "bbr-<short_name>)" % q(short))
            elif short in shorts:
                problems.add(f + ".short_name", "duplicate %s (also infgw_models[%d].short_name); route names would "
                             "collide" % (q(short), shorts.index(short)))
        shorts.append(short)

        if not isinstance(m.get("model"), str) or not m["model"].strip():
            problems.add(f + ".model", "empty; name the Hugging Face model id (org/name)")
        elif any(c.isspace() for c in m["model"]):
            problems.add(f + ".model", "%s contains white space" % q(m["model"]))
        if not is_image(m.get("image")):
            problems.add(f + ".image", "%s is not a container image (empty, or contains white space)" % q(m.get("image")))
        for key, low in (("replicas", 0), ("gpus", 0)):
            if m.get(key) is None or m[key] < low:
                problems.add("%s.%s" % (f, key), "must be %d or more, got %s" % (low, m.get(key)))
        if m.get("gpus") and m.get("accelerator") not in accelerators:
            problems.add(f + ".accelerator", "unknown accelerator %s; known: %s (add new types to "
                         "infgw_extra_accelerators)" % (q(m.get("accelerator")), ", ".join(sorted(accelerators))))
        if m.get("startup_failure_threshold") is None or m["startup_failure_threshold"] < 1:
            problems.add(f + ".startup_budget_seconds", "must be at least 1, got %s" % m.get("startup_budget_seconds"))
        port = as_int(m.get("port"))
        if port is None or not 1 <= port <= 65535:
            problems.add(f + ".port", "must be a port number (1-65535), got %s" % m.get("port"))
        _check_resources(problems, f, m.get("resources"))
        for key in (m.get("env") or {}):
            if not is_env_var_name(key):
                problems.add(f + ".env", "%s is not an environment variable name (printable ASCII without =)" % q(key))
        epp = (m.get("pool") or {}).get("epp_replicas")
        if as_int(epp) is None or as_int(epp) < 0:
            problems.add(f + ".pool.epp_replicas", "must be 0 or more, got %s" % epp)
        _check_autoscaling(problems, f, m.get("autoscaling") or {})

        host = m.get("host")
        if host:
            if not is_dns_name(host):
                problems.add(f + ".host", "%s is not a DNS name" % q(host))
            elif host in hosts:
                problems.add(f + ".host", "duplicate hostname %s (also %s): two models on one host" % (
                    q(host), hosts[host]))
            hosts.setdefault(host, f + ".host")
        if m.get("default_backend"):
            if defaults_seen:
                problems.add(f + ".default_backend", "only one model can be the default backend (also %s)"
                             % defaults_seen[0])
            elif not host:
                problems.add(f + ".default_backend", "the default backend needs a host (the host-based route only "
                             "carries hosts of models)")
            defaults_seen.append(f)
        objective = m.get("objective")
        if objective and objective.get("name") is not None:
            if not is_dns1123_label(objective["name"]):
                problems.add(f + ".objective.name", "%s is not a DNS-1123 label" % q(objective["name"]))
            elif objective["name"] in objectives:
                problems.add(f + ".objective.name", "duplicate objective %s" % q(objective["name"]))
            objectives.append(objective["name"])

        # every name a client can ask for (the model id, each LoRA adapter) must lead to one pool
        if isinstance(m.get("model"), str) and m["model"].strip():
            if m["model"] in served:
                problems.add(f + ".model", "%s is also served by %s; two pools would answer one model name"
                             % (q(m["model"]), served[m["model"]]))
            served.setdefault(m["model"], f + ".model")
        adapters = []
        for j, adapter in enumerate(m.get("lora_adapters") or []):
            af = "%s.lora_adapters[%d]" % (f, j)
            aname, path = adapter.get("name"), adapter.get("path")
            if not isinstance(aname, str) or not aname or "=" in aname or any(c.isspace() for c in aname):
                problems.add(af + ".name", "%s is not an adapter name (not empty, no white space or =)" % q(aname))
                continue
            if not isinstance(path, str) or not path.strip():
                problems.add(af + ".path", "empty; name the adapter's path or Hugging Face repository")
            if aname in adapters:
                problems.add(af + ".name", "duplicate adapter %s" % q(aname))
                continue
            adapters.append(aname)
            if aname in served:
                problems.add(af + ".name", "%s is also served by %s; two pools would answer one model name"
                             % (q(aname), served[aname]))
            served.setdefault(aname, af + ".name")
    return hosts


def _check_autoscaling(problems, f, autoscaling):
    target = autoscaling.get("target_kv_cache_utilization")
    if target is not None:
        amount = parse_quantity(target)
        field = f + ".autoscaling.target_kv_cache_utilization"
        if amount is None:
            problems.add(field, "%s is not a Kubernetes quantity (500m is 50%%)" % q(target))
        elif amount <= 0 or amount > 1:
            problems.add(field, "%s is %s%% of the KV cache, which is never more than 100%% full (1); 500m is 50%%"
                         % (target, _percent(amount)))
    if not to_bool(autoscaling.get("enabled", False)):
        return
    low, high = as_int(autoscaling.get("min", 1)), as_int(autoscaling.get("max", 1))
    if low is None or low < 1:
        problems.add(f + ".autoscaling.min", "must be at least 1 (an HPA does not scale from zero), got %s"
                     % autoscaling.get("min"))
    elif high is None or low > high:
        problems.add(f + ".autoscaling", "min (%s) is greater than max (%s)"
                     % (autoscaling.get("min"), autoscaling.get("max")))


def _percent(amount):
    text = "%f" % (amount * 100)
    return text.rstrip("0").rstrip(".")


def _check_gateway(problems, g, hosts):
    if not is_dns1123_label(g.get("name")):
        problems.add("infgw_gateway.name", "%s is not a DNS-1123 label" % q(g.get("name")))
    if not is_dns1123_subdomain(g.get("class_name")):
        problems.add("infgw_gateway.class", "%s is not a GatewayClass name (external, internal, or a DNS-1123 "
                     "subdomain)" % q(g.get("class")))
    if not g.get("http") and not g.get("https"):
        problems.add("infgw_gateway", "http and https are both false; the Gateway needs a listener")
    tls = g.get("tls") or {}
    mode = tls.get("mode") or "none"
    certificates = tls.get("certificates") or []
    if g.get("https"):
        if mode == "none":
            problems.add("infgw_gateway.tls.mode", "none, but infgw_gateway.https is true; an HTTPS listener needs "
                         "certificate_manager or secret")
        elif not certificates:
            problems.add("infgw_gateway.tls.certificates", "empty, but infgw_gateway.tls.mode is %s (name the %s)" % (
                mode, "Certificate Manager certificates" if mode == "certificate_manager" else "TLS Secrets"))
        for index, cert in enumerate(certificates):
            field = "infgw_gateway.tls.certificates[%d]" % index
            if mode == "secret" and not is_dns1123_subdomain(cert):
                problems.add(field, "%s is not a TLS Secret name (a DNS-1123 subdomain)" % q(cert))
            elif mode == "certificate_manager" and not is_gcp_name(cert):
                problems.add(field, "%s is not a Certificate Manager certificate name (lowercase letters, digits "
                             "and -, starting with a letter, at most 63 characters)" % q(cert))
    if g.get("redirect_http_to_https") and not (g.get("http") and g.get("https")):
        problems.add("infgw_gateway.redirect_http_to_https", "needs both listeners (infgw_gateway.http and "
                     "infgw_gateway.https true)")
    if not is_dns1123_label(g.get("host_route")):
        problems.add("infgw_gateway.host_route", "%s is not a DNS-1123 label" % q(g.get("host_route")))
    for index, address in enumerate(g.get("addresses") or []):
        field = "infgw_gateway.addresses[%d].value" % index
        value = address.get("value")
        if (address.get("type") or "IPAddress") == "IPAddress":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                problems.add(field, "%s is not an IP address (type IPAddress)" % q(value))
        elif not is_gcp_name(value):
            problems.add(field, "%s is not the name of a reserved address (type NamedAddress)" % q(value))
    for key, host in sorted((g.get("hosts") or {}).items()):
        if not host:
            continue
        field = "infgw_gateway.hosts.%s" % key
        if not is_dns_name(host):
            problems.add(field, "%s is not a DNS name" % q(host))
        elif host in hosts:
            problems.add(field, "duplicate hostname %s (also %s)" % (q(host), hosts[host]))
        hosts.setdefault(host, field)


def _check_chat_ui(problems, c, g, names):
    if not c.get("enabled"):
        return
    if c.get("model") not in names:
        problems.add("infgw_chat_ui.model", "%s is not the name of a model in infgw_models (%s)"
                     % (q(c.get("model")), ", ".join(str(n) for n in names)))
    if c.get("target") == "gateway" and not (g.get("hosts") or {}).get("api"):
        problems.add("infgw_chat_ui.target", "gateway needs infgw_gateway.hosts.api, the hostname the UI calls")
    if not is_image(c.get("image")):
        problems.add("infgw_chat_ui.image", "%s is not a container image (empty, or contains white space)"
                     % q(c.get("image")))


def _check_cloud_armor(problems, ca, gcp, names):
    if not ca.get("enabled"):
        return
    for pool in ca.get("pools") or []:
        if pool not in names:
            problems.add("infgw_cloud_armor.pools", "%s is not the name of a model in infgw_models" % q(pool))
    if not ca.get("policy"):
        problems.add("infgw_cloud_armor.policy", "empty, but infgw_cloud_armor.enabled is true")
    elif not is_gcp_name(ca["policy"]):
        problems.add("infgw_cloud_armor.policy", "%s is not a security policy name (lowercase letters, digits and -, "
                     "starting with a letter, at most 63 characters)" % q(ca["policy"]))
    ranges = ca.get("allowed_ip_ranges") or []
    if ca.get("manage_policy") and gcp.get("enabled") and str(ca.get("default_action", "")).startswith("deny") \
            and not ranges and not ca.get("rules"):
        problems.add("infgw_cloud_armor.allowed_ip_ranges", "empty and no rules, so the policy would deny every "
                     "request (default_action %s); list the source ranges to allow" % ca.get("default_action"))
    for index, value in enumerate(ranges):
        problem = None if value == "*" else ip_range_problem(value)
        if problem:
            problems.add("infgw_cloud_armor.allowed_ip_ranges[%d]" % index, "%s %s" % (q(value), problem))
    taken = {CLOUD_ARMOR_DEFAULT_PRIORITY: "the default rule"}
    for chunk in range(0, len(ranges), CLOUD_ARMOR_RANGES_PER_RULE):
        taken[CLOUD_ARMOR_ALLOW_PRIORITY + chunk // CLOUD_ARMOR_RANGES_PER_RULE] = "the allow-list of allowed_ip_ranges"
    for index, rule in enumerate(ca.get("rules") or []):
        field = "infgw_cloud_armor.rules[%d]" % index
        priority = as_int(rule.get("priority"))
        if priority is None or not 0 <= priority < CLOUD_ARMOR_DEFAULT_PRIORITY:
            problems.add(field + ".priority", "must be a number from 0 to 2147483646, got %s" % rule.get("priority"))
        elif priority in taken:
            problems.add(field + ".priority", "%d is also the priority of %s" % (priority, taken[priority]))
        else:
            taken[priority] = "infgw_cloud_armor.rules[%d]" % index
        src = rule.get("src_ip_ranges") or []
        if len(src) > CLOUD_ARMOR_RANGES_PER_RULE:
            problems.add(field + ".src_ip_ranges", "%d ranges; Cloud Armor takes at most %d per rule"
                         % (len(src), CLOUD_ARMOR_RANGES_PER_RULE))
        for j, value in enumerate(src):
            problem = None if value == "*" else ip_range_problem(value)
            if problem:
                problems.add("%s.src_ip_ranges[%d]" % (field, j), "%s %s" % (q(value), problem))


def _check_gcp(problems, values, resolved):
    gcp = resolved["infgw_gcp_resolved"]
    if not gcp.get("enabled"):
        return
    for key in ("project", "region", "cluster", "network"):
        if not gcp.get(key):
            problems.add("infgw_gcp." + key, "empty, but infgw_gcp.enabled is true (set it, or infgw_gcp.enabled: "
                         "false to skip the GCP steps)")
    if gcp.get("project") and not _GCP_PROJECT.match(str(gcp["project"])):
        problems.add("infgw_gcp.project", "%s is not a project ID (6 to 30 lowercase letters, digits and -, starting "
                     "with a letter)" % q(gcp["project"]))
    if gcp.get("project_number") and not re.match(r"^[0-9]+$", str(gcp["project_number"])):
        problems.add("infgw_gcp.project_number", "%s is not a project number (digits only)" % q(gcp["project_number"]))
    region = gcp.get("region")
    if region and region_of(region) != region:
        problems.add("infgw_gcp.region", "%s is not a region name (such as us-central1)" % q(region))
        region = None
    cluster_region = region_of(gcp.get("cluster_location"))
    if gcp.get("cluster_location") and cluster_region is None:
        problems.add("infgw_gcp.cluster_location", "%s is not a region or zone name" % q(gcp["cluster_location"]))
    elif region and cluster_region and cluster_region != region:
        problems.add("infgw_gcp.cluster_location", "%s is not in infgw_gcp.region %s, where the regional load "
                     "balancer and its proxy-only subnet must be" % (q(gcp["cluster_location"]), region))
    cluster_region = cluster_region or region
    extra_accelerators = values.get("infgw_extra_accelerators") or []
    extra_machine_types = values.get("infgw_extra_machine_types") or []
    pool_names = []
    for index, np in enumerate(values.get("infgw_nodepools") or []):
        f = "infgw_nodepools[%d]" % index
        if not isinstance(np, dict):
            problems.add(f, "must be a dict of gke_node_pool options")
            continue
        for key in sorted(set(np) - set(NODE_POOL_KEYS)):
            problems.add("%s.%s" % (f, key), "unknown key; known: %s" % ", ".join(NODE_POOL_KEYS))
        name = np.get("name")
        if not is_gcp_name(name, 40):
            problems.add(f + ".name", "%s is not a node pool name (lowercase letters, digits and -, starting with a "
                         "letter, at most 40 characters)" % q(name if name is not None else ""))
        elif name in pool_names:
            problems.add(f + ".name", "%s is listed twice" % q(name))
        pool_names.append(name)
        accelerator = np.get("accelerator")
        count = None
        if accelerator is not None:
            if not isinstance(accelerator, dict):
                problems.add(f + ".accelerator", "must be a dict with type and count")
                accelerator = None
            else:
                count = as_int(accelerator.get("count", 1))
                if count is None or count < 1:
                    problems.add(f + ".accelerator.count", "must be 1 or more, got %s" % accelerator.get("count"))
                if accelerator.get("type") not in set(KNOWN_ACCELERATORS) | set(extra_accelerators):
                    problems.add(f + ".accelerator.type", "unknown accelerator %s (known: %s; add new ones to "
                                 "infgw_extra_accelerators)" % (q(accelerator.get("type")),
                                                                ", ".join(KNOWN_ACCELERATORS + tuple(extra_accelerators))))
                    accelerator = None
        if np.get("machine_type") is not None:
            problems.extend(node_pool_problems(f, np["machine_type"], accelerator and accelerator.get("type"), count,
                                               extra_machine_types, extra_accelerators))
        zones = np.get("node_locations") or []
        for j, zone in enumerate(zones):
            zone_region = region_of(zone)
            if zone_region is None or zone_region == zone:
                problems.add("%s.node_locations[%d]" % (f, j), "%s is not a zone name (such as us-central1-a)" % q(zone))
            elif cluster_region and zone_region != cluster_region:
                problems.add("%s.node_locations[%d]" % (f, j), "%s is not in the cluster's region %s" % (
                    q(zone), cluster_region))
        if len(set(zones)) != len(zones):
            problems.add(f + ".node_locations", "lists a zone twice")
        autoscaling = np.get("autoscaling") or {}
        for key in ("min_node_count", "max_node_count", "total_min_node_count", "total_max_node_count"):
            if key in autoscaling and (as_int(autoscaling[key]) is None or as_int(autoscaling[key]) < 0):
                problems.add("%s.autoscaling.%s" % (f, key), "must be 0 or more, got %s" % autoscaling[key])
        for low, high in (("min_node_count", "max_node_count"), ("total_min_node_count", "total_max_node_count")):
            if as_int(autoscaling.get(low)) is not None and as_int(autoscaling.get(high)) is not None \
                    and as_int(autoscaling[low]) > as_int(autoscaling[high]):
                problems.add(f + ".autoscaling", "%s (%s) is greater than %s (%s)" % (
                    low, autoscaling[low], high, autoscaling[high]))
        for key in ("initial_node_count", "node_count"):
            if key in np and (as_int(np[key]) is None or as_int(np[key]) < 0):
                problems.add("%s.%s" % (f, key), "must be 0 or more, got %s" % np[key])
        if "disk_size_gb" in np and (as_int(np["disk_size_gb"]) is None or as_int(np["disk_size_gb"]) < 10):
            problems.add(f + ".disk_size_gb", "must be at least 10, got %s" % np["disk_size_gb"])

    subnet = resolved["infgw_proxy_subnet_resolved"]
    if subnet.get("enabled"):
        if not is_gcp_name(subnet.get("name")):
            problems.add("infgw_proxy_subnet.name", "%s is not a subnet name" % q(subnet.get("name")))
        cidr = subnet.get("ip_cidr_range")
        problem = ip_range_problem(cidr, strict=True)
        if problem:
            problems.add("infgw_proxy_subnet.ip_cidr_range", "%s %s" % (q(cidr), problem))
        elif ipaddress.ip_network(cidr).version != 4 or not 8 <= ipaddress.ip_network(cidr).prefixlen <= 26:
            problems.add("infgw_proxy_subnet.ip_cidr_range", "%s: a proxy-only subnet is an IPv4 range from /8 to /26 "
                         "(a /23 is recommended)" % q(cidr))

    gateway = resolved["infgw_gateway_resolved"]
    if (gateway.get("tls") or {}).get("mode") == "certificate_manager":
        used = (gateway.get("tls") or {}).get("certificates") or []
        for index, cert in enumerate(values.get("infgw_certificates") or []):
            if cert.get("name") not in used:
                problems.add("infgw_certificates[%d].name" % index, "%s is not used by infgw_gateway.tls.certificates "
                             "(%s)" % (q(cert.get("name")), ", ".join(used)))


def _check_monitoring(problems, monitoring):
    if not _DASHBOARD_ID.match(str(monitoring.get("dashboard_id") or "")):
        problems.add("infgw_monitoring.dashboard_id", "%s is not a dashboard id (1 to %d letters, digits, - and _)"
                     % (q(monitoring.get("dashboard_id")), DASHBOARD_ID_MAX))
    if not _DURATION.match(str(monitoring.get("scrape_interval") or "")):
        problems.add("infgw_monitoring.scrape_interval", "%s is not a duration like 15s or 1m"
                     % q(monitoring.get("scrape_interval")))
    labels = monitoring.get("dashboard_labels")
    if not isinstance(labels, dict):
        problems.add("infgw_monitoring.dashboard_labels", "must be a mapping of label names to strings")
    else:
        for key, value in sorted(labels.items()):
            if not isinstance(value, str):
                problems.add("infgw_monitoring.dashboard_labels.%s" % key, "label values are strings, got %s" % q(value))


def gateway_class_problems(gateway, cluster_classes):
    """The gateway class against the GatewayClasses the cluster has (their names): [] or one message."""
    wanted = gateway.get("class_name")
    if wanted in cluster_classes:
        return []
    shorthand = ["%s (%s)" % (short, name) for short, name in sorted(GATEWAY_CLASS_SHORTHANDS.items())
                 if name in cluster_classes]
    if not cluster_classes:
        have = "the cluster has no GatewayClass (is the Gateway API enabled on it?)"
    else:
        have = "the cluster has: %s" % ", ".join(sorted(cluster_classes))
        if shorthand:
            have += "; shorthands: %s" % ", ".join(shorthand)
    given = gateway.get("class")
    named = q(wanted) if given == wanted else "%s (%s)" % (q(given), wanted)
    return ["infgw_gateway.class: no GatewayClass %s in the cluster; %s" % (named, have)]
