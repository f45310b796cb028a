"""End-to-end fixtures: one `mlflow server` per session on a free port with a fresh store,
driven by the official MLflow Python client.

MLFLOW_E2E_BACKEND selects the store: sqlite (default), postgresql or mysql (a fresh database
on the local server, dropped at the end of the session).

MLFLOW_E2E_SERVER selects the server: a path to our binary (default target/release/mlflow if
built, else target/debug/mlflow), or
the literal `python` to run the reference `mlflow server` from .venv as an oracle."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from e2e_support import (  # noqa: E402
    ServerProcess,
    backend_choice,
    is_oracle,
    new_store,
    server_choice,
    unique_name,
)

_SESSION_SERVER = None


@pytest.fixture(scope="session")
def server():
    global _SESSION_SERVER
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-e2e-"))
    uri, db = new_store(backend_choice(), tmp)
    try:
        srv = ServerProcess(server_choice(), tmp, backend_uri=uri)
        srv.database = db
        _SESSION_SERVER = srv
        try:
            yield srv
        finally:
            _SESSION_SERVER = None
            srv.stop()
    finally:
        if db is not None:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def _reset_client_state():
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    try:
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
    except Exception:
        pass
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
    os.environ.pop("MLFLOW_RUN_ID", None)


@pytest.fixture
def tracking(server, monkeypatch):
    """Points the fluent API and MlflowClient at the session server; returns the server."""
    import mlflow

    _reset_client_state()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    yield server
    _reset_client_state()


@pytest.fixture
def client(tracking):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking.url)


@pytest.fixture
def experiment_id(client):
    """A fresh, uniquely named experiment."""
    return client.create_experiment(unique_name("exp"))


def pytest_report_header(config):
    choice = server_choice()
    backend = f"mlflow e2e backend store: {backend_choice()}"
    if choice == "python":
        return [backend, "mlflow e2e server: the Python oracle (.venv/bin/mlflow server)"]
    try:
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(choice)))
    except OSError:
        built = "missing"
    return [backend, f"mlflow e2e server: {choice} (built {built})"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ours_only: checks only our Rust server (skipped when MLFLOW_E2E_SERVER=python)"
    )


def pytest_collection_modifyitems(config, items):
    if not is_oracle():
        return
    skip = pytest.mark.skip(reason="ours_only: not applicable to the Python oracle server")
    here = Path(__file__).resolve().parent
    for item in items:
        if "ours_only" in item.keywords and here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    here = Path(__file__).resolve().parent
    if (
        report.when == "call"
        and report.failed
        and _SESSION_SERVER is not None
        and here in Path(str(item.fspath)).resolve().parents
    ):
        report.sections.append(
            (f"server log tail ({_SESSION_SERVER.log_path})", _SESSION_SERVER.log_tail(60))
        )


@pytest.fixture
def traced(tracking, experiment_id, monkeypatch):
    """Synchronous trace export into a fresh experiment; returns the experiment id."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.tracing.reset()
    mlflow.set_experiment(experiment_id=experiment_id)
    yield experiment_id
    mlflow.tracing.reset()
