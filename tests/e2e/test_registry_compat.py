"""Two-way compatibility of registry data with the Python `mlflow server` 3.17.2: the same
registry operations leave the same column values in the registry tables whichever server ran
them, and each server serves (and keeps writing to) what the other wrote."""

import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from e2e_support import ServerProcess, backend_choice, our_binary

pytestmark = [
    pytest.mark.ours_only,
    pytest.mark.skipif(backend_choice() != "sqlite", reason="SQLite store only"),
]

TABLES = {
    "registered_models": "name, description, workspace",
    "model_versions": "name, version, description, user_id, current_stage, source, run_id, "
    "status, status_message, run_link, storage_location, workspace",
    "registered_model_tags": "name, key, value, workspace",
    "model_version_tags": "name, version, key, value, workspace",
    "registered_model_aliases": "name, alias, version, workspace",
}


def fill(url):
    """Registry operations through the official client; returns the run id used."""
    c = MlflowClient(tracking_uri=url)
    eid = c.create_experiment("registry-compat")
    run_id = c.create_run(eid).info.run_id
    c.create_registered_model("compat-a", tags={"team": "vision"}, description="first model")
    c.create_registered_model("compat-b-old")
    for i in range(3):
        c.create_model_version(
            "compat-a", f"runs:/{run_id}/model", run_id=run_id, tags={"i": str(i)},
            description=f"v{i + 1}" if i else None,
        )
    c.create_model_version("compat-b-old", f"runs:/{run_id}/other", run_id=run_id)
    c.transition_model_version_stage("compat-a", "1", "Staging")
    c.transition_model_version_stage("compat-a", "2", "Production")
    c.transition_model_version_stage("compat-a", "1", "production", archive_existing_versions=True)
    c.set_registered_model_alias("compat-a", "champion", 1)
    c.set_registered_model_alias("compat-a", "gone", 3)
    c.delete_model_version("compat-a", "3")
    c.set_model_version_tag("compat-a", "2", "quality", "gold")
    c.set_registered_model_tag("compat-a", "note", "é ü 漢")
    c.update_model_version("compat-a", "2", description="second")
    c.rename_registered_model("compat-b-old", "compat-b")
    return run_id


def rows(db, run_id):
    """Registry rows without timestamps, the run id replaced by a placeholder."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {}
        for table, cols in TABLES.items():
            got = con.execute(f"SELECT {cols} FROM {table} ORDER BY {cols}").fetchall()
            out[table] = [
                tuple(v.replace(run_id, "<run>") if isinstance(v, str) else v for v in row)
                for row in got
            ]
        times = con.execute(
            "SELECT COUNT(*) FROM model_versions WHERE creation_time < 1000000000000 "
            "OR last_updated_time < creation_time"
        ).fetchone()
        assert times == (0,), "timestamps must be milliseconds"
        return out
    finally:
        con.close()


def view(url):
    """What the client sees of the registry."""
    c = MlflowClient(tracking_uri=url)
    out = {}
    for rm in c.search_registered_models(order_by=["name"]):
        got = c.get_registered_model(rm.name)
        out[rm.name] = {
            "description": got.description,
            "tags": got.tags,
            "aliases": got.aliases,
            "latest": sorted((v.current_stage, v.version) for v in got.latest_versions),
            "versions": sorted(
                (
                    v.version,
                    v.current_stage,
                    v.description,
                    v.status,
                    v.tags.get("i"),
                    re.sub(r"^runs:/\w+/", "runs:/<run>/", v.source),
                )
                for v in c.search_model_versions(f"name = '{rm.name}'")
            ),
        }
    with pytest.raises(MlflowException):
        c.get_model_version("compat-a", "3")
    return out


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="mlflow-regcompat-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def filled(binary, workdir, label):
    db = workdir / f"{label}.db"
    srv = ServerProcess(binary, workdir / label, db_path=db)
    try:
        run_id = fill(srv.url)
        seen = view(srv.url)
    finally:
        srv.stop()
    return db, run_id, seen


@pytest.fixture(scope="module")
def python_db(workdir):
    return filled("python", workdir, "python")


@pytest.fixture(scope="module")
def ours_db(workdir):
    return filled(our_binary(), workdir, "ours")


def test_same_rows_as_python(python_db, ours_db):
    py_rows = rows(python_db[0], python_db[1])
    our_rows = rows(ours_db[0], ours_db[1])
    for table in TABLES:
        assert our_rows[table] == py_rows[table], table
    assert ours_db[2] == python_db[2]


def test_each_serves_the_other(python_db, ours_db, workdir):
    for binary, (db, run_id, expected), label in (
        (our_binary(), python_db, "ours-reads-python"),
        ("python", ours_db, "python-reads-ours"),
    ):
        copy = workdir / f"{label}.db"
        shutil.copy(db, copy)
        srv = ServerProcess(binary, workdir / label, db_path=copy)
        try:
            assert view(srv.url) == expected, label
            c = MlflowClient(tracking_uri=srv.url)
            mv = c.create_model_version("compat-a", f"runs:/{run_id}/model", run_id=run_id)
            assert mv.version == "4", label
            c.transition_model_version_stage("compat-a", "4", "Staging")
            assert c.get_model_version_by_alias("compat-a", "champion").version == "1"
        finally:
            srv.stop()
