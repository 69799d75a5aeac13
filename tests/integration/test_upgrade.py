"""playbooks/upgrade.yml on the local environment: GIE v1.1.0 -> v1.5.0 side by side, with the real EPPs and BBR of
both versions serving through the local gateway.

One namespace, one CPU-only model, in this order: site.yml at v1.1.0; the pre-flight report in check mode (nothing
created); the upgrade killed (SIGKILL) once the route sends half the traffic to the new pool; a rollback from there
(-e infgw_target_profile=v1.1.0); the upgrade again, killed once the route sends everything to the new pool; the
resumed run to the end; a re-run that plans nothing and a site.yml at v1.5.0 that changes nothing.

From the first upgrade to the end a watcher sends a request through the pool route every 100 ms (every one must be
answered 200 by the model) and reads the route, the pools and their EPP Deployments every few hundred ms: every
backendRef that gets traffic must name an existing pool whose endpoint picker is available.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import REPO
from test_dataplane import LARGE, Stack
from test_site import COLLECTIONS, VENV_BIN, delete_namespace, kget, namespace_exists, new_namespace, playbook

pytestmark = pytest.mark.integration

MODEL = dict(LARGE, name="up", model="example/up", host="up.example.com", default_backend=True)
EXTRA = {"infgw_models": [MODEL]}
# From v0.4.0, with an HPA (max 1: the watcher's load must not add pods) whose metric selector moves with the pools.
SCALED = dict(MODEL, autoscaling={"enabled": True, "min": 1, "max": 1, "target_kv_cache_utilization": "100m"})
ROUTE = "infp-up"
K8S = "inference.networking.k8s.io"
X_K8S = "inference.networking.x-k8s.io"  # v0.4.0's pools and InferenceModels


# The one failure an upgrade may cause, and only while BBR rolls in place: the old BBR pod stops as soon as its
# successor is Ready, and a request whose routing-extension call the load balancer sends to it in the moment before
# it drops that endpoint fails (GKE's NEG detach leaves the same window; the chart has no preStop hook to close it).
BBR_ROLL = (500, "routing extension error\n")


def unexplained(failures):
    """The watcher's failures other than a BBR-roll one, and at most one of those."""
    rolled = [f for f in failures if f == BBR_ROLL]
    return [f for f in failures if f != BBR_ROLL] + rolled[1:]


class Watcher(threading.Thread):
    """Requests through the pool route and the route's resolution, until stopped; failures are kept, not raised."""

    def __init__(self, local_env, stack):
        super().__init__(daemon=True)
        self.env, self.stack = local_env, stack
        self.stop = threading.Event()
        self.requests, self.failures, self.checks, self.bad_routes = 0, [], 0, []
        self.pools_seen = set()

    def check_route(self):
        proc = self.env.kubectl("get", "httproutes,inferencepools.%s,inferencepools.%s,deployments" % (K8S, X_K8S),
                                "-n", self.stack.namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            self.bad_routes.append("read failed: " + proc.stderr.strip())
            return
        items = json.loads(proc.stdout)["items"]
        route = next(i for i in items if i["kind"] == "HTTPRoute" and i["metadata"]["name"] == ROUTE)
        pools = {i["metadata"]["name"] for i in items if i["kind"] == "InferencePool"}
        ready = {i["metadata"]["name"] for i in items if i["kind"] == "Deployment"
                 and (i.get("status") or {}).get("availableReplicas", 0) >= 1}
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            if ref.get("weight", 1) == 0:
                continue
            self.pools_seen.add(ref["name"])
            if ref["name"] not in pools or ref["name"] + "-epp" not in ready:
                self.bad_routes.append("%s -> %s (pool %s, EPP available %s)" % (
                    ROUTE, ref["name"], ref["name"] in pools, ref["name"] + "-epp" in ready))
        self.checks += 1

    def run(self):
        last_check = 0.0
        while not self.stop.is_set():
            try:
                status, headers, body = self.stack.request("api.example.com", "example/up", timeout=10)
                ok = status == 200 and isinstance(body, dict) and body.get("model") == "example/up"
            except OSError as e:
                status, body, ok = repr(e), "", False
            self.requests += 1
            if not ok:
                self.failures.append((status, str(body)[:200]))
            if time.monotonic() - last_check > 0.3:
                self.check_route()
                last_check = time.monotonic()
            time.sleep(0.1)


def route_refs(local_env, namespace):
    route = kget(local_env, "httproute", namespace, ROUTE)
    return [(r["name"], r.get("weight", 1)) for r in route["spec"]["rules"][0]["backendRefs"]]


def releases(local_env, namespace):
    proc = subprocess.run(["helm", "list", "-n", namespace, "-o", "json"], env=local_env.env, capture_output=True,
                          text=True, check=True)
    return sorted((r["name"], r["chart"]) for r in json.loads(proc.stdout))


def upgrade_killed_when(local_env, tmp_path, namespace, target, condition, what):
    """Run upgrade.yml and SIGKILL its whole process group once ``condition()`` holds."""
    vars_file = tmp_path / "vars-kill.json"
    vars_file.write_text(json.dumps(EXTRA))
    env = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    env.pop("LOCAL_GIE_MANIFESTS", None)
    env.pop("HF_TOKEN", None)
    log = open(tmp_path / "killed-run.log", "w")
    proc = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "playbooks/upgrade.yml", "-e",
                             "infgw_namespace=" + namespace, "-e", "infgw_target_profile=" + target, "-e",
                             "@%s" % vars_file], cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not condition():
            assert proc.poll() is None, "upgrade.yml ended before %s:\n%s" % (
                what, (tmp_path / "killed-run.log").read_text()[-3000:])
            assert time.monotonic() < deadline, "no %s within 600 s" % what
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    return proc.returncode


def test_upgrade_v110_to_v150_with_kill_rollback_resume(local_env, tmp_path):
    namespace = new_namespace("upg")
    new_pool, old_pool = "vllm-up-v15", "vllm-up"
    timings = {}
    watcher = None
    try:
        started = time.monotonic()
        run = playbook(local_env, tmp_path, "site.yml", namespace, extra=dict(EXTRA, infgw_profile="v1.1.0"))
        assert run.rc == 0, run.failures()
        timings["site v1.1.0"] = run.seconds
        address = kget(local_env, "gateway", namespace, "vllm-xlb")["status"]["addresses"][0]["value"]
        stack = Stack(local_env, namespace, address)
        assert stack.request("api.example.com", "example/up")[0] == 200

        # Pre-flight report in check mode: everything it will do, and nothing done.
        up = ("-e", "infgw_target_profile=v1.5.0")
        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, "--check", extra=EXTRA)
        assert run.rc == 0, run.failures()
        [report] = [r["msg"] for name, r in run.results() if name == "Pre-flight report"]
        assert report[0] == "Deployed: v1.1.0; target: v1.5.0 (GIE v1.5.0, chart v1.5.0)"
        text = "\n".join(report)
        for expected in ("helm release vllm-up-v15 (inferencepool v1.5.0)", "traffic to the v1.5.0 pools in steps 50, 100%",
                         "helm release vllm-up (profile v1.1.0)", "Cannot be undone:"):
            assert expected in text, text
        # the x-k8s.io v1alpha2 pool CRD v1.5.0 no longer ships is kept (other CRDs may come from other namespaces)
        [crds] = [line for line in report if line.startswith("CRDs: apply the v1.5.0 bundle; kept ")]
        assert "inferencepools.inference.networking.x-k8s.io" in crds
        assert releases(local_env, namespace) == [("bbr", "body-based-routing-v1.1.0"), (old_pool, "inferencepool-v1.1.0")]
        assert route_refs(local_env, namespace) == [(old_pool, 1)]

        watcher = Watcher(local_env, stack)
        watcher.start()

        # Killed half-way through the shift.
        t = time.monotonic()
        upgrade_killed_when(local_env, tmp_path, namespace, "v1.5.0",
                            lambda: sorted(route_refs(local_env, namespace)) == [(old_pool, 50), (new_pool, 50)],
                            "50/50 route")
        timings["upgrade until killed at 50%"] = time.monotonic() - t

        # Rollback from there: traffic back to the v1.1.0 pool, the v1.5.0 releases removed, the old ones untouched.
        old_epp_uid = kget(local_env, "deployment", namespace, old_pool + "-epp")["metadata"]["uid"]
        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, "-e", "infgw_target_profile=v1.1.0",
                       extra=EXTRA)
        assert run.rc == 0, run.failures()
        timings["rollback"] = run.seconds
        assert route_refs(local_env, namespace) == [(old_pool, 1)]
        assert releases(local_env, namespace) == [("bbr", "body-based-routing-v1.1.0"), (old_pool, "inferencepool-v1.1.0")]
        assert kget(local_env, "deployment", namespace, old_pool + "-epp")["metadata"]["uid"] == old_epp_uid
        assert kget(local_env, "inferencepools.%s" % K8S, namespace, new_pool, check=False) is None

        # Again, killed once everything goes to the new pool (before the old release is removed) ...
        t = time.monotonic()
        upgrade_killed_when(local_env, tmp_path, namespace, "v1.5.0",
                            lambda: route_refs(local_env, namespace)[0] == (new_pool, 100), "100% route")
        timings["upgrade until killed at 100%"] = time.monotonic() - t
        # ... and resumed to the end.
        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, extra=EXTRA)
        assert run.rc == 0, run.failures()
        timings["resumed upgrade"] = run.seconds
        [report] = [r["msg"] for name, r in run.results() if name == "Pre-flight report"]
        assert "helm release vllm-up-v15" not in "\n".join(report[:3])  # nothing left to create
        watcher.stop.set()
        watcher.join(30)

        assert route_refs(local_env, namespace) == [(new_pool, 1)]
        assert releases(local_env, namespace) == [("bbr", "body-based-routing-v1.5.0"), (new_pool, "inferencepool-v1.5.0")]
        assert kget(local_env, "inferencepools.%s" % K8S, namespace, old_pool, check=False) is None
        hpa = kget(local_env, "hpa", namespace, "vllm-up", check=False)
        if hpa:  # autoscaling on: the HPA follows the new pool's metric
            assert hpa["spec"]["metrics"][0]["external"]["metric"]["selector"]["matchLabels"] == {
                "metric.labels.name": new_pool}
        # CRDs are never deleted unasked: the v1alpha2 pool CRD v1.5.0 no longer ships is still there.
        assert kget(local_env, "crd", None, "inferencepools.inference.networking.x-k8s.io", check=False)

        # What the watcher saw: every request answered, every route always on an existing pool with a ready EPP.
        print("\n[upgrade] %s; watcher: %d requests (failed: %s), %d route checks" % (
            ", ".join("%s %.1fs" % kv for kv in timings.items()), watcher.requests, watcher.failures, watcher.checks))
        assert watcher.requests > 100 and watcher.checks > 50, watcher.bad_routes[:5]
        assert unexplained(watcher.failures) == [], watcher.failures[:20]
        assert watcher.bad_routes == [], watcher.bad_routes[:20]
        assert watcher.pools_seen == {old_pool, new_pool}
        status, headers, body = stack.request("api.example.com", "example/up")
        assert status == 200 and headers["x-infgw-local-pod"].startswith(namespace + "/vllm-up-")

        # A re-run plans nothing and changes nothing; so does site.yml at the new profile.
        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, extra=EXTRA)
        assert run.rc == 0 and run.stats["changed"] == 0, (run.failures(), run.changed_tasks())
        [report] = [r["msg"] for name, r in run.results() if name == "Pre-flight report"]
        assert report[-1] == "Nothing to do: the namespace is at v1.5.0."
        run = playbook(local_env, tmp_path, "site.yml", namespace, extra=dict(EXTRA, infgw_profile="v1.5.0"))
        assert run.rc == 0 and run.stats["changed"] == 0, (run.failures(), run.changed_tasks())
    finally:
        if watcher is not None:
            watcher.stop.set()
        if namespace_exists(local_env, namespace):
            playbook(local_env, tmp_path, "playbooks/teardown.yml", namespace, extra=dict(EXTRA, infgw_profile="v1.5.0"))
        delete_namespace(local_env, namespace)


def hpa_metric_value(local_env, namespace, name, timeout=180):
    """The HPA's metric selector once the HPA controller reads a value for it through the adapter (the profile's
    pools emit the metric it targets); fails naming the HPA's conditions otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        hpa = kget(local_env, "hpa", namespace, name)
        current = (hpa.get("status") or {}).get("currentMetrics") or []
        reading = current and (current[0].get("external") or {}).get("current") or {}
        value = reading.get("averageValue") or reading.get("value")
        if value:
            return hpa["spec"]["metrics"][0]["external"]["metric"]["selector"]["matchLabels"], value
        assert time.monotonic() < deadline, "HPA %s reads no metric value within %ds: %s" % (
            name, timeout, [(c["type"], c["status"], c.get("message")) for c in hpa["status"].get("conditions", [])])
        time.sleep(3)


@pytest.mark.parametrize("target", ["v1.5.0", "v1.1.0"])
def test_upgrade_from_v040(local_env, tmp_path, target):
    """v0.4.0 (x-k8s.io v1alpha2 pools and InferenceModels) to the v1.0 API: directly to v1.5.0, and to v1.1.0, whose
    pools would take v0.4.0's names (refused until the target gets a pool_suffix). A watcher sends requests and reads
    the route throughout; the HPA's metric moves to the new pool and is read for real; a re-run plans nothing."""
    namespace = new_namespace("u04")
    extra = {"infgw_models": [SCALED]}
    suffix = {"v1.5.0": "-v15", "v1.1.0": "-v11"}[target]
    target_extra = dict(extra, infgw_profile_overrides={"pool_suffix": suffix}) if target == "v1.1.0" else extra
    old_pool, new_pool = "vllm-up", "vllm-up" + suffix
    watcher = None
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, extra=dict(extra, infgw_profile="v0.4.0"))
        assert run.rc == 0, run.failures()
        address = kget(local_env, "gateway", namespace, "vllm-xlb")["status"]["addresses"][0]["value"]
        stack = Stack(local_env, namespace, address)
        assert stack.request("api.example.com", "example/up")[0] == 200
        before = releases(local_env, namespace)
        assert before == [("bbr", "body-based-routing-v0.4.0"), (old_pool, "inferencepool-v0.4.0")]
        assert hpa_metric_value(local_env, namespace, "vllm-up")[0] == {"metric.labels.name": old_pool}
        up = ("-e", "infgw_target_profile=" + target)

        if target == "v1.1.0":  # same pool names in both profiles: refused before anything is touched
            run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, extra=extra)
            assert run.rc != 0 and "set infgw_profile_overrides.pool_suffix" in run.failures(), run.failures()
            assert run.stats["changed"] == 0 and releases(local_env, namespace) == before

        watcher = Watcher(local_env, stack)
        watcher.start()
        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, extra=target_extra)
        assert run.rc == 0, run.failures()
        upgrade_seconds = run.seconds
        watcher.stop.set()
        watcher.join(30)

        assert route_refs(local_env, namespace) == [(new_pool, 1)]
        assert releases(local_env, namespace) == [("bbr", "body-based-routing-" + target),
                                                  (new_pool, "inferencepool-" + target)]
        assert kget(local_env, "inferencepools.%s" % X_K8S, namespace, old_pool, check=False) is None
        assert kget(local_env, "inferencepools.%s" % K8S, namespace, new_pool)
        assert kget(local_env, "inferencemodels.%s" % X_K8S, namespace)["items"] == []
        # both v1alpha2 CRDs stay (never deleted unasked)
        for crd in ("inferencepools", "inferencemodels"):
            assert kget(local_env, "crd", None, "%s.%s" % (crd, X_K8S), check=False)
        selector, value = hpa_metric_value(local_env, namespace, "vllm-up")
        assert selector == {"metric.labels.name": new_pool}

        print("\n[upgrade v0.4.0 -> %s] upgrade.yml %.1fs; watcher: %d requests (failed: %s), %d route checks; "
              "HPA reads %s" % (target, upgrade_seconds, watcher.requests, watcher.failures, watcher.checks, value))
        assert watcher.requests > 50 and watcher.checks > 20, watcher.bad_routes[:5]
        assert unexplained(watcher.failures) == [], watcher.failures[:20]
        assert watcher.bad_routes == [], watcher.bad_routes[:20]
        assert watcher.pools_seen == {old_pool, new_pool}

        run = playbook(local_env, tmp_path, "playbooks/upgrade.yml", namespace, *up, extra=target_extra)
        assert run.rc == 0 and run.stats["changed"] == 0, (run.failures(), run.changed_tasks())
        [report] = [r["msg"] for name, r in run.results() if name == "Pre-flight report"]
        assert report[-1] == "Nothing to do: the namespace is at %s." % target
        run = playbook(local_env, tmp_path, "site.yml", namespace, extra=dict(target_extra, infgw_profile=target))
        assert run.rc == 0 and run.stats["changed"] == 0, (run.failures(), run.changed_tasks())
    finally:
        if watcher is not None:
            watcher.stop.set()
        if namespace_exists(local_env, namespace):
            playbook(local_env, tmp_path, "playbooks/teardown.yml", namespace,
                     extra=dict(target_extra, infgw_profile=target))
        delete_namespace(local_env, namespace)
