"""Benchmark (not a test): the walkthrough's own kubectl/helm sequence against site.yml.

On the local environment (source .local/env.sh first, or run `make bench-site`), each round
  1. replays the walkthrough's commands (README.seed.md, GIE v1.1.0) in a fresh namespace, cold,
     then again (the re-run: `helm upgrade --install` where the walkthrough says `helm install`,
     which fails on a second run), then deletes the namespace;
  2. runs `ansible-playbook site.yml` in another fresh namespace, cold, then again, then deletes it.
It prints each time and the medians. Cloud Armor and the chat UI are left out of both (off by default). The
walkthrough's gcloud steps cannot be replayed (no gcloud here): the GPU node pool is made once, before the first
round, through the GCP fake (hack/gcp_fake/ensure_pool.py), so site.yml's gpu_nodepool step finds it converged, and
its other GCP steps (proxy-only subnet, certificate, IAM binding) run against the fake and count in its times.
The walkthrough never waits for the Gateway; site.yml does (gateway_ready), so its cold time includes that;
"walkthrough cold + waits" adds kubectl waits for what site.yml waits for (every Deployment Available, the Gateway
Programmed, every route Accepted), one after the other as a person would run them.

With the second local cluster (make local-up-second), each round also runs site.yml on two clusters at once (the
inventory group infgw_clusters with two hosts, forks): cold, then the re-run, against the one-cluster times. The
second cluster has no Google Cloud side (the GCP fake has one cluster), so its host leaves the GCP steps out.
At the end, hack/bench/noop_tasks.py counts a no-op run's tasks and module processes.

    .venv/bin/python hack/bench/walkthrough_vs_site.py [-n 3] [--no-noop]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "fixtures" / "seed"
MODELS = ("vllm-gemma-3-1b", "vllm-gemma-3-4b", "vllm-llama-3-3b")
EPP_VALUES = """provider:
  name: "gke"
  gke:
    autopilot: false
inferenceExtension:
  tracing:
    enabled: false
  monitoring:
    interval: "10s"
    prometheus:
      enabled: true
      auth:
        enabled: true
      extraLabels: {}
"""


def run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def walkthrough(ns: str, rerun: bool) -> None:
    """The README's commands, in order, with the registry and CRD URLs pointed at the local copies."""
    registry = f"oci://{os.environ['LOCAL_OCI_REGISTRY']}/gateway-api-inference-extension/charts"
    helm_install = ["helm", "upgrade", "--install"] if rerun else ["helm", "install"]
    if not rerun:
        run(["kubectl", "create", "ns", ns])
        run(["kubectl", "create", "secret", "generic", "hf-secret", "-n", ns,
             "--from-literal=hf_api_token=hf_dummy-token-for-the-local-fake-cluster"])
    for manifest, deployment in zip(("vllm-gemma3-1b.yaml", "vllm-gemma3-4b.yaml", "vllm-llama3-3b.yaml"), MODELS):
        run(["kubectl", "apply", "-n", ns, "-f", str(SEED / manifest)])
        if deployment != "vllm-llama-3-3b":  # the README waits for the two Gemma models only
            run(["kubectl", "wait", "-n", ns, "--for=condition=Available", "--timeout=1800s",
                 f"deployment/{deployment}"])
    run(["kubectl", "apply", "-n", ns, "-f", str(SEED / "infgw-external.yaml")])
    run(["kubectl", "apply", "-n", ns, "-f", str(SEED / "infgw-httproute-basic.yaml")])
    run([*helm_install, "bbr", "--namespace", ns, "--set", "provider.name=gke", "--set",
         "inferenceGateway.name=vllm-xlb", "--version", "v1.1.0", f"{registry}/body-based-routing", "--plain-http"])
    run(["kubectl", "apply", "-n", ns, "-f", str(SEED / "infgw-httproute-bbr.yaml")])
    run(["kubectl", "apply", "-f", f"{os.environ['LOCAL_GIE_MANIFESTS']}/v1.1.0/manifests.yaml"])
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values:
        values.write(EPP_VALUES)
        values.flush()
        for pool in MODELS:
            run([*helm_install, pool, "-n", ns, "--version", "v1.1.0", "-f", values.name, "--set",
                 f"inferencePool.modelServers.matchLabels.app={pool}", f"{registry}/inferencepool", "--plain-http"])
    run(["kubectl", "apply", "-n", ns, "-f", str(SEED / "infgw-httproute-infp-info.yaml")])
    run(["kubectl", "apply", "-n", ns, "-f", str(SEED / "vllm-infgw-hpas.yaml")])


def wait_like_site(ns: str) -> None:
    """What site.yml waits for before it ends and the walkthrough does not: every Deployment Available, the
    Gateway Programmed, every HTTPRoute accepted by it."""
    run(["kubectl", "wait", "-n", ns, "--for=condition=Available", "--timeout=1800s", "deployment", "--all"])
    run(["kubectl", "wait", "-n", ns, "--for=condition=Programmed", "--timeout=600s", "gateway/vllm-xlb"])
    run(["kubectl", "wait", "-n", ns, "--for=jsonpath={.status.parents[0].conditions[?(@.type=='Accepted')].status}=True",
         "--timeout=600s", "httproute", "--all"])


def site(ns: str, *args: str) -> None:
    run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "site.yml", "-e", f"infgw_namespace={ns}", *args],
        cwd=REPO)


def two_clusters_inventory(directory: str) -> list[str]:
    """ansible-playbook arguments for the environment's cluster (host one) and the second cluster (host two)."""
    second = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local")) / "kubeconfig-second"
    local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    hosts = {"one": dict(local, infgw_k8s_auth={"kubeconfig": os.environ["KUBECONFIG"]}),
             "two": dict(local, infgw_k8s_auth={"kubeconfig": str(second)}, infgw_gcp={"enabled": False},
                         gateway_probes=[])}
    path = Path(directory) / "clusters.json"
    path.write_text(json.dumps({"all": {"children": {"infgw_clusters": {"hosts": hosts}}}}))
    return ["-i", str(REPO / "inventories" / "local"), "-i", str(path), "--limit", "one,two"]


def delete_namespace_everywhere(ns: str, kubeconfigs: list[str]) -> None:
    for kubeconfig in kubeconfigs:
        delete_namespace(ns, dict(os.environ, KUBECONFIG=kubeconfig))


def delete_namespace(ns: str, env: dict | None = None) -> None:
    releases = subprocess.run(["helm", "list", "-q", "-n", ns], capture_output=True, text=True, check=False, env=env)
    for release in releases.stdout.split():
        run(["helm", "uninstall", release, "-n", ns], env=env)
    run(["kubectl", "delete", "ns", ns, "--ignore-not-found", "--wait=true", "--timeout=300s"], env=env)


def timed(fn, *args) -> float:
    start = time.monotonic()
    fn(*args)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--rounds", type=int, default=3)
    parser.add_argument("--no-noop", action="store_true", help="leave out the no-op task count")
    args = parser.parse_args()
    for var in ("KUBECONFIG", "LOCAL_OCI_REGISTRY", "LOCAL_GIE_MANIFESTS"):
        if var not in os.environ:
            sys.exit(f"{var} is not set: source .local/env.sh (make local-up) first")
    times: dict[str, list[float]] = {"walkthrough cold": [], "walkthrough cold + waits": [],
                                     "walkthrough re-run": [], "site.yml cold": [], "site.yml re-run": []}
    second = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local")) / "kubeconfig-second"
    if second.exists():
        times.update({"site.yml cold, 2 clusters": [], "site.yml re-run, 2 clusters": []})
    else:
        print(f"no second cluster ({second}): make local-up-second to time two clusters", flush=True)
    sys.path.insert(0, str(REPO / "hack" / "gcp_fake"))
    import ensure_pool  # pylint: disable=import-outside-toplevel
    if ensure_pool.main([]) != 0:
        sys.exit("the GPU node pool could not be made through the GCP fake")
    stamp = time.strftime("%H%M%S")
    for i in range(args.rounds):
        ns = f"bench-wt-{stamp}-{i}"
        try:
            times["walkthrough cold"].append(timed(walkthrough, ns, False))
            times["walkthrough cold + waits"].append(times["walkthrough cold"][-1] + timed(wait_like_site, ns))
            times["walkthrough re-run"].append(timed(walkthrough, ns, True))
        finally:
            delete_namespace(ns)
        ns = f"bench-site-{stamp}-{i}"
        try:
            times["site.yml cold"].append(timed(site, ns))
            times["site.yml re-run"].append(timed(site, ns))
        finally:
            delete_namespace(ns)
        if second.exists():
            ns = f"bench-two-{stamp}-{i}"
            with tempfile.TemporaryDirectory() as tmp:
                two = two_clusters_inventory(tmp)
                try:
                    times["site.yml cold, 2 clusters"].append(timed(site, ns, *two))
                    times["site.yml re-run, 2 clusters"].append(timed(site, ns, *two))
                finally:
                    delete_namespace_everywhere(ns, [os.environ["KUBECONFIG"], str(second)])
        print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"medians over {args.rounds} rounds:")
    for name, value in medians.items():
        print(f"  {name:30} {value:6.1f}s")
    print("ratios: re-run site.yml / walkthrough re-run %.2fx; cold site.yml / walkthrough cold + waits %.2fx"
          % (medians["site.yml re-run"] / medians["walkthrough re-run"],
             medians["site.yml cold"] / medians["walkthrough cold + waits"]))
    if second.exists():
        print("        2 clusters / 1: cold %.2fx, re-run %.2fx"
              % (medians["site.yml cold, 2 clusters"] / medians["site.yml cold"],
                 medians["site.yml re-run, 2 clusters"] / medians["site.yml re-run"]))
    if not args.no_noop:
        sys.stdout.flush()
        subprocess.run([sys.executable, str(REPO / "hack" / "bench" / "noop_tasks.py")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
