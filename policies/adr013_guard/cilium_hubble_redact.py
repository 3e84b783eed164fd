"""cilium-hubble-redact: Hubble's flows carry no secrets.

The flow export is the audit trail of C4-C5 data (ADR-013, "Conformité : Audit via Hubble"), read
by more people than the workloads' owners and kept longer: it must not hold credentials. Hubble
redacts L7 fields before a flow leaves the agent (chart values `hubble.redact`, rendered by
templates/cilium-configmap.yaml into hubble-redact-*; "Redacting sensitive information" in
Documentation/observability/hubble). This policy demands, on a Cilium release or CiliumConfig
with Hubble on:
- `hubble.redact.enabled: true`;
- `http.urlQuery: true` (tokens in query strings) and `http.userInfo: true` (basic-auth passwords);
- HTTP headers: a `deny` list naming Authorization, Proxy-Authorization, Cookie and Set-Cookie,
  or an `allow` list (every other header is redacted) naming none of them;
- `kafka.apiKey: true`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy

from .manifests import dig, items, release_values, shown, validate_cilium_release

NAME = "cilium-hubble-redact"
CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie")


def violations(props: Mapping[str, Any]) -> Iterator[str]:
    values = release_values(props)
    if dig(values, "hubble", "enabled") is not True:
        return  # no flows at all (cilium-hubble-relay-ui asks for Hubble)
    redact = dig(values, "hubble", "redact")
    if dig(redact, "enabled") is not True:
        yield (
            "Set the cilium value `hubble.redact.enabled` to true: flows are the audit trail and "
            f"must not carry secrets (found {shown(dig(redact, 'enabled'))})."
        )
        return
    for key, why in (("urlQuery", "query strings carry tokens"),
                     ("userInfo", "URLs carry basic-auth passwords")):  # fmt: skip
        if dig(redact, "http", key) is not True:
            yield (
                f"Set the cilium value `hubble.redact.http.{key}` to true: {why} "
                f"(found {shown(dig(redact, 'http', key))})."
            )
    allow = {str(h).lower() for h in items(dig(redact, "http", "headers", "allow"))}
    deny = {str(h).lower() for h in items(dig(redact, "http", "headers", "deny"))}
    if allow:
        kept = [h for h in CREDENTIAL_HEADERS if h.lower() in allow]
        if kept:
            yield (
                "Remove " + ", ".join(kept) + " from the cilium value "
                "`hubble.redact.http.headers.allow`: they carry credentials."
            )
    else:
        missing = [h for h in CREDENTIAL_HEADERS if h.lower() not in deny]
        if missing:
            yield (
                "Add " + ", ".join(missing) + " to the cilium value "
                "`hubble.redact.http.headers.deny` (or list the headers to keep in `allow`): "
                "they carry credentials."
            )
    if dig(redact, "kafka", "apiKey") is not True:
        yield (
            "Set the cilium value `hubble.redact.kafka.apiKey` to true: Kafka requests carry API "
            f"keys (found {shown(dig(redact, 'kafka', 'apiKey'))})."
        )


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Hubble redacts URL queries, user info, credential headers and Kafka API keys: the flow "
        "export is the C4-C5 audit trail, not a store of secrets."
    ),
    validate=validate_cilium_release(violations),
)
