"""gke_ai.inference_gateway.helm_oci_chart against the local API server, real helm and real registries.

Every test runs the module through ansible-playbook (json callback) and checks the outcome on the
cluster (helm / kubectl) and on the registries (access logs, manifests), not only the module's
own report. The chart under test is ours (tests/integration/files/helm_oci_chart/hoctest), pushed to
private registries this module starts, so the tests can count and even stop registry traffic.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
import warnings
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART_SRC = REPO / "tests" / "integration" / "files" / "helm_oci_chart" / "hoctest"
COLLECTIONS = "%s:%s" % (REPO / ".local" / "collections", sysconfig.get_paths()["purelib"])
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
MODULE = "gke_ai.inference_gateway.helm_oci_chart"
MIRROR_USER, MIRROR_PASSWORD = "mirror-bot", "Mirr0r-S3cret-for-tests"
ACCESS_RE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/')


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A distribution registry on 127.0.0.1 of our own, with its access log."""

    def __init__(self, binary: str, workdir: Path, htpasswd: tuple[str, str] | None = None):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "registry.log"
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if htpasswd:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # bcrypt through libxcrypt; the registry accepts only bcrypt
            hashed = crypt.crypt(htpasswd[1], crypt.mksalt(crypt.METHOD_BLOWFISH))
            (workdir / "htpasswd").write_text(f"{htpasswd[0]}:{hashed}\n")
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(workdir / "htpasswd")}}
        self.config_path = workdir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.binary, "serve", str(self.config_path)], stdout=log, stderr=log,
                                     env=dict(os.environ, OTEL_TRACES_EXPORTER="none"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401 from an auth registry: it is up
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"registry on {self.host} did not start:\n{self.log_path.read_text()[-2000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def requests(self) -> int:
        return len(ACCESS_RE.findall(self.log_path.read_text()))

    def manifest_digest(self, repo: str, ref: str, auth: tuple[str, str] | None = None) -> str | None:
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{ref}", method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise


def helm(local_env, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([f"{local_env.bin_dir}/helm", *args], capture_output=True, text=True, env=local_env.env,
                          check=check, timeout=timeout)


class Play:
    """Runs tasks through ansible-playbook with the json callback."""

    def __init__(self, local_env, workdir: Path, defaults: dict):
        self.local_env = local_env
        self.workdir = workdir
        self.defaults = defaults
        self.runs = 0

    def __call__(self, tasks: list | dict, check=False, diff=False, extra_vars=None, expect_failure=False):
        tasks = tasks if isinstance(tasks, list) else [tasks]
        self.runs += 1
        play = [{
            "name": "helm_oci_chart integration",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "module_defaults": {MODULE: self.defaults},
            "tasks": [{"name": f"task {i}", MODULE: t} if "name" not in t else t for i, t in enumerate(tasks)],
        }]
        path = self.workdir / f"play-{self.runs}.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        cmd = [str(PLAYBOOK), "-i", "localhost,", str(path)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        env = dict(self.local_env.env, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0")
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.workdir, timeout=600,
                             check=False)
        try:
            out = json.loads(run.stdout[run.stdout.index("{"):])
        except ValueError:
            raise AssertionError(f"ansible-playbook printed no JSON (rc={run.returncode}):\n{run.stdout}\n{run.stderr}")
        results = [t["hosts"]["localhost"] for t in out["plays"][0]["tasks"]]
        failed = [r for r in results if r.get("failed")]
        if expect_failure:
            assert failed, f"expected a failure, got {results}"
        else:
            assert not failed and run.returncode == 0, json.dumps(failed or results, indent=1)[:6000]
        self.last_stdout = run.stdout + run.stderr
        return results if len(results) > 1 else results[0]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("helm_oci_chart")


@pytest.fixture(scope="module")
def registry(local_env, workdir):
    d = workdir / "registry"
    d.mkdir()
    reg = Registry(f"{local_env.bin_dir}/registry", d)
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def mirror_registry(local_env, workdir):
    d = workdir / "mirror-registry"
    d.mkdir()
    reg = Registry(f"{local_env.bin_dir}/registry", d, htpasswd=(MIRROR_USER, MIRROR_PASSWORD))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def charts(local_env, registry, workdir) -> dict:
    """hoctest 0.1.0 and 0.2.0 pushed to the private registry -> {version: digest}."""
    digests = {}
    for version in ("0.1.0", "0.2.0"):
        out = workdir / "pkg" / version
        out.mkdir(parents=True)
        helm(local_env, "package", str(CHART_SRC), "--version", version, "--destination", str(out))
        push = helm(local_env, "push", str(out / f"hoctest-{version}.tgz"), f"oci://{registry.host}/charts",
                    "--plain-http")
        digests[version] = re.search(r"Digest: (sha256:[0-9a-f]{64})", push.stdout + push.stderr).group(1)
    return digests


@pytest.fixture(scope="module")
def play(local_env, workdir):
    return Play(local_env, workdir, {"cache_dir": str(workdir / "chart-cache"), "plain_http": True,
                                     "binary_path": f"{local_env.bin_dir}/helm"})


@pytest.fixture
def namespace(local_env):
    name = f"hoc-{uuid.uuid4().hex[:8]}"
    local_env.kubectl("create", "namespace", name)
    yield name
    for rel in helm(local_env, "list", "-n", name, "-a", "-q", check=False).stdout.split():
        helm(local_env, "uninstall", rel, "-n", name, check=False)
    local_env.kubectl("delete", "namespace", name, "--wait=false", check=False)


def chart_ref(registry) -> str:
    return f"oci://{registry.host}/charts/hoctest"


def configmap(local_env, namespace, release) -> dict | None:
    out = local_env.kubectl("get", "configmap", f"{release}-config", "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout)["data"] if out.returncode == 0 else None


def history(local_env, namespace, release) -> list:
    out = helm(local_env, "history", release, "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else []


# --------------------------------------------------------------------------- tests

def test_install_noop_without_registry_then_upgrade_on_changed_value(local_env, registry, charts, play, namespace):
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "app",
            "release_namespace": namespace, "values": {"data": {"greeting": "hello"}}}
    first = play(task)
    assert first["changed"] is True and first["plan"]["action"] == "install"
    assert first["status"] == "deployed" and first["revision"] == 1
    assert first["chart"]["digest"] == charts["0.1.0"] and first["chart"]["pulled"] is True
    assert {"api_version": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "app-config"} in \
        first["resources"]
    assert configmap(local_env, namespace, "app")["greeting"] == "hello"
    assert charts["0.1.0"] in history(local_env, namespace, "app")[-1]["description"]

    # a re-run is a no-op and makes no registry request at all: count the access log ...
    before = registry.requests()
    assert before > 0  # the pushes and the first pull are in the access log
    second = play(task)
    assert second["changed"] is False and second["plan"]["action"] == "none"
    assert second["registry_contacted"] is False
    assert registry.requests() == before
    # ... and even with the registry stopped
    registry.stop()
    try:
        third = play(task)
        assert third["changed"] is False and third["chart"]["digest"] == charts["0.1.0"]
    finally:
        registry.start()
    assert len(history(local_env, namespace, "app")) == 1

    # a changed value upgrades (from the cached chart: still no registry request)
    before = registry.requests()
    changed = play(dict(task, values={"data": {"greeting": "bonjour"}}))
    assert changed["changed"] is True and changed["revision"] == 2
    assert changed["plan"]["reasons"] == ["values changed: data.greeting"]
    assert configmap(local_env, namespace, "app")["greeting"] == "bonjour"
    assert registry.requests() == before

    # a new chart version upgrades (pulling it once)
    newer = play(dict(task, version="0.2.0", values={"data": {"greeting": "bonjour"}}))
    assert newer["changed"] is True and "chart version 0.1.0 -> 0.2.0" in newer["plan"]["reasons"]
    assert configmap(local_env, namespace, "app")["chartVersion"] == "0.2.0"
    assert newer["chart"]["digest"] == charts["0.2.0"]


def test_check_mode_changes_nothing_and_diff_shows_values_and_manifest(local_env, registry, charts, play,
                                                                       namespace):
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "app",
            "release_namespace": namespace, "values": {"data": {"greeting": "hello"}}}
    # check mode on a missing release installs nothing
    predicted = play(task, check=True)
    assert predicted["changed"] is True and predicted["plan"]["action"] == "install"
    assert history(local_env, namespace, "app") == []
    play(task)
    res = play(dict(task, values={"data": {"greeting": "hola", "extra": "x"}}), check=True, diff=True)
    assert res["changed"] is True and res["plan"]["action"] == "upgrade"
    assert len(history(local_env, namespace, "app")) == 1
    assert configmap(local_env, namespace, "app") == {"chartVersion": "0.1.0", "greeting": "hello"}
    diffs = {d["before_header"].split(" ")[0]: d for d in res["diff"]}
    assert "greeting: hello" in diffs["values"]["before"] and "greeting: hola" in diffs["values"]["after"]
    assert 'greeting: "hello"' in diffs["manifest"]["before"]
    assert 'greeting: "hola"' in diffs["manifest"]["after"] and 'extra: "x"' in diffs["manifest"]["after"]
    # the human-readable diff is printed by ansible too
    nodiff = play(task, check=True, diff=True)
    assert nodiff["changed"] is False
    assert all(d["before"] == d["after"] for d in nodiff["diff"])


def test_set_values_typed_and_idempotent(local_env, registry, charts, play, namespace):
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "typed",
            "release_namespace": namespace,
            "set_values": [{"value": "data.port=8000", "value_type": "string"},
                           {"value": "data.list={a,b}"},
                           {"value": 'data.json={"k":[1,2]}', "value_type": "json"},
                           {"value": "data.csv=a,b,c", "value_type": "literal"}]}
    first = play(task)
    assert first["changed"] is True
    values = json.loads(helm(local_env, "get", "values", "typed", "-n", namespace, "-o", "json").stdout)
    assert values == {"data": {"port": "8000", "list": ["a", "b"], "json": {"k": [1, 2]}, "csv": "a,b,c"}}
    assert play(task)["changed"] is False


def test_digest_pin(local_env, registry, charts, play, namespace):
    base = {"chart_ref": chart_ref(registry), "release_name": "pinned", "release_namespace": namespace}
    bad = play(dict(base, version="0.1.0", digest=charts["0.2.0"]), expect_failure=True)
    assert bad["error_kind"] == "digest_mismatch"
    assert charts["0.2.0"] in bad["msg"]
    assert history(local_env, namespace, "pinned") == []

    good = play(dict(base, version="0.1.0", digest=charts["0.1.0"]))
    assert good["changed"] is True and good["chart"]["digest"] == charts["0.1.0"]
    only_digest = play(dict(base, digest=charts["0.1.0"]))
    assert only_digest["changed"] is False and only_digest["registry_contacted"] is False
    # the tag index now knows 0.1.0; pinning it to another digest asks the registry again and fails
    again_bad = play(dict(base, version="0.1.0", digest=charts["0.2.0"]), expect_failure=True)
    assert again_bad["error_kind"] == "digest_mismatch"
    assert len(history(local_env, namespace, "pinned")) == 1


def interrupted(local_env, *helm_args):
    """Run helm with --wait on a PVC that never binds and SIGKILL it: the release stays pending-*."""
    proc = subprocess.Popen([f"{local_env.bin_dir}/helm", *helm_args, "--wait", "--timeout", "120s",
                             "--set", "block=true"], env=local_env.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(4)
    proc.kill()
    proc.wait()


def test_pending_install_and_pending_upgrade_are_detected_and_recovered(
        local_env, registry, charts, play, namespace, workdir):
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "stuck",
            "release_namespace": namespace, "timeout": "60s"}
    tgz = workdir / "pkg" / "0.1.0" / "hoctest-0.1.0.tgz"
    interrupted(local_env, "install", "stuck", str(tgz), "-n", namespace)
    assert history(local_env, namespace, "stuck")[-1]["status"] == "pending-install"

    reported = play(task, expect_failure=True)
    assert reported["error_kind"] == "pending_release"
    assert "pending-install" in reported["msg"] and "recover_pending=true" in reported["msg"]
    assert f"helm uninstall stuck -n {namespace}" in reported["msg"]

    checked = play(dict(task, recover_pending=True), check=True)
    assert checked["changed"] is True and checked["recovered"]["action"] == "uninstall"
    assert history(local_env, namespace, "stuck")[-1]["status"] == "pending-install"

    recovered = play(dict(task, recover_pending=True))
    assert recovered["recovered"] == {"from_status": "pending-install", "action": "uninstall", "revision": None}
    assert recovered["status"] == "deployed" and recovered["plan"]["action"] == "install"

    interrupted(local_env, "upgrade", "stuck", str(tgz), "-n", namespace)
    assert history(local_env, namespace, "stuck")[-1]["status"] == "pending-upgrade"
    blocked = play(task, expect_failure=True)
    assert "pending-upgrade" in blocked["msg"] and f"helm rollback stuck 1 -n {namespace}" in blocked["msg"]
    rolled = play(dict(task, recover_pending=True))
    assert rolled["recovered"] == {"from_status": "pending-upgrade", "action": "rollback", "revision": 1}
    assert rolled["status"] == "deployed"
    assert history(local_env, namespace, "stuck")[-1]["description"] == "Rollback to 1"
    # the rollback restored what the task wants: the digest is found through "Rollback to 1"
    assert rolled["plan"]["action"] == "none"
    assert play(task)["changed"] is False
    assert local_env.kubectl("get", "pvc", "stuck-never-bound", "-n", namespace, check=False).returncode != 0


def test_mirror_to_a_private_registry_then_install_from_it(local_env, registry, mirror_registry, charts, play,
                                                           namespace):
    mirror = {"state": "mirrored", "chart_ref": chart_ref(registry), "version": "0.1.0",
              "mirror_to": f"oci://{mirror_registry.host}/private/charts", "mirror_plain_http": True,
              "mirror_username": MIRROR_USER, "mirror_password": MIRROR_PASSWORD}
    predicted = play(mirror, check=True)
    assert predicted["changed"] is True
    assert mirror_registry.manifest_digest("private/charts/hoctest", "0.1.0", (MIRROR_USER, MIRROR_PASSWORD)) is None

    first = play(mirror)
    assert first["changed"] is True and first["mirror"]["copied_blobs"] == 2
    assert first["mirror"]["digest"] == charts["0.1.0"]
    assert mirror_registry.manifest_digest("private/charts/hoctest", "0.1.0",
                                           (MIRROR_USER, MIRROR_PASSWORD)) == charts["0.1.0"]
    assert MIRROR_PASSWORD not in play.last_stdout

    source_before = registry.requests()
    second = play(mirror)
    assert second["changed"] is False and second["mirror"]["copied_blobs"] == 0
    assert registry.requests() == source_before  # the tag was known, the target already had it

    wrong = play(dict(mirror, mirror_password="not-the-password"), expect_failure=True)
    assert wrong["error_kind"] == "registry_auth" and "not-the-password" not in play.last_stdout

    # install from the mirror, pinned to the digest, with credentials handed to helm
    task = {"chart_ref": f"oci://{mirror_registry.host}/private/charts/hoctest", "version": "0.1.0",
            "digest": charts["0.1.0"], "release_name": "mirrored", "release_namespace": namespace,
            "registry_username": MIRROR_USER, "registry_password": MIRROR_PASSWORD,
            "cache_dir": str(play.workdir / "fresh-cache")}
    installed = play(task)
    assert installed["changed"] is True and installed["chart"]["pulled"] is True
    assert not any(MIRROR_PASSWORD in c for c in installed["commands"])
    assert MIRROR_PASSWORD not in play.last_stdout
    assert configmap(local_env, namespace, "mirrored")["chartVersion"] == "0.1.0"
    assert play(task)["changed"] is False


def test_values_read_back_from_the_release_are_what_helm_get_values_prints(
        local_env, registry, charts, play, namespace):
    # one `helm get all --template` reads the release and its values: every kind of value survives the trip
    values = {"data": {"greeting": "x\ny \"q\" \u00e9 {braces} $HOME ~/x"},
              "tree": {"big": 10 ** 15, "huge": 1e21, "frac": 2.5, "neg": -3, "t": True, "f": False, "none": None,
                       "empty": {}, "list": [1, None, "s", [], {"k": "v"}], "tab\tkey": ""}}
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "values",
            "release_namespace": namespace, "values": values,
            "set_values": [{"value": "tree.port=8000"}, {"value": "tree.id=007", "value_type": "string"},
                           {"value": "tree.home=$HOME", "value_type": "string"}]}
    first = play(task)
    assert first["changed"] is True
    again = play(task)
    assert again["changed"] is False, again["plan"]
    assert [c.split(" ")[1:3] for c in again["commands"]] == [["get", "all"]]  # no get values, no template
    deployed = json.loads(helm(local_env, "get", "values", "values", "-n", namespace, "-o", "json").stdout)
    assert again["release"]["values"] == deployed
    assert deployed["tree"]["port"] == 8000 and deployed["tree"]["id"] == "007"
    assert deployed["tree"]["home"] == "$HOME"  # helm gets the arguments as written, nothing expands them
    assert configmap(local_env, namespace, "values")["greeting"] == values["data"]["greeting"]


def test_releases_in_one_task(local_env, registry, charts, play, namespace, workdir):
    base = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_namespace": namespace,
            "values": {"data": {"greeting": "hello"}}}
    entries = [{"release_name": "r1"},
               {"release_name": "r2", "values": {"data": {"greeting": "hi"}}},
               {"release_name": "r3", "set_values": [{"value": "data.greeting=hey"}, {"value": "data.n=3"}]}]
    first = play(dict(base, releases=entries))
    assert first["changed"] is True
    assert [(r["release_name"], r["plan"]["action"], r["status"]) for r in first["releases"]] == [
        ("r1", "install", "deployed"), ("r2", "install", "deployed"), ("r3", "install", "deployed")]
    assert [configmap(local_env, namespace, r)["greeting"] for r in ("r1", "r2", "r3")] == ["hello", "hi", "hey"]
    assert sum(r["chart"]["pulled"] for r in first["releases"]) <= 1  # pulled once at most, for all three

    # the no-op: one helm process per release, no registry request
    before = registry.requests()
    second = play(dict(base, releases=entries))
    assert second["changed"] is False and second["registry_contacted"] is False
    assert registry.requests() == before
    for r in second["releases"]:
        assert r["plan"]["action"] == "none" and r["revision"] == 1
        assert [c.split(" ")[1:4] for c in r["commands"]] == [["get", "all", r["release_name"]]]

    # check mode with diff: the one release that would change, its diff; nothing changes on the cluster
    changed = entries[:2] + [dict(entries[2], set_values=[{"value": "data.greeting=bye"}, {"value": "data.n=3"}])]
    predicted = play(dict(base, releases=changed), check=True, diff=True)
    assert predicted["changed"] is True
    assert [r["plan"]["action"] for r in predicted["releases"]] == ["none", "none", "upgrade"]
    assert predicted["releases"][2]["plan"]["reasons"] == ["values changed: data.greeting"]
    manifest = [d for d in predicted["diff"] if d["after_header"] == "manifest of r3 (rendered)"][0]
    assert 'greeting: "hey"' in manifest["before"] and 'greeting: "bye"' in manifest["after"]
    assert len(predicted["diff"]) == 9
    assert configmap(local_env, namespace, "r3")["greeting"] == "hey"
    assert all(len(history(local_env, namespace, r)) == 1 for r in ("r1", "r2", "r3"))

    # one release stuck pending: the task fails naming it, after upgrading the others
    tgz = workdir / "pkg" / "0.1.0" / "hoctest-0.1.0.tgz"
    interrupted(local_env, "upgrade", "r2", str(tgz), "-n", namespace, "--reuse-values")
    assert history(local_env, namespace, "r2")[-1]["status"] == "pending-upgrade"
    failed = play(dict(base, releases=changed), expect_failure=True)
    assert failed["failed_releases"] == ["r2"] and failed["error_kind"] == "pending_release"
    assert failed["msg"].startswith("release r2 in namespace %s: Release r2 in namespace %s is stuck in "
                                    "pending-upgrade" % (namespace, namespace))
    r1, r2, r3 = failed["releases"]
    assert r1["changed"] is False and r2["failed"] is True and r3["changed"] is True
    assert configmap(local_env, namespace, "r3")["greeting"] == "bye"

    recovered = play(dict(base, releases=[dict(e, recover_pending=True) for e in changed]))
    assert recovered["releases"][1]["recovered"]["action"] == "rollback"
    assert [r["changed"] for r in recovered["releases"]] == [False, True, False]
    assert play(dict(base, releases=changed, max_parallel=1))["changed"] is False


def test_absent(local_env, registry, charts, play, namespace):
    task = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "gone",
            "release_namespace": namespace}
    play(task)
    absent = {"release_name": "gone", "release_namespace": namespace, "state": "absent"}
    check = play(absent, check=True, diff=True)
    assert check["changed"] is True and check["plan"]["action"] == "uninstall"
    assert configmap(local_env, namespace, "gone") is not None
    removed = play(absent)
    assert removed["changed"] is True and removed["status"] == "absent"
    assert configmap(local_env, namespace, "gone") is None and history(local_env, namespace, "gone") == []
    assert play(absent)["changed"] is False


def test_old_or_missing_helm_is_refused_with_its_version(local_env, play, registry, namespace, workdir):
    fake = workdir / "old-helm"
    fake.write_text("#!/bin/sh\necho v3.7.2\n")
    fake.chmod(0o755)
    base = {"chart_ref": chart_ref(registry), "version": "0.1.0", "release_name": "x", "release_namespace": namespace}
    old = play(dict(base, binary_path=str(fake)), expect_failure=True)
    assert old["error_kind"] == "helm_version" and "3.7.2" in old["msg"] and "3.8.0" in old["msg"]
    missing = play(dict(base, binary_path=str(workdir / "no-such-helm")), expect_failure=True)
    assert missing["error_kind"] == "helm_missing"


def test_upstream_inferencepool_chart_with_set_values(local_env, play, namespace):
    local_env.install_gie_crds("v1.1.0", field_manager="helm-oci-chart-test")

    task = {"chart_ref": f"oci://{local_env.registry}/gateway-api-inference-extension/charts/inferencepool",
            "version": "v1.1.0", "release_name": "vllm-llama3-8b-instruct", "release_namespace": namespace,
            "set_values": [{"value": "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct"},
                           {"value": "provider.name=gke"}]}
    first = play(task)
    assert first["changed"] is True and first["status"] == "deployed"
    assert first["chart"]["name"] == "inferencepool" and first["chart"]["version"] == "v1.1.0"
    kinds = {(r["kind"], r["name"]) for r in first["resources"]}
    assert ("InferencePool", "vllm-llama3-8b-instruct") in kinds
    assert any(kind == "Deployment" for kind, _name in kinds)
    pool = json.loads(local_env.kubectl("get", "inferencepools.inference.networking.k8s.io",
                                        "vllm-llama3-8b-instruct", "-n", namespace, "-o", "json").stdout)
    assert pool["spec"]["selector"]["matchLabels"] == {"app": "vllm-llama3-8b-instruct"}
    gke_kinds = {k for k, _n in kinds} & {"GCPBackendPolicy", "HealthCheckPolicy"}
    assert gke_kinds, kinds  # provider.name=gke renders the GKE policies

    again = play(task)
    assert again["changed"] is False and again["registry_contacted"] is False
    assert again["release"]["description"].endswith(first["chart"]["digest"])
