"""The policy intent model: the default platform set and every way a bad intent is refused."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from cnistack.netpol import (
    NamespaceRef,
    PolicyModel,
    WorkloadRef,
    default_policy_model,
    parse_policy_model,
)
from reachability import k8s_names


def valid_model(**overrides: Any) -> dict[str, Any]:
    """A small valid `networkPolicy` mapping; keyword arguments replace top-level keys."""
    data: dict[str, Any] = {
        "namespaces": [{"name": "app"}, {"name": "data", "sensitive": True}],
        "workloads": [
            {
                "name": "web",
                "namespace": "app",
                "labels": {"app": "web"},
                "ports": [{"name": "http", "port": 8080, "appProtocol": "http"}],
            },
            {
                "name": "api",
                "namespace": "app",
                "labels": {"app": "api"},
                "ports": [
                    {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
                    {"name": "metrics", "port": 9090},
                    {"name": "syslog", "port": 514, "protocol": "UDP"},
                ],
            },
            {
                "name": "db",
                "namespace": "data",
                "labels": {"app": "db"},
                "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}],
            },
        ],
        "flows": [
            {
                "name": "app-to-db",
                "from": {"namespace": "app"},
                "to": "data/db",
                "ports": [{"port": 5432, "protocol": "TCP"}],
            },
            {
                "name": "web-reads-api",
                "from": "app/web",
                "to": "app/api",
                "ports": [{"port": 8080}],
                "http": [{"method": "GET", "path": "/v1/items"}],
            },
        ],
    }
    data.update(overrides)
    return data


def test_valid_model_parses_with_typed_references() -> None:
    model = parse_policy_model(valid_model())
    assert model.flows[0].source == NamespaceRef(namespace="app")
    assert model.flows[1].source == WorkloadRef(namespace="app", workload="web")
    assert model.flows[1].destination == WorkloadRef(namespace="app", workload="api")
    assert model.flows[1].l7_rules == ("GET /v1/items",)
    assert model.flows[1].l7_kind == "http"
    assert not model.flows[0].needs_l7_policy
    assert model.workloads[0].ports[0].protocol == "TCP"


def test_model_round_trips_through_its_yaml_shape() -> None:
    model = default_policy_model()
    dumped = model.model_dump()
    (postgresql,) = [f for f in dumped["flows"] if f["name"] == "ai-apps-to-postgresql"]
    assert postgresql == {
        "name": "ai-apps-to-postgresql",
        "from": {"namespace": "ai-apps"},
        "to": "storage/postgresql",
        "ports": ({"port": 5432, "protocol": "TCP"},),
        "http": (),
        "grpc": (),
        "flavours": (),
    }
    assert parse_policy_model(dumped) == model


def test_model_is_frozen() -> None:
    model = parse_policy_model(valid_model())
    with pytest.raises(ValidationError, match="frozen"):
        model.flows[0].name = "other"  # type: ignore[misc]


def test_default_model_contains_the_adr_examples() -> None:
    model = default_policy_model()
    assert [(ns.name, ns.sensitive, ns.managed) for ns in model.namespaces] == [
        ("ai-apps", False, True),
        ("ai-inference", False, True),
        ("storage", True, True),
        ("kube-system", False, False),
        ("openshift-ingress", False, False),
    ]
    assert [str(w.ref) for w in model.workloads] == [
        "kube-system/traefik",
        "ai-apps/frontend",
        "ai-apps/api-server",
        "ai-inference/open-webui",
        "ai-inference/vllm",
        "storage/postgresql",
    ]
    flows = {f.name: f for f in model.flows}
    assert list(flows) == [
        "ingress-to-frontend",
        "ingress-to-open-webui",
        "router-to-frontend",
        "router-to-open-webui",
        "frontend-reads-api",
        "ai-apps-to-postgresql",
        "api-server-to-vllm",
        "webui-generates",
    ]
    pg = flows["ai-apps-to-postgresql"]
    assert (pg.source, str(pg.destination), [str(p) for p in pg.ports]) == (
        NamespaceRef(namespace="ai-apps"),
        "storage/postgresql",
        ["TCP/5432"],
    )
    api = flows["frontend-reads-api"]
    assert (str(api.source), str(api.destination), [str(p) for p in api.ports]) == (
        "ai-apps/frontend",
        "ai-apps/api-server",
        ["TCP/8080"],
    )
    assert api.l7_rules == ("GET /api/v1/models", "GET /api/v1/health")
    grpc = flows["webui-generates"]
    assert (str(grpc.source), str(grpc.destination), [str(p) for p in grpc.ports]) == (
        "ai-inference/open-webui",
        "ai-inference/vllm",
        ["TCP/8001"],
    )
    assert [r.path for r in grpc.grpc] == ["/inference.InferenceService/Generate"]
    assert [f.name for f in model.flows if f.needs_l7_policy] == [
        "frontend-reads-api",
        "webui-generates",
    ]


def test_parse_accepts_any_mapping_and_errors_are_value_errors() -> None:
    from types import MappingProxyType

    assert parse_policy_model(MappingProxyType(valid_model())).flows[0].name == "app-to-db"
    with pytest.raises(ValueError, match="namespace 'Nope'"):
        parse_policy_model(valid_model(namespaces=[{"name": "Nope"}]))


def test_errors_name_the_intent_when_embedded_in_a_stack_config() -> None:
    class StackConfig(BaseModel):
        network_policy: PolicyModel

    data = valid_model()
    data["flows"][0]["ports"][0]["port"] = 0
    with pytest.raises(ValidationError) as info:
        StackConfig.model_validate({"network_policy": data})
    assert "flow 'app-to-db': ports[0].port: Input should be greater than or equal to 1" in str(
        info.value
    )


Mutation = Callable[[dict[str, Any]], None]


def _ns(i: int, **kv: Any) -> Mutation:
    return lambda d: d["namespaces"][i].update(kv)


def _wl(i: int, **kv: Any) -> Mutation:
    return lambda d: d["workloads"][i].update(kv)


def _flow(i: int, **kv: Any) -> Mutation:
    return lambda d: d["flows"][i].update(kv)


def _fport(i: int, **kv: Any) -> Mutation:
    return lambda d: d["flows"][i]["ports"][0].update(kv)


def _append(key: str, item: dict[str, Any]) -> Mutation:
    return lambda d: d[key].append(item)


L4_FLOW = {"name": "app-to-db", "from": "app/web", "to": "data/db", "ports": [{"port": 5432}]}

# Kubernetes' rules as the API server words them (k8s.io/apimachinery validation.go messages).
DNS_LABEL_RULE = (
    "must be a lowercase RFC 1123 label (lowercase letters, digits and '-', starting and ending "
    "with a letter or digit)"
)
QUALIFIED_RULE = (
    "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)

BAD_INTENTS: list[tuple[str, Mutation, str]] = [
    # unknown references
    (
        "workload-unknown-namespace",
        _wl(2, namespace="nowhere"),
        "workload 'nowhere/db': unknown namespace 'nowhere'",
    ),
    (
        "flow-unknown-to",
        _flow(0, to="data/nope"),
        "flow 'app-to-db': unknown workload 'data/nope' in to",
    ),
    (
        "flow-unknown-from-workload",
        _flow(1, **{"from": "app/ghost"}),
        "flow 'web-reads-api': unknown workload 'app/ghost' in from",
    ),
    (
        "flow-unknown-from-namespace",
        _flow(0, **{"from": {"namespace": "ghosts"}}),
        "flow 'app-to-db': unknown namespace 'ghosts' in from",
    ),
    (
        "flow-malformed-ref",
        _flow(0, to="db"),
        "flow 'app-to-db': to: expected 'namespace/workload', got 'db'",
    ),
    (
        "flow-from-not-a-peer",
        _flow(0, **{"from": 42}),
        "flow 'app-to-db': from: expected 'namespace/workload', {namespace: NAME} or "
        "{hostNetwork: NAMESPACE}",
    ),
    (
        "flow-port-not-served",
        _fport(0, port=5433),
        "flow 'app-to-db': 'data/db' does not declare port TCP/5433",
    ),
    # ports
    (
        "flow-port-too-high",
        _fport(0, port=70000),
        "flow 'app-to-db': ports[0].port: Input should be less than or equal to 65535",
    ),
    (
        "flow-port-zero",
        _fport(0, port=0),
        "flow 'app-to-db': ports[0].port: Input should be greater than or equal to 1",
    ),
    (
        "flow-port-bool",
        _fport(0, port=True),
        "flow 'app-to-db': ports[0].port: Input should be a valid integer",
    ),
    (
        "flow-protocol",
        _fport(0, protocol="ICMP"),
        "flow 'app-to-db': ports[0].protocol: Input should be 'TCP', 'UDP' or 'SCTP'",
    ),
    (
        "flow-no-ports",
        _flow(0, ports=[]),
        "flow 'app-to-db': ports: Tuple should have at least 1 item",
    ),
    (
        "flow-port-twice",
        _flow(0, ports=[{"port": 5432}, {"port": 5432, "protocol": "TCP"}]),
        "flow 'app-to-db': port TCP/5432 is listed twice",
    ),
    (
        "workload-port-too-high",
        lambda d: d["workloads"][2]["ports"][0].update(port=65536),
        "workload 'data/db': ports[0].port: Input should be less than or equal to 65535",
    ),
    (
        "workload-port-name",
        lambda d: d["workloads"][2]["ports"][0].update(name="postgres-server-main"),
        "workload 'data/db': ports[0].name: 'postgres-server-main': must be 1-15 characters",
    ),
    (
        "workload-port-twice",
        _wl(2, ports=[{"name": "a", "port": 5432}, {"name": "b", "port": 5432}]),
        "workload 'data/db': port TCP/5432 is declared twice",
    ),
    (
        "workload-app-protocol-udp",
        _wl(2, ports=[{"name": "dns", "port": 53, "protocol": "UDP", "appProtocol": "http"}]),
        "workload 'data/db': ports[0]: port 'dns': appProtocol http needs TCP, got UDP",
    ),
    # L7 rules
    (
        "l7-on-udp",
        _flow(1, ports=[{"port": 514, "protocol": "UDP"}]),
        "flow 'web-reads-api': http rules need TCP ports, got UDP/514",
    ),
    (
        "l7-empty-path",
        _flow(1, http=[{"method": "GET", "path": ""}]),
        "flow 'web-reads-api': http[0].path: String should have at least 1 character",
    ),
    (
        "l7-relative-path",
        _flow(1, http=[{"method": "GET", "path": "v1/items"}]),
        "flow 'web-reads-api': http[0].path: path 'v1/items' must start with '/'",
    ),
    (
        "l7-method",
        _flow(1, http=[{"method": "get", "path": "/x"}]),
        "flow 'web-reads-api': http[0].method: Input should be 'GET', 'HEAD', 'POST'",
    ),
    (
        "l7-both-kinds",
        _flow(1, grpc=[{"service": "pkg.Svc", "method": "Do"}]),
        "flow 'web-reads-api': give either http or grpc rules, not both",
    ),
    (
        "l7-grpc-on-http-port",
        _flow(1, http=[], grpc=[{"service": "pkg.Svc", "method": "Do"}]),
        "flow 'web-reads-api': grpc rules on port TCP/8080 of 'app/api', whose port 'http' has "
        "appProtocol http",
    ),
    (
        "l7-on-plain-port",
        _flow(1, ports=[{"port": 9090}]),
        "flow 'web-reads-api': http rules on port TCP/9090 of 'app/api', whose port 'metrics' "
        "has appProtocol None",
    ),
    (
        "l7-bad-grpc-service",
        _flow(1, http=[], grpc=[{"service": "pkg..Svc", "method": "Do"}]),
        "flow 'web-reads-api': grpc[0].service: service 'pkg..Svc' is not a fully-qualified",
    ),
    (
        "l7-defeated-by-namespace-flow",
        _append(
            "flows",
            {
                "name": "app-to-api",
                "from": {"namespace": "app"},
                "to": "app/api",
                "ports": [{"port": 8080}],
            },
        ),
        "flow 'app-to-api': opens the whole port TCP/8080 of 'app/api' to app/web, which defeats "
        "the L7 rules of flow 'web-reads-api'",
    ),
    # duplicates
    (
        "namespace-twice",
        _append("namespaces", {"name": "app"}),
        "namespace 'app' is declared twice",
    ),
    (
        "workload-twice",
        _append("workloads", {"name": "db", "namespace": "data", "labels": {"app": "db2"}}),
        "workload 'data/db' is declared twice",
    ),
    ("flow-twice", _append("flows", L4_FLOW), "flow 'app-to-db' is declared twice"),
    (
        "workload-labels-overlap",
        _append(
            "workloads",
            {"name": "db-replica", "namespace": "data", "labels": {"app": "db", "role": "replica"}},
        ),
        "workload 'data/db': its labels {'app': 'db'} also select the pods of workload "
        "'data/db-replica'",
    ),
    # names and labels
    (
        "namespace-name",
        _ns(1, name="Data_1"),
        f"namespace 'Data_1': name: 'Data_1': {DNS_LABEL_RULE}",
    ),
    (
        "namespace-name-long",
        _ns(1, name="d" * 64),
        f"namespace '{'d' * 64}': name: '{'d' * 64}': must be no more than 63 characters",
    ),
    (
        "workload-name",
        _wl(2, name="db.primary"),
        f"workload 'data/db.primary': name: 'db.primary': {DNS_LABEL_RULE}",
    ),
    (
        "flow-name",
        _flow(0, name="App To DB"),
        f"flow 'App To DB': name: 'App To DB': {DNS_LABEL_RULE}",
    ),
    (
        "label-key-bad-name",
        _wl(2, labels={"-app": "db"}),
        f"workload 'data/db': labels: key '-app': name part must {QUALIFIED_RULE}",
    ),
    (
        "label-key-bad-prefix",
        _wl(2, labels={"Example.com/app": "db"}),
        "workload 'data/db': labels: key 'Example.com/app': prefix part must be a lowercase RFC "
        "1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a "
        "letter or digit)",
    ),
    (
        "label-key-empty-name",
        _wl(2, labels={"example.com/": "db"}),
        "workload 'data/db': labels: key 'example.com/': name part must be non-empty",
    ),
    (
        "label-key-long",
        _wl(2, labels={"a" * 64: "db"}),
        f"workload 'data/db': labels: key '{'a' * 64}': name part must be no more than 63 "
        "characters",
    ),
    (
        "label-value",
        _wl(2, labels={"app": "db primary"}),
        f"workload 'data/db': labels.app: value 'db primary': must be empty or {QUALIFIED_RULE}",
    ),
    (
        "label-value-long",
        _wl(2, labels={"app": "d" * 64}),
        f"workload 'data/db': labels.app: value '{'d' * 64}': must be no more than 63 characters",
    ),
    (
        "label-value-not-string",
        _wl(2, labels={"version": 1}),
        "workload 'data/db': labels.version: Input should be a valid string",
    ),
    (
        "workload-no-labels",
        _wl(2, labels={}),
        "workload 'data/db': labels: Dictionary should have at least 1 item",
    ),
    (
        "namespace-label",
        _ns(0, labels={"team": "ai apps"}),
        f"namespace 'app': labels.team: value 'ai apps': must be empty or {QUALIFIED_RULE}",
    ),
    (
        "namespace-reserved-label",
        _ns(0, labels={"cnistack.io/sensitive": "false"}),
        "namespace 'app': labels: label 'cnistack.io/sensitive' is set by the renderer",
    ),
    (
        "namespace-kube-managed",
        _append("namespaces", {"name": "kube-system"}),
        "namespace 'kube-system': kube-* namespaces belong to the cluster; declare it with "
        "managed: false",
    ),
    (
        "namespace-sensitive-bool",
        _ns(1, sensitive="yes"),
        "namespace 'data': sensitive: Input should be a valid boolean",
    ),
    # typos are errors, not silent defaults
    (
        "flow-typo",
        _flow(0, form="app/web"),
        "flow 'app-to-db': form: unknown key; did you mean 'from'?",
    ),
    (
        "namespace-typo",
        _ns(1, sensitve=True),
        "namespace 'data': sensitve: unknown key; did you mean 'sensitive'?",
    ),
    (
        "flow-missing-from",
        lambda d: d["flows"][0].pop("from"),
        "flow 'app-to-db': from: Field required",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [pytest.param(m, msg, id=case) for case, m, msg in BAD_INTENTS],
)
def test_bad_intent_is_refused_with_its_name(mutate: Mutation, message: str) -> None:
    data = copy.deepcopy(valid_model())
    mutate(data)
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_policy_model(data)


def test_unmanaged_namespaces_only_endpoints_of_managed_flows() -> None:
    data = valid_model()
    data["namespaces"].append({"name": "kube-system", "managed": False})
    data["workloads"].append({"name": "probe", "namespace": "kube-system", "labels": {"a": "b"}})
    data["workloads"].append(
        {
            "name": "sink",
            "namespace": "kube-system",
            "labels": {"c": "d"},
            "ports": [{"name": "p", "port": 1}],
        }
    )
    data["flows"].append(
        {
            "name": "sys",
            "from": "kube-system/probe",
            "to": "kube-system/sink",
            "ports": [{"port": 1}],
        }
    )
    with pytest.raises(
        ValidationError, match=re.escape("flow 'sys': neither side is in a managed namespace")
    ):
        parse_policy_model(data)


def test_all_problems_of_a_model_are_reported_together() -> None:
    data = valid_model()
    data["flows"][0]["to"] = "data/nope"
    data["namespaces"].append({"name": "app"})
    with pytest.raises(ValidationError) as info:
        parse_policy_model(data)
    text = str(info.value)
    assert "namespace 'app' is declared twice" in text
    assert "flow 'app-to-db': unknown workload 'data/nope' in to" in text


@pytest.mark.parametrize(
    "key",
    ["app", "k8s-app", "app.kubernetes.io/name", "a" * 63, f"{'s' * 253}/x", "A_b.C-9", "x/y"],
)
def test_label_keys_kubernetes_accepts(key: str) -> None:
    assert k8s_names.label_key_error(key) is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * 64,
        "/app",
        "app/",
        "-app",
        "app-",
        "a b",
        "Example.com/app",
        f"{'s' * 254}/x",
        "a/b/c",
    ],
)
def test_label_keys_kubernetes_rejects(key: str) -> None:
    assert k8s_names.label_key_error(key) is not None


@pytest.mark.parametrize("value", ["", "a", "a" * 63, "v1.2_3-x", "A"])
def test_label_values_kubernetes_accepts(value: str) -> None:
    assert k8s_names.label_value_error(value) is None


@pytest.mark.parametrize("value", ["a" * 64, "-a", "a-", "a b", "a/b", "a\n"])
def test_label_values_kubernetes_rejects(value: str) -> None:
    assert k8s_names.label_value_error(value) is not None


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("http", True),
        ("dns-tcp", True),
        ("h2c", True),
        ("8080", False),
        ("a--b", False),
        ("-a", False),
        ("HTTP", False),
    ],
)
def test_port_names_follow_iana_svc_name(name: str, ok: bool) -> None:
    assert (k8s_names.port_name_error(name) is None) is ok
