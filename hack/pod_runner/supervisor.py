"""One pod's containers as processes: start in the pod's network namespace, probe, restart with back-off, and
report the status the kubelet would (through `report(pod_status_dict)`)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import images, podspec, probes, status

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localcluster"))
import podnet  # noqa: E402

log = logging.getLogger("pod_runner")

TICK = 0.1


@dataclasses.dataclass
class Settings:
    env_id: str
    pods_dir: Path  # per-pod directories (volumes, kubeconfig, home)
    logs_dir: Path  # <namespace>_<pod>_<container>.log
    context: images.Context
    backoff: status.Backoff
    kill_grace: float = 10.0  # at most this long between SIGTERM and SIGKILL (the pod's grace period if shorter)


@dataclasses.dataclass
class _ProbeState:
    spec: dict
    next_at: float
    successes: int = 0
    failures: int = 0


class Container:
    def __init__(self, spec: dict, runnable: tuple | None):
        self.spec = spec
        self.runnable = runnable  # (Runnable, match) or None
        self.record = status.ContainerRecord(name=spec["name"], image=spec.get("image", ""),
                                             runnable=runnable is not None)
        self.plan: podspec.Plan | None = None
        self.proc: subprocess.Popen | None = None
        self.started_mono = 0.0
        self.next_start = 0.0  # monotonic time of the next start attempt
        self.crashes = 0  # consecutive
        self.runs = 0  # processes started (restartCount = runs - 1)
        self.probes: dict[str, _ProbeState] = {}
        self.log_path: Path | None = None
        self.log_offset = 0  # where the current run's output starts in the log


class PodWorker(threading.Thread):
    """Runs one pod until stop(). The pod dict is the one the runner saw first (its spec cannot change)."""

    def __init__(self, pod: dict, settings: Settings, lookup: podspec.Lookup, token: podspec.TokenSource,
                 api_ca: bytes, report: Callable[[dict, dict], None], connect: probes.Connect,
                 event: Callable[[dict, str, str, str, str], None] = lambda *a: None):
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.pod, self.settings, self.lookup, self.token, self.api_ca = pod, settings, lookup, token, api_ca
        self.report, self.connect, self._event = report, connect, event
        self.key = f"{meta['namespace']}/{meta['name']}"
        self.uid = meta["uid"]
        self.pod_ip = pod["status"]["podIP"]
        self.netns = podnet.pod_netns(settings.env_id, self.uid)
        self.dir = settings.pods_dir / f"{meta['namespace']}_{meta['name']}_{self.uid[:8]}"
        self.containers = [Container(c, images.find(c.get("image", ""))) for c in pod["spec"]["containers"]]
        self.restart_policy = pod["spec"].get("restartPolicy", "Always")
        grace = pod["spec"].get("terminationGracePeriodSeconds")
        self.grace = min(float(grace if grace is not None else 30), settings.kill_grace)
        self._stopping = threading.Event()
        self._conditions = (pod.get("status") or {}).get("conditions")
        self._last_reported: dict | None = None
        self.phase = "Running"

    # ------------------------------------------------------------------ public

    def stop(self) -> None:
        self._stopping.set()

    def snapshot(self) -> dict:
        """For the runner's state file: pids, states and logs of the containers."""
        return {"uid": self.uid, "pod_ip": self.pod_ip, "netns": self.netns, "containers": {
            c.record.name: {"pid": c.proc.pid if c.proc and c.proc.poll() is None else None,
                            "state": c.record.state, "reason": c.record.reason,
                            "restart_count": c.record.restart_count, "ready": c.record.ready,
                            "log": str(c.log_path) if c.log_path else None}
            for c in self.containers if c.runnable}}

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        try:
            podnet.add_pod(self.settings.env_id, self.uid, self.pod_ip)
        except podnet.PodNetError as err:
            log.error("%s: pod network: %s", self.key, err)
            for c in self.containers:
                if c.runnable:
                    c.record.reason, c.record.message = "CreateContainerError", f"pod network: {err}"
            self._publish(force=True)
            self._stopping.wait()
            self._cleanup()
            return
        log.info("%s: pod network namespace %s, IP %s", self.key, self.netns, self.pod_ip)
        now = time.time()
        for c in self.containers:
            if not c.runnable:
                c.record.started_at = now
        try:
            while not self._stopping.is_set():
                for c in self.containers:
                    if c.runnable:
                        self._step(c)
                self._publish()
                self._stopping.wait(TICK)
        except Exception:  # noqa: BLE001  (a bug must not leave processes behind)
            log.exception("%s: worker failed", self.key)
        finally:
            self._cleanup()

    def _step(self, c: Container) -> None:
        now_mono = time.monotonic()
        if c.proc is None:
            if c.record.state == "terminated" and not self._restarts(c):
                return
            if now_mono >= c.next_start:
                self._start(c)
            return
        code = c.proc.poll()
        if code is not None:
            self._exited(c, code)
            return
        self._probe(c, now_mono)

    def _restarts(self, c: Container) -> bool:
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and c.record.exit_code != 0)

    # ------------------------------------------------------------------ process lifecycle

    def _prepare(self, c: Container) -> bool:
        """Plan the container; on a configuration or image error, report it and retry later (as the kubelet)."""
        runnable, match = c.runnable
        try:
            c.plan = podspec.plan(self.pod, c.spec, runnable, match, self.settings.context, self.dir, self.lookup,
                                  self.token, self.api_ca)
        except podspec.ImageError as err:
            self._waiting(c, "ErrImagePull" if c.record.reason != "ErrImagePull" else "ImagePullBackOff", str(err))
            c.next_start = time.monotonic() + 5
            return False
        except podspec.ConfigError as err:
            self._waiting(c, "CreateContainerConfigError", str(err))
            c.next_start = time.monotonic() + 2
            return False
        for rel in c.plan.dirs:
            (self.dir / rel).mkdir(parents=True, exist_ok=True)
        for rel, content in c.plan.files.items():
            path = self.dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(0o600)
        return True

    def event(self, c: Container, kind: str, reason: str, message: str) -> None:
        try:
            self._event(self.pod, c.record.name, kind, reason, message)
        except Exception as err:  # noqa: BLE001  (an event is never worth stopping a pod for)
            log.debug("%s: event %s: %s", self.key, reason, err)

    def _waiting(self, c: Container, reason: str, message: str) -> None:
        if (c.record.reason, c.record.message) != (reason, message):
            log.warning("%s/%s: %s: %s", self.key, c.record.name, reason, message)
            if reason in ("CreateContainerConfigError", "ErrImagePull", "CrashLoopBackOff", "RunContainerError"):
                kind = {"CrashLoopBackOff": "BackOff", "ErrImagePull": "Failed"}.get(reason, "Failed")
                text = f"Back-off restarting failed container {c.record.name}" if reason == "CrashLoopBackOff" \
                    else f"Error: {message}"
                self.event(c, "Warning", kind, text)
        c.record.state, c.record.reason, c.record.message = "waiting", reason, message
        c.record.ready = c.record.started = False

    def _start(self, c: Container) -> None:
        if not self._prepare(c):
            return
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        meta = self.pod["metadata"]
        c.log_path = self.settings.logs_dir / f"{meta['namespace']}_{meta['name']}_{c.record.name}.log"
        with open(c.log_path, "ab") as logf:
            c.log_offset = logf.seek(0, os.SEEK_END)
            logf.write(f"--- {status.rfc3339(time.time())} start (run {c.runs + 1}): "
                       f"{' '.join(c.plan.argv)}\n".encode())
            logf.flush()
            try:
                c.proc = subprocess.Popen(
                    ["nsenter", f"--net={podnet.NETNS_DIR / self.netns}", "--", *c.plan.argv],
                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=c.plan.env,
                    cwd=str(self.dir), start_new_session=True)
            except OSError as err:
                self._waiting(c, "RunContainerError", str(err))
                c.next_start = time.monotonic() + 5
                return
        c.runs += 1
        c.record.restart_count = c.runs - 1
        c.started_mono = time.monotonic()
        c.record.state, c.record.reason, c.record.message = "running", "", ""
        c.record.started_at, c.record.exit_code = time.time(), None
        c.record.ready = False
        c.probes = self._probe_states(c)
        c.record.started = "startup" not in c.probes
        # no readiness probe and no port to try: ready once started, as the kubelet says
        c.record.ready = c.record.started and "readiness" not in c.probes
        log.info("%s/%s: started pid %d (restart %d)", self.key, c.record.name, c.proc.pid, c.record.restart_count)
        self.event(c, "Normal", "Started", f"Started container {c.record.name} (pid {c.proc.pid})")

    def _probe_states(self, c: Container) -> dict[str, _ProbeState]:
        start = time.monotonic()
        specs = dict(c.plan.probes)
        if "readiness" not in specs and c.plan.first_port:
            # No readiness probe: ready once the container port accepts connections (the contract of the local
            # data plane; the kubelet would call a running container ready at once).
            specs["readiness"] = {"tcpSocket": {"port": c.plan.first_port}, "periodSeconds": 1}
        return {kind: _ProbeState(spec, start + float(spec.get("initialDelaySeconds") or 0))
                for kind, spec in specs.items()}

    def _exited(self, c: Container, code: int) -> None:
        code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as a container runtime reports it
        finished = time.time()
        ran = time.monotonic() - c.started_mono
        tail = ""
        if c.log_path and c.log_path.exists():
            with open(c.log_path, "rb") as f:  # this run's output only, after its start line
                start = max(c.log_offset, f.seek(0, os.SEEK_END) - 4096)
                f.seek(start)
                data = f.read()
                if start == c.log_offset:
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                tail = status.log_tail(data.decode(errors="replace"))
        c.record.last_terminated = status.terminated(c.record, code, finished, tail)
        c.record.exit_code, c.record.finished_at = code, finished
        c.record.ready = c.record.started = False
        c.proc = None
        c.crashes = 1 if ran >= self.settings.backoff.reset_after else c.crashes + 1
        log.warning("%s/%s: exited with status %d after %.1fs", self.key, c.record.name, code, ran)
        if not self._restarts(c):
            c.record.state, c.record.reason = "terminated", c.record.last_terminated["reason"]
            c.record.message = tail
            codes = [x.record.exit_code for x in self.containers if x.runnable]
            if all(x.proc is None and x.record.state == "terminated" for x in self.containers if x.runnable):
                self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
            return
        delay = self.settings.backoff.delay(c.crashes)
        c.next_start = time.monotonic() + delay
        if delay > 0:
            self._waiting(c, "CrashLoopBackOff",
                          f"back-off {delay:g}s restarting failed container={c.record.name} pod={self.pod['metadata']['name']}"
                          f"_{self.pod['metadata']['namespace']}({self.uid})")
        else:
            c.record.state, c.record.reason, c.record.message = "waiting", "ContainerCreating", ""

    def _kill(self, c: Container, reason: str) -> None:
        """Stop the process: SIGTERM to its process group, SIGKILL after the grace period."""
        proc = c.proc
        if not proc or proc.poll() is not None:
            return
        log.info("%s/%s: stopping pid %d (%s)", self.key, c.record.name, proc.pid, reason)
        for sig, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue

    # ------------------------------------------------------------------ probes

    def _probe(self, c: Container, now: float) -> None:
        for kind in ("startup", "liveness", "readiness"):
            state = c.probes.get(kind)
            if not state or now < state.next_at:
                continue
            if kind != "startup" and not c.record.started:
                continue
            if kind == "startup" and c.record.started:
                continue
            spec = state.spec
            result = probes.run_probe(spec, self.connect, self.pod_ip, c.plan.ports)
            state.next_at = time.monotonic() + float(spec.get("periodSeconds") or 10)
            if result:
                state.successes, state.failures = state.successes + 1, 0
            else:
                state.failures, state.successes = state.failures + 1, 0
            threshold_ok = int(spec.get("successThreshold") or 1)
            threshold_fail = int(spec.get("failureThreshold") or 3)
            if kind == "startup":
                if result:
                    c.record.started = True
                    c.record.ready = "readiness" not in c.probes
                elif state.failures >= threshold_fail:
                    self._probe_failed(c, "Startup", result.message)
            elif kind == "liveness":
                if not result and state.failures >= threshold_fail:
                    self._probe_failed(c, "Liveness", result.message)
            else:
                if result and state.successes >= threshold_ok and not c.record.ready:
                    c.record.ready = True
                    log.info("%s/%s: ready", self.key, c.record.name)
                elif not result and state.failures >= threshold_fail and c.record.ready:
                    c.record.ready = False
                    log.warning("%s/%s: not ready: %s", self.key, c.record.name, result.message)
                    self.event(c, "Warning", "Unhealthy", f"Readiness probe failed: {result.message}")
            if c.proc is None:
                return

    def _probe_failed(self, c: Container, kind: str, message: str) -> None:
        log.warning("%s/%s: %s probe failed (%s), restarting", self.key, c.record.name, kind, message)
        self.event(c, "Warning", "Unhealthy", f"{kind} probe failed: {message}")
        self.event(c, "Normal", "Killing", f"Container {c.record.name} failed {kind.lower()} probe, will be restarted")
        self._kill(c, f"failed {kind.lower()} probe")
        self._exited(c, c.proc.wait() if c.proc else 137)

    # ------------------------------------------------------------------ status and cleanup

    def _publish(self, force: bool = False) -> None:
        now = time.time()
        records = [c.record for c in self.containers]
        desired = status.pod_status(records, self._conditions, now, self.phase)
        comparable = _without_times(desired)
        if not force and comparable == self._last_reported:
            return
        try:
            self.report(self.pod, desired)
        except Exception as err:  # noqa: BLE001  (retry at the next tick)
            log.warning("%s: status update failed: %s", self.key, err)
            return
        self._last_reported = comparable
        self._conditions = desired["conditions"]

    def _cleanup(self) -> None:
        for c in self.containers:
            self._kill(c, "pod deleted" if self._stopping.is_set() else "worker stopped")
        try:
            podnet.remove_pod(self.settings.env_id, self.uid)
        except podnet.PodNetError as err:
            log.error("%s: removing %s: %s", self.key, self.netns, err)
        shutil.rmtree(self.dir, ignore_errors=True)
        log.info("%s: stopped", self.key)


def _without_times(status_dict: dict) -> dict:
    """The status without the timestamps that do not change it (transition times are kept by pod_status)."""
    import copy
    out = copy.deepcopy(status_dict)
    for cond in out["conditions"]:
        cond.pop("lastProbeTime", None)
    return out
