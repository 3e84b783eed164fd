"""Which Cilium versions the program knows, how to move between them, and what each one supports.

Pure functions over data derived from each version's own Go module (cnistack/data/cilium/, written
by scripts/derive_cilium_versions.py from cnistack/data/cilium-upgrade-path.yaml and the
production pin in scripts/toolchain.sh) and the Kubernetes/OpenShift table with its sources
(cnistack/data/kubernetes-support.yaml).

Upstream's upgrade rules (Documentation/operations/upgrade.rst, every version on the path):
- one minor per change, the latest patch of a line before leaving it;
- the preflight check before each minor step (`preflight.enabled=true agent=false
  operator.enabled=false`, plus k8sServiceHost/k8sServicePort without kube-proxy);
- `upgradeCompatibility` set to the version first installed ("To minimize datapath disruption
  during the upgrade");
- never `--reuse-values` across minors (the program always sends its whole value set);
- a rollback goes to the previous minor at most ("Step 3: Rolling Back").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
# rancher/k3s:v1.35.8-k3s1 -> 1.35 (K3s tags are the Kubernetes version plus -k3sN).
_K3S_TAG = re.compile(r":v(\d+)\.(\d+)\.(\d+)-k3s\d+$")
_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.match(text.strip())
        if not match:
            raise ValueError(f"not a release version: {text!r}")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @property
    def line(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@cache
def _versions() -> dict[str, Any]:
    text = (resources.files("cnistack") / "data" / "cilium" / "versions.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _kubernetes() -> dict[str, Any]:
    text = (resources.files("cnistack") / "data" / "kubernetes-support.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def default_version() -> str:
    """The production pin (scripts/toolchain.sh CILIUM_V), as the derive script recorded it."""
    return str(_versions()["default"])


def upgrade_path() -> tuple[str, ...]:
    """ADR-013's 1.15.0, then one patch per line up to the default."""
    return tuple(_versions()["path"])


def known_versions() -> tuple[str, ...]:
    return tuple(_versions()["versions"])


def facts(version: str) -> dict[str, Any]:
    """What the version's module says: tested Kubernetes minors, CRDs, values.schema.json."""
    data: dict[str, Any] = _versions()["versions"][version]
    return data


def support_table() -> dict[str, Any]:
    data: dict[str, Any] = _versions()["support"]
    return data


def kubernetes_tested(version: str) -> tuple[str, ...]:
    return tuple(facts(version)["kubernetesTested"])


def _path_patch(line: str) -> str | None:
    """The version the path stops at on `line` (the patch to reach before leaving it)."""
    on_line = [v for v in upgrade_path() if Version.parse(v).line == line]
    return on_line[-1] if on_line else None


def next_allowed(deployed: str) -> str | None:
    """The one version a `pulumi up` may move `deployed` to next; None at the end of the path."""
    current = Version.parse(deployed)
    stop = _path_patch(current.line)
    if stop is not None and current < Version.parse(stop):
        return stop
    later = [v for v in upgrade_path() if Version.parse(v) > current]
    return later[0] if later else None


def upgrade_problem(deployed: str | None, target: str) -> str | None:
    """Why moving the cluster's Cilium from `deployed` to `target` is refused, or None.

    `deployed` is None on a cluster without Cilium (a fresh install of any known version).
    """
    if target not in known_versions():
        return (
            f"Cilium {target} is not a version this program has chart data for "
            f"(cnistack/data/cilium/): the known versions are {', '.join(known_versions())}"
        )
    if deployed is None or deployed == target:
        return None
    old, new = Version.parse(deployed), Version.parse(target)
    if new > old:
        step = next_allowed(deployed)
        if new.line == old.line:
            # A newer patch of the same line is always a supported change.
            return None
        if new.minor == old.minor + 1 and step is not None and Version.parse(step).line == new.line:
            return None
        reason = (
            f"{deployed} is not the latest patch of {old.line} on the path"
            if step is not None and Version.parse(step).line == old.line
            else "it skips "
            + ", ".join(f"{old.major}.{m}" for m in range(old.minor + 1, new.minor))
        )
        return (
            f"cannot upgrade Cilium from {deployed} to {target}: {reason}. Upstream upgrades "
            "one minor at a time from the latest patch of each line "
            "(Documentation/operations/upgrade.rst); the next allowed version is "
            f"{step} (path: {' -> '.join(upgrade_path())})"
        )
    if old.minor - new.minor > 1 or old.major != new.major:
        previous = [v for v in upgrade_path() if Version.parse(v).minor == old.minor - 1]
        hint = previous[-1] if previous else None
        return (
            f"cannot downgrade Cilium from {deployed} to {target}: a rollback goes back one "
            'minor at most (Documentation/operations/upgrade.rst, "Rolling Back")'
            + (f"; the furthest allowed version is {hint}" if hint else "")
        )
    return None


def needs_preflight(deployed: str | None, target: str) -> bool:
    """A minor step: upstream's preflight check runs before it (pre-pulls the image, validates
    the policies against the new version)."""
    if deployed is None:
        return False
    return Version.parse(target).line != Version.parse(deployed).line and (
        Version.parse(target) > Version.parse(deployed)
    )


def upgrade_compatibility(first_installed: str) -> str:
    """The chart's `upgradeCompatibility`: the line first installed ("1.15")."""
    return Version.parse(first_installed).line


def kubernetes_minor(version: str) -> str:
    match = _MINOR.match(version.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"{match[1]}.{match[2]}"


def k3s_image_kubernetes(image: str) -> str | None:
    """The Kubernetes version a rancher/k3s image tag names (v1.35.8-k3s1 -> 1.35.8)."""
    match = _K3S_TAG.search(image)
    return f"{match[1]}.{match[2]}.{match[3]}" if match else None


def kubernetes_problem(cilium: str, kubernetes: str, where: str) -> str | None:
    """Why Cilium `cilium` does not support Kubernetes `kubernetes` (read from `where`), or None."""
    tested = kubernetes_tested(cilium)
    minor = kubernetes_minor(kubernetes)
    if minor in tested:
        return None
    return (
        f"Cilium {cilium} is not tested on Kubernetes {kubernetes} ({where}): Cilium "
        f"{Version.parse(cilium).line} supports Kubernetes {', '.join(tested)} "
        "(Documentation/network/kubernetes/compatibility.rst of its module)"
    )


def openshift_releases(cilium: str) -> tuple[str, ...]:
    """The OpenShift releases whose Kubernetes the Cilium version is tested on."""
    tested = set(kubernetes_tested(cilium))
    table = _kubernetes()["openshift"]["releases"]
    return tuple(str(r) for r, k8s in table.items() if str(k8s) in tested)


def line_end_of_life(version: str) -> str | None:
    """The date the version's line stopped being maintained, or None while it is."""
    line = Version.parse(version).line
    entry = support_table()["lines"].get(line)
    if entry is None:
        raise KeyError(f"Cilium {line} is not in the support table")
    eol = entry["endOfLife"]
    return str(eol) if eol else None


def kubernetes_end_of_life(minor: str) -> str | None:
    entry = _kubernetes()["kubernetes"]["lines"].get(minor)
    return str(entry["endOfLife"]) if entry else None


@cache
def olm_operator_versions() -> tuple[str, ...]:
    """The Cilium versions isovalent/olm-for-cilium ships a bundle for (cnistack/data/
    olm-for-cilium.yaml), oldest first."""
    text = (resources.files("cnistack") / "data" / "olm-for-cilium.yaml").read_text()
    versions = [str(v) for v in yaml.safe_load(text)["versions"]]
    return tuple(sorted(versions, key=Version.parse))
