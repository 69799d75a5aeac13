"""`local-up` is idempotent and `local-down` leaves no process, port or data behind.

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


def localenv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCALENV, *args], capture_output=True, text=True, check=False)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_is_idempotent_and_down_leaves_nothing():
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

    down = localenv("down")
    assert down.returncode == 0, down.stderr
    for name, pid in state["pids"].items():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3], \
            f"{name} (pid {pid}) still running"
    for name, port in state["ports"].items():
        assert not port_in_use(port), f"port {port} ({name}) still open"
    for leftover in ("data", "state.json", "kubeconfig", "env.sh", "pki", "gcp-service-account.json"):
        assert not (LOCAL / leftover).exists(), f".local/{leftover} left behind"
    assert localenv("status").returncode == 1
    assert localenv("down").returncode == 0, "down on a stopped environment must succeed"
