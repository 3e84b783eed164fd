"""Allowed traffic between two endpoints: port intervals per protocol, each with its HTTP filter.

A `PortSet` maps every protocol to sorted, disjoint, inclusive port intervals; each interval carries
an `Http` value: `None` means any request (L4 allow), otherwise a set of alternatives, each a
conjunction of (method regex, path regex) rules that must all match. Conjunctions only appear when
both the egress and the ingress side restrict the same port at L7.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Iterable, Iterator
from functools import lru_cache

PROTOCOLS: tuple[str, ...] = ("SCTP", "TCP", "UDP")
MIN_PORT = 1
MAX_PORT = 65535

HttpRule = tuple[str, str]
HttpConj = tuple[HttpRule, ...]
Http = frozenset[HttpConj] | None
Segment = tuple[int, int, Http]
Items = tuple[tuple[str, tuple[Segment, ...]], ...]


def http_union(a: Http, b: Http) -> Http:
    if a is None or b is None:
        return None
    return a | b


def http_intersect(a: Http, b: Http) -> Http:
    if a is None:
        return b
    if b is None:
        return a
    return frozenset(tuple(sorted(set(x) | set(y))) for x in a for y in b)


@lru_cache(maxsize=4096)
def compile_http_regex(pattern: str) -> re.Pattern[str]:
    """An HTTP rule's method or path regex; raises `re.error` if it does not parse.

    Cilium checks these with Go's `regexp.Compile` (pkg/policy/api/http.go, PortRuleHTTP.Sanitize)
    and Envoy matches them as RE2 `safe_regex`; Python's `re` only stands in to check that they
    parse. Its FutureWarnings ("Possible nested set" for `[[a]`) are about Python's future
    syntax, not the policy's, and a CLI must not leak them to stderr.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(pattern)


def http_allows(http: Http, method: str | None, path: str | None) -> bool:
    """Whether a request passes the filter; a request without method and path is an L4 probe."""
    if http is None or (method is None and path is None):
        return True
    return any(
        all(
            (method is None or compile_http_regex(m or ".*").fullmatch(method) is not None)
            and (path is None or compile_http_regex(p or ".*").fullmatch(path) is not None)
            for m, p in conj
        )
        for conj in http
    )


def _merge(segs: list[Segment]) -> tuple[Segment, ...]:
    """Sort and coalesce adjacent intervals with equal filters (input must be disjoint)."""
    segs.sort(key=lambda s: s[0])
    out: list[Segment] = []
    for lo, hi, http in segs:
        if out and out[-1][1] + 1 == lo and out[-1][2] == http:
            out[-1] = (out[-1][0], hi, http)
        else:
            out.append((lo, hi, http))
    return tuple(out)


def _sweep(a: tuple[Segment, ...], b: tuple[Segment, ...], union: bool) -> tuple[Segment, ...]:
    points = sorted(
        {s[0] for s in a} | {s[1] + 1 for s in a} | {s[0] for s in b} | {s[1] + 1 for s in b}
    )
    out: list[Segment] = []
    ia = ib = 0
    for lo, nxt in itertools.pairwise(points):
        while ia < len(a) and a[ia][1] < lo:
            ia += 1
        while ib < len(b) and b[ib][1] < lo:
            ib += 1
        ha = a[ia] if ia < len(a) and a[ia][0] <= lo else None
        hb = b[ib] if ib < len(b) and b[ib][0] <= lo else None
        if union:
            if ha is None and hb is None:
                continue
            if ha is None:
                http = hb[2]  # type: ignore[index]
            elif hb is None:
                http = ha[2]
            else:
                http = http_union(ha[2], hb[2])
        else:
            if ha is None or hb is None:
                continue
            http = http_intersect(ha[2], hb[2])
        out.append((lo, nxt - 1, http))
    return _merge(out)


def _subtract(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for lo, hi, http in a:
        cur = lo
        for blo, bhi, _ in b:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1, http))
            cur = max(cur, bhi + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi, http))
    return _merge(out)


class PortSet:
    """Immutable, hashable set of (protocol, port, request filter)."""

    __slots__ = ("_hash", "items")

    def __init__(self, items: Items) -> None:
        self.items = items
        self._hash = hash(items)

    @classmethod
    def build(cls, entries: Iterable[tuple[str, int, int, Http]]) -> PortSet:
        """From possibly overlapping (protocol, lo, hi, http) entries, unioned."""
        result = EMPTY
        for proto, lo, hi, http in entries:
            result = result | cls(((proto, ((lo, hi, http),)),))
        return result

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortSet) and self.items == other.items

    def __bool__(self) -> bool:
        return bool(self.items)

    def __repr__(self) -> str:
        return f"PortSet({self.items!r})"

    def _combine(self, other: PortSet, op: str) -> PortSet:
        key = (self, other, op)
        cached = _COMBINED.get(key)
        if cached is None:
            cached = self._compute(other, op)
            if len(_COMBINED) > 200_000:
                _COMBINED.clear()
            _COMBINED[key] = cached
        return cached

    def _compute(self, other: PortSet, op: str) -> PortSet:
        mine = dict(self.items)
        theirs = dict(other.items)
        out: list[tuple[str, tuple[Segment, ...]]] = []
        for proto in PROTOCOLS:
            a = mine.get(proto, ())
            b = theirs.get(proto, ())
            if op == "|":
                segs = a if not b else b if not a else _sweep(a, b, union=True)
            elif op == "&":
                segs = () if not a or not b else _sweep(a, b, union=False)
            else:
                segs = a if not b or not a else _subtract(a, b)
            if segs:
                out.append((proto, segs))
        return PortSet(tuple(out))

    def __or__(self, other: PortSet) -> PortSet:
        if not other.items or self is other or self == other:
            return self
        if not self.items:
            return other
        return self._combine(other, "|")

    def __and__(self, other: PortSet) -> PortSet:
        if self is ALL:
            return other
        if other is ALL:
            return self
        return self._combine(other, "&")

    def __sub__(self, other: PortSet) -> PortSet:
        """Remove whole ports (deny rules carry no L7 part)."""
        if not other.items or not self.items:
            return self
        return self._combine(other, "-")

    def lookup(self, protocol: str, port: int) -> tuple[bool, Http]:
        for proto, segs in self.items:
            if proto == protocol:
                for lo, hi, http in segs:
                    if lo <= port <= hi:
                        return True, http
        return False, None

    def allows(self, protocol: str, port: int, method: str | None, path: str | None) -> bool:
        found, http = self.lookup(protocol, port)
        return found and http_allows(http, method, path)

    def groups(self) -> Iterator[tuple[str, Http, list[tuple[int, int]]]]:
        """(protocol, http, intervals) groups, deterministic order."""
        for proto, segs in self.items:
            by_http: dict[Http, list[tuple[int, int]]] = {}
            for lo, hi, http in segs:
                by_http.setdefault(http, []).append((lo, hi))
            for http in sorted(by_http, key=http_sort_key):
                yield proto, http, by_http[http]

    def l7_restricted(self) -> bool:
        """L7 HTTP rules narrow some port (the word `Verdict.l7_restricted` uses too); whether an
        enforcer applies such rules at all is its profile's `l7_policy`."""
        return any(http is not None for _, segs in self.items for _, _, http in segs)

    def without_http(self) -> PortSet:
        """The L4 footprint: every port that lets at least some request through."""
        return PortSet(
            tuple(
                (proto, _merge([(lo, hi, None) for lo, hi, _ in segs]))
                for proto, segs in self.items
            )
        )


def http_sort_key(http: Http) -> tuple[int, list[HttpConj]]:
    return (0, []) if http is None else (1, sorted(http))


_COMBINED: dict[tuple[PortSet, PortSet, str], PortSet] = {}
EMPTY = PortSet(())
ALL = PortSet(tuple((proto, ((MIN_PORT, MAX_PORT, None),)) for proto in PROTOCOLS))
