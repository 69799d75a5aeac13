"""GKE status simulator: writes the status GKE's gateway controller would write.

Pure modules (no I/O, unit tested): ``model`` (resource kinds, cluster snapshot, conditions),
``matching`` (Gateway API attachment rules), ``status`` (desired status of every object) and
``schema`` (normalising desired status the way the API server stores it, change detection).
I/O lives in ``kube`` (list/watch, status patches) and ``runner`` (the reconcile loop and CLI).
"""
