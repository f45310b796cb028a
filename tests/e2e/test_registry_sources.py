"""A model version's `source` is hostile input. Only sources inside this server's own stores
are accepted (a logged model with its model_id, a run with its run_id, an mlflow-artifacts:
location inside the run's or model's own root, another registered version); everything else
(file://, absolute paths, traversal in any encoding, fragments, queries, backslashes, NUL,
remote URLs, mismatched ids) is refused with 400 INVALID_PARAMETER_VALUE. A canary file
outside the artifact root proves the server read nothing: its content never appears in a
response, its access time does not move, and no model version row is written."""

import os
import sqlite3
from pathlib import Path

import pytest
import requests

from e2e_support import unique_name

API = "/api/2.0/mlflow"
CANARY_TEXT = "canary-3f9c2b7e-do-not-read"


def api(server, method, path, **kw):
    return requests.request(method, f"{server.url}{API}{path}", timeout=30, **kw)


@pytest.fixture(scope="module")
def world(server):
    """An experiment with a run and a logged model, a registered model, and a canary file
    next to (outside) the artifact root, its atime set before its mtime so that any read
    would move it even under relatime."""
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
    name = unique_name("hostile")
    assert api(server, "POST", "/registered-models/create", json={"name": name}).status_code == 200
    canary = Path(server.tmp) / "canary.txt"
    canary.write_text(CANARY_TEXT)
    st = canary.stat()
    os.utime(canary, ns=(st.st_mtime_ns - 3_600_000_000_000, st.st_mtime_ns))
    return {
        "eid": eid,
        "run": run,
        "other": other,
        "model": model,
        "name": name,
        "canary": canary,
        "atime": canary.stat().st_atime_ns,
    }


def hostile_sources(w, server):
    run_id, canary = w["run"]["run_id"], w["canary"]
    root = w["run"]["artifact_uri"]  # mlflow-artifacts:/<exp>/<run>/artifacts
    dest = Path(server.tmp) / "mlartifacts"
    host = server.url.split("//", 1)[1]
    return [
        f"file://{canary}",
        str(canary),
        f"file://{dest}/../canary.txt",
        f"{dest}/{w['eid']}/{run_id}/artifacts/model",
        "file:///etc/passwd",
        "/proc/self/environ",
        "//proc/self/environ",
        f"runs:/{run_id}/../../../../{canary}",
        f"runs:/{run_id}/%2e%2e/%2e%2e/%2e%2e/canary.txt",
        f"runs:/{run_id}/%252e%252e/%252e%252e/canary.txt",
        f"runs:/{run_id}/%25252e%25252e/canary.txt",
        f"runs:/{run_id}/%c0%ae%c0%ae/canary.txt",
        f"runs:/{run_id}/model#/../../canary.txt",
        f"runs:/{run_id}/model?path=../../canary.txt",
        f"runs:/{run_id}\\..\\..\\canary.txt",
        f"runs:/{run_id}/a%5c..%5c..%5ccanary.txt",
        f"runs:/{run_id}/model%00.txt",
        f"runs://{host}/{run_id}/model",
        f"{root}/../../../canary.txt",
        f"{root}/..%2f..%2f..%2fcanary.txt",
        f"{root}/%2e%2e/%2e%2e/%2e%2e/canary.txt",
        f"mlflow-artifacts://{host}/{w['eid']}/{run_id}/artifacts/model",
        "mlflow-artifacts:/../canary.txt",
        f"mlflow-artifacts:/{w['eid']}/{w['other']['run_id']}/artifacts/model",
        f"http://{host}/api/2.0/mlflow-artifacts/artifacts/../../canary.txt",
        f"http://{host}/api/2.0/mlflow-artifacts/artifacts/{w['eid']}/{run_id}/artifacts/model",
        "https://example.com/model.pkl",
        "http://169.254.169.254/latest/meta-data/",
        "s3://bucket/model",
        "gs://bucket/model",
        "ftp://example.com/model",
        "hdfs:///tmp/model",
        "models:/m-deadbeef/../../canary.txt",
        "models://evil.example.com/m-deadbeef",
        f"models:/{w['name']}/latest/../../x",
        "C:\\Windows\\win.ini",
        "\\\\server\\share\\model",
        f" runs:/{run_id}/model",
        "runs:/" + run_id + "/" + "a" * 600,
    ]


def assert_rejected(r, canary_text=CANARY_TEXT):
    assert canary_text not in r.text
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text[:300]


@pytest.mark.ours_only
def test_hostile_sources_are_rejected_and_nothing_is_read(server, world):
    sources = hostile_sources(world, server)
    assert len(sources) >= 20
    run_id = world["run"]["run_id"]
    for source in sources:
        for extra in ({"run_id": run_id}, {}, {"model_id": world["model"]["model_id"]}):
            r = api(
                server,
                "POST",
                "/model-versions/create",
                json={"name": world["name"], "source": source, **extra},
            )
            assert_rejected(r)
    # No version was created, and the canary was never opened.
    r = api(server, "GET", "/model-versions/search", params={"filter": f"name = '{world['name']}'"})
    assert r.json().get("model_versions", []) == []
    # Reading the canary here would move its atime: compare metadata only.
    assert world["canary"].stat().st_atime_ns == world["atime"]
    assert world["canary"].stat().st_size == len(CANARY_TEXT)
    backend = getattr(server, "backend_uri", f"sqlite:///{server.db_path}")
    if backend.startswith("sqlite:///"):
        con = sqlite3.connect(backend[len("sqlite:///") :])
        try:
            rows = con.execute(
                "SELECT COUNT(*) FROM model_versions WHERE name = ?", (world["name"],)
            ).fetchone()
        finally:
            con.close()
        assert rows == (0,)


def test_ids_must_match_the_source(server, world):
    """Rejected by both servers: a runs:/ source needs its own run_id, a logged model its own
    model_id, and mlflow-artifacts: must lie inside the named run's root."""
    run, other, model = world["run"], world["other"], world["model"]
    cases = [
        {"source": f"runs:/{run['run_id']}/model"},
        {"source": f"runs:/{run['run_id']}/model", "run_id": other["run_id"]},
        {"source": f"runs:/{run['run_id']}/model", "model_id": model["model_id"]},
        {"source": f"models:/{model['model_id']}"},
        {"source": "models:/m-00000000000000000000000000000000", "model_id": "m-0000"},
        {"source": f"{other['artifact_uri']}/model", "run_id": run["run_id"]},
        {"source": f"{run['artifact_uri']}/../../x", "run_id": run["run_id"]},
        {"source": f"{run['artifact_uri']}/%2e%2e/%2e%2e/x", "run_id": run["run_id"]},
        {"source": f"file://{world['canary']}"},
        {"source": f"runs:/{run['run_id']}/../../canary", "run_id": run["run_id"]},
    ]
    for case in cases:
        r = api(server, "POST", "/model-versions/create", json={"name": world["name"], **case})
        assert_rejected(r)
    assert world["canary"].stat().st_atime_ns == world["atime"]


def test_sources_inside_this_server_are_accepted(server, world):
    run, model, name = world["run"], world["model"], world["name"]
    accepted = [
        ({"source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"]}, f"runs:/{run['run_id']}/model"),
        ({"source": f"{run['artifact_uri']}/model", "run_id": run["run_id"]}, f"{run['artifact_uri']}/model"),
        ({"source": f"models:/{model['model_id']}", "model_id": model["model_id"]}, model["artifact_uri"]),
        ({"source": f"{model['artifact_uri']}/MLmodel", "model_id": model["model_id"]}, f"{model['artifact_uri']}/MLmodel"),
    ]
    target = unique_name("accepted")
    assert api(server, "POST", "/registered-models/create", json={"name": target}).status_code == 200
    for i, (payload, download) in enumerate(accepted, start=1):
        r = api(server, "POST", "/model-versions/create", json={"name": target, **payload})
        assert r.status_code == 200, (payload, r.text)
        mv = r.json()["model_version"]
        assert mv["version"] == str(i) and mv["status"] == "READY"
        r = api(server, "GET", "/model-versions/get-download-uri", params={"name": target, "version": i})
        assert r.json()["artifact_uri"] == download
    # The logged model was linked to its registration.
    tags = api(server, "GET", f"/logged-models/{model['model_id']}").json()["model"]["info"]["tags"]
    assert any(t["key"] == "mlflow.modelVersions" and target in t["value"] for t in tags)
    # Copying a version (models:/<name>/<version>) resolves to the original's files.
    copy = unique_name("copy")
    api(server, "POST", "/registered-models/create", json={"name": copy})
    r = api(
        server,
        "POST",
        "/model-versions/create",
        json={"name": copy, "source": f"models:/{target}/3", "run_id": run["run_id"]},
    )
    assert r.status_code == 200, r.text
    r = api(server, "GET", "/model-versions/get-download-uri", params={"name": copy, "version": 1})
    assert r.json()["artifact_uri"] == model["artifact_uri"]
    assert name  # the hostile model stays empty; see the test above


def test_without_proxied_artifacts_only_the_runs_own_location(tmp_path):
    """With --no-serve-artifacts the client writes to the run's own artifact location, so a
    plain location inside it is a valid source; anything outside it, or traversal out of it,
    is refused, and the canary next to it is never read."""
    from e2e_support import ServerProcess, server_choice

    srv = ServerProcess(server_choice(), tmp_path / "noproxy", extra_env={"MLFLOW_SERVE_ARTIFACTS": "false"})
    try:
        canary = tmp_path / "canary.txt"
        canary.write_text(CANARY_TEXT)
        st = canary.stat()
        os.utime(canary, ns=(st.st_mtime_ns - 3_600_000_000_000, st.st_mtime_ns))
        atime = canary.stat().st_atime_ns
        eid = api(srv, "POST", "/experiments/create", json={"name": unique_name("np")}).json()[
            "experiment_id"
        ]
        run = api(srv, "POST", "/runs/create", json={"experiment_id": eid}).json()["run"]["info"]
        root = run["artifact_uri"]
        assert not root.startswith("mlflow-artifacts:"), root
        name = unique_name("noproxy")
        api(srv, "POST", "/registered-models/create", json={"name": name})
        ok = api(
            srv,
            "POST",
            "/model-versions/create",
            json={"name": name, "source": f"{root}/model", "run_id": run["run_id"]},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["model_version"]["source"] == f"{root}/model"
        for source in (
            str(canary),
            f"file://{canary}",
            f"{root}/../../../../canary.txt",
            f"{root}/%2e%2e/%2e%2e/canary.txt",
            f"mlflow-artifacts:/{eid}/{run['run_id']}/artifacts/model",
        ):
            r = api(
                srv,
                "POST",
                "/model-versions/create",
                json={"name": name, "source": source, "run_id": run["run_id"]},
            )
            assert_rejected(r)
        assert canary.stat().st_atime_ns == atime
    finally:
        srv.stop()
