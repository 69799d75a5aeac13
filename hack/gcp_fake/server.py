"""The HTTP front end: prefix per service, bearer-token auth, faults, routing, validation, control endpoints.

    python -m hack.gcp_fake --port 0 --token T [--kubeconfig K] [--service-account-file F]
    python hack/gcp_fake/run.py ...   (the same, without needing the repository root on sys.path)
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import logging
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The service modules register their handlers on import.
from . import certs, compute, container, crm, discovery, metadata, monitoring  # noqa: F401  pylint: disable=unused-import
from .errors import GoogleError
from .world import HANDLERS, Call, World

LOG = logging.getLogger("gcp_fake")

# Paths outside the Google API services (a metadata server, a metrics endpoint...): prefix -> handler. A handler
# takes (fake, method, path, query, headers, body) and returns (status, headers, body bytes); it does its own auth.
RAW_ROUTES: dict = {}


def raw_route(prefix: str):
    """Register a handler for every request whose path starts with `prefix` (checked before the Google APIs)."""
    def register(fn):
        RAW_ROUTES[prefix] = fn
        return fn
    return register


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class ServiceAccount:
    """The service-account key the environment hands out: verifies the JWTs signed with it."""

    def __init__(self, info: dict):
        from cryptography.hazmat.primitives import serialization

        self.info = info
        self.public_key = serialization.load_pem_private_key(info["private_key"].encode(), password=None).public_key()

    def verify(self, jwt: str, audience: str | None = None) -> dict | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, sig = jwt.split(".")
            header = json.loads(_b64url(head))
            claims = json.loads(_b64url(payload))
            if header.get("alg") != "RS256":
                return None
            self.public_key.verify(_b64url(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature, json.JSONDecodeError):
            return None
        if claims.get("iss") != self.info["client_email"] or float(claims.get("exp", 0)) < time.time():
            return None
        if audience is not None and claims.get("aud") != audience:
            return None
        return claims


class Fake:
    def __init__(self, world: World, service_account: ServiceAccount | None = None, strict_responses: bool = True):
        self.world = world
        self.service_account = service_account
        self.strict_responses = strict_responses
        self.on_reset = None  # called after /_fake/reset (the node sync)

    # ------------------------------------------------------------------ entry

    def handle(self, method: str, raw_path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        url = urllib.parse.urlsplit(raw_path)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if path.startswith(metadata.PREFIX):  # the GCE metadata server: no bearer token, Metadata-Flavor instead
            return metadata.handle(method, raw_path, headers, self.world.token)
        try:
            if path.startswith("/_fake/"):
                status, out = self.control(method, path, body)
                return _json(status, out)
            for prefix, route in RAW_ROUTES.items():
                if path.startswith(prefix):
                    return route(self, method, path, query, headers, body)
            fault = self.world.take_fault(method, path)
            if path in ("/oauth2/token", "/token"):
                if fault:
                    raise fault
                return self.token(body)
            if not self.authorized(headers.get("authorization", "")):
                raise GoogleError(401)
            if fault:
                raise fault
            status, out = self.api(method, path, query, body)
        except GoogleError as exc:
            status, out = exc.code, exc.body()
            self._log(method, path, status)
            return _json(status, out, exc.headers)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            LOG.exception("%s %s failed", method, path)
            err = GoogleError(500, f"fake bug: {type(exc).__name__}: {exc} (see the gcp-fake log)")
            self._log(method, path, 500)
            return _json(500, err.body())
        self._log(method, path, status)
        return _json(status, out)

    def _log(self, method: str, path: str, status: int) -> None:
        with self.world.lock:
            self.world.log.append({"method": method, "path": path, "status": status})
            del self.world.log[:-500]
        LOG.info("%s %s -> %d", method, path, status)

    def authorized(self, header: str) -> bool:
        if not header.lower().startswith("bearer "):
            return False
        token = header[7:].strip()
        if secrets.compare_digest(token, self.world.token):
            return True
        # A self-signed JWT (google-auth's jwt access for service accounts) signed with the environment's key.
        return self.service_account is not None and token.count(".") == 2 and \
            self.service_account.verify(token) is not None

    # ------------------------------------------------------------------ Google APIs

    def api(self, method: str, path: str, query: dict, raw_body: bytes):
        parts = path.lstrip("/").split("/", 1)
        service = parts[0]
        if service not in discovery.SERVICES or len(parts) < 2:
            raise GoogleError(404, f"The requested URL {path} was not found on this server. Services are served under "
                                   f"/<service>/ with service one of {', '.join(discovery.SERVICES)}.")
        route, params = discovery.match(service, method, parts[1])
        if route is None:
            if params:
                raise GoogleError(405, f"Method {method} is not allowed for {path} (allowed: {', '.join(params)}).",
                                  status="INVALID_ARGUMENT", reason="badRequest")
            raise GoogleError(404, f"The requested URL {path} was not found on this server (no method of the "
                                   f"{service} {discovery.SERVICES[service]} discovery document has this path).")
        fn = HANDLERS.get(route.method_id)
        if fn is None:
            raise GoogleError(501, f"Method {route.method_id} is in the discovery document but not implemented by the "
                                   "local fake.")
        discovery.check_path_params(route, params)
        checked_query = discovery.check_query(service, route, query)
        body = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise GoogleError(400, f"Invalid JSON payload received. {exc}.") from None
        body = discovery.check_body(service, route, body)
        call = Call(route.method_id, method, path, params, checked_query, body, self.world)
        with self.world.lock:
            self.world.tick()
            result = fn(call)
        if isinstance(result, compute.Wait):
            time.sleep(result.remaining())
            with self.world.lock:
                self.world.tick()
                result = result.render(self.world, result.op)
        result = discovery.render_response(service, route, result)
        errors = discovery.check_response(service, route, result)
        if errors:
            LOG.error("response of %s does not match its schema: %s", route.method_id, errors)
            if self.strict_responses:
                raise GoogleError(500, f"fake bug: the response of {route.method_id} does not match the discovery "
                                       f"schema: {'; '.join(errors)}")
        return 200, result if result is not None else {}

    # ------------------------------------------------------------------ OAuth2

    def token(self, raw_body: bytes):
        form = urllib.parse.parse_qs(raw_body.decode(errors="replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = (form.get("assertion") or [""])[0]
            if self.service_account is None or self.service_account.verify(assertion) is None:
                return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        elif grant != "refresh_token":
            return _json(400, {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant}"})
        return _json(200, {"access_token": self.world.token, "expires_in": 3599, "token_type": "Bearer",
                           "scope": "https://www.googleapis.com/auth/cloud-platform"})

    # ------------------------------------------------------------------ control

    def control(self, method: str, path: str, raw_body: bytes):
        body = json.loads(raw_body or b"{}") if method in ("POST", "PUT", "PATCH") else {}
        world = self.world
        if path == "/_fake/healthz":
            return 200, {"ok": True}
        if path == "/_fake/state" and method == "GET":
            return 200, world.dump()
        if path == "/_fake/faults":
            if method == "POST":
                return 200, world.add_fault(body)
            if method == "DELETE":
                with world.lock:
                    world.faults, world.operation_errors = [], []
            return 200, {"faults": world.faults, "operation_errors": world.operation_errors}
        if path == "/_fake/config":
            if method == "POST":
                with world.lock:
                    merge_config(world.config, body)
            return 200, world.config
        if path == "/_fake/reset" and method == "POST":
            world.reset()
            if self.on_reset:
                self.on_reset()
            return 200, {"reset": True}
        raise GoogleError(404, f"unknown control endpoint {method} {path}")


def merge_config(config: dict, update: dict) -> None:
    for key, value in update.items():
        if key not in config:
            raise GoogleError(400, f"unknown config key {key!r} (known: {', '.join(config)})")
        if isinstance(config[key], dict):
            if not isinstance(value, dict):
                raise GoogleError(400, f"config key {key!r} takes an object")
            merge_config(config[key], value)
        else:
            config[key] = float(value)


def _json(status: int, body, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body, indent=2).encode()
    return status, dict({"Content-Type": "application/json; charset=UTF-8"}, **(headers or {})), data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcp-fake/1"

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, data = self.server.fake.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for key, value in out_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    # The fake logs each request itself.
    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fake: Fake):
        self.fake = fake
        super().__init__(address, _Handler)


def serve(fake: Fake, host: str = "127.0.0.1", port: int = 0) -> Server:
    """A started server (in a daemon thread); .server_address has the port."""
    server = Server((host, port), fake)
    threading.Thread(target=server.serve_forever, name="gcp-fake-http", daemon=True).start()
    return server


def ticker(world: World, stop: threading.Event, interval: float = 0.1) -> None:
    """Finish operations whose time has come even when nobody polls them."""
    while not stop.wait(interval):
        try:
            world.tick()
        except Exception:  # noqa: BLE001  (a background loop must not die)
            LOG.exception("tick failed")


def pod_connector(netns: str | None):
    """connect((ip, port), timeout) -> socket: inside the pod network namespace when there is one."""
    if not netns:
        return lambda address, timeout: socket.create_connection(address, timeout=timeout)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "localcluster"))
    import podnet  # noqa: E402  pylint: disable=import-error,import-outside-toplevel

    return lambda address, timeout: podnet.create_connection(address, timeout=timeout, netns=netns)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.gcp_fake", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed, and written to --port-file)")
    parser.add_argument("--port-file", help="write the chosen port here once listening")
    parser.add_argument("--token", required=True, help="the access token every request must carry as a Bearer")
    parser.add_argument("--service-account-file", help="service-account JSON whose key signs accepted JWTs")
    parser.add_argument("--kubeconfig", help="the local cluster: node pools become kwok nodes, and the autoscaler runs")
    parser.add_argument("--operation-delay", type=float, default=1.0, help="seconds from PENDING to DONE")
    parser.add_argument("--scale-up-delay", type=float, default=1.0)
    parser.add_argument("--scale-down-idle", type=float, default=60.0)
    parser.add_argument("--default-pool-nodes", type=int, default=2, help="size of the seeded default-pool")
    parser.add_argument("--pod-netns", help="network namespace (a name under /run/netns) in which pod IPs are "
                                           "reachable: the Managed Prometheus collector scrapes pods through it")
    parser.add_argument("--cluster-endpoint", default="127.0.0.1",
                        help="host:port the seeded cluster's endpoint names (the local API server's)")
    parser.add_argument("--cluster-ca-file", help="PEM CA certificate of that API server (the cluster's masterAuth)")
    parser.add_argument("--lenient-responses", action="store_true",
                        help="log (instead of answering 500) when a response does not match its schema")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)

    sa = None
    if args.service_account_file:
        with open(args.service_account_file, encoding="utf-8") as f:
            sa = ServiceAccount(json.load(f))
    kube = None
    if args.kubeconfig:
        from .kube import KubeNodes

        kube = KubeNodes(args.kubeconfig)
    world = World(args.token, kube=kube)
    world.seed_default_pool_nodes = args.default_pool_nodes
    world.cluster_endpoint = args.cluster_endpoint
    if args.cluster_ca_file:
        with open(args.cluster_ca_file, encoding="utf-8") as f:
            world.cluster_ca_pem = f.read()
    world.config["operation_delay_seconds"] = args.operation_delay
    world.config["autoscaler"]["scale_up_delay_seconds"] = args.scale_up_delay
    world.config["autoscaler"]["scale_down_idle_seconds"] = args.scale_down_idle
    world.initial_config = copy.deepcopy(world.config)
    world.reset()
    fake = Fake(world, sa, strict_responses=not args.lenient_responses)
    server = Server((args.host, args.port), fake)
    port = server.server_address[1]
    world.base_url = f"http://{args.host}:{port}/"
    world.reset()  # links in the seeded resources use the real port
    stop = threading.Event()
    threads = [threading.Thread(target=ticker, args=(world, stop), name="gcp-fake-ticker", daemon=True)]
    if kube is not None:
        from .autoscaler import Autoscaler

        autoscaler = Autoscaler(world, kube)
        fake.on_reset = autoscaler.after_reset
        threads.append(threading.Thread(target=autoscaler.run, args=(stop,), name="gcp-fake-autoscaler", daemon=True))
        from .gmp import COLLECTOR_USER, Collector, KubeJSON

        collector = Collector(world, KubeJSON(args.kubeconfig), KubeJSON(args.kubeconfig, impersonate=COLLECTOR_USER),
                              connect=pod_connector(args.pod_netns))
        threads.append(threading.Thread(target=collector.run, args=(stop,), name="gcp-fake-gmp", daemon=True))
    for t in threads:
        t.start()

    def shutdown(_sig, _frame):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.port_file:
        with open(args.port_file, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
    LOG.info("listening on http://%s:%d/{service}/ (services: %s)", args.host, port, ", ".join(discovery.SERVICES))
    print(f"gcp-fake listening on {args.host}:{port}", flush=True)
    server.serve_forever()
    return 0
