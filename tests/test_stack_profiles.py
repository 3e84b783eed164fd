"""`connectivity --stack` answers with the profile of the stack's own Cilium line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnistack.stack_documents import load_stack_inputs
from reachability.errors import InputError


def _stack(tmp_path: Path, version: str) -> Path:
    config = {
        "aisp-cni:cni": "cilium",
        "aisp-cni:cluster": {"kind": "existing", "name": "prod", "server": "https://10.0.0.1:6443",
                             "context": "prod"},
        "aisp-cni:cilium": {"chart": {"version": version}, "k8sServiceHost": "10.0.0.1",
                            "k8sServicePort": 6443},
    }  # fmt: skip
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


@pytest.mark.parametrize(
    ("version", "profile"), [("1.15.19", "cilium@1.15"), ("1.19.7", "cilium@1.19")]
)
def test_the_profile_follows_the_stacks_cilium_line(
    tmp_path: Path, version: str, profile: str
) -> None:
    _, enforcement = load_stack_inputs("prod", _stack(tmp_path, version))
    assert enforcement == profile


def test_a_line_without_a_profile_is_refused_naming_the_version(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_stack_inputs("prod", _stack(tmp_path, "1.17.17"))
    assert str(caught.value) == (
        "stack 'prod': the analyzer has no profile for Cilium 1.17 "
        "(aisp-cni:cilium.chart.version 1.17.17); it follows cilium@1.15, cilium@1.19"
    )
