"""Cilium identity labels (reachability/cilium_identity.py) against the agent's default
label filter, pkg/labelsfilter/filter.go defaultLabelPrefixCfg at v1.15.0. The oracle test
(analyzer/tests/test_oracle.py) checks the same derivation against the agent's own code."""

from __future__ import annotations

import pytest

from reachability.cilium_identity import identity_labels, identity_relevant


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),  # included prefix, and `kubernetes.io` is not at 0
        ("pod-template-hash", False),
        ("controller-revision-hash", False),
        ("pod-template-generation", False),
        ("statefulset.kubernetes.io/pod-name", False),
        ("apps.kubernetes.io/pod-index", False),
        ("batch.kubernetes.io/job-completion-index", False),
        ("kubernetes.io/hostname", False),
        ("k8s.io/anything", False),
        ("topology.beta.kubernetes.io/zone", False),
        ("annotation.foo", False),
        ("io.kubernetes.pod.namespace", True),  # longer include beats `!io.kubernetes`
        ("io.kubernetes.container.name", False),
        ("io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name", True),
        ("my.kubernetes.io/x", True),  # the ignore pattern must match at the start
    ],
)
def test_identity_relevant(key: str, kept: bool) -> None:
    assert identity_relevant(key) is kept


def test_identity_labels_of_a_pod() -> None:
    labels = identity_labels(
        {"pod": "a", "pod-template-hash": "h", "io.cilium.k8s.policy.serviceaccount": "spoof"},
        "x",
        {"kubernetes.io/metadata.name": "x", "team": "red"},
        "sa1",
    )
    assert labels == {
        "pod": "a",
        "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": "x",
        "io.cilium.k8s.namespace.labels.team": "red",
        "io.kubernetes.pod.namespace": "x",
        "io.cilium.k8s.policy.serviceaccount": "sa1",
        "io.cilium.k8s.policy.cluster": "default",
    }
