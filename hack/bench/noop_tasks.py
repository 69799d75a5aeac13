"""Benchmark (not a test): what a no-op site.yml costs in tasks and module processes.

Converges site.yml into a fresh namespace, runs it again (the no-op re-run) with a small callback that records every
task, and prints: tasks (every task result, skipped ones too), tasks that ran (not skipped), module processes
(results carrying an ``invocation``, which only a module run returns; each loop item counts) and the wall time;
then the module processes by action. The namespace is torn down at the end.

    source .local/env.sh && .venv/bin/python hack/bench/noop_tasks.py
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CALLBACK = '''
import json, os
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "noop_tasks"
    CALLBACK_NEEDS_ENABLED = False

    def _record(self, result, status):
        res = result._result
        items = res.get("results") if isinstance(res.get("results"), list) else None
        modules = sum(1 for i in items if isinstance(i, dict) and "invocation" in i) if items is not None \\
            else int("invocation" in res)
        with open(os.environ["NOOP_TASKS_OUT"], "a") as out:
            out.write(json.dumps({"action": result._task.resolved_action or result._task.action,
                                  "name": result._task.get_name(), "status": status, "modules": modules}) + "\\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")
'''


def playbook(path: str, namespace: str, env: dict) -> float:
    started = time.monotonic()
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), path, "-e", "infgw_namespace=" + namespace],
                          cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s\n%s" % (path, proc.stdout[-3000:], proc.stderr[-3000:]))
    return time.monotonic() - started


def main() -> None:
    namespace = "bench-noop-%s" % uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "noop_tasks.py").write_text(CALLBACK)
        out = Path(tmp, "tasks.jsonl")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".local" / "collections"))
        try:
            cold = playbook("site.yml", namespace, env)
            env.update(ANSIBLE_CALLBACK_PLUGINS=tmp, ANSIBLE_CALLBACKS_ENABLED="noop_tasks", NOOP_TASKS_OUT=str(out))
            seconds = playbook("site.yml", namespace, env)
            records = [json.loads(line) for line in out.read_text().splitlines()]
        finally:
            env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
            playbook("playbooks/teardown.yml", namespace, env)
            subprocess.run(["kubectl", "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"],
                           capture_output=True, check=False)
    ran = [r for r in records if r["status"] != "skipped"]
    by_action = collections.Counter()
    for r in ran:
        by_action[r["action"]] += r["modules"]
    print("cold site.yml: %.1fs" % cold)
    print("no-op site.yml: %.1fs, %d tasks, %d ran (not skipped), %d module processes"
          % (seconds, len(records), len(ran), sum(r["modules"] for r in ran)))
    for action, count in by_action.most_common():
        if count:
            print("  %3d  %s" % (count, action))


if __name__ == "__main__":
    main()
