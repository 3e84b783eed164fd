"""A read-only client of the API server for the program's own checks (standard library only).

The program's runtime carries no Kubernetes client (requirements.txt: the analyzer's `live`
extra has it, for the dev venv). The rollout gate and the Helm-pending check only GET a few
objects, as JSON, through the same kubeconfig and context as the stack's Kubernetes provider.
Supported credentials, as client-go reads them (k8s.io/client-go tools/clientcmd/api types):
`token`/`tokenFile`, `client-certificate(-data)`/`client-key(-data)`, and `exec` credential
plugins (client.authentication.k8s.io ExecCredential: `status.token` or
`status.clientCertificateData`/`clientKeyData`); the cluster's `certificate-authority(-data)`,
`insecure-skip-tls-verify` and `tls-server-name`. Anything else is refused with its name.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import yaml

TIMEOUT_S = 30
# client-go retries a response that carries Retry-After when it is a 429 or a 5xx, sleeping what
# the server asked, at most 10 times (k8s.io/client-go/rest/request.go: checkWait, maxRetries).
# The API server answers that way when it is not ready for a request, not only under load: since
# Kubernetes 1.34 (KEP-4568, ResilientWatchCacheInitialization, GA) a LIST of a resource whose
# watch cache is still initializing, after an API server (re)start or for a new CRD, is a 429
# with Retry-After 1-30 s (k8s.io/apiserver pkg/storage/cacher/cacher.go, GetList).
MAX_RETRIES = 10


def retry_after_s(error: urllib.error.HTTPError) -> int | None:
    """The seconds the API server asked to wait before retrying, else None (client-go's
    checkWait: a 429 or a 5xx with an integer Retry-After)."""
    if error.code != 429 and error.code < 500:
        return None
    value = error.headers.get("Retry-After", "") if error.headers is not None else ""
    return int(value) if value.strip().isdigit() else None


def urlopen_as_client_go(
    request: urllib.request.Request,
    context: ssl.SSLContext,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> HTTPResponse:
    """urlopen, retried as client-go retries (`MAX_RETRIES` above); the last error is raised."""
    for attempt in range(1, MAX_RETRIES + 1):
        try:
            response: HTTPResponse = urllib.request.urlopen(
                request, context=context, timeout=timeout
            )
            return response
        except urllib.error.HTTPError as error:
            wait = retry_after_s(error)
            if wait is None or attempt == MAX_RETRIES:
                raise
            error.close()
            sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


class KubeconfigError(Exception):
    """The kubeconfig cannot be used by this reader; the message names what is missing."""


class ApiError(Exception):
    """An HTTP error of the API server (status kept for 404 handling)."""

    def __init__(self, status: int, reason: str, path: str) -> None:
        super().__init__(f"HTTP {status} {reason} for GET {path}")
        self.status = status


def _merged_files() -> dict[str, Any]:
    paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    for path in filter(None, paths.split(os.pathsep)):
        document = yaml.safe_load(Path(path).read_text()) or {}
        for key in ("clusters", "contexts", "users"):
            merged[key] += document.get(key) or []
        merged.setdefault("current-context", document.get("current-context"))
    return merged


def _named(document: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    for entry in document.get(key) or []:
        if entry.get("name") == name:
            return dict(entry.get(key.rstrip("s")) or {})
    raise KubeconfigError(f"kubeconfig: no {key.rstrip('s')} named {name!r}")


def _private_file(path: Path, data_b64: str) -> str:
    """Write base64 `data_b64` to a new file only its owner can read (created 0600, no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(base64.b64decode(data_b64))
    return str(path)


class KubeReader:
    """GET JSON from the API server that `context` of the kubeconfig points at."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        document = yaml.safe_load(kubeconfig) if kubeconfig else _merged_files()
        context = context or document.get("current-context")
        if not context:
            raise KubeconfigError("kubeconfig: no context given and no current-context")
        ctx = _named(document, "contexts", context)
        cluster = _named(document, "clusters", ctx["cluster"])
        user = _named(document, "users", ctx["user"]) if ctx.get("user") else {}
        self.server = str(cluster["server"]).rstrip("/")
        self._headers: dict[str, str] = {"Accept": "application/json"}
        self.ssl = self._ssl(cluster)
        self._authenticate(user)

    def _ssl(self, cluster: dict[str, Any]) -> ssl.SSLContext:
        if cluster.get("insecure-skip-tls-verify"):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if cluster.get("certificate-authority-data"):
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
            context = ssl.create_default_context(cadata=ca)
        elif cluster.get("certificate-authority"):
            context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        else:
            context = ssl.create_default_context()
        return context

    def _authenticate(self, user: dict[str, Any]) -> None:
        if user.get("exec"):
            user = {**user, **self._exec(user["exec"])}
        if user.get("token"):
            self._headers["Authorization"] = f"Bearer {user['token']}"
        elif user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
            self._headers["Authorization"] = f"Bearer {token}"
        cert = self._load_client_certificate(user)
        unsupported = sorted({"auth-provider", "username", "password"} & set(user))
        if unsupported and "Authorization" not in self._headers and not cert:
            raise KubeconfigError(f"kubeconfig: user credentials {unsupported} are not supported")

    def _load_client_certificate(self, user: dict[str, Any]) -> bool:
        """Load the user's client certificate and key into the TLS context, if it has both.

        `ssl` loads a chain from files only. The `-data` fields go to a private directory that
        is removed as soon as the context holds them: no key stays on disk after this call,
        even if the program is killed later (a killed `up` is docs/recovery.md's first case)."""
        cert_path, key_path = user.get("client-certificate"), user.get("client-key")
        cert_data: str = user.get("client-certificate-data") or ""
        key_data: str = user.get("client-key-data") or ""
        if not (cert_path or cert_data) or not (key_path or key_data):
            return False
        with tempfile.TemporaryDirectory(prefix="cnistack-kube-") as tmp:
            cert = cert_path or _private_file(Path(tmp) / "client.crt", cert_data)
            key = key_path or _private_file(Path(tmp) / "client.key", key_data)
            self.ssl.load_cert_chain(cert, key)
        return True

    def _exec(self, spec: dict[str, Any]) -> dict[str, Any]:
        env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
        done = subprocess.run(
            [spec["command"], *(spec.get("args") or [])],
            env=env, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise KubeconfigError(
                f"kubeconfig exec plugin {spec['command']!r} failed: {done.stderr.strip()[:300]}"
            )
        status = json.loads(done.stdout).get("status") or {}
        found: dict[str, Any] = {}
        if status.get("token"):
            found["token"] = status["token"]
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            found["client-certificate-data"] = base64.b64encode(
                status["clientCertificateData"].encode()
            ).decode()
            found["client-key-data"] = base64.b64encode(status["clientKeyData"].encode()).decode()
        return found

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.server + path, headers=self._headers)
        try:
            with urlopen_as_client_go(request, self.ssl, TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, str(error.reason), path) from None
