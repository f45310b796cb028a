"""A model version's `source`: this server accepts every source MLflow 3.17.2 accepts (remote
object-store URIs, `runs:/` with its run_id, `models:/` forms, locations inside the run's or
logged model's artifact root) and refuses what it refuses (relative path references, hosts
other than the server's own storage, ids that do not own the source), with the same
400 INVALID_PARAMETER_VALUE. Both servers are held to that (MLFLOW_E2E_SERVER=python runs the
same expectations against the oracle).

Safety does not come from refusing: no request makes our server read or fetch what a source
names. A canary file outside the artifact store and a canary TCP listener prove it: the file's
access time never moves, its content never appears in a response, and the listener never
sees a connection, whatever is registered and whatever is asked about it afterwards."""

import os
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
import requests

from e2e_support import ServerProcess, is_oracle, server_choice, unique_name

API = "/api/2.0/mlflow"
CANARY_TEXT = "canary-3f9c2b7e-do-not-read"


def api(server, method, path, **kw):
    return requests.request(method, f"{server.url}{API}{path}", timeout=30, **kw)


def make_canary(path):
    """A file whose atime is set before its mtime, so that any read moves it even under
    relatime. Returns the atime to compare with."""
    path.write_text(CANARY_TEXT)
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 3_600_000_000_000, st.st_mtime_ns))
    return path.stat().st_atime_ns


@pytest.fixture(scope="module")
def world(server):
    """An experiment with two runs and a logged model, and a canary next to (outside) the
    artifact store."""
    eid = api(server, "POST", "/experiments/create", json={"name": unique_name("src")}).json()[
        "experiment_id"
    ]
    run = api(server, "POST", "/runs/create", json={"experiment_id": eid}).json()["run"]["info"]
    other = api(server, "POST", "/runs/create", json={"experiment_id": eid}).json()["run"]["info"]
    model = api(
        server,
        "POST",
        "/logged-models",
        json={"experiment_id": eid, "name": "model", "source_run_id": run["run_id"]},
    ).json()["model"]["info"]
    canary = Path(server.tmp) / "canary.txt"
    atime = make_canary(canary)
    return {"eid": eid, "run": run, "other": other, "model": model, "canary": canary, "atime": atime}


def new_model(server, prefix):
    name = unique_name(prefix)
    assert api(server, "POST", "/registered-models/create", json={"name": name}).status_code == 200
    return name


def create(server, name, **payload):
    return api(server, "POST", "/model-versions/create", json={"name": name, **payload})


def download_uri(server, name, version):
    r = api(server, "GET", "/model-versions/get-download-uri", params={"name": name, "version": version})
    assert r.status_code == 200, r.text
    return r.json()["artifact_uri"]


def version_count(server, name):
    r = api(server, "GET", "/model-versions/search", params={"filter": f"name = '{name}'"})
    return len(r.json().get("model_versions", []))


def test_sources_mlflow_accepts_are_accepted(server, world):
    run, model = world["run"], world["model"]
    run_id, model_id = run["run_id"], model["model_id"]
    # (payload, stored source, download URI)
    cases = [
        ({"source": "s3://ml-bucket/models/churn"}, None, None),
        ({"source": "gs://ml-bucket/models/churn"}, None, None),
        ({"source": "wasbs://models@account.blob.core.windows.net/churn"}, None, None),
        ({"source": "dbfs:/models/churn"}, None, None),
        ({"source": "s3://ml-bucket/models/churn", "run_id": run_id}, None, None),
        ({"source": f"runs:/{run_id}/model", "run_id": run_id}, None, None),
        # MLflow checks that run_id names the run of a runs:/ source, not that the run exists.
        ({"source": "runs:/0123456789abcdef/model", "run_id": "0123456789abcdef"}, None, None),
        ({"source": f"{run['artifact_uri']}/model", "run_id": run_id}, None, None),
        ({"source": f"{run['artifact_uri']}//model///", "run_id": run_id}, None, None),
        ({"source": f"models:/{model_id}", "model_id": model_id}, None, model["artifact_uri"]),
        ({"source": f"{model['artifact_uri']}/MLmodel", "model_id": model_id}, None, None),
        ({"source": "s3://ml-bucket/models/churn", "model_id": model_id}, None, None),
    ]
    name = new_model(server, "accepted")
    for i, (payload, stored, download) in enumerate(cases, start=1):
        r = create(server, name, **payload)
        assert r.status_code == 200, (payload, r.text)
        mv = r.json()["model_version"]
        assert mv["version"] == str(i) and mv["status"] == "READY"
        assert mv["source"] == (stored or payload["source"])
        assert download_uri(server, name, i) == (download or payload["source"])
    # A version registered from a logged model gets the model's run.
    assert create(server, name, source=f"models:/{model_id}", model_id=model_id).json()[
        "model_version"
    ]["run_id"] == run_id
    # The logged model was linked to its registrations.
    tags = api(server, "GET", f"/logged-models/{model_id}").json()["model"]["info"]["tags"]
    assert any(t["key"] == "mlflow.modelVersions" and name in t["value"] for t in tags)


def test_models_uris_resolve_to_a_version(server, world):
    run_id = world["run"]["run_id"]
    original = new_model(server, "original")
    assert create(server, original, source="s3://ml-bucket/v1", run_id=run_id).status_code == 200
    assert create(server, original, source="s3://ml-bucket/v2", run_id=run_id).status_code == 200
    api(
        server,
        "POST",
        "/model-versions/transition-stage",
        json={"name": original, "version": "1", "stage": "Staging", "archive_existing_versions": False},
    )
    api(server, "POST", "/registered-models/alias", json={"name": original, "alias": "champion", "version": "1"})
    copy = new_model(server, "copy")
    cases = [
        (f"models:/{original}/2", "2", "s3://ml-bucket/v2"),
        (f"models:/{original}/latest", "2", "s3://ml-bucket/v2"),
        (f"models:/{original}/Staging", "1", "s3://ml-bucket/v1"),
        (f"models:/{original}@champion", "1", "s3://ml-bucket/v1"),
    ]
    for i, (source, version, files) in enumerate(cases, start=1):
        r = create(server, copy, source=source)
        assert r.status_code == 200, (source, r.text)
        mv = r.json()["model_version"]
        assert mv["source"] == f"models:/{original}/{version}"
        assert mv["run_id"] == run_id
        assert download_uri(server, copy, i) == files
    # An explicit run_id must match the referenced version's.
    r = create(server, copy, source=f"models:/{original}/1", run_id=world["other"]["run_id"])
    assert r.status_code == 400
    r = create(server, copy, source=f"models:/{original}/9")
    assert r.status_code == 404


def test_sources_mlflow_refuses_are_refused(server, world):
    run, other, model, canary = world["run"], world["other"], world["model"], world["canary"]
    run_id, model_id = run["run_id"], model["model_id"]
    host = server.url.split("//", 1)[1]
    root = run["artifact_uri"]
    cases = [
        # relative path references, in any encoding, and paths that are not absolute
        {"source": "s3://ml-bucket/models/../../other"},
        {"source": "s3://ml-bucket/%2e%2e/%2e%2e/other"},
        {"source": "s3://ml-bucket/%252e%252e/other"},
        {"source": "s3://ml-bucket/./model"},
        {"source": "s3://ml-bucket"},
        {"source": "s3://ml-bucket/model?path=../../x"},
        {"source": "s3://ml-bucket/model%00.pkl"},
        {"source": f"runs:/{run_id}/../../../canary.txt", "run_id": run_id},
        {"source": f"{root}/../../../canary.txt", "run_id": run_id},
        {"source": f"{root}/%2e%2e/%2e%2e/canary.txt", "run_id": run_id},
        {"source": "C:\\Windows\\win.ini"},
        {"source": "\\\\server\\share\\model"},
        # hosts other than this server's own storage
        {"source": "https://example.com/model.pkl"},
        {"source": "http://169.254.169.254/latest/meta-data/"},
        {"source": f"http://{host}/api/2.0/mlflow-artifacts/artifacts/{world['eid']}/{run_id}/artifacts/model", "run_id": run_id},
        {"source": f"mlflow-artifacts://{host}/{world['eid']}/{run_id}/artifacts/model", "run_id": run_id},
        {"source": "ftp://example.com/model"},
        {"source": "hdfs:///tmp/model"},
        # ids that do not own the source
        {"source": f"runs:/{run_id}/model"},
        {"source": f"runs:/{run_id}/model", "run_id": other["run_id"]},
        {"source": f"runs:/{run_id}/model", "model_id": model_id},
        {"source": f"runs://{host}/{run_id}/model", "run_id": run_id},
        {"source": f"models:/{model_id}"},
        {"source": f"models:/{model_id}", "model_id": "m-00000000000000000000000000000000"},
        {"source": "models://evil.example.com/m-deadbeef", "model_id": "m-deadbeef"},
        {"source": f"{other['artifact_uri']}/model", "run_id": run_id},
        {"source": f"{root}/model"},
        {"source": f"{root}/model", "run_id": "0123456789abcdef"},
        {"source": "mlflow-artifacts:/models", "run_id": run_id},
        {"source": f"{root}/model", "model_id": model_id},
        # local paths outside the run's (proxied, so not local) artifact root
        {"source": str(canary)},
        {"source": str(canary), "run_id": run_id},
        {"source": f"file://{canary}", "run_id": run_id},
        {"source": f"file://{canary}", "model_id": model_id},
        {"source": "/proc/self/environ", "run_id": run_id},
        # a prompt version needs MLflow's placeholder
        {"source": "s3://ml-bucket/prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
    ]
    name = new_model(server, "refused")
    for payload in cases:
        r = create(server, name, **payload)
        assert CANARY_TEXT not in r.text
        assert r.status_code == 400, (payload, r.status_code, r.text[:300])
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (payload, r.text[:300])
    assert version_count(server, name) == 0
    assert canary.stat().st_atime_ns == world["atime"]
    backend = getattr(server, "backend_uri", "")
    if backend.startswith("sqlite:///"):
        con = sqlite3.connect(backend[len("sqlite:///") :])
        try:
            rows = con.execute("SELECT COUNT(*) FROM model_versions WHERE name = ?", (name,)).fetchone()
        finally:
            con.close()
        assert rows == (0,)


def test_file_uri_with_a_host_is_refused_as_bad_input(server, world):
    """`file://HOST/...` is refused with MLflow's message. MLflow answers it with 500; we answer
    400, on purpose: it is bad input, not a server fault (MLflow's own
    test_create_model_version_with_file_uri expects the 500)."""
    name = new_model(server, "filehost")
    r = create(server, name, source="file://123.456.789.123/path/to/source", run_id=world["run"]["run_id"])
    assert "is not a valid remote uri" in r.json()["message"], r.text
    assert r.status_code == (500 if is_oracle() else 400), r.text
    assert version_count(server, name) == 0


def test_prompt_versions_use_the_placeholder(server):
    name = new_model(server, "prompt")
    tags = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    r = create(server, name, source="dummy-source", tags=tags)
    assert r.status_code == 200, r.text


class CanaryListener:
    """A TCP listener on 127.0.0.1 that counts connections; nothing may ever connect."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def reads_of_a_version(srv, name, version):
    """Every request that could make a server follow a version's source."""
    yield api(srv, "GET", "/model-versions/get", params={"name": name, "version": version})
    yield api(srv, "GET", "/model-versions/get-download-uri", params={"name": name, "version": version})
    yield api(srv, "GET", "/model-versions/search", params={"filter": f"name = '{name}'"})
    yield api(srv, "GET", "/registered-models/get", params={"name": name})
    for path in ("MLmodel", "model.pkl", "../canary.txt"):
        yield requests.get(
            f"{srv.url}/model-versions/get-artifact",
            params={"name": name, "version": version, "path": path},
            timeout=30,
        )


@pytest.mark.ours_only
def test_no_source_is_ever_dereferenced(tmp_path):
    """Sources MLflow accepts can still name places outside this server's stores: a host the
    operator allowed, a symlink inside a run's local artifact root that points outside it.
    Registering them and then asking for their files touches neither."""
    listener = CanaryListener()
    srv = ServerProcess(
        server_choice(),
        tmp_path / "srv",
        extra_env={"MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES": "http", "MLFLOW_SERVE_ARTIFACTS": "false"},
    )
    try:
        canary = tmp_path / "canary.txt"
        atime = make_canary(canary)
        eid = api(srv, "POST", "/experiments/create", json={"name": unique_name("deref")}).json()["experiment_id"]
        run = api(srv, "POST", "/runs/create", json={"experiment_id": eid}).json()["run"]["info"]
        root = run["artifact_uri"]
        assert not root.startswith("mlflow-artifacts:"), root
        local_root = Path(root[len("file://"):] if root.startswith("file://") else root)
        local_root.mkdir(parents=True, exist_ok=True)
        (local_root / "link").symlink_to(canary)
        name = unique_name("deref")
        api(srv, "POST", "/registered-models/create", json={"name": name})
        # The symlink is inside the run's root as written; paths are compared lexically, and
        # the link is never followed.
        sources = [f"http://127.0.0.1:{listener.port}/model", f"{root}/link"]
        registered = []
        for source in sources:
            r = create(srv, name, source=source, run_id=run["run_id"])
            assert r.status_code == 200, (source, r.text)
            registered.append(r.json()["model_version"]["version"])
        for version in registered:
            for r in reads_of_a_version(srv, name, version):
                assert CANARY_TEXT not in r.text
                assert r.status_code < 500, (r.url, r.status_code, r.text[:200])
        listing = api(srv, "GET", "/artifacts/list", params={"run_id": run["run_id"]})
        assert CANARY_TEXT not in listing.text
        assert listener.connections == 0
        assert canary.stat().st_atime_ns == atime
    finally:
        srv.stop()
        listener.close()
