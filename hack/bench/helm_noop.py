#!/usr/bin/env python3
"""Benchmark: a no-op run of gke_ai.inference_gateway.helm_oci_chart vs kubernetes.core.helm.

Both modules manage a release of the same OCI chart with the same values on the local environment
(`make local-up`; the upstream GIE `inferencepool` chart from the local registry by default). After
one deploying run each, the script runs N no-op tasks per module, alternating, in one ansible-playbook
run, and takes each task's duration from the json callback, so ansible-playbook's start-up cost is
not counted and both modules pay the same AnsiballZ overhead. It prints the medians and their ratio.

    source .local/env.sh && .venv/bin/python hack/bench/helm_noop.py [-n 15] [--keep]

This is a benchmark, not a test: it fails only when a "no-op" task reports a change.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local"))


def local_settings():
    state = json.loads((LOCAL / "state.json").read_text())
    registry = os.environ.get("LOCAL_OCI_REGISTRY") or "127.0.0.1:%s" % state["ports"]["registry"]
    return {
        "kubeconfig": os.environ.get("KUBECONFIG") or str(LOCAL / "kubeconfig"),
        "registry": registry,
        "bin_dir": str(LOCAL / "bin"),
    }


def ensure_gie_crds(settings, version="v1.1.0"):
    """The inferencepool chart needs the GIE CRDs: apply them server-side (idempotent)."""
    manifests = Path(os.environ.get("LOCAL_GIE_MANIFESTS") or LOCAL / "gie") / version / "manifests.yaml"
    if manifests.is_file():
        files = [manifests]
    else:
        out = subprocess.run(["go", "mod", "download", "-json", "sigs.k8s.io/gateway-api-inference-extension@%s"
                              % version], capture_output=True, text=True, check=True, cwd="/",
                             env=dict(os.environ, GOFLAGS="-mod=mod"))
        files = sorted((Path(json.loads(out.stdout)["Dir"]) / "config" / "crd" / "bases").glob("*.yaml"))
    kubectl = [os.path.join(settings["bin_dir"], "kubectl"), "--kubeconfig", settings["kubeconfig"]]
    cmd = kubectl + ["apply", "--server-side", "--force-conflicts", "--field-manager=bench-helm-noop"]
    for f in files:
        cmd += ["-f", str(f)]
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    subprocess.run(kubectl + ["wait", "--for=condition=Established", "--timeout=60s",
                              "crd/inferencepools.inference.networking.k8s.io"], capture_output=True, check=True)


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--runs", type=int, default=15, help="no-op runs per module (default 15)")
    ap.add_argument("--chart", default="gateway-api-inference-extension/charts/inferencepool",
                    help="repository path of the chart in the local registry")
    ap.add_argument("--version", default="v1.1.0", help="chart version (tag)")
    ap.add_argument("--namespace", default="bench-helm-noop-%s" % uuid.uuid4().hex[:6])
    ap.add_argument("--keep", action="store_true", help="leave the releases and namespace in place")
    ap.add_argument("--set-values", action="store_true",
                    help="pass the values as set_values to both modules (kubernetes.core.helm then reports a change "
                         "on every run: its comparison ignores set_values; changes are counted, not fatal)")
    args = ap.parse_args()

    env_settings = local_settings()
    if args.chart.endswith("/inferencepool"):
        ensure_gie_crds(env_settings)
    real_helm = os.path.join(env_settings["bin_dir"], "helm")
    tmp = tempfile.mkdtemp(prefix="bench-helm-noop-")
    # one logging wrapper per module: counts helm processes and registry references per run
    wrappers = {}
    for key in ("helm_oci_chart", "kubernetes.core.helm"):
        wrapper = Path(tmp) / ("helm-" + key.replace(".", "-"))
        wrapper.write_text('#!/bin/sh\ncase "$*" in *oci://*) ref=oci ;; *) ref= ;; esac\n'
                           'echo "$1 $2 $ref" >> "%s.log"\nexec "%s" "$@"\n' % (wrapper, real_helm))
        wrapper.chmod(0o755)
        wrappers[key] = wrapper
    chart_ref = "oci://%s/%s" % (env_settings["registry"], args.chart)
    if args.set_values:
        values_ours = {"set_values": [{"value": "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct"},
                                      {"value": "provider.name=gke"}]}
        values_theirs = dict(values_ours)
    else:
        values = {"inferencePool": {"modelServers": {"matchLabels": {"app": "vllm-llama3-8b-instruct"}}},
                  "provider": {"name": "gke"}}
        values_ours, values_theirs = {"values": values}, {"release_values": values}
    ours = {"gke_ai.inference_gateway.helm_oci_chart": dict(
        chart_ref=chart_ref, version=args.version, release_name="bench-hoc", release_namespace=args.namespace,
        create_namespace=True, plain_http=True, binary_path=str(wrappers["helm_oci_chart"]), **values_ours)}
    theirs = {"kubernetes.core.helm": dict(
        chart_ref=chart_ref, chart_version=args.version, release_name="bench-kch", release_namespace=args.namespace,
        create_namespace=True, plain_http=True, binary_path=str(wrappers["kubernetes.core.helm"]),
        **values_theirs)}

    marker = {"ansible.builtin.shell": " ; ".join("echo NOOP-RUNS-START >> %s.log" % w for w in wrappers.values()),
              "changed_when": False}
    tasks = [dict(name="deploy helm_oci_chart", **ours), dict(name="deploy kubernetes.core.helm", **theirs),
             dict(name="mark the start of the no-op runs", **marker)]
    for i in range(args.runs):
        tasks.append(dict(name="noop helm_oci_chart %d" % i, **ours))
        tasks.append(dict(name="noop kubernetes.core.helm %d" % i, **theirs))
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]

    collections = "%s:%s" % (LOCAL / "collections", sysconfig.get_paths()["purelib"])
    env = dict(os.environ, KUBECONFIG=env_settings["kubeconfig"], ANSIBLE_COLLECTIONS_PATH=collections,
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOCALHOST_WARNING="0",
               PATH="%s:%s" % (env_settings["bin_dir"], os.environ.get("PATH", "")))
    path = Path(tmp) / "bench.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)],
                         capture_output=True, text=True, env=env, cwd=tmp)
    try:
        out = json.loads(run.stdout[run.stdout.index("{"):])
        results = out["plays"][0]["tasks"]
    except (ValueError, KeyError, IndexError):
        sys.exit("ansible-playbook failed (rc=%s):\n%s\n%s" % (run.returncode, run.stdout[-4000:], run.stderr[-4000:]))

    try:
        durations = {"helm_oci_chart": [], "kubernetes.core.helm": []}
        changes = {"helm_oci_chart": 0, "kubernetes.core.helm": 0}
        for task in results:
            name = task["task"]["name"]
            res = task["hosts"]["localhost"]
            if res.get("failed"):
                sys.exit("task %r failed: %s" % (name, res.get("msg")))
            if not name.startswith("noop "):
                continue
            key = "helm_oci_chart" if "helm_oci_chart" in name else "kubernetes.core.helm"
            if res.get("changed"):
                if not args.set_values:
                    sys.exit("task %r reported a change on a no-op run" % name)
                changes[key] += 1
            d = task["task"]["duration"]
            durations[key].append((parse_time(d["end"]) - parse_time(d["start"])).total_seconds())
        ours_med = statistics.median(durations["helm_oci_chart"])
        theirs_med = statistics.median(durations["kubernetes.core.helm"])
        print("chart: %s:%s, %d no-op runs per module (values as %s)" % (
            chart_ref, args.version, args.runs, "set_values" if args.set_values else "a values dict"))
        print("helm_oci_chart        median %.3fs  (min %.3fs, max %.3fs)" % (
            ours_med, min(durations["helm_oci_chart"]), max(durations["helm_oci_chart"])))
        print("kubernetes.core.helm  median %.3fs  (min %.3fs, max %.3fs)" % (
            theirs_med, min(durations["kubernetes.core.helm"]), max(durations["kubernetes.core.helm"])))
        print("ratio kubernetes.core.helm / helm_oci_chart: %.2fx" % (theirs_med / ours_med))
        for key, wrapper in wrappers.items():
            lines = Path(str(wrapper) + ".log").read_text().splitlines()
            noop = lines[lines.index("NOOP-RUNS-START") + 1:]
            print("%-21s per no-op run: %.1f helm processes, %.1f of them with an oci:// reference "
                  "(a registry round trip)" % (key, len(noop) / args.runs,
                                               sum(line.endswith(" oci") for line in noop) / args.runs))
        if args.set_values:
            print("runs reporting a change: helm_oci_chart %d/%d, kubernetes.core.helm %d/%d" % (
                changes["helm_oci_chart"], args.runs, changes["kubernetes.core.helm"], args.runs))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept: %s" % tmp)
        if not args.keep:
            for release in ("bench-hoc", "bench-kch"):
                subprocess.run([real_helm, "uninstall", release, "-n", args.namespace, "--kubeconfig",
                                env_settings["kubeconfig"]], capture_output=True)
            subprocess.run([os.path.join(env_settings["bin_dir"], "kubectl"), "--kubeconfig",
                            env_settings["kubeconfig"], "delete", "namespace", args.namespace, "--wait=false"],
                           capture_output=True)


if __name__ == "__main__":
    main()
