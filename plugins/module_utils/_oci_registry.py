# Copyright: Contributors to gke_ai.inference_gateway
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A minimal OCI distribution client, enough to copy one chart between registries.

`helm push` cannot mirror a chart faithfully: it writes a new manifest (with a fresh
`org.opencontainers.image.created` annotation), so the copy would get another digest. This
client copies the manifest and its blobs byte for byte, so the mirror has the same digest
and digest pins keep working against it.

Authentication follows the distribution spec: on 401 it answers a `Basic` challenge with
the credentials, or trades them at a `Bearer` challenge's realm for a token (this covers
htpasswd registries, Docker Hub, GHCR and Artifact Registry with `oauth2accesstoken`).
Credentials are never put in error messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import HelmError

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_www_authenticate(header):
    """`Bearer realm="x",service="y",scope="z"` -> ("bearer", {"realm": "x", ...})."""
    if not header:
        return None, {}
    scheme, _sep, rest = header.strip().partition(" ")
    params = {}
    for m in re.finditer(r'([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', rest):
        params[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return scheme.lower(), params


def credentials_from_helm_config(host, environ=None):
    """(username, password) stored by `helm registry login` for `host`, or None."""
    environ = os.environ if environ is None else environ
    path = environ.get("HELM_REGISTRY_CONFIG")
    if not path:
        config_home = environ.get("HELM_CONFIG_HOME") or os.path.join(
            environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"), "helm")
        path = os.path.join(config_home, "registry", "config.json")
    try:
        with open(path) as f:
            auths = (json.load(f) or {}).get("auths") or {}
    except (OSError, ValueError):
        return None
    entry = auths.get(host) or auths.get("https://" + host) or auths.get("http://" + host)
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        username, _sep, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return username, password


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        return None


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class RegistryClient:
    """Talks to one registry host (`host[:port]`)."""

    def __init__(self, host, credentials=None, plain_http=False, timeout=60, opener=None):
        self.host = host
        self.credentials = credentials
        self.scheme = "http" if plain_http else "https"
        self.timeout = timeout
        self.requests = 0
        self._tokens = {}  # scope -> Authorization header value
        self._opener = opener or urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context()))

    # -- HTTP ---------------------------------------------------------------------------

    def _url(self, path):
        return "%s://%s/v2/%s" % (self.scheme, self.host, path)

    def _send(self, method, url, headers, data=None):
        self.requests += 1
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            resp = self._opener.open(req, timeout=self.timeout)
            return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read() if method != "HEAD" else b"")
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            hint = "set plain_http/mirror_plain_http=true for a plain HTTP registry" if (
                "SSL" in str(reason) or "WRONG_VERSION_NUMBER" in str(reason)) else None
            raise HelmError("Registry %s is unreachable: %s" % (self.host, reason), kind="registry_unreachable",
                            hint=hint)

    def _basic(self):
        username, password = self.credentials
        return "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")

    def _token(self, params, scope):
        realm = params.get("realm")
        if not realm:
            raise HelmError("Registry %s sent a Bearer challenge without realm" % self.host, kind="registry_auth")
        query = {}
        if params.get("service"):
            query["service"] = params["service"]
        scope = params.get("scope") or scope
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        for s in scope.split(" "):
            if s:
                url += "&scope=" + urllib.parse.quote(s, safe=":,/")
        headers = {}
        if self.credentials:
            headers["Authorization"] = self._basic()
        resp = self._send("GET", url, headers)
        if resp.status != 200:
            raise HelmError("Registry %s refused a token for %s (HTTP %s)" % (self.host, scope, resp.status),
                            kind="registry_auth", hint="Check the registry credentials")
        try:
            body = json.loads(resp.body.decode("utf-8"))
        except ValueError:
            raise HelmError("Registry %s token endpoint returned no JSON" % self.host, kind="registry_auth")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise HelmError("Registry %s token endpoint returned no token" % self.host, kind="registry_auth")
        return "Bearer " + token

    def request(self, method, path, scope, headers=None, data=None, ok=(200,)):
        """One API call with challenge handling and manual redirects (no auth sent off-host)."""
        headers = dict(headers or {})
        url = self._url(path)
        auth = self._tokens.get(scope)
        for attempt in range(2):
            h = dict(headers)
            if auth:
                h["Authorization"] = auth
            resp = self._send(method, url, h, data)
            if resp.status != 401 or attempt:
                break
            scheme, params = parse_www_authenticate(resp.headers.get("WWW-Authenticate"))
            if scheme == "basic":
                if not self.credentials:
                    break
                auth = self._basic()
            elif scheme == "bearer":
                auth = self._token(params, scope)
            else:
                break
            self._tokens[scope] = auth
        hops = 0
        while resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD") and hops < 5:
            hops += 1
            location = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            same_host = urllib.parse.urlparse(location).netloc == self.host
            h = dict(headers)
            if same_host and auth:
                h["Authorization"] = auth
            url = location
            resp = self._send(method, location, h)
        if resp.status == 401:
            raise HelmError("Registry %s: %s %s is unauthorized" % (self.host, method, path), kind="registry_auth",
                            hint="Check the registry credentials")
        if resp.status == 403:
            raise HelmError("Registry %s: %s %s is forbidden" % (self.host, method, path), kind="registry_auth",
                            hint="The credentials lack permission for this repository")
        if resp.status not in ok:
            detail = resp.body[:500].decode("utf-8", "replace") if resp.body else ""
            raise HelmError("Registry %s: %s %s returned HTTP %s %s" % (
                self.host, method, path, resp.status, detail.strip()), kind="registry")
        return resp

    # -- API ----------------------------------------------------------------------------

    @staticmethod
    def scope(repository, push=False):
        return "repository:%s:%s" % (repository, "pull,push" if push else "pull")

    def manifest_digest(self, repository, reference):
        """HEAD a manifest -> its digest, or None when absent."""
        resp = self.request("HEAD", "%s/manifests/%s" % (repository, reference), self.scope(repository),
                            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}, ok=(200, 404))
        if resp.status == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # a registry that omits the header: fetch and hash
        body, _media_type = self.get_manifest(repository, reference)
        return sha256_digest(body)

    def get_manifest(self, repository, reference):
        resp = self.request("GET", "%s/manifests/%s" % (repository, reference), self.scope(repository),
                            headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}, ok=(200, 404))
        if resp.status == 404:
            raise HelmError("%s/%s:%s not found in registry %s" % (self.host, repository, reference, self.host),
                            kind="chart_not_found", hint="Check chart_ref, version and digest")
        return resp.body, (resp.headers.get("Content-Type") or "").split(";")[0].strip()

    def blob_exists(self, repository, digest, push_scope=False):
        resp = self.request("HEAD", "%s/blobs/%s" % (repository, digest), self.scope(repository, push_scope),
                            ok=(200, 404))
        return resp.status == 200

    def get_blob(self, repository, digest):
        resp = self.request("GET", "%s/blobs/%s" % (repository, digest), self.scope(repository))
        if sha256_digest(resp.body) != digest:
            raise HelmError("blob %s from %s/%s does not match its digest" % (digest, self.host, repository),
                            kind="digest_mismatch")
        return resp.body

    def mount_blob(self, repository, digest, from_repository):
        """Cross-repository mount (same registry) -> True when the registry mounted it."""
        path = "%s/blobs/uploads/?mount=%s&from=%s" % (repository, urllib.parse.quote(digest),
                                                       urllib.parse.quote(from_repository, safe=""))
        scope = "%s %s" % (self.scope(repository, True), self.scope(from_repository))
        resp = self.request("POST", path, scope, data=b"", ok=(201, 202))
        return resp.status == 201

    def put_blob(self, repository, digest, data):
        scope = self.scope(repository, True)
        resp = self.request("POST", "%s/blobs/uploads/" % repository, scope, data=b"", ok=(202,))
        location = resp.headers.get("Location")
        if not location:
            raise HelmError("Registry %s gave no upload location" % self.host, kind="registry")
        base = self._url("")
        url = urllib.parse.urljoin(base, location)
        url += ("&" if "?" in url else "?") + "digest=" + urllib.parse.quote(digest)
        path = url[len(base):] if url.startswith(base) else None
        if path is None:
            raise HelmError("Registry %s gave an upload location on another host" % self.host, kind="registry")
        self.request("PUT", path, scope, data=data,
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
                     ok=(201,))

    def put_manifest(self, repository, reference, body, media_type):
        resp = self.request("PUT", "%s/manifests/%s" % (repository, reference), self.scope(repository, True),
                            data=body, headers={"Content-Type": media_type}, ok=(201,))
        return resp.headers.get("Docker-Content-Digest") or sha256_digest(body)


def manifest_blobs(manifest_body):
    """Digests of the config and layers of an image manifest (indexes are not charts)."""
    try:
        manifest = json.loads(manifest_body.decode("utf-8"))
    except ValueError as e:
        raise HelmError("manifest is not JSON: %s" % e, kind="parse")
    if "manifests" in manifest:
        raise HelmError("the reference is an image index, not a helm chart", kind="invalid_chart")
    blobs = []
    config = manifest.get("config") or {}
    if config.get("digest"):
        blobs.append(config["digest"])
    for layer in manifest.get("layers") or ():
        if layer.get("digest"):
            blobs.append(layer["digest"])
    return blobs


class MirrorResult:
    __slots__ = ("changed", "digest", "copied_blobs", "mounted_blobs", "existing_blobs", "tagged")

    def __init__(self):
        self.changed = False
        self.digest = None
        self.copied_blobs = 0
        self.mounted_blobs = 0
        self.existing_blobs = 0
        self.tagged = False

    def as_dict(self):
        return {s: getattr(self, s) for s in self.__slots__}


def mirror_chart(source, source_repo, target, target_repo, digest, tag=None, check_mode=False,
                 local_blob=None):
    """Copy manifest `digest` from source to target (optionally tagging it) if not there yet.

    `local_blob(digest)` may return the bytes of a blob already on disk (the chart cache)
    to save downloading it. Idempotent: when the target already has the digest (and the tag
    points at it) nothing is written and `changed` is False.
    """
    result = MirrorResult()
    result.digest = digest
    have = target.manifest_digest(target_repo, digest)
    tag_ok = True
    if tag:
        tag_ok = target.manifest_digest(target_repo, tag) == digest
    if have and tag_ok:
        return result
    result.changed = True
    if check_mode:
        return result
    body, media_type = source.get_manifest(source_repo, digest)
    if sha256_digest(body) != digest:
        raise HelmError("manifest from %s/%s does not match %s" % (source.host, source_repo, digest),
                        kind="digest_mismatch")
    if not have:
        same_registry = source.host == target.host
        for blob in manifest_blobs(body):
            if target.blob_exists(target_repo, blob, push_scope=True):
                result.existing_blobs += 1
                continue
            if same_registry and source_repo != target_repo and target.mount_blob(target_repo, blob, source_repo):
                result.mounted_blobs += 1
                continue
            data = local_blob(blob) if local_blob else None
            if data is None or sha256_digest(data) != blob:
                data = source.get_blob(source_repo, blob)
            target.put_blob(target_repo, blob, data)
            result.copied_blobs += 1
    pushed = target.put_manifest(target_repo, tag or digest, body, media_type or MANIFEST_MEDIA_TYPES[0])
    if pushed != digest:
        raise HelmError("the mirror stored the manifest as %s, expected %s" % (pushed, digest),
                        kind="digest_mismatch")
    result.tagged = bool(tag)
    verify = target.manifest_digest(target_repo, tag or digest)
    if verify != digest:
        raise HelmError("after the copy %s/%s:%s resolves to %s, expected %s"
                        % (target.host, target_repo, tag or digest, verify, digest), kind="digest_mismatch")
    return result
