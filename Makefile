# gke_ai.inference_gateway: every entry point a person or CI needs.
#   make demo    set up, bring up the local environment, run site.yml, print the status report and one answer per route
#   make test    every test: lint, sanity, unit, integration, molecule, environment lifecycle
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
LOCAL := .local
# Where the local environment keeps its state (env.sh, kubeconfig); localenv.py honours the same variable.
ENV_DIR := $(or $(GKE_AI_LOCAL_DIR),$(CURDIR)/.local)
# The tests' own environment, beside the one `make demo` (or a user) keeps in .local: `make test` neither needs
# nor touches that one, so it passes whatever runs there. Stop it by hand with
# `GKE_AI_LOCAL_DIR=.local/test make local-down` (the lifecycle test, last in `make test`, does).
TEST_ENV_DIR := $(CURDIR)/$(LOCAL)/test
IN_TEST_ENV := GKE_AI_LOCAL_DIR=$(TEST_ENV_DIR)
COLLECTION_LINK := $(LOCAL)/collections/ansible_collections/gke_ai/inference_gateway
SITE_PACKAGES = $(shell $(VPY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(LOCAL)/collections
export PYTHONPATH := $(CURDIR)/$(LOCAL)/collections
export PATH := $(ENV_DIR)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help
help:
	@echo "make demo          set up everything, run site.yml on the local environment, print status and answers"
	@echo "make test          every test (lint, sanity, unit, awx-test, integration, molecule, lifecycle)"
	@echo "make ee-context    the AWX execution environment's build context, linted (.local/ee/context)"
	@echo "make local-up      start the local environment (idempotent); then: source .local/env.sh"
	@echo "make local-down    stop it: no process, port or data left behind"
	@echo "make local-status  one line per component, with memory use"
	@echo "make tools         build the pinned Go tools into the cache (skipped when present)"
	@echo "make bench         benchmarks: no-op helm_oci_chart vs kubernetes.core.helm; the walkthrough's commands vs site.yml"
	@echo "make loadtest      the load test and benchmark report (playbooks/loadtest.yml) on the local environment"
	@echo "make loadtest-venv inference-perf's Python 3.12 virtualenv and offline tokenizer, in the tool cache"

# ---------------------------------------------------------------- set-up
$(VENV)/.installed: requirements.txt
	@echo "[make] creating $(VENV) from requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed $(COLLECTION_LINK)

# The repository root is the collection; Ansible and pytest find it through this link.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

.PHONY: tools
tools:
	bash hack/localcluster/build-tools.sh

# inference-perf 0.7.0 needs Python >= 3.12 (pyenv's), so it lives in its own pinned virtualenv, with a small offline
# tokenizer, in the tool cache beside the Go tools (built once, shared by worktrees; about 80 s and 790 MB).
.PHONY: loadtest-venv
loadtest-venv:
	bash hack/loadtest/build-inference-perf.sh

# Debian's Chromium, for the test that renders the load test report headless.
.PHONY: browser
browser:
	@command -v chromium >/dev/null || { echo "[make] installing Debian's chromium (the HTML report test renders in it)"; \
	  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }

# ---------------------------------------------------------------- benchmarks (not tests)
.PHONY: bench
bench: local-up
	source $(ENV_DIR)/env.sh && $(VPY) hack/bench/helm_noop.py
	source $(ENV_DIR)/env.sh && $(VPY) hack/bench/walkthrough_vs_site.py

# ---------------------------------------------------------------- local environment
# ---------------------------------------------------------------- load test
# The walkthrough's hey run through the InferencePool route and straight to the model Service (A/B), with the report
# in loadtest-results/. Pass ansible-playbook options with ARGS='-e ...' (ARGS='-e loadtest_tool=inference_perf').
.PHONY: loadtest
loadtest: local-up loadtest-venv
	source $(ENV_DIR)/env.sh && $(VENV)/bin/ansible-playbook playbooks/loadtest.yml $(ARGS)

# ---------------------------------------------------------------- demo
.PHONY: demo
demo: local-up
	source $(ENV_DIR)/env.sh && $(VENV)/bin/ansible-playbook site.yml
	source $(ENV_DIR)/env.sh && $(VENV)/bin/ansible-playbook playbooks/status.yml
	source $(ENV_DIR)/env.sh && $(VENV)/bin/ansible-playbook playbooks/smoke.yml

.PHONY: local-up local-up-second local-down local-status
local-up: venv tools
	$(VPY) hack/localcluster/localenv.py up

# A second cluster in the environment (many-cluster runs): make local-up first.
local-up-second: venv
	$(VPY) hack/localcluster/localenv.py up-second

local-down: venv
	$(VPY) hack/localcluster/localenv.py down

local-status: venv
	$(VPY) hack/localcluster/localenv.py status

# ---------------------------------------------------------------- AWX and the execution environment
# The EE's build context in .local/ee/context (collection tarball, ansible-builder create, hadolint); no container
# runtime needed. Then: podman build -t gke-ai-ee:0.1.0 .local/ee/context (docs/awx.md).
$(VENV)/.ee-lint-installed: ee/lint-requirements.txt $(VENV)/.installed
	$(VPY) -m pip install --quiet -r ee/lint-requirements.txt
	touch $@

.PHONY: ee-context awx-test
ee-context: venv $(VENV)/.ee-lint-installed
	bash ee/build-context.sh

# The EE context and lint, and playbooks/awx_configure.yml against the AWX fake (hack/awx_fake); no cluster needed.
awx-test: venv $(VENV)/.ee-lint-installed
	$(VPY) -m pytest -q tests/awx

# ---------------------------------------------------------------- tests
.PHONY: test lint sanity unit integration molecule lifecycle
test: venv tools loadtest-venv lint sanity unit awx-test integration molecule lifecycle
	@echo "[make] all tests passed"

lint: venv
	$(VENV)/bin/ansible-lint

sanity: venv
	bash hack/sanity.sh

unit: venv browser
	$(VPY) -m pytest -q tests/unit
	cd hack/dataplane && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off go test ./...
	cd hack/metrics_adapter && GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 go test -trimpath ./...

# Test files spread over INFGW_TEST_WORKERS (default 2) local environments at once; INFGW_TEST_WORKERS=1 runs them
# one after the other in the tests' environment alone.
integration: venv tools loadtest-venv
	$(IN_TEST_ENV) $(VPY) hack/run_integration.py

# The default scenario against the tests' environment, once per GIE version profile (v1.5.0: 280 s measured on the loaded shared machine).
molecule: venv tools
	$(IN_TEST_ENV) $(VPY) hack/localcluster/localenv.py up
	source $(TEST_ENV_DIR)/env.sh && for profile in v1.1.0 v0.4.0 v1.5.0; do \
	  echo "[make] molecule test -s default (profile $$profile)"; \
	  INFGW_PROFILE=$$profile INFGW_NAMESPACE=molecule-$${profile//./-} $(VENV)/bin/molecule test -s default || exit 1; \
	done

# For users with Docker; never run on the project's machines, which have none.
.PHONY: molecule-kind
molecule-kind: venv
	@if command -v kind >/dev/null && command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  $(VENV)/bin/molecule test -s kind; \
	else \
	  echo "[make] SKIPPED molecule -s kind: needs kind and a running Docker engine (not on this machine)"; \
	fi

# Runs last: it takes the environment down and proves nothing is left behind.
lifecycle: venv tools
	$(IN_TEST_ENV) $(VPY) -m pytest -q tests/lifecycle
