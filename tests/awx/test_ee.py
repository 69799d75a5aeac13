"""The execution environment's build context: ansible-builder create (no container runtime), hadolint clean,
the pins the issue asks for, and the collection's own EE metadata as ansible-builder introspects it."""

from __future__ import annotations

import re
import subprocess
import tarfile

import pytest
import yaml

from awx_testlib import REPO, VENV_BIN

EE = REPO / "ee"


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(["bash", str(EE / "build-context.sh"), str(out)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ee] hadolint: no findings" in proc.stdout
    return out


def _versions_env() -> dict:
    text = (REPO / "hack/localcluster/versions.env").read_text()
    return dict(re.findall(r'^([A-Z0-9_]+)="?([^"\n]*)"?$', text, re.M))


def test_context_is_complete(context):
    containerfile = (context / "Containerfile").read_text()
    assert containerfile.startswith('ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"')
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==' in containerfile
    assert "RUN /output/scripts/install-binaries.sh" in containerfile
    assert containerfile.rstrip().endswith('CMD ["bash"]') and "\nUSER 1000\n" in containerfile
    requirements = yaml.safe_load((context / "_build/requirements.yml").read_text())["collections"]
    assert {"name": "collection/gke_ai-inference_gateway.tar.gz", "type": "file"} in requirements
    assert {c["name"] for c in requirements} >= {"kubernetes.core", "awx.awx"}
    with tarfile.open(context / "_build/collection/gke_ai-inference_gateway.tar.gz") as tar:
        assert "meta/execution-environment.yml" in tar.getnames()
    assert (context / "_build/scripts/install-binaries.sh").is_file()


def test_ansible_core_is_2_19_as_the_tests_run():
    definition = yaml.safe_load((EE / "execution-environment.yml").read_text())
    pinned = definition["dependencies"]["ansible_core"]["package_pip"]
    tested = re.search(r"^ansible-core==(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert pinned == "ansible-core==" + tested and tested.startswith("2.19.")


def test_helm_and_kubectl_are_pinned_to_the_tested_versions_with_digests():
    script = (EE / "install-binaries.sh").read_text()
    versions = _versions_env()
    assert "HELM_VERSION=%s\n" % versions["HELM_VERSION"] in script
    assert "KUBECTL_VERSION=%s\n" % versions["K8S_VERSION"] in script
    digests = re.findall(r"_sha256=([0-9a-f]+)$", script, re.M)
    assert len(digests) == 4 and all(len(d) == 64 for d in digests)
    assert "sha256sum --check --strict" in script
    assert re.search(r"https://get\.helm\.sh/helm-\$\{HELM_VERSION\}-linux-\$\{arch\}\.tar\.gz", script)
    assert re.search(r"https://dl\.k8s\.io/release/\$\{KUBECTL_VERSION\}/bin/linux/\$\{arch\}/kubectl", script)
    proc = subprocess.run(["bash", "-n", str(EE / "install-binaries.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_hadolint_fails_on_a_finding(tmp_path, context):
    """The linter is not a no-op: the same config rejects a Containerfile with a real problem."""
    bad = tmp_path / "Containerfile"
    bad.write_text((context / "Containerfile").read_text().replace(
        "RUN /output/scripts/install-binaries.sh", "RUN cd /tmp && curl -o x https://example.com/x"))
    proc = subprocess.run([str(VENV_BIN / "hadolint"), "--no-color", "--config", str(EE / "hadolint.yaml"), str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "DL3003" in proc.stdout, proc.stdout


def test_every_ignored_hadolint_rule_is_justified():
    text = (EE / "hadolint.yaml").read_text()
    config = yaml.safe_load(text)
    assert config["failure-threshold"] == "style"
    lines = text.splitlines()
    for rule in config["ignored"]:
        index = lines.index("  - %s" % rule)
        assert lines[index - 1].strip().startswith("#"), "%s has no comment above it" % rule


def test_introspection_finds_the_collections_python_dependencies(tmp_path, context):
    root = tmp_path / "collections" / "ansible_collections" / "gke_ai" / "inference_gateway"
    root.mkdir(parents=True)
    with tarfile.open(context / "_build/collection/gke_ai-inference_gateway.tar.gz") as tar:
        tar.extractall(root, filter="data")
    proc = subprocess.run([str(VENV_BIN / "ansible-builder"), "introspect", "--sanitize", str(tmp_path / "collections")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    # PyYAML is declared too, but builder drops it (ansible-core requires it anyway).
    for requirement in ("kubernetes>=30.1.0", "google-auth>=2.30.0", "requests>=2.31.0"):
        assert re.search(r"'%s\s+# from collection gke_ai\.inference_gateway'" % re.escape(requirement), proc.stdout,
                         re.M | re.I), proc.stdout


def test_ee_schema_rejects_a_typo(tmp_path):
    """ansible-builder validates the definition (schema v3); a misspelt key fails `create`."""
    definition = yaml.safe_load((EE / "execution-environment.yml").read_text())
    definition["images"]["base_imag"] = definition["images"].pop("base_image")
    path = tmp_path / "execution-environment.yml"
    path.write_text(yaml.safe_dump(definition))
    proc = subprocess.run([str(VENV_BIN / "ansible-builder"), "create", "-f", str(path), "-c", str(tmp_path / "ctx")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and "base_imag" in proc.stdout + proc.stderr
