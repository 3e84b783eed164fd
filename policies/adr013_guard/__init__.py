"""ADR-013 CrossGuard policies, one per module; `policies/__main__.py` assembles them.

The pack is an independent guard over what the Pulumi engine sees: it never imports the program
(`cnistack`, `components`), so a bug in the program's own validation cannot pass both.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from . import (
    cilium_chart_version_pinned,
    cilium_hubble_flow_export,
    cilium_hubble_redact,
    cilium_hubble_relay_ui,
    cilium_hubble_tls_not_helm,
    cilium_kube_proxy_replacement,
    cilium_l7_http_rules,
    cilium_l7_proxy_for_http_rules,
    cilium_network_policy_needs_cilium,
    cilium_node_encryption,
    cilium_openshift_settings,
    cilium_policy_enforced,
    cilium_release_visible,
    cilium_supported_release,
    cilium_wireguard_encryption,
    namespace_default_deny,
    network_patch_visible,
    production_runs_cilium,
    sensitive_namespace_not_open,
)

PACK_NAME = "adr013-cni-guard"
# Fail closed: a stack whose pack config forgets "all" gets mandatory policies, not advisory ones.
# policies/config/homelab.json lowers everything to advisory explicitly.
PACK_ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

POLICIES: tuple[Policy, ...] = (
    production_runs_cilium.POLICY,
    cilium_chart_version_pinned.POLICY,
    cilium_supported_release.POLICY,
    cilium_release_visible.POLICY,
    cilium_policy_enforced.POLICY,
    cilium_kube_proxy_replacement.POLICY,
    cilium_wireguard_encryption.POLICY,
    cilium_node_encryption.POLICY,
    cilium_openshift_settings.POLICY,
    cilium_hubble_relay_ui.POLICY,
    cilium_hubble_flow_export.POLICY,
    cilium_hubble_redact.POLICY,
    cilium_hubble_tls_not_helm.POLICY,
    cilium_l7_proxy_for_http_rules.POLICY,
    cilium_network_policy_needs_cilium.POLICY,
    namespace_default_deny.POLICY,
    network_patch_visible.POLICY,
    sensitive_namespace_not_open.POLICY,
    cilium_l7_http_rules.POLICY,
)

__all__ = ["PACK_ENFORCEMENT_LEVEL", "PACK_NAME", "POLICIES"]
