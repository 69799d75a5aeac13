"""TCP forwarders: Service ClusterIPs on the host (a userspace kube-proxy) and the host's loopback services
inside the pod network (the host gateway).

* ClusterIP: for every TCP port of a Service with a ClusterIP, a listener on `clusterIP:port` in the host
  namespace (the ClusterIP range is a 127.x.0.0/17 block, so only loopback is ever bound); each connection goes
  to one ready endpoint of the Service's EndpointSlices, dialled inside the pod network namespace. A Service with
  no ready endpoint refuses connections (closes them at once), as kube-proxy's reject rule does.
* Host gateway: in the pod network namespace, `HOST_GATEWAY:port` -> `127.0.0.1:port` on the host, for the API
  server and the other host services pods need (same port numbers).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("pod_runner")

Dial = Callable[[], socket.socket]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Forwarder(threading.Thread):
    """Accepts on `listener` and joins each connection to a socket from `dial()` (None: refuse)."""

    def __init__(self, listener: socket.socket, dial: Callable[[], socket.socket | None], label: str):
        super().__init__(name=f"fwd-{label}", daemon=True)
        self.listener, self.dial, self.label = listener, dial, label
        self._closed = False

    def run(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                break
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self.dial()
        except OSError as err:
            log.debug("%s: dial failed: %s", self.label, err)
            upstream = None
        if upstream is None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


def ready_endpoints(slices: list[dict], port_name: str, protocol: str = "TCP") -> list[tuple[str, int]]:
    """(address, port) of the ready endpoints of a Service port in its EndpointSlices."""
    out = []
    for eps in slices:
        ports = [p for p in eps.get("ports") or [] if (p.get("name") or "") == (port_name or "")
                 and (p.get("protocol") or "TCP") == protocol and p.get("port")]
        if not ports:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            out += [(address, ports[0]["port"]) for address in endpoint.get("addresses") or []]
    return sorted(set(out))


def service_ports(service: dict) -> list[tuple[str, int, str]]:
    """(clusterIP, port, port name) of every TCP port of a Service that has a ClusterIP."""
    spec = service.get("spec") or {}
    ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None"]
    return [(ip, p["port"], p.get("name") or "") for ip in ips for p in spec.get("ports") or []
            if (p.get("protocol") or "TCP") == "TCP"]


class ServiceProxy:
    """Keeps one Forwarder per ClusterIP:port in line with the Services and EndpointSlices."""

    def __init__(self, pod_connect: Callable[[tuple[str, int], float], socket.socket]):
        self.pod_connect = pod_connect
        self._lock = threading.Lock()
        self._forwarders: dict[tuple[str, int], Forwarder] = {}
        self._targets: dict[tuple[str, int], list[tuple[str, int]]] = {}

    def sync(self, services: list[dict], slices: list[dict]) -> None:
        by_service: dict[tuple[str, str], list[dict]] = {}
        for eps in slices:
            name = ((eps.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name")
            if name:
                by_service.setdefault((eps["metadata"]["namespace"], name), []).append(eps)
        wanted: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for svc in services:
            key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
            for ip, port, name in service_ports(svc):
                wanted[(ip, port)] = ready_endpoints(by_service.get(key, []), name)
        with self._lock:
            self._targets = wanted
            for addr in [a for a in self._forwarders if a not in wanted]:
                self._forwarders.pop(addr).close()
            for addr in [a for a in wanted if a not in self._forwarders]:
                try:
                    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    listener.bind(addr)
                    listener.listen(128)
                except OSError as err:
                    log.error("ClusterIP %s:%d: cannot listen: %s", *addr, err)
                    continue
                fwd = Forwarder(listener, lambda addr=addr: self._dial(addr), f"{addr[0]}:{addr[1]}")
                fwd.start()
                self._forwarders[addr] = fwd

    def _dial(self, addr: tuple[str, int]) -> socket.socket | None:
        with self._lock:
            targets = list(self._targets.get(addr) or [])
        random.shuffle(targets)
        for target in targets:
            try:
                return self.pod_connect(target, 3.0)
            except OSError as err:
                log.debug("ClusterIP %s:%d -> %s:%d: %s", *addr, *target, err)
        return None

    def close(self) -> None:
        with self._lock:
            for fwd in self._forwarders.values():
                fwd.close()
            self._forwarders.clear()


def host_gateway(listen: Callable[[tuple[str, int]], socket.socket], gateway_ip: str,
                 ports: dict[str, int]) -> list[Forwarder]:
    """HOST_GATEWAY:port in the pod network -> 127.0.0.1:port on the host, for each named host port."""
    out = []
    for name, port in sorted(ports.items()):
        fwd = Forwarder(listen((gateway_ip, port)),
                        lambda port=port: socket.create_connection(("127.0.0.1", port), timeout=3.0),
                        f"host-{name}")
        fwd.start()
        out.append(fwd)
    return out
