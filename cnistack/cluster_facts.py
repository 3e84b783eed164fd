"""Read, before any resource, what an existing cluster runs: its Kubernetes version (`/version`)
and the Cilium Helm releases' history (Helm's storage Secrets in kube-system).

The kubeconfig and context are the ones safe targeting resolved (cnistack/targeting.py). Two GETs
with the standard library: the program's runtime carries no Kubernetes client (the analyzer's
live input has its own, as an optional extra). Supported credentials are the kubeconfig fields a
cluster admin's kubeconfig uses: a CA (file or data), a client certificate and key (file or
data), or a bearer token (or token file). An `exec`/`auth-provider` user is refused with the
reason: its plugin is not run before `pulumi up` registers the provider.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cnistack.cilium_upgrade import (
    PREFLIGHT_RELEASE_NAME,
    RELEASE_NAME,
    ClusterFacts,
    revisions_from_secrets,
)
from cnistack.config import ExistingCluster, StackConfig
from cnistack.targeting import TargetError, kubeconfig_documents, named_entry

NAMESPACE = "kube-system"
TIMEOUT_S = 30.0


@contextmanager
def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any]) -> Iterator[ssl.SSLContext]:
    context = ssl.create_default_context()
    with tempfile.TemporaryDirectory(prefix="cnistack-kubeconfig-") as tmp:

        def material(key: str) -> str | None:
            source = cluster if key.startswith("certificate-authority") else user
            if source.get(f"{key}-data"):
                path = Path(tmp) / key
                path.write_bytes(base64.b64decode(source[f"{key}-data"]))
                path.chmod(0o600)
                return str(path)
            value = source.get(key)
            return str(value) if value else None

        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif ca := material("certificate-authority"):
            context.load_verify_locations(cafile=ca)
        cert, key = material("client-certificate"), material("client-key")
        if cert and key:
            context.load_cert_chain(cert, key)
        yield context


def _headers(user: Mapping[str, Any]) -> dict[str, str]:
    if user.get("exec") or user.get("auth-provider"):
        raise TargetError(
            "the kubeconfig user authenticates through an exec/auth-provider plugin, which the "
            "program does not run before any resource; use a token or a client certificate"
        )
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(user["tokenFile"])).read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def read_cluster_facts(stack: StackConfig) -> ClusterFacts | None:
    """None for a k3d cluster (the stack creates it: nothing to read before its resources)."""
    cluster_config = stack.cluster
    if not isinstance(cluster_config, ExistingCluster):
        return None
    secret = stack.kubeconfig.get_secret_value() if stack.kubeconfig else None
    documents = kubeconfig_documents(secret, os.environ)
    context_name = cluster_config.context or next(
        (d.get("current-context") for _, d in documents if (d or {}).get("current-context")), ""
    )
    context = named_entry(documents, "contexts", str(context_name)) or {}
    cluster = named_entry(documents, "clusters", str(context.get("cluster", ""))) or {}
    user = named_entry(documents, "users", str(context.get("user", ""))) or {}
    server = str(cluster.get("server", "")).rstrip("/")
    headers = _headers(user)

    with _tls(cluster, user) as tls:

        def get(path: str) -> Any:
            request = urllib.request.Request(server + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=tls) as reply:
                    return json.load(reply)
            except (urllib.error.URLError, OSError, ValueError) as err:
                raise TargetError(
                    f"cannot read {path} from {server} before any resource (the Cilium release "
                    f"deployed and the Kubernetes version decide what this run may do): {err}"
                ) from None

        version = str(get("/version")["gitVersion"])
        secrets: list[Any] = []
        for name in (RELEASE_NAME, PREFLIGHT_RELEASE_NAME):
            listed = get(
                f"/api/v1/namespaces/{NAMESPACE}/secrets?labelSelector=owner%3Dhelm%2Cname%3D{name}"
            )
            secrets += listed.get("items") or []
    return ClusterFacts(server_version=version, revisions=revisions_from_secrets(secrets))
