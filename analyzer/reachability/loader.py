"""Read Kubernetes manifests (files, directories, multi-document YAML, JSON, `List`s) into `Inputs`.

Bytes become documents in `reading` (size, encoding, nesting and alias limits); names and labels
are checked here as the API server checks them (`k8s_names`), so what the analyzer accepts is what
a cluster could hold.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reachability import reading
from reachability.errors import InputError
from reachability.inputs import (
    ContainerPort,
    Inputs,
    Manifest,
    Namespace,
    Pod,
)
from reachability.k8s_names import (
    NAMESPACE_NAME_LABEL,
    check_labels,
    check_name,
    port_name_error,
)

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
POLICY_KINDS = frozenset({"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"})
YAML_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if str(raw) == STDIN:
            yield path
        elif path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()
            )
        elif path.is_file():
            yield path
        else:
            raise InputError("no such file or directory", source=str(path))


def load_paths(paths: Iterable[str | Path]) -> Inputs:
    """Files, directories (their .yaml/.yml/.json files) and `-` (standard input)."""
    docs: list[tuple[dict[str, Any], str]] = []
    with _no_gc():
        for path in iter_files(paths):
            if str(path) == STDIN:
                source = "<stdin>"
                data = reading.read_stream(sys.stdin.buffer, source)
            else:
                source = str(path)
                data = reading.read_bytes(path)
            as_json = True if path.suffix == ".json" else None
            loaded = reading.parse_documents(data, source, as_json=as_json)
            docs.extend((doc, source) for doc in loaded if doc is not None)
        return load_documents(docs)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic GC while loading: parsing builds millions of acyclic dicts and lists, and each
    collection would walk all of them again (measured: JSON loading 5x slower at 10k x 10k).
    Afterwards the loaded objects are frozen (gc.freeze) so later collections skip them too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def load_documents(docs: Iterable[tuple[Any, str]]) -> Inputs:
    """Sort documents by kind into `Inputs`; `docs` pairs each object with its source name."""
    inputs = Inputs()
    flat: list[tuple[dict[str, Any], str]] = []
    for doc, source in docs:
        flat.extend(_flatten(doc, source))
    for doc, source in flat:
        if doc.get("kind") == "Namespace":
            _add_namespace(inputs, doc, source)
    seen: dict[str, dict[str, Any]] = {}
    for doc, source in flat:
        kind = doc.get("kind")
        if kind == "Namespace":
            continue
        if kind == "Pod" or kind in WORKLOAD_KINDS:
            pod = _pod(doc, source)
            inputs.namespace(pod.namespace)
            if pod.key in seen:
                raise InputError(
                    f"duplicate pod {pod.key} (also defined by {_label(seen[pod.key])})",
                    source=source,
                    obj=_label(doc),
                )
            seen[pod.key] = doc
            inputs.pods.append(pod)
        elif kind in POLICY_KINDS:
            _check_meta(doc, source, namespaced=kind != "CiliumClusterwideNetworkPolicy")
            manifest = Manifest(doc, source)
            if kind != "CiliumClusterwideNetworkPolicy":
                inputs.namespace(manifest.namespace)
            inputs.policies.append(manifest)
        else:
            inputs.notes.append(f"{source}: ignoring {_label(doc)} (kind not analysed)")
    return inputs


def _flatten(doc: Any, source: str) -> Iterator[tuple[dict[str, Any], str]]:
    if not isinstance(doc, dict):
        raise InputError("document is not a mapping (expected a Kubernetes object)", source=source)
    if "kind" not in doc:
        raise InputError("object without kind", source=source)
    if not isinstance(doc["kind"], str):
        raise InputError(f"kind must be a string, got {_short(doc['kind'])}", source=source)
    if not isinstance(doc.get("metadata") or {}, dict):
        raise InputError(f"{doc['kind']}: metadata must be a mapping", source=source)
    kind = doc["kind"]
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        for item in doc.get("items") or []:
            yield from _flatten(item, source)
    else:
        yield doc, source


def _label(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    ns = _short(meta.get("namespace") or "default")
    kind = _short(doc.get("kind", "?"))
    name = _short(meta.get("name", ""))
    if kind in ("Namespace", "CiliumClusterwideNetworkPolicy"):
        return f"{kind} {name}"
    return f"{kind} {ns}/{name}"


def _short(value: Any) -> str:
    """An object's name for a message: a hostile one-megabyte name is cut."""
    text = str(value) if isinstance(value, (str, int, float)) else f"<{type(value).__name__}>"
    return text if len(text) <= 100 else f"{text[:60]}...({len(text)} characters)"


def _labels(raw: Any, source: str, doc: dict[str, Any], field: str) -> dict[str, str]:
    labels, problem = check_labels(raw, field)
    if problem is not None or labels is None:
        raise InputError(problem or field, source=source, obj=_label(doc))
    return labels


def _meta(doc: dict[str, Any], source: str) -> dict[str, Any]:
    meta = doc.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InputError("metadata must be a mapping", source=source, obj=str(doc.get("kind")))
    return meta


def _check_meta(doc: dict[str, Any], source: str, *, namespaced: bool) -> None:
    """metadata.name (DNS-1123 subdomain), metadata.namespace (DNS-1123 label) and labels."""
    meta = _meta(doc, source)
    if not meta.get("name"):
        raise InputError(f"{doc.get('kind')} without metadata.name", source=source)
    problem = check_name(meta["name"], "metadata.name")
    if problem is None and namespaced and meta.get("namespace") is not None:
        problem = check_name(meta["namespace"], "metadata.namespace", label=True)
    if problem is not None:
        raise InputError(problem, source=source, obj=_label(doc))
    _labels(meta.get("labels"), source, doc, "metadata.labels")


def _add_namespace(inputs: Inputs, doc: dict[str, Any], source: str) -> None:
    meta = _meta(doc, source)
    name = meta.get("name")
    if not name:
        raise InputError("Namespace without metadata.name", source=source)
    problem = check_name(name, "metadata.name", label=True)
    if problem is not None:
        raise InputError(problem, source=source, obj=_label(doc))
    labels = dict(_labels(meta.get("labels"), source, doc, "metadata.labels"))
    # The API server sets this label on every namespace (Kubernetes >= 1.21).
    labels.setdefault(NAMESPACE_NAME_LABEL, str(name))
    inputs.namespaces[str(name)] = Namespace(str(name), labels)


def _pod(doc: dict[str, Any], source: str) -> Pod:
    _check_meta(doc, source, namespaced=True)
    meta = _meta(doc, source)
    name = meta["name"]
    namespace = str(meta.get("namespace") or "default")
    obj = _label(doc)
    if doc["kind"] == "Pod":
        spec = _mapping(doc.get("spec"), "spec", source, obj)
        labels = _labels(meta.get("labels"), source, doc, "metadata.labels")
        ip = _mapping(doc.get("status"), "status", source, obj).get("podIP")
    else:
        template = _mapping(
            _mapping(doc.get("spec"), "spec", source, obj).get("template"),
            "spec.template",
            source,
            obj,
        )
        spec = _mapping(template.get("spec"), "spec.template.spec", source, obj)
        labels = _labels(
            _mapping(template.get("metadata"), "spec.template.metadata", source, obj).get("labels"),
            source,
            doc,
            "spec.template.metadata.labels",
        )
        ip = None
    if ip is not None:
        ip = _pod_ip(ip, source, obj)
    ports: list[ContainerPort] = []
    containers = []
    for key in ("containers", "initContainers"):
        listed = spec.get(key) or []
        if not isinstance(listed, list):
            raise InputError(f"spec.{key} must be a list", source=source, obj=obj)
        containers.extend(listed)
    for container in containers:
        if not isinstance(container, dict):
            raise InputError("a container must be a mapping", source=source, obj=obj)
        listed_ports = container.get("ports") or []
        if not isinstance(listed_ports, list):
            raise InputError(
                f"container {container.get('name')!r}: ports must be a list", source=source, obj=obj
            )
        for port in listed_ports:
            where = f"container {container.get('name')!r}"
            raw_number = port.get("containerPort") if isinstance(port, dict) else None
            # The API server's ValidateContainerPorts: a number in 1-65535, protocol TCP, UDP
            # or SCTP (pkg/apis/core/validation/validation.go).
            if (
                not isinstance(raw_number, int)
                or isinstance(raw_number, bool)
                or not 1 <= raw_number <= 65535
            ):
                raise InputError(
                    f"{where}: invalid containerPort {raw_number!r} (a number in 1-65535)",
                    source=source,
                    obj=obj,
                )
            protocol = port.get("protocol") or "TCP"
            if protocol not in ("TCP", "UDP", "SCTP"):
                raise InputError(
                    f"{where}: invalid protocol {protocol!r} (TCP, UDP or SCTP)",
                    source=source,
                    obj=obj,
                )
            port_name = port.get("name")
            problem = None if port_name is None else port_name_error(port_name)
            if problem is not None:
                raise InputError(
                    f"{where}: port name {_short(port_name)!r}: {problem}", source=source, obj=obj
                )
            ports.append(ContainerPort(port_name, protocol, raw_number))
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    problem = check_name(account, "serviceAccountName")
    if problem is not None:
        raise InputError(problem, source=source, obj=obj)
    node = spec.get("nodeName")
    if node is not None and (not isinstance(node, str) or not node):
        raise InputError(
            f"spec.nodeName must be a node's name, got {_short(node)}", source=source, obj=obj
        )
    return Pod(
        namespace=namespace,
        name=str(name),
        labels=labels,
        ip=ip,
        ports=tuple(sorted(set(ports), key=lambda p: (p.name or "", p.protocol, p.port))),
        service_account=account,
        host_network=spec.get("hostNetwork") is True,
        node=node,
    )


def _pod_ip(raw: Any, source: str, obj: str) -> str:
    text = str(raw)
    try:
        # inet_pton/inet_ntop (C) give the canonical form; when it is the text as written, that
        # is what ipaddress would return, without its cost per pod at 150,000 pods.
        family = socket.AF_INET6 if ":" in text else socket.AF_INET
        if socket.inet_ntop(family, socket.inet_pton(family, text)) == text:
            return text
    except (OSError, ValueError):
        pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise InputError(f"invalid status.podIP {raw!r}", source=source, obj=obj) from exc


def _mapping(value: Any, field: str, source: str, obj: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{field} must be a mapping", source=source, obj=obj)
    return value
