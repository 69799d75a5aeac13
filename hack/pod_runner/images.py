"""Which images get a real process, and how: the image -> process table.

Each `Runnable` names the image it takes (a regular expression over the container's `image`), the local binary
that plays it (built by hack/localcluster/build-tools.sh into the tool cache), and how the container's arguments
become that binary's. Pods with no runnable container stay kwok's alone (Running and Ready at once, no process).

To add an image, append a Runnable to RUNNABLES (the kwok stages that hold such pods back until their process
is ready are generated from the same table by localenv.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Context:
    """What a Runnable may need to know about the environment it runs in."""
    bin_dir: Path  # the tool cache's bin/: <tool>-<version>/<binary>
    versions: dict  # hack/localcluster/versions.env
    host_gateway: str  # where pods reach the host's loopback services (same port numbers)
    host_ports: dict  # name -> port of those services (apiserver, gcp_fake, ...)


@dataclasses.dataclass(frozen=True)
class Runnable:
    name: str
    image: re.Pattern
    # the binary for a matched image; a missing file makes the container fail like an image pull
    binary: Callable[[re.Match, Context], Path]
    # (argv after the binary: command[1:] + args, expanded; the container's env) -> the binary's arguments
    translate: Callable[[list[str], dict, Context], list[str]] = lambda argv, env, ctx: argv
    # extra environment for the process (the container's own env is always given)
    extra_env: Callable[[dict, Context], dict] = lambda env, ctx: {}
    # a kubeconfig holding a TokenRequest token of the pod's ServiceAccount, as $KUBECONFIG
    api_access: bool = False
    # the command a container's `command` replaces; its words are dropped (the binary stands for them)
    keep_command: bool = False
    # POD_IP, POD_NAME and POD_NAMESPACE from the pod (what the binary's own manifests set with the downward API),
    # unless the container sets them
    downward_env: bool = False


def tool_binary(tool: str, binary: str, version_key: str | None = None) -> Callable[[re.Match, Context], Path]:
    """<bin_dir>/<tool>-<version>/<binary>, the version from versions.env or else the image tag."""
    def resolve(match: re.Match, ctx: Context) -> Path:
        version = ctx.versions[version_key] if version_key else match.group("tag")
        return ctx.bin_dir / f"{tool}-{version}" / binary
    return resolve


# --------------------------------------------------------------------------- vLLM -> llm-d-inference-sim

# vLLM options the simulator does not have, dropped with their value: they tune GPUs, weights and the tokenizer,
# none of which exists here. Anything else reaches the simulator, so a misspelt or unknown option fails the
# container as it would fail vLLM (the simulator exits on unknown flags).
VLLM_DROPPED_WITH_VALUE = frozenset({
    "tensor-parallel-size", "tp", "pipeline-parallel-size", "pp", "dtype", "gpu-memory-utilization",
    "quantization", "q", "kv-cache-dtype", "swap-space", "cpu-offload-gb", "max-lora-rank", "download-dir",
    "tokenizer", "tokenizer-mode", "revision", "load-format", "max-num-batched-tokens", "host",
    "uvicorn-log-level", "distributed-executor-backend", "seed", "chat-template", "max-logprobs",
})
VLLM_DROPPED_SWITCHES = frozenset({
    "enable-lora", "trust-remote-code", "disable-log-requests", "disable-log-stats", "enable-chunked-prefill",
    "no-enable-chunked-prefill", "disable-frontend-multiprocessing", "enable-auto-tool-choice",
})
# Per-model simulator settings travel in the pod's environment: INFGW_SIM_TIME_TO_FIRST_TOKEN=200ms becomes
# --time-to-first-token 200ms (an empty value: the bare switch). The local inventory sets them per model.
SIM_ENV_PREFIX = "INFGW_SIM_"
VLLM_DEFAULT_MODEL = "facebook/opt-125m"


def _flag_name(token: str) -> str | None:
    """'--dtype=x' -> 'dtype', '-tp' -> 'tp'; None for a value."""
    if token.startswith("--") and len(token) > 2:
        return token[2:].split("=", 1)[0]
    if token.startswith("-") and len(token) > 1 and not token[1].isdigit():
        return token[1:].split("=", 1)[0]
    return None


def _lora_module(value: str) -> str:
    """vLLM's name=path form to the simulator's JSON form; JSON stays as it is."""
    if value.lstrip().startswith("{"):
        return value
    name, sep, path = value.partition("=")
    if not sep:
        return value  # not vLLM's form either: let the simulator reject it
    return json.dumps({"name": name, "path": path}, separators=(",", ":"))


def vllm_command_model(command: list[str]) -> list[str]:
    """`vllm serve MODEL ...` takes the model as a word; everything else in a command is vLLM's entrypoint."""
    if "serve" in command:
        rest = command[command.index("serve") + 1:]
        if rest and _flag_name(rest[0]) is None:
            return ["--model", rest[0], *rest[1:]]
        return rest
    flags = [i for i, word in enumerate(command) if _flag_name(word) and word not in ("-m", "-u")]
    return command[flags[0]:] if flags else []


def simulator_args(argv: list[str], env: dict) -> list[str]:
    """vLLM's OpenAI server arguments -> llm-d-inference-sim's, plus the per-model INFGW_SIM_* settings."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name = _flag_name(token)
        inline = "=" in token and name is not None
        if name in VLLM_DROPPED_WITH_VALUE:
            i += 1 if inline else 2
            continue
        if name in VLLM_DROPPED_SWITCHES:
            i += 1
            continue
        if name == "lora-modules":
            values = [token.split("=", 1)[1]] if inline else []
            i += 1
            while not inline and i < len(argv) and _flag_name(argv[i]) is None:
                values.append(argv[i])
                i += 1
            out += ["--lora-modules", *(_lora_module(v) for v in values)]
            continue
        out.append(token)
        i += 1
    given = {_flag_name(t) for t in out}
    for key in sorted(env):
        if key.startswith(SIM_ENV_PREFIX) and len(key) > len(SIM_ENV_PREFIX):
            flag = key[len(SIM_ENV_PREFIX):].lower().replace("_", "-")
            if flag in given:
                continue  # the container's own argument wins
            out += [f"--{flag}"] + ([env[key]] if env[key] != "" else [])
    if "model" not in given and not env.get("SIM_MODEL"):
        out += ["--model", VLLM_DEFAULT_MODEL]  # vLLM's own default when no model is named
    if "force-dummy-tokenizer" not in given:
        # Offline: without it the simulator asks huggingface.co which tokenizer the model has.
        out.append("--force-dummy-tokenizer")
    return out


def _vllm_translate(argv: list[str], env: dict, ctx: Context) -> list[str]:
    return simulator_args(argv, env)


def _vllm_env(env: dict, ctx: Context) -> dict:
    # The simulator reads POD_NAME/POD_NAMESPACE itself; HF_HUB_OFFLINE keeps any Hub lookup from leaving.
    return {"HF_HUB_OFFLINE": "1"}


# --------------------------------------------------------------------------- the custom metrics adapter

# Its upstream module is not served by the Go module proxy: hack/metrics_adapter stands in for it (the adapter's
# flags and Monitoring calls, on sigs.k8s.io/custom-metrics-apiserver), built from this repository's source and
# cached under the hash of that source.
ADAPTER_SOURCE = Path(__file__).resolve().parents[1] / "metrics_adapter"


def source_version(directory: Path) -> str:
    """The cache key build-tools.sh gives a tool built from this repository's source (its source_version)."""
    import hashlib  # pylint: disable=import-outside-toplevel

    files = ["go.mod", "go.sum"] + sorted(p.name for p in directory.glob("*.go") if not p.name.endswith("_test.go"))
    return "src-" + hashlib.sha256(b"".join((directory / f).read_bytes() for f in files)).hexdigest()[:12]


def _adapter_binary(match: re.Match, ctx: Context) -> Path:
    return ctx.bin_dir / f"metrics-adapter-{source_version(ADAPTER_SOURCE)}" / "metrics-adapter"


def _adapter_translate(argv: list[str], env: dict, ctx: Context) -> list[str]:
    # The GCP fake stands for monitoring.googleapis.com (the adapter's own flag for another endpoint).
    if any(a.split("=", 1)[0] == "--stackdriver-endpoint" for a in argv):
        return argv
    return argv + [f"--stackdriver-endpoint=http://{ctx.host_gateway}:{ctx.host_ports['gcp_fake']}/monitoring/"]


def _adapter_env(env: dict, ctx: Context) -> dict:
    # The node's metadata server (project, cluster, location, the Workload Identity token) is the GCP fake's;
    # no credentials file may take precedence over it.
    return {"GCE_METADATA_HOST": f"{ctx.host_gateway}:{ctx.host_ports['gcp_fake']}",
            "GOOGLE_APPLICATION_CREDENTIALS": ""}


# --------------------------------------------------------------------------- the table

GIE_IMAGE = r"^registry\.k8s\.io/gateway-api-inference-extension/{name}:(?P<tag>v[0-9][0-9A-Za-z.+-]*)$"

RUNNABLES: list[Runnable] = [
    Runnable(
        name="vllm",
        image=re.compile(r"^(docker\.io/)?vllm/vllm-openai(:[^@]+)?(@sha256:[0-9a-f]+)?$"),
        binary=tool_binary("llm-d-inference-sim", "llm-d-inference-sim", "LLMD_SIM_VERSION"),
        translate=_vllm_translate,
        extra_env=_vllm_env,
        keep_command=True,  # `vllm serve MODEL` carries the model; translate() reads it
        downward_env=True,  # the simulator's KV cache (--enable-kvcache) needs POD_IP (llm-d's manifests set it)
    ),
    Runnable(
        name="epp",
        image=re.compile(GIE_IMAGE.format(name="epp")),
        binary=tool_binary("gie", "epp"),
        api_access=True,
    ),
    Runnable(
        name="bbr",
        image=re.compile(GIE_IMAGE.format(name="bbr")),
        binary=tool_binary("gie", "bbr"),
        api_access=True,
    ),
    Runnable(
        name="metrics-adapter",
        image=re.compile(r"^gcr\.io/gke-release/custom-metrics-stackdriver-adapter:(?P<tag>v[0-9][0-9A-Za-z.+-]*)$"),
        binary=_adapter_binary,
        translate=_adapter_translate,
        extra_env=_adapter_env,
        api_access=True,  # its $KUBECONFIG stands for the in-cluster configuration (hack/metrics_adapter)
    ),
]


def find(image: str, table: list[Runnable] | None = None) -> tuple[Runnable, re.Match] | None:
    for runnable in RUNNABLES if table is None else table:
        if match := runnable.image.match(image or ""):
            return runnable, match
    return None


def process_argv(runnable: Runnable, command: list[str], args: list[str], env: dict, ctx: Context) -> list[str]:
    """The arguments after the binary, from the container's (expanded) command and args."""
    if runnable.keep_command:
        words = vllm_command_model(command) + args if runnable.name == "vllm" else command + args
    else:
        words = command[1:] + args if command else args
    return runnable.translate(words, env, ctx)


def kwok_image_regex(table: list[Runnable] | None = None) -> str:
    """One regular expression for every runnable image, for the kwok stages (gojq `test`, RE2 syntax)."""
    patterns = (re.sub(r"\(\?P<\w+>", "(?:", r.image.pattern) for r in (RUNNABLES if table is None else table))
    return "|".join(f"(?:{p})" for p in patterns)
