"""Thin Kubernetes I/O: raw JSON requests, a thread-safe object store and list/watch informers.

Objects stay plain dicts exactly as the API returns them (no model classes), which is what the
status functions take.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from .model import Cluster, Key, ResourceType, key_of

log = logging.getLogger("gke_sim")

WATCH_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)


def api_client(kubeconfig: str) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 64  # one long-lived connection per watch, plus patches
    return client.ApiClient(cfg)


def collection_path(rtype: ResourceType, version: str) -> str:
    return f"/api/{version}/{rtype.plural}" if not rtype.group else f"/apis/{rtype.group}/{version}/{rtype.plural}"


def status_path(rtype: ResourceType, version: str, namespace: str, name: str) -> str:
    base = f"/apis/{rtype.group}/{version}"
    scope = f"/namespaces/{namespace}" if rtype.namespaced else ""
    return f"{base}{scope}/{rtype.plural}/{name}/status"


def request(api: client.ApiClient, method: str, path: str, *, query: list | None = None, body=None,
            content_type: str | None = None, stream: bool = False, timeout=None):
    """One API request; returns parsed JSON, or the open urllib3 response when `stream` is set."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    method, url, headers, body, post = api.param_serialize(method=method, resource_path=path, query_params=query or [],
                                                           header_params=headers, body=body,
                                                           auth_settings=["BearerToken"])
    resp = api.call_api(method, url, headers, body, post, _request_timeout=timeout)
    if not 200 <= resp.status <= 299:
        resp.read()
        raise ApiException.from_response(http_resp=resp, body=resp.data.decode("utf-8", "replace"), data=None)
    if stream:
        return resp.response
    return json.loads(resp.read())


class Store:
    """Last known state of every watched object, per resource type."""

    def __init__(self):
        self._lock = threading.Lock()
        self._objects: dict[ResourceType, dict[Key, dict]] = {}

    def replace(self, rtype: ResourceType, objs: list[dict]) -> bool:
        """Set the full list; True when it differs from what was stored."""
        fresh = {key_of(o): o for o in objs}
        with self._lock:
            old = self._objects.get(rtype, {})
            self._objects[rtype] = fresh
        return _versions(old) != _versions(fresh)

    def put(self, rtype: ResourceType, obj: dict) -> None:
        with self._lock:
            self._objects.setdefault(rtype, {})[key_of(obj)] = obj

    def remove(self, rtype: ResourceType, obj: dict) -> None:
        with self._lock:
            self._objects.get(rtype, {}).pop(key_of(obj), None)

    def drop(self, rtype: ResourceType) -> None:
        with self._lock:
            self._objects.pop(rtype, None)

    def snapshot(self) -> Cluster:
        with self._lock:
            return Cluster({t: dict(objs) for t, objs in self._objects.items()})


def _versions(objs: dict[Key, dict]) -> dict[Key, str]:
    return {k: o["metadata"].get("resourceVersion") for k, o in objs.items()}


class Informer(threading.Thread):
    """List, then watch from the list's resourceVersion; relist on 410 Gone and every `resync` seconds.

    Calls `on_change()` after every event that changed the store (and after each relist that did).
    """

    def __init__(self, api: client.ApiClient, rtype: ResourceType, version: str, store: Store,
                 on_change: Callable[[], None], resync: float):
        super().__init__(name=f"informer-{rtype.plural}.{rtype.group or 'core'}", daemon=True)
        self.api, self.rtype, self.version, self.store = api, rtype, version, store
        self.on_change, self.resync = on_change, resync
        self.synced = threading.Event()  # set after the first successful list
        self._stopped = threading.Event()
        self._watch: watch.Watch | None = None

    def stop(self) -> None:
        self._stopped.set()
        if self._watch:
            self._watch.stop()

    def _list(self) -> str:
        body = request(self.api, "GET", collection_path(self.rtype, self.version), timeout=(10, 60))
        if self.store.replace(self.rtype, body.get("items") or []) or not self.synced.is_set():
            self.synced.set()
            self.on_change()
        return body["metadata"]["resourceVersion"]

    def _watch_once(self, resource_version: str, seconds: int) -> str:
        """Follow one watch stream until the server ends it; returns the last resourceVersion seen."""
        path = collection_path(self.rtype, self.version)

        def list_fn(**kw):  # Watch.stream adds watch/_preload_content/resource_version/timeout_seconds
            query = [("watch", "true"), ("resourceVersion", kw["resource_version"]),
                     ("timeoutSeconds", kw["timeout_seconds"]), ("allowWatchBookmarks", "true")]
            return request(self.api, "GET", path, query=query, stream=True, timeout=(10, kw["timeout_seconds"] + 30))

        self._watch = watch.Watch()
        for event in self._watch.stream(list_fn, resource_version=resource_version, timeout_seconds=seconds):
            obj = event["raw_object"]
            resource_version = obj.get("metadata", {}).get("resourceVersion") or resource_version
            if event["type"] in ("ADDED", "MODIFIED"):
                self.store.put(self.rtype, obj)
            elif event["type"] == "DELETED":
                self.store.remove(self.rtype, obj)
            else:  # BOOKMARK: only moves the resourceVersion on
                continue
            self.on_change()
            if self._stopped.is_set():
                break
        return resource_version

    def run(self) -> None:
        backoff = 1.0
        while not self._stopped.is_set():
            try:
                resource_version = self._list()
                listed = time.monotonic()
                backoff = 1.0
                while not self._stopped.is_set() and (left := self.resync - (time.monotonic() - listed)) > 1:
                    resource_version = self._watch_once(resource_version, int(left))
            except ApiException as e:
                if e.status == 410:  # resourceVersion too old: relist at once
                    log.debug("%s: watch expired (410 Gone), relisting", self.rtype)
                    continue
                if not self._stopped.is_set():
                    log.warning("%s: list/watch failed: %s %s; retrying in %.0fs", self.rtype, e.status,
                                e.reason, backoff)
            except WATCH_ERRORS as e:
                if not self._stopped.is_set():
                    log.warning("%s: list/watch failed: %s; retrying in %.0fs", self.rtype, e, backoff)
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, 30.0)
