"""`local-up` is idempotent, two environments run side by side, and `local-down` leaves no process, port,
network namespace, route, mount or data behind (and does not touch the other environment).

Runs after the integration tests (it takes the environment down at the end); it is not
marked `integration` because it must run in its own pytest invocation, last.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCALENV = [sys.executable, str(REPO / "hack" / "localcluster" / "localenv.py")]
LOCAL = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local"))

# A model server pod (the pod runner gives it a process, a network namespace) and its Service (a ClusterIP
# listener on the host): what down must clean up beyond the control plane.
SIM = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: lifecycle-sim, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: lifecycle-sim}}
  template:
    metadata: {labels: {app: lifecycle-sim}}
    spec:
      containers:
        - name: inference-server
          image: vllm/vllm-openai:v0.8.5.post1
          args: ["--model=lifecycle/model"]
          ports: [{containerPort: 8000, name: http}]
          readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: lifecycle-sim, namespace: default}
spec:
  selector: {app: lifecycle-sim}
  ports: [{port: 8000, name: http}]
"""


def localenv(*args: str, local: Path = LOCAL) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCALENV, *args], capture_output=True, text=True, check=False,
                          env=dict(os.environ, GKE_AI_LOCAL_DIR=str(local)))


def kubectl(local: Path, *args: str, stdin: str | None = None) -> str:
    run = subprocess.run([str(local / "bin" / "kubectl"), "--kubeconfig", str(local / "kubeconfig"), *args],
                         input=stdin, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def run_sim(local: Path) -> tuple[str, dict]:
    """Deploy SIM, wait until its pod is Ready (its process answers); return (ClusterIP, pod-runner.json)."""
    kubectl(local, "apply", "-f", "-", stdin=SIM)
    kubectl(local, "rollout", "status", "deployment/lifecycle-sim", "--timeout=60s")
    cluster_ip = kubectl(local, "get", "service", "lifecycle-sim", "-o", "jsonpath={.spec.clusterIP}")
    deadline = time.monotonic() + 10
    while not port_in_use(8000, cluster_ip):
        assert time.monotonic() < deadline, f"ClusterIP {cluster_ip}:8000 not served"
        time.sleep(0.2)
    return cluster_ip, json.loads((local / "pod-runner.json").read_text())


def ip_lines(*args: str) -> list[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout.splitlines()


def served_cluster_ips(local: Path) -> list[tuple[str, int, str]]:
    """(ClusterIP, port, namespace/name) of every Service the pod runner serves now (after `make test`: the
    custom metrics adapter's, which the API server's aggregator dials, and the models' and endpoint pickers')."""
    services = json.loads(kubectl(local, "get", "services", "-A", "-o", "json"))["items"]
    served = []
    for svc in services:
        ip = svc["spec"].get("clusterIP")
        name = "%s/%s" % (svc["metadata"]["namespace"], svc["metadata"]["name"])
        if not ip or ip == "None" or name == "default/kubernetes":
            continue
        for port in svc["spec"].get("ports") or []:
            if port.get("protocol", "TCP") == "TCP" and port_in_use(port["port"], ip):
                served.append((ip, port["port"], name))
    return served


def assert_nothing_left(local: Path, state: dict, pods: dict, cluster_ip: str,
                        served: list[tuple[str, int, str]] = ()) -> None:
    for name, pid in state["pids"].items():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3], \
            f"{name} (pid {pid}) still running"
    pod_pids = {c["pid"]: name for name, pod in pods["pods"].items() for c in pod["containers"].values() if c["pid"]}
    assert pod_pids, "the pod runner ran no process for the model server pod"
    for pid, pod in pod_pids.items():  # after `make test`: the metrics adapter, EPPs, BBR and simulators too
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} of pod {pod} still running"
    for name, port in state["ports"].items():
        assert not port_in_use(port), f"port {port} ({name}) still open"
    assert not port_in_use(8000, cluster_ip), f"ClusterIP {cluster_ip}:8000 still served"
    for ip, port, service in served:
        assert not port_in_use(port, ip), f"ClusterIP {ip}:{port} of Service {service} still served"
    prefix = f"infgw-{state['env_id']}-"
    assert not [n for n in ip_lines("netns", "list") if n.startswith(prefix)], "network namespaces left"
    assert prefix not in Path("/proc/self/mountinfo").read_text(), "a namespace mount left in /run/netns"
    # nothing of the environment was ever in the host's network namespace: no interface, route or address
    slot = int(state["env_id"], 16)
    assert not [line for line in ip_lines("-o", "link") if "infgw" in line]
    assert not [line for line in ip_lines("route", "show", "table", "all") if "10.244." in line
                or f"127.{slot}." in line]
    for leftover in ("data", "state.json", "kubeconfig", "env.sh", "pki", "gcp-service-account.json", "pods",
                     "pod-runner.json"):
        assert not (local / leftover).exists(), f"{local}/{leftover} left behind"


def test_up_is_idempotent_and_down_leaves_nothing(tmp_path):
    first = localenv("up")
    assert first.returncode == 0, first.stdout + first.stderr
    state = json.loads((LOCAL / "state.json").read_text())

    started = time.monotonic()
    second = localenv("up")
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert json.loads((LOCAL / "state.json").read_text())["pids"] == state["pids"], "up twice restarted something"
    assert elapsed < 10, f"a no-op local-up took {elapsed:.1f}s"

    status = localenv("status")
    assert status.returncode == 0, status.stdout
    # default-pool's 2 nodes, plus whatever GPU nodes the GCP fake's autoscaler holds for earlier tests, all Ready
    nodes = re.search(r"nodes: (\d+)/(\d+) Ready", status.stdout)
    assert nodes and nodes.group(1) == nodes.group(2) and int(nodes.group(1)) >= 2, status.stdout
    assert "gcp-fake" in status.stdout and "GCP API fake: http://127.0.0.1:" in status.stdout
    cluster_ip, pods = run_sim(LOCAL)

    # Another environment beside it (a user's `make demo` while `make test` runs): its own id, names and
    # addresses, and this one's `down` leaves it running.
    other = tmp_path / "other-env"
    up = localenv("up", local=other)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        other_state = json.loads((other / "state.json").read_text())
        for key in ("env_id", "pod_netns", "service_cidr", "gateway_address_base"):
            assert other_state[key] != state[key], key
        assert not set(other_state["ports"].values()) & set(state["ports"].values())
        other_ip = run_sim(other)[0]

        served = served_cluster_ips(LOCAL)
        assert (cluster_ip, 8000, "default/lifecycle-sim") in served
        down = localenv("down")
        assert down.returncode == 0, down.stderr
        assert_nothing_left(LOCAL, state, pods, cluster_ip, served)
        assert localenv("status").returncode == 1
        assert localenv("down").returncode == 0, "down on a stopped environment must succeed"

        kept = localenv("status", local=other)
        assert kept.returncode == 0, f"taking one environment down broke the other:\n{kept.stdout}"
        assert port_in_use(8000, other_ip), "the other environment's ClusterIP stopped answering"
    finally:
        localenv("down", local=other)
