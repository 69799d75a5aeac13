# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of what k8s_converge applies, and why not: pure predicates over API objects (plain dicts).

Like ``_gateway_status.py`` for the Gateway, every predicate returns the blockers that keep an object from being
ready, each one line naming the object and the reason; an empty list means ready. No I/O, no clock: unit-tested on
recorded status documents.

* A Deployment is ready as kubernetes.core's ``deployment_ready`` has it: the controller observed the current
  generation and every wanted replica exists, is updated and available.
* A CustomResourceDefinition is ready when ``Established``; an APIService (the aggregation layer's, such as the
  custom metrics adapter's) when ``Available``: until then API discovery of its group fails for every client.
* The pods of a Deployment that is not ready explain it: the scheduler's latest ``FailedScheduling`` message with
  the cluster autoscaler's latest word on the pod (``NotTriggerScaleUp`` / ``TriggeredScaleUp``), image pull and
  other waiting reasons, probes. A crash-looping container (waiting in ``CrashLoopBackOff``, or restarted after
  terminating) is *fatal*: waiting longer cannot help, so the wait stops at once and names it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._ssa import object_label

SCALER_REASONS = ("NotTriggerScaleUp", "TriggeredScaleUp")
_MESSAGE_TAIL = 300  # characters of a terminated container's message (vLLM's last lines)


def _status(obj):
    return (obj or {}).get("status") or {}


def _one_line(text):
    return " ".join(str(text or "").split())


def has_predicate(obj):
    """Whether readiness of ``obj`` is judged here (others are ready once they exist)."""
    judged = (("apps/v1", "Deployment"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
              ("apiregistration.k8s.io/v1", "APIService"))
    return (obj.get("apiVersion"), obj.get("kind")) in judged


def deployment_blockers(deployment, title=None):
    """Why a Deployment is not ready (kubernetes.core's ``deployment_ready``); [] when it is."""
    status = _status(deployment)
    want = (deployment.get("spec") or {}).get("replicas", 1)
    have = status.get("availableReplicas") or 0
    ready = (bool(status) and want == (status.get("replicas") or 0)
             and status.get("availableReplicas") == status.get("replicas")
             and status.get("observedGeneration") == (deployment.get("metadata") or {}).get("generation")
             and not status.get("unavailableReplicas"))
    if ready:
        return []
    name = title or object_label(deployment)
    if status.get("observedGeneration") != (deployment.get("metadata") or {}).get("generation") and have >= want:
        return ["%s: the controller has not observed generation %s yet" % (name, deployment["metadata"].get("generation"))]
    updated = status.get("updatedReplicas") or 0
    detail = "" if updated >= want else ", %d/%d updated" % (updated, want)
    return ["%s: %d/%d replicas available%s" % (name, have, want, detail)]


def _condition_blockers(obj, kind):
    for condition in _status(obj).get("conditions") or []:
        if condition.get("type") == kind:
            if condition.get("status") == "True":
                return []
            return ["%s: %s=%s %s" % (object_label(obj), kind, condition.get("status"),
                                      _one_line(condition.get("message") or condition.get("reason")))]
    return ["%s: not %s yet" % (object_label(obj), kind)]


def crd_blockers(crd):
    return _condition_blockers(crd, "Established")


def apiservice_blockers(apiservice):
    """Why an APIService is not Available, as the aggregator says (for instance: its service has no endpoints)."""
    return _condition_blockers(apiservice, "Available")


def blockers(obj, title=None):
    """The blockers of any object this module judges (see :func:`has_predicate`)."""
    if obj.get("kind") == "Deployment":
        return deployment_blockers(obj, title)
    if obj.get("kind") == "CustomResourceDefinition":
        return crd_blockers(obj)
    if obj.get("kind") == "APIService":
        return apiservice_blockers(obj)
    return []


def selector_text(deployment):
    """The label selector of a Deployment's pods, as a query string (matchLabels and matchExpressions)."""
    selector = (deployment.get("spec") or {}).get("selector") or {}
    parts = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        operator, values = expression.get("operator"), ",".join(expression.get("values") or [])
        key = expression.get("key")
        parts.append({"In": "%s in (%s)" % (key, values), "NotIn": "%s notin (%s)" % (key, values),
                      "Exists": key, "DoesNotExist": "!" + key}.get(operator, key))
    return ",".join(parts)


def crash_loop(pod):
    """Why a pod's container is crash-looping, or None. Waiting in ``CrashLoopBackOff``, or restarted with a
    terminated last state, counts: a model server that exits on bad flags never becomes ready by waiting."""
    for container in (_status(pod).get("initContainerStatuses") or []) + (_status(pod).get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        restarts = container.get("restartCount") or 0
        if waiting.get("reason") != "CrashLoopBackOff" and not (restarts and last):
            continue
        plural = "" if restarts == 1 else "s"
        text = "container %s is crash-looping (%d restart%s" % (container.get("name"), restarts, plural)
        text += ", %s)" % waiting["reason"] if waiting.get("reason") else ")"
        if last:
            text += "; last exit: %s, exit code %s" % (last.get("reason") or "terminated", last.get("exitCode"))
            message = _one_line(last.get("message"))
            if message:
                text += ": %s" % message[-_MESSAGE_TAIL:]
        return text
    return None


def _latest(events, pod_name, reasons):
    found = [event for event in events if (event.get("involvedObject") or {}).get("name") == pod_name
             and event.get("reason") in reasons]
    found.sort(key=lambda event: event.get("lastTimestamp") or event.get("eventTime")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")
    return found[-1] if found else None


def pod_blockers(pod, events=()):
    """(fatal, waiting): why a pod keeps its Deployment from being ready. ``fatal`` names a crash loop."""
    name = (pod.get("metadata") or {}).get("name")
    crash = crash_loop(pod)
    if crash:
        return ["pod %s %s" % (name, crash)], []
    scheduled = [c for c in _status(pod).get("conditions") or [] if c.get("type") == "PodScheduled"]
    if scheduled and scheduled[0].get("status") == "False":
        event = _latest(events, name, ("FailedScheduling",))
        message = (event or {}).get("message") or scheduled[0].get("message") or scheduled[0].get("reason") \
            or "unschedulable"
        lines = ["pod %s cannot be scheduled (FailedScheduling): %s" % (name, _one_line(message))]
        scaler = _latest(events, name, SCALER_REASONS)
        if scaler:
            lines.append("  cluster autoscaler (%s): %s" % (scaler.get("reason"), _one_line(scaler.get("message"))))
        return [], lines
    lines = []
    for container in _status(pod).get("containerStatuses") or []:
        if container.get("ready"):
            continue
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            why = waiting.get("reason") or "waiting"
            if waiting.get("message"):
                why += ": " + _one_line(waiting["message"])
        else:
            why = "running but not ready"
        lines.append("pod %s container %s: %s" % (name, container.get("name"), why))
    if not _status(pod).get("containerStatuses"):
        lines.append("pod %s: %s" % (name, _status(pod).get("phase") or "Pending"))
    return [], lines


def explain(deployment, pods, events=(), title=None):
    """(fatal, lines) for a Deployment that is not ready: its own blocker, then each pod's."""
    fatal, lines = [], deployment_blockers(deployment, title)
    name = title or object_label(deployment)
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name") or ""):
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue  # an old pod going away
        pod_fatal, pod_lines = pod_blockers(pod, events)
        fatal.extend("%s: %s" % (name, line) for line in pod_fatal)
        lines.extend("  " + line for line in pod_lines)
    return fatal, lines
