"""Engine-free tests of the policies about CiliumNetworkPolicies: L7 HTTP rules, the L7 proxy,
and CiliumNetworkPolicies on a stack without Cilium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy_pack_harness import (
    UNKNOWN,
    PackResource,
    allow_api_readonly,
    allow_inference_grpc,
    changed,
    cilium_release,
    homelab_stack,
    production_stack,
    run_policy,
)

HTTP = "spec.ingress.0.toPorts.0.rules.http"
API = "CiliumNetworkPolicy `ai-apps/allow-api-readonly` spec.ingress[0].toPorts[0].rules.http"
GRPC = "CiliumNetworkPolicy `ai-apps/allow-inference-grpc` spec.ingress[0].toPorts[0].rules.http[0]"


def _api_rule(rule: dict[str, Any]) -> Any:
    return changed(allow_api_readonly(), f"{HTTP}.0", rule)


@pytest.mark.parametrize("policy", [allow_api_readonly(), allow_inference_grpc()])
def test_adr_examples_written_anchored_pass(policy: Any) -> None:
    assert run_policy("cilium-l7-http-rules", policy) == []


def test_empty_http_rule_allows_every_request() -> None:
    assert run_policy("cilium-l7-http-rules", changed(allow_api_readonly(), HTTP, [{}])) == [
        f"Replace the empty HTTP rule at {API}[0] with an explicit method and path: "
        "`{}` allows every request."
    ]


@pytest.mark.parametrize("method", ["GET", "^GET", "^(GET|POST)$", "^TRACE$", "^get$"])
def test_method_is_one_anchored_allowed_verb(method: str) -> None:
    policy = _api_rule({"method": method, "path": "^/api/v1/models$"})
    assert run_policy("cilium-l7-http-rules", policy) == [
        f"Write the method at {API}[0] as one anchored verb such as ^GET$ "
        f'(found "{method}"; allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).'
    ]


def test_method_is_required() -> None:
    assert run_policy("cilium-l7-http-rules", _api_rule({"path": "^/api/v1/models$"})) == [
        f"Add a `method` such as ^GET$ to the HTTP rule at {API}[0]: without it any verb passes."
    ]


def test_path_is_required() -> None:
    assert run_policy("cilium-l7-http-rules", _api_rule({"method": "^GET$"})) == [
        f"Add a `path` such as ^/api/v1/models$ to the HTTP rule at {API}[0]: "
        "without it any path passes."
    ]


@pytest.mark.parametrize(
    "path", ["/api/v1/models", "^/api/v1/models", "/api/v1/models$", "^api/v1$", "^/api/v1\\$"]
)
def test_path_is_anchored_and_starts_with_a_slash(path: str) -> None:
    policy = _api_rule({"method": "^GET$", "path": path})
    shown = path.replace("\\", "\\\\")
    assert run_policy("cilium-l7-http-rules", policy) == [
        f'Write the path at {API}[0] as an anchored expression ^/...$ (found "{shown}").'
    ]


def test_path_must_compile() -> None:
    policy = _api_rule({"method": "^GET$", "path": "^/api/(v1$"})
    assert run_policy("cilium-l7-http-rules", policy) == [
        f"Fix the path regular expression at {API}[0] "
        "(missing ), unterminated subpattern at position 6)."
    ]


def test_grpc_service_dots_are_escaped() -> None:
    policy = changed(
        allow_inference_grpc(), f"{HTTP}.0.path", "^/inference.InferenceService/Generate$"
    )
    assert run_policy("cilium-l7-http-rules", policy) == [
        f"Escape the dots of the gRPC service in the path at {GRPC}: "
        "write ^/inference\\.InferenceService/Generate$."
    ]


def test_egress_and_specs_lists_are_checked_too() -> None:
    policy = changed(
        changed(allow_api_readonly(), "spec", None),
        "specs",
        [{"endpointSelector": {}, "egress": [{"toPorts": [{"rules": {"http": [{}]}}]}]}],
    )
    assert run_policy("cilium-l7-http-rules", policy) == [
        "Replace the empty HTTP rule at CiliumNetworkPolicy `ai-apps/allow-api-readonly` "
        "specs[0].egress[0].toPorts[0].rules.http[0] with an explicit method and path: "
        "`{}` allows every request."
    ]


def test_unknown_rules_are_not_judged() -> None:
    assert run_policy("cilium-l7-http-rules", changed(allow_api_readonly(), HTTP, UNKNOWN)) == []


# --- cilium-l7-proxy-for-http-rules ---------------------------------------------------------


def test_l7_proxy_default_and_explicit_true_pass() -> None:
    stack = production_stack()
    assert run_policy("cilium-l7-proxy-for-http-rules", stack) == []
    stack[1] = changed(cilium_release(), "values.l7Proxy", True)
    assert run_policy("cilium-l7-proxy-for-http-rules", stack) == []


@pytest.mark.parametrize("disabled", [False, "false"])
def test_l7_proxy_disabled_while_http_rules_exist(disabled: Any) -> None:
    stack = production_stack()
    stack[1] = changed(cilium_release(), "values.l7Proxy", disabled)
    assert run_policy("cilium-l7-proxy-for-http-rules", stack) == [
        "Remove `l7Proxy: false` from the cilium values: the HTTP rules of "
        "CiliumNetworkPolicy `ai-apps/allow-api-readonly`, "
        "CiliumNetworkPolicy `ai-apps/allow-inference-grpc` are enforced only by the L7 proxy."
    ]


def test_l7_proxy_may_be_off_without_http_rules() -> None:
    stack = [r for r in production_stack() if "cilium.io" not in r.type]
    stack[1] = changed(cilium_release(), "values.l7Proxy", False)
    assert run_policy("cilium-l7-proxy-for-http-rules", stack) == []


# --- cilium-network-policy-needs-cilium -------------------------------------------------------


def test_cilium_policies_with_cilium_pass() -> None:
    assert run_policy("cilium-network-policy-needs-cilium", production_stack()) == []


def test_cilium_policy_on_a_flannel_stack() -> None:
    assert run_policy(
        "cilium-network-policy-needs-cilium", [*homelab_stack(), allow_api_readonly()]
    ) == [
        "Install the cilium Helm release in this stack or rewrite CiliumNetworkPolicy "
        "`ai-apps/allow-api-readonly` as a networking.k8s.io/v1 NetworkPolicy: without Cilium it "
        "is rejected or never enforced."
    ]


def test_release_whose_inputs_are_not_shown_yet_may_be_cilium() -> None:
    # What the engine hands the pack for a Release while its provider is being replaced in a
    # preview (the homelab's CNI switch): no `chart` at all. Unknown, not absent.
    release = PackResource(cilium_release().type, "cilium", {})
    stack = [*homelab_stack(), release, allow_api_readonly()]
    assert run_policy("cilium-network-policy-needs-cilium", stack) == []
    assert run_policy("production-runs-cilium", stack, {"environment": "production"}) == []


def test_release_with_unknown_chart_may_be_cilium() -> None:
    release = changed(cilium_release(), "chart", UNKNOWN)
    stack = [*homelab_stack(), release, allow_api_readonly()]
    assert run_policy("cilium-network-policy-needs-cilium", stack) == []
