"""Helpers of the AWX tests: ansible-playbook runs, and the AWX fake (hack/awx_fake) with configure helpers.

These tests need no Kubernetes environment and no AWX: `make awx-test` (part of `make test`) runs them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
sys.path.insert(0, str(REPO / "hack"))

from awx_fake import FakeAWX  # noqa: E402  pylint: disable=wrong-import-position

# What every configure run passes: the two required settings and secrets for every credential, so that the
# first run creates every object.
REQUIRED = {
    "awx_gke_ai_scm_url": "https://git.example.com/gke-ai/inference_gateway.git",
    "awx_gke_ai_ee_image": "registry.example.com/gke-ai-ee:0.1.0",
}


@dataclasses.dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    data: dict | None

    @property
    def stats(self) -> dict:
        return self.data["stats"]["localhost"]

    def results(self):
        for play in self.data["plays"]:
            for task in play["tasks"]:
                result = task["hosts"].get("localhost")
                if result is not None:
                    yield task["task"]["name"], result

    def failure(self) -> str:
        """The failed task's message (for a loop, every failed item's)."""
        if self.data is None:
            return self.stdout[-3000:] + self.stderr[-3000:]
        messages = []
        for name, result in self.results():
            if result.get("failed"):
                items = result.get("results") or [result]
                messages += ["%s: %s" % (name, item.get("msg")) for item in items if item.get("failed")]
        return "\n".join(messages) or self.stdout[-3000:] + self.stderr[-3000:]

    def changed_tasks(self) -> list[str]:
        return [name for name, result in self.results() if result.get("changed")]


def ansible_playbook(playbook, *args, env=None, extra_files=(), cwd=REPO, json_out=True, timeout=600) -> Run:
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook), *args]
    for path in extra_files:
        cmd += ["-e", "@%s" % path]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLLER_", "TOWER_"))}
    full_env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0",
                    ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    if json_out:
        full_env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=str(cwd), env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
    data = None
    if json_out:
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("ansible-playbook output is not JSON (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:],
                                                                                  proc.stderr[-4000:]))
    return Run(proc.returncode, proc.stdout, proc.stderr, data)


class Awx:
    """The running fake, with helpers to configure it with playbooks/awx_configure.yml and read its state."""

    def __init__(self, fake: FakeAWX, tmp_path: Path):
        self.fake = fake
        self.tmp_path = tmp_path

    @property
    def env(self) -> dict:
        return {"CONTROLLER_HOST": self.fake.url, "CONTROLLER_OAUTH_TOKEN": self.fake.token}

    def get(self, path):
        with urllib.request.urlopen(self.fake.url + path, timeout=10) as response:  # /_fake/ needs no auth
            return json.loads(response.read())

    def state(self) -> dict:
        return self.get("/_fake/state")

    def requests(self) -> list:
        return self.get("/_fake/requests")

    def reset(self):
        req = urllib.request.Request(self.fake.url + "/_fake/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def objects(self, resource) -> dict:
        return {o["name"]: o for o in self.state()["objects"][resource]}

    def configure(self, *args, extra_files=(), env=None, secrets=True) -> Run:
        """ansible-playbook playbooks/awx_configure.yml with the required settings (and every secret, so that every
        credential is created), then `extra_files` as further -e @file."""
        base = dict(REQUIRED)
        if secrets:
            base.update(self.secrets())
        path = self.tmp_path / "required.json"
        path.write_text(json.dumps(base))
        return ansible_playbook(REPO / "playbooks" / "awx_configure.yml", *args, extra_files=[path, *extra_files],
                                env=dict(self.env, **(env or {})))

    def secrets(self) -> dict:
        kubeconfig = self.tmp_path / "kubeconfig"
        kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
        key = self.tmp_path / "sa.json"
        key.write_text(json.dumps({
            "type": "service_account", "client_email": "deployer@my-project.iam.gserviceaccount.com",
            "project_id": "my-project", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIfake\n-----END PRIVATE KEY-----\n",
        }))
        return {"awx_gke_ai_kubeconfig_file": str(kubeconfig), "awx_gke_ai_gcp_service_account_file": str(key),
                "awx_gke_ai_hf_token": "hf_test-token-not-real"}
