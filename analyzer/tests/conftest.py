"""The analyzer's tests (analyzer/tests/): no Pulumi, no cnistack, shared values in factories.py.

This folder has no __init__.py: with pytest's default import mode it is put on sys.path, so test
modules import `factories` and the oracle harness `cilium_oracle` by their plain names, from
the repository root (`pytest`) as from analyzer/ (`pytest` there reads analyzer/pyproject.toml).
"""
