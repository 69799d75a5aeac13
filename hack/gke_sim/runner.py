"""The reconcile loop and CLI: watch everything, recompute desired status, patch what differs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

from kubernetes.client.rest import ApiException

from .kube import WATCH_ERRORS, Informer, Store, api_client, request, status_path
from .model import BUILTIN_TYPES, CRD, CUSTOM_TYPES, GATEWAY, Cluster, ResourceType, find_condition, generation, key_of
from .schema import changed_keys, normalize, status_schema, summarize
from .status import Desired, Settings, compute, generation_key

log = logging.getLogger("gke_sim")

DEBOUNCE = 0.05  # seconds to let a burst of watch events settle before recomputing


def served_version(crd: dict) -> str | None:
    """The storage version of an Established CRD (what its objects and status schema are read in)."""
    if (find_condition((crd.get("status") or {}).get("conditions"), "Established") or {}).get("status") != "True":
        return None
    return next((v["name"] for v in crd["spec"]["versions"] if v.get("storage") and v.get("served")), None)


class Simulator:
    def __init__(self, api, settings: Settings, resync: float = 30.0):
        self.api, self.settings, self.resync = api, settings, resync
        self.store = Store()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.informers: dict[ResourceType, Informer] = {}
        self.schemas: dict[ResourceType, dict | None] = {}
        self.seen_at: dict[tuple, float] = {}  # generation_key(gateway) -> when first seen
        self.last_write: dict[tuple, tuple[str, str]] = {}  # object -> (patch sent, resourceVersion it produced)
        self.unstable: set[tuple] = set()

    def stop(self, *_):
        self.stopping.set()
        self.wake.set()

    def _notify(self) -> None:
        self.wake.set()

    def _start(self, rtype: ResourceType, version: str) -> None:
        informer = Informer(self.api, rtype, version, self.store, self._notify, self.resync)
        self.informers[rtype] = informer
        informer.start()

    def _sync_custom_informers(self, cluster: Cluster) -> None:
        """Follow the CRDs: watch a kind once its CRD is Established, stop when the CRD goes away."""
        for rtype in CUSTOM_TYPES:
            crd = cluster.get(CRD, "", rtype.crd_name)
            version = served_version(crd) if crd else None
            current = self.informers.get(rtype)
            if current and current.version == version:
                continue
            if current:
                current.stop()
                del self.informers[rtype]
                self.store.drop(rtype)
                log.info("stopped watching %s/%s (CRD removed or changed)", rtype.crd_name, current.version)
            if version:
                self.schemas[rtype] = status_schema(crd, version)
                self._start(rtype, version)
                log.info("watching %s/%s", rtype.crd_name, version)

    def run(self) -> int:
        log.info("gke-sim started: program-delay=%ss address-base=%s resync=%ss", self.settings.program_delay,
                 self.settings.address_base, self.resync)
        for rtype in BUILTIN_TYPES:
            self._start(rtype, rtype.core_version)
        next_resync = time.monotonic()
        wake_at = None
        while not self.stopping.is_set():
            timeout = max(0.0, next_resync - time.monotonic())
            if wake_at is not None:
                timeout = min(timeout, max(0.0, wake_at - time.time()))
            self.wake.wait(timeout)
            if self.stopping.wait(DEBOUNCE):
                break
            self.wake.clear()
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + self.resync
            self._sync_custom_informers(self.store.snapshot())
            if not all(i.synced.is_set() for i in self.informers.values()):
                continue  # a partial cache would report missing backends that exist; a sync wakes us
            wake_at = self.reconcile()
        for informer in self.informers.values():
            informer.stop()
        log.info("gke-sim stopped")
        return 0

    def reconcile(self) -> float | None:
        cluster = self.store.snapshot()
        now = time.time()
        live = {generation_key(gw) for gw in cluster.all(GATEWAY)}
        self.seen_at = {k: t for k, t in self.seen_at.items() if k in live}
        for k in live:
            self.seen_at.setdefault(k, now)
        plan = compute(cluster, now, self.seen_at, self.settings)
        targets = set()
        for desired in plan.desired:
            targets.add(self._ident(desired))
            self._apply(desired)
        self.last_write = {k: v for k, v in self.last_write.items() if k in targets}
        return plan.wake_at

    @staticmethod
    def _ident(desired: Desired) -> tuple:
        return (desired.rtype, *key_of(desired.obj))

    def _apply(self, desired: Desired) -> None:
        """Merge-patch /status when the normalised desired status differs from the stored one."""
        status = normalize(desired.status, self.schemas.get(desired.rtype))
        if not changed_keys(desired.obj.get("status"), status):
            return
        ident = self._ident(desired)
        meta = desired.obj["metadata"]
        body = json.dumps(status, sort_keys=True)
        if self.last_write.get(ident) == (body, meta.get("resourceVersion")):
            # Our own last write came back different from what was sent: never patch in a loop.
            if ident not in self.unstable:
                self.unstable.add(ident)
                log.warning("%s %s/%s: stored status differs from what was written; not patching again",
                            desired.rtype, *key_of(desired.obj))
            return
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        path = status_path(desired.rtype, self.informers[desired.rtype].version, meta.get("namespace", ""),
                           meta["name"])
        try:
            updated = request(self.api, "PATCH", path, body=patch, content_type="application/merge-patch+json",
                              timeout=(10, 30))
        except ApiException as e:
            if e.status in (404, 409):  # deleted, or changed since the snapshot: the watch brings the news
                log.debug("%s %s: patch skipped (%s)", desired.rtype, meta["name"], e.status)
            else:
                log.warning("%s %s/%s: status patch failed: %s %s", desired.rtype, meta.get("namespace", ""),
                            meta["name"], e.status, e.body or e.reason)
            return
        except WATCH_ERRORS as e:
            log.warning("%s %s/%s: status patch failed: %s", desired.rtype, meta.get("namespace", ""), meta["name"], e)
            return
        self.store.put(desired.rtype, updated)
        self.last_write[ident] = (body, updated["metadata"].get("resourceVersion"))
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        log.info("%s %s gen=%s: %s", desired.rtype, name, generation(desired.obj), summarize(status))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gke_sim", description="Writes the status GKE's gateway controller would "
                                     "write, for Gateway API, InferencePool and GKE policy objects.")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                        help="kubeconfig of the cluster (default: $KUBECONFIG)")
    parser.add_argument("--program-delay", type=float, default=2.0,
                        help="seconds from Accepted to Programmed for each Gateway generation (default 2)")
    parser.add_argument("--address-base", default="127.0.0.",
                        help="Gateway addresses are <base>N, N from 2 (default 127.0.0.)")
    parser.add_argument("--resync", type=float, default=30.0,
                        help="seconds between full relists and recomputes, a safety net for missed events (default 30)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if not args.kubeconfig:
        parser.error("--kubeconfig is required when KUBECONFIG is not set")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # one line per connection drowns the change log
    sim = Simulator(api_client(args.kubeconfig), Settings(args.program_delay, args.address_base), args.resync)
    signal.signal(signal.SIGTERM, sim.stop)
    signal.signal(signal.SIGINT, sim.stop)
    return sim.run()
