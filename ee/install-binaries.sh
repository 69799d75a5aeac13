#!/usr/bin/env bash
# Install helm and kubectl into /usr/local/bin of the execution environment, from their official release
# URLs, each checked against a pinned sha256 (upstream's published .sha256sum/.sha256 values; a digest fetched
# from the same host would prove transit integrity only). Versions: hack/localcluster/versions.env
# (HELM_VERSION, K8S_VERSION), the ones the collection's tests run; tests/awx/test_ee.py keeps them equal.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBECTL_VERSION=v1.35.4

case "$(uname -m)" in
  x86_64)
    arch=amd64
    helm_sha256=1e4ab49e429626cf6c6958d914248b78c9730803c2751b87627e171dc800e7bb
    kubectl_sha256=b529430df69a688fd61b64ad2299edb5fd71cb58be2a4779dba624c7d3510efd
    ;;
  aarch64)
    arch=arm64
    helm_sha256=f14e804dfee240f55525b667488fe9adca349e63e00c9af634c0beb1421ac310
    kubectl_sha256=6a5a4cc4e396d7626a7a693a3044b51c75520f81db30fe6816c2554e53be336f
    ;;
  *)
    echo "install-binaries.sh: no pinned helm/kubectl digests for $(uname -m)" >&2
    exit 1
    ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -fsSL --retry 3 -o "$work/helm.tar.gz" "https://get.helm.sh/helm-${HELM_VERSION}-linux-${arch}.tar.gz"
echo "${helm_sha256}  $work/helm.tar.gz" | sha256sum --check --strict -
tar -xzf "$work/helm.tar.gz" -C "$work" "linux-${arch}/helm"
install -m 0755 "$work/linux-${arch}/helm" /usr/local/bin/helm

curl -fsSL --retry 3 -o "$work/kubectl" "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"
echo "${kubectl_sha256}  $work/kubectl" | sha256sum --check --strict -
install -m 0755 "$work/kubectl" /usr/local/bin/kubectl

helm version --short
kubectl version --client
