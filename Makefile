# Arena on-prem operator. `make demo` shows the product; `make test` installs everything and runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_VERSION := 24.21.0
export NODE_VERSION
TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/node/bin:$(CURDIR)/node_modules/.bin:$(PATH)
NODE := $(TOOLS)/node/bin/node
TSX := $(NODE) --import tsx

UNIT_TESTS := 'operator/**/*.test.ts' 'runtime/**/*.test.ts' 'e2e/cluster/*.test.ts' 'e2e/node/*.test.ts' 'e2e/realnode/*.test.ts' 'e2e/chaos/*.test.ts' 'bundle/**/*.test.ts' 'images/**/*.test.ts'
E2E_TESTS := 'e2e/*.e2e.test.ts'
# Cluster tests start control planes of their own; two at a time keeps a 2-core machine responsive.
TEST_CONCURRENCY ?= 2
CLUSTER ?= dev
VERSION ?= $(shell sed -n 's/^  "version": "\(.*\)",/\1/p' package.json)
IMAGES ?=
PYTHON_LOCK_HASH := $(shell sha256sum python/requirements.lock | cut -c1-16)
VENV := $(CURDIR)/.venv
export ARENA_PYTHON := $(VENV)/bin/python

.PHONY: help setup node deps python python-lock conformance toolchain crds crds-check lint typecheck test test-unit test-e2e test-real-node chaos bench-compare demo cluster-up cluster-down bundle images images-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

node: $(TOOLS)/node/.installed-$(NODE_VERSION)
$(TOOLS)/node/.installed-$(NODE_VERSION):
	bash scripts/ensure-node.sh

deps: node node_modules/.installed
node_modules/.installed: package-lock.json | node
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

python: .venv/.installed-$(PYTHON_LOCK_HASH)
.venv/.installed-$(PYTHON_LOCK_HASH): python/requirements.lock
	bash scripts/ensure-python.sh

python-lock: ## re-pin python/requirements.lock (with hashes) from python/requirements.in, using uv from PyPI
	bash scripts/python-lock.sh

toolchain: ## build (or find cached) the control plane (kube-apiserver, etcd, ..., helm3) and the real node (kubelet, kube-proxy, runc, CoreDNS, pause; containerd from Debian)
	bash e2e/toolchain/build.sh >/dev/null
	nice -n 10 bash e2e/toolchain/build-node.sh >/dev/null

setup: deps python toolchain ## install Node, npm packages, the Python environment and the control-plane and real-node binaries

crds: deps python ## regenerate the platform's algorithm registry, crds/, the chart's CRD copies and its values schema
	$(TSX) operator/api/platform/generate-registry.ts
	$(TSX) operator/api/generate.ts
	$(TSX) bundle/chart-sync.ts

crds-check: deps python ## fail when a generated file differs from what its source (the schema, the pinned platform package) generates
	$(TSX) operator/api/platform/generate-registry.ts --check
	$(TSX) operator/api/generate.ts --check
	$(TSX) bundle/chart-sync.ts --check

typecheck: deps
	tsc --noEmit

lint: deps python typecheck ## tsc --noEmit, eslint, and ruff + mypy --strict on the project's Python
	eslint --max-warnings=0 .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $$(git ls-files --cached --others --exclude-standard '*.py')

test: setup lint crds-check ## install everything and run every test (unit and cluster)
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" ARENA_NODE_BIN_DIR="$$(bash e2e/toolchain/build-node.sh)" \
	  $(NODE) --import tsx --test --test-reporter=spec --test-concurrency=$(TEST_CONCURRENCY) $(UNIT_TESTS) $(E2E_TESTS)

test-unit: deps python ## unit tests only (no cluster)
	$(NODE) --import tsx --test --test-reporter=spec $(UNIT_TESTS)

test-e2e: setup ## cluster tests only
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" ARENA_NODE_BIN_DIR="$$(bash e2e/toolchain/build-node.sh)" \
	  $(NODE) --import tsx --test --test-reporter=spec --test-concurrency=$(TEST_CONCURRENCY) $(E2E_TESTS)

# Not part of `make test`: it needs the images (the runtime's costs about 13 minutes cold; see e2e/realnode/README.md).
test-real-node: setup images ## the product on a real node: the built images imported into its containerd, the chart installed, an experiment trained there
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" ARENA_NODE_BIN_DIR="$$(bash e2e/toolchain/build-node.sh)" \
	  $(NODE) --import tsx --test --test-reporter=spec e2e/product-on-real-node.check.ts

chaos: setup ## the chaos suite: operator kills, leader failover, control-plane restarts, floods, watch cut, report partition, full volume; one line of figures per scenario (ARGS='--only operator-kills --scale 0.2 --seed 7')
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" $(TSX) e2e/chaos/run.ts $(ARGS)

# Not part of `make test` or `make setup`: it alone needs Kueue (built on first use by build-kueue.sh, minutes).
bench-compare: deps python ## the same gang workloads through Kueue and our operator on one control plane and 1,000 simulated GPU nodes; admissions/s, latency, API requests, memory (ARGS='--scale 0.2 --only one-pod')
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" ARENA_KUEUE_DIR="$$(nice -n 10 bash e2e/toolchain/build-kueue.sh)" \
	  $(TSX) e2e/bench/compare.bench.ts $(ARGS)

conformance: setup ## every corpus manifest through the platform's CLI and every layer of ours; prints the verdicts and the deliberate disagreements
	ARENA_BIN_DIR="$$(bash e2e/toolchain/build.sh)" $(NODE) --import tsx --test --test-reporter=spec e2e/conformance.e2e.test.ts

demo: setup ## bring up a local cluster, the operator and a real worker node; train an agent with AgileRL, serve it and play it (ARGS=--keep)
	$(TSX) e2e/demo.ts $(ARGS)

bundle: setup ## build dist/arena-train-$(VERSION).tar.gz (IMAGES='--image operator=REF@sha256:… --image runtime=REF@sha256:…', or IMAGES='--with-images dist/images' after make images)
	PATH="$$(bash e2e/toolchain/build.sh):$$PATH" $(TSX) bundle/build.ts --version $(VERSION) $(IMAGES)

images: deps python ## build the operator and runtime images without Docker: OCI archives and images.json in dist/images/ (IMAGE_ARGS='runtime --compression zstd')
	bash scripts/ensure-image-tools.sh
	nice -n 10 $(TSX) images/build.ts --version $(VERSION) --out dist/images $(IMAGE_ARGS)

images-check: images ## run each built image's entrypoint from its archive in a chroot, as its user on a read-only root
	$(NODE) --import tsx --test --test-reporter=spec images/built-images.check.ts

cluster-up: setup ## start a local control plane with simulated GPU nodes (CLUSTER=name)
	$(TSX) e2e/cluster/cli.ts up --name $(CLUSTER)

cluster-down: deps ## stop it and remove its data
	$(TSX) e2e/cluster/cli.ts down --name $(CLUSTER)

clean: ## remove local clusters, node_modules and the project's Node (the binary cache stays)
	-$(TSX) e2e/cluster/cli.ts down --name $(CLUSTER) 2>/dev/null
	rm -rf .cluster node_modules .tools
