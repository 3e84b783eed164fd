"""A pod's security-identity labels as the Cilium agent derives them (1.15.0's label filter, plus
the patterns a Cilium profile says a later release added).

Policies are matched against these labels, not against the pod's own labels:
- pkg/k8s/labels.go GetPodMetadata drops pod labels under `io.cilium.k8s` (they cannot be spoofed
  from a pod) and pkg/k8s/utils SanitizePodLabels adds the namespace name, every namespace label
  under `io.cilium.k8s.namespace.labels.`, the service account and the cluster name;
- daemon/cmd/endpoint.go then keeps only the identity-relevant labels (pkg/labelsfilter, default
  prefixes: no `--labels`, no label file). Labels such as `pod-template-hash`,
  `controller-revision-hash`, `statefulset.kubernetes.io/pod-name` and anything under
  `kubernetes.io`/`k8s.io` are not part of the identity, so a selector on them selects nothing.
Found by the Cilium oracle (docs/cilium-oracle.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from reachability.inputs import (
    CILIUM_CLUSTER_KEY,
    CILIUM_NS_KEY,
    CILIUM_NS_LABEL_PREFIX,
    CILIUM_SA_KEY,
)

CILIUM_CLUSTER_NAME = "default"  # the chart's cluster.name default
_CILIUM_OWNED_PREFIX = "io.cilium.k8s"

# pkg/labelsfilter/filter.go defaultLabelPrefixCfg (v1.15.0): (regex, include). A label is kept
# unless an ignore pattern matches at the start of its key and no include pattern matches a
# longer section (filterLabels). Without a user-supplied include list, unmatched labels are kept.
_PREFIXES: tuple[tuple[re.Pattern[str], bool], ...] = tuple(
    (re.compile(pattern), include)
    for pattern, include in (
        (re.escape(CILIUM_NS_KEY), True),
        (re.escape("io.cilium.k8s.namespace.labels"), True),
        (re.escape("app.kubernetes.io"), True),
        (r"io\.kubernetes", False),
        (r"kubernetes\.io", False),
        (re.escape("statefulset.kubernetes.io/pod-name"), False),
        (re.escape("apps.kubernetes.io/pod-index"), False),
        (re.escape("batch.kubernetes.io/job-completion-index"), False),
        (r".*beta\.kubernetes\.io", False),
        (r"k8s\.io", False),
        (r"pod-template-generation", False),
        (r"pod-template-hash", False),
        (r"controller-revision-hash", False),
        (r"annotation.*", False),
        (r"etcd_node", False),
    )
)


@functools.cache
def _prefixes(left_out: tuple[str, ...]) -> tuple[tuple[re.Pattern[str], bool], ...]:
    """1.15.0's list plus the ignore patterns a later release added (the profile's
    `identity_labels_left_out`)."""
    return _PREFIXES + tuple((re.compile(p), False) for p in left_out)


def identity_relevant(key: str, left_out: tuple[str, ...] = ()) -> bool:
    included = ignored = 0
    for pattern, include in _prefixes(left_out):
        # Go regexp FindStringIndex: the leftmost match, which must start at 0.
        m = pattern.search(key)
        if m is None or m.start() != 0:
            continue
        if include:
            included = max(included, m.end())
        elif ignored == 0 or m.end() < ignored:
            ignored = m.end()
    return ignored == 0 or included > ignored


def identity_labels(
    pod_labels: Mapping[str, str],
    namespace: str,
    namespace_labels: Mapping[str, str],
    service_account: str,
    left_out: tuple[str, ...] = (),
) -> dict[str, str]:
    merged = {k: v for k, v in pod_labels.items() if not k.startswith(_CILIUM_OWNED_PREFIX)}
    for k, v in namespace_labels.items():
        merged[CILIUM_NS_LABEL_PREFIX + k] = v
    merged[CILIUM_NS_KEY] = namespace
    if service_account:
        merged[CILIUM_SA_KEY] = service_account
    merged[CILIUM_CLUSTER_KEY] = CILIUM_CLUSTER_NAME
    return {k: v for k, v in merged.items() if identity_relevant(k, left_out)}
