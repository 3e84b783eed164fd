# Targets named in README.md. Everything installs from the project's own files.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# The program's runtime, named by Pulumi.yaml: requirements.txt only (no test packages).
VENV := .venv
# Tests, lint and type-check: requirements-dev.txt (the runtime's pins plus the test tools).
DEV_VENV := .venv-dev
PY := $(VENV)/bin/python
DEV_PY := $(DEV_VENV)/bin/python
POLICY_VENV := policies/venv
# `pulumi login --local` below: a file backend in ~/.pulumi, no Pulumi Cloud account.
# The lab passphrase protects the homelab stack only. Production's secrets (its kubeconfig)
# need your own PULUMI_CONFIG_PASSPHRASE (or _FILE), or a stack created with another secrets
# provider (`secretsprovider:` in Pulumi.production.yaml); the program refuses the lab one too
# (cnistack/targeting.py).
LAB_PASSPHRASE := homelab-only-passphrase
LAB_SECRETS = export PULUMI_CONFIG_PASSPHRASE="$${PULUMI_CONFIG_PASSPHRASE:-$(LAB_PASSPHRASE)}"
OWN_SECRETS = if [ -z "$${PULUMI_CONFIG_PASSPHRASE}$${PULUMI_CONFIG_PASSPHRASE_FILE}" ] && \
	  ! grep -q '^secretsprovider:' Pulumi.$$stack.yaml; then \
	  echo "stack $$stack: set your own PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)," \
	    "or use another secrets provider; the lab passphrase is for the homelab only" >&2; exit 2; fi
# A pulumi CLI already on PATH (installed the usual way) is used as is; otherwise the engine
# built from Go modules by scripts/toolchain.sh.
TOOLCHAIN_ENV = command -v pulumi >/dev/null || eval "$$(bash scripts/toolchain.sh --print-env)"
# The Kubernetes plugin writes the cluster's kubeconfig, credentials included, to a new file in
# $TMPDIR at every run and never removes it (docs/real-engine.md, "Secrets"): each run below
# gets a private TMPDIR, removed when the run ends, however it ends.
PRIVATE_TMPDIR = export TMPDIR="$$(mktemp -d)" && trap 'rm -rf "$$TMPDIR"' EXIT

.PHONY: help install toolchain toolchain-for-tests homelab-prerequisites homelab preview test test-fast fuzz lint lint-analyzer typecheck typecheck-analyzer format render connectivity bench clean datapath-prerequisites verify

help:
	@echo "make homelab     check Docker and k3d, install, then pulumi up -s homelab (local backend)"
	@echo "make test        lint, type-check and every test, engine previews included"
	@echo "make test-fast   unit and mocks tests only (no engine, no fuzz campaign)"
	@echo "make fuzz        long hypothesis campaign over config, policy model, manifests"
	@echo "make preview     pulumi preview of both stacks with the policy pack"
	@echo "make render      write both stacks' manifests under out/"
	@echo "make connectivity  where homelab is wider than production; redraws docs/img/*.svg"
	@echo "make bench       connectivity and mocks benchmarks (benchmarks/)"
	@echo "make verify      both stacks' policies through their real datapaths (Linux, root)"

$(VENV)/.installed: requirements.txt analyzer/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt analyzer/pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_PY) -m pip install --quiet --upgrade pip
	$(DEV_PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(POLICY_VENV)/.installed: policies/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet -r policies/requirements.txt
	touch $@

install: $(VENV)/.installed $(DEV_VENV)/.installed $(POLICY_VENV)/.installed

toolchain:
	bash scripts/toolchain.sh

# What the engine tests need: the CLI, the language host, the real Kubernetes and Command
# plugins, the local control plane (etcd, kube-*, kwok) and the Cilium modules: the toolchain's
# first group (docs/real-engine.md, build times there). Warm: under a second.
toolchain-for-tests:
	bash scripts/toolchain.sh --group first

# What the datapath lab runs besides the toolchain (docs/datapath-lab.md): iproute2, iptables
# and ipset for K3s's Flannel + kube-router; clang/llc 19 for cilium-agent's BPF (Cilium 1.19);
# bpftool for the tests that check a stopped lab left no BPF program behind.
DATAPATH_DEBS := iproute2 iptables ipset bpftool clang-19 llvm-19
datapath-prerequisites:
	@missing=$$(for p in $(DATAPATH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# ADR-013's "verify" step before merge: each stack rendered, applied in the datapath lab with
# its own enforcer, probed with real packets and compared with the analyzer (exit 1 on any
# difference).
verify: install datapath-prerequisites toolchain
	$(PY) -m cnistack verify --stack homelab
	$(PY) -m cnistack verify --stack production

# Docker running and k3d present, checked before anything is built.
homelab-prerequisites:
	@bash scripts/check_homelab_prerequisites.sh

# The main job: the homelab cluster on this laptop (needs Docker and k3d on PATH).
homelab: homelab-prerequisites
	@$(MAKE) --no-print-directory install
	command -v pulumi >/dev/null || bash scripts/toolchain.sh --group first
	$(PRIVATE_TMPDIR) && $(TOOLCHAIN_ENV) && $(LAB_SECRETS) && pulumi login --local >/dev/null && \
	  (pulumi stack select homelab 2>/dev/null || pulumi stack init homelab) && \
	  pulumi up -s homelab --yes --policy-pack policies --policy-pack-config policies/config/homelab.json

preview: $(VENV)/.installed $(POLICY_VENV)/.installed
	command -v pulumi >/dev/null || bash scripts/toolchain.sh --group first
	$(PRIVATE_TMPDIR) && $(TOOLCHAIN_ENV) && pulumi login --local >/dev/null && \
	  for stack in homelab production; do ( \
	    if [ $$stack = homelab ]; then $(LAB_SECRETS); else $(OWN_SECRETS); fi && \
	    (pulumi stack select $$stack 2>/dev/null || pulumi stack init $$stack) && \
	    pulumi preview -s $$stack --policy-pack policies --policy-pack-config policies/config/$$stack.json \
	  ) || exit 1; done

# The analyzer (analyzer/, its own project and config) and the rest are separate targets.
lint: lint-analyzer
	$(DEV_VENV)/bin/ruff check --extend-exclude analyzer .
	$(DEV_VENV)/bin/ruff format --check --extend-exclude analyzer .

lint-analyzer: $(DEV_VENV)/.installed
	cd analyzer && ../$(DEV_VENV)/bin/ruff check . && ../$(DEV_VENV)/bin/ruff format --check .

format: $(DEV_VENV)/.installed
	$(DEV_VENV)/bin/ruff format .
	$(DEV_VENV)/bin/ruff check --fix .

typecheck: typecheck-analyzer
	$(DEV_VENV)/bin/mypy

typecheck-analyzer: $(DEV_VENV)/.installed
	cd analyzer && ../$(DEV_VENV)/bin/mypy

# Under a minute on 2 idle cores: the engine runs and the fixed-seed fuzz campaigns (marked slow)
# are left to `make test`.
test-fast: install
	$(DEV_PY) -m pytest -m "not engine and not slow"

# The fixed-seed slice of tests/test_fuzz.py runs in every `make test`; this is the long, random
# campaign (FUZZ_EXAMPLES per property), with the count of cases run per property.
FUZZ_EXAMPLES ?= 5000
fuzz: $(DEV_VENV)/.installed
	HYPOTHESIS_PROFILE=campaign FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(DEV_PY) -m pytest tests/test_fuzz.py \
	  -p no:cacheprovider --hypothesis-show-statistics -q

# The README's test command; .ci/run calls it. Builds the toolchain when its cache is missing,
# overlapped with the tests (docs/real-engine.md, "Build times"): the late group (the Cilium
# oracles, the datapath enforcers) builds at nice 19 in the background while the first group
# builds and every test that needs only the first group runs; then the oracle and datapath tests.
# Exit status: the first failure's. Nothing is skipped: a missing piece fails its phase.
test:
	bash scripts/toolchain.sh --group late --background
	@s=0; \
	$(MAKE) --no-print-directory install lint typecheck datapath-prerequisites toolchain-for-tests && \
	  echo "make test: phase 1 (all but the oracle and datapath tests) at $$SECONDS s" && \
	  $(DEV_PY) -m pytest -m "not (oracle or datapath)" || s=$$?; \
	echo "make test: phase 1 ended at $$SECONDS s (status $$s); waiting for the late group"; \
	bash scripts/toolchain.sh --group late && \
	  echo "make test: phase 2 (oracle and datapath tests) at $$SECONDS s" && \
	  $(DEV_PY) -m pytest -m "oracle or datapath" || { t=$$?; [ $$s -ne 0 ] || s=$$t; }; \
	echo "make test: ended at $$SECONDS s (status $$s)"; \
	exit $$s

render: $(VENV)/.installed
	$(PY) -m cnistack render --stack homelab --out out/homelab
	$(PY) -m cnistack render --stack production --out out/production

# Also redraws the README's pictures (docs/img/*.svg; needs Graphviz `dot`).
connectivity: $(VENV)/.installed
	$(PY) -m cnistack connectivity diff stack:production stack:homelab
	mkdir -p out
	for stack in homelab production; do \
	  $(PY) -m cnistack connectivity list --stack $$stack --format dot -o out/connectivity-$$stack.dot && \
	  dot -Tsvg out/connectivity-$$stack.dot -o docs/img/connectivity-$$stack.svg || exit 1; \
	done
	$(PY) -m cnistack connectivity diff stack:production stack:homelab --format dot -o out/connectivity-diff.dot
	dot -Tsvg out/connectivity-diff.dot -o docs/img/connectivity-diff.svg

# bench_program runs the program under the tests' mocks (tests/conftest.py): the dev venv.
bench: install
	$(DEV_PY) benchmarks/bench_program.py
	$(DEV_PY) benchmarks/bench_connectivity.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
