#!/usr/bin/env python3
"""A datapath lab: real enforcers, real packets, in network namespaces this script creates.

    python scripts/datapath_lab.py start --dir DIR [--enforcer kube-router] [--nodes 2]
    python scripts/datapath_lab.py apply --dir DIR FILE...      # Namespaces, Pods, policies
    python scripts/datapath_lab.py probe --dir DIR SRC DST PROTO/PORT
    python scripts/datapath_lab.py stop --dir DIR

What runs (docs/datapath-lab.md):
- the control plane on loopback (etcd, kube-apiserver, kube-controller-manager for the
  ServiceAccount controllers; the toolchain's binaries, scripts/local_cluster.py's helpers);
- an underlay network namespace with a bridge, one network namespace per node on it, and a
  "world" namespace on it for addresses outside the cluster (the nodes' default gateway);
- per node, the datapath K3s embeds: flanneld (VXLAN backend, kube subnet manager) and
  kube-router's network-policy controller (--run-firewall only), each in its node's namespace,
  reaching the API server through a loopback forwarder inside that namespace;
- per pod, a network namespace wired by the real CNI plugins called as a kubelet calls them
  (loopback, then flannel -> bridge + host-local, then portmap), a Pod object with the
  workload's labels, named ports and service account, patched Running with its real IP; and
  a small server answering TCP and UDP on the ports the probes use.

Traffic stays in namespaces the lab made. `stop` ends the processes it started (by PID) and
deletes its namespaces, which removes every interface, route, iptables rule and ipset in them.

Needs Linux, root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns), iproute2, iptables, ipset
(`make datapath-prerequisites`) and the toolchain (scripts/toolchain.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import hashlib
import http.client
import importlib.util
import ipaddress
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENFORCERS = ("kube-router", "cilium")
UNDERLAY = ipaddress.IPv4Network("172.30.0.0/24")
WORLD_GATEWAY = "172.30.0.254"
NODE_HOST_OFFSET = 11  # node i is 172.30.0.(11 + i)
CLUSTER_CIDR = "10.42.0.0/16"  # K3s's default --cluster-cidr
API_PORT_IN_NODE = 6443
CONVERGE_TIMEOUT_S = 60.0
START_TIMEOUT_S = 90.0
PROBE_TIMEOUT_S = 1.0
# A "denied" that the model calls allowed is probed again, one at a time, with this timeout:
# an allowed connection on a veth completes in milliseconds; only a loaded machine delays it.
CONFIRM_TIMEOUT_S = 4.0
CNI_VERSION = "0.4.0"  # the newest the flannel plugin (CNI library v0.8.1) speaks
CLONE_NEWNET = 0x40000000
LLVM_BIN = "/usr/lib/llvm-19/bin"
# cilium-agent sets these machine-wide sysctls at start (pkg/datapath/loader/base.go
# Reinitialize, errors ignored); kernel.unprivileged_bpf_disabled=1 cannot even be undone until
# reboot. They are not a namespace's, so each agent sees them read-only (bind mounts in the mount
# namespace `ip netns exec` gives it) and the machine keeps its own values.
GLOBAL_SYSCTLS = (
    "/proc/sys/kernel/timer_migration",
    "/proc/sys/kernel/unprivileged_bpf_disabled",
    "/proc/sys/net/core/bpf_jit_enable",
)
READONLY_GLOBAL_SYSCTLS = (
    f"for f in {' '.join(GLOBAL_SYSCTLS)}; do "
    '[ -e "$f" ] && mount --bind -o ro "$f" "$f"; done; exec "$@"'
)
KUBELET_ANNOTATION = "volumes.kubernetes.io/controller-managed-attach-detach"


class LabError(RuntimeError):
    pass


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


lc = sys.modules.get("local_cluster") or _load("local_cluster", ROOT / "scripts/local_cluster.py")


def toolchain_dir() -> Path:
    return Path(
        os.environ.get("CNISTACK_TOOLCHAIN_DIR") or Path.home() / ".cache/cnistack/toolchain"
    )


def _tool(name: str) -> str:
    path = toolchain_dir() / "bin" / name
    if not path.is_file():
        raise LabError(f"no {name} in {path.parent}: run scripts/toolchain.sh")
    return str(path)


def cni_bin() -> Path:
    return toolchain_dir() / "cni-bin"


def cilium_lib_dir() -> Path:
    """cilium-agent's --lib-dir: the module's bpf/ tree the agent compiles at run time."""
    return toolchain_dir() / "cilium-lib"


def toolchain_versions() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/toolchain.sh"), "--print-versions"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if line)


def cilium_module_dir() -> Path:
    """github.com/cilium/cilium@CILIUM_AGENT_V in the toolchain's module cache (its CRDs)."""
    version = toolchain_versions()["CILIUM_AGENT_V"]
    path = toolchain_dir() / "gomod/github.com/cilium" / f"cilium@{version}"
    if not path.is_dir():
        raise LabError(f"no {path}: run scripts/toolchain.sh")
    return path


def _yaml_load(text: str) -> Any:
    import yaml  # noqa: PLC0415 (only the Cilium lab reads YAML; the rest is stdlib)

    return yaml.safe_load(text)


def without_l7(doc: dict[str, Any]) -> dict[str, Any]:
    """The policy with its L7 rules (`toPorts[].rules`) removed: L7 needs Cilium's Envoy, which
    cannot be built here, and an agent without its L7 proxy refuses L7 rules ("L7 policy is
    not supported since L7 proxy is not enabled", pkg/policy/api/rule_validation.go). So the
    lab checks them at L4: the port opens for the allowed peers only; HTTP-level answers stay
    with the oracle (docs/cilium-oracle.md)."""
    out = json.loads(json.dumps(doc))
    specs = [out.get("spec") or {}, *(out.get("specs") or [])]
    for spec in specs:
        for direction in ("ingress", "egress", "ingressDeny", "egressDeny"):
            for rule in spec.get(direction) or []:
                for port_rule in rule.get("toPorts") or []:
                    port_rule.pop("rules", None)
    return out


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def agent_get(sock: Path, path: str) -> Any:
    """GET /v1{path} of a cilium-agent's REST API on its unix socket."""
    conn = _UnixHTTPConnection(sock)
    try:
        conn.request("GET", "/v1" + path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status >= 300:
        raise LabError(f"cilium-agent {path}: HTTP {response.status} {body[:200]!r}")
    return json.loads(body) if body else None


def missing_prerequisites(enforcer: str = "kube-router") -> list[str]:
    """What this machine lacks to run the lab, one short phrase each (empty: nothing)."""
    missing = []
    if sys.platform != "linux":
        return ["Linux (network namespaces)"]
    if os.geteuid() != 0:
        missing.append("root (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF)")
    for binary in ("ip", "iptables", "ipset", "openssl"):
        if shutil.which(binary) is None:
            missing.append(f"`{binary}` (make datapath-prerequisites)")
    if enforcer == "cilium" and not (Path(LLVM_BIN) / "clang").is_file():
        missing.append(f"clang 19 in {LLVM_BIN} (make datapath-prerequisites)")
    if enforcer == "cilium" and shutil.which("bpftool") is None:
        missing.append("`bpftool` (make datapath-prerequisites)")
    return missing


# Cilium's BPF programs: cil_* entry points and tail_* tail calls (bpf/bpf_lxc.c, bpf/lib/*.h).
CILIUM_PROG_PREFIXES = ("cil_", "tail_")
# How long stop() waits for the kernel to free the programs of a stopped lab's agents.
BPF_FREE_TIMEOUT_S = 60.0


def cilium_bpf_programs() -> dict[int, str]:
    """Cilium's BPF programs loaded in the kernel (programs are machine-wide, not a namespace's):
    id -> name."""
    done = subprocess.run(
        ["bpftool", "prog", "show", "--json"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LabError(f"bpftool prog show: {done.stderr.strip()[:200]}")
    return {
        int(p["id"]): p.get("name", "")
        for p in json.loads(done.stdout or "[]")
        if p.get("name", "").startswith(CILIUM_PROG_PREFIXES)
    }


# --- network namespaces ------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block with this thread in network namespace `name` (sockets created inside
    stay there). Linux namespaces are per thread: other threads are not affected."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def run(*argv: str, netns: str | None = None, input_: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    done = subprocess.run(cmd, input=input_, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def ip(*args: str, netns: str | None = None) -> None:
    run("ip", *(["-n", netns] if netns else []), *args)


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


# --- state --------------------------------------------------------------------------------------


@dataclass
class PodRecord:
    namespace: str
    name: str
    node: str
    netns: str
    container_id: str
    ip: str
    cni_result: dict[str, Any]
    host_network: bool = False


@dataclass
class State:
    enforcer: str
    prefix: str
    nodes: list[str]
    netns: list[str] = field(default_factory=list)  # every namespace made, in creation order
    pids: dict[str, int] = field(default_factory=dict)
    pods: dict[str, PodRecord] = field(default_factory=dict)
    world: list[str] = field(default_factory=list)  # addresses served in the world namespace
    ports: dict[str, list[int]] = field(default_factory=dict)  # protocol -> served ports
    api_port: int = 0
    pod_counter: int = 0
    # Cilium's BPF program ids already loaded when the lab started: stop() waits for the others.
    bpf_before: list[int] = field(default_factory=list)

    def save(self, workdir: Path) -> None:
        data = self.__dict__ | {"pods": {k: v.__dict__ for k, v in self.pods.items()}}
        tmp = workdir / "lab.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(workdir / "lab.json")

    @classmethod
    def load(cls, workdir: Path) -> State:
        data = json.loads((workdir / "lab.json").read_text())
        data["pods"] = {k: PodRecord(**v) for k, v in data["pods"].items()}
        return cls(**data)


def _prefix(workdir: Path) -> str:
    # Short (interface and namespace names), unique per lab dir, recognisable by `stop` checks.
    return "dpl" + hashlib.sha256(str(workdir).encode()).hexdigest()[:5]


def node_ip(index: int) -> str:
    return str(UNDERLAY.network_address + NODE_HOST_OFFSET + index)


def node_pod_cidr(index: int) -> str:
    net = ipaddress.IPv4Network(CLUSTER_CIDR)
    return str(list(net.subnets(new_prefix=24))[index])


# --- processes ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    return bool(lc._alive(pid))


def _spawn(
    workdir: Path, state: State, name: str, argv: list[str], env: dict[str, str] | None = None
) -> int:
    log = open(workdir / "logs" / f"{name}.log", "wb")  # noqa: SIM115 (owned by the child)
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    log.close()
    state.pids[name] = process.pid
    state.save(workdir)
    return process.pid


def _log(workdir: Path, name: str) -> str:
    path = workdir / "logs" / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _wait(  # noqa: PLR0917 (as local_cluster._wait, plus the lab's state)
    what: str,
    check: Callable[[], bool],
    timeout: float,
    workdir: Path,
    state: State,
    watch: tuple[str, ...] = (),
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for name in watch:
            pid = state.pids.get(name)
            if pid is not None and not _alive(pid):
                tail = "\n".join(_log(workdir, name).splitlines()[-15:])
                raise LabError(f"{name} exited while waiting for {what}:\n{tail}")
        try:
            if check():
                return
        except (LabError, OSError, urllib.error.URLError) as error:
            last = error
        time.sleep(0.1)
    raise LabError(f"timed out after {timeout:.0f} s waiting for {what} ({last})")


# --- the control plane --------------------------------------------------------------------------


def _start_control_plane(workdir: Path, state: State) -> None:
    """etcd + kube-apiserver + kube-controller-manager on loopback (no scheduler: every Pod has
    its nodeName; no kwok: the nodes are the lab's namespaces)."""
    pki = workdir / "pki"
    lc._make_pki(pki)
    shutil.rmtree(workdir / "etcd", ignore_errors=True)  # a fresh store: nothing of an old lab
    shutil.rmtree(workdir / "nodes", ignore_errors=True)
    token = os.urandom(18).hex()
    (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
    etcd_port, peer_port, api_port = lc._free_port(), lc._free_port(), lc._free_port()
    state.api_port = api_port
    server = f"https://127.0.0.1:{api_port}"
    (workdir / "state.json").write_text(json.dumps({"server": server, "token": token}))
    ca = (pki / "ca.crt").read_bytes()
    (workdir / "kubeconfig").write_text(lc.kubeconfig_text(server, ca, token))
    # The nodes reach the API server through a forwarder on their own loopback.
    (workdir / "node-kubeconfig").write_text(
        lc.kubeconfig_text(f"https://127.0.0.1:{API_PORT_IN_NODE}", ca, token)
    )
    etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    _spawn(workdir, state, "etcd", [
        _tool("etcd"), "--name", "lab", "--data-dir", str(workdir / "etcd"),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"lab={peer_url}", "--unsafe-no-fsync",
    ])  # fmt: skip
    _spawn(workdir, state, "kube-apiserver", [
        _tool("kube-apiserver"), "--etcd-servers", etcd_url,
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
        "--secure-port", str(api_port),
        "--tls-cert-file", str(pki / "apiserver.crt"),
        "--tls-private-key-file", str(pki / "apiserver.key"),
        "--client-ca-file", str(pki / "ca.crt"), "--token-auth-file", str(pki / "tokens.csv"),
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-cluster-ip-range", lc.SERVICE_CIDR, "--authorization-mode", "RBAC",
        "--allow-privileged=true", "--endpoint-reconciler-type", "none", "--profiling=false",
    ])  # fmt: skip
    api = lc.Api(workdir)
    _wait(f"{server}/readyz", lambda: api.get("/readyz") == "ok", START_TIMEOUT_S, workdir,
          state, ("etcd", "kube-apiserver"))  # fmt: skip
    _spawn(workdir, state, "kube-controller-manager", [
        _tool("kube-controller-manager"), "--kubeconfig", str(workdir / "kubeconfig"),
        "--secure-port", "0", "--leader-elect=false",
        "--service-account-private-key-file", str(pki / "sa.key"),
        "--root-ca-file", str(pki / "ca.crt"),
        # The `default` ServiceAccount of each namespace, and namespace deletion.
        "--controllers", "serviceaccount,serviceaccount-token,namespace",
    ])  # fmt: skip


# --- the API forwarder (runs as its own process: `datapath_lab.py _forward`) ------------------


def forward(netns_list: list[str], listen_port: int, target_port: int) -> None:
    """Accept on 127.0.0.1:listen_port inside each namespace, relay to 127.0.0.1:target_port
    of this process's own (root) namespace. Bytes only: TLS goes end to end."""
    listeners = []
    for name in netns_list:
        with in_netns(name):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", listen_port))
        sock.listen(64)
        listeners.append(sock)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def serve(listener: socket.socket) -> None:
        while True:
            client, _ = listener.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", target_port))
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in listeners]
    for t in threads:
        t.start()
    (Path(os.environ["LAB_READY_FILE"])).write_text("ready")
    for t in threads:
        t.join()


# --- the pods' servers (`datapath_lab.py _serve`) -----------------------------------------------


def serve(spec: dict[str, Any]) -> None:
    """Listen on every (address, protocol, port) of `spec["sockets"]` inside its namespace; TCP:
    accept and close; UDP: echo. One process for a batch of pods."""
    sel = selectors.DefaultSelector()
    for netns, address, protocol, port in spec["sockets"]:
        with in_netns(netns):
            kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
            sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if protocol == "TCP":
            sock.listen(128)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, protocol)
    Path(spec["ready"]).write_text("ready")
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            with contextlib.suppress(OSError):
                if key.data == "TCP":
                    conn, _ = sock.accept()
                    conn.close()
                else:
                    data, peer = sock.recvfrom(2048)
                    sock.sendto(data, peer)


# --- probes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    src_netns: str
    src_address: str | None  # bind to this source (world addresses), else the netns's own
    dst: str
    protocol: str
    port: int


def probe_many(
    probes: list[Probe], timeout: float = PROBE_TIMEOUT_S, batch: int = 400
) -> list[bool]:
    """True where the connection was made (TCP handshake done / UDP echo received)."""
    results: list[bool] = []
    for start in range(0, len(probes), batch):
        results.extend(_probe_batch(probes[start : start + batch], timeout))
    return results


def _probe_batch(probes: list[Probe], timeout: float) -> list[bool]:
    sel = selectors.DefaultSelector()
    out = [False] * len(probes)
    socks: list[socket.socket] = []
    try:
        for i, pr in enumerate(probes):
            kind = socket.SOCK_STREAM if pr.protocol == "TCP" else socket.SOCK_DGRAM
            with in_netns(pr.src_netns):
                sock = socket.socket(socket.AF_INET, kind)
            socks.append(sock)
            sock.setblocking(False)
            if pr.src_address:
                sock.bind((pr.src_address, 0))
            if pr.protocol == "TCP":
                code = sock.connect_ex((pr.dst, pr.port))
                if code not in (0, errno.EINPROGRESS):
                    continue
                sel.register(sock, selectors.EVENT_WRITE, i)
            else:
                sock.connect((pr.dst, pr.port))
                with contextlib.suppress(OSError):
                    sock.send(b"probe")
                sel.register(sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                i = key.data
                sel.unregister(sock)
                if probes[i].protocol == "TCP":
                    out[i] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                else:
                    try:
                        out[i] = sock.recv(2048) == b"probe"
                    except OSError:  # ICMP unreachable: REJECT
                        out[i] = False
    finally:
        for sock in socks:
            sock.close()
        sel.close()
    return out


# --- the lab ------------------------------------------------------------------------------------


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir.resolve()
        self.state = State.load(self.workdir)
        self.api = lc.Api(self.workdir)
        # What the enforcers must have seen before probes are meaningful (see wait_converged).
        self.marks: dict[str, int] | None = None
        self.pending: list[str] = []

    # names
    @property
    def prefix(self) -> str:
        return self.state.prefix

    def node_netns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    @property
    def world_netns(self) -> str:
        return f"{self.prefix}-world"

    # -- start ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, workdir: Path, enforcer: str = "kube-router", nodes: int = 2) -> Lab:
        if enforcer not in ENFORCERS:
            raise LabError(f"unknown enforcer {enforcer!r} (one of {', '.join(ENFORCERS)})")
        missing = missing_prerequisites(enforcer)
        if missing:
            raise LabError("the datapath lab needs " + ", ".join(missing))
        workdir = workdir.resolve()
        if (workdir / "lab.json").exists():
            raise LabError(f"a lab is recorded in {workdir}: stop it first")
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        state = State(enforcer, _prefix(workdir), [f"node{i}" for i in range(nodes)])
        if enforcer == "cilium":
            state.bpf_before = sorted(cilium_bpf_programs())
        if any(n.startswith(state.prefix + "-") for n in netns_names()):
            raise LabError(f"network namespaces {state.prefix}-* exist: stop the lab in {workdir}")
        state.save(workdir)
        try:
            _start_control_plane(workdir, state)
            lab = cls(workdir)
            lab._network()
            lab._nodes()
            return lab
        except BaseException:
            stop(workdir)
            raise

    def _netns_add(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.state.netns.append(name)
        self.state.save(self.workdir)
        ip("link", "set", "lo", "up", netns=name)

    def _network(self) -> None:
        under = f"{self.prefix}-net"
        self._netns_add(under)
        ip("link", "add", "br0", "type", "bridge", netns=under)
        ip("link", "set", "br0", "up", netns=under)
        plen = UNDERLAY.prefixlen
        # The world: the nodes' default gateway and every address outside the cluster.
        self._netns_add(self.world_netns)
        self._uplink(under, self.world_netns, "w", f"{WORLD_GATEWAY}/{plen}")
        for i, node in enumerate(self.state.nodes):
            ns = self.node_netns(node)
            self._netns_add(ns)
            self._uplink(under, ns, f"n{i}", f"{node_ip(i)}/{plen}")
            ip("route", "add", "default", "via", WORLD_GATEWAY, netns=ns)
            # What a K3s node has (kubelet/k3s preflight): forwarding, bridged traffic through
            # iptables (br_netfilter; pods on one node talk over the cni0 bridge).
            run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                "net.bridge.bridge-nf-call-iptables=1", netns=ns)  # fmt: skip
            ip("route", "add", node_pod_cidr(i), "via", node_ip(i), netns=self.world_netns)

    def _uplink(self, under: str, ns: str, tag: str, address: str) -> None:
        peer = f"{tag}-{self.prefix}"[:15]
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", under)
        ip("link", "set", peer, "master", "br0", "up", netns=under)
        ip("addr", "add", address, "dev", "eth0", netns=ns)
        ip("link", "set", "eth0", "up", netns=ns)

    def _nodes(self) -> None:
        ready = self.workdir / "forward.ready"
        ready.unlink(missing_ok=True)
        _spawn(self.workdir, self.state, "forward", [
            sys.executable, str(Path(__file__).resolve()), "_forward",
            "--port", str(API_PORT_IN_NODE), "--target", str(self.state.api_port),
            *[self.node_netns(n) for n in self.state.nodes],
        ], env={"LAB_READY_FILE": str(ready)})  # fmt: skip
        _wait("the API forwarder", ready.exists, 30, self.workdir, self.state, ("forward",))
        for i, node in enumerate(self.state.nodes):
            self.api.request("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                                                      "kubernetes.io/os": "linux"},
                             # What a kubelet registers with; flanneld's kube subnet manager
                             # writes into the node's annotation map and panics on a node
                             # without one (pkg/subnet/kube/kube.go AcquireLease, v0.27.4).
                             "annotations": {KUBELET_ANNOTATION: "true"}},
                "spec": {"podCIDR": node_pod_cidr(i), "podCIDRs": [node_pod_cidr(i)]},
            })  # fmt: skip
            self.api.request(
                "PATCH", f"/api/v1/nodes/{node}/status",
                {"status": {"addresses": [{"type": "InternalIP", "address": node_ip(i)},
                                          {"type": "Hostname", "address": node}]}},
                content_type="application/merge-patch+json",
            )  # fmt: skip
        if self.state.enforcer == "cilium":
            self._cilium_crds()
            for node in self.state.nodes:
                self._start_cilium(node)
            for node in self.state.nodes:
                self._wait_cilium(node)
            return
        for node in self.state.nodes:
            self._start_flannel(node)
        for i, node in enumerate(self.state.nodes):
            self._wait_flannel(i, node)
        for node in self.state.nodes:
            self._start_kube_router(node)
        for node in self.state.nodes:
            _wait(f"kube-router on {node}: first iptables sync",
                  lambda n=node: "sync iptables took" in _log(self.workdir, f"kube-router-{n}"),
                  START_TIMEOUT_S, self.workdir, self.state, (f"kube-router-{node}",))  # fmt: skip

    # -- Cilium ---------------------------------------------------------------------------------

    def _cilium_crds(self) -> None:
        """Cilium's CRDs from the agent's own module (what cilium-operator registers)."""
        module = cilium_module_dir()
        names = []
        for sub in ("v2", "v2alpha1"):
            for path in sorted(
                (module / "pkg/k8s/apis/cilium.io/client/crds" / sub).glob("*.yaml")
            ):
                crd = _yaml_load(path.read_text())
                names.append(crd["metadata"]["name"])
                self.api.request(
                    "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd
                )

        def established() -> bool:
            for name in names:
                crd = self.api.get(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                )
                conds = crd.get("status", {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                    return False
            return True

        _wait("Cilium's CRDs Established", established, START_TIMEOUT_S, self.workdir, self.state)

    def _start_cilium(self, node: str) -> None:
        """cilium-agent in the node's namespace. Each agent has its own bpffs, cgroup2 and state
        directory under the node's dir, mounted by the agent inside the mount namespace that
        `ip netns exec` gives it: they vanish with it. The flags are the chart's defaults for
        what the production stack sets (tunnel routing with VXLAN, ipam from the node's
        podCIDR instead of the operator's cluster pool: no operator runs here)."""
        d = self.node_dir(node)
        for sub in ("run", "bpffs", "cgroup", "lib"):
            (d / sub).mkdir(exist_ok=True)
        _spawn(self.workdir, self.state, f"cilium-agent-{node}", [
            "ip", "netns", "exec", self.node_netns(node), "sh", "-c", READONLY_GLOBAL_SYSCTLS,
            "cilium-agent", _tool("cilium-agent"),
            "--k8s-kubeconfig-path", str(self.workdir / "node-kubeconfig"),
            "--cluster-name", "default", "--identity-allocation-mode", "crd",
            "--ipam", "kubernetes", "--routing-mode", "tunnel", "--tunnel-protocol", "vxlan",
            "--devices", "eth0", "--enable-ipv4=true", "--enable-ipv6=false",
            "--kube-proxy-replacement=false", "--enable-l7-proxy=false", "--enable-hubble=false",
            "--enable-health-checking=false", "--enable-endpoint-health-checking=false",
            "--lib-dir", str(cilium_lib_dir()), "--state-dir", str(d / "run"),
            "--socket-path", str(d / "run/cilium.sock"), "--bpf-root", str(d / "bpffs"),
            "--cgroup-root", str(d / "cgroup"), "--cni-log-file", str(d / "cilium-cni.log"),
            "--agent-health-port", "0", "--prometheus-serve-addr", "",
        ], env={
            "K8S_NODE_NAME": node, "CILIUM_K8S_NAMESPACE": "kube-system",
            # Cilium 1.19 compiles its BPF with clang 19 (its builder image: cilium-llvm 19.1.7);
            # Debian's clang-19 puts `clang` there (make datapath-prerequisites).
            "PATH": f"{LLVM_BIN}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
        })  # fmt: skip

    def _wait_cilium(self, node: str) -> None:
        sock = self.node_dir(node) / "run/cilium.sock"

        def healthy() -> bool:
            status = agent_get(sock, "/healthz")
            return bool(status.get("cilium", {}).get("state") == "Ok")

        _wait(f"cilium-agent on {node}: /healthz Ok", healthy, START_TIMEOUT_S * 2,
              self.workdir, self.state, (f"cilium-agent-{node}",))  # fmt: skip

    def node_dir(self, node: str) -> Path:
        path = self.workdir / "nodes" / node
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start_flannel(self, node: str) -> None:
        d = self.node_dir(node)
        (d / "net-conf.json").write_text(
            json.dumps({"Network": CLUSTER_CIDR, "Backend": {"Type": "vxlan"}})
        )
        _spawn(self.workdir, self.state, f"flanneld-{node}", [
            "ip", "netns", "exec", self.node_netns(node), _tool("flanneld"),
            "--kube-subnet-mgr", "--kubeconfig-file", str(self.workdir / "node-kubeconfig"),
            "--iface", "eth0", "--ip-masq", "--net-config-path", str(d / "net-conf.json"),
            "--subnet-file", str(d / "subnet.env"),
        ], env={"NODE_NAME": node})  # fmt: skip

    def _wait_flannel(self, index: int, node: str) -> None:
        subnet = self.node_dir(node) / "subnet.env"

        def ready() -> bool:
            if (
                not subnet.exists()
                or f"FLANNEL_SUBNET={node_pod_cidr(index).replace('.0/24', '.1/24')}"
                not in subnet.read_text()
            ):
                return False
            # Every other node's subnet routed over VXLAN (flannel's watch of the Node objects).
            routes = run(
                "ip", "-4", "route", "show", "dev", "flannel.1", netns=self.node_netns(node)
            )
            return all(
                node_pod_cidr(j) in routes for j in range(len(self.state.nodes)) if j != index
            )

        _wait(f"flanneld on {node}: subnet.env and VXLAN routes to the other nodes", ready,
              START_TIMEOUT_S, self.workdir, self.state, (f"flanneld-{node}",))  # fmt: skip

    def _start_kube_router(self, node: str) -> None:
        _spawn(self.workdir, self.state, f"kube-router-{node}", [
            "ip", "netns", "exec", self.node_netns(node), _tool("kube-router"),
            "--kubeconfig", str(self.workdir / "node-kubeconfig"), "--hostname-override", node,
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--service-cluster-ip-range", lc.SERVICE_CIDR,
            # -v=2: the "Received update ..." and "Starting sync" lines that converged() reads.
            "--health-port", "0", "-v", "2",
        ])  # fmt: skip

    # -- workloads -----------------------------------------------------------------------------

    def apply(
        self,
        documents: list[dict[str, Any]],
        ports: dict[str, list[int]],
        world: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """Create namespaces (or update their labels), service accounts, pods (netns + CNI +
        server, Running with their real IPs), then the policies, and the servers for `ports`
        ({protocol: [port, ...]}) in every pod and on every `world` address. Returns
        {ns/pod: ip}. Call wait_converged() before probing."""
        self._mark()
        namespaces = {d["metadata"]["name"]: d for d in documents if d.get("kind") == "Namespace"}
        pods = [d for d in documents if d.get("kind") == "Pod"]
        policies = [d for d in documents if d.get("kind") not in ("Namespace", "Pod")]
        for pod in pods:
            ns = pod["metadata"].get("namespace", "default")
            namespaces.setdefault(ns, {"kind": "Namespace", "metadata": {"name": ns}})
        for name, doc in namespaces.items():
            self._namespace(name, doc["metadata"].get("labels") or {})
        for pod in pods:
            ns = pod["metadata"].get("namespace", "default")
            account = pod["spec"].get("serviceAccountName") or "default"
            self._ensure(f"/api/v1/namespaces/{ns}/serviceaccounts/{account}",
                         f"/api/v1/namespaces/{ns}/serviceaccounts",
                         {"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": account, "namespace": ns}})  # fmt: skip
        self.state.ports = {k: sorted(set(v)) for k, v in ports.items()}
        created = [self._add_pod(pod) for pod in pods]
        self._serve(created, list(world))
        if self.state.enforcer == "cilium" and created:
            # Every agent knows every pod's identity and IP before a policy arrives: the policy
            # regeneration then computes whole maps (identities learnt later are applied to
            # policy maps incrementally, without a revision to wait on).
            self._wait_cilium_pods(time.monotonic() + CONVERGE_TIMEOUT_S)
        for doc in policies:
            self._create(doc)
            if doc["kind"] == "NetworkPolicy":
                m = doc["metadata"]
                self.pending.append(
                    "Received update for network policy: "
                    f"{m.get('namespace', 'default')}/{m['name']}"
                )
        return {key: rec.ip for key, rec in self.state.pods.items()}

    def reset(self) -> None:
        """Remove every policy and pod (CNI DEL, namespace deleted); keep the namespaces."""
        self._mark()
        for kind, key, path in self._policies():
            self.api.request("DELETE", path)
            if kind == "NetworkPolicy":
                self.pending.append(f"Received network policy: {key} delete event")
        for key, rec in list(self.state.pods.items()):
            # No kubelet confirms the deletion: grace period 0, as `kubectl delete --force`.
            self.api.request(
                "DELETE", f"/api/v1/namespaces/{rec.namespace}/pods/{rec.name}?gracePeriodSeconds=0"
            )
            if not rec.host_network:
                self.pending.append(f"Received pod: {key} delete event")
                self._cni("DEL", rec.node, rec.netns, rec.container_id, rec.namespace, rec.name,
                          rec.cni_result)  # fmt: skip
                run("ip", "netns", "delete", rec.netns)
                self.state.netns.remove(rec.netns)
            del self.state.pods[key]
            self.state.save(self.workdir)
        for name in [k for k in self.state.pids if k.startswith("serve-")]:
            pid = self.state.pids.pop(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.01)
        for address in self.state.world:
            ip("addr", "del", f"{address}/32", "dev", "lo", netns=self.world_netns)
        self.state.world = []
        self.state.save(self.workdir)

    def _policies(self) -> list[tuple[str, str, str]]:
        """(kind, ns/name, API path) of every policy object the lab's enforcer reads."""
        out = []
        kinds = [("NetworkPolicy", "/apis/networking.k8s.io/v1", "networkpolicies", True)]
        if self.state.enforcer == "cilium":
            kinds += [
                ("CiliumNetworkPolicy", "/apis/cilium.io/v2", "ciliumnetworkpolicies", True),
                ("CiliumClusterwideNetworkPolicy", "/apis/cilium.io/v2",
                 "ciliumclusterwidenetworkpolicies", False),
            ]  # fmt: skip
        for kind, base, plural, namespaced in kinds:
            for item in self.api.get(f"{base}/{plural}")["items"]:
                m = item["metadata"]
                if namespaced:
                    path = f"{base}/namespaces/{m['namespace']}/{plural}/{m['name']}"
                    out.append((kind, f"{m['namespace']}/{m['name']}", path))
                else:
                    out.append((kind, m["name"], f"{base}/{plural}/{m['name']}"))
        return out

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete one policy (what wait_converged() then waits for)."""
        self._mark()
        for k, key, path in self._policies():
            if k == kind and key in (f"{namespace}/{name}", name):
                self.api.request("DELETE", path)
                if kind == "NetworkPolicy":
                    self.pending.append(f"Received network policy: {key} delete event")
                return
        raise LabError(f"no {kind} {namespace}/{name} to delete")

    def _mark(self) -> None:
        """Changes from here on are what wait_converged() waits for: remember where each
        enforcer's log ends now."""
        if self.marks is None:
            self.marks = {
                n: len(_log(self.workdir, self._enforcer_log(n))) for n in self.state.nodes
            }
            self.pending = []

    def _enforcer_log(self, node: str) -> str:
        daemon = "kube-router" if self.state.enforcer == "kube-router" else "cilium-agent"
        return f"{daemon}-{node}"

    def _refused_since_mark(self, node: str) -> set[str]:
        """The Cilium policies ("CiliumNetworkPolicy ns/name", "CiliumClusterwideNetworkPolicy
        name") that `node`'s agent refused since the last mark: it logs "Unable to add
        CiliumNetworkPolicy" with the object's name and namespace (empty for a CCNP) and keeps
        enforcing every other policy (pkg/policy/k8s/cilium_network_policy.go)."""
        text = _log(self.workdir, self._enforcer_log(node))[(self.marks or {}).get(node, 0) :]
        refused = set()
        for line in text.splitlines():
            if "Unable to add CiliumNetworkPolicy" not in line:
                continue
            name = re.search(r'\bciliumNetworkPolicyName=("?)([^"\s]*)\1', line)
            ns = re.search(r'\bk8sNamespace=("?)([^"\s]*)\1', line)
            if name is None:
                continue
            namespace = ns.group(2) if ns else ""
            refused.add(
                f"CiliumNetworkPolicy {namespace}/{name.group(2)}"
                if namespace
                else f"CiliumClusterwideNetworkPolicy {name.group(2)}"
            )
        return refused

    def _namespace(self, name: str, labels: dict[str, str]) -> None:
        path = f"/api/v1/namespaces/{name}"
        labels = {**labels, "kubernetes.io/metadata.name": name}
        if not self.api.exists(path):
            self.api.request("POST", "/api/v1/namespaces", {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": labels}})  # fmt: skip
            self.pending.append(f"Received update for namespace: {name}")
            return
        current = self.api.get(path)["metadata"].get("labels") or {}
        if current != labels:
            patch = {k: labels.get(k) for k in set(current) | set(labels)}
            self.api.request("PATCH", path, {"metadata": {"labels": patch}},
                             content_type="application/merge-patch+json")  # fmt: skip
            self.pending.append(f"Received update for namespace: {name}")

    def _ensure(self, path: str, collection: str, body: dict[str, Any]) -> None:
        if self.api.exists(path):
            return
        try:
            self.api.request("POST", collection, body)
        except urllib.error.HTTPError as error:
            # 409 AlreadyExists: someone created it between the two requests. For a namespace's
            # `default` ServiceAccount that is the controller-manager's ServiceAccount controller,
            # which creates it in every new namespace (an engine run met that race).
            if error.code != 409:
                raise

    def _create(self, doc: dict[str, Any]) -> None:
        if doc["kind"] in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
            doc = without_l7(doc)
        group_version = doc["apiVersion"]
        plural = {
            "NetworkPolicy": "networkpolicies",
            "CiliumNetworkPolicy": "ciliumnetworkpolicies",
            "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicies",
        }.get(doc["kind"])
        if plural is None:
            raise LabError(
                f"{doc['kind']} {doc['metadata'].get('name')}: not a kind the lab applies"
            )
        base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
        ns = doc["metadata"].get("namespace")
        path = (
            f"{base}/namespaces/{ns or 'default'}/{plural}"
            if doc["kind"] != "CiliumClusterwideNetworkPolicy"
            else f"{base}/{plural}"
        )
        try:
            self.api.request("POST", path, doc)
        except urllib.error.HTTPError as error:
            raise LabError(
                f"{doc['kind']} {ns}/{doc['metadata'].get('name')}: the API server refused it: "
                f"{error.read().decode(errors='replace')[:400]}"
            ) from error

    def nodes(self) -> dict[str, str]:
        """{ns/pod: the node it runs on}, for the pods applied so far."""
        return {key: rec.node for key, rec in self.state.pods.items()}

    def _add_pod(self, doc: dict[str, Any]) -> PodRecord:
        meta = doc["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        host_network = doc["spec"].get("hostNetwork") is True
        # Round robin over the nodes, so that pods of one namespace sit on different nodes and
        # cross-node (VXLAN) traffic is probed; a counter that never repeats a netns name.
        index = self.state.pod_counter
        self.state.pod_counter += 1
        node_index = len(self.state.pods) % len(self.state.nodes)
        node = self.state.nodes[node_index]
        # The Pod as the API server knows it, before the CNI runs (cilium-cni reads its labels
        # from the API): the workload's labels, ports and account, on its node.
        spec = {k: v for k, v in doc["spec"].items() if k in ("containers", "serviceAccountName")}
        spec["nodeName"] = node
        spec["automountServiceAccountToken"] = False
        if host_network:
            spec["hostNetwork"] = True
        spec["containers"] = [
            {**c, "image": c.get("image", "registry.k8s.io/pause:3.9")}
            for c in spec.get("containers") or [{"name": "main"}]
        ]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": meta.get("labels", {})},
                "spec": spec}  # fmt: skip
        self.api.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
        if host_network:
            # A host-network pod is its node: its sockets live in the node's namespace.
            netns, container_id, result = self.node_netns(node), "", {}
            address = node_ip(node_index)
        else:
            netns = f"{self.prefix}-p{index}"
            self._netns_add(netns)
            container_id = hashlib.sha256(f"{self.prefix}/{index}/{ns}/{name}".encode()).hexdigest()
            uid = self.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")["metadata"]["uid"]
            result = self._cni("ADD", node, netns, container_id, ns, name, uid=uid)
            address = result["ips"][0]["address"].split("/")[0]
        record = PodRecord(ns, name, node, netns, container_id, address, result, host_network)
        self.state.pods[f"{ns}/{name}"] = record
        self.state.save(self.workdir)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.api.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
            "hostIP": node_ip(node_index), "hostIPs": [{"ip": node_ip(node_index)}],
            "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
        }}, content_type="application/merge-patch+json")  # fmt: skip
        if not host_network:  # kube-router ignores host-network pods (isNetPolActionable)
            self.pending.append(f"Received update to pod: {ns}/{name}")
        return record

    def _cni(  # noqa: PLR0917 (the CNI call's own parameters)
        self,
        command: str,
        node: str,
        netns: str,
        container_id: str,
        ns: str,
        name: str,
        prev: dict[str, Any] | None = None,
        uid: str = "",
    ) -> dict[str, Any]:
        """The network configuration list of the enforcer's platform, run as libcni runs it:
        each plugin gets the list's name and cniVersion and (ADD) the previous plugin's result;
        CNI_ARGS as containerd sends them (IgnoreUnknown=1 first: a plugin that does not know
        K8S_POD_INFRA_CONTAINER_ID may ignore it, containernetworking/cni pkg/types/args.go)."""
        d = self.node_dir(node)
        extra_env: dict[str, str] = {}
        if self.state.enforcer == "cilium":
            # Cilium's chart writes `05-cilium.conflist` with the one cilium-cni plugin.
            name_, plugins = "cilium", [{"type": "cilium-cni"}]
            extra_env["CILIUM_SOCK"] = str(d / "run/cilium.sock")
        else:
            # K3s's flannel conflist (type flannel delegating to bridge + host-local, portmap).
            name_, plugins = "cbr0", [
                {"type": "flannel", "subnetFile": str(d / "subnet.env"),
                 "dataDir": str(d / "flannel-cni"),
                 "ipam": {"type": "host-local", "dataDir": str(d / "host-local")},
                 "delegate": {"hairpinMode": True, "forceAddress": True, "isDefaultGateway": True}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ]  # fmt: skip
        env = {
            "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
            "CNI_NETNS": f"/run/netns/{netns}", "CNI_PATH": str(cni_bin()),
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name};"
                        f"K8S_POD_INFRA_CONTAINER_ID={container_id}"
                        + (f";K8S_POD_UID={uid}" if uid else ""),
            **extra_env,
        }  # fmt: skip
        # The runtime sets up the pod's loopback first (containerd's CNI setup).
        loopback = {"cniVersion": CNI_VERSION, "name": "cni-loopback", "type": "loopback"}
        order = plugins if command == "ADD" else list(reversed(plugins))
        result: dict[str, Any] = prev or {}
        if command == "ADD":
            self._plugin(node, loopback, {**env, "CNI_IFNAME": "lo"})
        for plugin in order:
            conf = {"cniVersion": CNI_VERSION, "name": name_, **plugin}
            if result and (command == "DEL" or plugin is not plugins[0]):
                conf["prevResult"] = result
            out = self._plugin(node, conf, {**env, "CNI_IFNAME": "eth0"})
            if command == "ADD":
                result = out
        return result

    def _plugin(self, node: str, conf: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        binary = cni_bin() / conf["type"]
        if not binary.is_file():
            raise LabError(f"no CNI plugin {binary}: run scripts/toolchain.sh")
        done = subprocess.run(
            ["ip", "netns", "exec", self.node_netns(node), str(binary)],
            input=json.dumps(conf), capture_output=True, text=True, check=False,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **env},
        )  # fmt: skip
        if done.returncode != 0:
            raise LabError(
                f"CNI {env['CNI_COMMAND']} {conf['type']} on {node}: "
                f"{done.stdout.strip()} {done.stderr.strip()}"
            )
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def _serve(self, pods: list[PodRecord], world: list[str]) -> None:
        sockets = []
        for rec in pods:
            for protocol, numbers in self.state.ports.items():
                sockets += [[rec.netns, rec.ip, protocol, p] for p in numbers]
        new_world = [a for a in world if a not in self.state.world]
        for address in new_world:
            ip("addr", "add", f"{address}/32", "dev", "lo", netns=self.world_netns)
            for protocol, numbers in self.state.ports.items():
                sockets += [[self.world_netns, address, protocol, p] for p in numbers]
        self.state.world += new_world
        if not sockets:
            return
        name = f"serve-{len([k for k in self.state.pids if k.startswith('serve-')])}"
        ready = self.workdir / f"{name}.ready"
        spec = self.workdir / f"{name}.json"
        spec.write_text(json.dumps({"sockets": sockets, "ready": str(ready)}))
        _spawn(
            self.workdir,
            self.state,
            name,
            [sys.executable, str(Path(__file__).resolve()), "_serve", str(spec)],
        )
        _wait(
            f"the probe servers ({name}: {len(sockets)} sockets)",
            ready.exists,
            30,
            self.workdir,
            self.state,
            (name,),
        )

    # -- convergence ---------------------------------------------------------------------------

    def wait_converged(self, timeout: float = CONVERGE_TIMEOUT_S) -> float:
        """Block until every node's enforcer has applied the changes made since the last
        convergence; return the seconds it took. kube-router: each change has reached the
        controller ("Received ..." at -v=2, logged by its informer handlers after the cache is
        updated) and a full sync started after the last of them and finished
        (pkg/controllers/netpol/network_policy_controller.go fullPolicySync reads the informers'
        caches when it starts; a request during a sync queues one more)."""
        start = time.monotonic()
        if self.state.enforcer == "cilium":
            self._wait_cilium_policies(start + timeout)
            self.marks, self.pending = None, []
            return time.monotonic() - start
        marks = self.marks or {}
        for node in self.state.nodes:
            _wait_converged(self.workdir, self.state, f"kube-router-{node}", self.pending,
                            marks.get(node, 0), start + timeout)  # fmt: skip
        self.marks, self.pending = None, []
        return time.monotonic() - start

    def agent_sock(self, node: str) -> Path:
        return self.node_dir(node) / "run/cilium.sock"

    def _endpoints(self, node: str) -> dict[str, dict[str, Any]]:
        """The agent's endpoints of lab pods, by ns/pod."""
        out = {}
        for ep in agent_get(self.agent_sock(node), "/endpoint") or []:
            ids = ep.get("status", {}).get("external-identifiers") or {}
            key = f"{ids.get('k8s-namespace')}/{ids.get('k8s-pod-name')}"
            if key in self.state.pods:
                out[key] = ep
        return out

    def _expected_identity_labels(self, key: str) -> set[str]:
        """Identity labels Cilium derives for a pod (pkg/k8s GetPodMetadata) that can change
        after its endpoint exists: its namespace's labels (a campaign relabels namespaces), its
        service account and namespace. The pod's own labels are in the API before cilium-cni
        runs; some are filtered out of identities (pkg/labelsfilter), so they are not listed."""
        rec = self.state.pods[key]
        pod = self.api.get(f"/api/v1/namespaces/{rec.namespace}/pods/{rec.name}")
        ns = self.api.get(f"/api/v1/namespaces/{rec.namespace}")
        labels = {f"k8s:io.cilium.k8s.namespace.labels.{k}={v}"
                  for k, v in (ns["metadata"].get("labels") or {}).items()}  # fmt: skip
        account = pod["spec"].get("serviceAccountName") or "default"
        labels.add(f"k8s:io.cilium.k8s.policy.serviceaccount={account}")
        labels.add(f"k8s:io.kubernetes.pod.namespace={rec.namespace}")
        return labels

    def _wait_cilium_pods(self, deadline: float) -> None:
        """Each pod's endpoint is ready on its node with the identity of its current labels,
        and every agent maps every pod IP to that identity (ipcache) and knows the identity."""
        self._wait_cilium_until(deadline, self._cilium_pods_problem)

    def _wait_cilium_until(self, deadline: float, problem_of: Callable[[], str]) -> None:
        """Poll until `problem_of` finds nothing; an agent that died, or the deadline, ends the
        wait with what was still wrong."""
        while True:
            problem = problem_of()
            if not problem:
                return
            self._check_agents()
            if time.monotonic() > deadline:
                raise LabError(f"cilium did not converge: {problem}")
            time.sleep(0.1)

    def _check_agents(self) -> None:
        for node in self.state.nodes:
            name = f"cilium-agent-{node}"
            if not _alive(self.state.pids[name]):
                tail = "\n".join(_log(self.workdir, name).splitlines()[-15:])
                raise LabError(f"{name} exited:\n{tail}")

    def _cilium_pods_problem(self) -> str:
        identity: dict[str, int] = {}
        for node in self.state.nodes:
            endpoints = self._endpoints(node)
            for key, rec in self.state.pods.items():
                if rec.node != node or rec.host_network:
                    continue
                ep = endpoints.get(key)
                if ep is None:
                    return f"no endpoint for pod {key} on {node}"
                status = ep["status"]
                if status.get("state") != "ready":
                    return f"endpoint of {key} on {node} is {status.get('state')}"
                got = set(status.get("identity", {}).get("labels") or [])
                want = self._expected_identity_labels(key)
                if not want <= got:
                    return f"endpoint of {key}: identity labels lack {sorted(want - got)[:3]}"
                identity[rec.ip] = int(status["identity"]["id"])
        for node in self.state.nodes:
            sock = self.agent_sock(node)
            cache = {
                e["cidr"].split("/")[0]: int(e["identity"]) for e in agent_get(sock, "/ip") or []
            }
            for ip_, ident in identity.items():
                if cache.get(ip_) != ident:
                    return f"{node}'s ipcache maps {ip_} to {cache.get(ip_)}, not identity {ident}"
            for ident in set(identity.values()):
                try:
                    agent_get(sock, f"/identity/{ident}")
                except LabError:
                    return f"{node} does not know identity {ident}"
        return ""

    def _wait_cilium_policies(self, deadline: float) -> None:
        """Every policy the API server holds is in each agent's repository (by uid) and every
        lab endpoint has realized that repository's revision (pkg/endpoint: the policy
        revision an endpoint's datapath was regenerated to)."""
        self._wait_cilium_until(
            deadline, lambda: self._cilium_pods_problem() or self._cilium_policy_problem()
        )

    def _cilium_policy_problem(self) -> str:
        wanted = {}
        for kind, key, path in self._policies():
            wanted[self.api.get(path)["metadata"]["uid"]] = f"{kind} {key}"
        for node in self.state.nodes:
            repo = agent_get(self.agent_sock(node), "/policy")
            text = repo.get("policy") or ""
            # The rules' labels, as JSON objects ({"key": "io.cilium.k8s.policy.uid", "value":
            # ...}, pkg/labels Label) or as `k8s:key=value` strings.
            present = set(
                re.findall(
                    r"policy\.uid.{0,80}?([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})",
                    text,
                    re.DOTALL,
                )
            )
            refused = self._refused_since_mark(node)
            missing = [
                name for uid, name in wanted.items() if uid not in present and name not in refused
            ]
            if missing:
                return f"{node}'s agent has not imported {', '.join(sorted(missing)[:3])}"
            stale = set(present) - set(wanted)
            if stale:
                return f"{node}'s agent still holds {len(stale)} deleted polic(ies)"
            revision = int(repo["revision"])
            for key, ep in self._endpoints(node).items():
                realized = ep["status"].get("policy", {}).get("realized", {})
                if int(realized.get("policy-revision", 0)) < revision:
                    return (
                        f"endpoint of {key} on {node} at policy revision "
                        f"{realized.get('policy-revision')}, repository at {revision}"
                    )
        return ""

    # -- probes --------------------------------------------------------------------------------

    def endpoint_netns(self, endpoint: str) -> tuple[str, str | None, str]:
        """(netns, bind address, address) of `ns/pod` or of a world address."""
        if endpoint in self.state.pods:
            rec = self.state.pods[endpoint]
            return rec.netns, None, rec.ip
        if endpoint in self.state.world:
            return self.world_netns, endpoint, endpoint
        raise LabError(f"unknown endpoint {endpoint!r}: not a lab pod or world address")

    def probe(
        self, flows: list[tuple[str, str, str, int]], timeout: float = PROBE_TIMEOUT_S
    ) -> list[bool]:
        probes = []
        for src, dst, protocol, port in flows:
            netns, bind, _ = self.endpoint_netns(src)
            probes.append(Probe(netns, bind, self.endpoint_netns(dst)[2], protocol, port))
        return probe_many(probes, timeout)


def _wait_converged(  # noqa: PLR0917
    workdir: Path, state: State, name: str, expected: list[str], mark: int, deadline: float
) -> None:
    missing: list[str] = []
    while True:
        pid = state.pids.get(name)
        if pid is None or not _alive(pid):
            raise LabError(
                f"{name} is not running:\n" + "\n".join(_log(workdir, name).splitlines()[-15:])
            )
        text = _log(workdir, name)
        last = mark
        missing = []
        for line in expected:
            pos = text.rfind(line + "\n", mark)
            if pos < 0:
                missing.append(line)
            last = max(last, pos)
        if not missing:
            started = text.find("Starting sync of iptables with version", last)
            if not expected and started < 0 and text.find("sync iptables took") >= 0:
                return  # nothing changed since the last convergence
            if started >= 0:
                done = text.find("sync iptables took", started)
                aborted = text.find("Aborting sync", started)
                if aborted >= 0 and (done < 0 or aborted < done):
                    raise LabError(f"{name}: {text[aborted:].splitlines()[0]}")
                if done >= 0:
                    return
        if time.monotonic() > deadline:
            what = (
                f"{len(missing)} object(s) not seen, e.g. {missing[:3]}"
                if missing
                else "no full iptables sync started after the last change finished"
            )
            raise LabError(f"{name} did not converge: {what}")
        time.sleep(0.05)


# --- stop ---------------------------------------------------------------------------------------


def stop(workdir: Path) -> None:
    """End every recorded process (SIGTERM, then SIGKILL), delete every recorded namespace.
    Deleting a namespace removes its interfaces, routes, iptables rules and ipsets."""
    workdir = workdir.resolve()
    path = workdir / "lab.json"
    if not path.exists():
        return
    state = State.load(workdir)
    pids = list(state.pids.values())
    for pid in reversed(pids):
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    # SIGKILL is not instant: a cilium-agent tearing down its BPF state may still be exiting when
    # kill() returns. Wait for the exit itself (reaped), bounded, so that nothing recorded is
    # alive once stop returns.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    survivors = [p for p in pids if _alive(p)]
    present = set(netns_names())
    errors = []
    for name in reversed(state.netns):
        if name in present:
            done = subprocess.run(
                ["ip", "netns", "delete", name], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                errors.append(f"{name}: {done.stderr.strip()}")
    if survivors:
        errors.append(f"processes {survivors} still alive 10 s after SIGKILL")
    if state.enforcer == "cilium" and not survivors:
        # The kernel frees a program when its last reference goes (the tc filters of the deleted
        # namespaces' devices, the agents' fds, the pins in their private bpffs), and that happens
        # after `ip netns delete` and the agents' exit return: under load, seconds later. Wait for
        # it, so that a lab is gone when stop returns and the next lab's snapshot is its own.
        before = set(state.bpf_before)
        deadline = time.monotonic() + BPF_FREE_TIMEOUT_S
        while True:
            left = {i: n for i, n in cilium_bpf_programs().items() if i not in before}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if left:
            names = sorted(set(left.values()))
            errors.append(
                f"{len(left)} Cilium BPF program(s) still loaded {BPF_FREE_TIMEOUT_S:.0f} s after"
                f" the agents ended, e.g. {names[:3]}"
            )
    if errors:
        raise LabError("stop could not clean up: " + "; ".join(errors))
    path.unlink()


def leftovers(workdir: Path) -> list[str]:
    """What a stopped lab left behind (empty when clean): namespaces named with its prefix,
    processes it recorded."""
    workdir = workdir.resolve()
    prefix = _prefix(workdir) + "-"
    found = [f"netns {n}" for n in netns_names() if n.startswith(prefix)]
    if (workdir / "lab.json").exists():
        state = State.load(workdir)
        found += [f"process {k} (pid {p})" for k, p in state.pids.items() if _alive(p)]
        found.append(f"{workdir / 'lab.json'} (the lab is still recorded)")
    return found


# --- CLI ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--enforcer", default="kube-router", choices=ENFORCERS)
    p.add_argument("--nodes", type=int, default=2)
    p = sub.add_parser("stop")
    p.add_argument("--dir", type=Path, required=True)
    p = sub.add_parser("_forward")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", type=int, required=True)
    p.add_argument("netns", nargs="+")
    p = sub.add_parser("_serve")
    p.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            Lab.start(args.dir, args.enforcer, args.nodes)
            print(args.dir.resolve() / "kubeconfig")
        elif args.command == "stop":
            stop(args.dir)
        elif args.command == "_forward":
            forward(args.netns, args.port, args.target)
        elif args.command == "_serve":
            serve(json.loads(args.spec.read_text()))
    except (LabError, OSError, subprocess.CalledProcessError) as error:
        print(f"datapath_lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
