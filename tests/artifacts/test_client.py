"""The official client's artifact calls against each storage backend."""

import hashlib
import os

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import start_backend


@pytest.fixture(params=["local", "s3", "azure", "gcs"])
def backend(request):
    server = start_backend(request.param, request)
    mlflow.set_tracking_uri(server.url)
    yield server
    print(server.log_tail())  # shown by pytest only when the test fails
    server.stop()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_artifact_round_trip(backend, tmp_path):
    src = tmp_path / "src"
    (src / "nested/deeper").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "nested/mid.csv").write_text("a,b\n1,2\n")
    (src / "nested/deeper/leaf.bin").write_bytes(os.urandom(70_000))
    single = tmp_path / "single.txt"
    single.write_text("single file")

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="copies")
        mlflow.log_artifacts(str(src), artifact_path="tree")
        mlflow.log_text("some text", "texts/note.txt")
        mlflow.log_dict({"k": [1, 2]}, "config.json")
        mlflow.log_image(np.zeros((8, 8, 3), dtype=np.uint8), "images/black.png")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    client = MlflowClient()

    top = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    is_dir, config_size = top.pop("config.json")
    assert not is_dir and config_size > 0
    assert top == {
        "single.txt": (False, 11),
        "copies": (True, None),
        "tree": (True, None),
        "texts": (True, None),
        "images": (True, None),
    }
    nested = {f.path for f in client.list_artifacts(run_id, "tree/nested")}
    assert nested == {"tree/nested/mid.csv", "tree/nested/deeper"}
    deeper = client.list_artifacts(run_id, "tree/nested/deeper")
    assert [(f.path, f.file_size) for f in deeper] == [("tree/nested/deeper/leaf.bin", 70_000)]
    assert client.list_artifacts(run_id, "does/not/exist") == []

    out = tmp_path / "out"
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="tree", dst_path=str(out))
    for rel in ["top.txt", "nested/mid.csv", "nested/deeper/leaf.bin"]:
        assert sha256(os.path.join(folder, rel)) == sha256(src / rel), rel
    one = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="copies/single.txt", dst_path=str(out / "one"))
    assert open(one).read() == "single file"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/note.txt") == "some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"k": [1, 2]}
    png = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="images/black.png", dst_path=str(out / "img"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_large_file_round_trip_is_byte_exact(local_server, tmp_path):
    mlflow.set_tracking_uri(local_server.url)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big))
    got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="big.bin", dst_path=str(tmp_path / "dl"))
    assert os.path.getsize(got) == 200 << 20
    assert sha256(got) == sha256(big)
