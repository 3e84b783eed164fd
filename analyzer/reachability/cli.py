"""`python -m reachability {list,query,diff,audit}`: who can reach whom under a profile.

The IaC program runs the same command line as `python -m cnistack connectivity`, giving it the
`--stack`/`stack:NAME` sources (cnistack/cli/connectivity_command.py); on its own the analyzer
reads manifests and live clusters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from reachability import reading
from reachability.audit import AUDIT_FORMATS, EXIT_BITS, FINDINGS, audit, write_audit
from reachability.classes import gc_paused
from reachability.diff import DIFF_FORMATS, diff_flows, write_diff
from reachability.engine import Analyzer, Request
from reachability.errors import InputError
from reachability.grouped import build_grouping, write_grouped
from reachability.hubble import read_flow_file
from reachability.inputs import Inputs
from reachability.loader import load_paths
from reachability.output import LIST_FORMATS, http_text, write_list
from reachability.ports import MAX_PORT, MIN_PORT, PROTOCOLS
from reachability.profiles import PROFILE_NAMES

PROG = "python -m reachability"

# A stack name -> its documents and its own enforcement profile (given by the IaC program).
StackInputs = Callable[[str], tuple[Inputs, str]]


@dataclass(frozen=True)
class Run:
    """What the caller adds to the command line: its name, and how to read `stack:` sources."""

    prog: str = PROG
    stack_inputs: StackInputs | None = None

    def stack(self, name: str) -> tuple[Inputs, str]:
        if self.stack_inputs is None:
            raise InputError(
                f"stack {name!r}: stack sources need the IaC program "
                "(python -m cnistack connectivity)"
            )
        return self.stack_inputs(name)


@dataclass
class Source:
    label: str
    base: str
    inputs: Inputs
    enforcement: str  # a profile name (reachability/profiles.py), as given


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Who can reach whom under an enforcement profile (kube-router or cilium).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_input(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--stack", help="analyse what the program renders for this stack")
        group.add_argument(
            "--manifests", nargs="+", metavar="PATH", help="YAML/JSON files, directories, - (stdin)"
        )
        group.add_argument(
            "--cluster",
            nargs="?",
            const="",
            metavar="CONTEXT",
            help="read a live cluster through its API (kubeconfig context; default: current)",
        )
        p.add_argument("--kubeconfig", help="kubeconfig for --cluster (default: the client's)")
        p.add_argument(
            "--enforcement",
            choices=PROFILE_NAMES,
            help="enforcement profile (default with --stack: the stack's own; required otherwise)",
        )

    p_list = sub.add_parser("list", help="every allowed flow")
    add_input(p_list)
    p_list.add_argument("--format", choices=LIST_FORMATS, default="txt")
    p_list.add_argument(
        "--per-pod",
        action="store_true",
        help="one entry per pod pair (default: per group of pods that behave alike)",
    )
    p_list.add_argument("-o", "--output", help="write to this file instead of stdout")

    p_query = sub.add_parser("query", help="is one flow (or each flow of a probes file) allowed?")
    add_input(p_query)
    p_query.add_argument("--from", dest="src", metavar="NS/POD|IP")
    p_query.add_argument("--to", dest="dst", metavar="NS/POD|IP")
    p_query.add_argument("--protocol", default="TCP", type=str.upper, choices=PROTOCOLS)
    p_query.add_argument("--port", type=int)
    p_query.add_argument("--method", help="HTTP method (Cilium L7 rules)")
    p_query.add_argument("--path", help="HTTP path (Cilium L7 rules)")
    p_query.add_argument("--probes", metavar="FILE", help="YAML/JSON list of probes")
    p_query.add_argument("--format", choices=("txt", "json"), default="txt")

    p_diff = sub.add_parser(
        "diff",
        help="flows added, removed and changed from A to B",
        description=(
            "A and B are `stack:NAME`, `manifests:PATH[,PATH...]` (or a bare PATH) or "
            "`cluster:[CONTEXT]` (a live cluster, see --kubeconfig), each with an optional "
            "`@kube-router`/`@cilium` suffix choosing the enforcement profile (default: "
            "--enforcement, else the stack side's own). Examples: "
            "`diff stack:homelab stack:production`; "
            "`diff manifests:out/production/manifests@kube-router "
            "manifests:out/production/manifests@cilium` (directories written by `render`); "
            "`diff stack:production cluster:prod` (drift)."
        ),
    )
    p_diff.add_argument("a", metavar="A")
    p_diff.add_argument("b", metavar="B")
    p_diff.add_argument("--enforcement", choices=PROFILE_NAMES, help="profile for sides without @")
    p_diff.add_argument(
        "--kubeconfig", help="kubeconfig for cluster: sides (default: the client's)"
    )
    p_diff.add_argument("--format", choices=DIFF_FORMATS, default="txt")
    p_diff.add_argument("-o", "--output", help="write to this file instead of stdout")

    p_audit = sub.add_parser(
        "audit",
        help="Hubble flows against the policies: enforcement gaps, broken intents, unused paths",
        description=(
            "Reads Hubble flow JSON lines (`hubble observe -o json|jsonpb`, the Hubble exporter "
            "file) and reports (a) forwarded flows the policies do not allow, (b) flows dropped "
            "by policy that the model allows, (c) allowed paths never seen, (d) flows between "
            "identities the analyzer does not know. The model is --stack, --manifests or a "
            "SOURCE as in `diff` (stack:NAME, manifests:PATH[,PATH...], with @profile). Exit "
            "status: the OR of "
            + ", ".join(f"{v} ({k})" for k, v in EXIT_BITS.items())
            + " for the findings named by --fail-on; 2 on bad input."
        ),
    )
    p_audit.add_argument("--flows", required=True, metavar="FILE", help="Hubble flow JSON lines")
    p_audit.add_argument("source", nargs="?", metavar="SOURCE", help="model, as a diff side")
    audit_group = p_audit.add_mutually_exclusive_group()
    audit_group.add_argument("--stack", help="the model is what the program renders for a stack")
    audit_group.add_argument("--manifests", nargs="+", metavar="PATH", help="YAML files/dirs")
    p_audit.add_argument("--enforcement", choices=PROFILE_NAMES, help="enforcement profile")
    p_audit.add_argument(
        "--kubeconfig", help="kubeconfig for a cluster: SOURCE (default: the client's)"
    )
    p_audit.add_argument("--format", choices=AUDIT_FORMATS, default="txt")
    p_audit.add_argument(
        "--fail-on",
        default="gap,broken",
        help=f"findings that set the exit status, from {','.join(FINDINGS)} "
        "('' = never; default: %(default)s)",
    )
    p_audit.add_argument("-o", "--output", help="write to this file instead of stdout")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str = PROG,
    stack_inputs: StackInputs | None = None,
) -> int:
    run = Run(prog, stack_inputs)
    parser = _parser(prog)
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        # A short-lived process that builds millions of objects and frees them at exit: the
        # cyclic collector would only walk them again and again (loading included).
        with gc_paused():
            return _command(args, run)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (head, less) went away: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _command(args: argparse.Namespace, run: Run) -> int:
    if args.command == "list":
        return _list(args, run)
    if args.command == "query":
        return _query(args, run)
    if args.command == "audit":
        return _audit(args, run)
    return _diff(args, run)


def _source(
    run: Run,
    stack: str | None,
    manifests: Sequence[str] | None,
    enforcement: str | None,
    *,
    cluster: str | None = None,
    kubeconfig: str | None = None,
) -> Source:
    if cluster is not None:
        # Imported here: the Kubernetes client takes ~0.5-1.4 s to import, files never need it,
        # and it is an optional extra (`reachability[live]`), absent from the Pulumi runtime.
        try:
            from reachability.cluster_source import (  # noqa: PLC0415
                cluster_label,
                load_cluster_inputs,
            )
        except ModuleNotFoundError as exc:
            if exc.name != "kubernetes":
                raise
            raise InputError(
                "reading a live cluster needs the Kubernetes client: "
                "pip install -e './analyzer[live]' (make install puts it in .venv-dev)"
            ) from exc

        base = cluster_label(cluster)
        if enforcement is None:
            raise InputError(f"--enforcement kube-router|cilium is required with {base}")
        inputs = load_cluster_inputs(cluster or None, kubeconfig)
        return Source(f"{base}@{enforcement}", base, inputs, enforcement)
    if stack is not None:
        inputs, own = run.stack(stack)
        chosen = enforcement or own
        label = stack if chosen == own else f"{stack}@{chosen}"
        return Source(label, f"stack:{stack}", inputs, chosen)
    paths = list(manifests or [])
    if enforcement is None:
        raise InputError("--enforcement kube-router|cilium is required with manifests")
    inputs = load_paths(paths)
    base = ",".join(paths)
    return Source(f"{base}@{enforcement}", base, inputs, enforcement)


def _analyzer(source: Source) -> Analyzer:
    analyzer = Analyzer(source.inputs, source.enforcement)
    for line in analyzer.notes:
        print(f"note: {line}", file=sys.stderr)
    for r in analyzer.rejected:
        # One warning per object, as the agent logs one "Unable to add CiliumNetworkPolicy".
        print(
            f"warning: {r.source}: {r.policy} left out: the agent ({source.enforcement}) refuses "
            f"to import it and enforces every other policy: {r.reason}",
            file=sys.stderr,
        )
    return analyzer


def _open(path: str | None) -> TextIO:
    return open(path, "w", encoding="utf-8") if path else sys.stdout


def _list(args: argparse.Namespace, run: Run) -> int:
    source = _source(
        run,
        args.stack,
        args.manifests,
        args.enforcement,
        cluster=args.cluster,
        kubeconfig=args.kubeconfig,
    )
    analyzer = _analyzer(source)
    out = _open(args.output)
    try:
        if args.per_pod and args.format != "dot":
            write_list(analyzer.flows(), source.enforcement, args.format, out, analyzer.rejected)
        else:
            write_grouped(build_grouping(analyzer, per_pod=args.per_pod), args.format, out)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _query(args: argparse.Namespace, run: Run) -> int:
    if args.probes is None and (args.src is None or args.dst is None or args.port is None):
        print(
            f"{run.prog} query: error: give --from, --to and --port, or --probes FILE",
            file=sys.stderr,
        )
        return 2
    source = _source(
        run,
        args.stack,
        args.manifests,
        args.enforcement,
        cluster=args.cluster,
        kubeconfig=args.kubeconfig,
    )
    analyzer = _analyzer(source)
    if args.probes is not None:
        probes = _read_probes(args.probes)
        results = [
            _answer(analyzer, probe, f"{args.probes}: probe {i}") for i, probe in enumerate(probes)
        ]
        if analyzer.rejected:
            # The answers are a list, one per probe: each says what its model left out.
            for result in results:
                result["rejected"] = [r.json() for r in analyzer.rejected]
        json.dump(results, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    probe: dict[str, Any] = {
        "from": args.src,
        "to": args.dst,
        "protocol": args.protocol,
        "port": args.port,
    }
    if args.method is not None:
        probe["method"] = args.method
    if args.path is not None:
        probe["path"] = args.path
    result = _answer(analyzer, probe, "query")
    result["rejected"] = [r.json() for r in analyzer.rejected]
    if args.format == "json":
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        request = " ".join(str(probe[k]) for k in ("method", "path") if k in probe)
        verdict = "allow" if result["allowed"] else "deny"
        print(
            f"{verdict} {args.src} -> {args.dst} {args.protocol}/{args.port}"
            + (f" {request}" if request else "")
            + f"  [{source.enforcement}]"
        )
        if result.get("l7"):
            print(f"  L4 probe; HTTP on this port is restricted to: {result['l7']}")
        labels = result["policy_labels"] or ["(no policy selects these endpoints)"]
        if result.get("local_host"):
            labels = [
                "(the destination's own node: its host-network pods reach it on every port, "
                "whatever ingress allows)",
                *result["policy_labels"],
            ]
        print("  decided by: " + ", ".join(labels))
        for r in analyzer.rejected:
            print(f"  {r.line}")
    return 0 if result["allowed"] else 1


def _read_probes(path: str) -> list[dict[str, Any]]:
    # Same limits as manifests (size, encoding, nesting, aliases): a probes file is input too.
    documents = reading.parse_documents(reading.read_bytes(Path(path)), path)
    data = documents[0] if len(documents) == 1 else documents
    if isinstance(data, dict) and isinstance(data.get("probes"), list):
        data = data["probes"]
    if not isinstance(data, list):
        raise InputError("expected a list of probes {from, to, protocol, port}", source=path)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError(f"probe {i}: expected a mapping", source=path)
    return data


def _answer(analyzer: Analyzer, probe: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("from", "to", "port"):
        if key not in probe:
            raise InputError(f"{where}: missing {key!r}")
    protocol = str(probe.get("protocol") or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise InputError(f"{where}: invalid protocol {probe.get('protocol')!r}")
    port = probe["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not MIN_PORT <= port <= MAX_PORT:
        raise InputError(f"{where}: port must be a number in 1-65535, got {port!r}")
    method = probe.get("method")
    path = probe.get("path")
    request = Request(
        protocol, port, None if method is None else str(method), None if path is None else str(path)
    )
    try:
        verdict = analyzer.query(str(probe["from"]), str(probe["to"]), request)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc
    result = dict(probe)
    result["allowed"] = verdict.allowed
    result["policies"] = [str(ref) for ref in verdict.policies]
    if verdict.local_host:
        result["local_host"] = True
    if where == "query":
        result["policy_labels"] = [ref.label for ref in verdict.policies]
        if verdict.l7_restricted and method is None and path is None:
            result["l7"] = http_text(verdict.ports.lookup(protocol, port)[1])
    return result


def _split_side(spec: str) -> tuple[str, str | None]:
    for name in PROFILE_NAMES:
        if spec.endswith(f"@{name}"):
            return spec[: -len(name) - 1], name
    return spec, None


def _side(run: Run, spec: str, default: str | None, kubeconfig: str | None = None) -> Source:
    base, profile = _split_side(spec)
    profile = profile or default
    if base.startswith("stack:"):
        return _source(run, base.removeprefix("stack:"), None, profile)
    if base.startswith("cluster:"):
        if profile is None:
            raise InputError(f"diff side {spec!r}: add @kube-router or @cilium (or --enforcement)")
        return _source(
            run, None, None, profile, cluster=base.removeprefix("cluster:"), kubeconfig=kubeconfig
        )
    paths = [p for p in base.removeprefix("manifests:").split(",") if p]
    if not paths:
        raise InputError(f"diff side {spec!r}: expected stack:NAME or manifests:PATH[,PATH...]")
    if profile is None:
        raise InputError(f"diff side {spec!r}: add @kube-router or @cilium (or --enforcement)")
    return _source(run, None, paths, profile)


def _diff(args: argparse.Namespace, run: Run) -> int:
    default = args.enforcement
    if default is None:
        # `diff stack:production cluster:prod`: the other side is read under the stack's profile.
        stacks = [(b, p) for b, p in map(_split_side, (args.a, args.b)) if b.startswith("stack:")]
        if len(stacks) == 1:
            base, profile = stacks[0]
            default = profile or run.stack(base.removeprefix("stack:"))[1]
    a = _side(run, args.a, default, args.kubeconfig)
    b = _side(run, args.b, default, args.kubeconfig)
    a_label, b_label = a.label, b.label
    if a.base == b.base and a.enforcement != b.enforcement:
        a_label, b_label = a.enforcement, b.enforcement
    elif a_label == b_label:
        a_label, b_label = f"A ({a_label})", f"B ({b_label})"
    a_analyzer, b_analyzer = _analyzer(a), _analyzer(b)
    changes = diff_flows(a_analyzer.flows(), b_analyzer.flows())
    out = _open(args.output)
    try:
        rejected = (a_analyzer.rejected, b_analyzer.rejected)
        write_diff(changes, a_label, b_label, args.format, out, rejected=rejected)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _audit(args: argparse.Namespace, run: Run) -> int:
    fail_on = tuple(name for name in args.fail_on.split(",") if name)
    for name in fail_on:
        if name not in FINDINGS:
            raise InputError(
                f"--fail-on: unknown finding {name!r} (expected {', '.join(FINDINGS)})"
            )
    given = [x for x in (args.source, args.stack, args.manifests) if x]
    if len(given) != 1:
        raise InputError("audit: give the model as exactly one of SOURCE, --stack or --manifests")
    if args.source:
        source = _side(run, args.source, args.enforcement, args.kubeconfig)
    else:
        source = _source(run, args.stack, args.manifests, args.enforcement)
    flows = read_flow_file(args.flows)
    report = audit(_analyzer(source), flows, source.label)
    out = _open(args.output)
    try:
        write_audit(report, args.format, fail_on, out)
    finally:
        if out is not sys.stdout:
            out.close()
    return report.exit_status(fail_on)
