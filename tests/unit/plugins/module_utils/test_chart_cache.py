# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_chart_cache.py: the digest-keyed chart cache and its tag index.
from __future__ import annotations

import io
import json
import os
import tarfile
import threading

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _chart_cache as cc
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import HelmError

DIGEST = "sha256:" + "c" * 64


def make_chart(path, name="demo", version="0.1.0", app_version="1.0", extra=b""):
    with tarfile.open(path, "w:gz") as tar:
        for member, data in (("%s/Chart.yaml" % name,
                              ("apiVersion: v2\nname: %s\nversion: %s\nappVersion: '%s'\n"
                               % (name, version, app_version)).encode()),
                             ("%s/templates/x.yaml" % name, b"# x\n" + extra),
                             ("%s/charts/sub/Chart.yaml" % name, b"apiVersion: v2\nname: sub\nversion: 9.9.9\n")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_default_cache_dir_respects_xdg():
    assert cc.default_cache_dir({"XDG_CACHE_HOME": "/x/cache"}) == "/x/cache/gke-ai-infgw/charts"
    assert cc.default_cache_dir({}).endswith("/.cache/gke-ai-infgw/charts")


def test_read_chart_metadata_uses_top_level_chart_yaml(tmp_path):
    meta = cc.read_chart_metadata(make_chart(tmp_path / "c.tgz", version="1.2.3"))
    assert meta == {"name": "demo", "version": "1.2.3", "app_version": "1.0"}


def test_read_chart_metadata_rejects_non_charts(tmp_path):
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(HelmError) as e:
        cc.read_chart_metadata(str(bad))
    assert e.value.kind == "invalid_chart"


def test_add_lookup_and_archive_path(tmp_path):
    cache = cc.ChartCache(str(tmp_path / "cache"))
    assert cache.lookup_tag("r/c/demo:0.1.0") is None
    scratch = cache.tempdir()
    pulled = make_chart(os.path.join(scratch, "demo-0.1.0.tgz"))
    archive_sha = cc.file_sha256(pulled)
    info = cache.add(pulled, DIGEST, tag_key="r/c/demo:0.1.0")
    assert info["name"] == "demo" and info["archive_sha256"] == archive_sha
    assert not os.path.exists(pulled)  # moved, not copied
    path = cache.archive_path(DIGEST)
    assert path == str(tmp_path / "cache" / ("sha256-" + "c" * 64 + ".tgz"))
    # a fresh instance reads the same index from disk
    again = cc.ChartCache(str(tmp_path / "cache"))
    assert again.lookup_tag("r/c/demo:0.1.0") == DIGEST
    assert again.chart_info(DIGEST)["version"] == "0.1.0"
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert index["tags"] == {"r/c/demo:0.1.0": DIGEST}


def test_corrupted_or_missing_archive_is_not_used(tmp_path):
    cache = cc.ChartCache(str(tmp_path))
    cache.add(make_chart(tmp_path / "x.tgz"), DIGEST)
    path = cache.archive_path(DIGEST)
    with open(path, "ab") as f:
        f.write(b"garbage")
    assert cache.archive_path(DIGEST) is None
    os.remove(path)
    assert cache.archive_path(DIGEST) is None
    assert cache.chart_info(DIGEST)["name"] == "demo"  # metadata survives; the archive is re-pulled


def test_record_and_forget_tag(tmp_path):
    cache = cc.ChartCache(str(tmp_path))
    cache.record_tag("r/c/demo:1", DIGEST)
    assert cc.ChartCache(str(tmp_path)).lookup_tag("r/c/demo:1") == DIGEST
    cache.forget_tag("r/c/demo:1")
    assert cc.ChartCache(str(tmp_path)).lookup_tag("r/c/demo:1") is None


def test_unreadable_or_foreign_index_is_treated_as_empty(tmp_path):
    (tmp_path / "index.json").write_text("{broken")
    assert cc.ChartCache(str(tmp_path)).lookup_tag("x") is None
    (tmp_path / "index.json").write_text(json.dumps({"version": 99, "tags": {"x": DIGEST}}))
    assert cc.ChartCache(str(tmp_path)).lookup_tag("x") is None
    (tmp_path / "index.json").write_text(json.dumps({"version": 1, "tags": {"x": "latest"}, "charts": {}}))
    assert cc.ChartCache(str(tmp_path)).lookup_tag("x") is None


def test_invalid_digest_is_refused(tmp_path):
    cache = cc.ChartCache(str(tmp_path))
    with pytest.raises(HelmError):
        cache.add(make_chart(tmp_path / "x.tgz"), "sha256:nope")


def test_parallel_writers_do_not_lose_tags(tmp_path):
    """Forks of one play share the cache: every read-modify-write must land."""
    def writer(i):
        cc.ChartCache(str(tmp_path)).record_tag("r/c/demo:%d" % i, "sha256:" + ("%064x" % i))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tags = json.loads((tmp_path / "index.json").read_text())["tags"]
    assert len(tags) == 20


def test_helm_versions_are_remembered_per_binary(tmp_path):
    cache = cc.ChartCache(str(tmp_path))
    assert cache.helm_version("/usr/bin/helm:1:2") is None
    for i in range(12):
        cache.record_helm_version("/opt/helm-%d:1:2" % i, "3.%d.0" % i)
    cache.record_helm_version("/usr/bin/helm:1:2", "3.22.0")
    again = cc.ChartCache(str(tmp_path))
    assert again.helm_version("/usr/bin/helm:1:2") == "3.22.0"
    assert again.helm_version("/opt/helm-11:1:2") == "3.11.0"
    assert again.helm_version("/opt/helm-0:1:2") is None  # only the recent few are kept


def test_find_pulled_archive(tmp_path):
    with pytest.raises(HelmError):
        cc.find_pulled_archive(str(tmp_path))
    (tmp_path / "demo@sha256-x.tgz").write_bytes(b"")
    assert cc.find_pulled_archive(str(tmp_path)).endswith("demo@sha256-x.tgz")
