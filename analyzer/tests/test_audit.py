"""`connectivity audit`: Hubble flow records (hand-written to flow.proto's JSON mapping, v1.15.0)
against a model.
analyzer/tests/data/audit/model.yaml: namespace `app` is default-deny for ingress, `db`
accepts TCP/5432 from `api`, `api` accepts GET /api/.* on TCP/8080 from `frontend` (Cilium L7);
namespace `open` has no policy. analyzer/tests/data/audit/flows.jsonl, line by line:
 1 frontend->api TCP/8080 L3_L4 FORWARDED (exporter wrapper; pod name of a real replica)
 2 frontend->api GET /api/v1/models L7 REQUEST FORWARDED      3 its L7 RESPONSE (reply)
 4 frontend->api POST /api/v1/models?force=1 L7 DROPPED (403)  5 frontend->db TCP/5432 FORWARDED
 6 api->db TCP/5432 DROPPED POLICY_DENIED    7 api->db DROPPED CT_UNKNOWN_L4_PROTOCOL (not policy)
 8 db->frontend SYN-ACK, is_reply            9 reserved:host->db TCP/5432 FORWARDED
10 app/batch-... (labels no model pod has)->api FORWARDED   11 world 203.0.113.7->open/tool TCP/22
12 relay node_status event   13 open/tool->api TCP/8080 FORWARDED (bare flow: `hubble observe -o
json`)   14 open/tool->frontend UDP/80 AUDIT   15 frontend->tool ICMPv4   16 agent_event
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import AUDIT

from reachability.cli import main
from reachability.hubble import parse_flow_lines

DATA = AUDIT
FLOWS = str(DATA / "flows.jsonl")
MODEL = str(DATA / "model.yaml")
BASE = ["audit", "--flows", FLOWS, "--manifests", MODEL, "--enforcement", "cilium"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


EXPECTED_TXT = f"""\
# audit of {FLOWS} against {MODEL}@cilium (cilium)
# window: 2024-05-01T10:00:00.100Z .. 2024-05-01T10:00:10Z; 16 records, 8 used as evidence, 5 consistent with the model
# skipped: 1 drops not caused by policy (CT_UNKNOWN_L4_PROTOCOL), 1 records without a TCP/UDP/SCTP destination port, 2 replies (is_reply); non-flow events: 1 agent_event, 1 node_status
## (a) enforcement gap: forwarded, not allowed by the policies: 2
app/frontend -> app/db TCP/5432  forwarded x1 (lines 5); model: NetworkPolicy app/default-deny, NetworkPolicy app/db-from-api; allowed between them: nothing
open/tool -> app/api TCP/8080  forwarded x1 (lines 13); model: NetworkPolicy app/default-deny, CiliumNetworkPolicy app/api-from-frontend; allowed between them: nothing
## (b) broken intent: dropped by policy, allowed by the model: 1
app/api -> app/db TCP/5432  dropped x1 (lines 6); model: NetworkPolicy app/db-from-api; allowed between them: TCP/5432
## (c) allowed by a policy, never seen in the window: least-privilege candidates: 1
app/api -> app/db  TCP/5432
## (d) flows between identities the analyzer does not know: 2
app/batch-28550400-q8v2m (identity 51299, 10.0.1.9) -> app/api  forwarded x1: source: no pod of the model has these labels
reserved:host (identity 1, 172.18.0.2) -> app/db  forwarded x1: source: reserved identity 'host' is not modelled
# 7 unseen pairs are open (no policy selects either side) and not listed
"""  # noqa: E501


def test_audit_text_report_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *BASE)
    assert out == EXPECTED_TXT
    assert code == 1 | 4  # gap and broken intent


def test_audit_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *BASE, "--format", "json")
    doc = json.loads(out)
    assert code == 5 and doc["exit_status"] == 5
    assert (doc["records"], doc["evidence"], doc["consistent"]) == (16, 8, 5)
    assert doc["non_flow_events"] == {"agent_event": 1, "node_status": 1}
    assert doc["broken_intent"] == [
        {"from": "app/api", "to": "app/db", "protocol": "TCP", "port": 5432, "observed": "dropped",
         "count": 1, "lines": [6], "policies": ["NetworkPolicy app/db-from-api"],
         "allowed": "TCP/5432"},
    ]  # fmt: skip
    assert [(g["from"], g["to"], g["port"]) for g in doc["enforcement_gap"]] == [
        ("app/frontend", "app/db", 5432),
        ("open/tool", "app/api", 8080),
    ]
    assert doc["unused_allowed"] == [{"from": "app/api", "to": "app/db", "allowed": "TCP/5432"}]
    assert [u["reason"] for u in doc["unknown_identities"]] == [
        "source: no pod of the model has these labels",
        "source: reserved identity 'host' is not modelled",
    ]


@pytest.mark.parametrize(
    ("fail_on", "status"),
    [("", 0), ("gap", 1), ("broken", 4), ("unknown", 8), ("unused", 16), ("gap,unknown", 9)],
)
def test_fail_on_selects_the_exit_bits(
    capsys: pytest.CaptureFixture[str], fail_on: str, status: int
) -> None:
    code, _, _ = run(capsys, *BASE, "--fail-on", fail_on)
    assert code == status


def test_model_as_a_diff_side(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "--flows", FLOWS, f"manifests:{MODEL}@cilium")
    assert code == 5 and out == EXPECTED_TXT


def test_exporter_wrapper_and_bare_flow_read_alike() -> None:
    flow = {
        "verdict": 1,  # enums may arrive as numbers
        "Type": 1,
        "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},
        "l4": {"UDP": {"source_port": 5353, "destination_port": 53}},
        "traffic_direction": 2,
        "is_reply": False,
    }
    wrapped = json.dumps({"flow": flow, "node_name": "n1", "time": "2024-01-01T00:00:00Z"})
    parsed = parse_flow_lines([wrapped, json.dumps(flow)], "mem").flows
    assert [(f.verdict, f.flow_type, f.protocol, f.port, f.direction) for f in parsed] == [
        ("FORWARDED", "L3_L4", "UDP", 53, "EGRESS"),
        ("FORWARDED", "L3_L4", "UDP", 53, "EGRESS"),
    ]


def test_l7_url_keeps_the_query_cilium_matches_on() -> None:
    lines = (DATA / "flows.jsonl").read_text(encoding="utf-8").splitlines()
    flow = parse_flow_lines(lines, FLOWS).flows[3]
    assert (flow.line, flow.method, flow.path, flow.verdict) == (
        4,
        "POST",
        "/api/v1/models?force=1",
        "DROPPED",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"flow": {}}\nnot json\n', "line 2: invalid JSON: Expecting value"),
        ('{"verdict": "ALLOWED"}\n', "line 1: verdict: unknown value 'ALLOWED' (expected one of "
         "VERDICT_UNKNOWN, FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED)"),
        ('{"flow": {"l4": {"TCP": {"destination_port": -1}}}}\n',
         "line 1: l4.TCP.destination_port: expected a non-negative integer, got -1"),
        ('{"flow": {"source": {"labels": "k8s:app=x"}}}\n',
         "line 1: source.labels: expected a list of strings"),
        ('{"hello": 1}\n', "line 1: neither a Hubble flow nor an event wrapping one (keys: hello)"),
        ("[1, 2]\n", "line 1: expected a JSON object"),
    ],
)  # fmt: skip
def test_bad_flow_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "flows.jsonl"
    bad.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "audit", "--flows", str(bad), "--manifests", MODEL,
                         "--enforcement", "cilium")  # fmt: skip
    assert code == 2 and out == ""
    assert err == f"error: {bad}: {message}\n"


def test_model_is_required_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "--flows", FLOWS)
    assert code == 2
    assert err == "error: audit: give the model as exactly one of SOURCE, --stack or --manifests\n"
    code, _, err = run(capsys, *BASE, "--fail-on", "gaps")
    assert code == 2
    assert (
        err == "error: --fail-on: unknown finding 'gaps' (expected gap, broken, unknown, unused)\n"
    )
