"""Make the walkthrough's GPU node pool exist through the GCP fake, as `gcloud container node-pools create gpupool
... --enable-autoscaling --total-min-nodes=0 --total-max-nodes=5 --num-nodes=0` does (and as site.yml's
gpu_nodepool step does from the default data model): no node at first; the fake's autoscaler adds them.
For benchmarks and experiments without site.yml.

    source .local/env.sh && python hack/gcp_fake/ensure_pool.py [--name gpupool] [--max-nodes 5]

Uses INFGW_GCP_API_ENDPOINT and GCP_ACCESS_TOKEN from env.sh. A pool that already exists is left as it is.
Exits when the pool is RUNNING.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

CLUSTER = "projects/local-project/locations/us-central1/clusters/local-cluster"


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="gpupool")
    parser.add_argument("--max-nodes", type=int, default=5, help="autoscaling maximum, in total over the zones")
    parser.add_argument("--machine-type", default="g2-standard-8")
    parser.add_argument("--accelerator", default="nvidia-l4")
    args = parser.parse_args(argv)
    try:
        base = os.environ["INFGW_GCP_API_ENDPOINT"].replace("{service}", "container")
        token = os.environ["GCP_ACCESS_TOKEN"]
    except KeyError as missing:
        print(f"ERROR: {missing} is not set (source the local environment's env.sh)", file=sys.stderr)
        return 1
    pools = f"{base}v1/{CLUSTER}/nodePools"
    status, body = call("GET", f"{pools}/{args.name}", token)
    if status == 404:
        pool = {"name": args.name, "initialNodeCount": 0,
                "locations": ["us-central1-a", "us-central1-b", "us-central1-c"],
                "autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": args.max_nodes},
                "config": {"machineType": args.machine_type,
                           "accelerators": [{"acceleratorType": args.accelerator, "acceleratorCount": "1",
                                             "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}}
        status, body = call("POST", pools, token, {"nodePool": pool})
        if status not in (200, 409):
            print(f"ERROR: creating node pool {args.name}: {status} {json.dumps(body)}", file=sys.stderr)
            return 1
        print(f"node pool {args.name}: creating, {args.machine_type}, autoscaling 0..{args.max_nodes}")
    elif status != 200:
        print(f"ERROR: reading node pool {args.name}: {status} {json.dumps(body)}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, body = call("GET", f"{pools}/{args.name}", token)
        if status == 200 and body.get("status") == "RUNNING":
            print(f"node pool {args.name}: RUNNING")
            return 0
        if status == 200 and body.get("status") == "ERROR":
            print(f"ERROR: node pool {args.name}: {body.get('statusMessage')}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"ERROR: node pool {args.name} not RUNNING after 120s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
