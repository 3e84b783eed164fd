"""Flow listings in txt, md, csv and json; written line by line so large outputs stream.

Dot pictures, per group or `--per-pod`, are drawn by pictures.py (`write_grouped`), not here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from reachability.ports import Http, PortSet
from reachability.results import AllowedFlow, Rejected

LIST_FORMATS = ("txt", "md", "csv", "json", "dot")


def http_json(http: Http) -> list[dict[str, Any]] | None:
    """`None` = any request; alternatives are {method, path}, or {all: [...]} for a conjunction."""
    if http is None:
        return None
    out: list[dict[str, Any]] = []
    for conj in sorted(http):
        rules = [{"method": m, "path": p} for m, p in conj]
        out.append(rules[0] if len(rules) == 1 else {"all": rules})
    return out


def flow_entries(src: str, dst: str, ports: PortSet) -> Iterator[dict[str, Any]]:
    for proto, http, intervals in ports.groups():
        yield {
            "from": src,
            "to": dst,
            "protocol": proto,
            "ports": [[lo, hi] for lo, hi in intervals],
            "http": http_json(http),
        }


def ranges_text(intervals: Iterable[tuple[int, int]]) -> str:
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in intervals]
    return "all" if parts == ["1-65535"] else ",".join(parts)


def http_text(http: Http) -> str:
    if http is None:
        return ""
    alts = []
    for conj in sorted(http):
        alts.append(" & ".join(f"{m or '*'} {p or '*'}" for m, p in conj))
    return "HTTP " + " | ".join(alts)


def ports_text(ports: PortSet) -> str:
    parts = []
    for proto, http, intervals in ports.groups():
        text = f"{proto}/{ranges_text(intervals)}"
        extra = http_text(http)
        parts.append(f"{text} [{extra}]" if extra else text)
    return "; ".join(parts)


def write_rejected_md(rejected: Sequence[Rejected], out: TextIO) -> None:
    """The policies left out of the model, as a Markdown paragraph (nothing when none)."""
    if rejected:
        out.write("Left out, as the agent refuses to import them:\n\n")
        out.writelines(f"- `{md_escape(r.policy)}`: {md_escape(r.reason)}\n" for r in rejected)
        out.write("\n")


def write_list(
    flows: Iterable[AllowedFlow],
    enforcement: str,
    fmt: str,
    out: TextIO,
    rejected: Sequence[Rejected] = (),
) -> int:
    """Write the per-pod listing (txt, md, csv, json); returns the number of (from, to) pairs.
    `rejected`: the policies left out, named in every format but csv (one row per flow)."""
    count = 0
    if fmt == "json":
        rejected_json = json.dumps([r.json() for r in rejected])
        out.write(
            f'{{"enforcement": {json.dumps(enforcement)}, "rejected": {rejected_json}, "flows": ['
        )
        sep = "\n  "
        names: dict[str, str] = {}
        tails: dict[PortSet, list[str]] = {}
        for src, dst, ports in flows:
            count += 1
            # Same text as json.dumps of each flow_entries() item, built from cached pieces.
            src_json = names.get(src) or names.setdefault(src, json.dumps(src))
            dst_json = names.get(dst) or names.setdefault(dst, json.dumps(dst))
            tail = tails.get(ports)
            if tail is None:
                tail = tails[ports] = [json_tail(e) for e in flow_entries("", "", ports)]
            for piece in tail:
                out.write(f'{sep}{{"from": {src_json}, "to": {dst_json}, {piece}}}')
                sep = ",\n  "
        out.write("\n]}\n" if count else "]}\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["from", "to", "protocol", "ports", "http"])
        for src, dst, ports in flows:
            count += 1
            for proto, http, intervals in ports.groups():
                writer.writerow([src, dst, proto, ranges_text(intervals), http_text(http)])
    elif fmt == "md":
        out.write(f"Allowed flows under **{enforcement}**:\n\n")
        write_rejected_md(rejected, out)
        out.write("| from | to | allowed |\n|---|---|---|\n")
        for src, dst, ports in flows:
            count += 1
            out.write(f"| `{src}` | `{dst}` | {md_escape(ports_text(ports))} |\n")
    else:
        out.write(f"# allowed flows under {enforcement}\n")
        out.writelines(f"# {r.line}\n" for r in rejected)
        for src, dst, ports in flows:
            count += 1
            out.write(f"{src} -> {dst}  {ports_text(ports)}\n")
    return count


def json_tail(entry: dict[str, Any]) -> str:
    """A flow entry's JSON members after `from` and `to`, to be joined after them."""
    body = {k: v for k, v in entry.items() if k not in ("from", "to")}
    return json.dumps(body, separators=(", ", ": "))[1:-1]


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")
