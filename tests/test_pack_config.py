"""The pack's config and built-in defaults agree with the program's flavour facts.

The pack never imports cnistack; scripts/derive_pack_config.py writes policies/config/*.json from
the stack files and their flavour profiles, and these tests fail when a committed file or the
pack's own default has drifted from them (DNS ports included).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cnistack.flavours import K3S, KUBERNETES
from tests.policy_pack_harness import POLICIES_DIR

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "derive_pack_config.py"


@pytest.fixture(scope="module")
def derive() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_pack_config", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["derive_pack_config"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stack", ["homelab", "production"])
def test_committed_pack_config_is_the_derived_one(derive: ModuleType, stack: str) -> None:
    committed = (POLICIES_DIR / "config" / f"{stack}.json").read_text()
    assert committed == derive.pack_config_text(stack), (
        f"policies/config/{stack}.json drifted from the stack and its flavour: "
        "run python scripts/derive_pack_config.py"
    )


def test_derived_production_config_names_openshift_dns_and_its_ports(derive: ModuleType) -> None:
    assert derive.pack_config("production") == {
        "all": {"enforcementLevel": "mandatory"},
        "production-runs-cilium": {"environment": "production"},
        "namespace-default-deny": {
            "dns": {
                "namespace": "openshift-dns",
                "podLabels": {"dns.operator.openshift.io/daemonset-dns": "default"},
                "ports": [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}],
            }
        },
        "cilium-openshift-settings": {
            "openshift": {"clusterNetwork": {"cidr": "10.128.0.0/14", "hostPrefix": 23}}
        },
    }


def test_derived_homelab_config_names_kube_dns_on_udp_and_tcp(derive: ModuleType) -> None:
    assert derive.pack_config("homelab") == {
        "all": {"enforcementLevel": "advisory"},
        "production-runs-cilium": {"environment": "homelab"},
        "namespace-default-deny": {
            "dns": {
                "namespace": "kube-system",
                "podLabels": {"k8s-app": "kube-dns"},
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        },
    }


def test_check_reports_a_committed_file_whose_dns_ports_drifted(
    derive: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(POLICIES_DIR / "config", config_dir)
    drifted = json.loads((config_dir / "production.json").read_text())
    drifted["namespace-default-deny"]["dns"]["ports"] = [{"port": 5353, "protocol": "UDP"}]
    (config_dir / "production.json").write_text(json.dumps(drifted, indent=2) + "\n")

    assert derive.main(["--check"], config_dir) == 1
    assert capsys.readouterr().out == f"{config_dir / 'production.json'}: differ from the stacks\n"
    assert derive.main(["--check"]) == 0


def test_a_stack_that_is_no_adr_environment_is_refused(derive: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"stack 'staging' is not an ADR-013 environment"):
        derive.pack_config("staging")


@pytest.mark.parametrize("flavour", [K3S, KUBERNETES], ids=["k3s", "kubernetes"])
def test_pack_default_dns_is_the_k3s_and_kubernetes_flavours_dns(flavour: Any) -> None:
    # The pack's fallback when its config names no `dns`; it must be the flavours' own facts.
    default_dns = importlib.import_module("adr013_guard.namespace_default_deny").DEFAULT_DNS
    assert json.loads(json.dumps(default_dns)) == flavour.dns.as_pack_config()
