"""Names, label keys and label values checked as the Kubernetes API server checks them.

One module for the analyzer and the IaC program's policy model (cnistack/netpol/): a
bad intent fails at `pulumi preview` and a bad manifest at `connectivity`, both with the API
server's rule and the same wording, not at `kubectl apply`. `re.fullmatch` throughout: Python's
`$` also matches before a trailing newline.

Rules from k8s.io/apimachinery/pkg/util/validation/validation.go:
- `IsDNS1123Label` (namespace names, `ValidateNamespaceName`): at most 63 characters of
  `[a-z0-9]([-a-z0-9]*[a-z0-9])?`;
- `IsDNS1123Subdomain` (pod, workload, NetworkPolicy, service account and custom resource names,
  `NameIsDNSSubdomain`): at most 253 characters, dot-separated DNS-1123 labels;
- `IsQualifiedName` (label keys): an optional DNS-1123 subdomain prefix and `/`, then a name of at
  most 63 characters of `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`;
- `IsValidLabelValue`: empty, or at most 63 characters of the same form as a name;
- `IsValidPortName` (container port names): 1-15 lowercase letters, digits and non-adjacent '-'
  not at either end, at least one letter.
Label values are strings: the API server refuses `team: 7` or `ok: yes` (an int or a bool does not
unmarshal into `map[string]string`), so we do too, rather than reading them as text.
"""

from __future__ import annotations

import re
from typing import Any

# The label the API server puts on every namespace, its name as value (Kubernetes 1.21+,
# NamespaceDefaultLabelName): the one way a selector picks a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
PORT_NAME_MAX = 15

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_HAS_LETTER = re.compile(r"[a-z]")


def shown(value: str) -> str:
    """The value as quoted in a message, cut short when a hostile input is huge."""
    return repr(value) if len(value) <= 80 else f"{value[:40]!r}... ({len(value)} characters)"


def dns1123_label_error(value: str) -> str | None:
    if len(value) > DNS1123_LABEL_MAX:
        return f"must be no more than {DNS1123_LABEL_MAX} characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            "must be a lowercase RFC 1123 label (lowercase letters, digits and '-', starting and "
            "ending with a letter or digit)"
        )
    return None


def dns1123_subdomain_error(value: str) -> str | None:
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        return f"must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return (
            "must be a lowercase RFC 1123 subdomain (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def label_key_error(key: str) -> str | None:
    prefix, sep, name = key.rpartition("/")
    if sep and not prefix:
        return "prefix part must be non-empty"
    if prefix:
        if "/" in prefix:
            return "a qualified name has at most one '/'"
        problem = dns1123_subdomain_error(prefix)
        if problem is not None:
            return f"prefix part {problem}"
    if not name:
        return "name part must be non-empty"
    if len(name) > QUALIFIED_NAME_MAX:
        return f"name part must be no more than {QUALIFIED_NAME_MAX} characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )
    return None


def label_value_error(value: str) -> str | None:
    if len(value) > LABEL_VALUE_MAX:
        return f"must be no more than {LABEL_VALUE_MAX} characters"
    if value and not _QUALIFIED_NAME.fullmatch(value):
        return (
            "must be empty or consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )
    return None


def port_name_error(value: Any) -> str | None:
    """`IsValidPortName` (a container port's name, the target of a named NetworkPolicy port)."""
    if not isinstance(value, str):
        return f"must be a string, got {_type_name(value)}"
    if not 1 <= len(value) <= PORT_NAME_MAX:
        return f"must be 1-{PORT_NAME_MAX} characters"
    if not _PORT_NAME.fullmatch(value) or "--" in value or not _HAS_LETTER.search(value):
        return (
            "must be lowercase letters, digits and '-' (not at either end, not doubled), with at "
            "least one letter"
        )
    return None


def label_key_problem(key: str) -> str | None:
    """`key 'K': why`, the wording of a bad label key wherever it appears."""
    problem = label_key_error(key)
    return None if problem is None else f"key {shown(key)}: {problem}"


def label_value_problem(value: str) -> str | None:
    """`value 'V': why`, the wording of a bad label value wherever it appears."""
    problem = label_value_error(value)
    return None if problem is None else f"value {shown(value)}: {problem}"


def check_name(value: Any, field: str, *, label: bool = False) -> str | None:
    """Why `value` is not a valid object name (`label`: a DNS-1123 label), or None."""
    if not isinstance(value, str):
        return f"{field} must be a string, got {_type_name(value)} {value!r}"
    problem = dns1123_label_error(value) if label else dns1123_subdomain_error(value)
    return None if problem is None else f"{field} {shown(value)}: {problem}"


# Label pairs already found valid: clusters repeat the same few thousand pairs on every pod.
_VALID_PAIRS: set[tuple[str, str]] = set()
_VALID_PAIRS_MAX = 200_000


def check_labels(raw: Any, field: str) -> tuple[dict[str, str] | None, str | None]:
    """The labels as a dict of strings, or why they are invalid."""
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        return None, f"{field} must be a mapping"
    for pair in raw.items():
        if type(pair[1]) is str and pair in _VALID_PAIRS:
            continue
        key, value = pair
        if not isinstance(key, str):
            return None, f"{field}: key {key!r} must be a string"
        problem = label_key_problem(key)
        if problem is not None:
            return None, f"{field}: {problem}"
        if not isinstance(value, str):
            return None, (
                f"{field}.{key}: value must be a string, got {_type_name(value)} {value!r} "
                "(quote it)"
            )
        problem = label_value_problem(value)
        if problem is not None:
            return None, f"{field}.{key}: {problem}"
        if len(_VALID_PAIRS) >= _VALID_PAIRS_MAX:
            _VALID_PAIRS.clear()
        _VALID_PAIRS.add(pair)
    return raw, None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__
