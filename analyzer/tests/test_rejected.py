"""A policy the API server stores but the Cilium agent refuses to import: the agent logs it and
enforces every other policy (pkg/policy/api/rule_validation.go Rule.Sanitize, called by the CRD
types' Parse). The analyzer leaves that policy out with one warning naming it, and every report
says so. What the API server itself refuses (the CRD schema) stays one error.

The expected reasons are read from rule_validation.go of v1.15.19 and v1.19.6 (the
differences: reachability/profiles.py). Which objects are refused was also checked against the
oracle (Cilium's own Parse, the `rejected` list of tools/cilium-oracle) built on 1.15.19, and
on 1.19.7 for the cilium@1.19 column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reachability import Analyzer, InputError, Rejected, Request, load_documents
from reachability.cli import main

NAMESPACES = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in "xy"]


def pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
    }


PODS = [pod("x", "a"), pod("x", "b"), pod("y", "a")]
FROM_B = {"fromEndpoints": [{"matchLabels": {"app": "b"}}]}
TCP_80 = {"ports": [{"port": "80", "protocol": "TCP"}]}
# A deny rule with two peer kinds: validated by the agent from 1.16 only.
DENY_TWO_KINDS = {"fromEndpoints": [{"matchLabels": {"app": "c"}}], "fromEntities": ["world"]}


def cnp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": name, "namespace": "x"},
        "spec": {"endpointSelector": {"matchLabels": {"app": "a"}}, **spec},
    }


def http_on(port: dict[str, str]) -> dict[str, Any]:
    return cnp("l7", {"ingress": [{"toPorts": [{"ports": [port], "rules": {"http": [{}]}}]}]})


# The object, and why the agent refuses it (None: it imports it) under 1.15 and 1.19.
CASES: dict[str, tuple[dict[str, Any], str | None, str | None]] = {
    "http-on-any": (
        http_on({"port": "80"}),
        "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not ANY)",
        "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not ANY)",
    ),
    "http-on-udp": (
        http_on({"port": "80", "protocol": "UDP"}),
        "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not UDP)",
        "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not UDP)",
    ),
    "http-on-port-0": (
        http_on({"port": "0", "protocol": "TCP"}),
        "spec.ingress[0].toPorts[0]: L7 rules can not be used when a port is 0",
        "spec.ingress[0].toPorts[0]: L7 rules can not be used when a port is 0",
    ),
    "two-peer-kinds": (
        cnp("p", {"ingress": [{**FROM_B, "fromCIDR": ["10.0.0.0/8"]}]}),
        "spec.ingress[0]: combining fromEndpoints and fromCIDR is not supported",
        "spec.ingress[0]: combining fromEndpoints and fromCIDR is not supported",
    ),
    "two-peer-kinds-in-a-deny-rule": (
        cnp("p", {"ingressDeny": [DENY_TWO_KINDS]}),
        None,
        "spec.ingressDeny[0]: combining fromEndpoints and fromEntities is not supported",
    ),
    "to-services-with-to-ports": (
        cnp(
            "p",
            {
                "egress": [
                    {"toServices": [{"k8sService": {"serviceName": "s"}}], "toPorts": [TCP_80]}
                ]
            },
        ),
        "spec.egress[0]: combining toServices and toPorts is not supported",
        None,
    ),
    "no-rule-at-all": (
        cnp("p", {}),
        None,
        "spec: rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny",
    ),
    "icmps-with-to-ports": (
        cnp(
            "p",
            {"ingress": [{**FROM_B, "icmps": [{"fields": [{"type": 8}]}], "toPorts": [TCP_80]}]},
        ),
        "spec.ingress[0]: the icmps block may only be present without toPorts",
        "spec.ingress[0]: the icmps block may only be present without toPorts",
    ),
    "dns-rules-on-ingress": (
        cnp(
            "p",
            {
                "ingress": [
                    {
                        "toPorts": [
                            {
                                "ports": [{"port": "53", "protocol": "UDP"}],
                                "rules": {"dns": [{"matchPattern": "*"}]},
                            }
                        ]
                    }
                ]
            },
        ),
        "spec.ingress[0].toPorts[0]: DNS rules are not allowed on ingress",
        "spec.ingress[0].toPorts[0]: DNS rules are not allowed on ingress",
    ),
    "except-outside-its-cidr": (
        cnp(
            "p",
            {"ingress": [{"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}]}]},
        ),
        "spec.ingress[0].fromCIDRSet[0].except[0]: allow CIDR prefix 10.0.0.0/8 does not "
        "contain exclude CIDR prefix 192.168.0.0/16",
        "spec.ingress[0].fromCIDRSet[0].except[0]: allow CIDR prefix 10.0.0.0/8 does not "
        "contain exclude CIDR prefix 192.168.0.0/16",
    ),
    "namespaced-host-policy": (
        {**cnp("p", {}), "spec": {"nodeSelector": {}, "ingress": [FROM_B]}},
        "spec: rule cannot have NodeSelector",
        "spec: rule cannot have NodeSelector",
    ),
    "two-l7-kinds": (
        cnp(
            "p",
            {
                "ingress": [
                    {"toPorts": [{**TCP_80, "rules": {"http": [{}], "kafka": [{"topic": "t"}]}}]}
                ]
            },
        ),
        "spec.ingress[0].toPorts[0].rules: multiple L7 protocol rule types specified in single "
        "rule (http, kafka)",
        "spec.ingress[0].toPorts[0].rules: multiple L7 protocol rule types specified in single "
        "rule (http, kafka)",
    ),
    "41-ports": (
        cnp(
            "p",
            {"ingress": [{"toPorts": [{"ports": [{"port": str(1000 + i)} for i in range(41)]}]}]},
        ),
        "spec.ingress[0].toPorts[0].ports: too many ports, the max is 40",
        "spec.ingress[0].toPorts[0].ports: too many ports, the max is 40",
    ),
    "dns-rules-without-ports": (
        cnp("p", {"egress": [{"toPorts": [{"rules": {"dns": [{"matchPattern": "*"}]}}]}]}),
        "spec.egress[0].toPorts[0].rules.dns: port 53 must be specified for DNS rules",
        "spec.egress[0].toPorts[0].rules.dns: port 53 must be specified for DNS rules",
    ),
    "listener-on-ingress": (
        cnp(
            "p",
            {
                "ingress": [
                    {
                        "toPorts": [
                            {
                                **TCP_80,
                                "listener": {
                                    "envoyConfig": {"kind": "CiliumEnvoyConfig", "name": "e"},
                                    "name": "l",
                                },
                            }
                        ]
                    }
                ]
            },
        ),
        "spec.ingress[0].toPorts[0].listener: listener is not allowed on ingress (l)",
        "spec.ingress[0].toPorts[0].listener: listener is not allowed on ingress (l)",
    ),
    "server-names-with-http-without-tls": (
        cnp(
            "p",
            {
                "ingress": [
                    {"toPorts": [{**TCP_80, "serverNames": ["a.example"], "rules": {"http": [{}]}}]}
                ]
            },
        ),
        "spec.ingress[0].toPorts[0]: serverNames are not allowed with L7 rules without TLS "
        "termination",
        "spec.ingress[0].toPorts[0]: serverNames are not allowed with L7 rules without TLS "
        "termination",
    ),
}


def analyse(policies: list[dict[str, Any]], profile: str) -> Analyzer:
    docs = [*NAMESPACES, *PODS, *policies]
    return Analyzer(load_documents((d, "m.yaml") for d in docs), profile)


def reaches(analyzer: Analyzer, src: str, dst: str = "x/a") -> bool:
    return analyzer.query(src, dst, Request("TCP", 80)).allowed


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("profile", ["cilium@1.15", "cilium@1.19"])
def test_the_agent_refuses_the_object_and_the_analysis_leaves_it_out(
    case: str, profile: str
) -> None:
    policy, why_15, why_19 = CASES[case]
    why = why_15 if profile == "cilium@1.15" else why_19
    analyzer = analyse([policy, cnp("kept", {"ingress": [FROM_B]})], profile)
    name = policy["metadata"]["name"]
    expected = [] if why is None else [Rejected(f"CiliumNetworkPolicy x/{name}", "m.yaml", why)]
    assert analyzer.rejected == expected
    # The other policy is enforced either way: x/a is open to x/b only.
    assert [reaches(analyzer, src) for src in ("x/b", "y/a")] == [True, False]


def test_a_refused_policy_opens_what_it_would_have_closed() -> None:
    # Alone, the refused L7 policy isolates nothing: y/a reaches x/a on every port.
    analyzer = analyse([http_on({"port": "80", "protocol": "UDP"})], "cilium@1.15")
    assert [reaches(analyzer, "y/a"), analyzer.policies] == [True, []]


def test_kube_router_does_not_read_cilium_policies_so_refuses_none() -> None:
    analyzer = analyse([http_on({"port": "80"})], "kube-router")
    assert analyzer.rejected == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"endpointSelector": {}, "nodeSelector": {}, "ingress": [FROM_B]},
            "m.yaml: CiliumNetworkPolicy x/p: spec: give endpointSelector or nodeSelector, "
            "not both",
        ),
        (
            {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80",
                                                                          "protocol": "ICMP"}],
                                                             "rules": {"http": [{}]}}]}]},
            "m.yaml: CiliumNetworkPolicy x/p: spec.ingress[0].toPorts[0].ports[0]: invalid "
            "protocol 'ICMP' (expected TCP, UDP, SCTP or ANY)",
        ),
        (
            {"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "80"}],
                                                             "rules": ["http"]}]}]},
            "m.yaml: CiliumNetworkPolicy x/p: spec.ingress[0].toPorts[0].rules: must be a mapping",
        ),
    ],
)  # fmt: skip
def test_what_the_api_server_refuses_stays_one_error(spec: dict[str, Any], message: str) -> None:
    # The CRD schema refuses these (oneOf endpointSelector/nodeSelector, the protocol enum, the
    # type of `rules`), even when the agent would also refuse the rest of the object.
    policy = {**cnp("p", {}), "spec": spec}
    with pytest.raises(InputError) as caught:
        analyse([policy], "cilium@1.15")
    assert str(caught.value) == message


# --- what every report says ------------------------------------------------------------------

REFUSED = http_on({"port": "80"})
WARNING = (
    "warning: {path}: CiliumNetworkPolicy x/l7 left out: the agent (cilium) refuses to import it "
    "and enforces every other policy: spec.ingress[0].toPorts[0].ports[0]: L7 rules can only "
    "apply to TCP (not ANY)\n"
)
LINE = (
    "left out (the agent refuses to import it): CiliumNetworkPolicy x/l7: "
    "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not ANY)"
)


@pytest.fixture
def manifests(tmp_path: Path) -> str:
    path = tmp_path / "m.yaml"
    docs = [*NAMESPACES, pod("x", "a"), pod("x", "b"), REFUSED, cnp("kept", {"ingress": [FROM_B]})]
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_text_names_the_policy_left_out(
    manifests: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list", "--manifests", manifests, "--enforcement", "cilium",
                         "--per-pod")  # fmt: skip
    assert (code, err) == (0, WARNING.format(path=manifests))
    assert out == (
        "# allowed flows under cilium\n"
        f"# {LINE}\n"
        "cidr:0.0.0.0/0 -> x/b  SCTP/all; TCP/all; UDP/all\n"
        "x/a -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all\n"
        "x/a -> x/b  SCTP/all; TCP/all; UDP/all\n"
        "x/b -> cidr:0.0.0.0/0  SCTP/all; TCP/all; UDP/all\n"
        "x/b -> x/a  SCTP/all; TCP/all; UDP/all\n"
    )


def test_grouped_json_and_csv_carry_the_rejected_list(
    manifests: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list", "--manifests", manifests, "--enforcement", "cilium",
                       "--format", "json")  # fmt: skip
    assert code == 0
    assert json.loads(out)["rejected"] == [
        {
            "policy": "CiliumNetworkPolicy x/l7",
            "source": manifests,
            "reason": "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP "
            "(not ANY)",
        }
    ]
    _code, out, _ = run(capsys, "list", "--manifests", manifests, "--enforcement", "cilium",
                       "--format", "csv")  # fmt: skip
    assert out.splitlines()[1] == (
        "rejected,CiliumNetworkPolicy x/l7,,,,,spec.ingress[0].toPorts[0].ports[0]: L7 rules can "
        "only apply to TCP (not ANY)"
    )


def test_query_text_and_json_say_what_was_left_out(
    manifests: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["query", "--manifests", manifests, "--enforcement", "cilium", "--from", "x/b",
            "--to", "x/a", "--port", "80"]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, WARNING.format(path=manifests))
    assert out == (
        f"allow x/b -> x/a TCP/80  [cilium]\n  decided by: CiliumNetworkPolicy x/kept\n  {LINE}\n"
    )
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert json.loads(out)["rejected"][0]["policy"] == "CiliumNetworkPolicy x/l7"


def test_markdown_and_dot_name_the_policy_left_out(
    manifests: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["list", "--manifests", manifests, "--enforcement", "cilium", "--format"]
    _, out, _ = run(capsys, *argv, "md")
    assert out.splitlines()[:5] == [
        "Allowed flows under **cilium**, by group of pods that behave alike:",
        "",
        "Left out, as the agent refuses to import them:",
        "",
        "- `CiliumNetworkPolicy x/l7`: spec.ingress[0].toPorts[0].ports[0]: L7 rules can only "
        "apply to TCP (not ANY)",
    ]
    _, out, _ = run(capsys, *argv, "dot")
    assert out.splitlines()[1].startswith(f'  label="allowed flows (cilium)\\n{LINE}";')


def test_audit_names_the_policy_left_out(
    manifests: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows.json"
    flows.write_text("")
    argv = ["audit", "--flows", str(flows), f"manifests:{manifests}@cilium"]
    code, out, err = run(capsys, *argv)
    assert (code, err, out.splitlines()[3]) == (0, WARNING.format(path=manifests), f"# {LINE}")
    _, out, _ = run(capsys, *argv, "--format", "json")
    assert [r["policy"] for r in json.loads(out)["rejected"]] == ["CiliumNetworkPolicy x/l7"]


# --- one policy set under two Cilium versions -----------------------------------------------


def write(tmp_path: Path, policy: dict[str, Any]) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump_all([*NAMESPACES, *PODS, policy]))
    return str(path)


def test_diff_shows_an_upgrade_that_closes_flows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cilium 1.16's upgrade notes (Documentation/operations/upgrade.rst of v1.16.19): "an empty
    # slice in one of the fields fromEndpoints, ... will not select any identity". Before, it
    # read as an absent list: the rule opened TCP/80 to every peer.
    path = write(tmp_path, cnp("p", {"ingress": [{"fromEndpoints": [], "toPorts": [TCP_80]}]}))
    code, out, err = run(capsys, "diff", f"manifests:{path}@cilium@1.15",
                         f"manifests:{path}@cilium@1.19")  # fmt: skip
    assert (code, err) == (0, "")
    assert out == (
        "# cilium@1.15 -> cilium@1.19: 0 added, 3 removed, 0 changed\n"
        "- cidr:0.0.0.0/0 -> x/a  TCP/80 (only in cilium@1.15)\n"
        "- x/b -> x/a  TCP/80 (only in cilium@1.15)\n"
        "- y/a -> x/a  TCP/80 (only in cilium@1.15)\n"
    )


def test_diff_shows_a_policy_the_upgraded_agent_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # From 1.16 deny rules are sanitized too: this deny rule, accepted by 1.15, makes 1.19 refuse
    # the whole policy, and x/a opens to everyone.
    policy = cnp("p", {"ingress": [FROM_B], "ingressDeny": [DENY_TWO_KINDS]})
    path = write(tmp_path, policy)
    code, out, _ = run(capsys, "diff", f"manifests:{path}@cilium@1.15",
                       f"manifests:{path}@cilium@1.19", "--format", "json")  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["rejected"] == {
        "a": [],
        "b": [
            {
                "policy": "CiliumNetworkPolicy x/p",
                "source": path,
                "reason": "spec.ingressDeny[0]: combining fromEndpoints and fromEntities is not "
                "supported",
            }
        ],
    }
    added = {
        (f["from"], f["to"], f["protocol"], tuple(map(tuple, f["ports"]))) for f in doc["added"]
    }
    assert added == {
        (src, "x/a", proto, ((1, 65535),))
        for src in ("cidr:0.0.0.0/0", "y/a")
        for proto in ("SCTP", "TCP", "UDP")
    }
    assert (doc["removed"], doc["changed"]) == ([], [])
    _code, out, _ = run(capsys, "diff", f"manifests:{path}@cilium@1.15",
                       f"manifests:{path}@cilium@1.19")  # fmt: skip
    assert out.splitlines()[1] == (
        "# cilium@1.19: left out (the agent refuses to import it): CiliumNetworkPolicy x/p: "
        "spec.ingressDeny[0]: combining fromEndpoints and fromEntities is not supported"
    )
