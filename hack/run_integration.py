#!/usr/bin/env python3
"""Run the integration suite over several local environments at once (make integration).

Each worker has its own environment (GKE_AI_LOCAL_DIR: the first worker the tests' usual one, the others
<dir>-w<n>) and takes the next test file from one queue, heaviest first, so the two cores of the project's machines
stay busy while one worker waits on a rollout. Every file runs in its own pytest process; a line per file says how
it went, a line a minute says what is still running, and a failing file's whole output is printed at the end.
The extra environments are taken down afterwards, pass or fail (the lifecycle test checks nothing is left).

    hack/run_integration.py [--workers N] [test files...]
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCALENV = REPO / "hack" / "localcluster" / "localenv.py"
# Minutes each file took in a clean-clone `make test` with two workers (2026-12-04; make integration prints them);
# the longest go first so that no worker is left with a long file at the end. Files not listed count as one minute.
MINUTES = {
    "test_site.py": 7.8, "test_upgrade.py": 7.5, "test_adoption.py": 5.7, "test_dataplane.py": 4.4,
    "test_gie_roles.py": 3.7, "test_loadtest.py": 3.6, "test_gcp_modules.py": 2.0, "test_metrics_loop.py": 1.9,
    "test_gcp_roles.py": 1.6, "test_helm_oci_chart.py": 1.4, "test_clusters.py": 1.3, "test_metrics_path.py": 1.2,
    "test_preflight.py": 1.0, "test_render.py": 1.0, "test_gcloud_walkthrough.py": 0.9,
    "test_gateway_ready.py": 0.8, "test_pod_runner.py": 0.5, "test_k8s_converge.py": 0.4, "test_gke_sim.py": 0.3,
    "test_gcp_fake.py": 0.3, "test_monitoring.py": 0.3, "test_localenv.py": 0.2, "test_kube_http.py": 0.1,
}
SUMMARY = re.compile(r"^=*\s*(?P<text>(\d+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed)"
                     r"(, )?)+.* in [\d.]+s.*?)\s*=*$")


def log(text: str) -> None:
    print("[integration %s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


def env_dir(base: Path, worker: int) -> Path:
    return base if worker == 0 else base.with_name("%s-w%d" % (base.name, worker))


class Worker(threading.Thread):
    def __init__(self, number: int, local_dir: Path, files: "queue.Queue[str]", results: list, logs: Path):
        super().__init__(daemon=True)
        self.number, self.local_dir, self.files, self.results, self.logs = number, local_dir, files, results, logs
        self.current: tuple[str, float] | None = None

    def run(self) -> None:
        env = dict(os.environ, GKE_AI_LOCAL_DIR=str(self.local_dir))
        while True:
            try:
                name = self.files.get_nowait()
            except queue.Empty:
                return
            self.current = (name, time.monotonic())
            out = self.logs / ("%s.log" % name[:-3])
            with open(out, "w") as handle:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "integration", "-p",
                                       "no:cacheprovider", "-rfE", "tests/integration/" + name],
                                      cwd=str(REPO), env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
            seconds = time.monotonic() - self.current[1]
            self.current = None
            text = out.read_text(errors="replace")
            found = [m.group("text") for m in map(SUMMARY.match, text.splitlines()) if m]
            summary = found[-1] if found else "no pytest summary (exit code %d)" % proc.returncode
            self.results.append((name, proc.returncode, seconds, summary, out))
            log("w%d %s: %s (%.0f s)" % (self.number, name, summary, seconds))


def counts(results) -> dict:
    total: dict = {}
    for _name, _rc, _seconds, summary, _out in results:
        for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary):
            total[word] = total.get(word, 0) + int(number)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("INFGW_TEST_WORKERS", "2")))
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    base = Path(os.environ.get("GKE_AI_LOCAL_DIR") or REPO / ".local" / "test")
    names = [Path(f).name for f in args.files] or sorted(
        p.name for p in (REPO / "tests" / "integration").glob("test_*.py"))
    names.sort(key=lambda n: -MINUTES.get(n, 1.0))
    files: "queue.Queue[str]" = queue.Queue()
    for name in names:
        files.put(name)
    logs = base.parent / ("%s-logs" % base.name)
    logs.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(args.workers, len(names)))
    results: list = []
    started = time.monotonic()
    log("%d test files over %d environments (%s); per-file output in %s" % (
        len(names), workers, ", ".join(str(env_dir(base, w)) for w in range(workers)), logs))
    pool = [Worker(w, env_dir(base, w), files, results, logs) for w in range(workers)]
    try:
        for worker in pool:
            worker.start()
        last = time.monotonic()
        while any(w.is_alive() for w in pool):
            time.sleep(1)
            if time.monotonic() - last >= 60:
                last = time.monotonic()
                running = ["w%d %s (%.0f s)" % (w.number, w.current[0], time.monotonic() - w.current[1])
                           for w in pool if w.current]
                log("%.0f min: %d of %d files done; running: %s" % (
                    (time.monotonic() - started) / 60, len(results), len(names), ", ".join(running) or "-"))
    finally:
        for w in range(1, workers):
            proc = subprocess.run([sys.executable, str(LOCALENV), "down"], capture_output=True, text=True,
                                  env=dict(os.environ, GKE_AI_LOCAL_DIR=str(env_dir(base, w))), check=False)
            if proc.returncode != 0:
                log("taking %s down failed:\n%s%s" % (env_dir(base, w), proc.stdout, proc.stderr))
    failed = [r for r in results if r[1] != 0]
    for name, rc, _seconds, _summary, out in failed:
        print("\n" + "=" * 30 + " %s (exit code %d) " % (name, rc) + "=" * 30, flush=True)
        print(out.read_text(errors="replace"), flush=True)
    total = counts(results)
    log("%s in %.0f s (%.1f min) over %d environments; slowest files: %s" % (
        ", ".join("%d %s" % (n, w) for w, n in sorted(total.items())), time.monotonic() - started,
        (time.monotonic() - started) / 60, workers,
        ", ".join("%s %.0f s" % (r[0], r[2]) for r in sorted(results, key=lambda r: -r[2])[:6])))
    if failed or len(results) != len(names):
        log("FAILED: %s" % (", ".join(r[0] for r in failed) or "not every file ran"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
