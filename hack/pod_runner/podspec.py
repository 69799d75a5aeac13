"""A pod's container spec -> what its process gets, as the kubelet would give it to the container.

Pure functions over plain pod dicts; the API reads (Secrets, ConfigMaps, the ServiceAccount token) come in as
callables so that unit tests need no cluster:

* env: `value` with $(VAR) expansion, `valueFrom` (fieldRef, secretKeyRef, configMapKeyRef, resourceFieldRef)
  and `envFrom`, in the kubelet's order;
* command/args with $(VAR) expansion ($$ escapes);
* ConfigMap, Secret, projected, downwardAPI and emptyDir volumes materialised under the pod's directory, and every
  mount path in the arguments and env rewritten to that directory (there is no mount namespace);
* for runnables with api_access, a kubeconfig holding a TokenRequest token of the pod's ServiceAccount.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from . import images

# `lookup(kind, namespace, name)` -> the object dict, or None when it does not exist
Lookup = Callable[[str, str, str], "dict | None"]
# `token(namespace, service_account, pod)` -> a bound token for the pod
TokenSource = Callable[[str, str, dict], str]


class ConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError, as the kubelet says)."""


class ImageError(Exception):
    """The image has no local build (ErrImagePull: build it with hack/localcluster/build-tools.sh)."""


@dataclasses.dataclass
class Plan:
    """Everything needed to start one container's process."""
    name: str
    argv: list[str]  # binary first
    env: dict[str, str]
    files: dict[str, bytes]  # path relative to the pod directory -> content
    dirs: list[str]  # directories to create (emptyDir), relative to the pod directory
    ports: dict[str, int]  # port name (or str(number)) -> number
    first_port: int | None
    probes: dict[str, dict]  # startup/readiness/liveness -> the probe spec


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, variables: dict) -> str:
    """The kubelet's $(VAR) expansion: defined names are replaced, undefined ones left as written, $$ -> $."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return variables.get(m.group(1), m.group(0))
    return _REF.sub(one, text)


def _decode(data: dict | None, binary: bool) -> dict[str, bytes]:
    return {k: (base64.b64decode(v) if binary else v.encode()) for k, v in (data or {}).items()}


def _configmap_data(obj: dict) -> dict[str, bytes]:
    return {**_decode(obj.get("data"), False), **_decode(obj.get("binaryData"), True)}


def _secret_data(obj: dict) -> dict[str, bytes]:
    return {**_decode(obj.get("data"), True), **{k: v.encode() for k, v in (obj.get("stringData") or {}).items()}}


def field_value(pod: dict, path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path in simple:
        return simple[path]
    if m := re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path):
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path == "status.podIPs":
        return ",".join(i["ip"] for i in status.get("podIPs") or [])
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_value(container: dict, ref: dict) -> str:
    resource = ref["resource"]
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    return str(value) if value is not None else "0"


def _key_ref(kind: str, ref: dict, namespace: str, lookup: Lookup) -> str | None:
    obj = lookup(kind, namespace, ref["name"])
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    data = _secret_data(obj) if kind == "Secret" else _configmap_data(obj)
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]].decode(errors="replace")


def container_env(pod: dict, container: dict, lookup: Lookup) -> dict[str, str]:
    """The environment the kubelet would give the container (envFrom first, then env in order)."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in source:
                continue
            ref = source[key]
            obj = lookup(kind, namespace, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            data = _secret_data(obj) if kind == "Secret" else _configmap_data(obj)
            env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for item in container.get("env") or []:
        if "valueFrom" not in item:
            env[item["name"]] = expand(item.get("value", ""), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            value = _resource_value(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = _key_ref("Secret", source["secretKeyRef"], namespace, lookup)
        elif "configMapKeyRef" in source:
            value = _key_ref("ConfigMap", source["configMapKeyRef"], namespace, lookup)
        else:
            raise ConfigError(f"unsupported valueFrom for {item['name']}: {sorted(source)}")
        if value is not None:
            env[item["name"]] = value
    return env


# --------------------------------------------------------------------------- volumes

def _items(data: dict[str, bytes], items: list | None) -> dict[str, bytes]:
    if not items:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def _source_files(pod: dict, source: dict, lookup: Lookup, token: TokenSource) -> dict[str, bytes]:
    """Files of one volume (or projected source), relative to the volume's root."""
    namespace = pod["metadata"]["namespace"]
    for kind, key, name_key, reader in (("ConfigMap", "configMap", "name", _configmap_data),
                                        ("Secret", "secret", "secretName", _secret_data)):
        if key in source:
            ref = source[key]
            name = ref.get(name_key) or ref.get("name")
            obj = lookup(kind, namespace, name)
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise ConfigError(f'{kind.lower()} "{name}" not found')
            return _items(reader(obj), ref.get("items"))
    if "downwardAPI" in source:
        return {item["path"]: field_value(pod, item["fieldRef"]["fieldPath"]).encode()
                for item in source["downwardAPI"].get("items") or [] if "fieldRef" in item}
    if "serviceAccountToken" in source:
        sa = pod["spec"].get("serviceAccountName") or "default"
        return {source["serviceAccountToken"]["path"]: token(namespace, sa, pod).encode()}
    if "projected" in source:
        files: dict[str, bytes] = {}
        for part in source["projected"].get("sources") or []:
            files.update(_source_files(pod, part, lookup, token))
        return files
    return {}


def volume_files(pod: dict, lookup: Lookup, token: TokenSource) -> tuple[dict[str, bytes], list[str]]:
    """Files of every volume under volumes/<name>/, and the directories of the emptyDir volumes."""
    files: dict[str, bytes] = {}
    dirs: list[str] = []
    for volume in pod["spec"].get("volumes") or []:
        root = f"volumes/{volume['name']}"
        if "emptyDir" in volume:
            dirs.append(root)
            continue
        for rel, content in _source_files(pod, volume, lookup, token).items():
            files[f"{root}/{rel}"] = content
        dirs.append(root)
    return files, dirs


def mount_map(pod: dict, container: dict, pod_dir: Path) -> dict[str, str]:
    """Mount path -> the local path that stands for it."""
    known = {v["name"] for v in pod["spec"].get("volumes") or []}
    mounts = {}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in known:
            raise ConfigError(f"volume {mount['name']!r} mounted at {mount['mountPath']} is not defined")
        local = pod_dir / "volumes" / mount["name"]
        if mount.get("subPath"):
            local = local / mount["subPath"]
        mounts[mount["mountPath"].rstrip("/") or "/"] = str(local)
    return mounts


def rewrite_paths(text: str, mounts: dict[str, str]) -> str:
    """Every mount path at a path boundary in `text` becomes its local directory (longest mount first)."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if mount_path == "/":
            continue
        pattern = re.compile(r"(?<![\w.\-/])" + re.escape(mount_path) + r"(?=/|$|[\s:,;=\"'])")
        text = pattern.sub(lambda _m, local=mounts[mount_path]: local, text)
    return text


# --------------------------------------------------------------------------- the plan

def container_ports(container: dict) -> tuple[dict[str, int], int | None]:
    ports: dict[str, int] = {}
    first = None
    for port in container.get("ports") or []:
        number = int(port["containerPort"])
        first = first if first is not None else number
        ports[str(number)] = number
        if port.get("name"):
            ports[port["name"]] = number
    return ports, first


def resolve_port(port, ports: dict[str, int]) -> int:
    """A probe's port: a number, or the name of a container port."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    if port in ports:
        return ports[port]
    raise ConfigError(f"probe port {port!r} is not a container port")


def kubeconfig(server: str, ca_pem: bytes, token_file: Path) -> str:
    """A kubeconfig for a pod: the API server through the host gateway, verified as kubernetes.default.svc."""
    import json
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "pod",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "tls-server-name": "kubernetes.default.svc",
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": "sa", "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": "pod", "context": {"cluster": "local", "user": "sa",
                                                 "namespace": "default"}}],
    }, indent=2) + "\n"


def plan(pod: dict, container: dict, runnable: images.Runnable, match: re.Match, ctx: images.Context,
         pod_dir: Path, lookup: Lookup, token: TokenSource, api_ca: bytes | None = None) -> Plan:
    """How to run one container of a pod. Raises ImageError or ConfigError as the kubelet would fail it."""
    binary = runnable.binary(match, ctx)
    if not binary.is_file():
        raise ImageError(f"no local build for image {container['image']}: {binary} is missing "
                         "(bash hack/localcluster/build-tools.sh)")
    env = container_env(pod, container, lookup)
    mounts = mount_map(pod, container, pod_dir)
    env = {k: rewrite_paths(v, mounts) for k, v in env.items()}
    command = [rewrite_paths(expand(w, env), mounts) for w in container.get("command") or []]
    args = [rewrite_paths(expand(w, env), mounts) for w in container.get("args") or []]
    argv = [str(binary), *images.process_argv(runnable, command, args, env, ctx)]
    files, dirs = volume_files(pod, lookup, token)
    process_env = {"HOSTNAME": pod["metadata"]["name"], "HOME": str(pod_dir / "home"),
                   "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   **runnable.extra_env(env, ctx), **env}
    if runnable.downward_env:
        for key, value in (("POD_IP", (pod.get("status") or {}).get("podIP", "")),
                           ("POD_NAME", pod["metadata"]["name"]), ("POD_NAMESPACE", pod["metadata"]["namespace"])):
            process_env.setdefault(key, value)
    dirs.append("home")
    if runnable.api_access:
        namespace, sa = pod["metadata"]["namespace"], pod["spec"].get("serviceAccountName") or "default"
        files["serviceaccount/token"] = token(namespace, sa, pod).encode()
        files["serviceaccount/namespace"] = namespace.encode()
        server = f"https://{ctx.host_gateway}:{ctx.host_ports['apiserver']}"
        files["kubeconfig"] = kubeconfig(server, api_ca or b"", pod_dir / "serviceaccount" / "token").encode()
        process_env.setdefault("KUBECONFIG", str(pod_dir / "kubeconfig"))
    ports, first = container_ports(container)
    probes = {}
    for kind in ("startup", "readiness", "liveness"):
        probe = container.get(f"{kind}Probe")
        if probe:
            probes[kind] = probe
    for probe in probes.values():  # fail on a bad port now, not at the first probe
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler in probe:
                resolve_port(probe[handler]["port"], ports)
    return Plan(name=container["name"], argv=argv, env=process_env, files=files, dirs=dirs, ports=ports,
                first_port=first, probes=probes)
