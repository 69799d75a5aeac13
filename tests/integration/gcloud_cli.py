"""Google's own gcloud CLI pointed at the local environment's GCP fake, every run watched for connections.

Used by tests/integration/test_gcloud_*.py (and by any test that builds the walkthrough's Google Cloud side by hand).
Each run goes through `strace -e trace=connect`: a connection anywhere but the fake (or, for kubectl, the local API
server) fails the test, and the proxy variables point at a dead port for everything but loopback, so a request to
a Google host would also fail loudly instead of leaving the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake import gcloud_config  # noqa: E402  pylint: disable=wrong-import-position

DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, a proxied request fails at once
_CONNECT = re.compile(r"connect\(\d+, \{sa_family=(AF_INET6?|AF_UNIX|AF_\w+)(.*?)\}, \d+\)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


class GcloudFailed(AssertionError):
    pass


def connections(trace: str) -> list[tuple[str, int]]:
    """(address, port) of every IP connect() in an `strace -e trace=connect` log."""
    out = []
    for m in _CONNECT.finditer(trace):
        if m.group(1) not in ("AF_INET", "AF_INET6"):
            continue
        port, addr = _PORT.search(m.group(2)), _ADDR.search(m.group(2))
        out.append(((addr.group(1) or addr.group(2)) if addr else "?", int(port.group(1)) if port else -1))
    return out


class Gcloud:
    """`gcloud ...` with an isolated CLOUDSDK_CONFIG that talks to the fake only."""

    def __init__(self, local_env, workdir: Path):
        for tool in ("gcloud", "strace", "gke-gcloud-auth-plugin"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is not installed: the gcloud suite needs the Google Cloud CLI (with "
                                     "gke-gcloud-auth-plugin) and strace")
        self.local_env = local_env
        self.workdir = Path(workdir)
        self.port = int(local_env.state["ports"]["gcp_fake"])
        self.apiserver_port = int(local_env.state["ports"]["apiserver"])
        token_file = self.workdir / "access-token"
        token_file.write_text(local_env.state["gcp_token"])
        token_file.chmod(0o600)
        self.config_dir = gcloud_config.write(self.workdir / "gcloud", f"http://127.0.0.1:{self.port}", str(token_file))
        self.kubeconfig = self.workdir / "kubeconfig"
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CLOUDSDK_", "GOOGLE_", "GCP_", "KUBECONFIG")) and "proxy" not in k.lower()}
        env.update(CLOUDSDK_CONFIG=str(self.config_dir), HOME=str(home), KUBECONFIG=str(self.kubeconfig),
                   PATH=f"{local_env.bin_dir}:{os.environ['PATH']}")
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env[name] = DEAD_PROXY
        env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
        self.env = env
        self.runs: list[dict] = []  # every command: args, seconds, exit code (for the suite's record)

    def _traced(self, argv: list[str], allowed_ports: set[int], stdin: str | None = None) -> subprocess.CompletedProcess:
        trace = self.workdir / f"connect-{len(self.runs)}.strace"
        started = time.monotonic()
        done = subprocess.run(["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", str(trace), *argv],
                              input=stdin, capture_output=True, text=True, env=self.env, check=False, timeout=300)
        self.runs.append({"argv": argv, "seconds": round(time.monotonic() - started, 2), "rc": done.returncode})
        elsewhere = [(a, p) for a, p in connections(trace.read_text()) if a not in ("127.0.0.1", "::1")
                     or p not in allowed_ports]
        assert not elsewhere, (f"{' '.join(argv)} connected to {elsewhere}: only 127.0.0.1:{sorted(allowed_ports)} is "
                               f"allowed\n{done.stderr[-2000:]}")
        trace.unlink()
        return done

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run gcloud; with check, a non-zero exit fails the test with gcloud's error."""
        done = self._traced(["gcloud", *args], {self.port}, stdin)
        if check and done.returncode != 0:
            raise GcloudFailed(f"gcloud {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        return done

    def json(self, *args: str):
        """Run gcloud with --format=json and return the parsed output."""
        return json.loads(self(*args, "--format=json").stdout or "null")

    def fails(self, *args: str) -> str:
        """Run gcloud expecting an error; returns its stderr."""
        done = self(*args, check=False)
        assert done.returncode != 0, f"gcloud {' '.join(args)} succeeded, expected an error:\n{done.stdout}"
        return done.stderr

    def kubectl(self, *args: str) -> subprocess.CompletedProcess:
        """kubectl with the kubeconfig get-credentials wrote (its exec plugin runs gcloud for the token)."""
        done = self._traced(["kubectl", *args], {self.apiserver_port})
        assert done.returncode == 0, f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done
