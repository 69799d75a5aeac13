# -*- coding: utf-8 -*-
# Many clusters in one run: site.yml converges every host of the inventory group infgw_clusters, one host per
# cluster, in parallel (forks). The second cluster is the local environment's `localenv.py up-second`: its own
# kube-apiserver on the same etcd (another --etcd-prefix), controller-manager, scheduler, kwok and GKE status
# simulator; every pod Ready at once (no pod runner, no load balancer), and no Google Cloud side of its own (the GCP
# fake has one cluster), so its host leaves Google Cloud out (infgw_gcp.enabled: false) and the custom metrics
# adapter, which needs a real process.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_site import CPU_MODEL, REPO, delete_namespace, kget, new_namespace, playbook

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def second_kubeconfig(local_env) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "hack" / "localcluster" / "localenv.py"), "up-second"],
                          env=local_env.env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = Path(local_env.kubeconfig).parent / "kubeconfig-second"
    assert path.exists(), proc.stdout + proc.stderr
    return str(path)


def kubectl_in(local_env, kubeconfig, *args):
    return subprocess.run([local_env.bin_dir + "/kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True,
                          text=True, env=local_env.env, check=False)


def deployments(local_env, kubeconfig, namespace) -> set[str]:
    """The model servers' Deployments in a cluster."""
    proc = kubectl_in(local_env, kubeconfig, "-n", namespace, "get", "deployments", "-o", "json",
                      "-l", "app.kubernetes.io/component=model-server")
    if proc.returncode != 0:
        return set()
    return {d["metadata"]["name"] for d in json.loads(proc.stdout)["items"]}


def host_failures(run) -> str:
    """Every host's failed tasks and their messages (the run's output tail when it is not JSON)."""
    if run.data is None:
        return run.stdout[-4000:] + run.stderr[-4000:]
    return "\n".join("%s: %s: %s" % (host, task["task"]["name"], result.get("msg"))
                     for play in run.data["plays"] for task in play["tasks"]
                     for host, result in task["hosts"].items() if result.get("failed")) or run.stderr[-4000:]


def inventory(tmp_path, local_env, second, two_models):
    """Two clusters: `one` the environment's (with its Google Cloud side), `two` the second cluster."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hosts = {
        "one": dict(local, infgw_k8s_auth={"kubeconfig": local_env.kubeconfig},
                    infgw_models=[dict(CPU_MODEL, name="tiny", host="tiny.example.com")]),
        # no pod runner there, so no custom metrics adapter can become Available: its HPAs stay without a metric
        "two": dict(local, infgw_k8s_auth={"kubeconfig": second}, infgw_gcp={"enabled": False},
                    gateway_probes=[], infgw_models=two_models, hpa_metrics_adapter_enabled=False),
    }
    path = tmp_path / ("clusters-%d.yml" % len(list(tmp_path.glob("clusters-*.yml"))))
    path.write_text(yaml.safe_dump({"all": {"children": {"infgw_clusters": {"hosts": hosts}}}}))
    # the local inventory's group variables (charts, Google Cloud fake) apply to these hosts too
    return ["-i", str(REPO / "inventories" / "local"), "-i", str(path), "--limit", "one,two"]


def host_stats(run, host):
    return run.data["stats"][host]


def test_two_clusters_converge_in_one_run_and_a_failure_stays_in_its_cluster(local_env, second_kubeconfig, tmp_path):
    namespace = new_namespace("clusters")
    small = [dict(CPU_MODEL, name="small", model="example/small", host="small.example.com")]
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, *inventory(tmp_path, local_env, second_kubeconfig,
                                                                              small))
        assert run.rc == 0, host_failures(run)
        assert set(run.data["stats"]) == {"one", "two"}
        # each cluster has its own host's models, and only those
        assert deployments(local_env, local_env.kubeconfig, namespace) == {"vllm-tiny"}
        assert deployments(local_env, second_kubeconfig, namespace) == {"vllm-small"}
        for kubeconfig in (local_env.kubeconfig, second_kubeconfig):
            gateway = json.loads(kubectl_in(local_env, kubeconfig, "-n", namespace, "get", "gateway", "vllm-xlb",
                                            "-o", "json").stdout)
            programmed = {c["type"]: c["status"] for c in gateway["status"]["conditions"]}
            assert programmed.get("Programmed") == "True", gateway["status"]
        print("\n[clusters] two clusters converged in one run: %.1fs" % run.seconds)

        # cluster two gets a model that cannot schedule (two GPUs a pod, one a node): its run fails at the wait;
        # cluster one converges on, and nothing of cluster two's change reaches it
        unschedulable = small + [dict(CPU_MODEL, name="big", model="example/big", host="big.example.com", gpus=2,
                                      resources={"cpu": "1", "memory": "1Gi", "ephemeral_storage": "1Gi"})]
        again = playbook(local_env, tmp_path, "site.yml", namespace,
                         *inventory(tmp_path, local_env, second_kubeconfig, unschedulable),
                         "-e", "vllm_model_wait_timeout=10")
        assert again.rc != 0
        assert host_stats(again, "two")["failures"] == 1, host_stats(again, "two")
        one = host_stats(again, "one")
        assert one["failures"] == 0 and one["changed"] == 0, one
        failed = [task["task"]["name"] for play in again.data["plays"] for task in play["tasks"]
                  if task["hosts"].get("two", {}).get("failed")]
        assert failed and "Converge the namespace" in failed[0], failed
        message = [task["hosts"]["two"]["msg"] for play in again.data["plays"] for task in play["tasks"]
                   if task["hosts"].get("two", {}).get("failed")][0]
        assert "vllm-big" in message and "FailedScheduling" in message, message
        # cluster one ran every step after that (its final readiness wait included)
        waited = [task["hosts"].get("one") for play in again.data["plays"] for task in play["tasks"]
                  if task["task"]["name"].startswith("Wait until the gateway is programmed")]
        assert waited and not waited[0].get("skipped") and not waited[0].get("failed"), waited
        assert deployments(local_env, local_env.kubeconfig, namespace) == {"vllm-tiny"}
        assert deployments(local_env, second_kubeconfig, namespace) == {"vllm-small", "vllm-big"}
        assert kget(local_env, "deployment", namespace, "vllm-big", check=False) is None
    finally:
        delete_namespace(local_env, namespace)
        kubectl_in(local_env, second_kubeconfig, "delete", "namespace", namespace, "--ignore-not-found",
                   "--wait=false")
