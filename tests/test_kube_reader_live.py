"""The program's reader (components/kube_reader.py) with a client certificate, against the real
kube-apiserver of the session's local cluster (scripts/local_cluster.py: `--client-ca-file` is
its CA).

kubeadm's admin.conf, k3d's and many on-premise kubeconfigs authenticate with
`client-certificate-data`/`client-key-data`, not a token; the engine tests use a token. Here the
API server itself decides who the certificate is, and the temporary directory is watched: the
key must not stay on disk once the reader holds it.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.kube_reader import ApiError, KubeReader
from tests.local_cluster import LocalCluster, script

pytestmark = pytest.mark.engine

# Anonymous requests may read /version (system:public-info-viewer) but not Secrets: a 200 on
# this LIST proves the API server authenticated the certificate.
SECRETS = "/api/v1/namespaces/kube-system/secrets"


def _client_certificate(out: Path, ca_crt: Path, ca_key: Path, subject: str) -> tuple[str, str]:
    """A client certificate for `subject`, signed by the given CA; (cert, key) base64 PEM."""
    script._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(out / "client.key"), "-out", str(out / "client.csr"),
                    "-subj", subject)  # fmt: skip
    script._openssl("x509", "-req", "-in", str(out / "client.csr"), "-CA", str(ca_crt),
                    "-CAkey", str(ca_key), "-CAcreateserial", "-days", "1",
                    "-out", str(out / "client.crt"))  # fmt: skip
    return _b64(out / "client.crt"), _b64(out / "client.key")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(cluster: LocalCluster, cert: str, key: str) -> str:
    document = yaml.safe_load(cluster.kubeconfig.read_text())
    document["users"] = [
        {"name": "cert", "user": {"client-certificate-data": cert, "client-key-data": key}}
    ]
    document["contexts"][0]["context"]["user"] = "cert"
    return yaml.safe_dump(document)


@pytest.fixture
def tmpdir_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The process's temporary directory, empty, where the test can see what stays in it."""
    watched = tmp_path / "tmpdir"
    watched.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    yield watched


def test_a_client_certificate_authenticates_and_its_key_leaves_no_file(
    local_cluster: LocalCluster, tmp_path: Path, tmpdir_watched: Path
) -> None:
    pki = local_cluster.workdir / "pki"
    cert, key = _client_certificate(
        tmp_path, pki / "ca.crt", pki / "ca.key", "/O=system:masters/CN=cnistack-cert-admin"
    )
    reader = KubeReader(_kubeconfig(local_cluster, cert, key), "local")
    assert list(tmpdir_watched.iterdir()) == []
    assert reader.get(SECRETS)["kind"] == "SecretList"
    assert list(tmpdir_watched.iterdir()) == []


def test_a_certificate_from_another_ca_is_refused_by_the_api_server(
    local_cluster: LocalCluster, tmp_path: Path, tmpdir_watched: Path
) -> None:
    other = tmp_path / "other-pki"
    script._make_pki(other)  # a CA of its own, as the local cluster makes one, but not its CA
    cert, key = _client_certificate(
        other, other / "ca.crt", other / "ca.key", "/O=system:masters/CN=cnistack-cert-admin"
    )
    reader = KubeReader(_kubeconfig(local_cluster, cert, key), "local")
    # A certificate that does not verify is an authentication error, not an anonymous request:
    # the API server puts anonymous behind the other authenticators with FailOnError
    # (k8s.io/kubernetes pkg/kubeapiserver/authenticator/config.go, union.NewFailOnError).
    with pytest.raises(ApiError) as caught:
        reader.get(SECRETS)
    assert str(caught.value) == f"HTTP 401 Unauthorized for GET {SECRETS}"
    assert list(tmpdir_watched.iterdir()) == []
