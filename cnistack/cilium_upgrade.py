"""What a `pulumi up` does to the cluster's Cilium: install, stay, patch, or one step of a minor.

The version deployed comes from the stack's state (the `ciliumInstall` output this program
exports, read back through a StackReference to the stack itself) or from the cluster's Helm
release (Helm's storage Secrets `sh.helm.release.v1.cilium.vN` in kube-system). A k3d cluster the
stack creates cannot be read before its resources exist, so the state is the only source there;
an existing cluster has both, and its Helm release wins (it is what runs).

A minor step follows upstream's two stages (Documentation/operations/upgrade.rst), one
`pulumi up` each:
1. "Running pre-flight check": the `cilium-preflight` release at the target version (its image
   pulled on every node, the policies validated), the `cilium` release left as it is;
2. "Clean up pre-flight check" and "Upgrade": the preflight release removed, the `cilium` release
   moved to the target with its whole value set (never `--reuse-values`) and
   `upgradeCompatibility` set to the version first installed.
A patch within a line needs no preflight: one `pulumi up`.

The Kubernetes matrix: the cluster's Kubernetes (the server's /version here; the k3s image tag in
cnistack/config.py) must be one the Cilium version is e2e-tested on. The only way around it is
the test-only environment variable CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX=1, which the program
names in a warning at every run (tests/test_engine_upgrade.py: Cilium 1.15-1.17 on the tests'
Kubernetes 1.35, since 1.26-1.32 control planes do not build from modules here).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnistack import cilium_versions
from cnistack.config import ExistingCluster, StackConfig

OFF_MATRIX_ENV = "CNISTACK_TEST_ONLY_ALLOW_OFF_MATRIX"
STATE_OUTPUT = "ciliumInstall"
RELEASE_NAME = "cilium"
PREFLIGHT_RELEASE_NAME = "cilium-preflight"


class UpgradeError(ValueError):
    """A change of the cluster's Cilium that upstream's procedure does not allow."""


@dataclass(frozen=True)
class HelmRevision:
    release: str
    revision: int
    status: str
    chart_version: str


@dataclass(frozen=True)
class ClusterFacts:
    """What the cluster says before any resource: its Kubernetes version and Helm history."""

    server_version: str | None
    revisions: tuple[HelmRevision, ...] = ()


@dataclass(frozen=True)
class Deployed:
    version: str
    first_installed: str
    preflight: str | None  # the version whose preflight check is installed, if any
    source: str


@dataclass(frozen=True)
class UpgradePlan:
    target: str
    # What the `cilium` release gets this run: the target, or the deployed version while the
    # preflight of a minor step runs.
    release_version: str
    first_installed: str
    deployed: Deployed | None
    preflight: str | None  # install the preflight release at this version this run
    warnings: tuple[str, ...] = ()

    def state_output(self) -> dict[str, Any]:
        """What the next run reads back from the stack's state."""
        return {
            "version": self.release_version,
            "firstInstalled": self.first_installed,
            "preflight": self.preflight,
        }


def decode_helm_release(data: str) -> dict[str, Any]:
    """Helm's storage format: a Secret's `release` = base64(gzip(JSON)) (helm pkg/storage/
    driver/util.go encodeRelease), itself base64 in the Secret's `data` as the API returns it."""
    raw = base64.b64decode(base64.b64decode(data))
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    release: dict[str, Any] = json.loads(raw)
    return release


def revisions_from_secrets(secrets: list[Mapping[str, Any]]) -> tuple[HelmRevision, ...]:
    """Helm storage Secrets (type helm.sh/release.v1) as revisions, oldest first."""
    found = []
    for secret in secrets:
        if secret.get("type") != "helm.sh/release.v1":
            continue
        labels = (secret.get("metadata") or {}).get("labels") or {}
        release = decode_helm_release((secret.get("data") or {})["release"])
        found.append(
            HelmRevision(
                release=str(labels.get("name", release.get("name"))),
                revision=int(labels.get("version", release.get("version", 0))),
                status=str(labels.get("status", release.get("info", {}).get("status"))),
                chart_version=str(release["chart"]["metadata"]["version"]),
            )
        )
    return tuple(sorted(found, key=lambda r: (r.release, r.revision)))


def deployed_from_cluster(facts: ClusterFacts) -> Deployed | None:
    main = [r for r in facts.revisions if r.release == RELEASE_NAME]
    live = [r for r in main if r.status == "deployed"]
    if not live:
        return None
    preflight = [
        r for r in facts.revisions if r.release == PREFLIGHT_RELEASE_NAME and r.status == "deployed"
    ]
    return Deployed(
        version=live[-1].chart_version,
        # Helm keeps the history the release's max_history allows; the oldest revision left is
        # the oldest version known (the stack's state carries the first one across pruning).
        first_installed=main[0].chart_version,
        preflight=preflight[-1].chart_version if preflight else None,
        source=(
            f"the cluster's Helm release kube-system/{RELEASE_NAME} (revision {live[-1].revision})"
        ),
    )


def deployed_from_state(output: Mapping[str, Any] | None) -> Deployed | None:
    if not output or not output.get("version"):
        return None
    return Deployed(
        version=str(output["version"]),
        first_installed=str(output.get("firstInstalled") or output["version"]),
        preflight=str(output["preflight"]) if output.get("preflight") else None,
        source="the stack's state (output ciliumInstall)",
    )


def matrix_warnings(
    config: StackConfig,
    versions: list[str],
    cluster: ClusterFacts | None,
    allow_off_matrix: bool,
) -> list[str]:
    """UpgradeError unless each Cilium version is e2e-tested on the server's Kubernetes; with the
    test-only override, a warning that says so at every run instead."""
    if cluster is None or not cluster.server_version:
        return []
    if not isinstance(config.cluster, ExistingCluster):
        return []
    warnings = []
    for version in versions:
        problem = cilium_versions.kubernetes_problem(
            version, cluster.server_version, "the API server's /version"
        )
        if problem and not allow_off_matrix:
            raise UpgradeError(
                f"{problem}. Move to a Cilium version that supports it, or the cluster to a "
                "Kubernetes version the Cilium version supports"
            )
        if problem:
            warnings.append(
                f"OFF-MATRIX, allowed by {OFF_MATRIX_ENV}=1 (a test-only setting, never for a "
                f"real cluster): {problem}"
            )
    return warnings


def plan_upgrade(
    config: StackConfig,
    state_output: Mapping[str, Any] | None,
    cluster: ClusterFacts | None,
    *,
    allow_off_matrix: bool = False,
) -> UpgradePlan | None:
    """The plan for this run, or UpgradeError naming what to do instead. None without Cilium."""
    settings = config.cilium_settings
    if settings is None:
        return None
    target = settings.chart.version
    warnings: list[str] = []
    if settings.install_method != "helm":
        # The OLM operator's bundle fixes the version; only the matrix can be checked here.
        warnings += matrix_warnings(config, [target], cluster, allow_off_matrix)
        return UpgradePlan(target, target, target, None, None, tuple(warnings))
    from_state = deployed_from_state(state_output)
    from_cluster = deployed_from_cluster(cluster) if cluster is not None else None
    deployed = from_cluster or from_state
    if from_cluster and from_state and from_cluster.version != from_state.version:
        warnings.append(
            f"the cluster runs Cilium {from_cluster.version} but the stack's state says "
            f"{from_state.version}: the release was changed outside this stack; planning from "
            "the cluster"
        )
    if from_cluster and from_state:
        # The state keeps the first install across Helm's history pruning.
        deployed = Deployed(
            version=from_cluster.version,
            first_installed=min(
                from_cluster.first_installed,
                from_state.first_installed,
                key=cilium_versions.Version.parse,
            ),
            preflight=from_cluster.preflight,
            source=from_cluster.source,
        )
    # Only the target is checked: the deployed version already runs, and refusing it would
    # block the very upgrade that brings the cluster back into the matrix.
    warnings += matrix_warnings(config, [target], cluster, allow_off_matrix)
    current = deployed.version if deployed else None
    problem = cilium_versions.upgrade_problem(current, target)
    if problem:
        raise UpgradeError(
            f"{problem} (deployed version read from {deployed.source})" if deployed else problem
        )
    first = deployed.first_installed if deployed else target
    if deployed is None or not cilium_versions.needs_preflight(deployed.version, target):
        return UpgradePlan(target, target, first, deployed, None, tuple(warnings))
    if deployed.preflight == target:
        # Stage 2: the preflight of this step ran; upgrade and remove it.
        return UpgradePlan(target, target, first, deployed, None, tuple(warnings))
    warnings.append(
        f"Cilium {deployed.version} -> {target} is a minor step: this run installs upstream's "
        f"preflight check ({PREFLIGHT_RELEASE_NAME} at {target}) and leaves the {RELEASE_NAME} "
        f"release at {deployed.version}; once its pods are ready on every node, run `pulumi up` "
        "again to upgrade (Documentation/operations/upgrade.rst)"
    )
    return UpgradePlan(target, deployed.version, first, deployed, target, tuple(warnings))
