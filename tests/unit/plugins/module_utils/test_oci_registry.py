# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_oci_registry.py against a small in-process registry that
# speaks the distribution API with token (Bearer) authentication and redirects blob downloads
# to a "storage" host, like Artifact Registry and Docker Hub do.
from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _oci_registry as oci
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import HelmError

USER, PASSWORD = "oauth2accesstoken", "ya29.secret-token"


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self, auth=True):
        self.auth = auth
        self.manifests = {}  # (repo, ref) -> (body, media_type)
        self.blobs = {}  # (repo, digest) -> bytes
        self.uploads = {}
        self.log = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                outer.log.append((self.command, self.headers.get("Host"), url.path,
                                  self.headers.get("Authorization")))
                if url.path == "/token":
                    if self.headers.get("Authorization") != "Basic " + base64.b64encode(
                            ("%s:%s" % (USER, PASSWORD)).encode()).decode():
                        return self.reply(401)
                    scopes = " ".join(q.get("scope", []))
                    return self.reply(200, json.dumps({"token": "tok:" + scopes}).encode())
                if url.path.startswith("/storage/"):
                    if self.headers.get("Authorization"):
                        return self.reply(400, b"storage must not get the registry credentials")
                    return self.reply(200, outer.storage[url.path[len("/storage/"):]])
                path = url.path[len("/v2/"):]
                if path == "":
                    return self.reply(200, b"{}")
                ref = upload = None
                if "/manifests/" in path:
                    repo, ref = path.split("/manifests/")
                    kind = "manifests"
                elif "/blobs/uploads/" in path:
                    repo, upload = path.split("/blobs/uploads/")
                    kind = "uploads"
                else:
                    repo, ref = path.split("/blobs/")
                    kind = "blobs"
                need = "push" if self.command in ("PUT", "POST") else "pull"
                if outer.auth and not self.authorized(repo, need):
                    scope = "repository:%s:%s" % (repo, "pull,push" if need == "push" else "pull")
                    return self.reply(401, headers={"WWW-Authenticate": 'Bearer realm="http://%s/token",'
                                                    'service="fake",scope="%s"' % (outer.host, scope)})
                if kind == "manifests":
                    if self.command == "PUT":
                        d = digest_of(body)
                        outer.manifests[(repo, d)] = (body, self.headers["Content-Type"])
                        outer.manifests[(repo, ref)] = (body, self.headers["Content-Type"])
                        return self.reply(201, headers={"Docker-Content-Digest": d})
                    found = outer.manifests.get((repo, ref))
                    if not found:
                        return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                    return self.reply(200, found[0], {"Content-Type": found[1],
                                                      "Docker-Content-Digest": digest_of(found[0])})
                if kind == "blobs":
                    data = outer.blobs.get((repo, ref))
                    if data is None:
                        return self.reply(404)
                    if self.command == "HEAD":
                        return self.reply(200, headers={"Docker-Content-Digest": ref})
                    key = ref.replace(":", "-")
                    outer.storage[key] = data
                    return self.reply(307, headers={"Location": "http://localhost:%d/storage/%s" % (outer.port, key)})
                # uploads
                if self.command == "POST":
                    mount, src = q.get("mount", [None])[0], q.get("from", [None])[0]
                    if mount and (src, mount) in outer.blobs:
                        outer.blobs[(repo, mount)] = outer.blobs[(src, mount)]
                        return self.reply(201)
                    uid = "u%d" % len(outer.uploads)
                    outer.uploads[uid] = repo
                    return self.reply(202, headers={"Location": "/v2/%s/blobs/uploads/%s?_state=x" % (repo, uid)})
                if self.command == "PUT":
                    d = q["digest"][0]
                    if digest_of(body) != d:
                        return self.reply(400)
                    outer.blobs[(outer.uploads[upload], d)] = body
                    return self.reply(201, headers={"Docker-Content-Digest": d})
                return self.reply(405)

            def authorized(self, repo, need):
                header = self.headers.get("Authorization") or ""
                if not header.startswith("Bearer tok:"):
                    return False
                scopes = header[len("Bearer tok:"):].split(" ")
                for s in scopes:
                    _kind, r, actions = s.split(":")
                    if r == repo and need in actions.split(","):
                        return True
                return False

            do_GET = do_HEAD = do_PUT = do_POST = handle_any

        self.storage = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def add_chart(self, repo, tag, chart=b"chart-bytes"):
        config = b'{"name":"demo","version":"0.1.0"}'
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": digest_of(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                        "digest": digest_of(chart), "size": len(chart)}],
            "annotations": {"org.opencontainers.image.created": "2026-11-26T00:00:00Z"},
        }, separators=(",", ":")).encode()
        mt = "application/vnd.oci.image.manifest.v1+json"
        self.blobs[(repo, digest_of(config))] = config
        self.blobs[(repo, digest_of(chart))] = chart
        self.manifests[(repo, tag)] = (manifest, mt)
        self.manifests[(repo, digest_of(manifest))] = (manifest, mt)
        return digest_of(manifest)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    reg = FakeRegistry()
    yield reg
    reg.close()


@pytest.fixture
def registry2():
    reg = FakeRegistry()
    yield reg
    reg.close()


def client(reg, creds=(USER, PASSWORD)):
    return oci.RegistryClient(reg.host, creds, plain_http=True, timeout=10)


def test_parse_www_authenticate():
    assert oci.parse_www_authenticate('Bearer realm="https://a/token",service="a",scope="repository:x/y:pull"') == (
        "bearer", {"realm": "https://a/token", "service": "a", "scope": "repository:x/y:pull"})
    assert oci.parse_www_authenticate('Basic realm="registry"') == ("basic", {"realm": "registry"})
    assert oci.parse_www_authenticate(None) == (None, {})


def test_bearer_token_flow_and_manifest_digest(registry):
    digest = registry.add_chart("charts/demo", "0.1.0")
    c = client(registry)
    assert c.manifest_digest("charts/demo", "0.1.0") == digest
    assert c.manifest_digest("charts/demo", "9.9.9") is None
    # the token was fetched with the credentials once and reused
    token_calls = [entry for entry in registry.log if entry[2] == "/token"]
    assert len(token_calls) == 1


def test_wrong_credentials_fail_without_echoing_them(registry):
    registry.add_chart("charts/demo", "0.1.0")
    with pytest.raises(HelmError) as e:
        client(registry, ("oauth2accesstoken", "wrong-token")).manifest_digest("charts/demo", "0.1.0")
    assert e.value.kind == "registry_auth"
    assert "wrong-token" not in str(e.value.to_result())


def test_blob_redirect_drops_credentials_and_verifies_digest(registry):
    registry.add_chart("charts/demo", "0.1.0", chart=b"the chart")
    c = client(registry)
    assert c.get_blob("charts/demo", digest_of(b"the chart")) == b"the chart"
    storage = [entry for entry in registry.log if entry[2].startswith("/storage/")]
    assert storage and storage[0][3] is None


def test_mirror_across_registries_keeps_the_digest_and_is_idempotent(registry, registry2):
    digest = registry.add_chart("charts/demo", "0.1.0")
    src, dst = client(registry), client(registry2)
    first = oci.mirror_chart(src, "charts/demo", dst, "mirror/demo", digest, tag="0.1.0")
    assert first.changed and first.copied_blobs == 2 and first.tagged
    assert registry2.manifests[("mirror/demo", "0.1.0")][0] == registry.manifests[("charts/demo", "0.1.0")][0]
    assert dst.manifest_digest("mirror/demo", "0.1.0") == digest
    before = len(registry.log)
    second = oci.mirror_chart(client(registry), "charts/demo", client(registry2), "mirror/demo", digest, tag="0.1.0")
    assert not second.changed and second.copied_blobs == 0
    assert len(registry.log) == before  # the source was not even contacted


def test_mirror_check_mode_writes_nothing(registry, registry2):
    digest = registry.add_chart("charts/demo", "0.1.0")
    res = oci.mirror_chart(client(registry), "charts/demo", client(registry2), "m/demo", digest, tag="0.1.0",
                           check_mode=True)
    assert res.changed and not registry2.manifests and not registry2.blobs


def test_mirror_within_one_registry_mounts_blobs(registry):
    digest = registry.add_chart("charts/demo", "0.1.0")
    res = oci.mirror_chart(client(registry), "charts/demo", client(registry), "other/demo", digest, tag="0.1.0")
    assert res.mounted_blobs == 2 and res.copied_blobs == 0
    assert client(registry).manifest_digest("other/demo", "0.1.0") == digest


def test_mirror_retags_when_only_the_tag_is_missing(registry, registry2):
    digest = registry.add_chart("charts/demo", "0.1.0")
    oci.mirror_chart(client(registry), "charts/demo", client(registry2), "m/demo", digest)  # by digest only
    assert ("m/demo", "0.1.0") not in registry2.manifests
    res = oci.mirror_chart(client(registry), "charts/demo", client(registry2), "m/demo", digest, tag="0.1.0")
    assert res.changed and res.copied_blobs == 0 and res.existing_blobs == 0
    assert ("m/demo", "0.1.0") in registry2.manifests


def test_mirror_uses_local_blob_when_it_matches(registry, registry2):
    digest = registry.add_chart("charts/demo", "0.1.0", chart=b"cached chart")
    served = []

    def local(blob):
        served.append(blob)
        return b"cached chart" if blob == digest_of(b"cached chart") else None

    oci.mirror_chart(client(registry), "charts/demo", client(registry2), "m/demo", digest, tag="0.1.0",
                     local_blob=local)
    blob_gets = [e for e in registry.log if e[0] == "GET" and "/blobs/" in e[2]]
    assert len(blob_gets) == 1  # only the config came from the source registry
    assert registry2.blobs[("m/demo", digest_of(b"cached chart"))] == b"cached chart"


def test_unknown_digest_is_reported(registry, registry2):
    with pytest.raises(HelmError) as e:
        oci.mirror_chart(client(registry), "charts/demo", client(registry2), "m/demo", "sha256:" + "0" * 64)
    assert e.value.kind == "chart_not_found"


def test_unreachable_registry():
    c = oci.RegistryClient("127.0.0.1:1", None, plain_http=True, timeout=2)
    with pytest.raises(HelmError) as e:
        c.manifest_digest("x/y", "1")
    assert e.value.kind == "registry_unreachable"


def test_credentials_from_helm_config(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"r.example": {"auth": base64.b64encode(b"u:p:w").decode()}}}))
    env = {"HELM_REGISTRY_CONFIG": str(cfg)}
    assert oci.credentials_from_helm_config("r.example", env) == ("u", "p:w")
    assert oci.credentials_from_helm_config("other", env) is None
    assert oci.credentials_from_helm_config("r.example", {"HELM_REGISTRY_CONFIG": str(tmp_path / "no")}) is None


def test_manifest_blobs_rejects_indexes():
    assert oci.manifest_blobs(b'{"config":{"digest":"sha256:a"},"layers":[{"digest":"sha256:b"}]}') == [
        "sha256:a", "sha256:b"]
    with pytest.raises(HelmError):
        oci.manifest_blobs(b'{"manifests":[]}')
