# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watch-with-deadline machinery over the Kubernetes dynamic client.

A :class:`WatchSet` keeps a local cache of objects for a set of *scopes* (a resource
type, optionally limited to a namespace and/or a single name). Each scope is listed
once (synchronously, so the cache is complete right after :meth:`WatchSet.ensure`),
then followed by a ``watch`` on the list endpoint starting at the list's
``resourceVersion``, in a daemon thread. Watch events are handed to the caller's thread
through a queue; :meth:`WatchSet.wait` blocks until something changed or the timeout
elapsed, so the caller re-evaluates on change instead of sleeping in a loop.

* The watches are opened by the first :meth:`WatchSet.wait`, not by ``ensure``: a caller
  whose lists already show what it waits for (a converged stack) opens no watch and has no
  thread to stop. Nothing is lost by the delay, a watch from the list's
  ``resourceVersion`` delivers every change made since the list.

* Expired resource versions (HTTP 410 Gone) trigger a re-list and a fresh watch.
* Each watch request carries ``timeoutSeconds`` bounded by the overall deadline, and
  transient errors are retried with back-off until the deadline.
* Scopes can be added while waiting (e.g. namespaces discovered from route backends).
* With ``watch=False`` (check mode, one-shot reports) scopes are only listed.

Reusable by any module of this collection; private (leading underscore).
"""

from __future__ import annotations

import threading
import time

try:
    import queue
except ImportError:  # pragma: no cover
    import Queue as queue  # type: ignore

try:
    from kubernetes import watch as k8s_watch
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

    HAS_KUBERNETES = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False

    class ApiException(Exception):  # type: ignore
        status = None


def find_resource(dyn_client, kind, group=None, api_version=None):
    """Return the dynamic ``Resource`` for ``kind`` if the cluster serves it, else None.

    With only ``group`` the server's preferred version of that group wins (so
    ``inference.networking.k8s.io`` resolves to ``v1`` and
    ``inference.networking.x-k8s.io`` to ``v1alpha2``). Discovery misses are retried once
    with a fresh discovery cache by the lazy discoverer.
    """
    kwargs = {"kind": kind}
    if api_version:
        kwargs["api_version"] = api_version
    elif group is not None:
        kwargs["group"] = group
    try:
        results = dyn_client.resources.search(**kwargs)
    except (ResourceNotFoundError, ResourceNotUniqueError):
        return None
    # ResourceList pseudo-kinds ("GatewayList") are not wanted; neither are subresources.
    results = [r for r in results if getattr(r, "kind", None) == kind and "list" in (getattr(r, "verbs", None) or [])]
    if not results:
        return None
    preferred = [r for r in results if getattr(r, "preferred", False)]
    return (preferred or results)[0]


def resource_id(resource):
    """Hashable identity of a dynamic resource: (group_version, kind)."""
    return (resource.group_version, resource.kind)


class _Scope(object):
    def __init__(self, resource, namespace=None, name=None):
        self.resource = resource
        self.rid = resource_id(resource)
        self.namespace = namespace
        self.name = name
        self.key = (self.rid, namespace, name)
        self.resource_version = None
        self.thread = None
        self.watcher = None
        self.error = None

    @property
    def field_selector(self):
        return "metadata.name=%s" % self.name if self.name else None

    def covers(self, rid, namespace, name):
        return (rid == self.rid
                and (self.namespace is None or self.namespace == namespace)
                and (self.name is None or self.name == name))

    def describe(self):
        where = "all namespaces" if self.namespace is None else "namespace %s" % self.namespace
        what = self.rid[1] + ("/" + self.name if self.name else "")
        return "%s (%s) in %s" % (what, self.rid[0], where)


class WatchSet(object):
    """A cache of objects kept current by list+watch, waited on with a deadline."""

    def __init__(self, dyn_client, deadline, watch=True, clock=time.monotonic, max_watch_seconds=60,
                 request_timeout=30, on_error=None):
        self.client = dyn_client
        self.deadline = deadline
        self.watch = watch
        self.clock = clock
        self.max_watch_seconds = max_watch_seconds
        self.request_timeout = request_timeout
        self.on_error = on_error
        self._scopes = {}
        self._pending = []  # listed scopes whose watch the next wait() opens
        self._objects = {}  # (rid, namespace, name) -> dict
        self._queue = queue.Queue()
        self._stop = threading.Event()
        self.errors = {}  # scope description -> last error text (also transient watch errors)
        self.events = 0

    # ------------------------------------------------------------------ scopes

    def _covered(self, rid, namespace, name):
        for scope in self._scopes.values():
            if scope.covers(rid, namespace, name):
                return True
        return False

    def ensure(self, resource, namespace=None, name=None):
        """List (and then watch) ``resource`` in ``namespace`` (None: all namespaces).

        Returns True when a new scope was added, False when it was already covered.
        A failing list (e.g. 403) is recorded in :attr:`errors` (and in the scope, see
        :meth:`scope_error`), returns False and is not retried. The watch is opened by
        the next :meth:`wait`.
        """
        rid = resource_id(resource)
        if not resource.namespaced:
            namespace = None
        if self._covered(rid, namespace, name):
            return False
        scope = _Scope(resource, namespace, name)
        try:
            items, rv = self._list(scope)
        except ApiException as e:
            scope.error = self._error_text(e)
            self._record_error(scope, scope.error)
            self._scopes[scope.key] = scope
            return False
        scope.error = None
        self.errors.pop(scope.describe(), None)
        self._scopes[scope.key] = scope
        self._replace(scope, items)
        scope.resource_version = rv
        if self.watch:
            self._pending.append(scope)
        return True

    def _start_watches(self):
        """Open the watches of the scopes listed since the last call, each in a daemon thread."""
        while self._pending and not self._stop.is_set():
            scope = self._pending.pop(0)
            t = threading.Thread(target=self._run, args=(scope,), name="watch-%s" % scope.rid[1])
            t.daemon = True
            scope.thread = t
            t.start()

    def failed_scopes(self):
        """Scopes whose initial list failed (not watched at all): description -> error."""
        return dict((s.describe(), s.error) for s in self._scopes.values() if s.error)

    def scope_error(self, resource, namespace=None, name=None):
        if not resource.namespaced:
            namespace = None
        scope = self._scopes.get((resource_id(resource), namespace, name))
        return scope.error if scope is not None else None

    # ------------------------------------------------------------------ cache

    def objects(self, resource, namespace=None):
        """Cached objects of ``resource`` (optionally only in ``namespace``)."""
        rid = resource_id(resource)
        out = [o for (r, ns, _n), o in self._objects.items() if r == rid and (namespace is None or ns == namespace)]
        out.sort(key=lambda o: ((o.get("metadata") or {}).get("namespace") or "", (o.get("metadata") or {}).get("name") or ""))
        return out

    def get(self, resource, namespace, name):
        return self._objects.get((resource_id(resource), namespace if resource.namespaced else None, name))

    def _okey(self, rid, obj):
        m = obj.get("metadata") or {}
        return (rid, m.get("namespace"), m.get("name"))

    def _replace(self, scope, items):
        for key in [k for k in self._objects if scope.covers(*k)]:
            del self._objects[key]
        for obj in items:
            self._objects[self._okey(scope.rid, obj)] = obj

    def _apply(self, item):
        what = item[0]
        scope = self._scopes.get(item[1])
        if scope is None:
            return False
        if what == "sync":
            self._replace(scope, item[2])
            return True
        if what == "event":
            etype, obj = item[2], item[3]
            key = self._okey(scope.rid, obj)
            if etype == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = obj
            self.events += 1
            return True
        if what == "error":
            self._record_error(scope, item[2])
            return False
        return False

    def wait(self, timeout):
        """Block until at least one change arrived or ``timeout`` seconds passed.

        Returns the number of changes applied to the cache (0 on timeout). Without
        watches this simply sleeps, bounded by the deadline. Opens the watches of the
        scopes listed since the last call first.
        """
        self._start_watches()
        timeout = max(0.0, min(timeout, self.deadline - self.clock()))
        changed = 0
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return 0
        changed += 1 if self._apply(item) else 0
        while True:  # drain whatever else is already there
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            changed += 1 if self._apply(item) else 0
        return changed

    # ------------------------------------------------------------------ I/O

    def _list(self, scope):
        remaining = self.deadline - self.clock()
        params = {"_request_timeout": max(1, min(self.request_timeout, remaining))}
        if scope.namespace:
            params["namespace"] = scope.namespace
        if scope.field_selector:
            params["field_selector"] = scope.field_selector
        result = scope.resource.get(**params)
        data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        rv = (data.get("metadata") or {}).get("resourceVersion")
        return list(data.get("items") or []), rv

    @staticmethod
    def _error_text(exc):
        status = getattr(exc, "status", None)
        reason = getattr(exc, "reason", None) or ""
        summary = getattr(exc, "summary", None)
        text = summary() if callable(summary) else None
        return "HTTP %s %s" % (status, text or reason) if status else str(exc)

    def _record_error(self, scope, text):
        self.errors[scope.describe()] = text
        if self.on_error is not None:
            try:
                self.on_error(scope.describe(), text)
            except Exception:  # pragma: no cover - never let a logger kill the watch
                pass

    def _run(self, scope):
        rv = scope.resource_version
        backoff = 0.5
        while not self._stop.is_set():
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                return
            try:
                if rv is None:
                    items, rv = self._list(scope)
                    self._queue.put(("sync", scope.key, items))
                watcher = k8s_watch.Watch()
                scope.watcher = watcher
                opened = self.clock()
                stream = self.client.watch(
                    scope.resource,
                    namespace=scope.namespace,
                    field_selector=scope.field_selector,
                    resource_version=rv,
                    timeout=max(1, int(min(remaining, self.max_watch_seconds))),
                    watcher=watcher,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if self._stop.is_set():
                        watcher.stop()
                        return
                    raw = event.get("raw_object") or {}
                    new_rv = (raw.get("metadata") or {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self._queue.put(("event", scope.key, event["type"], raw))
                    backoff = 0.5
            except ApiException as e:
                if self._stop.is_set():
                    return
                if getattr(e, "status", None) == 410:
                    rv = None  # resource version too old: re-list
                    continue
                self._queue.put(("error", scope.key, self._error_text(e)))
            except Exception as e:  # connection reset, read timeout, ...
                if self._stop.is_set():
                    return
                self._queue.put(("error", scope.key, "%s: %s" % (type(e).__name__, e)))
            else:
                if self.clock() - opened < 0.2:  # a server ending watches at once must not make us spin
                    self._stop.wait(0.2)
                continue
            # After an error, re-list before watching again: no event is lost, and if only the
            # watch verb fails (e.g. RBAC without "watch") this degrades to polling with back-off.
            rv = None
            self._stop.wait(min(backoff, max(0.0, self.deadline - self.clock())))
            backoff = min(backoff * 2, 10)

    def close(self, join_timeout=1.0):
        """Stop every watch thread (threads are daemons; this just ends them early)."""
        self._stop.set()
        self._pending = []
        for scope in self._scopes.values():
            if scope.watcher is not None:
                try:
                    scope.watcher.stop()
                except Exception:  # pragma: no cover
                    pass
        end = time.monotonic() + join_timeout
        for scope in self._scopes.values():
            if scope.thread is not None:
                scope.thread.join(max(0.0, end - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
