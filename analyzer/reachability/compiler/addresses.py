"""Addresses on one number line: IPv4 at [0, 2^32), IPv6 shifted past it, so a CIDR (minus its
`except` holes) is a tuple of integer ranges and the engine compares ranges, not networks."""

from __future__ import annotations

import ipaddress
from typing import Any

from reachability.compiler.model import Context

V6_OFFSET = 1 << 32
LINE_END = V6_OFFSET + (1 << 128) - 1


def address_to_line(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return int(addr) if addr.version == 4 else V6_OFFSET + int(addr)


def network_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
    lo = address_to_line(net.network_address)
    return lo, lo + net.num_addresses - 1


def _parse_net(
    ctx: Context, cidr: Any, where: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(cidr), strict=False)
    except ValueError as exc:
        raise ctx.error(f"{where}: invalid CIDR {cidr!r}") from exc


def cidr_ranges(ctx: Context, cidr: Any, excepts: Any, where: str) -> tuple[tuple[int, int], ...]:
    # ipaddress parsing dominates compiling ipBlock-heavy policy sets; the same blocks repeat.
    memo = (str(cidr), tuple(map(str, excepts)) if isinstance(excepts, list) else repr(excepts))
    known = _CIDR_RANGES.get(memo)
    if known is not None:
        return known
    result = _CIDR_RANGES[memo] = _cidr_ranges_uncached(ctx, cidr, excepts, where)
    return result


_CIDR_RANGES: dict[tuple[str, object], tuple[tuple[int, int], ...]] = {}


def _cidr_ranges_uncached(
    ctx: Context, cidr: Any, excepts: Any, where: str
) -> tuple[tuple[int, int], ...]:
    net = _parse_net(ctx, cidr, where)
    lo, hi = network_range(net)
    holes = sorted(
        network_range(_parse_net(ctx, e, f"{where}.except[{i}]")) for i, e in enumerate(excepts)
    )
    out: list[tuple[int, int]] = []
    cur = lo
    for hlo, hhi in holes:
        if hhi < cur or hlo > hi:
            continue
        if hlo > cur:
            out.append((cur, hlo - 1))
        cur = max(cur, hhi + 1)
    if cur <= hi:
        out.append((cur, hi))
    return tuple(out)
