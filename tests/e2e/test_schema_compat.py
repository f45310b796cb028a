"""Two-way SQLite schema compatibility with the Python `mlflow server` 3.17.2, both really
started on the same file, and refusal of a database at another schema revision."""

import hashlib
import math
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType

from e2e_support import ServerProcess, backend_choice, free_port, our_binary, server_command, unique_name

# SQLite files; the PostgreSQL and MariaDB versions are in tests/db/test_db_interop.py.
pytestmark = [
    pytest.mark.ours_only,
    pytest.mark.skipif(backend_choice() != "sqlite", reason="SQLite store only (see tests/db)"),
]

T0 = 1_650_000_000_000


def fill(url):
    """Experiments with tags, runs with params/metrics over steps/tags/inputs, a deleted run,
    a deleted experiment; returns nothing, the snapshot is what counts."""
    c = MlflowClient(tracking_uri=url)
    a = c.create_experiment(unique_name("compat-a"), tags={"team": "vision", "note": "é ü 漢"})
    b = c.create_experiment(unique_name("compat-b"), artifact_location="mlflow-artifacts:/custom/b")
    gone = c.create_experiment(unique_name("compat-gone"), tags={"k": "v"})
    c.set_experiment_tag(b, "stage", "dev")

    r1 = c.create_run(a, run_name="first", start_time=T0, tags={"t1": "x"}).info.run_id
    for step in range(5):
        c.log_metric(r1, "loss", 1.0 / (step + 1), timestamp=T0 + step, step=step)
        c.log_metric(r1, "acc", step / 10, timestamp=T0 + step, step=step)
    c.log_batch(
        r1,
        metrics=[
            Metric("nan", float("nan"), T0, 0),
            Metric("pinf", float("inf"), T0, 0),
            Metric("ninf", float("-inf"), T0, 0),
        ],
        params=[Param("lr", "0.01"), Param("layers", "3"), Param("long", "x" * 5000)],
        tags=[RunTag("owner", "alice"), RunTag("multi", "line1\nline2")],
    )
    c.set_tag(r1, "mlflow.note.content", "a note")
    c.log_inputs(
        r1,
        datasets=[
            DatasetInput(
                Dataset(name="ds", digest="abc123de", source_type="code", source='{"x": 1}', schema="{}", profile="{}"),
                tags=[InputTag("mlflow.data.context", "training")],
            )
        ],
    )
    c.set_terminated(r1, status="FINISHED", end_time=T0 + 10_000)

    child = c.create_run(a, run_name="child", start_time=T0 + 1, tags={"mlflow.parentRunId": r1}).info.run_id
    c.log_metric(child, "acc", 0.5, timestamp=T0 + 2, step=0)
    c.set_terminated(child, status="FAILED", end_time=T0 + 20_000)

    deleted = c.create_run(a, run_name="deleted", start_time=T0 + 2).info.run_id
    c.log_param(deleted, "p", "1")
    c.delete_run(deleted)

    rb = c.create_run(b, start_time=T0 + 3).info.run_id  # generated name, still RUNNING
    c.log_metric(rb, "m", 3.0, timestamp=T0, step=7)

    rg = c.create_run(gone, run_name="in-deleted-exp", start_time=T0 + 4).info.run_id
    c.log_metric(rg, "m", 1.0, timestamp=T0, step=0)
    c.delete_experiment(gone)


def _num(v):
    return "NaN" if isinstance(v, float) and math.isnan(v) else v


def snapshot(url):
    """Everything the client can see, in a comparable form."""
    c = MlflowClient(tracking_uri=url)
    exps = {}
    for e in c.search_experiments(view_type=ViewType.ALL, max_results=1000):
        runs = {}
        for r in c.search_runs([e.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
            rid = r.info.run_id
            fetched = c.get_run(rid)
            assert fetched.info.run_id == rid
            histories = {
                k: sorted((m.step, m.timestamp, _num(m.value)) for m in c.get_metric_history(rid, k))
                for k in fetched.data.metrics
            }
            runs[rid] = {
                "run_name": r.info.run_name,
                "experiment_id": r.info.experiment_id,
                "user_id": r.info.user_id,
                "status": r.info.status,
                "start_time": r.info.start_time,
                "end_time": r.info.end_time,
                "lifecycle_stage": r.info.lifecycle_stage,
                "artifact_uri": r.info.artifact_uri,
                "params": fetched.data.params,
                "metrics": {k: _num(v) for k, v in fetched.data.metrics.items()},
                "tags": fetched.data.tags,
                "histories": histories,
                "inputs": sorted(
                    (
                        d.dataset.name,
                        d.dataset.digest,
                        d.dataset.source_type,
                        d.dataset.source,
                        d.dataset.schema,
                        d.dataset.profile,
                        tuple(sorted((t.key, t.value) for t in d.tags)),
                    )
                    for d in fetched.inputs.dataset_inputs
                ),
                "search_view": (r.data.params, {k: _num(v) for k, v in r.data.metrics.items()}, r.data.tags),
            }
        exps[e.experiment_id] = {
            "name": e.name,
            "lifecycle_stage": e.lifecycle_stage,
            "artifact_location": e.artifact_location,
            "tags": e.tags,
            "creation_time": e.creation_time,
            "last_update_time": e.last_update_time,
            "runs": runs,
        }
        got = c.get_experiment(e.experiment_id)
        assert (got.name, got.lifecycle_stage) == (e.name, e.lifecycle_stage)
    return exps


def schema_of(db_path):
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        cols = {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')] for t in tables}
        version = con.execute("SELECT version_num FROM alembic_version").fetchall()
        return cols, version
    finally:
        con.close()


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_same(expected, actual):
    """Compares two snapshots and reports every difference at once."""
    diffs = []
    if set(actual) != set(expected):
        diffs.append(f"experiment ids: expected {sorted(expected)}, got {sorted(actual)}")
    for eid, exp in expected.items():
        got = actual.get(eid)
        if got is None:
            continue
        for field in ("name", "lifecycle_stage", "artifact_location", "tags", "creation_time", "last_update_time"):
            if got[field] != exp[field]:
                diffs.append(f"experiment {eid} {field}: expected {exp[field]!r}, got {got[field]!r}")
        if set(got["runs"]) != set(exp["runs"]):
            diffs.append(f"experiment {eid} run ids: expected {sorted(exp['runs'])}, got {sorted(got['runs'])}")
        for rid, run in exp["runs"].items():
            other = got["runs"].get(rid)
            if other is None:
                continue
            for field, value in run.items():
                if other[field] != value:
                    diffs.append(
                        f"run {run['run_name']} ({rid}) {field}: expected {value!r:.300}, got {other[field]!r:.300}"
                    )
    assert not diffs, f"{len(diffs)} differences:\n" + "\n".join(diffs)


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="mlflow-compat-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def python_filled(workdir):
    """A database created and filled by the Python server, with its snapshot and schema."""
    db = workdir / "python.db"
    srv = ServerProcess("python", workdir / "py-fill", db_path=db)
    try:
        fill(srv.url)
        snap = snapshot(srv.url)
    finally:
        srv.stop()
    return SimpleNamespace(db=db, snapshot=snap, schema=schema_of(db))


def test_python_db_served_by_ours(python_filled, workdir):
    db = workdir / "py-for-ours.db"
    shutil.copy(python_filled.db, db)
    before_schema = schema_of(db)
    srv = ServerProcess(our_binary(), workdir / "ours-read", db_path=db)
    try:
        snap = snapshot(srv.url)
        assert len(snap) >= 4
        assert_same(python_filled.snapshot, snap)
        # Ours can keep writing to it.
        c = MlflowClient(tracking_uri=srv.url)
        eid = next(e for e, x in snap.items() if x["name"].startswith("compat-a"))
        rid = c.create_run(eid).info.run_id
        c.log_metric(rid, "after", 1.0)
        assert c.get_run(rid).data.metrics == {"after": 1.0}
    finally:
        srv.stop()
    assert schema_of(db) == before_schema, "our server changed the schema of a Python-created database"


def test_ours_db_served_by_python(python_filled, workdir):
    db = workdir / "ours.db"
    ours = ServerProcess(our_binary(), workdir / "ours-fill", db_path=db)
    try:
        fill(ours.url)
        expected = snapshot(ours.url)
    finally:
        ours.stop()
    assert schema_of(db) == python_filled.schema, "tables/columns/revision differ from what MLflow creates"

    py = ServerProcess("python", workdir / "py-read", db_path=db)
    try:
        log = py.log_path.read_text(errors="replace")
        assert "Creating initial MLflow database tables" not in log, "Python did not recognise the database"
        actual = snapshot(py.url)
        assert_same(expected, actual)
        # Python can keep writing to it, too.
        c = MlflowClient(tracking_uri=py.url)
        eid = c.create_experiment(unique_name("python-after"))
        rid = c.create_run(eid).info.run_id
        c.log_metric(rid, "after", 2.0)
        assert c.get_run(rid).data.metrics == {"after": 2.0}
    finally:
        py.stop()
    assert schema_of(db)[1] == python_filled.schema[1]


def test_foreign_revision_refused_untouched(python_filled, workdir):
    db = workdir / "foreign.db"
    shutil.copy(python_filled.db, db)
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num='abc123'")
    con.commit()
    con.close()
    digest = sha256(db)

    tmp = workdir / "foreign-run"
    tmp.mkdir()
    cmd = server_command(our_binary(), free_port(), f"sqlite:///{db}", tmp / "mlartifacts")
    start = time.time()
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=30)
    elapsed = time.time() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"server accepted a database at revision abc123:\n{output[-2000:]}"
    assert elapsed < 10, f"took {elapsed:.1f}s to refuse"
    assert "abc123" in output, output[-2000:]
    assert "mlflow db upgrade" in output, output[-2000:]
    assert sha256(db) == digest, "the refused database was modified"
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
