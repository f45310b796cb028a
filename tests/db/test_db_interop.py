"""Two-way compatibility with the Python `mlflow server` 3.17.2 on PostgreSQL and MariaDB, both
servers really started on the same database, and refusal of a database at another revision or
one that is not MLflow's, untouched. The SQLite version is tests/e2e/test_schema_compat.py,
whose fill/snapshot/compare helpers this reuses."""

import subprocess
import time

import pytest
from mlflow import MlflowClient

from e2e_support import Database, ServerProcess, free_port, our_binary, server_command, unique_name
from test_schema_compat import assert_same, fill, snapshot

BACKENDS = ["postgresql", "mysql"]

# Our extra index (see server/src/store/schema.rs): invisible to MLflow, left out of comparisons.
OUR_INDEX = "rs_index_runs_experiment_start_time"


def schema_of(db):
    """(columns, indexes, alembic revision) as the database describes them."""
    if db.backend == "postgresql":
        cols = db.query(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name"
        )
        idx = db.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            f"AND indexname <> '{OUR_INDEX}' ORDER BY indexname"
        )
        idx = [(n, d.replace(f" {db.name}.", " ")) for n, d in idx]
    else:
        cols = db.query(
            "SELECT table_name, column_name, column_type, is_nullable, column_default, "
            "collation_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "ORDER BY table_name, column_name"
        )
        idx = db.query(
            "SELECT table_name, index_name, seq_in_index, column_name, non_unique FROM "
            f"information_schema.statistics WHERE table_schema = DATABASE() AND index_name <> "
            f"'{OUR_INDEX}' ORDER BY table_name, index_name, seq_in_index"
        )
    rev = db.query("SELECT version_num FROM alembic_version")
    return [tuple(c) for c in cols], [tuple(i) for i in idx], [tuple(r) for r in rev]


@pytest.fixture(scope="module", params=BACKENDS)
def python_filled(request, tmp_path_factory):
    """A database created (`mlflow server` runs its migrations) and filled by the Python server."""
    db = Database(request.param, prefix="mlflow_interop")
    work = tmp_path_factory.mktemp(f"py-fill-{request.param}")
    try:
        srv = ServerProcess("python", work, backend_uri=db.uri)
        try:
            fill(srv.url)
            snap = snapshot(srv.url)
        finally:
            srv.stop()
        yield db, snap, schema_of(db)
    finally:
        db.drop()


def test_python_db_served_by_ours(python_filled, workdir):
    db, py_snapshot, py_schema = python_filled
    srv = ServerProcess(our_binary(), workdir / "ours", backend_uri=db.uri)
    try:
        snap = snapshot(srv.url)
        assert len(snap) >= 4
        assert_same(py_snapshot, snap)
        c = MlflowClient(tracking_uri=srv.url)
        eid = next(e for e, x in snap.items() if x["name"].startswith("compat-a"))
        rid = c.create_run(eid).info.run_id
        c.log_metric(rid, "after", 1.0)
        assert c.get_run(rid).data.metrics == {"after": 1.0}
    finally:
        srv.stop()
    assert schema_of(db) == py_schema, "our server changed the schema of a Python-created database"


def test_ours_db_served_by_python(python_filled, workdir):
    py_db, _, py_schema = python_filled
    db = Database(py_db.backend, prefix="mlflow_interop")
    try:
        ours = ServerProcess(our_binary(), workdir / "ours", backend_uri=db.uri)
        try:
            fill(ours.url)
            expected = snapshot(ours.url)
        finally:
            ours.stop()
        assert schema_of(db) == py_schema, "tables/columns/indexes/revision differ from what MLflow creates"

        py = ServerProcess("python", workdir / "py", backend_uri=db.uri)
        try:
            log = py.log_path.read_text(errors="replace")
            assert "Creating initial MLflow database tables" not in log, "Python did not recognise the database"
            assert_same(expected, snapshot(py.url))
            c = MlflowClient(tracking_uri=py.url)
            eid = c.create_experiment(unique_name("python-after"))
            rid = c.create_run(eid).info.run_id
            c.log_metric(rid, "after", 2.0)
            assert c.get_run(rid).data.metrics == {"after": 2.0}
        finally:
            py.stop()
        assert schema_of(db) == py_schema
    finally:
        db.drop()


def refused(db, workdir):
    """Starts our server on `db`, expecting it to refuse; returns its output."""
    cmd = server_command(our_binary(), free_port(), db.uri, workdir / "mlartifacts")
    start = time.time()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"server accepted the database:\n{output[-2000:]}"
    assert time.time() - start < 30
    return output


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_revision_refused_untouched(backend, workdir):
    db = Database(backend, prefix="mlflow_foreign")
    try:
        ours = ServerProcess(our_binary(), workdir / "create", backend_uri=db.uri)
        ours.stop()
        db.query("UPDATE alembic_version SET version_num = 'abc123'")
        before = schema_of(db), db.query("SELECT experiment_id, name FROM experiments")
        output = refused(db, workdir)
        assert "abc123" in output and "mlflow db upgrade" in output, output[-2000:]
        assert (schema_of(db), db.query("SELECT experiment_id, name FROM experiments")) == before
    finally:
        db.drop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_tables_refused_untouched(backend, workdir):
    db = Database(backend, prefix="mlflow_foreign")
    try:
        db.query("CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(50))")
        output = refused(db, workdir)
        assert "no MLflow schema" in output, output[-2000:]
        tables = db.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            + ("'public'" if backend == "postgresql" else "DATABASE()")
        )
        assert [tuple(t) for t in tables] == [("customers",)]
    finally:
        db.drop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_password_is_not_echoed(backend, workdir):
    """A URI with a password the server cannot use: the error names the problem, never the
    password itself."""
    db = Database(backend, prefix="mlflow_pw")
    try:
        secret = "s3cr%40t-Pa55"
        user = "nosuchuser"
        host = "127.0.0.1:5432" if backend == "postgresql" else "127.0.0.1:3306"
        scheme = "postgresql" if backend == "postgresql" else "mysql"
        uri = f"{scheme}://{user}:{secret}@{host}/{db.name}"
        cmd = server_command(our_binary(), free_port(), uri, workdir / "mlartifacts")
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=60)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert secret not in output and "s3cr@t" not in output, output[-2000:]
    finally:
        db.drop()
