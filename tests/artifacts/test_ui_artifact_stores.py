"""The web UI's artifact routes on every storage backend: `upload-artifact`, `/get-artifact`,
`artifacts/list` (REST and GraphQL) and a logged model's `artifacts/directories` and
`artifacts/files`, with the store as the proxied `--artifacts-destination` and as a
`--default-artifact-root` that runs write to directly (local, S3 on moto, Azure on Azurite,
GCS on fake-gcs-server)."""

import pytest
import requests
from mlflow import MlflowClient

from conftest import start_backend

KINDS = ["local", "s3", "azure", "gcs"]


def is_local(uri):
    return uri.startswith(("file:", "/"))


def serve(request):
    kind, mode = request.param
    flag = "--artifacts-destination" if mode == "proxied" else "--default-artifact-root"
    server = start_backend(kind, request, flag)
    server.mode = mode
    return server


@pytest.fixture(params=[(k, "proxied") for k in KINDS] + [(k, "root") for k in KINDS], ids="-".join)
def backend(request):
    server = serve(request)
    yield server
    print(server.log_tail())  # shown by pytest only when the test fails
    server.stop()


# A non-proxied cloud root is written by the client itself, which needs the cloud SDKs the
# test venv does not have; the UI's reads of it are covered through upload-artifact above.
@pytest.fixture(params=[(k, "proxied") for k in KINDS] + [("local", "root")], ids="-".join)
def model_backend(request):
    server = serve(request)
    yield server
    print(server.log_tail())
    server.stop()


def gql_list(url, run_id, path=None):
    fields = f'runId: "{run_id}"' + (f', path: "{path}"' if path else "")
    r = requests.post(
        f"{url}/graphql",
        json={"query": f"query q {{ mlflowListArtifacts(input: {{{fields}}}) {{ files {{ path isDir fileSize }} }} }}"},
    )
    assert r.status_code == 200 and r.json()["errors"] is None, r.text
    return r.json()["data"]["mlflowListArtifacts"]["files"]


def test_upload_download_list(backend):
    client = MlflowClient(backend.url)
    exp = client.create_experiment("ui-routes")
    run = client.create_run(exp)
    run_id = run.info.run_id
    if backend.mode == "proxied":
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    else:
        assert not run.info.artifact_uri.startswith("mlflow-artifacts:")
    payload = bytes(range(256)) * 40
    r = requests.post(
        f"{backend.url}/ajax-api/2.0/mlflow/upload-artifact",
        params={"run_uuid": run_id, "path": "dir/data.bin"},
        data=payload,
    )
    assert r.status_code == 200, r.text
    requests.post(
        f"{backend.url}/ajax-api/2.0/mlflow/upload-artifact",
        params={"run_uuid": run_id, "path": "hello.txt"},
        data="hello world",
    ).raise_for_status()

    got = requests.get(f"{backend.url}/get-artifact", params={"run_uuid": run_id, "path": "dir/data.bin"})
    assert got.status_code == 200 and got.content == payload
    assert got.headers["Content-Type"] == "application/octet-stream"
    part = requests.get(
        f"{backend.url}/get-artifact", params={"run_id": run_id, "path": "dir/data.bin"}, headers={"Range": "bytes=10-19"}
    )
    assert part.status_code == 206 and part.content == payload[10:20]

    listing = requests.get(f"{backend.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}).json()
    assert listing["root_uri"] == run.info.artifact_uri
    assert sorted(listing["files"], key=lambda f: f["path"]) == [
        {"path": "dir", "is_dir": True},
        {"path": "hello.txt", "is_dir": False, "file_size": 11},
    ]
    assert sorted(gql_list(backend.url, run_id), key=lambda f: f["path"]) == [
        {"path": "dir", "isDir": True, "fileSize": "0"},
        {"path": "hello.txt", "isDir": False, "fileSize": "11"},
    ]
    assert gql_list(backend.url, run_id, "dir") == [
        {"path": "dir/data.bin", "isDir": False, "fileSize": str(len(payload))}
    ]
    # The official client reads what the UI uploaded (through the server when proxied,
    # from the store itself otherwise, which it can reach only for local roots here).
    if backend.mode == "proxied" or is_local(run.info.artifact_uri):
        assert sorted(f.path for f in client.list_artifacts(run_id)) == ["dir", "hello.txt"]


def test_logged_model_artifacts(model_backend, tmp_path):
    backend = model_backend
    client = MlflowClient(backend.url)
    exp = client.create_experiment("ui-models")
    model = client.create_logged_model(exp)
    assert is_local(model.artifact_location) or model.artifact_location.startswith("mlflow-artifacts:")
    src = tmp_path / "m"
    (src / "sub").mkdir(parents=True)
    (src / "MLmodel").write_text(f"model_id: {model.model_id}\n")
    (src / "sub/w.bin").write_bytes(b"\x07" * 33)
    client.log_model_artifacts(model.model_id, str(src))
    base = f"{backend.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts"
    body = requests.get(f"{base}/directories").json()
    assert body["root_uri"] == model.artifact_location
    assert sorted(f["path"] for f in body["files"]) == ["MLmodel", "sub"]
    sub = requests.get(f"{base}/directories", params={"artifact_directory_path": "sub"}).json()
    assert sub["files"] == [{"path": "sub/w.bin", "is_dir": False, "file_size": 33}]
    r = requests.get(f"{base}/files", params={"artifact_file_path": "MLmodel"})
    assert r.status_code == 200 and model.model_id in r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    r = requests.get(f"{base}/files", params={"artifact_file_path": "sub/w.bin"})
    assert r.content == b"\x07" * 33
