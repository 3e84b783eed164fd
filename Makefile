# Targets named in README.md. Everything installs from the project's own files.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
POLICY_VENV := policies/venv
# `pulumi login --local` below: a file backend in ~/.pulumi, no Pulumi Cloud account.
# Set your own passphrase for the stacks' secrets; this default is for a lab only.
export PULUMI_CONFIG_PASSPHRASE ?= homelab-only-passphrase
# A pulumi CLI already on PATH (installed the usual way) is used as is; otherwise the engine
# built from Go modules by scripts/toolchain.sh.
TOOLCHAIN_ENV = command -v pulumi >/dev/null || eval "$$(bash scripts/toolchain.sh --print-env)"

.PHONY: help install toolchain toolchain-for-tests homelab preview test test-fast lint typecheck format render connectivity bench clean

help:
	@echo "make homelab     install everything, then pulumi up -s homelab (local backend)"
	@echo "make test        lint, type-check and every test, engine previews included"
	@echo "make test-fast   unit and mocks tests only (no engine)"
	@echo "make preview     pulumi preview of both stacks with the policy pack"
	@echo "make render      write both stacks' manifests under out/"
	@echo "make connectivity  where homelab is wider than production"
	@echo "make bench       connectivity and mocks benchmarks (benchmarks/)"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(POLICY_VENV)/.installed: policies/requirements.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet -r policies/requirements.txt
	touch $@

install: $(VENV)/.installed $(POLICY_VENV)/.installed

toolchain:
	bash scripts/toolchain.sh

# What the engine tests need: the CLI, the language host, the real Kubernetes and Command
# plugins, the local control plane (etcd, kube-*, kwok) and the Cilium module
# (docs/real-engine.md, build times there). Warm: under a second.
toolchain-for-tests:
	bash scripts/toolchain.sh

# The main job: the homelab cluster on this laptop (needs Docker and k3d on PATH).
homelab: install
	command -v pulumi >/dev/null || bash scripts/toolchain.sh
	$(TOOLCHAIN_ENV) && pulumi login --local >/dev/null && \
	  (pulumi stack select homelab 2>/dev/null || pulumi stack init homelab) && \
	  pulumi up -s homelab --yes --policy-pack policies --policy-pack-config policies/config/homelab.json

preview: install
	command -v pulumi >/dev/null || bash scripts/toolchain.sh
	$(TOOLCHAIN_ENV) && pulumi login --local >/dev/null && \
	  for stack in homelab production; do \
	    (pulumi stack select $$stack 2>/dev/null || pulumi stack init $$stack) && \
	    pulumi preview -s $$stack --policy-pack policies --policy-pack-config policies/config/$$stack.json || exit 1; \
	  done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test-fast: install
	$(PY) -m pytest -m "not engine"

# The README's test command; .ci/run calls it. Builds the engine when its cache is missing.
test: install lint typecheck toolchain-for-tests
	$(PY) -m pytest

render: $(VENV)/.installed
	$(PY) -m cnistack render --stack homelab --out out/homelab
	$(PY) -m cnistack render --stack production --out out/production

connectivity: $(VENV)/.installed
	$(PY) -m cnistack connectivity diff stack:production stack:homelab

bench: install
	$(PY) benchmarks/bench_program.py
	$(PY) benchmarks/bench_connectivity.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
