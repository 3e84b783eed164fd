"""Property-based fuzzing of every input edge, with hypothesis.

Each property starts from a VALID input (a committed-style stack config, the platform's policy
model, the manifests the renderer writes for production), applies random structural mutations
(replace a value by junk of any JSON type, delete a key, add an unknown key, empty or wrap a
container, duplicate a list item) and feeds the result through the real entry point:

- `validate_stack_config` -> a `StackConfig` (then rendered: Helm values, policies) or ONE
  `ConfigError` whose lines each name an `aisp-cni:<key>`;
- `parse_policy_model` -> a `PolicyModel` (then rendered for both CNI profiles) or one pydantic
  `ValidationError` whose entries each carry a location or a message;
- `python -m cnistack connectivity list --manifests FILE` and `diff manifests:FILE@cilium
  manifests:FILE@kube-router`, run in-process (`main`) -> exit 0, or exit 2 with one
  `error: ...` line on stderr;
- the policy pack over a mutated production stack -> violations or none, never an exception.

Anything else (another exception type, a traceback, exit 1) fails the property. Every example has
a deadline, so a mutation that makes parsing slow fails too. The CI slice is derandomized (fixed
examples, `ci` profile); `make fuzz` runs the `campaign` profile (HYPOTHESIS_PROFILE=campaign).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import ValidationError

from cnistack.cilium import helm_values
from cnistack.cli.connectivity_command import main as connectivity_main
from cnistack.config import PROJECT, ConfigError, parse_stack_config
from cnistack.flavours import K3S, KUBERNETES, OPENSHIFT
from cnistack.netpol.policy_model import default_policy_model, parse_policy_model
from cnistack.netpol.renderer import render_policies
from cnistack.stack_checks import validate_stack_config
from tests.factories import homelab_config, production_config

# Hypothesis keeps caches (constants, unicode tables) in its home directory: outside the repo.
set_hypothesis_home_dir(Path.home() / ".cache" / "cnistack" / "hypothesis")

_COMMON = {
    "database": None,  # no .hypothesis/ directory in the repo
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "deadline": timedelta(seconds=10),  # 2 busy cores; a runaway parse still fails
}
# ~30-60 s for the whole file on 2 busy cores.
# No shrinking in CI: a failure is reported as found (shrinking can take minutes on busy cores).
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=250,
    phases=(Phase.explicit, Phase.generate),
    **_COMMON,
)
settings.register_profile(
    "campaign",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    **_COMMON,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# The campaigns below take tens of seconds of CPU even in the fixed-seed slice: `make test` runs
# them, `make test-fast` (-m "not slow") leaves them to it.
SLOW = pytest.mark.slow

# --- junk values and structural mutations ----------------------------------------------------

_SPECIAL_TEXT = st.sampled_from(
    [
        "", " ", "\x00", "\u200b", "é", "🙂", "\ud7ff", "true", "false", "null", "~", "0", "-1",
        "1e309", "NaN", "0.0.0.0/0", "::/0", "*", "..", "a" * 300, "${x}", "{}", "[]", "\n",
    ]
)  # fmt: skip
_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 65535, 65536, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    _SPECIAL_TEXT,
)
JUNK = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | _SPECIAL_TEXT, inner, max_size=4)
    ),
    max_leaves=10,
)

Path_ = tuple[Any, ...]


def _paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _get(value: Any, path: Path_) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(root: Any, path: Path_, new: Any) -> Any:
    if not path:
        return new
    parent = _get(root, path[:-1])
    parent[path[-1]] = new
    return root


def _mutate_once(data: st.DataObject, root: Any) -> Any:
    path = data.draw(st.sampled_from(_paths(root)), label="path")
    target = _get(root, path)
    operation = data.draw(
        st.sampled_from(["replace", "delete", "unknown-key", "empty", "wrap", "duplicate"]),
        label="operation",
    )
    if operation == "replace":
        return _set(root, path, data.draw(JUNK, label="junk"))
    if operation == "delete" and path:
        parent = _get(root, path[:-1])
        del parent[path[-1]]
        return root
    if operation == "unknown-key" and isinstance(target, dict):
        key = data.draw(st.text(min_size=1, max_size=12) | _SPECIAL_TEXT, label="key")
        target[key] = data.draw(JUNK, label="junk")
        return root
    if operation == "empty":
        return _set(root, path, type(target)() if isinstance(target, dict | list | str) else None)
    if operation == "wrap":
        return _set(root, path, [target])
    if operation == "duplicate" and isinstance(target, list) and target:
        target.append(copy.deepcopy(target[0]))
        return root
    return _set(root, path, data.draw(JUNK, label="junk"))


def mutated(data: st.DataObject, valid: Any) -> Any:
    root = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        root = _mutate_once(data, root)
    return root


# --- stack config ---------------------------------------------------------------------------------


def _stack_config_examples() -> list[dict[str, Any]]:
    policy = _policy_model_data()
    return [
        homelab_config(),
        production_config(),
        production_config(cilium={"chart": {"version": "1.15.0"}}, networkPolicy=policy),
    ]


def _clean_config_error(error: ConfigError) -> None:
    lines = str(error).split("\n")
    assert lines[0] == "invalid stack config:", str(error)
    assert len(lines) >= 2, str(error)
    for line in lines[1:]:
        assert line.startswith(f"  {PROJECT}:"), f"line names no key: {line!r}"


@SLOW
@given(data=st.data())
def test_fuzzed_stack_config_is_valid_or_one_clean_error(data: st.DataObject) -> None:
    raw = mutated(data, data.draw(st.sampled_from(_stack_config_examples()), label="base"))
    if not isinstance(raw, dict):
        raw = {"cni": raw}
    try:
        config = validate_stack_config(raw)
    except ConfigError as error:
        _clean_config_error(error)
        return
    # A valid config renders without an error.
    render_policies(config.network_policy, config.capabilities, config.flavour)
    if config.cni == "cilium":
        values = helm_values(config)
        assert values["kubeProxyReplacement"] in (True, False)


@SLOW
@given(data=st.data())
def test_fuzzed_stack_config_keys_and_engine_strings(data: st.DataObject) -> None:
    """The engine hands structured values as JSON text; keys may be anything a user types."""
    raw: dict[str, Any] = {
        key: (yaml.safe_dump(value) if data.draw(st.booleans(), label="as-text") else value)
        for key, value in production_config().items()
    }
    extra = data.draw(st.dictionaries(st.text(max_size=20) | _SPECIAL_TEXT, JUNK, max_size=3))
    raw.update(extra)
    try:
        validate_stack_config(raw, secret_keys=data.draw(st.sampled_from([None, set(), {"x"}])))
    except ConfigError as error:
        _clean_config_error(error)


# --- policy model ---------------------------------------------------------------------------------


def _policy_model_data() -> dict[str, Any]:
    return default_policy_model().model_dump(by_alias=True, mode="json", exclude_defaults=True)


def _profiles() -> list[Any]:
    return [
        parse_stack_config(homelab_config()).capabilities,
        parse_stack_config(production_config()).capabilities,
    ]


@SLOW
@given(data=st.data())
def test_fuzzed_policy_model_is_valid_or_one_clean_error(data: st.DataObject) -> None:
    raw = mutated(data, _policy_model_data())
    if not isinstance(raw, dict):
        raw = {"namespaces": raw}
    try:
        model = parse_policy_model(raw)
    except ValidationError as error:
        # One exception; each of its errors has a location or a message naming the object.
        assert error.errors(), "empty error"
        for entry in error.errors():
            assert entry["loc"] or str(entry["msg"]).strip(), entry
        return
    for profile in _profiles():
        for flavour in (K3S, KUBERNETES, OPENSHIFT):
            try:
                render_policies(model, profile, flavour)
            except ValueError as error:
                # What this flavour and CNI cannot enforce: one line naming the flow.
                assert str(error).startswith("flow '") and "\n" not in str(error), error


# --- analyzer manifests through the CLI ----------------------------------------------------------


def _production_manifests() -> list[dict[str, Any]]:
    config = parse_stack_config(production_config())
    rendered = render_policies(config.network_policy, config.capabilities, config.flavour)
    return [copy.deepcopy(dict(m)) for m in rendered.manifests]


def _yaml_safe(value: Any) -> Any:
    # YAML has .nan/.inf, so floats survive; only keys must be strings for safe_dump's sort.
    if isinstance(value, dict):
        return {str(k): _yaml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_safe(v) for v in value]
    return value


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = connectivity_main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def manifests_dir() -> Any:
    with tempfile.TemporaryDirectory(prefix="cnistack-fuzz-") as directory:
        yield Path(directory)


@SLOW
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), enforcement=st.sampled_from(["cilium", "kube-router"]))
def test_fuzzed_manifests_exit_0_or_one_clean_error(
    manifests_dir: Path, data: st.DataObject, enforcement: str
) -> None:
    documents = mutated(data, _production_manifests())
    if not isinstance(documents, list):
        documents = [documents]
    path = manifests_dir / "fuzz.yaml"
    path.write_text(yaml.safe_dump_all([_yaml_safe(d) for d in documents]), encoding="utf-8")
    command = data.draw(st.sampled_from(["list", "diff"]), label="command")
    if command == "list":
        argv = ["list", "--manifests", str(path), "--enforcement", enforcement]
    else:
        argv = ["diff", f"manifests:{path}@cilium", f"manifests:{path}@kube-router"]
    code, _, stderr = _run_cli(argv)
    _clean_exit(code, stderr)


def _clean_exit(code: int, stderr: str) -> None:
    assert code in (0, 2), f"exit {code}: {stderr}"
    if code == 2:
        lines = stderr.strip().split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr


def test_mutation_engine_reaches_every_operation() -> None:
    """The mutator does change structure (a fuzzer that never mutates would pass anything)."""
    seen: set[str] = set()
    base = {"a": [1, {"b": "c"}], "d": {"e": None}}

    @settings(max_examples=200, derandomize=True, database=None)
    @given(data=st.data())
    def probe(data: st.DataObject) -> None:
        result = mutated(data, base)
        seen.add("changed" if result != base else "same")

    probe()
    assert "changed" in seen
    assert base == {"a": [1, {"b": "c"}], "d": {"e": None}}


# --- the policy pack over mutated resources ----------------------------------------------------


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _pack_stack() -> list[dict[str, Any]]:
    from tests.policy_pack_harness import production_stack

    return [{"type": r.type, "name": r.name, "props": copy.deepcopy(dict(r.props))}
            for r in production_stack(openshift=True)]  # fmt: skip


@SLOW
@given(data=st.data(), preview=st.booleans())
def test_fuzzed_resources_never_crash_the_policy_pack(data: st.DataObject, preview: bool) -> None:
    """Every policy reports or passes on any properties; none raises (the analyzer would die)."""
    from tests.policy_pack_harness import PackResource, evaluate_pack, load_pack_config

    stack = _pack_stack()
    index = data.draw(st.integers(min_value=0, max_value=len(stack) - 1), label="resource")
    props = mutated(data, stack[index]["props"])
    # The engine's wire (a protobuf Struct) cannot carry NaN or infinity: the pack never sees them.
    assume(isinstance(props, dict) and _finite(props))
    resources = [
        PackResource(r["type"], r["name"], props if i == index else r["props"])
        for i, r in enumerate(stack)
    ]
    for violation in evaluate_pack(resources, load_pack_config("production"), preview=preview):
        assert violation.message.strip()
