"""The GCE metadata server, as a GKE node's pods see it (what GCE_METADATA_HOST=127.0.0.1:PORT points clients at).

Served under /computeMetadata/v1/ on the fake's port, without the bearer token (the metadata server has none),
and only to requests carrying `Metadata-Flavor: Google` (403 otherwise, as GCE does; a request with
X-Forwarded-For is refused too). Values are plain text (`Content-Type: application/text`), the token is JSON;
every answer carries `Metadata-Flavor: Google`. `?alt=json` answers a value as a JSON string.

What the custom-metrics-stackdriver-adapter reads (cloud.google.com/go/compute/metadata): project/project-id,
instance/attributes/cluster-location and cluster-name, instance/hostname, instance/zone (its fallback), and
instance/service-accounts/default/token (google.DefaultTokenSource on GCE). The token is the environment's
access token, which every API of the fake accepts.
"""

from __future__ import annotations

import json
import urllib.parse

from .world import CLUSTER, PROJECT, PROJECT_NUMBER, REGION, ZONES

PREFIX = "/computeMetadata/v1/"
# The node the metadata server answers for: the first of the cluster's default pool.
INSTANCE = "gke-local-cluster-default-pool-0"
SERVICE_ACCOUNT = f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def _values(token: str) -> dict:
    zone = ZONES[0]
    return {
        "project/project-id": PROJECT,
        "project/numeric-project-id": PROJECT_NUMBER,
        "instance/attributes/cluster-name": CLUSTER,
        "instance/attributes/cluster-location": REGION,
        "instance/attributes/cluster-uid": "0" * 32,
        "instance/hostname": f"{INSTANCE}.{zone}.c.{PROJECT}.internal",
        "instance/name": INSTANCE,
        "instance/id": "4520031799277580000",
        "instance/zone": f"projects/{PROJECT_NUMBER}/zones/{zone}",
        "instance/region": f"projects/{PROJECT_NUMBER}/regions/{REGION}",
        "instance/service-accounts/default/email": SERVICE_ACCOUNT,
        "instance/service-accounts/default/aliases": "default",
        "instance/service-accounts/default/scopes": "\n".join(SCOPES),
        "instance/service-accounts/default/token": {"access_token": token, "expires_in": 3599,
                                                    "token_type": "Bearer"},
    }


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.title() for part in rest)


def _text(status: int, text: str, content_type: str = "application/text") -> tuple[int, dict, bytes]:
    return status, {"Metadata-Flavor": "Google", "Content-Type": content_type}, text.encode()


def handle(method: str, raw_path: str, headers: dict, token: str) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one metadata request; headers are lower-cased."""
    url = urllib.parse.urlsplit(raw_path)
    query = urllib.parse.parse_qs(url.query)
    if headers.get("metadata-flavor", "") != "Google" or "x-forwarded-for" in headers:
        return _text(403, "Missing Metadata-Flavor:Google header.\n", "text/html; charset=UTF-8")
    if method not in ("GET", "HEAD"):
        return _text(405, f"Method {method} not allowed.\n", "text/html; charset=UTF-8")
    key = url.path[len(PREFIX):].strip("/") if url.path.startswith(PREFIX) else None
    values = _values(token)
    if key is None:
        return _text(404, "Not Found\n", "text/html; charset=UTF-8")
    if key in values:
        value = values[key]
        if isinstance(value, dict):
            return _text(200, json.dumps(value), "application/json")
        if (query.get("alt") or [""])[0] == "json":
            return _text(200, json.dumps(value), "application/json")
        return _text(200, value)
    # A directory (a trailing slash in Google's paths) lists its children, or with ?recursive=true is one JSON
    # object: names in camelCase, lists for the newline-separated values, the token left out.
    prefix = f"{key}/" if key else ""
    if (query.get("recursive") or [""])[0] == "true" and any(k.startswith(prefix) for k in values):
        tree: dict = {}
        for name, value in values.items():
            if not name.startswith(prefix) or name.endswith("/token"):
                continue
            node, parts = tree, name[len(prefix):].split("/")
            for part in parts[:-1]:
                node = node.setdefault(_camel(part), {})
            node[_camel(parts[-1])] = value.split("\n") if parts[-1] in ("scopes", "aliases") else value
        return _text(200, json.dumps(tree), "application/json")
    children = sorted({k[len(prefix):].split("/", 1)[0] + ("/" if "/" in k[len(prefix):] else "")
                       for k in values if k.startswith(prefix)})
    if children and (url.path.endswith("/") or not key):
        return _text(200, "\n".join(children) + "\n")
    return _text(404, "Not Found\n", "text/html; charset=UTF-8")
