"""Flows added, removed and changed between two analyses (two stacks, inputs or profiles)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from reachability.output import flow_entries, md_escape, ports_text
from reachability.pictures import write_diff_dot
from reachability.results import AllowedFlow, Change, Rejected

DIFF_FORMATS = ("txt", "md", "json", "dot")


def diff_flows(a: Iterable[AllowedFlow], b: Iterable[AllowedFlow]) -> list[Change]:
    left = {(s, d): p for s, d, p in a}
    right = {(s, d): p for s, d, p in b}
    changes = [
        Change(s, d, left.get((s, d)), right.get((s, d)))
        for s, d in sorted(left.keys() | right.keys())
        if left.get((s, d)) != right.get((s, d))
    ]
    return changes


def note(change: Change, a_name: str, b_name: str) -> str:
    if change.a is None or change.b is None:
        return ""
    notes = []
    if change.a.without_http() != change.b.without_http():
        notes.append(f"ports differ ({change.direction} in {b_name})")
    a_l7, b_l7 = change.a.l7_restricted(), change.b.l7_restricted()
    if a_l7 and not b_l7:
        notes.append(f"L7-restricted in {a_name}, whole-port in {b_name}")
    elif b_l7 and not a_l7:
        notes.append(f"L7-restricted in {b_name}, whole-port in {a_name}")
    elif a_l7 and b_l7 and change.a.without_http() == change.b.without_http():
        notes.append(f"different HTTP rules in {a_name} and {b_name}")
    return "; ".join(notes)


def write_diff(
    changes: list[Change],
    a_name: str,
    b_name: str,
    fmt: str,
    out: TextIO,
    *,
    rejected: tuple[Sequence[Rejected], Sequence[Rejected]] = ((), ()),
) -> None:
    """`rejected`: the policies each side leaves out (its agent refuses them), named in every
    format: an upgrade that makes the agent refuse a policy shows here, beside what it changes."""
    lines = [f"{a_name}: {r.line}" for r in rejected[0]]
    lines += [f"{b_name}: {r.line}" for r in rejected[1]]
    if fmt == "json":
        doc: dict[str, Any] = {
            "a": a_name,
            "b": b_name,
            "rejected": {
                side: [r.json() for r in rs] for side, rs in zip("ab", rejected, strict=True)
            },
            "added": [],
            "removed": [],
            "changed": [],
        }
        for ch in changes:
            if ch.status == "changed":
                assert ch.a is not None and ch.b is not None
                doc["changed"].append(
                    {
                        "from": ch.src,
                        "to": ch.dst,
                        "change": ch.direction,
                        "note": note(ch, a_name, b_name),
                        "a": [_strip(e) for e in flow_entries(ch.src, ch.dst, ch.a)],
                        "b": [_strip(e) for e in flow_entries(ch.src, ch.dst, ch.b)],
                    }
                )
            else:
                ports = ch.b if ch.a is None else ch.a
                assert ports is not None
                doc[ch.status].extend(flow_entries(ch.src, ch.dst, ports))
        json.dump(doc, out, indent=1)
        out.write("\n")
    elif fmt == "dot":
        write_diff_dot(changes, a_name, b_name, out, lines)
    elif fmt == "md":
        out.write(f"Connectivity changes from **{a_name}** to **{b_name}**:\n\n")
        out.writelines(f"- {md_escape(line)}\n" for line in lines)
        out.write("\n" if lines else "")
        out.write(
            f"| change | from | to | {a_name} | {b_name} | note |\n|---|---|---|---|---|---|\n"
        )
        for ch in changes:
            a = ports_text(ch.a) if ch.a is not None else "-"
            b = ports_text(ch.b) if ch.b is not None else "-"
            row = [
                ch.status,
                f"`{ch.src}`",
                f"`{ch.dst}`",
                md_escape(a),
                md_escape(b),
                note(ch, a_name, b_name),
            ]
            out.write("| " + " | ".join(row) + " |\n")
    else:
        counts = {
            s: sum(1 for c in changes if c.status == s) for s in ("added", "removed", "changed")
        }
        out.write(
            f"# {a_name} -> {b_name}: {counts['added']} added, {counts['removed']} removed, "
            f"{counts['changed']} changed\n"
        )
        out.writelines(f"# {line}\n" for line in lines)
        for ch in changes:
            mark = {"added": "+", "removed": "-", "changed": "~"}[ch.status]
            line = f"{mark} {ch.src} -> {ch.dst}  {_side_text(ch, a_name, b_name)}"
            extra = note(ch, a_name, b_name)
            out.write(f"{line}  ({extra})\n" if extra else line + "\n")


def _side_text(ch: Change, a_name: str, b_name: str) -> str:
    if ch.a is None and ch.b is not None:
        return f"{ports_text(ch.b)} (only in {b_name})"
    if ch.b is None and ch.a is not None:
        return f"{ports_text(ch.a)} (only in {a_name})"
    assert ch.a is not None and ch.b is not None
    return f"{a_name}: {ports_text(ch.a)} | {b_name}: {ports_text(ch.b)}"


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("from", "to")}
