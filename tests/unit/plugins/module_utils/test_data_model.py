# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_data_model.py and _machine_types.py: resolution (against what the Jinja
# templates it replaced resolved, recorded in fixtures/data_model/) and validation, one case per kind of bad input.
from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _data_model as dm
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _machine_types as mt

REPO = Path(__file__).resolve().parents[4]
FIXTURES = Path(__file__).parent / "fixtures" / "data_model"
PROFILES = ["v0.4.0", "v1.1.0"]


def load_defaults():
    """roles/common/defaults/main.yml as Ansible templates it with GCP_PROJECT=my-project."""
    data = yaml.safe_load((REPO / "roles/common/defaults/main.yml").read_text())
    data["infgw_gcp"]["project"] = "my-project"
    data["infgw_hf_token"] = "hf_x"
    return data


DEFAULTS = load_defaults()


def profile(name):
    return yaml.safe_load((REPO / ("roles/common/vars/profiles/%s.yml" % name)).read_text())["infgw_profile_data"]


def values_of(**overrides):
    """The data model's variables: the role defaults, with top-level variables replaced (as an inventory does)."""
    values = copy.deepcopy(DEFAULTS)
    values.update(copy.deepcopy(overrides))
    return values


def resolve(values):
    name = values.get("infgw_profile")
    return dm.resolve(values, DEFAULTS, profile(name) if name in PROFILES else None)


def problems(hf_token_set=True, run_tags=None, skip_tags=None, **overrides):
    values = values_of(**overrides)
    return dm.validate(values, resolve(values), PROFILES, hf_token_set=hf_token_set, run_tags=run_tags,
                       skip_tags=skip_tags)


def model(**overrides):
    return dict({"name": "gemma-3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com"}, **overrides)


def pool(**overrides):
    return dict({"name": "gpupool", "machine_type": "g2-standard-8",
                 "accelerator": {"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"},
                 "node_locations": ["us-central1-a"], "autoscaling": {"total_min_node_count": 0,
                                                                      "total_max_node_count": 5}}, **overrides)


# --------------------------------------------------------------------------- resolution

@pytest.mark.parametrize("case", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_resolution_matches_what_the_jinja_templates_resolved(case):
    """The facts the roles read keep their shape and values (fixtures recorded from the templates this replaced)."""
    fixture = json.loads((FIXTURES / ("%s.json" % case)).read_text())
    inputs = {k: v for k, v in fixture["values"].items() if not k.startswith("case_")}
    values = values_of(**inputs)
    facts = resolve(values)
    expected = fixture["expected"]
    for key in ("infgw_profile_data", "infgw_models_resolved", "infgw_gateway_resolved", "infgw_chat_ui_resolved",
                "infgw_cloud_armor_resolved", "infgw_gcp_resolved", "infgw_proxy_subnet_resolved",
                "infgw_metrics_adapter_principal"):
        assert facts[key] == expected[key], key
    assert dm.validate(values, facts, PROFILES) == []
    releases = dm.pool_releases(facts["infgw_models_resolved"], facts["infgw_profile_data"],
                                fixture["values"].get("case_chart_values"),
                                fixture["values"].get("case_values_by_model"),
                                "inference-gateway-sa-metrics-reader-secret", values["infgw_namespace"])
    assert releases == [{k: v for k, v in r.items() if k != "model"} for r in expected["releases"]]


def test_an_inventory_states_only_the_keys_that_differ():
    """infgw_model_defaults of an inventory is merged over the role's, as infgw_gateway and the others are."""
    values = values_of(infgw_model_defaults={"env": {"VLLM_LOGGING_LEVEL": "DEBUG"}}, infgw_gcp={"cluster": "c2"})
    facts = resolve(values)
    first = facts["infgw_models_resolved"][0]
    assert first["env"] == {"VLLM_LOGGING_LEVEL": "DEBUG"}
    assert first["image"] == DEFAULTS["infgw_model_defaults"]["image"] and first["port"] == 8000
    assert facts["infgw_gcp_resolved"]["project"] == "my-project"  # the default's GCP_PROJECT, not ""
    assert facts["infgw_gcp_resolved"]["cluster"] == "c2"
    assert dm.validate(values, facts, PROFILES) == []


def test_defaults_have_one_place():
    """Every default of the data model is in defaults/main.yml; argument_specs shows the same values."""
    specs = yaml.safe_load((REPO / "roles/common/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    raw = yaml.safe_load((REPO / "roles/common/defaults/main.yml").read_text())
    assert set(options) == set(raw)
    for name, spec in options.items():
        if "default" in spec:
            assert spec["default"] == raw[name], name
    common_vars = yaml.safe_load((REPO / "roles/common/vars/main.yml").read_text())
    assert not set(common_vars) & set(raw)
    assert not (REPO / "roles/common/templates").exists()


def test_flat_choices_blank_keep_the_data_model():
    facts = resolve(values_of(infgw_select_models=None, infgw_replicas="", infgw_autoscaling_enabled=None,
                              infgw_gateway_class="", infgw_cloud_armor_enabled=""))
    assert [m["name"] for m in facts["infgw_models_resolved"]] == ["gemma-3-1b", "gemma-3-4b", "llama-3-3b"]
    assert facts["infgw_gateway_resolved"]["class_name"] == "gke-l7-regional-external-managed"
    assert [m["replicas_managed_by_hpa"] for m in facts["infgw_models_resolved"]] == [True, True, False]


def test_pool_releases_set_port_and_epp_replicas_last():
    facts = resolve(values_of(infgw_models=[model(port=9000, pool={"epp_replicas": 0})]))
    (release,) = dm.pool_releases(facts["infgw_models_resolved"], facts["infgw_profile_data"],
                                  values_by_model={"gemma-3-1b": {"inferenceExtension": {"replicas": 7}}})
    assert release["name"] == "vllm-gemma-3-1b"
    assert release["values"]["inferencePool"]["modelServers"]["matchLabels"] == {"app": "vllm-gemma-3-1b"}
    assert release["set_values"][-1] == {"value": "inferenceExtension.replicas=0", "value_type": "raw"}
    assert {"value": "inferencePool.targetPortNumber=9000", "value_type": "raw"} in release["set_values"]


# --------------------------------------------------------------------------- primitives

@pytest.mark.parametrize("text, value", [
    ("25Gi", 25 * 2 ** 30), ("500m", Decimal("0.5")), ("6", 6), ("1e3", 1000), ("1.5G", Decimal("1.5e9")),
    (".5", Decimal("0.5")), (3, 3), ("-1", -1),
    ("25 GB", None), ("25GB", None), ("", None), ("Gi", None), ("1.2.3", None), (True, None), ("1Ki ", None),
])
def test_parse_quantity_as_the_api_server(text, value):
    assert dm.parse_quantity(text) == value


@pytest.mark.parametrize("check, good, bad", [
    (dm.is_dns1123_label, ["a", "a-1", "1a", "x" * 63], ["A", "-a", "a-", "a_b", "x" * 64, "", None, "a.b"]),
    (dm.is_dns1123_subdomain, ["a.b-c", "wildcard"], ["", "A.b", "a..b", "a." * 130]),
    (dm.is_env_var_name, ["A_B", "a.b-c", "1X"], ["", "A=B", "A\tB"]),
    (dm.is_image, ["vllm/vllm-openai:v0.8.5", "r.io/a@sha256:00"], ["", " ", "a b", None]),
    (dm.is_gcp_name, ["gpupool", "a-1"], ["1a", "A", "a-", "a" * 64]),
])
def test_name_checks(check, good, bad):
    assert all(check(v) for v in good)
    assert not any(check(v) for v in bad)


def test_region_of():
    assert dm.region_of("us-central1") == "us-central1"
    assert dm.region_of("us-central1-a") == "us-central1"
    assert dm.region_of("europe-west4-b") == "europe-west4"
    assert dm.region_of("uscentral1") is None and dm.region_of("us-central1-a-b") is None


def test_machine_type_table():
    assert mt.node_pool_problems("p", "g2-standard-8", "nvidia-l4", 1) == []
    assert mt.node_pool_problems("p", "g2-standard-24", "nvidia-l4", 2) == []
    assert mt.node_pool_problems("p", "n1-standard-8", "nvidia-tesla-t4", 4) == []
    assert mt.node_pool_problems("p", "n1-custom-8-32768", "nvidia-tesla-v100", 8) == []
    assert mt.node_pool_problems("p", "e2-standard-4", None, None) == []
    assert mt.node_pool_problems("p", "a3-highgpu-8g", "nvidia-h100-80gb", 8) == []
    assert mt.node_pool_problems("p", "a3-highgpu-9g", "nvidia-h100-80gb", 8) == [
        'p.machine_type: unknown machine type "a3-highgpu-9g" (add a machine type this table does not know yet to '
        'infgw_extra_machine_types)']
    assert "comes with 1 x nvidia-l4, not 2 x nvidia-l4" in mt.node_pool_problems("p", "g2-standard-8", "nvidia-l4", 2)[0]
    assert "attaches to N1 machine types only" in mt.node_pool_problems("p", "n2-standard-8", "nvidia-tesla-t4", 1)[0]
    assert "1 or 2 or 4 at a time, not 3" in mt.node_pool_problems("p", "n1-standard-8", "nvidia-tesla-t4", 3)[0]
    assert "comes only with its own machine types (a3-megagpu-8g)" in mt.node_pool_problems(
        "p", "n1-standard-8", "nvidia-h100-mega-80gb", 8)[0]
    # the escape hatches: what they name is not checked
    assert mt.node_pool_problems("p", "z9-future-8", "nvidia-z1", 1, extra_machine_types=["z9-future-8"]) == []
    assert mt.node_pool_problems("p", "g2-standard-8", "nvidia-l5", 1, extra_accelerators=["nvidia-l5"]) == []
    assert set(mt.KNOWN_ACCELERATORS) >= {"nvidia-l4", "nvidia-tesla-t4", "nvidia-h100-80gb", "nvidia-b200"}


# --------------------------------------------------------------------------- bad input, one case per kind

BAD = [
    # (id, overrides, the message: field first)
    # -- Kubernetes: names, quantities, counts, ports, images as the API server validates them
    ("namespace-not-dns", {"infgw_namespace": "Bad_Namespace"}, 'infgw_namespace: "Bad_Namespace" is not a DNS-1123 label'),
    ("model-name-not-dns", {"infgw_models": [model(name="Gemma_3.1B")]}, 'infgw_models[0].name: "Gemma_3.1B"'),
    ("model-name-too-long", {"infgw_models": [model(name="m" * 55)]}, "at most 54 characters"),
    ("short-name-not-dns", {"infgw_models": [model(short_name="Short")]}, 'infgw_models[0].short_name: "Short"'),
    ("memory-with-space", {"infgw_models": [model(resources={"memory": "25 GB"})]},
     'infgw_models[0].resources.memory: "25 GB" is not a Kubernetes quantity'),
    ("cpu-bad-suffix", {"infgw_models": [model(resources={"cpu": "6 cores"})]}, "infgw_models[0].resources.cpu"),
    ("storage-negative", {"infgw_model_defaults": {"resources": {"ephemeral_storage": "-1Gi"}}},
     "infgw_models[0].resources.ephemeral_storage: must not be negative"),
    ("replicas-negative", {"infgw_models": [model(replicas=-1)]}, "infgw_models[0].replicas: must be 0 or more"),
    ("gpus-negative", {"infgw_models": [model(gpus=-1)]}, "infgw_models[0].gpus: must be 0 or more"),
    ("epp-replicas-negative", {"infgw_models": [model(pool={"epp_replicas": -1})]},
     "infgw_models[0].pool.epp_replicas: must be 0 or more, got -1"),
    ("port-out-of-range", {"infgw_models": [model(port=70000)]}, "infgw_models[0].port: must be a port number"),
    ("startup-budget-zero", {"infgw_models": [model(startup_budget_seconds=0)]}, "infgw_models[0].startup_budget_seconds"),
    ("image-empty", {"infgw_models": [model(image="")]}, 'infgw_models[0].image: "" is not a container image'),
    ("chat-ui-image-empty", {"infgw_chat_ui": {"enabled": True, "image": " "}}, "infgw_chat_ui.image"),
    ("env-name-with-equals", {"infgw_models": [model(env={"A=B": "x"})]}, 'infgw_models[0].env: "A=B"'),
    ("model-id-empty", {"infgw_models": [model(model="")]}, "infgw_models[0].model: empty"),
    ("hf-secret-name-bad", {"infgw_hf_secret_name": "HF Secret"}, "infgw_hf_secret_name"),
    ("tls-secret-name-empty", {"infgw_gateway": {"tls": {"mode": "secret", "certificates": [""]}}},
     'infgw_gateway.tls.certificates[0]: "" is not a TLS Secret name'),
    ("certificate-name-bad", {"infgw_gateway": {"tls": {"mode": "certificate_manager", "certificates": ["Wild_Card"]}}},
     'infgw_gateway.tls.certificates[0]: "Wild_Card" is not a Certificate Manager certificate name'),
    ("gateway-class-not-a-name", {"infgw_gateway_class": "GKE L7"}, 'infgw_gateway.class: "GKE L7"'),
    ("gateway-address-not-ip", {"infgw_gateway": {"addresses": [{"type": "IPAddress", "value": "10.0.0.300"}]}},
     "infgw_gateway.addresses[0].value"),
    ("model-name-duplicate", {"infgw_models": [model(), model(model="org/b", host="x.example.com")]},
     'infgw_models[1].name: duplicate model name "gemma-3-1b" (also infgw_models[0])'),
    ("tls-secret-without-certificate", {"infgw_gateway": {"tls": {"mode": "secret", "certificates": []}}},
     "infgw_gateway.tls.certificates: empty, but infgw_gateway.tls.mode is secret (name the TLS Secrets)"),
    ("host-not-dns", {"infgw_models": [model(host="1b_example.com")]}, "infgw_models[0].host"),
    ("objective-not-dns", {"infgw_models": [model(objective={"name": "Small"})]}, "infgw_models[0].objective.name"),
    ("lora-adapter-name-with-space", {"infgw_models": [model(lora_adapters=[{"name": "my adapter", "path": "o/r"}])]},
     "infgw_models[0].lora_adapters[0].name"),
    ("flat-replicas-negative", {"infgw_replicas": -2}, "infgw_replicas: must be 0 or more"),
    ("scale-replicas-negative", {"infgw_scale_replicas": -1}, "infgw_scale_replicas: must be 0 or more"),
    ("profile-unknown", {"infgw_profile": "v9.9.9"}, 'infgw_profile: unknown profile "v9.9.9"; known: v0.4.0, v1.1.0'),
    ("select-unknown-model", {"infgw_select_models": "gemma-3-1b,nope"}, 'infgw_select_models: "nope"'),
    # -- Google Cloud values as Google validates them
    ("cloud-armor-cidr-33", {"infgw_cloud_armor": {"enabled": True, "allowed_ip_ranges": ["10.0.0.0/33"]}},
     'infgw_cloud_armor.allowed_ip_ranges[0]: "10.0.0.0/33" is not an IP range'),
    ("cloud-armor-rule-cidr", {"infgw_cloud_armor": {"enabled": True, "allowed_ip_ranges": ["1.2.3.4"],
                                                     "rules": [{"priority": 10, "action": "allow",
                                                                "src_ip_ranges": ["300.1.1.1/8"]}]}},
     "infgw_cloud_armor.rules[0].src_ip_ranges[0]"),
    ("cloud-armor-rule-too-many-ranges", {"infgw_cloud_armor": {"enabled": True, "rules": [
        {"priority": 10, "action": "allow", "src_ip_ranges": ["10.0.%d.0/24" % i for i in range(11)]}]}},
     "infgw_cloud_armor.rules[0].src_ip_ranges: 11 ranges; Cloud Armor takes at most 10 per rule"),
    ("cloud-armor-policy-name", {"infgw_cloud_armor": {"enabled": True, "policy": "Policy 1",
                                                       "allowed_ip_ranges": ["1.2.3.4"]}}, "infgw_cloud_armor.policy"),
    ("proxy-subnet-cidr-33", {"infgw_proxy_subnet": {"ip_cidr_range": "10.0.0.0/33"}},
     'infgw_proxy_subnet.ip_cidr_range: "10.0.0.0/33" is not an IP range'),
    ("proxy-subnet-host-bits", {"infgw_proxy_subnet": {"ip_cidr_range": "10.129.0.1/23"}},
     "infgw_proxy_subnet.ip_cidr_range"),
    ("proxy-subnet-too-small", {"infgw_proxy_subnet": {"ip_cidr_range": "10.129.0.0/28"}}, "from /8 to /26"),
    ("nodepool-zone-other-region", {"infgw_nodepools": [pool(node_locations=["us-central1-a", "europe-west4-a"])]},
     'infgw_nodepools[0].node_locations[1]: "europe-west4-a" is not in the cluster\'s region us-central1'),
    ("nodepool-zone-not-a-zone", {"infgw_nodepools": [pool(node_locations=["us-central1"])]},
     'infgw_nodepools[0].node_locations[0]: "us-central1" is not a zone name'),
    ("nodepool-machine-type-unknown", {"infgw_nodepools": [pool(machine_type="g2-standard-7")]},
     'infgw_nodepools[0].machine_type: unknown machine type "g2-standard-7"'),
    ("nodepool-gpu-not-of-machine", {"infgw_nodepools": [pool(accelerator={"type": "nvidia-tesla-t4", "count": 1})]},
     "infgw_nodepools[0].accelerator: g2-standard-8 comes with 1 x nvidia-l4, not 1 x nvidia-tesla-t4"),
    ("nodepool-accelerator-unknown", {"infgw_nodepools": [pool(accelerator={"type": "nvidia-l5", "count": 1})]},
     'infgw_nodepools[0].accelerator.type: unknown accelerator "nvidia-l5"'),
    ("nodepool-name-too-long", {"infgw_nodepools": [pool(name="p" * 41)]}, "infgw_nodepools[0].name"),
    ("nodepool-key-typo", {"infgw_nodepools": [pool(machinetype="g2-standard-8")]},
     "infgw_nodepools[0].machinetype: unknown key"),
    ("nodepool-min-gt-max",
     {"infgw_nodepools": [pool(autoscaling={"total_min_node_count": 4, "total_max_node_count": 2})]},
     "infgw_nodepools[0].autoscaling: total_min_node_count (4) is greater than total_max_node_count (2)"),
    ("nodepool-count-negative", {"infgw_nodepools": [pool(initial_node_count=-1)]},
     "infgw_nodepools[0].initial_node_count: must be 0 or more"),
    ("cluster-outside-region", {"infgw_gcp": {"project": "my-project", "cluster_location": "europe-west4-a"}},
     'infgw_gcp.cluster_location: "europe-west4-a" is not in infgw_gcp.region us-central1'),
    ("region-not-a-region", {"infgw_gcp": {"project": "my-project", "region": "us-central"}}, "infgw_gcp.region"),
    ("project-id-bad", {"infgw_gcp": {"project": "My Project"}}, 'infgw_gcp.project: "My Project" is not a project ID'),
    ("project-missing", {"infgw_gcp": {"project": ""}}, "infgw_gcp.project: empty, but infgw_gcp.enabled is true"),
    ("model-accelerator-unknown", {"infgw_models": [model(accelerator="nvidia-gtx-1080")]},
     'infgw_models[0].accelerator: unknown accelerator "nvidia-gtx-1080"'),
    # -- values that pass every schema but cannot work
    ("kv-cache-target-above-100", {"infgw_models": [model(autoscaling={"enabled": True, "min": 1, "max": 2,
                                                                       "target_kv_cache_utilization": "1500m"})]},
     "infgw_models[0].autoscaling.target_kv_cache_utilization: 1500m is 150% of the KV cache"),
    ("kv-cache-target-zero", {"infgw_models": [model(autoscaling={"target_kv_cache_utilization": "0"})]},
     "infgw_models[0].autoscaling.target_kv_cache_utilization: 0 is 0%"),
    ("lora-named-like-another-model", {"infgw_models": [
        model(), model(name="b", model="org/b", host="b.example.com",
                       lora_adapters=[{"name": "google/gemma-3-1b-it", "path": "org/x"}])]},
     'infgw_models[1].lora_adapters[0].name: "google/gemma-3-1b-it" is also served by infgw_models[0].model'),
    ("lora-on-two-models", {"infgw_models": [
        model(lora_adapters=[{"name": "sql", "path": "o/a"}]),
        model(name="b", model="org/b", host="b.example.com", lora_adapters=[{"name": "sql", "path": "o/b"}])]},
     'infgw_models[1].lora_adapters[0].name: "sql" is also served by infgw_models[0].lora_adapters[0].name'),
    ("same-model-twice", {"infgw_models": [model(), model(name="b", host="b.example.com")]},
     'infgw_models[1].model: "google/gemma-3-1b-it" is also served by infgw_models[0].model'),
    ("two-models-one-host", {"infgw_models": [model(), model(name="b", model="org/b")]},
     'infgw_models[1].host: duplicate hostname "1b.example.com" (also infgw_models[0].host): two models on one host'),
    ("host-of-model-and-gateway", {"infgw_models": [model(host="api.example.com")]},
     "infgw_gateway.hosts.api: duplicate hostname"),
    ("autoscaling-min-gt-max", {"infgw_models": [model(autoscaling={"enabled": True, "min": 4, "max": 2})]},
     "infgw_models[0].autoscaling: min (4) is greater than max (2)"),
    ("autoscaling-min-zero", {"infgw_models": [model(autoscaling={"enabled": True, "min": 0, "max": 2})]},
     "infgw_models[0].autoscaling.min: must be at least 1"),
    ("two-default-backends", {"infgw_models": [model(default_backend=True),
                                               model(name="b", model="org/b", host="b.example.com",
                                                     default_backend=True)]},
     "infgw_models[1].default_backend: only one model can be the default backend"),
    ("duplicate-objective", {"infgw_models": [model(objective={"name": "o"}),
                                              model(name="b", model="org/b", host="b.example.com",
                                                    objective={"name": "o"})]},
     'infgw_models[1].objective.name: duplicate objective "o"'),
    ("https-without-tls", {"infgw_gateway": {"tls": {"mode": "none"}}}, "infgw_gateway.tls.mode: none"),
    ("no-listener", {"infgw_gateway": {"http": False, "https": False}}, "infgw_gateway: http and https are both false"),
    ("redirect-without-http", {"infgw_gateway": {"http": False, "redirect_http_to_https": True}},
     "infgw_gateway.redirect_http_to_https: needs both listeners"),
    ("chat-ui-unknown-model", {"infgw_chat_ui": {"enabled": True, "model": "nope"}}, 'infgw_chat_ui.model: "nope"'),
    ("cloud-armor-unknown-pool", {"infgw_cloud_armor": {"enabled": True, "pools": ["nope"],
                                                        "allowed_ip_ranges": ["1.2.3.4"]}},
     'infgw_cloud_armor.pools: "nope"'),
    ("cloud-armor-denies-everything", {"infgw_cloud_armor": {"enabled": True}},
     "infgw_cloud_armor.allowed_ip_ranges: empty and no rules, so the policy would deny every request"),
    ("cloud-armor-rule-priority-taken", {"infgw_cloud_armor": {"enabled": True, "allowed_ip_ranges": ["1.2.3.4"],
                                                               "rules": [{"priority": 1000, "action": "allow",
                                                                          "src_ip_ranges": ["5.6.7.8"]}]}},
     "infgw_cloud_armor.rules[0].priority: 1000 is also the priority of the allow-list of allowed_ip_ranges"),
    ("certificate-not-used", {"infgw_certificates": [{"name": "other", "certificate_file": "a", "private_key_file": "b"}]},
     'infgw_certificates[0].name: "other" is not used by infgw_gateway.tls.certificates'),
]


@pytest.mark.parametrize("overrides, expected", [pytest.param(o, e, id=i) for i, o, e in BAD])
def test_bad_input_is_named_by_its_field(overrides, expected):
    found = problems(**overrides)
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("inventory", ["local", "gke", "kind"])
def test_the_walkthrough_and_the_shipped_inventories_are_valid(inventory):
    assert problems() == []
    data = yaml.safe_load((REPO / ("inventories/%s/group_vars/all/main.yml" % inventory)).read_text())
    data = {k: v for k, v in data.items() if k.startswith("infgw_") and "{{" not in json.dumps(v)}
    if inventory == "local":  # what env.sh exports
        data["infgw_gcp"] = dict(project="local-project", project_number="123456789012", region="us-central1",
                                 cluster="local-cluster")
    assert problems(**data) == []


def test_every_problem_is_reported_at_once():
    found = problems(infgw_namespace="Bad", infgw_models=[model(resources={"memory": "25 GB"}, image="",
                                                                pool={"epp_replicas": -1})],
                     infgw_proxy_subnet={"ip_cidr_range": "10.0.0.0/33"})
    fields = [line.split(":")[0] for line in found]
    assert fields == ["infgw_namespace", "infgw_models[0].image", "infgw_models[0].resources.memory",
                      "infgw_models[0].pool.epp_replicas", "infgw_proxy_subnet.ip_cidr_range"], found


def test_hf_token_needed_only_when_models_are_deployed():
    assert problems(hf_token_set=False)[0].startswith("infgw_hf_token: empty, but 3 model(s) are deployed")
    assert problems(hf_token_set=False, run_tags=["gateway"]) == []
    assert problems(hf_token_set=False, skip_tags=["vllm_model"]) == []
    assert problems(hf_token_set=False, infgw_require_hf_token=False) == []


def test_gcp_checks_only_when_gcp_is_enabled():
    assert problems(infgw_gcp={"enabled": False, "project": ""},
                    infgw_nodepools=[pool(machine_type="nope")]) == []


def test_gateway_class_against_the_cluster():
    gateway = resolve(values_of(infgw_gateway={"class": "gke-l7-regional-external-manged"}))["infgw_gateway_resolved"]
    classes = ["gke-l7-global-external-managed", "gke-l7-regional-external-managed", "gke-l7-rilb"]
    (message,) = dm.gateway_class_problems(gateway, classes)
    assert message.startswith('infgw_gateway.class: no GatewayClass "gke-l7-regional-external-manged" in the cluster')
    assert "the cluster has: gke-l7-global-external-managed, gke-l7-regional-external-managed, gke-l7-rilb" in message
    assert "shorthands: external (gke-l7-regional-external-managed), internal (gke-l7-rilb)" in message
    internal = resolve(values_of(infgw_gateway_class="internal"))["infgw_gateway_resolved"]
    assert dm.gateway_class_problems(internal, classes) == []
    assert 'no GatewayClass "internal" (gke-l7-rilb)' in dm.gateway_class_problems(internal, classes[:1])[0]
    assert "the cluster has no GatewayClass (is the Gateway API enabled on it?)" in dm.gateway_class_problems(
        internal, [])[0]
