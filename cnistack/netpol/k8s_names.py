"""Kubernetes' own name and label rules, so a bad intent fails here and not at `kubectl apply`.

Ref: k8s.io/apimachinery/pkg/util/validation/validation.go (IsDNS1123Label, IsDNS1123Subdomain,
IsQualifiedName, IsValidLabelValue, IsValidPortName). `re.fullmatch` is used throughout because
Python's `$` also matches before a trailing newline.
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
PORT_NAME_MAX = 15

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def dns1123_label_error(value: str) -> str | None:
    if len(value) > DNS1123_LABEL_MAX:
        return f"{value!r} is longer than {DNS1123_LABEL_MAX} characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def label_key_error(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return f"label key {key!r} has an empty prefix before '/'"
        if len(prefix) > DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            return f"label key {key!r} has a prefix that is not a DNS-1123 subdomain"
    if not name:
        return f"label key {key!r} has an empty name"
    if len(name) > QUALIFIED_NAME_MAX:
        return f"label key {key!r} has a name longer than {QUALIFIED_NAME_MAX} characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"label key {key!r} is invalid: the name must be alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def label_value_error(key: str, value: str) -> str | None:
    if len(value) > LABEL_VALUE_MAX:
        return f"label {key!r} has a value longer than {LABEL_VALUE_MAX} characters"
    if value and not _QUALIFIED_NAME.fullmatch(value):
        return (
            f"label {key!r} has invalid value {value!r}: alphanumerics, '-', '_' or '.', "
            "starting and ending with an alphanumeric"
        )
    return None


def labels_error(labels: dict[str, str]) -> str | None:
    for key, value in labels.items():
        problem = label_key_error(key) or label_value_error(key, value)
        if problem:
            return problem
    return None


def port_name_error(name: str) -> str | None:
    """IANA_SVC_NAME, the rule for container and service port names."""
    if len(name) > PORT_NAME_MAX:
        return f"port name {name!r} is longer than {PORT_NAME_MAX} characters"
    if not _PORT_NAME.fullmatch(name):
        return f"port name {name!r} must be lowercase alphanumerics and '-'"
    if "--" in name:
        return f"port name {name!r} must not contain '--'"
    if not re.search(r"[a-z]", name):
        return f"port name {name!r} must contain at least one letter"
    return None
