"""Unit tests of the pod runner's pure parts (hack/pod_runner) and the pod network's names (podnet)."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))
sys.path.insert(0, str(REPO / "hack" / "localcluster"))

import podnet  # noqa: E402
from pod_runner import images, podspec, probes, proxy, status  # noqa: E402

# --------------------------------------------------------------------------- vLLM -> simulator arguments


def test_role_default_args_drop_what_the_simulator_lacks():
    # what roles/vllm_model renders for gemma-3-4b (args, then vllm_args), after $(MODEL) expansion
    argv = ["--model=google/gemma-3-4b-it", "--tensor-parallel-size=1", "--dtype=bfloat16"]
    assert images.simulator_args(argv, {}) == ["--model=google/gemma-3-4b-it", "--force-dummy-tokenizer"]


def test_separate_values_are_dropped_with_their_flag():
    argv = ["--model", "m", "--gpu-memory-utilization", "0.90", "--max-model-len", "16384", "-tp", "2"]
    assert images.simulator_args(argv, {}) == ["--model", "m", "--max-model-len", "16384", "--force-dummy-tokenizer"]
    assert images.simulator_args(["--model", "m", "--dtype"], {}) == ["--model", "m", "--force-dummy-tokenizer"]


def test_lora_modules_become_json_and_enable_lora_goes():
    argv = ["--model=m", "--enable-lora", "--lora-modules", "food-review=org/food-review", "x={\"a\":1}",
            "--max-loras", "2"]
    out = images.simulator_args(argv, {})
    assert out[:2] == ["--model=m", "--lora-modules"]
    assert json.loads(out[2]) == {"name": "food-review", "path": "org/food-review"}
    assert json.loads(out[3]) == {"name": "x", "path": "{\"a\":1}"}
    assert out[4:] == ["--max-loras", "2", "--force-dummy-tokenizer"]


def test_lora_modules_already_json_and_inline_form():
    js = '{"name":"a","path":"p"}'
    assert images.simulator_args(["--lora-modules", js], {})[:2] == ["--lora-modules", js]
    out = images.simulator_args(["--lora-modules=a=b"], {})
    assert json.loads(out[1]) == {"name": "a", "path": "b"}


def test_unknown_and_misspelt_flags_reach_the_simulator():
    # a typo must fail the container as it fails vLLM, not vanish
    assert "--max-model-lenn" in images.simulator_args(["--model=m", "--max-model-lenn", "5"], {})
    assert "--no-such-flag" in images.simulator_args(["--model=m", "--no-such-flag"], {})


def test_per_model_settings_from_the_environment():
    env = {"INFGW_SIM_TIME_TO_FIRST_TOKEN": "200ms", "INFGW_SIM_INTER_TOKEN_LATENCY": "20ms",
           "INFGW_SIM_ENABLE_KVCACHE": "", "OTHER": "x", "INFGW_SIM_": "ignored"}
    out = images.simulator_args(["--model=m"], env)
    assert out == ["--model=m", "--enable-kvcache", "--inter-token-latency", "20ms", "--time-to-first-token",
                   "200ms", "--force-dummy-tokenizer"]


def test_container_arguments_win_over_environment_settings():
    out = images.simulator_args(["--model=m", "--time-to-first-token=1s", "--force-dummy-tokenizer"],
                                {"INFGW_SIM_TIME_TO_FIRST_TOKEN": "200ms"})
    assert out == ["--model=m", "--time-to-first-token=1s", "--force-dummy-tokenizer"]


def test_without_a_model_vllms_default_is_served():
    assert images.simulator_args([], {}) == ["--model", "facebook/opt-125m", "--force-dummy-tokenizer"]
    assert images.simulator_args([], {"SIM_MODEL": "m"}) == ["--force-dummy-tokenizer"]


def test_vllm_command_forms():
    served = images.vllm_command_model(["vllm", "serve", "org/m", "--port", "8000"])
    assert served == ["--model", "org/m", "--port", "8000"]
    assert images.vllm_command_model(["python3", "-m", "vllm.entrypoints.openai.api_server"]) == []
    assert images.vllm_command_model(["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m"]) == \
        ["--model", "m"]


# --------------------------------------------------------------------------- the image table

@pytest.mark.parametrize("image, name", [
    ("vllm/vllm-openai:v0.8.5.post1", "vllm"),
    ("docker.io/vllm/vllm-openai:latest", "vllm"),
    ("vllm/vllm-openai", "vllm"),
    ("registry.k8s.io/gateway-api-inference-extension/epp:v1.1.0", "epp"),
    ("registry.k8s.io/gateway-api-inference-extension/bbr:v0.4.0", "bbr"),
    ("us-docker.pkg.dev/google-samples/containers/gke/gradio-app:v1.0.4", None),
    ("registry.k8s.io/gateway-api-inference-extension/epp:main", None),
    ("evil.example/vllm/vllm-openai:x", None),
])
def test_image_table(image, name):
    found = images.find(image)
    assert (found[0].name if found else None) == name


def test_gie_binaries_follow_the_image_tag(tmp_path):
    ctx = images.Context(bin_dir=tmp_path, versions={"LLMD_SIM_VERSION": "v0.10.2"}, host_gateway="10.0.0.1",
                         host_ports={"apiserver": 6443})
    runnable, match = images.find("registry.k8s.io/gateway-api-inference-extension/epp:v0.4.0")
    assert runnable.binary(match, ctx) == tmp_path / "gie-v0.4.0" / "epp"
    runnable, match = images.find("vllm/vllm-openai:v0.8.5.post1")
    assert runnable.binary(match, ctx) == tmp_path / "llm-d-inference-sim-v0.10.2" / "llm-d-inference-sim"


def test_the_kwok_regex_matches_the_same_images():
    import re
    regex = re.compile(images.kwok_image_regex())
    assert regex.search("vllm/vllm-openai:v0.8.5.post1")
    assert regex.search("registry.k8s.io/gateway-api-inference-extension/bbr:v1.1.0")
    assert not regex.search("us-docker.pkg.dev/google-samples/containers/gke/gradio-app:v1.0.4")


# --------------------------------------------------------------------------- pod spec -> process

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


OBJECTS = {
    ("Secret", "gemma", "hf-secret"): {"data": {"hf_api_token": b64("hf_secret_value")}},
    ("ConfigMap", "gemma", "epp-config"): {"data": {"default-plugins.yaml": "plugins: []\n"}},
    ("ConfigMap", "gemma", "env-cm"): {"data": {"A": "1", "B": "2"}},
}


def lookup(kind, namespace, name):
    return OBJECTS.get((kind, namespace, name))


def token(namespace, sa, pod):
    return f"token-for-{namespace}-{sa}-{pod['metadata']['name']}"


def pod_with(container, volumes=None, sa=None):
    return {"metadata": {"name": "p-1", "namespace": "gemma", "uid": "0123abcd-0000-0000-0000-000000000000",
                         "labels": {"app": "x"}},
            "spec": {"containers": [container], "volumes": volumes or [], "nodeName": "n1",
                     **({"serviceAccountName": sa} if sa else {})},
            "status": {"podIP": "10.244.0.7", "hostIP": "10.240.0.1"}}


@pytest.fixture
def ctx(tmp_path):
    bins = tmp_path / "bin"
    for rel in ("llm-d-inference-sim-v0.10.2/llm-d-inference-sim", "gie-v1.1.0/epp", "gie-v1.1.0/bbr"):
        (bins / rel).parent.mkdir(parents=True, exist_ok=True)
        (bins / rel).write_text("")
    return images.Context(bin_dir=bins, versions={"LLMD_SIM_VERSION": "v0.10.2"}, host_gateway="10.244.255.254",
                          host_ports={"apiserver": 6443})


def plan_of(pod, ctx, tmp_path):
    container = pod["spec"]["containers"][0]
    runnable, match = images.find(container["image"])
    return podspec.plan(pod, container, runnable, match, ctx, tmp_path / "pod", lookup, token, b"CA")


def test_vllm_pod_as_the_role_renders_it(ctx, tmp_path):
    container = {
        "name": "inference-server", "image": "vllm/vllm-openai:v0.8.5.post1",
        "args": ["--model=$(MODEL)", "--tensor-parallel-size=1", "--dtype=bfloat16", "$$(MODEL)"],
        "env": [{"name": "MODEL", "value": "google/gemma-3-4b-it"},
                {"name": "HUGGING_FACE_HUB_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": "hf-secret", "key": "hf_api_token"}}},
                {"name": "INFGW_SIM_TIME_TO_FIRST_TOKEN", "value": "150ms"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "WHERE", "value": "$(POD_IP):8000"}],
        "ports": [{"containerPort": 8000, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
        "volumeMounts": [{"mountPath": "/dev/shm", "name": "dshm"}],
    }
    plan = plan_of(pod_with(container, [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]), ctx, tmp_path)
    assert plan.argv == [str(ctx.bin_dir / "llm-d-inference-sim-v0.10.2" / "llm-d-inference-sim"),
                         "--model=google/gemma-3-4b-it", "$(MODEL)", "--time-to-first-token", "150ms",
                         "--force-dummy-tokenizer"]
    assert plan.env["HUGGING_FACE_HUB_TOKEN"] == "hf_secret_value"
    assert plan.env["WHERE"] == "10.244.0.7:8000"
    assert plan.env["HOSTNAME"] == "p-1" and plan.env["HF_HUB_OFFLINE"] == "1"
    assert "KUBECONFIG" not in plan.env, "model servers do not talk to the API server"
    assert plan.ports == {"8000": 8000, "http": 8000} and plan.first_port == 8000
    assert "volumes/dshm" in plan.dirs


def test_epp_pod_as_the_chart_renders_it(ctx, tmp_path):
    container = {
        "name": "epp", "image": "registry.k8s.io/gateway-api-inference-extension/epp:v1.1.0",
        "args": ["--pool-name", "vllm-gemma-3-1b", "--pool-namespace", "gemma", "--config-file",
                 "/config/default-plugins.yaml", "--v", "1", "--tracing", "false"],
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"containerPort": 9002, "name": "grpc"}, {"containerPort": 9003, "name": "grpc-health"}],
        "readinessProbe": {"grpc": {"port": 9003, "service": "inference-extension"}, "periodSeconds": 2},
        "volumeMounts": [{"name": "plugins-config-volume", "mountPath": "/config"}],
    }
    pod = pod_with(container, [{"name": "plugins-config-volume", "configMap": {"name": "epp-config"}}],
                   sa="vllm-gemma-3-1b-epp")
    plan = plan_of(pod, ctx, tmp_path)
    pod_dir = tmp_path / "pod"
    # exactly the chart's arguments, with only the mount path moved to where the ConfigMap is materialised
    assert plan.argv[1:] == ["--pool-name", "vllm-gemma-3-1b", "--pool-namespace", "gemma", "--config-file",
                             f"{pod_dir}/volumes/plugins-config-volume/default-plugins.yaml", "--v", "1",
                             "--tracing", "false"]
    assert plan.files["volumes/plugins-config-volume/default-plugins.yaml"] == b"plugins: []\n"
    assert plan.env["NAMESPACE"] == "gemma"
    assert plan.env["KUBECONFIG"] == str(pod_dir / "kubeconfig")
    assert plan.files["serviceaccount/token"] == b"token-for-gemma-vllm-gemma-3-1b-epp-p-1"
    kubeconfig = json.loads(plan.files["kubeconfig"])
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == "https://10.244.255.254:6443"
    assert cluster["tls-server-name"] == "kubernetes.default.svc"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"CA"
    assert kubeconfig["users"][0]["user"] == {"tokenFile": str(pod_dir / "serviceaccount" / "token")}


def test_env_from_and_optional_refs(ctx, tmp_path):
    container = {"name": "bbr", "image": "registry.k8s.io/gateway-api-inference-extension/bbr:v1.1.0",
                 "envFrom": [{"configMapRef": {"name": "env-cm"}, "prefix": "X_"},
                             {"secretRef": {"name": "absent", "optional": True}}],
                 "env": [{"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k",
                                                                        "optional": True}}},
                         {"name": "B", "value": "$(X_B)-$(UNSET)"}]}
    plan = plan_of(pod_with(container), ctx, tmp_path)
    assert plan.env["X_A"] == "1" and plan.env["B"] == "2-$(UNSET)" and "OPT" not in plan.env


def test_a_missing_secret_is_a_config_error(ctx, tmp_path):
    container = {"name": "c", "image": "vllm/vllm-openai:v1",
                 "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(podspec.ConfigError, match='secret "nope" not found'):
        plan_of(pod_with(container), ctx, tmp_path)


def test_a_missing_build_is_an_image_error(ctx, tmp_path):
    container = {"name": "epp", "image": "registry.k8s.io/gateway-api-inference-extension/epp:v9.9.9"}
    with pytest.raises(podspec.ImageError, match="gie-v9.9.9/epp is missing"):
        plan_of(pod_with(container), ctx, tmp_path)


def test_a_probe_on_an_unknown_port_name_is_a_config_error(ctx, tmp_path):
    container = {"name": "c", "image": "vllm/vllm-openai:v1", "readinessProbe": {"httpGet": {"port": "nope"}}}
    with pytest.raises(podspec.ConfigError, match="not a container port"):
        plan_of(pod_with(container), ctx, tmp_path)


def test_rewrite_paths_only_at_path_boundaries():
    mounts = {"/config": "/L/cfg", "/config/sub": "/L/sub", "/data": "/L/data"}
    assert podspec.rewrite_paths("--config-file=/config/a.yaml", mounts) == "--config-file=/L/cfg/a.yaml"
    assert podspec.rewrite_paths("/config/sub/x", mounts) == "/L/sub/x"
    assert podspec.rewrite_paths("/configuration/x", mounts) == "/configuration/x"
    assert podspec.rewrite_paths("/etc/config/x", mounts) == "/etc/config/x"
    assert podspec.rewrite_paths("a:/data,b", mounts) == "a:/L/data,b"


def test_projected_and_downward_volumes(tmp_path):
    pod = pod_with({"name": "c", "image": "x"}, [
        {"name": "proj", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"configMap": {"name": "epp-config", "items": [{"key": "default-plugins.yaml", "path": "p.yaml"}]}},
            {"downwardAPI": {"items": [{"path": "labels-app", "fieldRef": {"fieldPath": "metadata.labels['app']"}}]}},
        ]}},
        {"name": "sec", "secret": {"secretName": "hf-secret"}},
    ])
    files, dirs = podspec.volume_files(pod, lookup, token)
    assert files == {"volumes/proj/token": b"token-for-gemma-default-p-1",
                     "volumes/proj/p.yaml": b"plugins: []\n",
                     "volumes/proj/labels-app": b"x",
                     "volumes/sec/hf_api_token": b"hf_secret_value"}
    assert dirs == ["volumes/proj", "volumes/sec"]


# --------------------------------------------------------------------------- status and back-off

def test_backoff_first_restart_is_immediate_then_doubles_to_the_cap():
    backoff = status.Backoff(base=10, cap=300)
    assert [backoff.delay(n) for n in range(1, 9)] == [0, 10, 20, 40, 80, 160, 300, 300]


def test_crash_looping_container_status():
    rec = status.ContainerRecord(name="inference-server", image="vllm/vllm-openai:v1", started_at=100.0)
    rec.last_terminated = status.terminated(rec, 0, 101.0, "failed to read configuration: unknown flag: --x")
    rec.state, rec.reason, rec.message, rec.restart_count = "waiting", "CrashLoopBackOff", "back-off 2s", 3
    pod = status.pod_status([rec], None, 102.0)
    cs = pod["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2s"}}
    assert cs["lastState"]["terminated"]["reason"] == "Completed"  # exit 0 is still a termination
    assert cs["lastState"]["terminated"]["message"].endswith("unknown flag: --x")
    assert cs["restartCount"] == 3 and cs["ready"] is False and cs["started"] is False
    ready = next(c for c in pod["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [inference-server]"


def test_ready_condition_keeps_its_transition_time():
    rec = status.ContainerRecord(name="c", image="i", state="running", started_at=1.0, started=True, ready=True)
    first = status.pod_status([rec], None, 1000.0)
    later = status.pod_status([rec], first["conditions"], 2000.0)
    assert [c["lastTransitionTime"] for c in later["conditions"]] == \
        [c["lastTransitionTime"] for c in first["conditions"]]
    rec.ready = False
    flipped = status.pod_status([rec], later["conditions"], 3000.0)
    ready = next(c for c in flipped["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == status.rfc3339(3000.0)


def test_containers_without_a_process_are_reported_ready():
    rec = status.ContainerRecord(name="sidecar", image="busybox", runnable=False, started_at=5.0)
    pod = status.pod_status([rec], None, 6.0)
    assert pod["containerStatuses"][0]["ready"] is True
    assert all(c["status"] == "True" for c in pod["conditions"])


def test_log_tail_is_bounded():
    assert status.log_tail("a\n" * 50, lines=3) == "a\na\na"
    assert len(status.log_tail("x" * 5000)) == 1024


# --------------------------------------------------------------------------- endpoints and Services

def test_ready_endpoints_by_port_name():
    slices = [{"ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
               "endpoints": [{"addresses": ["10.244.0.2"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.0.3"], "conditions": {"ready": False}},
                             {"addresses": ["10.244.0.4"]}]},
              {"ports": [{"name": "metrics", "port": 9090}], "endpoints": [{"addresses": ["10.244.0.5"]}]}]
    assert proxy.ready_endpoints(slices, "http") == [("10.244.0.2", 8000), ("10.244.0.4", 8000)]
    assert proxy.ready_endpoints(slices, "") == []


def test_service_ports_skip_headless_and_udp():
    svc = {"spec": {"clusterIP": "127.20.0.9", "clusterIPs": ["127.20.0.9"],
                    "ports": [{"port": 443, "name": "https"}, {"port": 53, "protocol": "UDP"}]}}
    assert proxy.service_ports(svc) == [("127.20.0.9", 443, "https")]
    assert proxy.service_ports({"spec": {"clusterIP": "None", "ports": [{"port": 1}]}}) == []


# --------------------------------------------------------------------------- per-environment names

def test_environment_derivations_are_disjoint_between_environments():
    ids = [f"{s:02x}" for s in podnet.SLOTS]
    seen_cidrs, seen_bases, seen_netns = set(), set(), set()
    import ipaddress
    for env_id in ids:
        d = podnet.derived(env_id)
        cidr = ipaddress.ip_network(d["service_cidr"])
        base = ipaddress.ip_address(d["gateway_address_base"] + "0")
        assert cidr.subnet_of(ipaddress.ip_network("127.0.0.0/8")) and base.is_loopback
        assert base not in cidr, "Gateway addresses must not be ClusterIPs"
        assert not cidr.overlaps(ipaddress.ip_network("127.0.0.0/16")), "127.0.x.x stays the host's"
        seen_cidrs.add(cidr)
        seen_bases.add(d["gateway_address_base"])
        seen_netns.add(d["pod_netns"])
        assert d["pod_netns"].startswith(podnet.netns_prefix(env_id))
        assert len(podnet.veth_name("0123456789ab-cdef")) <= 15
    assert len(seen_cidrs) == len(seen_bases) == len(seen_netns) == len(ids)
    cidrs = sorted(seen_cidrs)
    assert not any(a.overlaps(b) for a, b in zip(cidrs, cidrs[1:]))
    for other in ids:  # no environment's Gateway block falls in another's ClusterIP block
        assert all(ipaddress.ip_address(podnet.gateway_address_base(other) + "1") not in c for c in
                   seen_cidrs - {ipaddress.ip_network(podnet.service_cidr(other))})


@pytest.mark.parametrize("bad", ["", "0f", "ff", "1", "abc", "G1", "00"])
def test_invalid_environment_ids(bad):
    with pytest.raises(ValueError):
        podnet.check_env_id(bad)


def test_used_ids_come_from_the_pod_network_namespaces(tmp_path):
    for name in ("infgw-1a-pods", "infgw-1a-pabc", "infgw-2b-pods", "other", "infgw-zz-pods"):
        (tmp_path / name).write_text("")
    assert podnet.used_env_ids(tmp_path) == {"1a", "2b"}
    assert podnet.used_env_ids(tmp_path / "missing") == set()


# --------------------------------------------------------------------------- probes against real sockets

def serve_once(handler):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def run():
        conn = listener.accept()[0]
        with conn:
            handler(conn)
        listener.close()
    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


def connect(address, timeout):
    return socket.create_connection(address, timeout)


def test_http_probe_status_ranges():
    port = serve_once(lambda c: (c.recv(4096), c.sendall(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")))
    assert probes.http_get(connect, "127.0.0.1", port, "/health")
    port = serve_once(lambda c: (c.recv(4096), c.sendall(b"HTTP/1.1 503 Unavailable\r\n\r\n")))
    result = probes.http_get(connect, "127.0.0.1", port, "/health")
    assert not result and "503" in result.message


def test_tcp_probe_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    assert not probes.tcp_socket(connect, "127.0.0.1", port)


def test_simulator_gets_its_downward_environment(ctx, tmp_path):
    """--enable-kvcache refuses to start without POD_IP: the pod's address is given as llm-d's manifests give it."""
    container = {"name": "vllm", "image": "vllm/vllm-openai:v0.8.5.post1", "args": ["--model=m"],
                 "env": [{"name": "INFGW_SIM_ENABLE_KVCACHE", "value": ""}]}
    plan = plan_of(pod_with(container), ctx, tmp_path)
    assert (plan.env["POD_IP"], plan.env["POD_NAME"], plan.env["POD_NAMESPACE"]) == ("10.244.0.7", "p-1", "gemma")
    assert "--enable-kvcache" in plan.argv
    container["env"].append({"name": "POD_IP", "value": "set-by-the-container"})
    assert plan_of(pod_with(container), ctx, tmp_path).env["POD_IP"] == "set-by-the-container"


def test_metrics_adapter_pod_as_the_manifest_renders_it(ctx, tmp_path):
    """The adapter's image runs hack/metrics_adapter with the manifest's flags, pointed at the GCP fake."""
    build = ctx.bin_dir / f"metrics-adapter-{images.source_version(images.ADAPTER_SOURCE)}" / "metrics-adapter"
    build.parent.mkdir(parents=True)
    build.write_text("")
    ctx = dataclasses.replace(ctx, host_ports={"apiserver": 6443, "gcp_fake": 7777})
    container = {"name": "pod-custom-metrics-stackdriver-adapter",
                 "image": "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.16.9-gke.0",
                 "command": ["/adapter", "--use-new-resource-model=true", "--fallback-for-container-metrics=true"],
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 443, "scheme": "HTTPS"}}}
    plan = plan_of(pod_with(container, sa="custom-metrics-stackdriver-adapter"), ctx, tmp_path)
    assert plan.argv == [str(build), "--use-new-resource-model=true", "--fallback-for-container-metrics=true",
                         "--stackdriver-endpoint=http://10.244.255.254:7777/monitoring/"]
    assert plan.env["GCE_METADATA_HOST"] == "10.244.255.254:7777"
    assert plan.env["GOOGLE_APPLICATION_CREDENTIALS"] == ""
    assert plan.env["KUBECONFIG"] == str(tmp_path / "pod" / "kubeconfig")
