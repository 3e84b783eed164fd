"""Safe targeting: refuse to touch a cluster other than the one the stack declares.

Without this, `pulumi up -s production` from a laptop whose current kube context is the homelab
would install production's Cilium, protected, into the homelab: the ambient context is whatever
the user last switched to, so it names no particular cluster. The program
therefore requires an explicit kubeconfig or context (cnistack/config.py) and, before any
resource is registered, resolves the API server that kubeconfig + context really point at and
compares it with `cluster.server`.

Also here: the Makefile's lab passphrase must never protect the production stack's secrets.
Pure functions; the environment and files are passed in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from cnistack.config import PROJECT, ExistingCluster, StackConfig

# The Makefile's default passphrase (Makefile: LAB_PASSPHRASE); only the homelab may use it.
LAB_PASSPHRASE = "homelab-only-passphrase"


class TargetError(ValueError):
    """The stack would act on a cluster it does not declare, or with the lab's secrets."""


def _normalise(server: str) -> tuple[str, str, int]:
    parts = urlsplit(server.strip())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def same_server(a: str, b: str) -> bool:
    """https://API:6443 and https://api:6443/ are the same server; :443 is implied by https."""
    return _normalise(a) == _normalise(b)


def kubeconfig_documents(text: str | None, env: Mapping[str, str]) -> list[tuple[str, Any]]:
    if text is not None:
        return [("the `kubeconfig` secret", yaml.safe_load(text))]
    # kubectl's rules: $KUBECONFIG (a path list), else ~/.kube/config.
    paths = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if not paths:
        paths = [str(Path(env.get("HOME", "~")).expanduser() / ".kube" / "config")]
    documents = []
    for path in paths:
        file = Path(path)
        if file.is_file():
            documents.append((str(file), yaml.safe_load(file.read_text())))
    if not documents:
        raise TargetError(f"no kubeconfig found (looked at {', '.join(paths)})")
    return documents


def named_entry(
    documents: list[tuple[str, Any]], section: str, name: str
) -> Mapping[str, Any] | None:
    for _, doc in documents:
        for entry in (doc or {}).get(section) or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                value = entry.get(section.removesuffix("s"))
                return value if isinstance(value, Mapping) else {}
    return None


def kubeconfig_server(
    kubeconfig: str | None, context: str | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """(context used, API server URL) that `kubeconfig` and `context` point at."""
    documents = kubeconfig_documents(kubeconfig, env)
    where = " + ".join(source for source, _ in documents)
    if context is None:
        context = next(
            (
                doc.get("current-context")
                for _, doc in documents
                if (doc or {}).get("current-context")
            ),
            None,
        )
        if not context:
            raise TargetError(f"{where} has no current-context; set cluster.context")
    ctx = named_entry(documents, "contexts", context)
    if ctx is None:
        raise TargetError(f"context {context!r} is not in {where}")
    cluster = named_entry(documents, "clusters", str(ctx.get("cluster", "")))
    server = (cluster or {}).get("server")
    if not isinstance(server, str) or not server:
        raise TargetError(f"context {context!r} of {where} names no cluster with a server")
    return context, server


def check_target(config: StackConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Raise TargetError unless the kubeconfig points at `cluster.server`; returns that server.

    A k3d stack creates its own cluster and kubeconfig: nothing to check (None).
    """
    cluster = config.cluster
    if not isinstance(cluster, ExistingCluster):
        return None
    env = os.environ if env is None else env
    if cluster.server is None:
        raise TargetError(f"{PROJECT}:cluster.server: required for an existing cluster")
    secret = config.kubeconfig.get_secret_value() if config.kubeconfig else None
    context, actual = kubeconfig_server(secret, cluster.context, env)
    if not same_server(actual, cluster.server):
        raise TargetError(
            f"refusing to deploy stack cluster {cluster.name!r}: the kubeconfig's context "
            f"{context!r} points at {actual}, but {PROJECT}:cluster.server declares "
            f"{cluster.server}. Fix the kubeconfig or context; nothing was changed."
        )
    return actual


def check_secrets_passphrase(config: StackConfig, env: Mapping[str, str] | None = None) -> None:
    """An existing (production) cluster's secrets are never protected by the lab passphrase."""
    if not isinstance(config.cluster, ExistingCluster):
        return
    env = os.environ if env is None else env
    if env.get("PULUMI_CONFIG_PASSPHRASE") == LAB_PASSPHRASE:
        raise TargetError(
            f"stack cluster {config.cluster.name!r} holds production secrets: set your own "
            "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE), or use another "
            "secrets provider; the Makefile's lab passphrase is for the homelab only"
        )
