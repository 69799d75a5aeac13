"""The kubelet's probes (httpGet, tcpSocket, grpc), run against podIP:port from the pod network namespace.

`connect(address, timeout)` is a socket factory's create_connection: the probe dials the pod's address as the
kubelet does, so a process that listens on the wrong port or only on its own loopback fails its probe.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable

Connect = Callable[[tuple[str, int], float], socket.socket]


class ProbeResult:
    def __init__(self, ok: bool, message: str = ""):
        self.ok, self.message = ok, message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"ProbeResult({self.ok}, {self.message!r})"


def http_get(connect: Connect, host: str, port: int, path: str = "/", scheme: str = "HTTP",
             headers: list | None = None, timeout: float = 1.0) -> ProbeResult:
    """Success for a status from 200 to 399, as the kubelet's HTTP probe."""
    try:
        sock = connect((host, port), timeout)
    except OSError as err:
        return ProbeResult(False, f'Get "{scheme.lower()}://{host}:{port}{path}": dial tcp {host}:{port}: {err}')
    try:
        sock.settimeout(timeout)
        if scheme.upper() == "HTTPS":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the kubelet skips verification too
            sock = ctx.wrap_socket(sock, server_hostname=host)
        lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: kube-probe/1.35",
                 "Accept: */*", "Connection: close"]
        lines += [f"{h['name']}: {h['value']}" for h in headers or []]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        first = b""
        while b"\r\n" not in first and len(first) < 4096:
            chunk = sock.recv(1024)
            if not chunk:
                break
            first += chunk
        parts = first.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            return ProbeResult(False, f"HTTP probe: malformed response {first[:80]!r}")
        status = int(parts[1])
        if 200 <= status < 400:
            return ProbeResult(True)
        return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
    except (OSError, ssl.SSLError) as err:
        return ProbeResult(False, f'Get "{scheme.lower()}://{host}:{port}{path}": {err}')
    finally:
        sock.close()


def tcp_socket(connect: Connect, host: str, port: int, timeout: float = 1.0) -> ProbeResult:
    try:
        connect((host, port), timeout).close()
        return ProbeResult(True)
    except OSError as err:
        return ProbeResult(False, f"dial tcp {host}:{port}: {err}")


# --------------------------------------------------------------------------- gRPC health, over plain HTTP/2

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST, _SETTINGS, _PING, _GOAWAY, _WINDOW = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, no Huffman (names and values under 127 bytes)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def grpc_health(connect: Connect, host: str, port: int, service: str = "", timeout: float = 1.0) -> ProbeResult:
    """grpc.health.v1.Health/Check over h2c: SERVING is a success, anything else (or an error status) not.

    The response's headers are not decoded (that would need HPACK with Huffman): the answer is in the DATA
    frame, a HealthCheckResponse whose field 1 is the status (1 = SERVING); a failed call has no DATA.
    """
    try:
        sock = connect((host, port), timeout)
    except OSError as err:
        return ProbeResult(False, f"failed to connect service {host}:{port} within {timeout}s: {err}")
    try:
        sock.settimeout(timeout)
        request = b""
        if service:
            request = b"\x0a" + bytes([len(service)]) + service.encode()  # HealthCheckRequest.service
        message = b"\x00" + struct.pack(">I", len(request)) + request
        headers = b"".join([
            b"\x83",  # :method POST (static table 3)
            b"\x86",  # :scheme http (static table 6)
            _literal(":path", "/grpc.health.v1.Health/Check"),
            _literal(":authority", f"{host}:{port}"),
            _literal("content-type", "application/grpc"),
            _literal("te", "trailers"),
        ])
        sock.sendall(_PREFACE + _frame(_SETTINGS, 0, 0) + _frame(_HEADERS, _END_HEADERS, 1, headers)
                     + _frame(_DATA, _END_STREAM, 1, message))
        body = b""
        while True:
            head = _read_exact(sock, 9)
            length = int.from_bytes(head[:3], "big")
            kind, flags, stream = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = _read_exact(sock, length)
            if kind == _SETTINGS and not flags & _ACK:
                sock.sendall(_frame(_SETTINGS, _ACK, 0))
            elif kind == _PING and not flags & _ACK:
                sock.sendall(_frame(_PING, _ACK, 0, payload))
            elif kind == _DATA and stream == 1:
                body += payload
            elif kind in (_RST, _GOAWAY):
                return ProbeResult(False, f"gRPC health check of {host}:{port}: stream reset")
            if stream == 1 and flags & _END_STREAM:
                break
        if len(body) >= 5:
            msg = body[5:5 + int.from_bytes(body[1:5], "big")]
            status = msg[1] if len(msg) >= 2 and msg[0] == 0x08 else 0
            if status == 1:
                return ProbeResult(True)
            names = {0: "UNKNOWN", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
            return ProbeResult(False, f"service unhealthy (responded with {names.get(status, status)!r})")
        return ProbeResult(False, f"gRPC health check of {host}:{port} service {service!r} failed (no response)")
    except (OSError, ConnectionError) as err:
        return ProbeResult(False, f"gRPC health check of {host}:{port}: {err}")
    finally:
        sock.close()


def run_probe(probe: dict, connect: Connect, host: str, ports: dict[str, int]) -> ProbeResult:
    """One attempt of a container probe spec (exec probes cannot run here: they count as passing)."""
    from .podspec import resolve_port

    timeout = float(probe.get("timeoutSeconds") or 1)
    if "httpGet" in probe:
        h = probe["httpGet"]
        return http_get(connect, h.get("host") or host, resolve_port(h["port"], ports), h.get("path", "/"),
                        h.get("scheme", "HTTP"), h.get("httpHeaders"), timeout)
    if "tcpSocket" in probe:
        t = probe["tcpSocket"]
        return tcp_socket(connect, t.get("host") or host, resolve_port(t["port"], ports), timeout)
    if "grpc" in probe:
        g = probe["grpc"]
        return grpc_health(connect, host, resolve_port(g["port"], ports), g.get("service", ""), timeout)
    return ProbeResult(True, "exec probes are not run by the local pod runner")
