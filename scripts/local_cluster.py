#!/usr/bin/env python3
"""A local Kubernetes control plane on loopback, with simulated nodes (stdlib only).

    python scripts/local_cluster.py start --dir DIR --nodes N [--node-prefix P]
        runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
        127.0.0.1 (free ports), waits on /readyz (bounded), creates N nodes that kwok
        simulates, writes DIR/kubeconfig and prints its path.
    python scripts/local_cluster.py stop --dir DIR
        stops the processes that `start` recorded in DIR/pids.json, by PID.
    python scripts/local_cluster.py add-nodes --dir DIR NAME... / delete-nodes --dir DIR NAME...
        creates / deletes simulated nodes (the test-only k3d stand-in uses these).

Binaries come from scripts/toolchain.sh's bin/ (CNISTACK_TOOLCHAIN_DIR, default
~/.cache/cnistack/toolchain), else from PATH. Real: etcd, the API server, the controllers
and the scheduler. Simulated by kwok: only the nodes and the pods' lifecycle (no kubelet,
no container runs, no datapath) — docs/real-engine.md.

Settings that matter (each was a failure without it, see docs/real-engine.md):
- kube-apiserver --allow-privileged=true: Cilium's agent DaemonSet is privileged.
- kube-controller-manager runs its default controllers, node-lifecycle included: it lifts
  the `node.kubernetes.io/not-ready` taint once kwok reports the node Ready; otherwise only
  host-network pods schedule.
- kwok's pod stages are given explicitly (KWOK_STAGES): a Job's pod completes, whether it
  is the first install's or a Helm upgrade's hook pod (the chart's hubble-generate-certs
  hook), else Helm waits out its 5-minute timeout.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any


def _kube_reader() -> ModuleType:
    """The program's own API reader (components/kube_reader.py), loaded by its path so that the
    Pulumi shell's package (components/__init__.py) is not imported: this client retries what
    the API server asks to retry exactly as the program and client-go do."""
    name = "cnistack_kube_reader"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "components/kube_reader.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


kube_reader = _kube_reader()

PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
READY_TIMEOUT_S = 90.0
NODE_READY_TIMEOUT_S = 60.0
NODE_LEASE_S = 40
STOP_TIMEOUT_S = 10.0
SERVICE_CIDR = "10.96.0.0/16"

# kwok Stage objects (sigs.k8s.io/kwok@v0.7.0 kustomize/stage/pod/fast, adapted): Job pods go
# straight to Succeeded; any other pod becomes Running and Ready; deleted pods go away.
_TERMINATED = """
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
  ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Succeeded
      startTime: {{ $now | Quote }}
"""


# Running; @...@ are filled by _running (Go template braces stay as kwok reads them).
_RUNNING_TEMPLATE = """
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: @STATUS@
        type: Ready@REASON@
      - lastTransitionTime: {{ $now | Quote }}
        status: @STATUS@
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: @FLAG@
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
  ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
"""


def _running(ready: bool) -> str:
    """Running and Ready; or, not ready, running with every container started but unready (a
    failing readiness probe)."""
    return (
        _RUNNING_TEMPLATE.replace("@STATUS@", '"True"' if ready else '"False"')
        .replace("@REASON@", "" if ready else "\n        reason: ContainersNotReady")
        .replace("@FLAG@", "true" if ready else "false")
    )


_RUNNING = _running(ready=True)
_RUNNING_NOT_READY = _running(ready=False)


def _stage(name: str, expressions: str, next_: str) -> str:
    return f"""apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: {name}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
{expressions}
  next:
{next_}"""


_NOT_DELETED = """    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
"""
_UNSTARTED = """    - key: '.status.podIP'
      operator: 'DoesNotExist'
"""
_JOB_OWNED = """    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values: ['Job']
"""
_NOT_JOB_OWNED = """    - key: '.metadata.ownerReferences.[].kind'
      operator: 'NotIn'
      values: ['Job']
"""
# Test-only: a pod with this label runs but never becomes Ready (a crash-looping agent, say), so
# that a stuck rollout can be produced on purpose (tests/test_engine_faults.py).
NEVER_READY_LABEL = "cnistack.io/kwok-never-ready"
_NEVER_READY = f"""    - key: '.metadata.labels["{NEVER_READY_LABEL}"]'
      operator: 'In'
      values: ['true']
"""
_NOT_NEVER_READY = f"""    - key: '.metadata.labels["{NEVER_READY_LABEL}"]'
      operator: 'DoesNotExist'
"""
KWOK_STAGES = "---\n".join(
    [
        _stage(
            "cnistack-job-pod-complete",
            _NOT_DELETED + _UNSTARTED + _JOB_OWNED,
            "    statusTemplate: |" + _TERMINATED,
        ),
        _stage(
            "cnistack-pod-ready",
            _NOT_DELETED + _UNSTARTED + _NOT_JOB_OWNED + _NOT_NEVER_READY,
            "    statusTemplate: |" + _RUNNING,
        ),
        _stage(
            "cnistack-pod-never-ready",
            _NOT_DELETED + _UNSTARTED + _NOT_JOB_OWNED + _NEVER_READY,
            "    statusTemplate: |" + _RUNNING_NOT_READY,
        ),
        _stage(
            "cnistack-pod-delete",
            """    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
""",
            "    finalizers:\n      empty: true\n    delete: true\n",
        ),
    ]
)


class ClusterError(RuntimeError):
    pass


def toolchain_bin() -> Path:
    base = os.environ.get("CNISTACK_TOOLCHAIN_DIR") or str(
        Path.home() / ".cache/cnistack/toolchain"
    )
    return Path(base) / "bin"


def _binary(name: str) -> str:
    candidate = toolchain_bin() / name
    if candidate.is_file():
        return str(candidate)
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if (Path(entry) / name).is_file():
            return str(Path(entry) / name)
    raise ClusterError(
        f"no {name} binary in {toolchain_bin()} or on PATH: run scripts/toolchain.sh"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_pki(pki: Path) -> None:
    """A CA, the API server's serving cert for 127.0.0.1, and the service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
             "-days", "2", "-subj", "/CN=cnistack-local-ca")  # fmt: skip
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(pki / "apiserver.key"), "-out", str(pki / "apiserver.csr"),
             "-subj", "/CN=kube-apiserver")  # fmt: skip
    (pki / "san.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n"
    )
    _openssl("x509", "-req", "-in", str(pki / "apiserver.csr"), "-CA", str(pki / "ca.crt"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(pki / "san.cnf"), "-out", str(pki / "apiserver.crt"))  # fmt: skip
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", str(pki / "sa.key"))  # fmt: skip
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def kubeconfig_text(server: str, ca_pem: bytes, token: str) -> str:
    # YAML, not JSON: Pulumi config values that parse as JSON reach a program as objects.
    ca = base64.b64encode(ca_pem).decode()
    return f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: local
  context:
    cluster: local
    user: admin
current-context: local
"""


class Api:
    """Minimal client for the local API server: JSON over HTTPS with the admin token."""

    def __init__(self, workdir: Path) -> None:
        state = json.loads((workdir / "state.json").read_text())
        self.server: str = state["server"]
        self.token: str = state["token"]
        self.context = ssl.create_default_context(cafile=str(workdir / "pki/ca.crt"))

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        with kube_reader.urlopen_as_client_go(req, self.context, 30) as response:
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
        if not raw:
            return None
        return json.loads(raw) if kind.startswith("application/json") else raw.decode()

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return False
            raise
        return True


def _spawn(workdir: Path, name: str, argv: list[str]) -> int:
    argvs_file = workdir / "argv.json"
    argvs = json.loads(argvs_file.read_text()) if argvs_file.exists() else {}
    argvs[name] = argv
    argvs_file.write_text(json.dumps(argvs))
    log = open(workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (owned by the child)
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    pids = _pids(workdir)
    pids[name] = process.pid
    (workdir / "pids.json").write_text(json.dumps(pids))
    return process.pid


def _pids(workdir: Path) -> dict[str, int]:
    path = workdir / "pids.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of this process still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _log_tail(workdir: Path, name: str, lines: int = 15) -> str:
    path = workdir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait(what: str, check: Any, timeout: float, workdir: Path, watch: tuple[str, ...]) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for name in watch:
            pid = _pids(workdir).get(name)
            if pid is not None and not _alive(pid):
                raise ClusterError(
                    f"{name} exited while waiting for {what}:\n{_log_tail(workdir, name)}"
                )
        try:
            if check():
                return
        except Exception as error:  # not up yet: keep polling until the deadline
            last = error
        time.sleep(0.5)
    detail = "\n".join(f"--- {n}:\n{_log_tail(workdir, n)}" for n in watch)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what} ({last})\n{detail}")


def node_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # kwok's own convention for the nodes it fakes (kwok docs, "Manage nodes").
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints", [])
    return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints)


def add_nodes(workdir: Path, names: list[str], wait: bool = True) -> None:
    api = Api(workdir)
    for name in names:
        if not api.exists(f"/api/v1/nodes/{name}"):
            api.request("POST", "/api/v1/nodes", node_manifest(name))
    if wait:
        _wait(
            f"nodes {', '.join(names)} Ready and untainted",
            lambda: all(_node_ready(api.get(f"/api/v1/nodes/{n}")) for n in names),
            NODE_READY_TIMEOUT_S, workdir, ("kwok", "kube-controller-manager"),
        )  # fmt: skip


def delete_nodes(workdir: Path, names: list[str]) -> None:
    api = Api(workdir)
    for name in names:
        try:
            api.request("DELETE", f"/api/v1/nodes/{name}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise


def start(workdir: Path, nodes: int, node_prefix: str = "kwok-node-") -> Path:
    workdir = workdir.resolve()
    if any(_alive(pid) for pid in _pids(workdir).values()):
        raise ClusterError(f"a local cluster already runs in {workdir}: stop it first")
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / "pids.json").unlink(missing_ok=True)
    binaries = {name: _binary(name) for name in PROCESSES}
    pki = workdir / "pki"
    _make_pki(pki)
    token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    server = f"https://127.0.0.1:{api_port}"
    (workdir / "state.json").write_text(json.dumps({"server": server, "token": token}))
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text(server, (pki / "ca.crt").read_bytes(), token))
    kubeconfig.chmod(0o600)
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        _spawn(workdir, "etcd", [
            binaries["etcd"], "--name", "local", "--data-dir", str(workdir / "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"local={peer_url}",
            # A throwaway test store: no fsync (much faster on a busy disk).
            "--unsafe-no-fsync",
        ])  # fmt: skip
        _spawn(workdir, "kube-apiserver", [
            binaries["kube-apiserver"], "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port),
            "--tls-cert-file", str(pki / "apiserver.crt"),
            "--tls-private-key-file", str(pki / "apiserver.key"),
            "--client-ca-file", str(pki / "ca.crt"),
            "--token-auth-file", str(pki / "tokens.csv"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "RBAC",
            # Cilium's agent DaemonSet is privileged (docs/real-engine.md).
            "--allow-privileged=true",
            # Endpoints may not hold a loopback address; no pod needs the kubernetes Service.
            "--endpoint-reconciler-type", "none",
            "--profiling=false",
        ])  # fmt: skip
        api = Api(workdir)
        _wait(
            f"{server}/readyz",
            lambda: api.get("/readyz") == "ok",
            READY_TIMEOUT_S, workdir, ("etcd", "kube-apiserver"),
        )  # fmt: skip
        _spawn(workdir, "kube-controller-manager", [
            binaries["kube-controller-manager"], "--kubeconfig", str(kubeconfig),
            "--secure-port", "0", "--leader-elect=false",
            "--service-account-private-key-file", str(pki / "sa.key"),
            "--root-ca-file", str(pki / "ca.crt"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            # Default controllers, node-lifecycle included (lifts the not-ready taint).
            "--controllers", "*",
        ])  # fmt: skip
        _spawn(workdir, "kube-scheduler", [
            binaries["kube-scheduler"], "--kubeconfig", str(kubeconfig),
            "--secure-port", "0", "--leader-elect=false",
        ])  # fmt: skip
        (workdir / "kwok.yaml").write_text(KWOK_STAGES)
        # Node leases, as kubelets and kwokctl (`--node-lease-duration-seconds`, 40 by default in
        # sigs.k8s.io/kwok v0.7.0 pkg/kwokctl) keep them. Without a lease kwok only refreshes the
        # node's status (its node-heartbeat stage, every 20-45 s, slower under load), which
        # crossed the controller-manager's 50 s node-monitor-grace-period about once a minute
        # here: the node lifecycle controller marked every node not ready and every pod's Ready
        # condition False, and kwok never set it back, so a Deployment's readyReplicas stayed
        # empty while its pods ran (the rollout gate then waited for its timeout).
        _spawn(workdir, "kwok", [
            binaries["kwok"], "--config", str(workdir / "kwok.yaml"),
            "--kubeconfig", str(kubeconfig), "--manage-all-nodes=true",
            f"--node-lease-duration-seconds={NODE_LEASE_S}",
            "--server-address", f"127.0.0.1:{_free_port()}",
        ])  # fmt: skip
        _wait(
            "the default ServiceAccount",
            lambda: api.exists("/api/v1/namespaces/default/serviceaccounts/default"),
            READY_TIMEOUT_S, workdir, PROCESSES,
        )  # fmt: skip
        add_nodes(workdir, [f"{node_prefix}{i}" for i in range(nodes)])
    except BaseException:
        stop(workdir)
        raise
    return kubeconfig


def stop_process(workdir: Path, name: str) -> None:
    """Stop one process of the cluster (SIGKILL: a crash, not a shutdown), e.g. the API server."""
    pid = _pids(workdir).get(name)
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def restart_process(workdir: Path, name: str) -> None:
    """Start a stopped process again with its recorded command line; for the API server, wait
    until it serves /readyz (bounded)."""
    argv = json.loads((workdir / "argv.json").read_text())[name]
    _spawn(workdir, name, argv)
    if name == "kube-apiserver":
        api = Api(workdir)
        _wait(
            f"{api.server}/readyz after a restart",
            lambda: api.get("/readyz") == "ok",
            READY_TIMEOUT_S, workdir, ("etcd", "kube-apiserver"),
        )  # fmt: skip


def stop(workdir: Path) -> None:
    """Stop every recorded process by PID: SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
    pids = _pids(workdir)
    for name in reversed(PROCESSES):
        pid = pids.get(name)
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for pid in pids.values():
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    (workdir / "pids.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("--dir", type=Path, required=True)
    p_start.add_argument("--nodes", type=int, required=True)
    p_start.add_argument("--node-prefix", default="kwok-node-")
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("--dir", type=Path, required=True)
    for name in ("add-nodes", "delete-nodes"):
        p_nodes = sub.add_parser(name)
        p_nodes.add_argument("--dir", type=Path, required=True)
        p_nodes.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if args.nodes < 0:
                parser.error("--nodes must be >= 0")
            print(start(args.dir, args.nodes, args.node_prefix))
        elif args.command == "stop":
            stop(args.dir)
        elif args.command == "add-nodes":
            add_nodes(args.dir, args.names)
        else:
            delete_nodes(args.dir, args.names)
    except (ClusterError, OSError, subprocess.CalledProcessError) as error:
        print(f"local_cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
