"""One basic-auth database shared by the Python server (`.venv/bin/mlflow server --app-name
basic-auth`) and ours, on the backend under test: users, password hashes and grants one server
wrote are used as they are by the other, both ways.

On MariaDB the Python server cannot create the auth database (MLflow 3.17.2's migrations name
two foreign keys fk_user_id), so there it only opens the one ours created."""

import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from e2e_support import backend_choice, is_oracle, our_binary
from test_auth import ADMIN_PASSWORD, PASSWORD, AuthServer, auth_db_uri

pytestmark = pytest.mark.ours_only


def app_client(url, monkeypatch, username="admin", password=ADMIN_PASSWORD):
    from mlflow.server import get_app_client

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return get_app_client("basic-auth", tracking_uri=url)


def can_log_in(url, username, password):
    r = requests.get(
        url + "/api/2.0/mlflow/experiments/search", params={"max_results": 1}, auth=(username, password), timeout=60
    )
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_auth_database_moves_both_ways_between_python_and_ours(monkeypatch):
    if is_oracle():
        pytest.skip("compares the two servers itself")
    backend = backend_choice()
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-e2e-auth-interop-"))
    auth_uri, auth_db = auth_db_uri(backend, tmp)
    python_creates = backend != "mysql"

    def start(binary, name):
        return AuthServer(binary, tmp / name, auth_uri, default_permission="READ")

    try:
        if python_creates:
            py = start("python", "py1")
            try:
                client = app_client(py.url, monkeypatch)
                client.create_user("made-by-python", PASSWORD)
                client.grant_user_permission("made-by-python", "experiment", "7", "EDIT")
                client.grant_user_permission("made-by-python", "registered_model", "shared-model", "DENY")
            finally:
                py.stop()

        ours = start(our_binary(), "ours")
        try:
            client = app_client(ours.url, monkeypatch)
            assert can_log_in(ours.url, "admin", ADMIN_PASSWORD)
            if python_creates:
                assert can_log_in(ours.url, "made-by-python", PASSWORD)
                assert not can_log_in(ours.url, "made-by-python", PASSWORD + "x")
                assert client.get_user_permission("made-by-python", "experiment", "7").permission == "EDIT"
                assert client.get_user_permission("made-by-python", "experiment", "8").permission == "READ"
                denied = client.get_user_permission("made-by-python", "registered_model", "shared-model")
                assert (denied.permission, denied.allowed) == ("DENY", False)
                client.update_user_password("made-by-python", "changed-by-rust-1")
            client.create_user("made-by-rust", PASSWORD)
            client.grant_user_permission("made-by-rust", "experiment", "9", "MANAGE")
        finally:
            ours.stop()

        py = start("python", "py2")
        try:
            client = app_client(py.url, monkeypatch)
            assert can_log_in(py.url, "made-by-rust", PASSWORD)
            assert not can_log_in(py.url, "made-by-rust", PASSWORD + "x")
            assert client.get_user("made-by-rust").is_admin is False
            assert client.get_user_permission("made-by-rust", "experiment", "9").permission == "MANAGE"
            if python_creates:
                assert can_log_in(py.url, "made-by-python", "changed-by-rust-1")
            client.delete_user("made-by-rust")
        finally:
            py.stop()
    finally:
        if auth_db is not None:
            auth_db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
