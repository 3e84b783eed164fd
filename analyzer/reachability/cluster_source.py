"""A live cluster as analyzer input: `cluster:[CONTEXT]` read through the API server.

Reads Namespaces, Pods, NetworkPolicies, CiliumNetworkPolicies and
CiliumClusterwideNetworkPolicies with the Kubernetes Python client (`kubernetes`), page by page
(`limit`/`continue`, the API's chunked list: kubernetes/enhancements KEP-365), and hands the
objects to the same `load_documents` as files, so the same objects give the same answer live as
from manifests. Each page is parsed by `reading` (JSON, depth-limited), not by the client's model
classes: the same bytes `kubectl get -o json` prints, at a tenth of the cost.

Pods are read the way the file loader reads workloads: a pod a controller owns (Deployment via
its ReplicaSet, StatefulSet, DaemonSet, plain ReplicaSet) stands for its workload, under the
workload's name, without the labels the controllers add; the first pod by name represents it.
So `diff stack:production cluster:prod` compares the program's workloads with the running ones.
Pods that ended (phase Succeeded or Failed) carry no traffic and are left out, with a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from reachability import reading
from reachability.errors import InputError
from reachability.inputs import Inputs
from reachability.loader import load_documents

PAGE_SIZE = 500
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
CILIUM_GROUP, CILIUM_VERSION = "cilium.io", "v2"
# Labels the workload controllers add to the pods they create (k8s.io/api apps/v1 constants:
# DefaultDeploymentUniqueLabelKey, ControllerRevisionHashLabelKey, StatefulSetPodNameLabel,
# PodIndexLabel); the manifests' pod templates do not carry them.
CONTROLLER_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
    }
)
ENDED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Resource:
    kind: str
    api_version: str
    plural: str  # as in RBAC rules and error messages
    namespaced: bool
    cilium: bool = False


RESOURCES = (
    Resource("Namespace", "v1", "namespaces", namespaced=False),
    Resource("Pod", "v1", "pods", namespaced=True),
    Resource("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", namespaced=True),
    Resource(
        "CiliumNetworkPolicy", "cilium.io/v2", "ciliumnetworkpolicies", namespaced=True, cilium=True
    ),
    Resource(
        "CiliumClusterwideNetworkPolicy",
        "cilium.io/v2",
        "ciliumclusterwidenetworkpolicies",
        namespaced=False,
        cilium=True,
    ),
)

Lister = Callable[..., Any]


def cluster_label(context: str | None) -> str:
    return f"cluster:{context or ''}"


def api_client(context: str | None, kubeconfig: str | None) -> client.ApiClient:
    """A client for `context` (the current one when None) of `kubeconfig` (client default)."""
    source = cluster_label(context)
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kubeconfig, context=context or None, client_configuration=configuration
        )
    except (ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
        raise InputError(f"cannot use {where}: {exc}", source=source) from exc
    # Fail fast on an unreachable server rather than retrying three times with back-off.
    configuration.retries = 0
    return client.ApiClient(configuration)


def listers(api: client.ApiClient) -> dict[str, Lister]:
    core = client.CoreV1Api(api)
    networking = client.NetworkingV1Api(api)
    custom = client.CustomObjectsApi(api)

    def cilium(plural: str) -> Lister:
        def call(**kwargs: Any) -> Any:
            return custom.list_cluster_custom_object(CILIUM_GROUP, CILIUM_VERSION, plural, **kwargs)

        return call

    return {
        "namespaces": core.list_namespace,
        "pods": core.list_pod_for_all_namespaces,
        "networkpolicies": networking.list_network_policy_for_all_namespaces,
        "ciliumnetworkpolicies": cilium("ciliumnetworkpolicies"),
        "ciliumclusterwidenetworkpolicies": cilium("ciliumclusterwidenetworkpolicies"),
    }


def load_cluster_inputs(context: str | None, kubeconfig: str | None) -> Inputs:
    api = api_client(context, kubeconfig)
    try:
        return read_cluster(listers(api), cluster_label(context), api.configuration.host)
    finally:
        api.close()


def read_cluster(calls: dict[str, Lister], source: str, server: str) -> Inputs:
    """Every analysed object of the cluster behind `calls` (one list call per resource)."""
    documents: list[Any] = []
    notes: list[str] = []
    for resource in RESOURCES:
        try:
            items = list(_pages(calls[resource.plural], resource, source, server))
        except _MissingCrdError:
            notes.append(
                f"{source}: {resource.plural}.{CILIUM_GROUP}/{CILIUM_VERSION} is not served "
                f"(Cilium's CRDs are not installed): no {resource.kind} read"
            )
            continue
        if resource.kind == "Pod":
            items = _workload_pods(items, source, notes)
        documents.extend(items)
    inputs = load_documents([(doc, source) for doc in documents])
    inputs.notes[:0] = notes
    return inputs


class _MissingCrdError(Exception):
    pass


def _pages(call: Lister, resource: Resource, source: str, server: str) -> Iterator[Any]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "limit": PAGE_SIZE,
            "_preload_content": False,
            "_request_timeout": (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
        }
        if token:
            kwargs["_continue"] = token
        try:
            response = call(**kwargs)
            try:
                data = reading.read_stream(response, f"{source} {resource.plural}")
            finally:
                response.release_conn()
        except ApiException as exc:
            if exc.status == 404 and resource.cilium:
                raise _MissingCrdError from exc
            raise InputError(_api_error(exc, resource), source=source) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise InputError(
                f"cannot reach the API server {server}: {_reason(exc)}", source=source
            ) from exc
        (page,) = reading.parse_documents(data, f"{source} {resource.plural}", as_json=True)
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise InputError(f"listing {resource.plural}: not a list response", source=source)
        for item in page["items"]:
            if isinstance(item, dict):
                # Items of a typed list carry no kind: the list's kind says it.
                item.setdefault("kind", resource.kind)
                item.setdefault("apiVersion", resource.api_version)
                if resource.kind == "Pod":
                    yield _slim_pod(item)
                    continue
            yield item
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _api_error(exc: ApiException, resource: Resource) -> str:
    message = _status_message(exc)
    scope = f"list {resource.plural}" + (" in all namespaces" if resource.namespaced else "")
    if exc.status == 403:
        return f"forbidden to {scope} (RBAC: grant list on {resource.plural}): {message}"
    if exc.status == 401:
        return f"unauthorized to {scope} (the kubeconfig's credentials were rejected): {message}"
    if exc.status == 410:
        return (
            f"listing {resource.plural}: the continue token expired while paging (the list "
            f"changed too much); run again: {message}"
        )
    return f"cannot {scope}: HTTP {exc.status}: {message}"


def _status_message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if body else None
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(exc.reason or body or exc.status)


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    # urllib3 prefixes its own object repr: keep the OS's words.
    marker = "Failed to establish a new connection: "
    return text.split(marker, 1)[1].rstrip('")') if marker in text else text


def _slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """Only what the loader reads of a pod, kept page by page: a live pod is ~10 KB of JSON
    (managedFields, status conditions, env, volumes), ~0.5 KB of it matters here."""
    meta, spec, status = (pod.get(k) for k in ("metadata", "spec", "status"))
    if not all(isinstance(part, dict) or part is None for part in (meta, spec, status)):
        return pod  # malformed: load_documents names the problem
    meta, spec, status = meta or {}, spec or {}, status or {}
    slim_spec: dict[str, Any] = {
        k: spec[k]
        for k in ("serviceAccountName", "serviceAccount", "hostNetwork", "nodeName")
        if k in spec
    }
    for key in ("containers", "initContainers"):
        listed = spec.get(key)
        if isinstance(listed, list):
            slim_spec[key] = [
                {k: c[k] for k in ("name", "ports") if k in c} if isinstance(c, dict) else c
                for c in listed
            ]
        elif listed is not None:
            slim_spec[key] = listed
    return {
        "kind": pod.get("kind"),
        "apiVersion": pod.get("apiVersion"),
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "labels", "ownerReferences") if k in meta
        },
        "spec": slim_spec,
        "status": {k: status[k] for k in ("phase", "podIP") if k in status},
    }


def _workload_pods(pods: list[Any], source: str, notes: list[str]) -> list[Any]:
    """One representative pod per controller-owned workload; bare pods as they are."""
    by_key: dict[tuple[str, str], Any] = {}
    ended = 0
    for pod in sorted(pods, key=_pod_sort_key):
        if not isinstance(pod, dict):
            by_key[("", str(len(by_key)))] = pod  # load_documents reports it
            continue
        if (pod.get("status") or {}).get("phase") in ENDED_PHASES:
            ended += 1
            continue
        meta = pod.get("metadata")
        if not isinstance(meta, dict):
            by_key[("", str(len(by_key)))] = pod  # load_documents reports it
            continue
        workload = _workload_name(meta)
        if workload is None:
            by_key[(str(meta.get("namespace")), str(meta.get("name")))] = pod
            continue
        key = (str(meta.get("namespace")), workload)
        if key in by_key:
            continue
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in CONTROLLER_LABELS}
        by_key[key] = {**pod, "metadata": {**meta, "name": workload, "labels": labels}}
    if ended:
        notes.append(f"{source}: {ended} pod(s) in phase Succeeded/Failed left out")
    return list(by_key.values())


def _pod_sort_key(pod: Any) -> tuple[str, str]:
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    if not isinstance(meta, dict):
        return ("", "")
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _workload_name(meta: dict[str, Any]) -> str | None:
    """The owning workload's name, from the pod's controller reference."""
    owners = meta.get("ownerReferences") or []
    owner = next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
    if owner is None:
        return None
    kind, name = owner.get("kind"), str(owner.get("name") or "")
    if kind in ("StatefulSet", "DaemonSet"):
        return name
    if kind == "ReplicaSet":
        # The Deployment controller names its ReplicaSets `<deployment>-<pod-template-hash>`
        # (kubernetes pkg/controller/deployment/sync.go, getNewReplicaSet).
        suffix = "-" + str((meta.get("labels") or {}).get("pod-template-hash", ""))
        return name.removesuffix(suffix) if len(suffix) > 1 else name
    return None
