"""Google Cloud Managed Service for Prometheus (managed collection), as far as the metrics path needs it.

What GKE runs (the gmp-operator and a collector on every node) reduced to one loop in the fake: read the
PodMonitoring and ClusterPodMonitoring objects, turn each endpoint into targets as GMP's generated scrape
configuration does (pkg/operator/apis/monitoring/v1/pod_config.go), scrape them for real, and write every
sample to the fake's Cloud Monitoring (monitoring.py) the way GMP exports to Monarch:

* metric type prometheus.googleapis.com/<name>/<kind>: gauge -> /gauge (GAUGE), counter -> /counter
  (CUMULATIVE), histogram -> <base>/histogram (CUMULATIVE DISTRIBUTION), summary -> <base>/summary quantiles
  (GAUGE), <base>_sum/summary:counter and <base>_count/summary (CUMULATIVE), untyped -> /unknown (GAUGE) and
  /unknown:counter (CUMULATIVE); plus up/gauge per target;
* resource prometheus_target{project_id, location, cluster, namespace, job, instance}; every other target label
  (targetLabels.metadata: pod, container, node, top_level_controller_name/type; targetLabels.fromPod) and the
  sample's own labels are metric labels (a sample label that collides with a target label becomes exported_<name>).

Targets: the selected pods (namespace of the PodMonitoring; any namespace for ClusterPodMonitoring) that have an
IP and are not Failed/Succeeded (filterRunning); a port name keeps the containers' ports of that name (none:
no target, as in GMP), a port number scrapes podIP:number. instance is <pod>:<port>, job the object's name.
Auth: `authorization` (Bearer by default) and `basicAuth` read their secret as the collector's service account
(system:serviceaccount:gmp-system:collector, by impersonation), so the RBAC the charts grant it is what counts;
`tls` (insecureSkipVerify, serverName, ca/cert/key secrets). `oauth2` and `proxyUrl` make the target fail with a
message saying the local fake lacks them.

Status, as GMP writes it: every object gets conditions[ConfigurationCreateSuccess] and observedGeneration; with
target status enabled in the OperatorConfig gmp-public/config (features.targetStatus.enabled, off by default
as on GKE) each gets status.endpointStatuses (name PodMonitoring/<ns>/<name>/<port>, activeTargets,
unhealthyTargets, sampleGroups of at most 5 targets per error with health, lastError and labels), refreshed
every TARGET_STATUS_PERIOD seconds. A wrong port number or a missing or unreadable secret is an unhealthy
target with Prometheus' error text; a port name no container has gives no target at all.

Pods are reached through the environment's pod network namespace (hack/localcluster/podnet.py) when one is
given, otherwise directly (unit tests).
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import logging
import math
import re
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .world import CLUSTER, PROJECT, REGION

LOG = logging.getLogger("gcp_fake.gmp")
GROUP, VERSION = "monitoring.googleapis.com", "v1"
COLLECTOR_USER = "system:serviceaccount:gmp-system:collector"
TARGET_STATUS_PERIOD = 10.0
SYNC_PERIOD = 2.0
MAX_SAMPLE_TARGETS = 5
RESOURCE_LABELS = ("project_id", "location", "cluster", "namespace", "job", "instance")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def duration(text: str | None, default: float) -> float:
    if not text:
        return default
    total, pos = 0.0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            raise ValueError(text)
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(text)
    return total


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- exposition format

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_exposition(text: str) -> tuple[dict, list]:
    """({family: type}, [(name, labels, value)]) of Prometheus' text format 0.0.4."""
    types, samples = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"invalid sample line {line!r}")
        labels, body, pos = {}, m.group(3) or "", 0
        while pos < len(body):
            lm = _LABEL.match(body, pos)
            if not lm:
                raise ValueError(f"invalid labels in {line!r}")
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), lm.group(2))
            pos = lm.end()
        raw = m.group(4)
        value = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(raw)
        samples.append((m.group(1), labels, float(raw) if value is None else value))
    return types, samples


def _family(name: str, types: dict) -> tuple[str, str]:
    """(family, type) of a sample name."""
    if name in types:
        return name, types[name]
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary", "counter"):
            return base, types[base]
    return name, "untyped"


def to_monarch(types: dict, samples: list) -> list:
    """[(metric type, kind, value type, labels, value)] for one scrape, GMP's mapping."""
    out, histograms = [], {}
    for name, labels, value in samples:
        family, kind = _family(name, types)
        if kind == "gauge":
            out.append((f"prometheus.googleapis.com/{name}/gauge", "GAUGE", "DOUBLE", labels, value))
        elif kind == "counter":
            out.append((f"prometheus.googleapis.com/{name}/counter", "CUMULATIVE", "DOUBLE", labels, value))
        elif kind == "histogram":
            key = (family, tuple(sorted((k, v) for k, v in labels.items() if k != "le")))
            h = histograms.setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
            if name.endswith("_bucket"):
                h["buckets"][float(labels.get("le", "+Inf"))] = value
            elif name.endswith("_sum"):
                h["sum"] = value
            elif name.endswith("_count"):
                h["count"] = value
        elif kind == "summary":
            if name == family:
                out.append((f"prometheus.googleapis.com/{name}/summary", "GAUGE", "DOUBLE", labels, value))
            elif name.endswith("_sum"):
                out.append((f"prometheus.googleapis.com/{name}/summary:counter", "CUMULATIVE", "DOUBLE", labels, value))
            else:
                out.append((f"prometheus.googleapis.com/{name}/summary", "CUMULATIVE", "DOUBLE", labels, value))
        else:
            out.append((f"prometheus.googleapis.com/{name}/unknown", "GAUGE", "DOUBLE", labels, value))
            out.append((f"prometheus.googleapis.com/{name}/unknown:counter", "CUMULATIVE", "DOUBLE", labels, value))
    for (family, label_items), h in histograms.items():
        bounds = sorted(b for b in h["buckets"] if math.isfinite(b))
        cumulative = [h["buckets"][b] for b in bounds] + [h["buckets"].get(math.inf, h["count"])]
        counts, prev = [], 0.0
        for c in cumulative:
            counts.append(str(int(max(c - prev, 0))))
            prev = c
        count = int(h["count"])
        value = {"count": str(count), "mean": (h["sum"] / count) if count else 0.0,
                 "bucketOptions": {"explicitBuckets": {"bounds": bounds}}, "bucketCounts": counts}
        out.append((f"prometheus.googleapis.com/{family}/histogram", "CUMULATIVE", "DISTRIBUTION",
                    dict(label_items), value))
    return out


# --------------------------------------------------------------------------- selection

def selector_matches(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and present and labels[key] in values) \
                or (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def top_level_controller(pod: dict) -> tuple[str, str]:
    """GMP's top_level_controller_{name,type} from the pod's controller reference."""
    owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
    if owner is None:
        return "", ""
    name, kind = owner.get("name", ""), owner.get("kind", "")
    labels = pod["metadata"].get("labels") or {}
    m = re.fullmatch(r"(.+)-[a-z0-9]+", name)
    if kind == "ReplicaSet" and "pod-template-hash" in labels and m:
        return m.group(1), "Deployment"
    m = re.fullmatch(r"(.+)-\d{8}", name)
    if kind == "Job" and m:
        return m.group(1), "CronJob"
    return name, kind


@dataclass
class Target:
    key: tuple
    pool: str  # GMP's scrape pool: PodMonitoring/<ns>/<name>/<port>
    monitoring: tuple  # (kind, namespace, name)
    address: tuple  # (ip, port)
    labels: dict  # target labels, as GMP's target status shows them
    endpoint: dict
    secret_namespace: str
    interval: float
    timeout: float
    health: str = "unknown"
    last_error: str = ""
    last_duration: float = 0.0
    next_due: float = 0.0
    scraping: bool = False


def targets_for(kind: str, obj: dict, pods: list, location: tuple = (PROJECT, REGION, CLUSTER)) -> list:
    """The targets one PodMonitoring/ClusterPodMonitoring yields from the pods (GMP's relabelling, in Python)."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    namespace = meta.get("namespace", "")
    project, region, cluster = location
    target_labels = spec.get("targetLabels") or {}
    metadata = target_labels.get("metadata")
    if metadata is None:
        metadata = [] if kind == "PodMonitoring" else ["namespace"]
    out = []
    for index, ep in enumerate(spec.get("endpoints") or []):
        port = ep.get("port")
        port_text = str(port)
        interval = duration(ep.get("interval"), 60.0)
        timeout = min(duration(ep.get("timeout"), interval), interval)
        for pod in pods:
            pmeta, pspec, pstatus = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            if kind == "PodMonitoring" and pmeta.get("namespace") != namespace:
                continue
            if not pstatus.get("podIP") or not selector_matches(spec.get("selector"), pmeta.get("labels") or {}):
                continue
            if spec.get("filterRunning", True) and pstatus.get("phase") in ("Failed", "Succeeded"):
                continue
            candidates = []  # (container, port number, port label)
            if isinstance(port, str):
                for container in pspec.get("containers") or []:
                    for cport in container.get("ports") or []:
                        if cport.get("name") and re.fullmatch(port, cport["name"]):
                            candidates.append((container["name"], cport["containerPort"], cport["name"]))
            else:
                candidates.append((None, int(port), str(port)))
            controller_name, controller_type = top_level_controller(pod)
            for container, number, port_label in candidates:
                labels = {"project_id": project, "location": region, "cluster": cluster}
                wanted = set(metadata) | ({"namespace"} if kind == "PodMonitoring" else set())
                if "namespace" in wanted:
                    labels["namespace"] = pmeta["namespace"]
                if "pod" in wanted:
                    labels["pod"] = pmeta["name"]
                if "container" in wanted and container is not None:
                    labels["container"] = container
                if "node" in wanted:
                    labels["node"] = pspec.get("nodeName", "")
                if "top_level_controller_name" in wanted:
                    labels["top_level_controller_name"] = controller_name
                if "top_level_controller_type" in wanted:
                    labels["top_level_controller_type"] = controller_type
                labels["job"] = meta["name"]
                instance = pspec.get("nodeName", "") if controller_type == "DaemonSet" else pmeta["name"]
                labels["instance"] = f"{instance}:{port_label}"
                for mapping in target_labels.get("fromPod") or []:
                    value = (pmeta.get("labels") or {}).get(mapping["from"])
                    if value is not None:
                        labels[mapping.get("to") or mapping["from"]] = value
                key = (kind, namespace, meta["name"], index, pmeta.get("uid"), number)
                pool = f"{kind}/{namespace}/{meta['name']}/{port_text}" if kind == "PodMonitoring" \
                    else f"{kind}/{meta['name']}/{port_text}"
                out.append(Target(key, pool, (kind, namespace, meta["name"]), (pstatus["podIP"], number), labels, ep,
                                  namespace if kind == "PodMonitoring" else "default", interval, timeout))
    return out


# --------------------------------------------------------------------------- scraping

class ScrapeError(Exception):
    pass


def _connection(scheme: str, host: str, port: int, timeout: float, connect, context: ssl.SSLContext | None,
                server_name: str | None):
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = connect((host, port), timeout)

    class TLSConn(http.client.HTTPSConnection):
        def connect(self):
            sock = connect((host, port), timeout)
            self.sock = context.wrap_socket(sock, server_hostname=server_name or host)

    if scheme == "https":
        return TLSConn(host, port, timeout=timeout, context=context)
    return Conn(host, port, timeout=timeout)


class Collector:
    """The loop: sync targets from the API server, scrape what is due, write samples and statuses."""

    def __init__(self, world, kube, secrets, connect=socket.create_connection,
                 location: tuple = (PROJECT, REGION, CLUSTER), workers: int = 8):
        self.world = world
        self.kube = kube  # KubeJSON as the collector and operator (admin): list objects, write status
        self.secrets = secrets  # KubeJSON impersonating the collector's service account
        self.connect = connect
        self.location = location
        self.targets: dict = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gmp-scrape")
        self.monitorings: dict = {}  # (kind, ns, name) -> object
        self.target_status = False
        self.last_status: dict = {}  # (kind, ns, name) -> (rendered status without times, time written)

    # ---- secrets and auth

    def secret_value(self, namespace: str, selector: dict | None) -> str | None:
        ref = (selector or {}).get("secret")
        if not ref:
            return None
        ns = ref.get("namespace") or namespace
        try:
            secret = self.secrets.get(f"/api/v1/namespaces/{ns}/secrets/{urllib.parse.quote(ref['name'])}")
        except KubeError:
            raise ScrapeError(f"secret {ns}/{ref['name']} not found or forbidden") from None
        data = secret.get("data") or {}
        if ref.get("key") not in data:
            raise ScrapeError(f"secret {ns}/{ref['name']} does not contain key: {ref.get('key')}")
        return base64.b64decode(data[ref["key"]]).decode()

    def request_parts(self, target: Target) -> tuple[dict, ssl.SSLContext | None, str | None]:
        ep, headers = target.endpoint, {}
        auth, basic = ep.get("authorization"), ep.get("basicAuth")
        if ep.get("oauth2") or ep.get("proxyUrl"):
            raise ScrapeError("oauth2 and proxyUrl are not implemented by the local GMP fake")
        if auth is not None:
            try:
                credentials = self.secret_value(target.secret_namespace, auth.get("credentials"))
            except ScrapeError as exc:
                raise ScrapeError(f"unable to read authorization credentials: {exc}") from None
            if credentials is not None:
                headers["Authorization"] = f"{auth.get('type') or 'Bearer'} {credentials.strip()}"
        elif basic is not None:
            try:
                password = self.secret_value(target.secret_namespace, basic.get("password")) or ""
            except ScrapeError as exc:
                raise ScrapeError(f"unable to read basic auth password: {exc}") from None
            raw = f"{basic.get('username', '')}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        context, server_name = None, None
        if ep.get("scheme") == "https":
            tls = ep.get("tls") or {}
            context = ssl.create_default_context()
            server_name = tls.get("serverName")
            ca = self.secret_value(target.secret_namespace, tls.get("ca"))
            if ca:
                context.load_verify_locations(cadata=ca)
            cert, key = (self.secret_value(target.secret_namespace, tls.get(k)) for k in ("cert", "key"))
            if cert and key:
                with tempfile.NamedTemporaryFile("w") as cf, tempfile.NamedTemporaryFile("w") as kf:
                    cf.write(cert)
                    kf.write(key)
                    cf.flush()
                    kf.flush()
                    context.load_cert_chain(cf.name, kf.name)
            if tls.get("insecureSkipVerify"):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return headers, context, server_name

    def scrape(self, target: Target) -> None:
        ep = target.endpoint
        scheme = ep.get("scheme") or "http"
        path = ep.get("path") or "/metrics"
        params = ep.get("params") or {}
        query = urllib.parse.urlencode([(k, v) for k, vs in params.items() for v in vs])
        host, port = target.address
        url = f"{scheme}://{host}:{port}{path}" + (f"?{query}" if query else "")
        started = time.time()
        try:
            try:
                headers, context, server_name = self.request_parts(target)
                headers.update({"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1",
                                "User-Agent": "Prometheus/2.53.5-gmp (gcp-fake)",
                                "X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout:g}"})
                conn = _connection(scheme, host, port, target.timeout, self.connect, context, server_name)
                try:
                    conn.request("GET", path + (f"?{query}" if query else ""), headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
            except ScrapeError as exc:
                raise ScrapeError(f'Get "{url}": {exc}') from None
            except ConnectionRefusedError:
                raise ScrapeError(f'Get "{url}": dial tcp {host}:{port}: connect: connection refused') from None
            except (socket.timeout, TimeoutError):
                raise ScrapeError(f'Get "{url}": context deadline exceeded') from None
            except (OSError, http.client.HTTPException) as exc:
                raise ScrapeError(f'Get "{url}": {exc}') from None
            if resp.status != 200:
                raise ScrapeError(f"server returned HTTP status {resp.status} {resp.reason}")
            try:
                types, samples = parse_exposition(body.decode("utf-8", errors="replace"))
            except ValueError as exc:
                raise ScrapeError(str(exc)) from None
            self.write(target, types, samples, started)
            target.health, target.last_error = "up", ""
        except ScrapeError as exc:
            target.health, target.last_error = "down", str(exc)
        target.last_duration = time.time() - started
        self.write_up(target, started)

    def _series_labels(self, target: Target, labels: dict) -> tuple[dict, dict]:
        resource = {k: target.labels.get(k, "") for k in RESOURCE_LABELS}
        metric = {k: v for k, v in target.labels.items() if k not in RESOURCE_LABELS}
        for k, v in labels.items():
            metric[f"exported_{k}" if k in target.labels else k] = v
        return metric, resource

    def write(self, target: Target, types: dict, samples: list, ts: float) -> None:
        store = self.world.monitoring
        for metric_type, kind, value_type, labels, value in to_monarch(types, samples):
            if isinstance(value, float) and math.isnan(value):
                continue
            metric, resource = self._series_labels(target, labels)
            store.write(metric_type, kind, value_type, metric, "prometheus_target", resource, ts, value)

    def write_up(self, target: Target, ts: float) -> None:
        metric, resource = self._series_labels(target, {})
        self.world.monitoring.write("prometheus.googleapis.com/up/gauge", "GAUGE", "DOUBLE", metric,
                                    "prometheus_target", resource, ts, 1.0 if target.health == "up" else 0.0)

    # ---- the loop

    def sync(self) -> None:
        objects = {}
        for kind, path in (("PodMonitoring", f"/apis/{GROUP}/{VERSION}/podmonitorings"),
                           ("ClusterPodMonitoring", f"/apis/{GROUP}/{VERSION}/clusterpodmonitorings")):
            for obj in self.kube.get(path).get("items") or []:
                objects[(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
        pods = self.kube.get("/api/v1/pods").get("items") or [] if objects else []
        try:
            config = self.kube.get(f"/apis/{GROUP}/{VERSION}/namespaces/gmp-public/operatorconfigs/config")
        except KubeError:
            config = {}
        self.target_status = bool(((config.get("features") or {}).get("targetStatus") or {}).get("enabled"))
        wanted = {}
        for (kind, _ns, _name), obj in objects.items():
            try:
                found = targets_for(kind, obj, pods, self.location)
            except (ValueError, TypeError, KeyError) as exc:
                LOG.warning("%s %s/%s: invalid: %s", kind, _ns, _name, exc)
                found = []
            for target in found:
                wanted[target.key] = target
        with self.lock:
            for key, target in wanted.items():
                old = self.targets.get(key)
                if old is not None:  # the same target: keep its object (a scrape may be running on it)
                    for name in ("pool", "monitoring", "address", "labels", "endpoint", "secret_namespace",
                                 "interval", "timeout"):
                        setattr(old, name, getattr(target, name))
                    wanted[key] = old
            self.targets = wanted
            self.monitorings = objects

    def run_due(self) -> None:
        now = time.time()
        with self.lock:
            due = [t for t in self.targets.values() if not t.scraping and t.next_due <= now]
            for t in due:
                t.scraping = True
                t.next_due = now + t.interval

        def one(target):
            try:
                self.scrape(target)
            except Exception:  # noqa: BLE001  (a scrape must never kill the collector)
                LOG.exception("scrape of %s failed", target.pool)
            finally:
                target.scraping = False
        for t in due:
            self.pool.submit(one, t)

    def statuses(self) -> dict:
        """{(kind, ns, name): status} as GMP writes it (endpointStatuses only with target status on)."""
        with self.lock:
            targets = list(self.targets.values())
            objects = dict(self.monitorings)
        by_object: dict = {}
        for t in targets:
            by_object.setdefault(t.monitoring, {}).setdefault(t.pool, []).append(t)
        out = {}
        for key, obj in objects.items():
            if any(t.health == "unknown" for pool in by_object.get(key, {}).values() for t in pool):
                continue  # a target not scraped yet: report once every target has a health
            status = {"observedGeneration": obj["metadata"].get("generation", 1),
                      "conditions": [{"type": "ConfigurationCreateSuccess", "status": "True"}]}
            if self.target_status:
                endpoints = []
                for pool, members in sorted(by_object.get(key, {}).items()):
                    groups: dict = {}
                    for t in sorted(members, key=lambda m: m.labels.get("instance", "")):
                        groups.setdefault(t.last_error, []).append(t)
                    sample_groups = []
                    for error, group in sorted(groups.items(), key=lambda g: (g[0] == "", g[0])):
                        sample_targets = []
                        for t in group[:MAX_SAMPLE_TARGETS]:
                            sample = {"health": t.health, "labels": dict(t.labels),
                                      "lastScrapeDurationSeconds": f"{t.last_duration:.6f}".rstrip("0").rstrip(".")}
                            if error:
                                sample["lastError"] = error
                            sample_targets.append(sample)
                        sample_groups.append({"sampleTargets": sample_targets, "count": len(group)})
                    endpoints.append({"name": pool, "activeTargets": len(members),
                                      "unhealthyTargets": sum(1 for t in members if t.health != "up"),
                                      "collectorsFraction": "1", "sampleGroups": sample_groups})
                status["endpointStatuses"] = endpoints
            out[key] = status
        return out

    def write_statuses(self, force: bool = False) -> None:
        now = time.time()
        for key, status in self.statuses().items():
            previous = self.last_status.get(key)
            if not force and previous and previous[0] == status and now - previous[1] < TARGET_STATUS_PERIOD * 6:
                continue
            if not force and previous and now - previous[1] < TARGET_STATUS_PERIOD:
                continue
            stamped = json.loads(json.dumps(status))
            stamp = now_rfc3339()
            for cond in stamped["conditions"]:
                cond["lastUpdateTime"] = stamp
                old = ((self.monitorings.get(key) or {}).get("status") or {}).get("conditions") or []
                same = next((c for c in old if c.get("type") == cond["type"] and c.get("status") == cond["status"]),
                            None)
                cond["lastTransitionTime"] = (same or {}).get("lastTransitionTime") or stamp
            for endpoint in stamped.get("endpointStatuses", []):
                endpoint["lastUpdateTime"] = stamp
            if not self.target_status:
                stamped["endpointStatuses"] = None  # merge patch: remove what an earlier period wrote
            kind, ns, name = key
            plural = "podmonitorings" if kind == "PodMonitoring" else "clusterpodmonitorings"
            path = f"/apis/{GROUP}/{VERSION}/" + (f"namespaces/{ns}/" if ns else "") + f"{plural}/{name}/status"
            try:
                self.kube.patch(path, {"status": stamped})
                self.last_status[key] = (status, now)
            except KubeError as exc:
                if exc.status != 404:  # deleted meanwhile
                    LOG.warning("status of %s %s/%s: %s", kind, ns, name, exc)

    def run(self, stop: threading.Event) -> None:
        next_sync = 0.0
        while not stop.is_set():
            try:
                if time.time() >= next_sync:
                    self.sync()
                    self.write_statuses()
                    next_sync = time.time() + SYNC_PERIOD
                self.run_due()
            except Exception:  # noqa: BLE001  (a background loop must not die)
                LOG.exception("GMP collector loop failed; retrying in 5s")
                next_sync = time.time() + 5
            stop.wait(0.25)


# --------------------------------------------------------------------------- API access

class KubeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class KubeJSON:
    """Raw JSON reads and merge-patches through the kubernetes client's connection (fast: no model objects)."""

    def __init__(self, kubeconfig: str, impersonate: str | None = None):
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=kubeconfig)
        if impersonate:
            self.api.set_default_header("Impersonate-User", impersonate)
        self._client = client

    def _call(self, method: str, path: str, body=None, content_type: str | None = None):
        cfg = self.api.configuration
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        for setting in cfg.auth_settings().values():  # the kubeconfig's bearer token
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        headers.update(self.api.default_headers)  # Impersonate-User
        try:
            resp = self.api.call_api(method, cfg.host + path, header_params=headers, body=body, _request_timeout=10)
            data = resp.read() if hasattr(resp, "read") else resp.data
        except self._client.exceptions.ApiException as exc:
            raise KubeError(exc.status or 0, exc.reason or str(exc)) from None
        if not 200 <= resp.status < 300:
            raise KubeError(resp.status, (data or b"").decode(errors="replace")[:300])
        return json.loads(data or b"{}")

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body, "application/merge-patch+json")
