"""The repository as an AWX project: from a fresh checkout, without the Makefile's ANSIBLE_COLLECTIONS_PATH, the
playbooks find gke_ai.inference_gateway through collections/ (a link to the root) and playbooks/collections; and
`ansible-galaxy collection build` leaves those links (a loop back to the root) out of the tarball."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from awx_testlib import REPO, VENV_BIN

PLAYBOOKS = ["site.yml", "playbooks/site.yml", "playbooks/status.yml", "playbooks/scale_down.yml",
             "playbooks/teardown.yml"]


def _checkout(dest: Path) -> Path:
    """The files a fresh clone of this working tree has (tracked, plus untracked that are not ignored), links kept."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src, dst = REPO / name, dest / name
        if not os.path.lexists(src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    return dest


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return _checkout(tmp_path_factory.mktemp("checkout") / "project")


def _env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    # Nothing but the checkout can provide the collection: no configured path, an empty ANSIBLE_HOME.
    env.update(ANSIBLE_COLLECTIONS_PATH=str(tmp / "nowhere"), ANSIBLE_HOME=str(tmp / "home"), ANSIBLE_NOCOLOR="1")
    env.pop("PYTHONPATH", None)
    return env


def test_links_are_in_the_repository():
    link = REPO / "collections/ansible_collections/gke_ai/inference_gateway"
    assert link.is_symlink() and link.resolve() == REPO
    assert (REPO / "playbooks/collections").is_symlink()
    assert (REPO / "playbooks/collections").resolve() == (REPO / "collections").resolve()
    assert (REPO / "collections/requirements.yml").is_file()


@pytest.mark.parametrize("playbook", PLAYBOOKS + ["playbooks/awx_configure.yml"])
def test_playbooks_resolve_the_collection_from_a_fresh_checkout(checkout, tmp_path, playbook):
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--list-tasks", playbook], cwd=str(checkout),
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if playbook != "playbooks/awx_configure.yml":
        assert "gke_ai.inference_gateway" in proc.stdout


def test_built_tarball_has_no_loop_and_ships_the_awx_pieces(checkout, tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out)],
                          cwd=str(checkout), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob("gke_ai-inference_gateway-*.tar.gz")
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    assert not [m.name for m in members if m.issym() or m.islnk()], "links in the tarball"
    assert not [n for n in names if n.startswith(("collections", "playbooks/collections", "ee/"))
                or "ansible_collections" in n], sorted(names)[:20]
    assert {"meta/execution-environment.yml", "meta/ee-requirements.txt", "playbooks/awx_configure.yml",
            "playbooks/awx/vars/main.yml", "playbooks/site.yml"} <= names
    assert len(names) < 1000  # a loop would multiply the tree
