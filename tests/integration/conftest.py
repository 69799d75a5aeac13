"""Integration fixtures: one local environment per test session, started with `localenv.py up`.

There is no skip here on purpose: when the environment cannot start, every integration
test errors with local-up's own message (which names the failing component and its log).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
LOCALENV = REPO / "hack" / "localcluster" / "localenv.py"
LOCAL = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local"))
GCP_CLUSTER = "projects/local-project/locations/us-central1/clusters/local-cluster"
# The GPU node pool the tests that deploy GPU models share: the walkthrough's gpupool exactly as the gpu_nodepool
# role makes it from the default data model (no node at first, autoscaling 0..5 over three zones), so that site.yml
# runs in the tests find it converged. The GCP fake's autoscaler adds kwok GPU nodes when GPU pods are pending.
GPU_POOL = {"name": "gpupool", "initialNodeCount": 0, "locations": ["us-central1-a", "us-central1-b", "us-central1-c"],
            "autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 5},
            "config": {"machineType": "g2-standard-8",
                       "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
                                         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}}


@dataclasses.dataclass(frozen=True)
class LocalEnv:
    kubeconfig: str
    registry: str  # host:port of the OCI registry
    bin_dir: str  # kubectl and helm
    state: dict

    @property
    def env(self) -> dict:
        """os.environ plus what .local/env.sh exports."""
        return dict(os.environ, GKE_AI_LOCAL_DIR=str(LOCAL), KUBECONFIG=self.kubeconfig, K8S_AUTH_KUBECONFIG=self.kubeconfig,
                    LOCAL_OCI_REGISTRY=self.registry, LOCAL_GIE_MANIFESTS=str(LOCAL / "gie"),
                    PATH=f"{self.bin_dir}:{os.environ['PATH']}",
                    INFGW_LOCAL_TLS_CERT_FILE=str(LOCAL / "pki" / "gateway-tls.crt"),
                    INFGW_LOCAL_TLS_KEY_FILE=str(LOCAL / "pki" / "gateway-tls.key"), **self.gcp_env)

    @property
    def gcp_url(self) -> str:
        """http://127.0.0.1:PORT, the GCP fake (services under /<service>/, control under /_fake/)."""
        return f"http://127.0.0.1:{self.state['ports']['gcp_fake']}"

    @property
    def gcp_env(self) -> dict:
        """The GCP variables env.sh exports (endpoint template, token, project, cluster, service-account file)."""
        return {
            "INFGW_GCP_API_ENDPOINT": self.gcp_url + "/{service}/",
            "GCP_AUTH_KIND": "accesstoken",
            "GCP_ACCESS_TOKEN": self.state["gcp_token"],
            "GCP_PROJECT": "local-project",
            "INFGW_LOCAL_GCP_PROJECT": "local-project",
            "INFGW_LOCAL_GCP_LOCATION": "us-central1",
            "INFGW_LOCAL_GCP_CLUSTER": "local-cluster",
            "INFGW_LOCAL_GCP_SERVICE_ACCOUNT_FILE": str(LOCAL / "gcp-service-account.json"),
        }

    def gcp(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> requests.Response:
        """A request to the GCP fake: path like /container/v1/... (with the environment's token unless given)."""
        headers = {"Authorization": f"Bearer {self.state['gcp_token'] if token is None else token}"}
        return requests.request(method, self.gcp_url + path, json=body, headers=headers, timeout=60)

    def gcp_wait(self, operation: dict, timeout: float = 60) -> dict:
        """Poll a container operation until DONE; fails on an operation error."""
        deadline = time.monotonic() + timeout
        while True:
            path = f"/container/v1/projects/local-project/locations/us-central1/operations/{operation['name']}"
            operation = self.gcp("GET", path).json()
            if operation.get("status") == "DONE":
                assert "error" not in operation, operation
                return operation
            assert time.monotonic() < deadline, f"operation not DONE after {timeout}s: {operation}"
            time.sleep(0.2)

    def wait_nodes(self, pool: str, count: int, timeout: float = 60) -> list:
        """The Ready kwok nodes of a node pool, once there are exactly `count`."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.kubectl("get", "nodes", "-l", f"cloud.google.com/gke-nodepool={pool}", "-o", "json").stdout
            items = json.loads(out)["items"]
            ready = [n for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                             for c in n["status"].get("conditions", []))]
            if len(items) == count and len(ready) == count:
                return items
            assert time.monotonic() < deadline, \
                f"node pool {pool}: {len(ready)}/{len(items)} nodes Ready after {timeout}s, want {count}"
            time.sleep(0.3)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([f"{self.bin_dir}/kubectl", *args], input=stdin, capture_output=True, text=True,
                              env=self.env, check=check)

    def install_gie_crds(self, version: str, field_manager: str = "integration-test") -> list[str]:
        """Apply the GIE release's CRDs (local-up's offline copy of its manifests.yaml); returns their names."""
        manifests = LOCAL / "gie" / version / "manifests.yaml"
        self.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}",
                     "-f", str(manifests))
        names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(manifests.read_text()) if doc]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
        return names


@pytest.fixture(scope="session")
def local_env() -> LocalEnv:
    run = subprocess.run([sys.executable, str(LOCALENV), "up"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        pytest.fail(f"local environment did not come up (make local-up):\n{run.stdout}\n{run.stderr}", pytrace=False)
    state = json.loads((LOCAL / "state.json").read_text())
    return LocalEnv(kubeconfig=str(LOCAL / "kubeconfig"), registry=f"127.0.0.1:{state['ports']['registry']}",
                    bin_dir=str(LOCAL / "bin"), state=state)


@pytest.fixture(scope="session")
def gpu_pool(local_env) -> str:
    """The walkthrough's `gpupool` node pool (g2-standard-8, one nvidia-l4 each, autoscaling 0..5), made through the
    GCP fake's REST API when missing, as the gpu_nodepool role would make it.

    GPU nodes come and go with the fake's cluster autoscaler: pending GPU pods add nodes (up to 5), idle nodes go.
    """
    path = f"/container/v1/{GCP_CLUSTER}/nodePools"
    got = local_env.gcp("GET", f"{path}/gpupool")
    if got.status_code == 404:
        created = local_env.gcp("POST", path, {"nodePool": GPU_POOL})
        if created.status_code != 409:
            assert created.status_code == 200, created.text
            local_env.gcp_wait(created.json())
    else:
        assert got.status_code == 200, got.text
    return "gpupool"


@pytest.fixture(scope="session")
def api(local_env):
    """A kubernetes client ApiClient for the local environment."""
    return config.new_client_from_config(config_file=local_env.kubeconfig)


@pytest.fixture
def namespace(api):
    """A fresh namespace, deleted after the test."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
