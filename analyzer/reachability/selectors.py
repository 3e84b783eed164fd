"""Kubernetes label selectors, evaluated against an index of endpoint classes as bitsets.

A bitset is a Python int whose bit `i` stands for endpoint class `i`; selecting against an index is
a handful of AND/OR operations instead of one evaluation per pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reachability.errors import InputError
from reachability.k8s_names import check_labels, label_key_error, label_value_error

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]


@dataclass(frozen=True)
class Selector:
    """matchLabels folded into `In` requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        for req in self.requirements:
            value = labels.get(req.key)
            if req.operator == "In":
                if value is None or value not in req.values:
                    return False
            elif req.operator == "NotIn":
                if value is not None and value in req.values:
                    return False
            elif req.operator == "Exists":
                if value is None:
                    return False
            elif value is not None:
                return False
        return True

    def keys(self) -> frozenset[str]:
        return frozenset(req.key for req in self.requirements)


def parse_selector(raw: Any, where: str, key_map: Any = None) -> Selector:
    """Parse a LabelSelector; `key_map` rewrites keys (Cilium's `k8s:` prefix)."""
    # Clusters repeat the same few selectors thousands of times; the parse depends on the content
    # only (its repr), not on `where`, so a successful parse is reused.
    memo = (repr(raw), key_map)
    known = _PARSED.get(memo)
    if known is not None:
        return known
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: label selector must be a mapping")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise InputError(f"{where}: unknown selector field(s) {sorted(unknown)}")
    fix = key_map if key_map is not None else (lambda k: k)
    labels = raw.get("matchLabels") or {}
    expressions = raw.get("matchExpressions") or []
    if not isinstance(labels, Mapping):
        raise InputError(f"{where}.matchLabels: must be a mapping")
    if not isinstance(expressions, list):
        raise InputError(f"{where}.matchExpressions: must be a list")
    if key_map is None:
        # A Kubernetes LabelSelector, checked as the API server does (apimachinery
        # metav1validation.ValidateLabelSelector: qualified-name keys, label values, strings).
        _check_k8s_selector(labels, expressions, where)
    reqs: list[Requirement] = []
    for key, value in labels.items():
        reqs.append(Requirement(fix(str(key)), "In", frozenset({_label_value(value)})))
    for expr in expressions:
        if not isinstance(expr, Mapping) or "key" not in expr or "operator" not in expr:
            raise InputError(f"{where}: matchExpressions entry needs key and operator")
        if not isinstance(expr.get("values") or [], list):
            raise InputError(f"{where}: matchExpressions values must be a list")
        op = expr["operator"]
        if op not in OPERATORS:
            raise InputError(
                f"{where}: invalid selector operator {op!r} "
                f"(expected one of {', '.join(OPERATORS)})"
            )
        raw_values = expr.get("values") or []
        if not isinstance(raw_values, list):
            raise InputError(f"{where}: matchExpressions values must be a list")
        values = frozenset(_label_value(v) for v in raw_values)
        if op in ("In", "NotIn") and not values:
            raise InputError(f"{where}: operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise InputError(f"{where}: operator {op} takes no values")
        reqs.append(Requirement(fix(str(expr["key"])), op, values))
    selector = _PARSED[memo] = Selector(tuple(reqs))
    return selector


_PARSED: dict[tuple[str, Any], Selector] = {}


def _check_k8s_selector(labels: Mapping[Any, Any], expressions: list[Any], where: str) -> None:
    _, problem = check_labels(dict(labels), f"{where}.matchLabels")
    if problem is not None:
        raise InputError(problem)
    for i, expr in enumerate(expressions):
        if not isinstance(expr, Mapping):
            continue  # reported by the caller
        field = f"{where}.matchExpressions[{i}]"
        key = expr.get("key")
        problem = label_key_error(key) if isinstance(key, str) else "must be a string"
        if problem is not None:
            raise InputError(f"{field}.key {key!r}: {problem}")
        values = expr.get("values") or []
        for j, value in enumerate(values if isinstance(values, list) else []):
            if not isinstance(value, str):
                raise InputError(f"{field}.values[{j}]: must be a string, got {value!r} (quote it)")
            problem = label_value_error(value)
            if problem is not None:
                raise InputError(f"{field}.values[{j}] {value!r}: {problem}")


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LabelIndex:
    """Inverted index label -> bitset of classes, built once per label flavour."""

    def __init__(self, label_sets: Sequence[Mapping[str, str]], universe: int) -> None:
        self.universe = universe
        self.by_pair: dict[tuple[str, str], int] = {}
        self.by_key: dict[str, int] = {}
        for i, labels in enumerate(label_sets):
            bit = 1 << i
            for key, value in labels.items():
                self.by_pair[(key, value)] = self.by_pair.get((key, value), 0) | bit
                self.by_key[key] = self.by_key.get(key, 0) | bit

    def select(self, selector: Selector, within: int) -> int:
        bits = within
        for req in selector.requirements:
            if not bits:
                return 0
            if req.operator in ("In", "NotIn"):
                hit = 0
                for value in req.values:
                    hit |= self.by_pair.get((req.key, value), 0)
                bits = bits & hit if req.operator == "In" else bits & ~hit
            elif req.operator == "Exists":
                bits &= self.by_key.get(req.key, 0)
            else:
                bits &= ~self.by_key.get(req.key, 0)
        return bits
