"""The local environment: a real Kubernetes control plane, kwok nodes, helm, an OCI registry,
the GKE status simulator and the fake of the Google Cloud APIs, as processes on 127.0.0.1.

    python localenv.py up        # idempotent: a healthy environment is left as it is
    python localenv.py down      # stops every process, frees every port, removes the data
    python localenv.py status    # one line per component, exit 1 when something is down

State lives in .local/ at the repository root: kubeconfig, env.sh, state.json,
logs/<component>.log and data/. Binaries come from build-tools.sh's cache.
GPU nodes are not created here: they come from node pools made through the GCP fake
(hack/gcp_fake), which turns them into kwok nodes and autoscales them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import nodes  # noqa: E402  (the sibling helper)
import podnet  # noqa: E402

sys.path.insert(0, str(REPO / "hack"))
from pod_runner import images as runnable_images  # noqa: E402

LOCAL = Path(os.environ.get("GKE_AI_LOCAL_DIR", REPO / ".local"))
LOGS = LOCAL / "logs"
DATA = LOCAL / "data"
STATE_FILE = LOCAL / "state.json"
KUBECONFIG = LOCAL / "kubeconfig"
ENV_SH = LOCAL / "env.sh"
CACHE = Path(os.environ.get("GKE_AI_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gke-ai-infgw"))
CRD_FIXTURES = REPO / "tests" / "fixtures" / "crds"

CPU_NODES = int(os.environ.get("LOCAL_CPU_NODES", "2"))
GCP_SERVICE_ACCOUNT_FILE = LOCAL / "gcp-service-account.json"
GCP_PROJECT = "local-project"
GCP_LOCATION = "us-central1"
GCP_CLUSTER = "local-cluster"

GKE_GATEWAY_CLASSES = (
    "gke-l7-regional-external-managed",
    "gke-l7-rilb",
    "gke-l7-global-external-managed",
    "gke-l7-gxlb",
)
GKE_CONTROLLER = "networking.gke.io/gateway"
GIE_DEFAULT = "v1.1.0"  # the default profile's endpoint picker and BBR must be built; other versions may be
# Every process a complete environment runs; a state without one of them (say, written by an
# older version of this script) is incomplete and gets recreated.
COMPONENTS = ("etcd", "kube-apiserver", "registry", "kube-controller-manager", "kube-scheduler", "kwok", "gcp-fake",
              "gke-sim", "pod-runner", "gateway-dataplane")
PODS_DIR = LOCAL / "pods"
POD_RUNNER_STATE = LOCAL / "pod-runner.json"
KWOK_STAGES = LOCAL / "kwok"


class EnvError(RuntimeError):
    """Something did not come up; the message says what and shows its log."""


def log(msg: str) -> None:
    print(f"[local-env {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_versions() -> dict:
    versions = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key] = value.strip('"')
    return versions


def binaries(versions: dict) -> dict:
    kube = CACHE / "bin" / f"kubernetes-{versions['K8S_VERSION']}"
    paths = {
        "etcd": CACHE / "bin" / f"etcd-{versions['ETCD_VERSION']}" / "etcd",
        "kube-apiserver": kube / "kube-apiserver",
        "kube-controller-manager": kube / "kube-controller-manager",
        "kube-scheduler": kube / "kube-scheduler",
        "kubectl": kube / "kubectl",
        "kwok": CACHE / "bin" / f"kwok-{versions['KWOK_VERSION']}" / "kwok",
        "helm": CACHE / "bin" / f"helm-{versions['HELM_VERSION']}" / "helm",
        "registry": CACHE / "bin" / f"registry-{versions['REGISTRY_VERSION']}" / "registry",
        # the local data plane (the pod runner starts them for pods of their images; hey is for load tests)
        "llm-d-inference-sim": CACHE / "bin" / f"llm-d-inference-sim-{versions['LLMD_SIM_VERSION']}"
                               / "llm-d-inference-sim",
        "epp": CACHE / "bin" / f"gie-{GIE_DEFAULT}" / "epp",
        "bbr": CACHE / "bin" / f"gie-{GIE_DEFAULT}" / "bbr",
        "hey": CACHE / "bin" / f"hey-{versions['HEY_VERSION']}" / "hey",
        # the custom metrics adapter's stand-in (the pod runner starts it for the adapter's image)
        "metrics-adapter": CACHE / "bin" / "metrics-adapter-{}".format(
            runnable_images.source_version(runnable_images.ADAPTER_SOURCE)) / "metrics-adapter",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise EnvError("tool binaries missing (run hack/localcluster/build-tools.sh):\n  " + "\n  ".join(missing))
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def go_module_dir(module: str, version: str) -> Path:
    """Source of a Go module at a version, from the module cache (downloaded through the proxy if absent)."""
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    out = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                         text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise EnvError(f"go mod download {module}@{version} failed:\n{out.stdout}{out.stderr}")
    return Path(json.loads(out.stdout)["Dir"])


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --------------------------------------------------------------------------- processes

def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start(name: str, argv: list, state: dict, env: dict | None = None) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115  (owned by the child from here on)
    proc = subprocess.Popen([str(a) for a in argv], stdout=logfile, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, **(env or {})), cwd=str(LOCAL))
    state["pids"][name] = proc.pid
    save_state(state)


def wait_for(name: str, check, timeout: float, state: dict) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = state["pids"].get(name)
        if pid and not pid_alive(pid):
            raise EnvError(f"{name} exited during start-up; last lines of {LOGS / (name + '.log')}:\n"
                           f"{tail(LOGS / (name + '.log'))}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise EnvError(f"{name} not ready after {timeout:.0f}s; last lines of {LOGS / (name + '.log')}:\n"
                   f"{tail(LOGS / (name + '.log'))}")


def stop_all(state: dict) -> None:
    # Reverse start order: the simulator and controllers first, etcd last.
    for name, pid in reversed(list(state.get("pids", {}).items())):
        if not pid_alive(pid):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        log(f"stopped {name} (pid {pid})")


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------- state

def load_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return None


def save_state(state: dict) -> None:
    LOCAL.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")


# --------------------------------------------------------------------------- API helpers

def api_get(state: dict, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(LOCAL / "pki" / "ca.crt"))
    req = urllib.request.Request(f"https://127.0.0.1:{state['ports']['apiserver']}{path}",
                                 headers={"Authorization": f"Bearer {state['token']}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def kubectl(state: dict, bins: dict, *args: str, stdin: str | None = None, kubeconfig: Path = KUBECONFIG) -> str:
    out = subprocess.run([str(bins["kubectl"]), "--kubeconfig", str(kubeconfig), *args], input=stdin,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise EnvError(f"kubectl {' '.join(args)} failed:\n{out.stderr.strip()}")
    return out.stdout


def write_kubeconfig(state: dict, path: Path = KUBECONFIG, port_name: str = "apiserver", name: str = "local") -> None:
    ca = base64.b64encode((LOCAL / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": f"https://127.0.0.1:{state['ports'][port_name]}",
            "certificate-authority-data": ca}}],
        "users": [{"name": "admin", "user": {"token": state["token"]}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
        "current-context": name,
    }, indent=2) + "\n")
    path.chmod(0o600)


def write_env_sh(state: dict, bins: dict) -> None:
    """.local/bin links every built tool; env.sh puts it first on PATH."""
    bin_dir = LOCAL / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, path in bins.items():
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path)
    ENV_SH.write_text(
        "# Generated by hack/localcluster/localenv.py: source it to talk to the local environment.\n"
        f"export KUBECONFIG={KUBECONFIG}\n"
        f"export K8S_AUTH_KUBECONFIG={KUBECONFIG}\n"
        f"export LOCAL_OCI_REGISTRY=127.0.0.1:{state['ports']['registry']}\n"
        f"export LOCAL_GIE_MANIFESTS={LOCAL / 'gie'}\n"
        f"export PATH={bin_dir}:$PATH\n"
        f"export INFGW_LOCAL_TLS_CERT_FILE={LOCAL / 'pki' / 'gateway-tls.crt'}\n"
        f"export INFGW_LOCAL_TLS_KEY_FILE={LOCAL / 'pki' / 'gateway-tls.key'}\n"
        f"export INFGW_LOCAL_DATAPLANE=http://127.0.0.1:{state['ports']['dataplane_admin']}\n"
        f"export GKE_AI_LOCAL_DIR={LOCAL}\n"
        f"export INFGW_LOCAL_POD_NETNS={state['pod_netns']}\n"
        + "".join(f"export {k}='{v}'\n" for k, v in gcp_env(state).items())
    )


def gcp_env(state: dict) -> dict:
    """What env.sh exports for the GCP fake: the endpoint template (a literal {service}), token and names."""
    return {
        "INFGW_GCP_API_ENDPOINT": f"http://127.0.0.1:{state['ports']['gcp_fake']}/{{service}}/",
        "GCP_AUTH_KIND": "accesstoken",
        "GCP_ACCESS_TOKEN": state["gcp_token"],
        "GCP_PROJECT": GCP_PROJECT,
        "INFGW_LOCAL_GCP_PROJECT": GCP_PROJECT,
        "INFGW_LOCAL_GCP_LOCATION": GCP_LOCATION,
        "INFGW_LOCAL_GCP_CLUSTER": GCP_CLUSTER,
        "INFGW_LOCAL_GCP_SERVICE_ACCOUNT_FILE": str(GCP_SERVICE_ACCOUNT_FILE),
    }


# --------------------------------------------------------------------------- components

def make_pki(state: dict) -> None:
    """A CA, the API server's serving certificate for 127.0.0.1/localhost, the service-account key and the token."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    pki = LOCAL / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def key_pem(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())

    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gke-ai-localenv-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    serving_key = new_key()
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"]
    # the `kubernetes` Service's ClusterIP (the first of the environment's range) and the host gateway pods use
    ips = ["127.0.0.1", str(ipaddress.ip_network(state["service_cidr"])[1]), podnet.HOST_GATEWAY]
    serving = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
               .issuer_name(ca_name).public_key(serving_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]
                                                          + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
                              critical=False)
               .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    # The walkthrough's Gateway certificate (uc1-wildcard, *.example.com), from which site.yml's gcp_prerequisites
    # step makes a Certificate Manager certificate in the GCP fake, as a user does from their own PEM pair.
    gateway_key = new_key()
    gateway = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "*.example.com")]))
               .issuer_name(ca_name).public_key(gateway_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.example.com"), x509.DNSName("example.com")]),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    (pki / "gateway-tls.crt").write_bytes(gateway.public_bytes(serialization.Encoding.PEM)
                                          + ca.public_bytes(serialization.Encoding.PEM))
    (pki / "gateway-tls.key").write_bytes(key_pem(gateway_key))
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.key").write_bytes(key_pem(serving_key))
    (pki / "sa.key").write_bytes(key_pem(new_key()))
    # The second token is the GCP fake's access token: gcloud's get-credentials kubeconfig authenticates with it
    # (gke-gcloud-auth-plugin hands kubectl gcloud's token), as a GKE cluster accepts its project owner's.
    (pki / "tokens.csv").write_text(f"{state['token']},admin,admin-uid,system:masters\n"
                                    f"{state['gcp_token']},gcloud-user,gcloud-user-uid,system:masters\n")
    make_front_proxy_pki(pki, new_key, key_pem)
    for f in pki.iterdir():
        f.chmod(0o600)


def make_front_proxy_pki(pki: Path, new_key, key_pem) -> None:
    """The aggregation layer's front proxy: its own CA and the client certificate kube-apiserver presents to
    aggregated API servers (the metrics adapter), which trust it through extension-apiserver-authentication."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, client_key = new_key(), new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gke-ai-localenv-front-proxy-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    client = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-client")]))
              .issuer_name(ca_name).public_key(client_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=365))
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    (pki / "front-proxy-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "front-proxy-client.crt").write_bytes(client.public_bytes(serialization.Encoding.PEM))
    (pki / "front-proxy-client.key").write_bytes(key_pem(client_key))


def aggregation_flags(pki: Path) -> list:
    """kube-apiserver's aggregation layer (APIServices backed by Services, e.g. external.metrics.k8s.io)."""
    return [f"--client-ca-file={pki / 'ca.crt'}",  # published in extension-apiserver-authentication, as clusters do
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}"]


def service_account_info(token_uri: str, project: str = "local-project") -> dict:
    """A service-account key file's content with a fresh RSA key, its token_uri pointing at the GCP fake."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = f"infgw-local@{project}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(100000000000000000000 + secrets.randbelow(10 ** 20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email.replace('@', '%40')}",
        "universe_domain": "googleapis.com",
    }


def start_etcd(state: dict, bins: dict) -> None:
    p = state["ports"]
    start("etcd", [bins["etcd"], "--name", "local", "--data-dir", DATA / "etcd",
                   "--listen-client-urls", f"http://127.0.0.1:{p['etcd']}",
                   "--advertise-client-urls", f"http://127.0.0.1:{p['etcd']}",
                   "--listen-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
                   "--initial-advertise-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
                   "--initial-cluster", f"local=http://127.0.0.1:{p['etcd_peer']}",
                   "--unsafe-no-fsync", "--log-level", "warn"], state)

    def healthy():
        with urllib.request.urlopen(f"http://127.0.0.1:{p['etcd']}/health", timeout=1) as r:
            return json.loads(r.read()).get("health") == "true"
    wait_for("etcd", healthy, 60, state)


def start_apiserver(state: dict, bins: dict) -> None:
    p, pki = state["ports"], LOCAL / "pki"
    start("kube-apiserver", [
        bins["kube-apiserver"],
        f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p['apiserver']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.key'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        # ClusterIPs in a loopback block of this environment's own: the pod runner listens on them on the host
        f"--service-cluster-ip-range={state['service_cidr']}", "--allow-privileged=true",
        "--endpoint-reconciler-type=none",
        *aggregation_flags(pki),
    ], state)
    wait_for("kube-apiserver", lambda: api_get(state, "/readyz")[0] == 200, 120, state)
    write_kubeconfig(state)


def start_controllers(state: dict, bins: dict) -> None:
    p, pki = state["ports"], LOCAL / "pki"
    start("kube-controller-manager", [
        bins["kube-controller-manager"], f"--kubeconfig={KUBECONFIG}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={p['controller_manager']}",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=false", "--kube-api-qps=100", "--kube-api-burst=200",
        "--node-monitor-grace-period=60s",
        # The HPA controller re-evaluates every 15s by default; tests wait on it.
        "--horizontal-pod-autoscaler-sync-period=5s",
    ], state)
    start("kube-scheduler", [
        bins["kube-scheduler"], f"--kubeconfig={KUBECONFIG}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={p['scheduler']}",
    ], state)
    stages = go_module_dir("sigs.k8s.io/kwok", state["versions"]["KWOK_VERSION"]) / "kustomize" / "stage"
    stage_files = [stages / "node" / "fast" / "node-initialize.yaml",
                   stages / "node" / "heartbeat-with-lease" / "node-heartbeat-with-lease.yaml",
                   *write_pod_stages(stages / "pod" / "fast" / "pod-ready.yaml"),
                   stages / "pod" / "fast" / "pod-complete.yaml",
                   stages / "pod" / "fast" / "pod-delete.yaml"]
    start("kwok", [
        bins["kwok"], f"--kubeconfig={KUBECONFIG}", "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.1/16", "--node-ip=10.240.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{p['kwok']}",
        "--config=" + ",".join(str(f) for f in stage_files),
    ], state)
    for name, port in (("kube-controller-manager", p["controller_manager"]), ("kube-scheduler", p["scheduler"]),
                       ("kwok", p["kwok"])):
        wait_for(name, lambda port=port: tcp_open(port), 60, state)


RUNNABLE_SELECTOR = '[.spec.containers[].image | test("{regex}")] | any'


def write_pod_stages(kwok_pod_ready: Path) -> list[Path]:
    """kwok's fast pod-ready stage for pods without a runnable image, and for the others a pod-start stage that
    only gives the pod its IP: the pod runner starts their processes and reports them Ready when they are."""
    import yaml

    regex = runnable_images.kwok_image_regex().replace("\\", "\\\\").replace('"', '\\"')
    runnable = {"key": RUNNABLE_SELECTOR.format(regex=regex), "operator": "In", "values": ["true"]}
    ready = yaml.safe_load(kwok_pod_ready.read_text())
    ready["spec"]["selector"]["matchExpressions"].append(dict(runnable, operator="NotIn"))
    start = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": "pod-start-runnable"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
                {"key": ".status.podIP", "operator": "DoesNotExist"},
                runnable,
            ]},
            "next": {"statusTemplate": POD_START_TEMPLATE},
        },
    }
    KWOK_STAGES.mkdir(parents=True, exist_ok=True)
    out = [KWOK_STAGES / "pod-ready.yaml", KWOK_STAGES / "pod-start-runnable.yaml"]
    out[0].write_text(yaml.safe_dump(ready, sort_keys=False))
    out[1].write_text(yaml.safe_dump(start, sort_keys=False))
    return out


# kwok's pod-ready template, less readiness: the containers wait (ContainerCreating) until the pod runner starts
# them. The pod IP comes from kwok's pool here, as for every other pod.
POD_START_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    waiting:
      reason: ContainerCreating
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Pending
startTime: {{ $now | Quote }}
"""


def start_registry(state: dict, bins: dict) -> None:
    p = state["ports"]
    cfg = LOCAL / "registry.yml"
    cfg.write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(DATA / "registry")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{p['registry']}"},
    }))
    start("registry", [bins["registry"], "serve", cfg], state)

    def ready():
        with urllib.request.urlopen(f"http://127.0.0.1:{p['registry']}/v2/", timeout=1) as r:
            return r.status == 200
    wait_for("registry", ready, 30, state)


def start_gcp_fake(state: dict) -> None:
    """hack/gcp_fake: the Google APIs the GCP modules call, node pools as kwok nodes, the cluster autoscaler."""
    port = state["ports"]["gcp_fake"]
    GCP_SERVICE_ACCOUNT_FILE.write_text(json.dumps(service_account_info(f"http://127.0.0.1:{port}/oauth2/token",
                                                                        GCP_PROJECT), indent=2) + "\n")
    GCP_SERVICE_ACCOUNT_FILE.chmod(0o600)
    start("gcp-fake", [sys.executable, REPO / "hack" / "gcp_fake" / "run.py", "--host", "127.0.0.1",
                       "--port", port, "--token", state["gcp_token"], "--kubeconfig", KUBECONFIG,
                       "--service-account-file", GCP_SERVICE_ACCOUNT_FILE, "--default-pool-nodes", CPU_NODES,
                       "--cluster-endpoint", f"127.0.0.1:{state['ports']['apiserver']}",
                       "--cluster-ca-file", LOCAL / "pki" / "ca.crt",
                       "--operation-delay", os.environ.get("GCP_FAKE_OPERATION_DELAY", "1"),
                       "--scale-up-delay", os.environ.get("GCP_FAKE_SCALE_UP_DELAY", "1"),
                       "--scale-down-idle", os.environ.get("GCP_FAKE_SCALE_DOWN_IDLE", "60"),
                       *(["--pod-netns", state["pod_netns"]] if state.get("pod_netns") else [])], state)

    def ready():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/healthz", timeout=1) as r:
            return r.status == 200
    wait_for("gcp-fake", ready, 30, state)


def start_gke_sim(state: dict) -> None:
    runner = REPO / "hack" / "gke_sim" / "run.py"
    if not runner.exists():
        raise EnvError(f"GKE simulator missing: {runner}")
    delay = os.environ.get("GKE_SIM_PROGRAM_DELAY", "2")
    start("gke-sim", [sys.executable, runner, "--kubeconfig", KUBECONFIG, "--program-delay", delay,
                      "--address-base", state["gateway_address_base"]], state)
    time.sleep(1.0)
    wait_for("gke-sim", lambda: True, 5, state)


def start_pod_runner(state: dict) -> None:
    """hack/pod_runner: processes for pods of runnable images, their network, ClusterIPs on the host."""
    p = state["ports"]
    start("pod-runner", [sys.executable, REPO / "hack" / "pod_runner" / "run.py", "--kubeconfig", KUBECONFIG,
                         "--env-id", state["env_id"], "--state-dir", LOCAL, "--bin-dir", CACHE / "bin",
                         "--versions", HERE / "versions.env",
                         "--host-port", f"apiserver={p['apiserver']}", "--host-port", f"gcp_fake={p['gcp_fake']}",
                         "--backoff-base", os.environ.get("POD_RUNNER_BACKOFF_BASE", "2"),
                         "--backoff-max", os.environ.get("POD_RUNNER_BACKOFF_MAX", "60")], state)
    wait_for("pod-runner", lambda: POD_RUNNER_STATE.exists(), 30, state)


def dataplane_source_hash() -> str:
    """The cache key of hack/dataplane's build: build-tools.sh's dataplane_hash (go.mod, go.sum, non-test sources)."""
    import hashlib

    src = REPO / "hack" / "dataplane"
    digest = hashlib.sha256()
    for name in ["go.mod", "go.sum"] + sorted(p.name for p in src.glob("*.go") if not p.name.endswith("_test.go")):
        digest.update(name.encode() + b"\0" + (src / name).read_bytes())
    return digest.hexdigest()[:16]


def start_gateway_dataplane(state: dict) -> None:
    """hack/dataplane: the simulator of GKE's load balancer, serving every Gateway gke_sim programs."""
    binary = CACHE / "bin" / f"gateway-dataplane-{dataplane_source_hash()}" / "gateway-dataplane"
    if not binary.is_file():
        raise EnvError(f"gateway data plane not built: {binary} (run hack/localcluster/build-tools.sh dataplane)")
    port = state["ports"]["dataplane_admin"]
    argv = [binary, "--kubeconfig", KUBECONFIG, "--admin-addr", f"127.0.0.1:{port}",
            "--gcp-endpoint", f"http://127.0.0.1:{state['ports']['gcp_fake']}",
            "--gcp-project", GCP_PROJECT, "--gcp-region", GCP_LOCATION]
    if state.get("pod_netns"):
        argv += ["--pod-netns", f"/run/netns/{state['pod_netns']}"]
    start("gateway-dataplane", argv, state, env={"DATAPLANE_GCP_TOKEN": state["gcp_token"]})

    def ready():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return r.status == 200
    wait_for("gateway-dataplane", ready, 30, state)


# --------------------------------------------------------------------------- cluster content

def relaxed_healthcheckpolicy_crd(path: Path) -> dict:
    """The HealthCheckPolicy CRD without its portSpecification CEL rules.

    The fixture is gke-gateway-api's main-branch CRD, whose rules reject a health check that sets
    `port` without `portSpecification` (and error with "no such key" when it is absent). Both the
    walkthrough's HealthCheckPolicies and the GIE inferencepool chart's set exactly that, and GKE
    accepts them, so the schema GKE serves does not carry these rules; its own field description
    says so too ("If not specified, ... follows behavior specified in port and portName").
    """
    import yaml

    crd = yaml.safe_load(path.read_text())

    def prune(node):
        if isinstance(node, dict):
            rules = node.get("x-kubernetes-validations")
            if rules:
                node["x-kubernetes-validations"] = [r for r in rules if "portSpecification" not in r["rule"]]
                if not node["x-kubernetes-validations"]:
                    del node["x-kubernetes-validations"]
            for value in node.values():
                prune(value)
        elif isinstance(node, list):
            for value in node:
                prune(value)
    prune(crd)
    return crd


def install_crds_and_classes(state: dict, bins: dict, kubeconfig: Path = KUBECONFIG) -> None:
    gw_dir = go_module_dir("sigs.k8s.io/gateway-api", state["versions"]["GATEWAY_API_VERSION"])
    files = sorted((gw_dir / "config" / "crd" / "standard").glob("*.yaml"))
    files += sorted((CRD_FIXTURES / "gmp").glob("*.yaml"))
    gke = sorted((CRD_FIXTURES / "gke-networking").glob("*.yaml"))
    hcp = next(f for f in gke if f.name == "networking.gke.io_healthcheckpolicies.yaml")
    files += [f for f in gke if f != hcp]
    args = ["apply", "--server-side", "--field-manager=gke-ai-localenv", "--force-conflicts"]
    for f in files:
        args += ["-f", str(f)]
    kubectl(state, bins, *args, kubeconfig=kubeconfig)
    kubectl(state, bins, "apply", "--server-side", "--field-manager=gke-ai-localenv", "--force-conflicts", "-f", "-",
            stdin=json.dumps(relaxed_healthcheckpolicy_crd(hcp)), kubeconfig=kubeconfig)
    kubectl(state, bins, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all", kubeconfig=kubeconfig)
    classes = [{
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": GKE_CONTROLLER},
    } for name in GKE_GATEWAY_CLASSES]
    kubectl(state, bins, "apply", "--server-side", "--field-manager=gke-ai-localenv", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": classes}), kubeconfig=kubeconfig)
    log(f"installed {len(files) + 1} CRDs (Gateway API {state['versions']['GATEWAY_API_VERSION']}, GKE networking, "
        f"Managed Prometheus) and {len(classes)} GKE GatewayClasses")


def install_gmp_defaults(state: dict, bins: dict, kubeconfig: Path = KUBECONFIG) -> None:
    """What GKE's managed collection has in every cluster: namespaces gmp-system (the collector's service account,
    which the charts grant read access to their scrape secrets) and gmp-public with OperatorConfig `config`
    (target status off, GKE's default). The GCP fake's collector reads them (hack/gcp_fake/gmp.py)."""
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gmp-system"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gmp-public"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "collector", "namespace": "gmp-system"}},
        {"apiVersion": "monitoring.googleapis.com/v1", "kind": "OperatorConfig",
         "metadata": {"name": "config", "namespace": "gmp-public"}},
    ]
    kubectl(state, bins, "apply", "--server-side", "--field-manager=gke-ai-localenv", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), kubeconfig=kubeconfig)


def push_charts(state: dict, bins: dict) -> None:
    """The upstream GIE charts, under the same repository paths as registry.k8s.io."""
    registry = f"127.0.0.1:{state['ports']['registry']}"
    helm_env = dict(os.environ, HELM_CACHE_HOME=str(LOCAL / "helm" / "cache"),
                    HELM_CONFIG_HOME=str(LOCAL / "helm" / "config"), HELM_DATA_HOME=str(LOCAL / "helm" / "data"))
    for version in state["versions"]["GIE_VERSIONS"].split():
        src = go_module_dir("sigs.k8s.io/gateway-api-inference-extension", version)
        for chart in ("inferencepool", "body-based-routing"):
            with tempfile.TemporaryDirectory() as tmp:
                # The module cache is read-only; helm package writes into the chart's charts/. The whole charts
                # directory is copied: from v1.4.0 inferencepool depends on file://../epplib, which
                # --dependency-update bundles into the package (as upstream's hack/push-chart.sh does).
                shutil.copytree(src / "config" / "charts", Path(tmp) / "charts")
                for f in (Path(tmp) / "charts").rglob("*"):
                    f.chmod(0o755 if f.is_dir() else 0o644)
                run = subprocess.run([str(bins["helm"]), "package", str(Path(tmp) / "charts" / chart), "--version",
                                      version, "--app-version", version, "--dependency-update", "-d", tmp],
                                     capture_output=True, text=True, env=helm_env)
                if run.returncode != 0:
                    raise EnvError(f"helm package {chart} {version}: {run.stderr}")
                tgz = next(Path(tmp).glob(f"{chart}-*.tgz"))
                run = subprocess.run([str(bins["helm"]), "push", str(tgz),
                                      f"oci://{registry}/gateway-api-inference-extension/charts", "--plain-http"],
                                     capture_output=True, text=True, env=helm_env)
                if run.returncode != 0:
                    raise EnvError(f"helm push {chart} {version}: {run.stderr}")
                digest = next((ln.split()[-1] for ln in run.stdout.splitlines() + run.stderr.splitlines()
                               if ln.startswith("Digest:")), "?")
                log(f"pushed oci://{registry}/gateway-api-inference-extension/charts/{chart}:{version} ({digest})")


def write_gie_manifests(state: dict) -> None:
    """.local/gie/<version>/manifests.yaml: what upstream attaches to each release (the CRDs), offline."""
    for version in state["versions"]["GIE_VERSIONS"].split():
        crd_dir = go_module_dir("sigs.k8s.io/gateway-api-inference-extension", version) / "config" / "crd" / "bases"
        dest = LOCAL / "gie" / version / "manifests.yaml"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("".join("---\n" + f.read_text() for f in sorted(crd_dir.glob("*.yaml"))))
    log(f"GIE release manifests (CRDs) written under {LOCAL / 'gie'}")


def create_nodes(state: dict) -> None:
    """The CPU nodes of default-pool (the GCP fake's seeded pool); GPU nodes come from node pools in the fake."""
    from kubernetes import config as kconfig, client as kclient

    core = kclient.CoreV1Api(kconfig.new_client_from_config(config_file=str(KUBECONFIG)))
    cpu = nodes.ensure_pool(core, "default-pool", CPU_NODES, nodes.SHAPES["e2-standard-4"])
    log(f"nodes: {CPU_NODES} x e2-standard-4 in default-pool (created {len(cpu['created'])}); GPU nodes come from "
        "node pools created through the GCP fake")

    def all_ready():
        items = core.list_node(label_selector=f"{nodes.MANAGED_BY_LABEL}={nodes.MANAGED_BY}").items
        ready = [n for n in items if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
        return len(ready) == CPU_NODES
    wait_for("kwok", all_ready, 60, state)


# --------------------------------------------------------------------------- a second cluster

KUBECONFIG_SECOND = LOCAL / "kubeconfig-second"
SECOND_COMPONENTS = ("kube-apiserver-second", "kube-controller-manager-second", "kube-scheduler-second", "kwok-second",
                     "gke-sim-second")
SECOND_GPU_NODES = int(os.environ.get("LOCAL_SECOND_GPU_NODES", "3"))


def second_healthy(state: dict) -> bool:
    pids = state.get("pids", {})
    if any(name not in pids or not pid_alive(pids[name]) for name in SECOND_COMPONENTS):
        return False
    return api_get(dict(state, ports=dict(state["ports"], apiserver=state["ports"]["apiserver_second"])),
                   "/readyz")[0] == 200


def cmd_up_second(_args) -> int:
    """A second cluster beside the environment's, for many-cluster runs: its own kube-apiserver on the same etcd
    (another --etcd-prefix), controller-manager, scheduler, kwok and GKE status simulator, the same CRDs and
    GatewayClasses, CPU nodes and a GPU pool of kwok nodes. Every pod is Ready at once (kwok; no pod runner, no load
    balancer) and the GCP fake does not know the cluster: its node pools are kwok nodes made here."""
    state = load_state()
    if not state or not state.get("complete") or healthy(state):
        raise EnvError("the environment is not up: make local-up first")
    if second_healthy(state):
        log(f"second cluster already up (kubeconfig {KUBECONFIG_SECOND}); nothing to do")
        return 0
    started = time.monotonic()
    bins = binaries(state["versions"])
    for name in ("apiserver_second", "controller_manager_second", "scheduler_second", "kwok_second"):
        state["ports"][name] = free_port()
    save_state(state)
    p, pki = state["ports"], LOCAL / "pki"
    start("kube-apiserver-second", [
        bins["kube-apiserver"], f"--etcd-servers=http://127.0.0.1:{p['etcd']}", "--etcd-prefix=/registry-second",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p['apiserver_second']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.key'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={state['service_cidr']}", "--allow-privileged=true",
        "--endpoint-reconciler-type=none",
    ], state)
    second = dict(state, ports=dict(p, apiserver=p["apiserver_second"]))
    wait_for("kube-apiserver-second", lambda: api_get(second, "/readyz")[0] == 200, 120, state)
    write_kubeconfig(state, KUBECONFIG_SECOND, "apiserver_second", "second")
    start("kube-controller-manager-second", [
        bins["kube-controller-manager"], f"--kubeconfig={KUBECONFIG_SECOND}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={p['controller_manager_second']}",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=false", "--kube-api-qps=100", "--kube-api-burst=200",
        "--node-monitor-grace-period=60s", "--horizontal-pod-autoscaler-sync-period=5s",
    ], state)
    start("kube-scheduler-second", [
        bins["kube-scheduler"], f"--kubeconfig={KUBECONFIG_SECOND}", "--leader-elect=false",
        "--bind-address=127.0.0.1", f"--secure-port={p['scheduler_second']}",
    ], state)
    stages = go_module_dir("sigs.k8s.io/kwok", state["versions"]["KWOK_VERSION"]) / "kustomize" / "stage"
    stage_files = [stages / "node" / "fast" / "node-initialize.yaml",
                   stages / "node" / "heartbeat-with-lease" / "node-heartbeat-with-lease.yaml",
                   stages / "pod" / "fast" / "pod-ready.yaml", stages / "pod" / "fast" / "pod-complete.yaml",
                   stages / "pod" / "fast" / "pod-delete.yaml"]
    start("kwok-second", [
        bins["kwok"], f"--kubeconfig={KUBECONFIG_SECOND}", "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.245.0.1/16", "--node-ip=10.241.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{p['kwok_second']}", "--config=" + ",".join(str(f) for f in stage_files),
    ], state)
    for name, port in (("kube-controller-manager-second", p["controller_manager_second"]),
                       ("kube-scheduler-second", p["scheduler_second"]), ("kwok-second", p["kwok_second"])):
        wait_for(name, lambda port=port: tcp_open(port), 60, state)
    install_crds_and_classes(state, bins, KUBECONFIG_SECOND)
    install_gmp_defaults(state, bins, KUBECONFIG_SECOND)
    from kubernetes import config as kconfig, client as kclient

    core = kclient.CoreV1Api(kconfig.new_client_from_config(config_file=str(KUBECONFIG_SECOND)))
    nodes.ensure_pool(core, "default-pool", CPU_NODES, nodes.SHAPES["e2-standard-4"])
    nodes.ensure_pool(core, "gpupool", SECOND_GPU_NODES, nodes.SHAPES["g2-standard-8"])

    def all_ready():
        items = core.list_node(label_selector=f"{nodes.MANAGED_BY_LABEL}={nodes.MANAGED_BY}").items
        ready = [n for n in items if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
        return len(ready) == CPU_NODES + SECOND_GPU_NODES
    wait_for("kwok-second", all_ready, 60, state)
    base = state["gateway_address_base"].split(".")  # 127.<slot>.128. -> 127.<slot>.129.
    start("gke-sim-second", [sys.executable, REPO / "hack" / "gke_sim" / "run.py", "--kubeconfig", KUBECONFIG_SECOND,
                             "--program-delay", os.environ.get("GKE_SIM_PROGRAM_DELAY", "2"),
                             "--address-base", "%s.%s.%d." % (base[0], base[1], int(base[2]) + 1)], state)
    time.sleep(1.0)
    wait_for("gke-sim-second", lambda: True, 5, state)
    state["second"] = {"kubeconfig": str(KUBECONFIG_SECOND)}
    save_state(state)
    log(f"second cluster up in {time.monotonic() - started:.1f}s (API server https://127.0.0.1:"
        f"{p['apiserver_second']}, kubeconfig {KUBECONFIG_SECOND})")
    return 0


# --------------------------------------------------------------------------- commands

def healthy(state: dict | None) -> list:
    """Names of components that are not running (empty when all are)."""
    if not state:
        return ["(not started)"]
    pids = state.get("pids", {})
    down = [name for name in COMPONENTS if name not in pids or not pid_alive(pids[name])]
    if "pod_netns" not in state or not podnet.netns_exists(state["pod_netns"]):
        down.append("pod network (no namespace)")
    if not (LOCAL / "pki" / "gateway-tls.key").exists():  # written by an older localenv.py
        down.append("pki (no gateway certificate)")
    if not down:
        try:
            if api_get(state, "/readyz")[0] != 200:
                down.append("kube-apiserver (not ready)")
        except OSError:
            down.append("kube-apiserver (unreachable)")
    return down


def cmd_up(_args) -> int:
    state = load_state()
    if state and state.get("complete") and not healthy(state):
        log(f"already up (API server https://127.0.0.1:{state['ports']['apiserver']}); nothing to do")
        return 0
    if state:
        log(f"previous environment is incomplete or broken ({', '.join(healthy(state)) or 'setup unfinished'}); "
            "recreating it")
        cmd_down(None)
    started = time.monotonic()
    versions = read_versions()
    bins = binaries(versions)
    for d in (LOGS, DATA):
        d.mkdir(parents=True, exist_ok=True)
    state = {
        "versions": versions,
        "token": secrets.token_hex(24),
        "gcp_token": "ya29.local-" + secrets.token_urlsafe(32),
        "ports": {name: free_port() for name in ("etcd", "etcd_peer", "apiserver", "controller_manager",
                                                  "scheduler", "kwok", "registry", "gcp_fake", "dataplane_admin")},
        "pids": {},
        "complete": False,
    }
    save_state(state)
    try:
        try:
            env_id = podnet.reserve_env_id()
            state.update(podnet.derived(env_id))
            save_state(state)
            podnet.setup_pod_network(env_id)
        except podnet.PodNetError as err:
            raise EnvError(f"pod network: {err}") from err
        log(f"environment {env_id}: pod network namespace {state['pod_netns']}, ClusterIPs {state['service_cidr']}, "
            f"Gateway addresses {state['gateway_address_base']}N")
        make_pki(state)
        start_etcd(state, bins)
        log(f"etcd ready on 127.0.0.1:{state['ports']['etcd']}")
        start_apiserver(state, bins)
        log(f"kube-apiserver ready on https://127.0.0.1:{state['ports']['apiserver']}")
        start_registry(state, bins)
        log(f"OCI registry ready on 127.0.0.1:{state['ports']['registry']}")
        write_env_sh(state, bins)
        start_controllers(state, bins)
        log("controller-manager, scheduler and kwok running")
        install_crds_and_classes(state, bins)
        install_gmp_defaults(state, bins)
        create_nodes(state)
        start_gcp_fake(state)
        log(f"GCP API fake ready on http://127.0.0.1:{state['ports']['gcp_fake']}/{{service}}/")
        push_charts(state, bins)
        write_gie_manifests(state)
        start_gke_sim(state)
        log("GKE status simulator running")
        start_pod_runner(state)
        log("pod runner running (processes for vLLM, EPP and BBR pods; ClusterIPs on the host)")
        start_gateway_dataplane(state)
        log(f"gateway data plane running (admin http://127.0.0.1:{state['ports']['dataplane_admin']})")
    except BaseException:
        log("local-up failed; stopping what was started (logs kept in .local/logs)")
        cmd_down(None)
        raise
    state["complete"] = True
    save_state(state)
    log(f"up in {time.monotonic() - started:.1f}s; use it with: source {ENV_SH}")
    return 0


def cmd_down(_args) -> int:
    state = load_state()
    if state:
        stop_all(state)
        still = [n for n, pid in state.get("pids", {}).items() if pid_alive(pid)]
        if still:
            raise EnvError(f"processes still running after SIGKILL: {still}")
        if state.get("env_id"):
            # The pod runner removes its pods' namespaces on SIGTERM; whatever a killed runner left goes here,
            # the processes inside first.
            removed = podnet.teardown(state["env_id"])
            log(f"removed network namespaces of environment {state['env_id']}: {len(removed)}")
    for path in (PODS_DIR, POD_RUNNER_STATE, KWOK_STAGES, DATA, LOCAL / "pki", LOCAL / "helm", LOCAL / "bin", LOCAL / "gie", KUBECONFIG, KUBECONFIG_SECOND, ENV_SH, STATE_FILE, LOCAL / "registry.yml",
                 GCP_SERVICE_ACCOUNT_FILE):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log("down: no process, port or data left (logs kept in .local/logs)" if state else "down: nothing was running")
    return 0


def rss_mib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except FileNotFoundError:
        pass
    return 0


def pod_processes() -> dict:
    """The pod runner's view of its pods: {namespace/name: {containers: {name: {pid, state, ...}}}}."""
    try:
        return json.loads(POD_RUNNER_STATE.read_text()).get("pods", {})
    except (FileNotFoundError, ValueError):
        return {}


def cmd_status(_args) -> int:
    state = load_state()
    if not state:
        print("local environment: down")
        return 1
    print(f"local environment: {'up' if state.get('complete') else 'incomplete'} "
          f"(KUBECONFIG={KUBECONFIG}, registry 127.0.0.1:{state['ports']['registry']})")
    if "gcp_fake" in state["ports"]:
        print(f"  GCP API fake: http://127.0.0.1:{state['ports']['gcp_fake']}/{{service}}/ (project {GCP_PROJECT}, "
              f"cluster {GCP_LOCATION}/{GCP_CLUSTER}; source env.sh for the token)")
    if "env_id" in state:
        print(f"  environment {state['env_id']}: pod network namespace {state['pod_netns']}, ClusterIPs "
              f"{state['service_cidr']}, Gateway addresses {state['gateway_address_base']}N")
    total_rss = 0
    for name, pid in state["pids"].items():
        alive = pid_alive(pid)
        rss = rss_mib(pid) if alive else 0
        total_rss += rss
        print(f"  {name:24} pid {pid:<8} {'running' if alive else 'DEAD':8} {rss:6d} MiB")
    for key, pod in sorted(pod_processes().items()):
        for container, info in sorted(pod["containers"].items()):
            pid = info.get("pid")
            rss = rss_mib(pid) if pid and pid_alive(pid) else 0
            total_rss += rss
            what = "ready" if info.get("ready") else (info.get("reason") or info.get("state") or "?")
            print(f"  pod {key:<40} pid {str(pid or '-'):<8} {what:<18} {rss:6d} MiB  restarts "
                  f"{info.get('restart_count', 0)}")
    print(f"  {'total resident memory':24} {'':22} {total_rss:6d} MiB")
    bad = healthy(state)
    if not bad:
        status, body = api_get(state, "/api/v1/nodes")
        items = json.loads(body).get("items", []) if status == 200 else []
        ready = sum(1 for n in items if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in n["status"].get("conditions", [])))
        print(f"  nodes: {ready}/{len(items)} Ready")
    else:
        print(f"  not healthy: {', '.join(bad)}")
    return 0 if not bad and state.get("complete") else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "up-second", "down", "status"))
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "up-second": cmd_up_second, "down": cmd_down, "status": cmd_status}[args.command](args)
    except EnvError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
