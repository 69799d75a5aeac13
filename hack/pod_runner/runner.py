"""The pod runner: the kubelet's part for pods of runnable images on kwok nodes, and a userspace kube-proxy.

It watches pods, Services and EndpointSlices. A pod with a runnable container (images.RUNNABLES), scheduled, with
the pod IP kwok gave it and not being deleted, gets a PodWorker: its own network namespace, a process per
runnable container, probes, restarts and the status the kubelet would write. Deleted pods lose their processes
and namespace. Services get ClusterIP forwarders on the host; pods reach the host's services through the host
gateway forwarders.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from kubernetes.client.rest import ApiException

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "localcluster"))

import podnet  # noqa: E402
from gke_sim.kube import Informer, Store, api_client, request  # noqa: E402
from gke_sim.model import ResourceType  # noqa: E402

from . import images, proxy, status  # noqa: E402
from .supervisor import PodWorker, Settings  # noqa: E402

log = logging.getLogger("pod_runner")

POD = ResourceType("Pod", "", "pods", core_version="v1")
SERVICE = ResourceType("Service", "", "services", core_version="v1")
ENDPOINT_SLICE = ResourceType("EndpointSlice", "discovery.k8s.io", "endpointslices", core_version="v1")


def runnable_pod(pod: dict) -> bool:
    """A pod the runner owns: scheduled, a pod IP from kwok, Running or Pending, not being deleted, and at least
    one container of a runnable image."""
    meta, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    return (not meta.get("deletionTimestamp") and spec.get("nodeName") and st.get("podIP")
            and st.get("phase") in ("Pending", "Running")
            and any(images.find(c.get("image", "")) for c in spec.get("containers") or []))


class Runner:
    def __init__(self, api, settings: Settings, state_file: Path, resync: float = 30.0):
        self.api, self.settings, self.state_file, self.resync = api, settings, state_file, resync
        self.store = Store()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.workers: dict[str, PodWorker] = {}  # pod uid -> worker
        self.retiring: list[PodWorker] = []  # workers of deleted pods still stopping their processes
        self.pod_net = podnet.factory(podnet.pod_network_netns(settings.env_id))
        self.services = proxy.ServiceProxy(self.pod_net.create_connection)
        self.api_ca = Path(api.configuration.ssl_ca_cert).read_bytes() if api.configuration.ssl_ca_cert else b""
        self._last_state = ""

    def stop(self, *_):
        self.stopping.set()
        self.wake.set()

    # ------------------------------------------------------------------ API reads for the pod specs

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        plural = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
        try:
            return request(self.api, "GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}", timeout=(5, 10))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def token(self, namespace: str, service_account: str, pod: dict) -> str:
        """A TokenRequest bound to the pod, as the kubelet's projected token (3607 s: the API server extends
        pod-bound tokens of this lifetime, as it does for the kubelet's)."""
        from .podspec import ConfigError
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "expirationSeconds": 3607,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                               "uid": pod["metadata"]["uid"]}}}
        try:
            got = request(self.api, "POST",
                          f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
                          body=body, timeout=(5, 10))
        except ApiException as err:
            raise ConfigError(f"token of serviceaccount {namespace}/{service_account}: {err.status} {err.reason}") \
                from err
        return got["status"]["token"]

    def report(self, pod: dict, pod_status: dict) -> None:
        meta = pod["metadata"]
        body = {"metadata": {"uid": meta["uid"]}, "status": pod_status}
        try:
            request(self.api, "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                    body=body, content_type="application/strategic-merge-patch+json", timeout=(5, 10))
        except ApiException as err:
            if err.status in (404, 409):  # gone, or a new pod of that name (uid precondition)
                return
            raise
        ready = [c["name"] for c in pod_status["containerStatuses"] if c["ready"]]
        log.debug("%s/%s status: ready %s", meta["namespace"], meta["name"], ready)
        self.wake.set()  # the state file shows it

    def event(self, pod: dict, container: str, kind: str, reason: str, message: str) -> None:
        """An Event on the pod, as the kubelet records them (source: the pod runner, on the pod's node)."""
        meta = pod["metadata"]
        now = status.rfc3339(time.time())
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"],
                                   "fieldPath": f"spec.containers{{{container}}}"},
                "type": kind, "reason": reason, "message": message, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": "pod-runner", "host": pod["spec"].get("nodeName", "")},
                "reportingComponent": "pod-runner", "reportingInstance": pod["spec"].get("nodeName", "")}
        try:
            request(self.api, "POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body, timeout=(5, 10))
        except ApiException as err:
            log.debug("event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], err)

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> None:
        cluster = self.store.snapshot()
        pods = cluster.all(POD)
        want = {p["metadata"]["uid"]: p for p in pods if runnable_pod(p)}
        for uid in [u for u in self.workers if u not in want]:
            worker = self.workers.pop(uid)
            log.info("%s: pod gone or deleting; stopping its processes", worker.key)
            worker.stop()
            self.retiring.append(worker)
        self.retiring = [w for w in self.retiring if w.is_alive()]
        busy_ips = {w.pod_ip for w in self.retiring}
        for uid, pod in want.items():
            if uid not in self.workers and pod["status"]["podIP"] in busy_ips:
                # kwok hands a deleted pod's IP to the next pod at once (a Recreate rollout): wait until the old
                # pod's namespace, which holds that address too, is gone (the loop reconciles every second)
                continue
            if uid not in self.workers:
                worker = PodWorker(pod, self.settings, self.lookup, self.token, self.api_ca, self.report,
                                   self.pod_net.create_connection, self.event)
                self.workers[uid] = worker
                worker.start()
        self.services.sync(cluster.all(SERVICE), cluster.all(ENDPOINT_SLICE))
        self._write_state()

    def _write_state(self) -> None:
        state = {"env_id": self.settings.env_id, "pid": os.getpid(),
                 "pods": {w.key: w.snapshot() for w in self.workers.values()}}
        text = json.dumps(state, indent=2, sort_keys=True) + "\n"
        if text != self._last_state:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.state_file)
            self._last_state = text

    def cleanup_stale(self) -> None:
        """Pod namespaces a previous runner of this environment left (it was killed): their processes go too."""
        for name in podnet.environment_netns(self.settings.env_id):
            if name != podnet.pod_network_netns(self.settings.env_id):
                log.info("removing stale pod namespace %s", name)
                podnet.delete_netns(name)

    def run(self) -> int:
        self.cleanup_stale()
        host = proxy.host_gateway(self.pod_net.listen, podnet.HOST_GATEWAY, self.settings.context.host_ports)
        log.info("pod runner started: environment %s, host gateway %s (%s), runnable images: %s",
                 self.settings.env_id, podnet.HOST_GATEWAY,
                 ", ".join(f"{k}:{v}" for k, v in sorted(self.settings.context.host_ports.items())),
                 ", ".join(r.name for r in images.RUNNABLES))
        informers = [Informer(self.api, rtype, rtype.core_version, self.store, self.wake.set, self.resync)
                     for rtype in (POD, SERVICE, ENDPOINT_SLICE)]
        for informer in informers:
            informer.start()
        try:
            while not self.stopping.is_set():
                self.wake.wait(1.0)
                self.wake.clear()
                if self.stopping.is_set():
                    break
                if all(i.synced.is_set() for i in informers):
                    try:
                        self.reconcile()
                    except Exception:  # noqa: BLE001  (log it and try again: pods must not lose their runner)
                        log.exception("reconcile failed")
        finally:
            for informer in informers:
                informer.stop()
            for worker in self.workers.values():
                worker.stop()
            for worker in [*self.workers.values(), *self.retiring]:
                worker.join(timeout=30)
            self.services.close()
            for fwd in host:
                fwd.close()
            self.workers.clear()
            self._write_state()
            log.info("pod runner stopped")
        return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pod_runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--env-id", required=True, help="the environment id (state.json env_id)")
    parser.add_argument("--state-dir", required=True, type=Path,
                        help="the environment's directory (.local): pods/, logs/pods/, pod-runner.json")
    parser.add_argument("--bin-dir", required=True, type=Path, help="the tool cache's bin/ directory")
    parser.add_argument("--versions", required=True, type=Path, help="hack/localcluster/versions.env")
    parser.add_argument("--host-port", action="append", default=[], metavar="NAME=PORT",
                        help="a host loopback service pods may reach at the host gateway (repeatable); "
                             "apiserver is required")
    parser.add_argument("--backoff-base", type=float, default=10.0, help="crash-loop back-off start (kubelet: 10)")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="crash-loop back-off cap (kubelet: 300)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    podnet.check_env_id(args.env_id)
    args.host_ports = {}
    for item in args.host_port:
        name, _, port = item.partition("=")
        if not port.isdigit():
            parser.error(f"--host-port {item!r}: want NAME=PORT")
        args.host_ports[name] = int(port)
    if "apiserver" not in args.host_ports:
        parser.error("--host-port apiserver=PORT is required")
    return args


def read_versions(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value.strip('"')
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    ctx = images.Context(bin_dir=args.bin_dir, versions=read_versions(args.versions),
                         host_gateway=podnet.HOST_GATEWAY, host_ports=args.host_ports)
    settings = Settings(env_id=args.env_id, pods_dir=args.state_dir / "pods",
                        logs_dir=args.state_dir / "logs" / "pods", context=ctx,
                        backoff=status.Backoff(base=args.backoff_base, cap=args.backoff_max,
                                               reset_after=max(2 * args.backoff_max, 60.0)))
    runner = Runner(api_client(args.kubeconfig), settings, args.state_dir / "pod-runner.json")
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    return runner.run()
