"""Fault injection on the real pieces (engine tests only): kill `pulumi up` mid-way, lose the
API server, and compare what is left, once recovered, with a clean `up` of the same config.

- `run_up_killed` starts `pulumi up` with an event log and SIGKILLs it, with every process it
  started (language host, Python program, provider plugins: each in a process group of its own,
  so the tree is walked through /proc), once the log holds a given number of engine events plus
  a delay: the laptop that sleeps, the CI runner that is killed.
- `Watcher` polls the API server during a run and records every violation of two invariants a
  user must never see, at any instant it can observe: a namespace whose default-deny exists
  while one of its allows is missing, and the `storage` namespace deleted.
- `snapshot` reads what the program owns in the cluster and in the stack's state, with what is
  specific to one cluster (its address, token, CA) replaced by placeholders, so that two clusters
  given the same config compare equal.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnistack.netpol.renderer import render_policies
from tests.engine_harness import Engine, Result
from tests.local_cluster import LocalCluster, script

MANAGED = "app.kubernetes.io%2Fmanaged-by%3Dcnistack"
DENY = "default-deny"
STORAGE = "storage"


# --- killing ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent's pid; field 2 (comm) may hold spaces, so split after it.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid` and every process under it (found first, then killed together)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return tree


def count_events(log: Path) -> int:
    """Engine events written so far (`--event-log`, one JSON object per line)."""
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@dataclass
class KilledRun:
    killed: bool  # False: the update finished before the kill point
    events_at_kill: int
    result: Result
    last_event: str


def start_up(engine: Engine, stack: str, log: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = engine.workdir / "up.stdout", engine.workdir / "up.stderr"
    argv = [
        "pulumi", "up", "-s", stack, "--yes", "--non-interactive", "--skip-preview",
        *engine._pack_args(stack), "--event-log", str(log),
    ]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            argv, cwd=engine.project, env=engine.env, stdout=stdout, stderr=stderr,
            start_new_session=True,
        )  # fmt: skip
    return process, out, err


def _wait_for_events(
    process: subprocess.Popen[bytes], log: Path, count: int, timeout_s: float
) -> int:
    deadline = time.monotonic() + timeout_s
    seen = 0
    while process.poll() is None and seen < count:
        if time.monotonic() > deadline:
            kill_tree(process.pid)
            raise AssertionError(f"pulumi up did not reach event {count} in {timeout_s:.0f} s")
        time.sleep(0.05)
        seen = count_events(log)
    return seen


def run_up_killed(
    engine: Engine, stack: str, kill_after_events: int, delay_s: float, timeout_s: float = 900
) -> KilledRun:
    log = engine.workdir / f"events-{time.monotonic_ns()}.jsonl"
    process, out, err = start_up(engine, stack, log)
    seen = _wait_for_events(process, log, kill_after_events, timeout_s)
    killed = False
    if process.poll() is None:
        time.sleep(delay_s)
        if process.poll() is None:
            kill_tree(process.pid)
            killed = True
    process.wait(timeout=60)
    lines = log.read_text().splitlines() if log.exists() else []
    last = _describe_event(json.loads(lines[-1])) if lines else "no event"
    result = Result(process.returncode, out.read_text(), err.read_text())
    return KilledRun(killed, seen, result, last)


def run_with_api_server_down(
    engine: Engine,
    cluster: LocalCluster,
    stack: str,
    *,
    at_event: int,
    down_s: float,
    timeout_s: float = 900,
) -> Result:
    """`pulumi up` whose API server is killed after `at_event` events and started again
    `down_s` later (same etcd, same address): a control-plane restart in the middle."""
    log = engine.workdir / f"events-{time.monotonic_ns()}.jsonl"
    process, out, err = start_up(engine, stack, log)
    _wait_for_events(process, log, at_event, timeout_s)
    script.stop_process(cluster.workdir, "kube-apiserver")
    try:
        time.sleep(down_s)
    finally:
        script.restart_process(cluster.workdir, "kube-apiserver")
        # kwok drops a pod status patch that failed while the API server was down and never
        # retries it; a kubelet resyncs its pods' status. Restarting kwok resyncs them.
        script.stop_process(cluster.workdir, "kwok")
        script.restart_process(cluster.workdir, "kwok")
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        raise AssertionError(
            f"pulumi up still running {timeout_s:.0f} s after the restart"
        ) from None
    return Result(process.returncode, out.read_text(), err.read_text())


def _describe_event(event: dict[str, Any]) -> str:
    for key in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        if key in event:
            metadata = event[key]["metadata"]
            return f"{key} {metadata['op']} {metadata['urn'].rsplit('::', 1)[1]}"
    return next((k for k in event if k.endswith("Event")), "event")


# --- watching invariants ----------------------------------------------------------------------


@dataclass
class Watcher:
    """Polls the cluster while a run goes on; `violations` lists what a user could have seen."""

    cluster: LocalCluster
    # namespace -> names of the NetworkPolicies/CNPs that must exist whenever its deny does.
    allows: dict[str, set[str]]
    # False across the homelab's CNI switch: the k3d cluster is replaced, storage goes with it
    # (by design; the program never deletes it itself: retainOnDelete, deletedWith).
    watch_storage: bool = True
    interval_s: float = 0.2
    violations: list[str] = field(default_factory=list)
    observations: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _storage_uid: str | None = None

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def check_once(self) -> None:
        api = self.cluster.api()
        present: dict[str, set[str]] = {}
        for path in (
            "/apis/networking.k8s.io/v1/networkpolicies",
            "/apis/cilium.io/v2/ciliumnetworkpolicies",
        ):
            for item in api.get(path)["items"]:
                meta = item["metadata"]
                present.setdefault(meta["namespace"], set()).add(meta["name"])
        # A namespace being deleted (the homelab's k3d cluster replaced) loses its objects in
        # any order: that is the cluster going away, not an update applying policies.
        terminating = {
            ns["metadata"]["name"]
            for ns in api.get("/api/v1/namespaces")["items"]
            if ns["metadata"].get("deletionTimestamp")
        }
        for namespace, names in present.items():
            if DENY in names and namespace in self.allows and namespace not in terminating:
                missing = self.allows[namespace] - names
                if missing:
                    self.violations.append(
                        f"{namespace}/{DENY} applied while {sorted(missing)} missing"
                    )
        self.observations += 1
        if not self.watch_storage:
            return
        try:
            storage = api.get(f"/api/v1/namespaces/{STORAGE}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            storage = None
        uid = storage["metadata"]["uid"] if storage else None
        if self._storage_uid and (
            uid != self._storage_uid or storage["metadata"].get("deletionTimestamp")
        ):
            self.violations.append(f"namespace {STORAGE} deleted (uid {self._storage_uid})")
        self._storage_uid = self._storage_uid or uid

    def _run(self) -> None:
        while not self._stop.is_set():
            # The API server may be down on purpose: nothing to observe then.
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                self.check_once()
            self._stop.wait(self.interval_s)


def expected_allows(manifests: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per namespace, every policy but the deny: what must exist whenever the deny does."""
    allows: dict[str, set[str]] = {}
    for manifest in manifests:
        if manifest["kind"] in ("NetworkPolicy", "CiliumNetworkPolicy"):
            meta = manifest["metadata"]
            if meta["name"] != DENY:
                allows.setdefault(meta["namespace"], set()).add(meta["name"])
    return allows


# --- snapshots --------------------------------------------------------------------------------

VOLATILE_METADATA = (
    "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers",
)  # fmt: skip
VOLATILE_ANNOTATIONS = ("deprecated.daemonset.template.generation",
                        "deployment.kubernetes.io/revision")  # fmt: skip


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in VOLATILE_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in VOLATILE_ANNOTATIONS:
        annotations.pop(key, None)
    if not annotations:
        meta.pop("annotations", None)
    return obj


def helm_releases(cluster: LocalCluster, name: str = "cilium") -> list[dict[str, Any]]:
    """Every stored revision of a release (helm.sh/helm/v3 pkg/storage/driver/secrets.go)."""
    selector = f"owner%3Dhelm%2Cname%3D{name}"
    secrets = cluster.api().get(f"/api/v1/namespaces/kube-system/secrets?labelSelector={selector}")
    releases = []
    for secret in secrets["items"]:
        stored = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        releases.append(json.loads(gzip.decompress(stored)))
    return sorted(releases, key=lambda r: int(r["version"]))


def cluster_snapshot(cluster: LocalCluster) -> dict[str, Any]:
    """What the program owns in the cluster, by kind and name."""
    api = cluster.api()
    snap: dict[str, Any] = {}
    for kind, path in (
        ("Namespace", "/api/v1/namespaces"),
        ("NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies"),
        ("CiliumNetworkPolicy", "/apis/cilium.io/v2/ciliumnetworkpolicies"),
        ("ClusterRole", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
        ("ClusterRoleBinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
        ("ConfigMap", "/api/v1/configmaps"),
    ):
        for item in api.get(f"{path}?labelSelector={MANAGED}")["items"]:
            meta = item["metadata"]
            snap[f"{kind} {meta.get('namespace', '')}/{meta['name']}"] = _clean(item)
    for kind, path in (
        ("DaemonSet", "/apis/apps/v1/namespaces/kube-system/daemonsets"),
        ("Deployment", "/apis/apps/v1/namespaces/kube-system/deployments"),
    ):
        for item in api.get(path)["items"]:
            if (item["metadata"].get("annotations") or {}).get("meta.helm.sh/release-name"):
                snap[f"{kind} kube-system/{item['metadata']['name']}"] = _clean(item)
    try:
        config = api.get("/api/v1/namespaces/kube-system/configmaps/cilium-config")
        snap["ConfigMap kube-system/cilium-config"] = _clean(config)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
    releases = helm_releases(cluster)
    if releases:
        latest = releases[-1]
        snap["HelmRelease kube-system/cilium"] = {
            "status": latest["info"]["status"],
            "chart": latest["chart"]["metadata"]["version"],
            "config": latest["config"],
            "pending": [
                r["version"] for r in releases if r["info"]["status"].startswith("pending")
            ],
        }
    return snap


def state_snapshot(engine: Engine, stack: str) -> dict[str, Any]:
    """The stack's state: per URN its type, inputs and options; what an interrupted update
    may leave behind (pending operations, resources pending deletion) is kept apart."""
    export = engine.pulumi("stack", "export", "-s", stack, "--show-secrets", check=True).json()
    deployment = export["deployment"]
    resources: dict[str, Any] = {}
    duplicates: list[str] = []
    for resource in deployment.get("resources", []):
        urn = resource["urn"]
        if urn in resources:
            duplicates.append(urn)
        inputs = dict(resource.get("inputs", {}))
        if resource["type"] == "command:local:Command":
            # `triggers` holds the k3d cluster's resource ID, a random string per creation.
            inputs.pop("triggers", None)
        resources[urn] = {
            "type": resource["type"],
            "inputs": inputs,
            "protect": resource.get("protect", False),
            "retainOnDelete": resource.get("retainOnDelete", False),
            "delete": resource.get("delete", False),
            "pendingReplacement": resource.get("pendingReplacement", False),
        }
    return {
        "resources": resources,
        "duplicates": duplicates,
        "pending_operations": [
            f"{op['type']} {op['resource']['urn']}"
            for op in deployment.get("pending_operations") or []
        ],
    }


def normalize(value: Any, cluster: LocalCluster) -> Any:
    """Replace what differs between two local clusters given the same config (the kubeconfig,
    its token and CA, the server's address and ephemeral port) by placeholders; drop the
    receipt's digest of the values, which hold that port (checked on its own)."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    host_port = cluster.server.removeprefix("https://")
    port = int(host_port.rsplit(":", 1)[1])
    subs = (
        (cluster.kubeconfig.read_text(), "<kubeconfig>"),
        (config["users"][0]["user"]["token"], "<token>"),
        (config["clusters"][0]["cluster"]["certificate-authority-data"], "<ca>"),
        (host_port, "<host:port>"),
    )

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k != "values-sha256"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            for needle, placeholder in subs:
                node = node.replace(needle, placeholder)
            return "<port>" if node == str(port) else node
        if isinstance(node, int) and not isinstance(node, bool) and node == port:
            return "<port>"
        return node

    return walk(value)


def diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Keys missing, extra, or different (named, for the assertion message)."""
    problems = [f"missing: {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"orphan (not in a clean up): {k}" for k in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        if expected[key] != actual[key]:
            problems.append(f"differs: {key}: {_first_difference(expected[key], actual[key])}")
    return problems


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: clean {json.dumps(a)[:200]} != recovered {json.dumps(b)[:200]}"


def converged(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (bounded) for a condition; fail naming what did not converge."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:  # not there yet: keep polling until the deadline
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{what}: not converged after {timeout_s:.0f} s (last error: {last})")


# --- recovery (docs/recovery.md) ---------------------------------------------------------------


def rendered_manifests(config: Any) -> list[dict[str, Any]]:
    """The policies the program renders for a stack config (what the cluster must hold)."""
    rendered = render_policies(config.network_policy, config.capabilities, config.flavour)
    return list(rendered.manifests)


PENDING = "status in (pending-install,pending-upgrade,pending-rollback)"
RELEASE_URN = {
    "production": "urn:pulumi:production::aisp-cni::aisp-cni:index:Cni"
    "$kubernetes:helm.sh/v3:Release::cni-cilium",
    "homelab": "urn:pulumi:homelab::aisp-cni::aisp-cni:index:Cni"
    "$kubernetes:helm.sh/v3:Release::cni-cilium",
}


def helm_statuses(cluster: LocalCluster) -> list[str]:
    """The status label of each stored revision of the release (what `kubectl get secret -l
    owner=helm,name=cilium -L status` shows)."""
    selector = urllib.parse.quote("owner=helm,name=cilium")
    items = cluster.api().get(f"/api/v1/namespaces/kube-system/secrets?labelSelector={selector}")
    return [item["metadata"]["labels"]["status"] for item in items["items"]]


def drop_pending_helm_revisions(cluster: LocalCluster) -> None:
    selector = urllib.parse.quote(f"owner=helm,name=cilium,{PENDING}")
    cluster.api().request(
        "DELETE", f"/api/v1/namespaces/kube-system/secrets?labelSelector={selector}"
    )


def drop_truncated_checkpoint_attrs(engine: Engine, stack: str) -> list[Result]:
    """A kill while the file backend saves the stack can leave its `<stack>.json.attrs`
    sidecar empty: gocloud.dev's fileblob writer truncates it (os.Create), writes its JSON,
    then renames the new checkpoint over the old one (blob/fileblob, writer.Close and
    setAttrs). Every command that reads the stack then stops with "failed to load
    checkpoint: EOF" (getAttrs decodes the empty file). A missing sidecar is read as
    "no attributes", and the stack file itself is still the previous whole checkpoint: delete
    the empty sidecar and the unrenamed temporary file. Returns the failed read, if any."""
    export = engine.pulumi("stack", "export", "-s", stack)
    if export.returncode == 0 or "failed to load checkpoint: EOF" not in export.output:
        return []
    stacks = Path(engine.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi/stacks"
    sidecars = [p for p in stacks.glob(f"*/{stack}.json.attrs") if p.stat().st_size == 0]
    assert sidecars, f"{export.output}: no empty {stack}.json.attrs under {stacks}"
    for path in [*sidecars, *stacks.glob(f"*/{stack}.json.*.tmp")]:
        path.unlink()
    return [export]


def orphaned_pending_replacements(engine: Engine, stack: str) -> list[str]:
    """URNs of the records that name a provider the state no longer holds, dependents first
    (the state lists every resource after what it depends on).

    A kill can leave them: a resource replaced delete-before-create (the Kubernetes provider
    asks for it when the object's name stays) is deleted and kept as `pendingReplacement`,
    still naming the provider it was created with; when that provider is itself replaced (the
    homelab's cluster changed), the engine may remove the old provider from the state before
    the replacement is created. Every later refresh or `up` then stops with "could not load
    provider for resource ...: could not find provider ..." (pkg/resource/deploy/
    deployment.go, EnsureProvider). Anything else naming a missing provider fails here: the
    recovery below is only for records whose object is already gone."""
    export = engine.pulumi("stack", "export", "-s", stack, check=True).json()
    resources = export["deployment"].get("resources", [])
    refs = {f"{r['urn']}::{r.get('id', '')}" for r in resources}
    orphans = [r for r in resources if r.get("provider") and r["provider"] not in refs]
    unexpected = [r["urn"] for r in orphans if not r.get("pendingReplacement")]
    assert unexpected == [], f"resources naming a missing provider, not pending: {unexpected}"
    return [r["urn"] for r in reversed(orphans)]


def recover(engine: Engine, stack: str, cluster: LocalCluster) -> list[Result]:
    """docs/recovery.md, "A killed `pulumi up`", step by step; each step's result is kept."""
    # 0. File backend: a save cut off can leave the stack unreadable ("failed to load
    #    checkpoint: EOF", `pulumi cancel` included); the previous checkpoint is whole, only its
    #    sidecar is empty.
    steps = drop_truncated_checkpoint_attrs(engine, stack)
    # 1. The killed run still holds the stack's lock (the DIY backend's lock file).
    steps.append(engine.pulumi("cancel", "-s", stack, "--yes", "--non-interactive"))
    pending = any(status.startswith("pending-") for status in helm_statuses(cluster))
    if pending and stack == "production":  # the homelab's retry may stop on k3d first (step 5)
        # What a user who just retries sees: the program names the pending revision and the
        # way out before Helm runs (components/cni_rollout.py, helm_pending_hook).
        retry = engine.up(stack)
        steps.append(retry)
        assert retry.returncode != 0, retry.output[-3000:]
        assert "left by an interrupted operation" in retry.output, retry.output[-3000:]
    # 2. A Helm operation cut off leaves its revision `pending-*`, and Helm refuses every later
    #    install or upgrade of the release: drop that record (what
    #    `kubectl -n kube-system delete secret -l 'owner=helm,name=cilium,<PENDING>'` does).
    drop_pending_helm_revisions(cluster)
    # 2b. Records of objects already deleted for a replacement that name a provider the state
    #    no longer holds: drop them (dependents first; `state delete` refuses a record others
    #    depend on). The next `up` creates the objects, in the program's order.
    for urn in orphaned_pending_replacements(engine, stack):
        steps.append(engine.pulumi("state", "delete", urn, "--yes", "--non-interactive"))
    # 3. Read back what the interrupted update did. A create it had started is pending: the
    #    release is imported if Helm holds it (the install finished before the kill), every
    #    other pending create is dropped (the next `up` applies it again, server-side apply
    #    adopts what exists).
    imports = (
        # A string array: URN and ID are one flag each (pkg/cmd/pulumi/operations/refresh.go).
        [
            "--import-pending-creates",
            RELEASE_URN[stack],
            "--import-pending-creates",
            "kube-system/cilium",
        ]
        if helm_statuses(cluster)
        else []
    )
    steps.append(
        engine.pulumi(
            "refresh", "-s", stack, "--yes", "--non-interactive", "--skip-preview",
            *imports, "--clear-pending-creates",
        )
    )  # fmt: skip
    # 4. Finish the change.
    steps.append(engine.up(stack))
    # 5. Homelab only: k3d created the cluster but the state never heard of it.
    if stack == "homelab" and "a cluster with that name already exists" in steps[-1].output:
        k3d = subprocess.run(
            ["k3d", "cluster", "delete", "aisp-homelab"], env=engine.env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        steps.append(Result(k3d.returncode, k3d.stdout, k3d.stderr))
        steps.append(engine.up(stack))
    return steps
