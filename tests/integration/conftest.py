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
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
LOCALENV = REPO / "hack" / "localcluster" / "localenv.py"
LOCAL = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local"))


@dataclasses.dataclass(frozen=True)
class LocalEnv:
    kubeconfig: str
    registry: str  # host:port of the OCI registry
    bin_dir: str  # kubectl and helm
    state: dict

    @property
    def env(self) -> dict:
        """os.environ plus what .local/env.sh exports."""
        return dict(os.environ, KUBECONFIG=self.kubeconfig, K8S_AUTH_KUBECONFIG=self.kubeconfig,
                    LOCAL_OCI_REGISTRY=self.registry, LOCAL_GIE_MANIFESTS=str(LOCAL / "gie"),
                    PATH=f"{self.bin_dir}:{os.environ['PATH']}")

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
