"""`mlflow models serve` (our binary): the seed's registry-then-serve lines, MLflow's scoring
protocol and its errors, micro-batching under concurrency, dead workers, and the URIs it
resolves through the tracking server."""

import concurrent.futures
import io
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import requests
from conftest import BINARY, Scoring, serve_env
from models import FEATURES, log_fragile, log_sklearn

SEED_LINES = """\
set -euo pipefail
# Promote to staging
mlflow models transition-request create --name my-model --version 1 --stage Staging

# Promote to production after validation
mlflow models transition-request create --name my-model --version 1 --stage Production

# Load and run a model
mlflow models serve -m "models:/my-model/production" --port 8000
"""


@pytest.fixture(scope="module")
def registered(tracking):
    """`my-model` version 1: an sklearn model logged with the official client."""
    info, X = log_sklearn(tracking.url, registered_name="my-model")
    return info, X


@pytest.fixture(scope="module")
def served(tracking, registered, workdir):
    """models:/my-model/1 served with the local python (fast to start)."""
    srv = Scoring(
        ["-m", "models:/my-model/1", "--env-manager", "local"],
        serve_env(tracking.url, cache=workdir / "cache"),
        workdir,
    )
    yield srv
    srv.stop()


def python_predictions(uri, tracking_url, frame):
    """What the model predicts in Python, through the official client."""
    import mlflow

    mlflow.set_tracking_uri(tracking_url)
    return mlflow.pyfunc.load_model(uri).predict(frame).tolist()


def test_seed_registry_then_serve_line(tracking, registered, workdir):
    """The seed's lines as written (only the port is a free one here): the default env
    manager builds the model's virtualenv from its python_env.yaml (once; cached), and the
    served predictions equal the model's in Python."""
    _, X = registered
    script = SEED_LINES.replace("--port 8000", "--port {port}")
    srv = Scoring(script, serve_env(tracking.url, cache=workdir / "seed-cache"), workdir,
                  timeout=1500, shell=True)
    try:
        rows = X.head(5)
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")})
        proc = subprocess.run(
            ["curl", "-s", "-f", f"{srv.url}/invocations", "-H",
             "Content-Type: application/json", "-d", body],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr + srv.log()
        got = json.loads(proc.stdout)["predictions"]
        want = python_predictions("models:/my-model/Production", tracking.url, rows)
        assert got == pytest.approx(want, rel=1e-12)
    finally:
        srv.stop()


def test_every_format_gives_the_models_predictions(served, registered, tracking):
    _, X = registered
    rows = X.head(4)
    want = python_predictions("models:/my-model/1", tracking.url, rows)
    records = rows.to_dict(orient="records")
    for body in [
        {"dataframe_split": json.loads(rows.to_json(orient="split"))},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {c: rows[c].tolist() for c in FEATURES}},
        {"dataframe_split": rows.to_dict(orient="split"), "params": {}},
    ]:
        r = served.invoke(body)
        assert r.status_code == 200, (body, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["predictions"] == pytest.approx(want, rel=1e-12), body
    r = served.invoke(rows.to_csv(index=False), "text/csv")
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == pytest.approx(want, rel=1e-12)
    # Extra columns are ignored, as MLflow's schema enforcement does.
    extra = rows.assign(unused=1.0)
    r = served.invoke({"dataframe_split": extra.to_dict(orient="split")})
    assert r.json()["predictions"] == pytest.approx(want, rel=1e-12)


def test_ping_health_version(served):
    for path in ("/ping", "/health"):
        r = requests.get(served.url + path, timeout=10)
        assert (r.status_code, r.text) == (200, "\n")
    r = requests.get(served.url + "/version", timeout=10)
    assert (r.status_code, r.text) == (200, "3.17.2")
    assert requests.get(served.url + "/nope", timeout=10).status_code == 404


def test_bad_requests_get_mlflows_error_json(served):
    split = {"columns": ["tenure", "monthly_charges"], "data": [[1.0, 2.0]]}
    cases = [
        ({"dataframe_split": split}, 400, "INVALID_PARAMETER_VALUE",
         "Model is missing inputs ['support_calls']."),
        ({"dataframe_split": {"columns": FEATURES, "data": [["x", 1.0, 2.0]]}}, 400,
         "BAD_REQUEST", "Failed to convert column tenure to type 'float64'"),
        ([1, 2], 400, "BAD_REQUEST", "Received a list."),
        ({"foo": 1}, 400, "BAD_REQUEST", "Received dictionary with input fields: []."),
        ("{not json", 400, "BAD_REQUEST", "Ensure that input is a valid JSON formatted string."),
        ({"dataframe_split": [[1]]}, 400, "BAD_REQUEST",
         "Dataframe split format must be a dictionary. Got list."),
        # Reaches the model: MLflow's own error, with its stack trace.
        ({"dataframe_split": {"columns": FEATURES, "data": [[1.0, None, 2.0]]}}, 400,
         "BAD_REQUEST", "Encountered an unexpected error while evaluating the model."),
    ]
    for body, status, code, fragment in cases:
        r = served.invoke(body)
        assert r.status_code == status, (body, r.text)
        err = r.json()
        assert err["error_code"] == code, (body, err)
        assert fragment in err["message"], (body, err)
    r = served.invoke("x", "text/plain")
    assert r.status_code == 415
    assert "Got 'text/plain'" in r.text
    r = served.invoke("{}", "application/json; charset=latin-1")
    assert (r.status_code, r.text) == (415, "The scoring server only supports UTF-8")


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(served, registered, tracking):
    _, X = registered
    want = python_predictions("models:/my-model/1", tracking.url, X)

    def one(i):
        rows = X.iloc[i % len(X): i % len(X) + 1 + i % 3]
        r = served.invoke({"dataframe_split": rows.to_dict(orient="split")})
        assert r.status_code == 200, r.text
        return i, r.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for i, got in pool.map(one, range(200)):
            start = i % len(X)
            assert got == pytest.approx(want[start: start + 1 + i % 3], rel=1e-12), i


def test_a_worker_that_dies_is_restarted_and_no_request_is_lost(tracking, workdir):
    info = log_fragile(tracking.url)
    srv = Scoring(["-m", info.model_uri, "--env-manager", "local", "--workers", "1"],
                  serve_env(tracking.url, cache=workdir / "cache"), workdir)
    try:
        def call(x):
            return srv.invoke({"dataframe_split": {"columns": ["x"], "data": [[x]]}})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, [1.0, 2.0, -1.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
        for x, r in zip([1.0, 2.0, -1.0, 3.0, 4.0, 5.0, 6.0, 7.0], answers):
            if x == -1.0:
                assert r.status_code == 500, r.text
                assert r.json()["error_code"] == "INTERNAL_ERROR"
                assert "worker process died" in r.json()["message"]
            else:
                assert r.status_code == 200, (x, r.text)
                assert r.json()["predictions"] == [{"x": x * 2}] or r.json()["predictions"] == [x * 2]
        r = call(10.0)
        assert r.status_code == 200, r.text
        assert "a Python worker died" in srv.log()
    finally:
        srv.stop()


def test_uris_resolved_through_the_tracking_server(tracking, registered, workdir):
    """runs:/, models:/NAME@ALIAS, models:/MODEL_ID, mlflow-artifacts: and a local directory,
    with `mlflow models predict`."""
    from mlflow import MlflowClient

    info, X = registered
    client = MlflowClient(tracking_uri=tracking.url)
    client.set_registered_model_alias("my-model", "champion", "1")
    download = client.get_model_version_download_uri("my-model", "1")
    assert download.startswith("mlflow-artifacts:")
    rows = X.head(3)
    want = python_predictions("models:/my-model/1", tracking.url, rows)
    (workdir / "in.json").write_text(json.dumps({"dataframe_split": rows.to_dict(orient="split")}))
    env = serve_env(tracking.url, cache=workdir / "cache")
    for uri in [f"runs:/{info.run_id}/model", "models:/my-model@champion", info.model_uri,
                download, "models:/my-model/latest"]:
        proc = subprocess.run(
            [str(BINARY), "models", "predict", "-m", uri, "-i", str(workdir / "in.json"),
             "--env-manager", "local"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert proc.returncode == 0, (uri, proc.stderr)
        assert json.loads(proc.stdout)["predictions"] == pytest.approx(want, rel=1e-12), uri
    # A local copy, from the cache, read in place; CSV in, a file out.
    # The cache is shared by the session's tests: take this model's entry, not any entry.
    cached = next(
        p for p in (workdir / "cache").glob("*/model") if info.model_id in (p / "MLmodel").read_text()
    )
    (workdir / "in.csv").write_text(rows.to_csv(index=False))
    out = workdir / "out.json"
    proc = subprocess.run(
        [str(BINARY), "models", "predict", "-m", str(cached), "-i", str(workdir / "in.csv"),
         "-t", "csv", "-o", str(out), "--env-manager", "local"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["predictions"] == pytest.approx(want, rel=1e-12)


def test_download_cache_verifies_checksums(tracking, registered, workdir):
    info, X = registered
    cache = workdir / "checksum-cache"
    env = serve_env(tracking.url, cache=cache)
    (workdir / "one.json").write_text(
        json.dumps({"dataframe_split": X.head(1).to_dict(orient="split")}))

    def predict():
        return subprocess.run(
            [str(BINARY), "models", "predict", "-m", f"runs:/{info.run_id}/model", "-i",
             str(workdir / "one.json"), "--env-manager", "local"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )

    first = predict()
    assert first.returncode == 0, first.stderr
    assert "Downloading" in first.stderr
    [entry] = list(cache.iterdir())
    manifest = json.loads((entry / "manifest.json").read_text())
    names = {f["path"] for f in manifest["files"]}
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= names
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    again = predict()
    assert again.returncode == 0 and "Downloading" not in again.stderr, again.stderr
    # A cached file that changed is noticed and fetched again.
    (entry / "model" / "requirements.txt").write_text("tampered\n")
    third = predict()
    assert third.returncode == 0, third.stderr
    assert "Downloading" in third.stderr
    assert (entry / "model" / "requirements.txt").read_text() != "tampered\n"


def test_missing_things_are_one_clear_line(tracking, registered, workdir):
    info, _ = registered
    cases = [
        # No python on PATH at all.
        (["-m", f"runs:/{info.run_id}/model", "--env-manager", "local"],
         {"PATH": str(BINARY.parent)}, "needs Python"),
        (["-m", "models:/no-such-model/Production"], {}, "RESOURCE_DOES_NOT_EXIST"),
        (["-m", "models:/my-model/prod"], {}, "invalid model URI"),
        (["-m", str(workdir / "nowhere")], {}, "is not a directory"),
        (["-m", "s3://bucket/model"], {}, "s3:// is not supported"),
    ]
    for args, extra, fragment in cases:
        env = serve_env(tracking.url, cache=workdir / "cache")
        env.update(extra)
        proc = subprocess.run(
            [str(BINARY), "models", "serve", *args, "--port", "1"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1, (args, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
        assert fragment in lines[0], (args, lines[0])
