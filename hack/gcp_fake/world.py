"""The fake's state: resources, long-running operations, faults and settings, behind one lock.

Handlers (container.py, compute.py, crm.py, certs.py) register themselves by discovery method id
with @handler and receive a Call. Every state change that Google makes at the end of an operation
is an `effect` run when the operation reaches DONE (World.tick, called on every request and by
a background ticker).
"""

from __future__ import annotations

import base64
import copy
import datetime
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from .errors import RPC_NAME, GoogleError

PROJECT = "local-project"
PROJECT_NUMBER = "123456789012"
REGION = "us-central1"
ZONES = ("us-central1-a", "us-central1-b", "us-central1-c")
CLUSTER = "local-cluster"
CLUSTER_NAME = f"projects/{PROJECT}/locations/{REGION}/clusters/{CLUSTER}"
NETWORK = "default"

HANDLERS: dict = {}
SEEDERS: list = []  # seed(world) functions of the service modules, run by World.reset


def handler(method_id: str):
    def register(fn):
        HANDLERS[method_id] = fn
        return fn
    return register


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_etag() -> str:
    """A fresh etag or fingerprint (a proto `bytes` field), as Google writes it: standard base64 with padding.

    It always holds a '+' or a '/', the characters in which base64's two alphabets differ, so that every client
    that decodes the value and encodes it again in the URL-safe alphabet (gcloud's apitools does) is exercised on
    every write, not one time in four.
    """
    while True:
        value = base64.b64encode(secrets.token_bytes(8)).decode()
        if "+" in value or "/" in value:
            return value


def same_bytes(given: str, current: str) -> bool:
    """Whether two base64 values of a `bytes` field (etag, fingerprint) are the same bytes.

    Google's JSON mapping takes standard and URL-safe base64, with or without padding (proto3 JSON: "either
    standard or URL-safe base64 encoding with/without paddings are accepted").
    """
    def decode(value: str) -> bytes | None:
        try:
            return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                                    validate=True)
        except (ValueError, TypeError):
            return None
    if not given or not current:
        return False  # a missing etag is not a match (the callers treat "none given" before asking)
    left = decode(given)
    return left is not None and left == decode(current)


@dataclass
class Call:
    """One request, after routing and validation."""

    method_id: str
    http_method: str
    path: str  # the full request path, service prefix included
    params: dict  # path template values (projectsId, securityPolicy, ...)
    query: dict
    body: dict | None
    world: "World"


@dataclass
class Operation:
    kind: str  # container | compute | certificatemanager
    name: str  # what GET addresses: container/compute short name, certificatemanager full name
    key: str  # lookup key: "<kind>:<scope>/<name>"
    op_type: str  # CREATE_NODE_POOL, insert, create...
    target: str  # target resource name (path form)
    target_link: str
    self_link: str
    location: str  # container location, compute region ('' for global), certificatemanager location
    delay: float
    created: float = field(default_factory=time.monotonic)
    start_time: str = field(default_factory=now_rfc3339)
    end_time: str | None = None
    effect: object = None  # callable() -> response dict | None, run at DONE
    on_error: object = None  # callable(error) run instead when the operation fails
    error: dict | None = None  # {"code": rpc int, "message": str}
    forced_error: dict | None = None  # injected: ends DONE with this error
    applied: bool = False
    response: dict | None = None
    target_id: str = ""
    op_id: str = field(default_factory=lambda: str(secrets.randbits(62)))

    def status(self, at: float | None = None) -> str:
        if self.applied:
            return "DONE"
        elapsed = (time.monotonic() if at is None else at) - self.created
        if self.delay <= 0 or elapsed >= self.delay:
            return "DONE"
        return "RUNNING" if elapsed >= self.delay / 3 else "PENDING"


class World:
    def __init__(self, token: str, base_url: str = "http://127.0.0.1/", kube=None):
        self.lock = threading.RLock()
        self.token = token
        self.base_url = base_url.rstrip("/") + "/"
        self.kube = kube  # kube.KubeNodes or None (standalone: node pools are state only)
        # What the seeded cluster's endpoint and CA say (clusters.get): the local API server's when known.
        self.cluster_endpoint = "127.0.0.1"
        self.cluster_ca_pem: str | None = None
        self.counter = itertools.count(1)
        self.config = {"operation_delay_seconds": 1.0,
                       "autoscaler": {"scale_up_delay_seconds": 1.0, "scale_down_idle_seconds": 60.0,
                                      "interval_seconds": 0.5}}
        self.faults: list = []
        self.operation_errors: list = []
        self.log: list = []  # the last requests, for /_fake/state
        self.seed_default_pool_nodes = 2
        self.initial_config = None  # what /_fake/reset restores (set by main once the flags are applied)
        self.reset()

    # ------------------------------------------------------------------ seed

    def reset(self) -> None:
        with self.lock:
            if self.initial_config:
                self.config = copy.deepcopy(self.initial_config)
            self.operations: dict[str, Operation] = {}
            self.faults = []
            self.operation_errors = []
            self.project = {"projectNumber": PROJECT_NUMBER, "projectId": PROJECT, "lifecycleState": "ACTIVE",
                            "name": PROJECT, "createTime": "2025-01-01T00:00:00.000Z",
                            "parent": {"type": "organization", "id": "100000000001"}}
            self.iam_policy = {"version": 1, "etag": new_etag(), "bindings": [
                {"role": "roles/container.admin",
                 "members": [f"serviceAccount:infgw-local@{PROJECT}.iam.gserviceaccount.com"]},
                {"role": "roles/owner", "members": ["user:owner@example.com"]},
            ]}
            self.node_pools: dict[str, dict] = {}  # full name -> NodePool
            self.pool_sizes: dict[str, int] = {}  # full name -> node count (not part of the API resource)
            self.security_policies: dict[str, dict] = {}  # "global/NAME" or "regions/R/NAME" -> policy
            self.subnetworks: dict[str, dict] = {}  # "R/NAME" -> subnetwork
            self.certificates: dict[str, dict] = {}  # full name -> Certificate
            self.reserved: set = set()  # names whose create is in flight (a second create is 409)
            for seed in SEEDERS:
                seed(self)

    # ------------------------------------------------------------------ links

    def link(self, service: str, path: str) -> str:
        prefix = "compute/v1/" if service == "compute" else "v1/"
        return f"{self.base_url}{service}/{prefix}{path}"

    # ------------------------------------------------------------------ operations

    def new_operation(self, call: Call, kind: str, op_type: str, target: str, target_link: str, location: str,
                      effect=None, on_error=None, target_id: str = "") -> Operation:
        stamp = int(time.time() * 1000)
        short = f"operation-{stamp}-{secrets.token_hex(4)}"
        if kind == "container":
            name = short
            path = f"projects/{PROJECT}/locations/{location}/operations/{short}"
            self_link = self.link("container", path)
        elif kind == "compute":
            name = short
            scope = f"regions/{location}" if location else "global"
            path = f"projects/{PROJECT}/{scope}/operations/{short}"
            self_link = self.link("compute", path)
        else:
            name = f"projects/{PROJECT}/locations/{location}/operations/{short}"
            path = name
            self_link = self.link("certificatemanager", path)
        op = Operation(kind=kind, name=name, key=f"{kind}:{path}", op_type=op_type, target=target,
                       target_link=target_link, self_link=self_link, location=location,
                       delay=float(self.config["operation_delay_seconds"]), effect=effect, on_error=on_error,
                       target_id=target_id)
        for injected in self.operation_errors:
            if injected["count"] > 0 and re.search(injected["path_regex"], call.path):
                injected["count"] -= 1
                op.forced_error = {"code": int(injected.get("code", 13)),
                                   "message": injected.get("message", "operation failed (injected)")}
                break
        self.operation_errors = [e for e in self.operation_errors if e["count"] > 0]
        self.operations[op.key] = op
        self.tick()
        return op

    def operation(self, kind: str, path: str) -> Operation:
        self.tick()
        op = self.operations.get(f"{kind}:{path}")
        if op is None:
            raise GoogleError(404, f"Operation \"{path}\" not found." if kind != "compute"
                              else f"The resource '{path}' was not found")
        return op

    def running_on(self, target: str) -> Operation | None:
        self.tick()
        return next((op for op in self.operations.values() if op.target == target and not op.applied), None)

    def tick(self) -> None:
        with self.lock:
            now = time.monotonic()
            for op in list(self.operations.values()):
                if op.applied or op.status(now) != "DONE":
                    continue
                op.applied = True
                op.end_time = now_rfc3339()
                error = op.forced_error
                if error is None and op.effect is not None:
                    try:
                        op.response = op.effect()
                    except GoogleError as exc:
                        error = {"code": _rpc_of_http(exc.code), "message": exc.message}
                if error is not None:
                    op.error = error
                    if op.on_error is not None:
                        op.on_error(error)

    # ------------------------------------------------------------------ faults

    def add_fault(self, spec: dict) -> dict:
        with self.lock:
            if "operation_error" in spec:
                err = dict(spec["operation_error"])
                if "path_regex" not in err:
                    raise GoogleError(400, "operation_error needs path_regex")
                re.compile(err["path_regex"])
                err.setdefault("count", 1)
                err.setdefault("code", 13)
                self.operation_errors.append(err)
                return {"operation_error": err}
            fault = {"method": spec.get("method"), "path_regex": spec.get("path_regex", ".*"),
                     "status": int(spec.get("status", 503)), "count": int(spec.get("count", 1)),
                     "permission": spec.get("permission"), "message": spec.get("message"),
                     "retry_after": spec.get("retry_after")}
            re.compile(fault["path_regex"])
            self.faults.append(fault)
            return fault

    def take_fault(self, method: str, path: str) -> GoogleError | None:
        with self.lock:
            for fault in self.faults:
                if fault["count"] <= 0:
                    continue
                if fault["method"] and fault["method"].upper() != method:
                    continue
                if not re.search(fault["path_regex"], path):
                    continue
                fault["count"] -= 1
                self.faults = [f for f in self.faults if f["count"] > 0]
                headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
                if fault["status"] == 403:
                    permission = fault.get("permission") or "unknown.permission"
                    message = fault.get("message") or (f"Permission '{permission}' denied on resource "
                                                       f"'{path}' (or it may not exist).")
                    return GoogleError(403, message, permission=permission, headers=headers)
                return GoogleError(fault["status"], fault.get("message"), headers=headers)
        return None

    # ------------------------------------------------------------------ dump

    def dump(self) -> dict:
        with self.lock:
            self.tick()
            return copy.deepcopy({
                "config": self.config,
                "faults": self.faults,
                "operation_errors": self.operation_errors,
                "project": self.project,
                "iam_policy": self.iam_policy,
                "node_pools": self.node_pools,
                "pool_sizes": self.pool_sizes,
                "security_policies": self.security_policies,
                "subnetworks": self.subnetworks,
                "certificates": {k: {f: v for f, v in c.items() if f != "_privateKey"}
                                 for k, c in self.certificates.items()},
                "operations": [{"kind": op.kind, "name": op.name, "type": op.op_type, "target": op.target,
                                "status": op.status(), "error": op.error} for op in self.operations.values()],
                "requests": self.log[-200:],
            })


def _rpc_of_http(code: int) -> int:
    return {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 500: 13, 503: 14, 504: 4}.get(code, 2)


def rpc_status_name(code: int) -> str:
    return RPC_NAME.get(code, "UNKNOWN")
