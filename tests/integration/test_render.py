# -*- coding: utf-8 -*-
# Render mode round trip (site.yml -e infgw_render_dir=DIR) on the local environment: the render touches no API
# (it runs with an unreachable API server and Google Cloud endpoint), its files applied with kubectl into a fresh
# namespace and its Google Cloud requests sent to the GCP fake make what site.yml makes: site.yml run on top applies
# nothing, changes no object and creates nothing in Google Cloud.
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from test_site import CPU_MODEL, FIELD_MANAGER, delete_namespace, kget, new_namespace, playbook

pytestmark = [pytest.mark.integration]

# The charts' objects belong to their releases, not to the collection's field manager: written as helm writes them
# (the manager the cloud_armor step takes the GCPBackendPolicy fields over from, as after a helm install).
CHART_FIELD_MANAGER = "helm"
DEAD_ENDPOINT = "http://127.0.0.1:9/"  # the discard port: nothing answers
VOLATILE_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")
VOLATILE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
# set by the API server on a service-account token Secret when a client (the metrics scraper) uses it
VOLATILE_LABELS = ("kubernetes.io/legacy-token-last-used",)


def render(local_env, tmp_path, namespace, out, extra):
    """site.yml in render mode with an API server and a Google Cloud endpoint that do not answer."""
    nowhere = str(tmp_path / "no-such-kubeconfig")
    dead = {"KUBECONFIG": nowhere, "K8S_AUTH_KUBECONFIG": nowhere, "INFGW_GCP_API_ENDPOINT": DEAD_ENDPOINT + "{service}/"}
    return playbook(local_env, tmp_path, "site.yml", namespace, "-e", "infgw_render_dir=%s" % out, extra=extra,
                    env=dead)


def rendered_objects(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def apply_rendered(local_env, host_dir: Path):
    """What a GitOps tool does with the render: each file in order; the steps' files server-side with the
    collection's field manager, the charts' as helm install writes objects (created by its field manager); CRDs waited
    for before what uses them."""
    for path in sorted(host_dir.glob("*.yaml")):
        if "-helm-" in path.name:
            # created as helm install creates them (an Update by helm); not `kubectl apply`, whose last-applied
            # annotation makes a later server-side apply of the same object migrate helm's fields to its manager
            local_env.kubectl("create", "--field-manager", CHART_FIELD_MANAGER, "-f", str(path))
        else:
            local_env.kubectl("apply", "--server-side", "--field-manager", FIELD_MANAGER, "-f", str(path))
        crds = [o["metadata"]["name"] for o in rendered_objects(path) if o["kind"] == "CustomResourceDefinition"]
        if crds:
            local_env.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                              *["crd/%s" % name for name in crds])


def send_rendered_requests(local_env, host_dir: Path) -> list[str]:
    """Every rendered Google Cloud request, to the fake (URLs rebased on its endpoint); an IAM binding is added to
    the policy as read (the render's note). A create of something that exists answers 409: listed."""
    existed = []
    for path in sorted((host_dir / "gcp").glob("*.json")):
        rendered = json.loads(path.read_text())
        for request in rendered["requests"]:
            assert request["url"].startswith(DEAD_ENDPOINT), request["url"]
            path_part = "/" + request["url"][len(DEAD_ENDPOINT):]
            body = request["body"]
            if request["action"] == "set_iam_policy":
                policy = local_env.gcp("POST", path_part.replace(":setIamPolicy", ":getIamPolicy"), {}).json()
                policy.setdefault("bindings", []).extend(body["policy"]["bindings"])
                body = {"policy": policy}
            if request.get("query"):
                path_part += "?" + "&".join("%s=%s" % item for item in request["query"].items())
            answer = local_env.gcp(request["method"], path_part, body)
            if answer.status_code == 409:
                existed.append(rendered["resource"])
                continue
            assert answer.status_code == 200, (path.name, answer.status_code, answer.text)
            wait_operation(local_env, path_part.split("/")[1], answer.json())
    return existed


def wait_operation(local_env, service, operation, timeout=60):
    """Until the operation a create answered is done (container: status DONE; compute: status DONE; longrunning:
    done)."""
    deadline = time.monotonic() + timeout
    while True:
        if service == "container":
            return local_env.gcp_wait(operation, timeout)
        if operation.get("status") == "DONE" or operation.get("done"):
            assert "error" not in operation, operation
            return operation
        if service == "compute":
            url = operation["selfLink"]
            path = "/compute/" + url.split("/compute/", 1)[1] if "/compute/" in url else url
        elif service == "certificatemanager":
            path = "/certificatemanager/v1/" + operation["name"]
        else:
            return operation
        assert time.monotonic() < deadline, operation
        time.sleep(0.2)
        operation = local_env.gcp("GET", path).json()


def normalized(obj: dict) -> dict:
    obj = json.loads(json.dumps(obj))
    obj.pop("status", None)
    meta = obj["metadata"]
    for key in VOLATILE_METADATA:
        meta.pop(key, None)
    for key in VOLATILE_ANNOTATIONS:
        (meta.get("annotations") or {}).pop(key, None)
    for key in VOLATILE_LABELS:
        (meta.get("labels") or {}).pop(key, None)
    for key in ("annotations", "labels"):
        if meta.get(key) == {}:
            meta.pop(key)
    return obj


def live(local_env, objects: list[dict]) -> dict:
    out = {}
    for obj in objects:
        kind = "%s.%s" % (obj["kind"].lower(), obj["apiVersion"].split("/")[0]) if "/" in obj["apiVersion"] \
            else obj["kind"].lower()
        meta = obj["metadata"]
        found = kget(local_env, kind, meta.get("namespace"), meta["name"])
        out[(obj["kind"], meta.get("namespace"), meta["name"])] = normalized(found)
    return out


def contains(big, small) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(contains(b, s) for b, s in zip(big, small))
    return big == small or str(big) == str(small)


def test_render_applied_with_kubectl_is_what_site_makes(local_env, tmp_path):
    namespace = new_namespace("render")
    out = tmp_path / "out"
    extra = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com")]}
    started = time.monotonic()
    try:
        run = render(local_env, tmp_path, namespace, out, extra)
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] == 0, run.changed_tasks()
        host_dir = out / "localhost"
        names = sorted(p.name for p in host_dir.iterdir())
        assert names[0].startswith("0") and "gcp" in names
        steps = [n for n in names if n.endswith(".yaml")]
        assert [n.split("-", 1)[1] for n in steps] == [
            "infgw-vllm-model.yaml", "infgw-gateway.yaml", "helm-bbr.yaml", "infgw-bbr.yaml",
            "inference_pool-customresourcedefinition.yaml", "helm-vllm-tiny.yaml", "infgw-inference-pool.yaml",
            "hpa_metrics-clusterrolebinding.yaml", "hpa_metrics-operatorconfig.yaml", "infgw-monitoring.yaml",
            "cloud_armor-gcpbackendpolicy.yaml"], steps
        gcp = sorted(p.name for p in (host_dir / "gcp").iterdir())
        assert [n.split("-", 1)[1] for n in gcp] == [
            "gke_node_pool-gpupool.json", "compute_subnetwork-proxy-only-subnet.json",
            "certificate_manager_certificate-uc1-wildcard.json",
            "project_iam_member-roles-monitoring.viewer.json",
            "monitoring_dashboard-infgw-%s-%s.json" % (local_env.gcp_env["INFGW_LOCAL_GCP_CLUSTER"], namespace)], gcp
        assert kget(local_env, "namespace", name=namespace, check=False) is None  # nothing was applied
        release = json.loads((host_dir / steps[5].replace(".yaml", ".release.json")).read_text())
        assert release["chart"].endswith("@" + release["digest"]) and release["digest"].startswith("sha256:")

        apply_rendered(local_env, host_dir)
        existed = send_rendered_requests(local_env, host_dir)
        objects = [o for p in sorted(host_dir.glob("*.yaml")) for o in rendered_objects(p)]
        applied = live(local_env, objects)
        for obj in objects:  # every rendered field is live as rendered
            key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
            assert contains(applied[key], normalized(obj)), key
        print("\n[render] %d objects in %d files; Google Cloud resources that existed: %s"
              % (len(objects), len(steps), existed))

        site = playbook(local_env, tmp_path, "site.yml", namespace, extra=extra)
        assert site.rc == 0, site.failures()
        applies = {label for _name, result in site.results() if "reasons" in result for label in result["reasons"]}
        assert applies == set(), applies  # no Kubernetes step found anything to apply
        changed = site.changed_tasks()
        # the only changes: helm records the releases, adopting the objects applied from the render, and the
        # cloud_armor step takes its fields of the GCPBackendPolicies over from helm (managedFields, no value)
        assert set(changed) <= {"Install or upgrade the body-based-routing chart",
                                "Install or upgrade one inferencepool release per model",
                                "Converge timeout, logging and security policy of the pools' GCPBackendPolicies"}, \
            changed
        taken = [r for name, r in site.results() if name.startswith("Converge timeout, logging")][0]
        assert taken["created"] == taken["updated"] == taken["pruned"] == [], taken["msg"]
        assert live(local_env, objects) == applied  # site.yml changed no object
        print("[render] render, apply, site.yml on top: %.1fs (site.yml %.1fs, changed: %s)"
              % (time.monotonic() - started, site.seconds, changed))
    finally:
        if kget(local_env, "namespace", name=namespace, check=False) is not None:
            playbook(local_env, tmp_path, "playbooks/teardown.yml", namespace, extra=extra)
        delete_namespace(local_env, namespace)
