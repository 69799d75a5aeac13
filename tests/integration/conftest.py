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
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def local_env() -> LocalEnv:
    run = subprocess.run([sys.executable, str(LOCALENV), "up"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        pytest.fail(f"local environment did not come up (make local-up):\n{run.stdout}\n{run.stderr}", pytrace=False)
    state = json.loads((LOCAL / "state.json").read_text())
    return LocalEnv(kubeconfig=str(LOCAL / "kubeconfig"), registry=f"127.0.0.1:{state['ports']['registry']}",
                    bin_dir=str(LOCAL / "bin"), state=state)
