"""The API reader retries what the API server asks to retry, as client-go does
(k8s.io/client-go/rest/request.go, checkWait: a 429 or a 5xx with an integer Retry-After, the
wait the server gave, at most 10 attempts); anything else is raised at once.

Why it matters: since Kubernetes 1.34 (KEP-4568) a LIST of a resource whose watch cache is still
initializing is a 429 with Retry-After. An engine run met it on the tests' own client (a LIST of
CiliumNetworkPolicies seconds after the CRD was created); the program's reader would meet it on
its first LIST after an API server restart (the Helm release Secrets, components/cluster_facts.py).

The server here is a TEST DOUBLE (an http.server on loopback that plays a scripted list of
answers): no real kube-apiserver can be made to answer 429 on demand.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from components import kube_reader
from components.kube_reader import ApiError, KubeReader

Answer = tuple[int, dict[str, str]]
OK: Answer = (200, {})


class ScriptedApiServer:
    """Test double: answers each GET with the next scripted (status, headers); the last answer
    repeats. Records the paths it was asked."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.paths: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.paths.append(self.path)
                status, headers = double.answers[min(len(double.paths), len(double.answers)) - 1]
                body = json.dumps({"kind": "Status", "code": status} if status != 200 else
                                  {"kind": "SecretList", "items": []}).encode()  # fmt: skip
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def double(request: pytest.FixtureRequest) -> Iterator[ScriptedApiServer]:
    server = ScriptedApiServer(request.param)
    yield server
    server.close()


def _open(server: ScriptedApiServer, sleeps: list[float]) -> Any:
    request = urllib.request.Request(server.url + "/api/v1/secrets")
    with kube_reader.urlopen_as_client_go(
        request, ssl.create_default_context(), 5, sleeps.append
    ) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(
    "double",
    [[(429, {"Retry-After": "1"}), (503, {"Retry-After": "2"}), OK]],
    indirect=True,
)
def test_a_429_or_5xx_with_retry_after_is_retried_after_the_wait_asked(
    double: ScriptedApiServer,
) -> None:
    sleeps: list[float] = []
    assert _open(double, sleeps) == {"kind": "SecretList", "items": []}
    assert sleeps == [1, 2]
    assert len(double.paths) == 3


@pytest.mark.parametrize(
    ("double", "status"),
    [([(429, {}), OK], 429), ([(500, {}), OK], 500), ([(404, {"Retry-After": "1"}), OK], 404)],
    indirect=["double"],
)
def test_without_retry_after_or_below_500_the_error_is_raised_at_once(
    double: ScriptedApiServer, status: int
) -> None:
    sleeps: list[float] = []
    with pytest.raises(urllib.error.HTTPError) as caught:
        _open(double, sleeps)
    assert (caught.value.code, sleeps, len(double.paths)) == (status, [], 1)


@pytest.mark.parametrize("double", [[(429, {"Retry-After": "3"})]], indirect=True)
def test_ten_attempts_then_the_last_error(double: ScriptedApiServer) -> None:
    sleeps: list[float] = []
    with pytest.raises(urllib.error.HTTPError) as caught:
        _open(double, sleeps)
    assert caught.value.code == 429
    assert (sleeps, len(double.paths)) == ([3] * 9, 10)


@pytest.mark.parametrize("double", [[(429, {"Retry-After": "1"}), OK]], indirect=True)
def test_the_program_reader_gets_through_a_cache_that_is_not_ready(
    double: ScriptedApiServer,
) -> None:
    """KubeReader.get, as the stack's pre-flight reads the Helm release Secrets."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": double.url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }
    reader = KubeReader(json.dumps(kubeconfig), "x")
    assert reader.get("/api/v1/namespaces/kube-system/secrets") == {
        "kind": "SecretList",
        "items": [],
    }
    assert double.paths == ["/api/v1/namespaces/kube-system/secrets"] * 2


@pytest.mark.parametrize("double", [[(403, {})]], indirect=True)
def test_the_program_reader_names_a_refusal(double: ScriptedApiServer) -> None:
    kubeconfig = {
        "clusters": [{"name": "c", "cluster": {"server": double.url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }
    reader = KubeReader(json.dumps(kubeconfig), "x")
    with pytest.raises(ApiError) as caught:
        reader.get("/version")
    assert str(caught.value) == "HTTP 403 Forbidden for GET /version"
