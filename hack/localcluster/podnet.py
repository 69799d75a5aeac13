"""The local environment's pod network: per-environment names and addresses, network namespaces, and sockets
created inside them.

One environment = one id (`state.json` `env_id`): two hex digits, 10..fe, reserved by creating the environment's
pod network namespace `infgw-<id>-pods` (creating an existing namespace fails, so two environments never get the
same id). Everything global on the machine derives from the id:

    pod network namespace   infgw-<id>-pods           the "node network": a bridge holding every pod's veth
    a pod's namespace       infgw-<id>-p<uid>         one per running pod (eth0 = its pod IP)
    Service ClusterIPs      127.<slot>.0.0/17         kube-apiserver --service-cluster-ip-range; bound on the host
    Gateway addresses       127.<slot>.128.<N>        gke_sim --address-base
                                                      (slot = int(id, 16))

Pod IPs are kwok's, in 10.244.0.0/16 (Endpoints refuse loopback addresses); they exist only inside the pod
network namespace, never on the host. A process on the host reaches `podIP:port` by creating its socket in that
namespace: `create_connection((ip, port), netns=...)` here, or in Go `runtime.LockOSThread` + `unix.Setns` on a
dedicated thread. Pods reach the host's loopback services through forwarders the pod runner keeps on
HOST_GATEWAY (the bridge's address) with the same port numbers.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

PREFIX = "infgw"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")  # kwok's --cidr
HOST_GATEWAY = "10.244.255.254"  # the bridge in the pod network namespace: pods' default route and host services
BRIDGE = "infgw0"
SLOTS = range(0x10, 0xFF)  # 127.0.x.x stays the host's (127.0.0.1, gke_sim's old default base 127.0.0.)
ENV_ID = re.compile(r"^[0-9a-f]{2}$")


class PodNetError(RuntimeError):
    """A namespace, link or address could not be set up; the message names the command and its error."""


# --------------------------------------------------------------------------- names and addresses (pure)

def check_env_id(env_id: str) -> str:
    if not ENV_ID.match(env_id or "") or int(env_id, 16) not in SLOTS:
        raise ValueError(f"invalid environment id {env_id!r}: two hex digits from {SLOTS.start:02x} to "
                         f"{SLOTS.stop - 1:02x}")
    return env_id


def slot(env_id: str) -> int:
    return int(check_env_id(env_id), 16)


def netns_prefix(env_id: str) -> str:
    """Every namespace of the environment starts with this."""
    return f"{PREFIX}-{check_env_id(env_id)}-"


def pod_network_netns(env_id: str) -> str:
    return f"{netns_prefix(env_id)}pods"


def pod_netns(env_id: str, pod_uid: str) -> str:
    """The namespace of one pod (uid: the pod's metadata.uid; 12 hex digits are plenty for one environment)."""
    return f"{netns_prefix(env_id)}p{pod_uid.replace('-', '')[:12]}"


def veth_name(pod_uid: str) -> str:
    """The pod's veth end on the bridge (interface names have at most 15 characters)."""
    return f"v{pod_uid.replace('-', '')[:12]}"


def service_cidr(env_id: str) -> str:
    return f"127.{slot(env_id)}.0.0/17"


def gateway_address_base(env_id: str) -> str:
    return f"127.{slot(env_id)}.128."


def derived(env_id: str) -> dict:
    """What state.json records for an environment id."""
    return {"env_id": env_id, "pod_netns": pod_network_netns(env_id), "service_cidr": service_cidr(env_id),
            "gateway_address_base": gateway_address_base(env_id), "host_gateway": HOST_GATEWAY}


def used_env_ids(netns_dir: Path = NETNS_DIR) -> set[str]:
    """Ids whose pod network namespace exists (an environment up, or one that was never taken down)."""
    pattern = re.compile(rf"^{PREFIX}-([0-9a-f]{{2}})-pods$")
    try:
        return {m.group(1) for name in os.listdir(netns_dir) if (m := pattern.match(name))}
    except FileNotFoundError:
        return set()


# --------------------------------------------------------------------------- namespaces and links

def ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    run = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise PodNetError(f"{' '.join(argv)}: {run.stderr.strip() or run.stdout.strip()}")
    return run.stdout


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def reserve_env_id(attempts: int = 20) -> str:
    """A free id, reserved by creating its pod network namespace (`ip netns add` fails when it exists)."""
    for _ in range(attempts):
        free = [f"{s:02x}" for s in SLOTS if f"{s:02x}" not in used_env_ids()]
        if not free:
            raise PodNetError(f"no free environment id: {len(SLOTS)} pod network namespaces {PREFIX}-*-pods exist "
                              "(ip netns list; `localenv.py down` in each environment removes its own)")
        env_id = secrets.choice(free)
        try:
            ip("netns", "add", pod_network_netns(env_id))
        except PodNetError as err:
            if "File exists" in str(err):
                continue  # another environment took it meanwhile
            raise PodNetError(f"{err}\nThe local data plane needs network namespaces: run as root with iproute2 "
                              "(ip) installed.") from err
        return env_id
    raise PodNetError("could not reserve an environment id (namespaces kept appearing)")


def setup_pod_network(env_id: str) -> None:
    """The bridge all pods attach to, with HOST_GATEWAY on it; nothing here touches the host namespace."""
    ns = pod_network_netns(env_id)
    if not netns_exists(ns):
        ip("netns", "add", ns)
    ip("-batch", "-", netns=ns, stdin="\n".join([
        "link set lo up",
        f"link add {BRIDGE} type bridge",
        f"addr add {HOST_GATEWAY}/{POD_CIDR.prefixlen} dev {BRIDGE}",
        f"link set {BRIDGE} up",
    ]) + "\n")


def add_pod(env_id: str, pod_uid: str, pod_ip: str) -> str:
    """The pod's own namespace: lo, eth0 with its pod IP, default route to the bridge. Returns its name."""
    ns, veth = pod_netns(env_id, pod_uid), veth_name(pod_uid)
    if netns_exists(ns):
        remove_pod(env_id, pod_uid)
    ip("netns", "add", ns)
    try:
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns, netns=pod_network_netns(env_id))
        ip("link", "set", veth, "master", BRIDGE, "up", netns=pod_network_netns(env_id))
        ip("-batch", "-", netns=ns, stdin="\n".join([
            "link set lo up",
            f"addr add {pod_ip}/{POD_CIDR.prefixlen} dev eth0",
            "link set eth0 up",
            f"route add default via {HOST_GATEWAY}",
        ]) + "\n")
    except PodNetError:
        remove_pod(env_id, pod_uid)
        raise
    return ns


def remove_pod(env_id: str, pod_uid: str) -> None:
    """Kill what still runs in the pod's namespace, then delete it (its veth pair goes with it)."""
    delete_netns(pod_netns(env_id, pod_uid))


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except FileNotFoundError:
        return None


def pids_in_netns(name: str) -> list[int]:
    """Processes whose network namespace is `name` (they hold it alive after `ip netns delete`)."""
    inode = netns_inode(name)
    if inode is None:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                    pids.append(int(entry))
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
    return pids


def delete_netns(name: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, whatever runs inside (only this environment's processes live there), then delete."""
    pids = pids_in_netns(name)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 2.0)
        while (pids := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            break
    if netns_exists(name):
        ip("netns", "delete", name)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def environment_netns(env_id: str) -> list[str]:
    prefix = netns_prefix(env_id)
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def teardown(env_id: str) -> list[str]:
    """Every namespace of the environment, pods first, the pod network last (that frees the id). Returns them."""
    names = environment_netns(env_id)
    for name in sorted(names, key=lambda n: n == pod_network_netns(env_id)):
        delete_netns(name)
    return names


# --------------------------------------------------------------------------- sockets inside a namespace

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class SocketFactory:
    """Sockets created inside a network namespace, by one thread that lives there.

    A socket belongs to the namespace it was created in, whatever thread later binds or connects it; so one
    thread entering the namespace once serves every caller (setns only changes the calling thread).
    """

    def __init__(self, netns: str):
        self.netns = netns
        self._requests: queue.Queue = queue.Queue()
        ready: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, args=(ready,), name=f"netns-{netns}", daemon=True).start()
        err = ready.get()
        if err:
            raise err

    def _serve(self, ready: queue.Queue) -> None:
        try:
            with open(NETNS_DIR / self.netns, "rb") as f:
                _setns(f.fileno())
        except OSError as err:
            ready.put(PodNetError(f"cannot enter network namespace {self.netns}: {err}"))
            return
        ready.put(None)
        while True:
            family, kind, reply = self._requests.get()
            try:
                reply.put(socket.socket(family, kind))
            except OSError as err:
                reply.put(err)

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
        reply: queue.Queue = queue.Queue()
        self._requests.put((family, kind, reply))
        got = reply.get()
        if isinstance(got, Exception):
            raise got
        return got

    def create_connection(self, address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        sock = self.socket()
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def listen(self, address: tuple[str, int], backlog: int = 128) -> socket.socket:
        sock = self.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock


_factories: dict[str, SocketFactory] = {}
_factories_lock = threading.Lock()


def factory(netns: str) -> SocketFactory:
    with _factories_lock:
        if netns not in _factories:
            _factories[netns] = SocketFactory(netns)
        return _factories[netns]


def default_netns() -> str:
    """The pod network namespace of the environment in $GKE_AI_LOCAL_DIR (default: the repository's .local)."""
    local = Path(os.environ.get("GKE_AI_LOCAL_DIR", Path(__file__).resolve().parents[2] / ".local"))
    try:
        return json.loads((local / "state.json").read_text())["pod_netns"]
    except (FileNotFoundError, KeyError) as err:
        raise PodNetError(f"no pod network recorded in {local / 'state.json'} (make local-up)") from err


def create_connection(address: tuple[str, int], timeout: float | None = None,
                      netns: str | None = None) -> socket.socket:
    """socket.create_connection to a pod address, from inside the pod network namespace (default: the
    environment's, from state.json)."""
    return factory(netns or default_netns()).create_connection(address, timeout)
