"""Untrusted bytes to Kubernetes documents, with bounded memory and time whatever the input.

Every file the analyzer reads is hostile until parsed. The limits, each with ONE clear error:
- size: a file larger than `MAX_FILE_BYTES` is refused from its size (stat), never read; a pipe is
  read at most one byte past the limit;
- encoding: UTF-8 only (a BOM is dropped), as the API server's decoders expect; a NUL byte means
  binary data;
- nesting: deeper than `MAX_DEPTH` is refused. PyYAML's C composer recurses in C per level, so
  200,000 levels overflow the C stack (SIGSEGV, no message); here YAML is built from libyaml's
  *events* with an explicit stack (no recursion at all), and JSON is parsed by the stdlib's C
  scanner under a recursion limit of `MAX_DEPTH` levels;
- aliases: an alias is not copied (it shares the anchored object, as PyYAML does), but the nodes it
  stands for are counted as if expanded, and a document whose expansion is mostly aliases is
  refused with the rule the Kubernetes API server's YAML decoder applies since CVE-2019-11253
  (go-yaml v2 `decode.go`, `allowedAliasRatio`: up to 99% aliased nodes below 400,000 decoded
  nodes, falling linearly to 10% at 4,000,000). A "billion laughs" stops after a few thousand
  events.

YAML scalars resolve as YAML 1.1 (PyYAML's resolver), as the API server's go-yaml v2 does; a
timestamp stays the string it was written as (the API server converts YAML to JSON, where it is a
string too). Only the tags of the core schema are accepted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from reachability.errors import InputError

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 512
# go-yaml v2 decode.go (the decoder behind sigs.k8s.io/yaml, hence the API server and kubectl).
ALIAS_RATIO_LOW = 400_000
ALIAS_RATIO_HIGH = 4_000_000

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
# Scalars kept as the text they were written as (JSON has no such types).
_AS_TEXT = frozenset({_STR, _TAG + "timestamp", _TAG + "binary"})
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MISSING = object()


def human_size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refused from its size (without reading it) past `limit`."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(
                f"file is {human_size(size)}, over the {human_size(limit)} input limit",
                source=str(path),
            )
        with path.open("rb") as handle:
            return read_stream(handle, str(path), limit)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", source=str(path)) from exc


def read_stream(handle: BinaryIO, source: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most `limit` bytes of a stream (a pipe has no size to check beforehand)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"input is over the {human_size(limit)} input limit", source=source)
    return data


_WIDE_BOMS = {
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\xfe\xff": "UTF-16",
    b"\xff\xfe": "UTF-16",
}


def decode_text(data: bytes, source: str) -> str:
    for bom, name in _WIDE_BOMS.items():
        if data.startswith(bom):
            raise InputError(
                f"not UTF-8 text ({name} byte order mark); convert it to UTF-8", source=source
            )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"binary data (NUL byte at offset {nul}), expected YAML or JSON text", source=source
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", source=source
        ) from exc
    return text.removeprefix("\ufeff")


def parse_documents(data: bytes, source: str, *, as_json: bool | None = None) -> list[Any]:
    """Every document of a YAML stream or a JSON value (a JSON array is one document)."""
    text = decode_text(data, source)
    if as_json is None:
        # `kubectl get -o json` output and .json files: the stdlib's C parser is ~10x faster.
        as_json = text.lstrip()[:1] in ("{", "[")
        if as_json:
            try:
                return [_json_value(text, source)]
            except _NotJsonError:
                as_json = False  # e.g. a YAML flow mapping `{kind: Pod}`: YAML decides.
    if as_json:
        return [_json_value(text, source)]
    # libyaml reads the (checked) UTF-8 bytes in place: one copy of the input fewer than text.
    del text
    return _yaml_documents(data, source)


# --- JSON ----------------------------------------------------------------------------------------


def _json_value(text: str, source: str) -> Any:
    # The C scanner enters one recursion level per array/object (Py_EnterRecursiveCall), so a
    # recursion limit of the current depth + MAX_DEPTH bounds the nesting it accepts.
    depth = _frame_depth()
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + MAX_DEPTH + 8)
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise InputError(
            f"invalid JSON: nested deeper than {MAX_DEPTH} levels", source=source
        ) from exc
    except json.JSONDecodeError as exc:
        raise _NotJsonError(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", source=source
        ) from exc
    finally:
        sys.setrecursionlimit(old)


class _NotJsonError(InputError):
    """Not JSON at all (rather than JSON too deep): text that may still be YAML."""


def _frame_depth() -> int:
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth


# --- YAML ----------------------------------------------------------------------------------------


class _Frame:
    __slots__ = ("anchor", "container", "is_map", "key", "nodes")

    def __init__(self, container: Any, is_map: bool, anchor: str | None) -> None:
        self.container = container
        self.is_map = is_map
        self.key: Any = _MISSING
        self.anchor = anchor
        self.nodes = 1  # this node and everything under it, aliases expanded


def _yaml_documents(data: bytes, source: str) -> list[Any]:
    try:
        return list(_iter_yaml(data, source))
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {' '.join(str(exc).split())}", source=source) from exc


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def _iter_yaml(data: bytes, source: str) -> Iterator[Any]:
    parser = _LOADER(data)
    resolver = yaml.resolver.Resolver()
    constructor = yaml.constructor.SafeConstructor()
    scalar_cache: dict[str, Any] = {}
    get_event = parser.get_event
    try:
        while True:
            event = get_event()
            if isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.DocumentStartEvent):
                yield _document(get_event, source, resolver, constructor, scalar_cache)
    finally:
        parser.dispose()


# One function on purpose: the event loop is the hot path (one call per event costs ~30%).
def _document(  # noqa: PLR0915
    get_event: Any,
    source: str,
    resolver: yaml.resolver.Resolver,
    constructor: yaml.constructor.SafeConstructor,
    cache: dict[str, Any],
) -> Any:
    stack: list[_Frame] = []
    scalar_event = yaml.ScalarEvent
    anchors: dict[str, tuple[Any, int]] = {}
    decoded = 0
    aliased = 0
    root: Any = _MISSING

    def fail(message: str, mark: Any) -> InputError:
        return InputError(f"invalid YAML: {message} ({_where(mark)})", source=source)

    while True:
        event = get_event()
        cls = event.__class__
        if cls is yaml.DocumentEndEvent:
            return None if root is _MISSING else root
        nodes = 1
        if cls is scalar_event:
            # Fast path inlined (most events): an untagged quoted scalar is its text, a plain
            # one is resolved once per distinct text.
            if event.tag is None and event.anchor is None:
                if not event.implicit[0]:
                    value = event.value
                else:
                    value = cache.get(event.value, _MISSING)
                    if value is _MISSING:
                        value = _scalar(event, resolver, constructor, cache, fail)
            else:
                value = _scalar(event, resolver, constructor, cache, fail)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
            decoded += 1
        elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise fail(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            is_map = cls is yaml.MappingStartEvent
            tag = event.tag
            if tag is not None and tag not in ("!", _MAP if is_map else _SEQ):
                raise fail(f"unsupported tag {tag!r}", event.start_mark)
            decoded += 1
            stack.append(_Frame({} if is_map else [], is_map, event.anchor))
            continue
        elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
            frame = stack.pop()
            value = frame.container
            nodes = frame.nodes
            if frame.anchor is not None:
                anchors[frame.anchor] = (value, nodes)
        elif cls is yaml.AliasEvent:
            target = anchors.get(event.anchor)
            if target is None:
                raise fail(f"unknown alias *{event.anchor}", event.start_mark)
            value, nodes = target
            # Counted as if expanded: go-yaml v2 decode.go increments both counters per node.
            decoded += nodes
            aliased += nodes
            if (
                aliased > 100
                and decoded > 1000
                and aliased / decoded > _allowed_alias_ratio(decoded)
            ):
                raise fail(
                    f"excessive aliasing ({aliased} of {decoded} nodes come from aliases)",
                    event.start_mark,
                )
        else:
            raise fail(f"unexpected {cls.__name__}", event.start_mark)
        if not stack:
            root = value
            continue
        parent = stack[-1]
        parent.nodes += nodes
        if value is _MERGE_KEY and not (parent.is_map and parent.key is _MISSING):
            value = "<<"
        if not parent.is_map:
            parent.container.append(value)
        elif parent.key is _MISSING:
            if isinstance(value, (dict, list)):
                raise fail("a mapping key must be a scalar", event.start_mark)
            parent.key = value
        else:
            key, parent.key = parent.key, _MISSING
            if key is _MERGE_KEY:
                _merge(parent.container, value, fail, event.start_mark)
            else:
                parent.container[key] = value


class _MergeKey:
    """The `<<` key (tag:yaml.org,2002:merge), kept apart from a literal "<<" string."""

    __hash__ = object.__hash__


_MERGE_KEY = _MergeKey()


def _merge(target: dict[Any, Any], value: Any, fail: Any, mark: Any) -> None:
    # YAML 1.1 merge keys, as go-yaml v2 and PyYAML: keys already present win.
    sources = value if isinstance(value, list) else [value]
    for src in sources:
        if not isinstance(src, dict):
            raise fail("a merge key (<<) takes a mapping or a list of mappings", mark)
        for key, item in src.items():
            target.setdefault(key, item)


def _scalar(
    event: Any,
    resolver: yaml.resolver.Resolver,
    constructor: yaml.constructor.SafeConstructor,
    cache: dict[str, Any],
    fail: Any,
) -> Any:
    value = event.value
    tag = event.tag
    if tag is None or tag == "!":
        plain = bool(event.implicit[0])
        if not plain:
            return value
        hit = cache.get(value, _MISSING)
        if hit is not _MISSING:
            return hit
        tag = resolver.resolve(yaml.ScalarNode, value, event.implicit)  # type: ignore[no-untyped-call]
        out = _construct(tag, value, constructor, fail, event)
        cache[value] = out
        return out
    return _construct(tag, value, constructor, fail, event)


def _construct(
    tag: str, value: str, constructor: yaml.constructor.SafeConstructor, fail: Any, event: Any
) -> Any:
    if tag in _AS_TEXT:
        return value
    if tag == _MERGE:
        return _MERGE_KEY
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return constructor.construct_yaml_bool(node)
        if tag == _INT:
            return constructor.construct_yaml_int(node)
        if tag == _FLOAT:
            return constructor.construct_yaml_float(node)
    except ValueError as exc:
        raise fail(f"invalid {tag.removeprefix(_TAG)} {value!r}", event.start_mark) from exc
    raise fail(f"unsupported tag {tag!r}", event.start_mark)


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= ALIAS_RATIO_HIGH:
        return 0.10
    span = ALIAS_RATIO_HIGH - ALIAS_RATIO_LOW
    return 0.99 - 0.89 * (decoded - ALIAS_RATIO_LOW) / span
