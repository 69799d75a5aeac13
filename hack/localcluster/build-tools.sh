#!/usr/bin/env bash
# Build the local environment's Go tools from the pinned modules in tools/*/go.mod.
# Binaries land in "$GKE_AI_CACHE/bin/<tool>-<version>/" and a tool whose directory
# is complete is never rebuilt, so a warm machine pays nothing here.
#
# Usage: build-tools.sh [tool ...]     (default: every tool)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

GKE_AI_CACHE=${GKE_AI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gke-ai-infgw}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Print a heartbeat while a long build runs, so CI logs show progress.
with_heartbeat() {
    local label=$1; shift
    local start=$SECONDS next=$((SECONDS + 60))
    "$@" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 2
        if (( SECONDS >= next )) && kill -0 "$pid" 2>/dev/null; then
            log "$label: still building ($((SECONDS - start))s)"
            next=$((next + 60))
        fi
    done
    wait "$pid"
}

# build_tool NAME VERSION MODULE_DIR LDFLAGS OUTPUT=PACKAGE... | PACKAGE...
# A bare PACKAGE is built with the other bare ones in one invocation, named after its last path element.
build_tool() {
    local name=$1 version=$2 moddir=$here/tools/$3 ldflags=$4
    shift 4
    local dest=$GKE_AI_CACHE/bin/$name-$version
    if [[ -f $dest/.complete ]]; then
        log "$name $version: cached in $dest"
        return 0
    fi
    log "$name $version: building into $dest (cold builds take minutes; progress every minute)"
    local tmp=$dest.partial
    rm -rf "$tmp" && mkdir -p "$tmp"
    local start=$SECONDS spec out pkg
    local together=()  # packages given without OUTPUT=: one `go build -o DIR/` compiles them in parallel
    for spec in "$@"; do
        if [[ $spec != *=* ]]; then together+=("$spec"); continue; fi
        out=${spec%%=*} pkg=${spec#*=}
        (cd "$moddir" && with_heartbeat "$name/$out" go build -trimpath -ldflags "$ldflags" -o "$tmp/$out" "$pkg")
    done
    if (( ${#together[@]} )); then
        (cd "$moddir" && with_heartbeat "$name" go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${together[@]}")
    fi
    touch "$tmp/.complete"
    rm -rf "$dest" && mv "$tmp" "$dest"
    log "$name $version: built in $((SECONDS - start))s"
}

check_pin() {  # the go.mod must require the version versions.env names
    local moddir=$here/tools/$1 module=$2 version=$3
    if ! grep -qE "^[[:space:]]*(require[[:space:]]+)?$module $version( // indirect)?\$" "$moddir/go.mod"; then
        echo "tools/$1/go.mod does not require $module $version (versions.env); update it with:" >&2
        echo "  cd $moddir && GOFLAGS=-mod=mod go get -tool $module@$version" >&2
        exit 1
    fi
}

k8s() {
    check_pin k8s k8s.io/kubernetes "$K8S_VERSION"
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version
    # The module zips carry a v0.0.0 placeholder; stamp the real version so that
    # kubectl version, helm's .Capabilities.KubeVersion and chart kubeVersion checks see it.
    local ld="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    ld+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
    ld+=" -X $c.gitVersion=$K8S_VERSION -X $c.gitMajor=1 -X $c.gitMinor=$minor"
    build_tool kubernetes "$K8S_VERSION" k8s "$ld" \
        kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
        kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
        kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
        kubectl=k8s.io/kubernetes/cmd/kubectl
}

etcd() {
    check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
    build_tool etcd "$ETCD_VERSION" etcd "-s -w" etcd=go.etcd.io/etcd/server/v3
}

kwok() {
    check_pin kwok sigs.k8s.io/kwok "$KWOK_VERSION"
    build_tool kwok "$KWOK_VERSION" kwok "-s -w" kwok=sigs.k8s.io/kwok/cmd/kwok
}

helm() {
    check_pin helm helm.sh/helm/v3 "$HELM_VERSION"
    local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    build_tool helm "$HELM_VERSION" helm "$ld" helm=helm.sh/helm/v3/cmd/helm
}

registry() {
    check_pin registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION"
    local ld="-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
    build_tool registry "$REGISTRY_VERSION" registry "$ld" registry=github.com/distribution/distribution/v3/cmd/registry
}

# The local data plane's upstream parts. Each is built from tools/<tool>/go.mod, which requires the upstream
# module at the version named here: the Go module proxy refuses /@v/list for these modules, so `go install
# module@version` (which asks for the list) cannot be used, while a go.mod with named versions works.
sim() {
    check_pin sim github.com/llm-d/llm-d-inference-sim "$LLMD_SIM_VERSION"
    build_tool llm-d-inference-sim "$LLMD_SIM_VERSION" sim "-s -w" \
        github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim
}

gie() {  # the endpoint picker and body-based router of every GIE version with a tools/gie-<version>/go.mod
    local version
    for version in $GIE_VERSIONS; do
        [[ -f $here/tools/gie-$version/go.mod ]] || continue
        check_pin "gie-$version" sigs.k8s.io/gateway-api-inference-extension "$version"
        build_tool gie "$version" "gie-$version" "-s -w" \
            sigs.k8s.io/gateway-api-inference-extension/cmd/epp sigs.k8s.io/gateway-api-inference-extension/cmd/bbr
    done
}

hey() {
    check_pin hey github.com/rakyll/hey "$HEY_VERSION"
    build_tool hey "$HEY_VERSION" hey "-s -w" github.com/rakyll/hey
}

# The metrics adapter stand-in is this repository's own Go source (hack/metrics_adapter), cached by the hash of
# its files (hack/pod_runner/images.py source_version computes the same); built after k8s, whose compiled API
# server packages it shares (its go.mod pins them to the k8s build's versions).
source_version() {  # src-<first 12 hex of sha256 over go.mod, go.sum and the non-test .go files in name order>
    (cd "$1" && export LC_ALL=C && cat go.mod go.sum $(printf '%s\n' *.go | grep -v '_test\.go$' | sort) \
        | sha256sum | cut -c1-12 | sed 's/^/src-/')
}

metrics-adapter() {
    local dir=$here/../metrics_adapter
    build_tool metrics-adapter "$(source_version "$dir")" ../../metrics_adapter "-s -w" metrics-adapter=.
}

# The gateway data plane (hack/dataplane, ours): keyed by a hash of its sources, go.mod and go.sum, so that any change
# to them builds a new binary and nothing else does. localenv.py computes the same key (dataplane_source_hash).
dataplane_hash() {
    local dir=$here/../dataplane f
    {
        for f in go.mod go.sum $(cd "$dir" && LC_ALL=C ls -1 -- *.go | grep -v '_test\.go$'); do
            printf '%s\0' "$f"
            cat "$dir/$f"
        done
    } | sha256sum | cut -c1-16
}

dataplane() {
    local version
    version=$(dataplane_hash)
    build_tool gateway-dataplane "$version" ../../dataplane "-s -w" gateway-dataplane=.
}

tools=("$@")
(( ${#tools[@]} )) || tools=(etcd kwok helm registry k8s metrics-adapter sim gie hey dataplane)
for t in "${tools[@]}"; do
    case $t in
        k8s|etcd|kwok|helm|registry|metrics-adapter|sim|gie|hey|dataplane) "$t" ;;
        *) echo "unknown tool: $t (known: k8s etcd kwok helm registry metrics-adapter sim gie hey dataplane)" >&2; exit 2 ;;
    esac
done
