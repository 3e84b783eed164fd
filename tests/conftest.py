"""Shared test fixtures: run the real __main__.py under recording Pulumi mocks.

Each call of :func:`run_program` is a fresh program (STYLE.md principle 7): new mocks,
new monitor, config set from the committed stack file the way the engine passes it.
"""

from __future__ import annotations

import json
import logging
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

from cnistack.cilium_upgrade import ClusterFacts
from cnistack.config import ExistingCluster, StackConfig
from components import cluster_facts

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n# fake k3d kubeconfig\n"


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registered resource; k3d's kubeconfig command 'prints' a kubeconfig; the
    stack's reference to itself (components/stack_state.py) reads `stack_outputs`."""

    def __init__(self, stack_outputs: dict[str, Any] | None = None) -> None:
        self.registrations: list[Registration] = []
        self.stack_outputs = stack_outputs or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registrations.append(Registration(args.typ, args.name, args.inputs, args.provider))
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            state = {**state, "outputs": self.stack_outputs, "secret_output_names": []}
        if args.typ == "command:local:Command":
            state["stdout"] = FAKE_KUBECONFIG if "kubeconfig get" in args.inputs["create"] else ""
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """Keeps the resource options the engine would see (protect, replaceOnChanges, ...)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.options: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.options[request.name] = {
            "protect": request.protect,
            "retainOnDelete": request.retainOnDelete,
            "replaceOnChanges": list(request.replaceOnChanges),
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "ignoreChanges": list(request.ignoreChanges),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            "dependencies": list(request.dependencies),
            "parent": request.parent,
            # Resource hooks bound to it, by phase: {"before_create": [hook name], ...}.
            "hooks": {
                phase: list(getattr(request.hooks, phase))
                for phase in ("before_create", "before_update", "after_create", "after_update")
                if getattr(request.hooks, phase)
            },
        }
        return super().RegisterResource(request)


class WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class ProgramRun:
    registrations: list[Registration]
    exports: dict[str, Any]
    warnings: list[str]
    namespace: dict[str, Any]
    error: Exception | None = None

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        (found,) = self.of_type(type_)
        return found

    def named(self, name: str) -> Registration:
        (found,) = [r for r in self.registrations if r.name == name]
        return found


def engine_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Project defaults + stack file + overrides, encoded as the engine hands them over."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {
        f"{PROJECT}:{key}": decl["default"]
        for key, decl in project.get("config", {}).items()
        if "default" in decl
    }
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        values.update(yaml.safe_load(stack_file.read_text()).get("config") or {})
    for key, value in (overrides or {}).items():
        if value is None:
            values.pop(f"{PROJECT}:{key}", None)
        else:
            values[f"{PROJECT}:{key}"] = value

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value)

    return {key: encode(value) for key, value in values.items()}


def secret(value: Any) -> dict[str, Any]:
    """How a secret input reaches the engine: wrapped with Pulumi's secret signature."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def resolve(output: Any) -> tuple[Any, bool]:
    """The value of an Output and whether it is secret, after the program settled."""
    out = pulumi.Output.from_input(output)
    return _sync_await(out.future(with_unknowns=True)), _sync_await(out.is_secret())


USER_KUBECONFIG = Path(__file__).resolve().parent / "data" / "kubeconfig-gtt-prod.yaml"


@pytest.fixture(autouse=True)
def _user_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    # The targeting check (cnistack/targeting.py) reads $KUBECONFIG when a stack names only a
    # context: point it at a test double, never at the machine's own kubeconfig.
    monkeypatch.setenv("KUBECONFIG", str(USER_KUBECONFIG))


# TEST DOUBLE of what components.cluster_facts reads from an existing cluster before any resource
# (its /version and Helm's Secrets): the committed stacks' clusters do not exist here. The real
# reader runs against the real local control plane in tests/test_engine_upgrade.py.
CLUSTER_FACTS_DOUBLE = ClusterFacts(server_version="v1.35.8", revisions=())


@pytest.fixture(autouse=True)
def _cluster_facts_double(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_facts, "read_cluster_facts", _facts_of_the_double)


def _facts_of_the_double(config: StackConfig) -> ClusterFacts | None:
    return CLUSTER_FACTS_DOUBLE if isinstance(config.cluster, ExistingCluster) else None


def run_under_mocks(
    stack: str,
    body: Callable[[], dict[str, Any] | None],
    overrides: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    stack_outputs: dict[str, Any] | None = None,
) -> ProgramRun:
    """Run ``body`` as a fresh Pulumi program of ``stack`` and wait for every registration.

    ``stack_outputs`` is the stack's state as the previous run left it (its outputs)."""
    mocks = RecordingMocks(stack_outputs)
    monitor = RecordingMonitor(mocks)
    warnings = WarningCollector()
    logger = logging.getLogger(f"pulumi-mocks-{id(mocks)}")
    logger.addHandler(warnings)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False,
                             logger=logger, monitor=monitor)  # fmt: skip
    # As `pulumi config set --secret` would store it, unless a test says otherwise.
    secrets = [f"{PROJECT}:kubeconfig"] if secret_keys is None else secret_keys
    set_all_config(engine_config(stack, overrides), secrets)
    exports: dict[str, Any] = {}
    namespace: dict[str, Any] = {}

    def record_export(name: str, value: Any) -> None:
        exports[name] = value

    @pulumi.runtime.test
    def program() -> None:
        original = pulumi.export
        pulumi.export = record_export
        try:
            namespace.update(body() or {})
        finally:
            pulumi.export = original

    run = ProgramRun(mocks.registrations, exports, warnings.messages, namespace)
    try:
        program()
    except Exception as error:  # the program's own error, kept for the test to assert on
        run.error = error
    for registration in mocks.registrations:
        registration.options = monitor.options.get(registration.name, {})
    return run


def run_program(
    stack: str,
    overrides: dict[str, Any] | None = None,
    stack_outputs: dict[str, Any] | None = None,
) -> ProgramRun:
    """The real __main__.py, as `pulumi preview -s STACK` would run it."""
    run = run_under_mocks(
        stack,
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        overrides,
        stack_outputs=stack_outputs,
    )
    if run.error is not None:
        raise run.error
    return run


@pytest.fixture
def program() -> Callable[..., ProgramRun]:
    return run_program


# The real control plane with kwok nodes (engine tests; INTERFACES.md §2).
from tests.local_cluster import LocalCluster, local_cluster  # noqa: E402

__all__ = ["LocalCluster", "local_cluster"]
