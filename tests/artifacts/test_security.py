"""Hostile artifact paths: every one is refused with a 4xx and touches nothing outside the
artifact root, and broken uploads never leave a partial file under the real name."""

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import quote

import requests

# Raw path suffixes, sent exactly as written (already percent-encoded where shown).
HOSTILE = [
    "..", "../canary.txt", "../../canary.txt", "a/../../canary.txt", "a/..", "./a", "a/./b",
    "%2e%2e/canary.txt", "%2E%2E/canary.txt", "%2e%2e%2fcanary.txt", "..%2fcanary.txt",
    "..%2F..%2Fcanary.txt", "%252e%252e/canary.txt", "%252e%252e%252fcanary.txt",
    "a/%2e%2e/%2e%2e/canary.txt", "%2fetc%2fpasswd", "%2F%2Fetc%2Fpasswd", "..%5ccanary.txt",
    "%5c..%5ccanary.txt", "a%5c..%5c..%5ccanary.txt", "C:%5cWindows", "c:/windows/win.ini",
    "a%3b/../../canary.txt", "..%3b/canary.txt", "a%3bb", "a%23b", "a%00b", "a%00/../canary.txt",
    "a%0d%0ab", "a%0ab", "a//b", "a/%2e/b", ".%2e/canary.txt", "%2e./canary.txt",
    "%c0%ae%c0%ae/canary.txt", "%252F..%252Fcanary.txt", "a/..%252fcanary.txt", "%20../canary.txt",
    "..%20/canary.txt", "a/.%20/b", "%2e%2e%5c%2e%2e%5ccanary.txt", "a/%252e%252e%252f%252e%252e",
]


def _digest(root):
    """Names and contents of every file below root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def raw_request(url_base, method, raw_path, body=b""):
    """Sends a request whose path is not normalised by the HTTP library."""
    host, port = url_base.removeprefix("http://").split(":")
    head = (
        f"{method} {raw_path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_hostile_paths_are_refused_everywhere(local_server):
    assert len(HOSTILE) >= 40
    server = local_server
    # The canary sits next to the artifact root; the sandbox is the server's whole directory.
    canary = server.dir / "canary.txt"
    canary.write_text("do not touch")
    (server.artifact_root / "0/run/artifacts").mkdir(parents=True)
    (server.artifact_root / "0/run/artifacts/ok.txt").write_text("ok")
    before = _digest(server.dir.parent / server.dir.name)
    base = "/api/2.0/mlflow-artifacts/artifacts"
    for p in HOSTILE:
        for method, path, body in [
            ("GET", f"{base}/{p}", b""),
            ("PUT", f"{base}/{p}", b"overwritten"),
            ("DELETE", f"{base}/{p}", b""),
            ("GET", f"{base}?path={p}", b""),
            ("GET", f"/ajax-api/2.0/mlflow-artifacts/artifacts/{p}", b""),
        ]:
            status, data = raw_request(server.url, method, path, body)
            assert 400 <= status < 500, (method, path, status, data[:300])
    after = _digest(server.dir)
    before.pop("server.log", None)
    after.pop("server.log", None)
    assert after == before
    assert canary.read_text() == "do not touch"
    assert (server.artifact_root / "0/run/artifacts/ok.txt").read_text() == "ok"


def test_symlink_out_of_the_root_is_refused(local_server):
    server = local_server
    outside = server.dir / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    server.artifact_root.mkdir(exist_ok=True)
    os.symlink(outside, server.artifact_root / "link")
    base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts"
    assert requests.get(f"{base}/link/secret.txt").status_code == 400
    assert requests.put(f"{base}/link/new.txt", data=b"x").status_code == 400
    assert requests.delete(f"{base}/link/secret.txt").status_code == 400
    assert requests.get(base, params={"path": "link"}).status_code == 400
    assert (outside / "secret.txt").read_text() == "secret"
    assert not (outside / "new.txt").exists()


def test_run_listing_stays_inside_the_run(local_server):
    import mlflow

    mlflow.set_tracking_uri(local_server.url)
    with mlflow.start_run() as run:
        mlflow.log_text("x", "a.txt")
    url = f"{local_server.url}/api/2.0/mlflow/artifacts/list"
    ok = requests.get(url, params={"run_id": run.info.run_id}).json()
    assert [f["path"] for f in ok["files"]] == ["a.txt"]
    for p in ["..", "../..", "%2e%2e", "/etc", "a/../.."]:
        r = requests.get(url, params={"run_id": run.info.run_id, "path": p})
        assert r.status_code == 400, (p, r.text)


def test_broken_upload_leaves_no_file(local_server):
    server = local_server
    host, port = server.url.removeprefix("http://").split(":")
    path = "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/partial.bin"
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".encode()
            + b"x" * 100_000
        )
    # The server must notice the closed connection and discard the upload.
    r = requests.get(server.url + path)
    assert r.status_code == 404
    leftovers = [p for p in server.artifact_root.rglob("*") if p.is_file()]
    assert leftovers == []


def test_download_headers_ranges_and_errors(local_server):
    base = f"{local_server.url}/api/2.0/mlflow-artifacts/artifacts"
    payload = bytes(range(256)) * 40
    assert requests.put(f"{base}/0/x/artifacts/data.bin", data=payload).status_code == 200
    r = requests.get(f"{base}/0/x/artifacts/data.bin")
    assert r.content == payload
    assert r.headers["Content-Length"] == str(len(payload))
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in r.headers["Content-Disposition"]
    r = requests.get(f"{base}/0/x/artifacts/data.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == payload[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(payload)}"
    r = requests.get(f"{base}/0/x/artifacts/data.bin", headers={"Range": "bytes=-5"})
    assert r.content == payload[-5:]
    assert requests.get(f"{base}/0/x/artifacts/data.bin", headers={"Range": "bytes=99999-"}).status_code == 400
    missing = requests.get(f"{base}/0/x/artifacts/nope.txt")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert requests.get(f"{base}/0/x").status_code == 400  # a directory
    assert requests.get(base, params={"path": "0/none"}).json() == {}
    listing = requests.get(base, params={"path": "0/x/artifacts"}).json()
    assert listing == {"files": [{"path": "data.bin", "is_dir": False, "file_size": len(payload)}]}
    assert requests.delete(f"{base}/0/x/artifacts/data.bin").status_code == 200
    assert requests.get(f"{base}/0/x/artifacts/data.bin").status_code == 404
    assert requests.put(f"{base}/", data=b"x").status_code == 400


def test_no_serve_artifacts(tmp_path):
    from conftest import Server

    server = Server(["--no-serve-artifacts"])
    try:
        r = requests.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": ""})
        assert r.status_code == 503
        info = requests.get(f"{server.url}/api/3.0/mlflow/server-info").json()
        assert info["artifact_serving_enabled"] is False
        exp = requests.get(f"{server.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}).json()
        assert exp["experiment"]["artifact_location"].endswith("/mlruns/0")
    finally:
        server.stop()


def test_quoted_names_round_trip(local_server):
    base = f"{local_server.url}/api/2.0/mlflow-artifacts/artifacts"
    name = "0/r/artifacts/with space & ü.txt"
    assert requests.put(f"{base}/{quote(name)}", data=b"ok").status_code == 200
    assert requests.get(f"{base}/{quote(name)}").content == b"ok"


def test_artifacts_only_serves_just_the_artifact_api():
    from conftest import Server

    server = Server(["--artifacts-only"])
    try:
        base = f"{server.url}/api/2.0/mlflow-artifacts/artifacts"
        assert requests.put(f"{base}/x/f.txt", data=b"ok").status_code == 200
        assert requests.get(f"{base}/x/f.txt").content == b"ok"
        r = requests.post(f"{server.url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
        assert r.status_code == 503
    finally:
        server.stop()


def test_experiment_artifact_location_is_honoured_and_checked(local_server):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(local_server.url)
    client = MlflowClient()
    default = client.get_experiment(client.create_experiment("default-location"))
    assert default.artifact_location == f"mlflow-artifacts:/{default.experiment_id}"
    given = client.get_experiment(client.create_experiment("given", artifact_location="s3://bucket/somewhere"))
    assert given.artifact_location == "s3://bucket/somewhere"
    for bad in ["runs:/abc/artifacts", "x" * 3000]:
        try:
            client.create_experiment("bad-" + bad[:5], artifact_location=bad)
        except MlflowException as e:
            assert e.error_code == "INVALID_PARAMETER_VALUE"
        else:
            raise AssertionError(f"accepted artifact_location {bad[:40]}")
