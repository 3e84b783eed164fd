"""Read Kubernetes manifests (files, directories, multi-document YAML, `List`s) into `Inputs`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from cnistack.connectivity.errors import InputError
from cnistack.connectivity.inputs import (
    NS_NAME_LABEL,
    ContainerPort,
    Inputs,
    Manifest,
    Namespace,
    Pod,
)

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
POLICY_KINDS = frozenset({"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"})
YAML_SUFFIXES = (".yaml", ".yml", ".json")
# libyaml when available: parsing dominates the run time of large inputs otherwise.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()
            )
        elif path.is_file():
            yield path
        else:
            raise InputError("no such file or directory", source=str(path))


def load_paths(paths: Iterable[str | Path]) -> Inputs:
    docs: list[tuple[dict[str, Any], str]] = []
    for path in iter_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
            loaded = list(yaml.load_all(text, Loader=_LOADER))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read: {exc}", source=str(path)) from exc
        except yaml.YAMLError as exc:
            raise InputError(f"invalid YAML: {_one_line(exc)}", source=str(path)) from exc
        docs.extend((doc, str(path)) for doc in loaded if doc is not None)
    return load_documents(docs)


def load_documents(docs: Iterable[tuple[Any, str]]) -> Inputs:
    """Sort documents by kind into `Inputs`; `docs` pairs each object with its source name."""
    inputs = Inputs()
    flat: list[tuple[dict[str, Any], str]] = []
    for doc, source in docs:
        flat.extend(_flatten(doc, source))
    for doc, source in flat:
        if doc.get("kind") == "Namespace":
            _add_namespace(inputs, doc, source)
    seen: dict[str, str] = {}
    for doc, source in flat:
        kind = doc.get("kind")
        if kind == "Namespace":
            continue
        if kind == "Pod" or kind in WORKLOAD_KINDS:
            pod = _pod(doc, source)
            inputs.namespace(pod.namespace)
            if pod.key in seen:
                raise InputError(
                    f"duplicate pod {pod.key} (also defined by {seen[pod.key]})",
                    source=source,
                    obj=_label(doc),
                )
            seen[pod.key] = _label(doc)
            inputs.pods.append(pod)
        elif kind in POLICY_KINDS:
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
    # Everything below reads kind as a string and metadata as a mapping (found by fuzzing).
    if not isinstance(doc["kind"], str):
        raise InputError(f"kind must be a string (got {type(doc['kind']).__name__})", source=source)
    if not isinstance(doc.get("metadata") or {}, dict):
        raise InputError(f"{doc['kind']}: metadata must be a mapping", source=source)
    kind = doc["kind"]
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        for item in doc.get("items") or []:
            yield from _flatten(item, source)
    else:
        yield doc, source


def _label(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    kind = doc.get("kind", "?")
    if kind in ("Namespace", "CiliumClusterwideNetworkPolicy"):
        return f"{kind} {meta.get('name', '')}"
    return f"{kind} {ns}/{meta.get('name', '')}"


def _labels(raw: Any, source: str, doc: dict[str, Any]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError("labels must be a mapping", source=source, obj=_label(doc))
    return {str(k): str(v) for k, v in raw.items()}


def _add_namespace(inputs: Inputs, doc: dict[str, Any], source: str) -> None:
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise InputError("Namespace without metadata.name", source=source)
    labels = _labels(meta.get("labels"), source, doc)
    # The API server sets this label on every namespace (Kubernetes >= 1.21).
    labels.setdefault(NS_NAME_LABEL, str(name))
    inputs.namespaces[str(name)] = Namespace(str(name), labels)


def _pod(doc: dict[str, Any], source: str) -> Pod:
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise InputError(f"{doc.get('kind')} without metadata.name", source=source)
    namespace = str(meta.get("namespace") or "default")
    if doc["kind"] == "Pod":
        spec = doc.get("spec") or {}
        labels_raw = meta.get("labels")
        ip = (doc.get("status") or {}).get("podIP")
    else:
        template = (doc.get("spec") or {}).get("template") or {}
        spec = template.get("spec") or {}
        labels_raw = (template.get("metadata") or {}).get("labels")
        ip = None
    obj = _label(doc)
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(str(ip)))
        except ValueError as exc:
            raise InputError(f"invalid status.podIP {ip!r}", source=source, obj=obj) from exc
    ports: list[ContainerPort] = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for port in (container or {}).get("ports") or []:
            try:
                number = int(port["containerPort"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    f"container {container.get('name')!r}: invalid containerPort",
                    source=source,
                    obj=obj,
                ) from exc
            ports.append(
                ContainerPort(port.get("name"), str(port.get("protocol") or "TCP").upper(), number)
            )
    return Pod(
        namespace=namespace,
        name=str(name),
        labels=_labels(labels_raw, source, doc),
        ip=ip,
        ports=tuple(sorted(set(ports), key=lambda p: (p.name or "", p.protocol, p.port))),
        service_account=str(
            spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        ),
    )


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())
