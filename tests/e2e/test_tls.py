"""TLS without a proxy (`--tls-cert`, `--tls-key`): the official client trusts the server
through MLFLOW_TRACKING_SERVER_CERT_PATH (or skips verification with
MLFLOW_TRACKING_INSECURE_TLS), our CLI does the same, and SIGHUP swaps the certificate for new
handshakes while the listener and open connections stay. Certificates are made by the test
(a CA and leaves for 127.0.0.1 and localhost)."""

import datetime
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from e2e_support import free_port, our_binary, unique_name

pytestmark = pytest.mark.ours_only


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca_key, ca_cert, cn):
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_pair(directory, key, cert, chain=()):
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = directory / "server.crt", directory / "server.key"
    pem = cert.public_bytes(serialization.Encoding.PEM)
    for extra in chain:
        pem += extra.public_bytes(serialization.Encoding.PEM)
    # Written next to the target and renamed, as a certificate renewal tool does.
    for path, data in (
        (cert_path, pem),
        (
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ),
    ):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return cert_path, key_path


def write_ca(path, cert):
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def served_serial(port, ca_path):
    """The serial number of the certificate a new handshake gets."""
    from cryptography import x509

    context = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


class TlsServer:
    def __init__(self, tmp, cert_path, key_path, ca_path):
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_path = ca_path
        self.log_path = tmp / "server.log"
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
        self.proc = subprocess.Popen(
            [
                our_binary(), "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                "--artifacts-destination", str(tmp / "mlartifacts"),
                "--tls-cert", str(cert_path), "--tls-key", str(key_path),
            ],
            cwd=tmp, stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if requests.get(self.url + "/health", verify=str(ca_path), timeout=2).text == "OK":
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError(f"TLS server not healthy\n{self.log()}")

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self._log.close()


@pytest.fixture
def pki(tmp_path):
    ca_key, ca = make_ca("e2e test CA")
    leaf_key, leaf = make_leaf(ca_key, ca, "mlflow-e2e")
    cert_path, key_path = write_pair(tmp_path, leaf_key, leaf, chain=[ca])
    return {
        "ca_key": ca_key, "ca": ca, "leaf": leaf,
        "cert": cert_path, "key": key_path, "ca_path": write_ca(tmp_path / "ca.pem", ca),
    }


@pytest.fixture
def tls_server(tmp_path, pki):
    srv = TlsServer(tmp_path, pki["cert"], pki["key"], pki["ca_path"])
    yield srv
    srv.stop()


def run_client(url, env, code):
    """The official client in a fresh interpreter, so its TLS settings are read anew."""
    from e2e_support import PYTHON

    full = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    full.update({"MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **env})
    return subprocess.run([str(PYTHON), "-c", code], env=full, capture_output=True, text=True, timeout=300)


CLIENT_ROUND_TRIP = """
import mlflow, tempfile, os
from mlflow import MlflowClient
c = MlflowClient()
eid = c.create_experiment("{name}")
with mlflow.start_run(experiment_id=eid) as run:
    mlflow.log_param("p", "1")
    mlflow.log_metric("m", 0.5)
    d = tempfile.mkdtemp()
    open(os.path.join(d, "a.txt"), "w").write("over tls")
    mlflow.log_artifact(os.path.join(d, "a.txt"))
r = c.get_run(run.info.run_id)
assert r.data.params == {{"p": "1"}}, r.data.params
path = c.download_artifacts(run.info.run_id, "a.txt", tempfile.mkdtemp())
assert open(path).read() == "over tls"
print("OK")
"""


def test_official_client_over_tls(tls_server, pki):
    ok = run_client(
        tls_server.url,
        {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki["ca_path"])},
        CLIENT_ROUND_TRIP.format(name=unique_name("tls")),
    )
    assert ok.returncode == 0 and ok.stdout.strip().endswith("OK"), ok.stderr[-2000:]
    # Without the CA the handshake is refused by the client...
    refused = run_client(tls_server.url, {}, "from mlflow import MlflowClient; MlflowClient().search_experiments()")
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "SSL" in refused.stderr, refused.stderr[-1000:]
    # ...unless verification is turned off.
    insecure = run_client(
        tls_server.url,
        {"MLFLOW_TRACKING_INSECURE_TLS": "true"},
        "from mlflow import MlflowClient; print(len(MlflowClient().search_experiments()))",
    )
    assert insecure.returncode == 0, insecure.stderr[-1000:]
    # Plain HTTP on the TLS port gets no answer.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5)


def test_our_cli_over_tls(tls_server, pki):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    env.update({"MLFLOW_TRACKING_URI": tls_server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    name = unique_name("cli-tls")
    ok = subprocess.run(
        [our_binary(), "experiments", "create", "--experiment-name", name],
        env={**env, "MLFLOW_TRACKING_SERVER_CERT_PATH": str(pki["ca_path"])},
        capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [our_binary(), "experiments", "search"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "MLFLOW_TRACKING_SERVER_CERT_PATH" in lines[0], bad.stderr
    insecure = subprocess.run(
        [our_binary(), "experiments", "search"],
        env={**env, "MLFLOW_TRACKING_INSECURE_TLS": "true"},
        capture_output=True, text=True, timeout=60,
    )
    assert insecure.returncode == 0 and name in insecure.stdout, insecure.stderr


def test_sighup_reloads_the_certificate_and_keeps_the_listener(tls_server, pki, tmp_path):
    ca_path = pki["ca_path"]
    assert served_serial(tls_server.port, ca_path) == pki["leaf"].serial_number
    session = requests.Session()
    session.trust_env = False  # or REQUESTS_CA_BUNDLE would replace `verify`
    session.verify = str(ca_path)
    assert session.get(tls_server.url + "/health", timeout=10).text == "OK"

    key2, leaf2 = make_leaf(pki["ca_key"], pki["ca"], "mlflow-e2e-renewed")
    write_pair(tmp_path, key2, leaf2, chain=[pki["ca"]])
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 20
    while served_serial(tls_server.port, ca_path) != leaf2.serial_number:
        assert time.time() < deadline, tls_server.log()
        time.sleep(0.1)
    assert tls_server.proc.poll() is None
    # The connection opened before the reload still works, and so do new ones.
    assert session.get(tls_server.url + "/health", timeout=10).text == "OK"
    assert requests.get(tls_server.url + "/health", verify=str(ca_path), timeout=10).text == "OK"

    # A broken pair is refused and the renewed one stays in use.
    (tmp_path / "server.key").write_text("not a key")
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 20
    while "not reloaded" not in tls_server.log():
        assert time.time() < deadline, tls_server.log()
        time.sleep(0.1)
    assert served_serial(tls_server.port, ca_path) == leaf2.serial_number
    assert tls_server.proc.poll() is None


def test_unusable_pairs_stop_the_server_at_start(tmp_path, pki):
    other_key, _ = make_leaf(pki["ca_key"], pki["ca"], "other")
    from cryptography.hazmat.primitives import serialization

    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(
        other_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    base = [our_binary(), "server", "--port", str(free_port()), "--backend-store-uri", f"sqlite:///{tmp_path / 'x.db'}"]
    for extra, expected in (
        (["--tls-cert", str(pki["cert"]), "--tls-key", str(wrong_key)], "cannot be used together"),
        (["--tls-cert", str(tmp_path / "missing.crt"), "--tls-key", str(pki["key"])], "cannot read"),
        (["--tls-cert", str(pki["cert"])], "--tls-key"),
    ):
        done = subprocess.run(base + extra, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert expected in done.stderr, done.stderr
