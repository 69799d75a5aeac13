"""What the kubelet would report for a container and its pod: container states, restarts and back-off, the
Ready/ContainersReady conditions. Pure functions of the container records, unit-tested."""

from __future__ import annotations

import dataclasses
import datetime


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Backoff:
    """The kubelet's crash-loop back-off: the first restart is immediate, then base, 2*base, ... up to cap; a
    container that ran for `reset_after` seconds starts over."""
    base: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0

    def delay(self, consecutive_crashes: int) -> float:
        if consecutive_crashes <= 1:
            return 0.0
        return min(self.base * 2 ** (consecutive_crashes - 2), self.cap)


@dataclasses.dataclass
class ContainerRecord:
    """One container as the runner tracks it (times are wall-clock seconds)."""
    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"  # of waiting or terminated
    message: str = ""
    started_at: float | None = None
    exit_code: int | None = None
    finished_at: float | None = None
    last_terminated: dict | None = None  # the lastState.terminated dict
    restart_count: int = 0
    started: bool = False  # startup probe passed (or none)
    ready: bool = False
    runnable: bool = True  # False: a container of an image without a process (reported running and ready)


def container_status(rec: ContainerRecord, now: float) -> dict:
    status = {"name": rec.name, "image": rec.image, "imageID": "", "ready": rec.ready,
              "restartCount": rec.restart_count, "started": rec.state == "running" and rec.started}
    if not rec.runnable:
        status.update(ready=True, started=True,
                      state={"running": {"startedAt": rfc3339(rec.started_at or now)}})
        return status
    if rec.state == "running":
        status["state"] = {"running": {"startedAt": rfc3339(rec.started_at or now)}}
        status["containerID"] = f"local://{rec.name}-{rec.restart_count}"
    elif rec.state == "terminated":
        status["state"] = {"terminated": _terminated(rec)}
    else:
        waiting = {"reason": rec.reason}
        if rec.message:
            waiting["message"] = rec.message
        status["state"] = {"waiting": waiting}
    if rec.last_terminated:
        status["lastState"] = {"terminated": rec.last_terminated}
    return status


def _terminated(rec: ContainerRecord) -> dict:
    out = {"exitCode": rec.exit_code if rec.exit_code is not None else -1, "reason": rec.reason,
           "startedAt": rfc3339(rec.started_at or 0), "finishedAt": rfc3339(rec.finished_at or 0)}
    if rec.message:
        out["message"] = rec.message
    return out


def terminated(rec: ContainerRecord, exit_code: int, finished_at: float, log_tail: str) -> dict:
    """The lastState.terminated of a process that exited (any exit is a failure for a server: the simulator
    exits 0 on bad flags, which the kubelet would report as Completed and restart all the same)."""
    return {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": rfc3339(rec.started_at or finished_at), "finishedAt": rfc3339(finished_at),
            **({"message": log_tail} if log_tail else {})}


def _condition(kind: str, ok: bool, reason: str | None, message: str | None, previous: dict, now: float) -> dict:
    status = "True" if ok else "False"
    old = previous.get(kind) or {}
    since = old.get("lastTransitionTime") if old.get("status") == status else rfc3339(now)
    cond = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since or rfc3339(now)}
    if not ok:
        cond.update(reason=reason, message=message)
    return cond


def pod_status(records: list[ContainerRecord], previous_conditions: list | None, now: float,
               phase: str = "Running") -> dict:
    """The status fields the runner owns: phase, containerStatuses and the readiness conditions."""
    previous = {c["type"]: c for c in previous_conditions or []}
    not_ready = [r.name for r in records if not (r.ready or not r.runnable)]
    all_ready = not not_ready
    message = None if all_ready else f"containers with unready status: [{' '.join(not_ready)}]"
    return {
        "phase": phase,
        "conditions": [
            _condition("Initialized", True, None, None, previous, now),
            _condition("ContainersReady", all_ready, "ContainersNotReady", message, previous, now),
            _condition("Ready", all_ready, "ContainersNotReady", message, previous, now),
        ],
        "containerStatuses": [container_status(r, now) for r in records],
    }


def log_tail(text: str, limit: int = 1024, lines: int = 10) -> str:
    """The end of a container's log, as the kubelet's FallbackToLogsOnError puts it in terminated.message."""
    tail = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return tail[-limit:]
