"""TLS to PostgreSQL when the URI asks for it (Debian's PostgreSQL has ssl = on with a
self-signed certificate): sslmode=require encrypts every connection, verify-full refuses a
certificate it cannot verify."""

import subprocess

import pytest
import requests

from e2e_support import Database, ServerProcess, free_port, our_binary, server_command


@pytest.fixture
def pg_db():
    db = Database("postgresql", prefix="mlflow_tls")
    if db._admin("SHOW ssl") != [("on",)]:
        db.drop()
        pytest.skip("this PostgreSQL server has ssl = off")
    yield db
    db.drop()


def test_sslmode_require_encrypts(pg_db, workdir):
    app = f"mlflow-tls-{pg_db.name[-6:]}"
    uri = f"postgresql://postgres:unused@127.0.0.1:5432/{pg_db.name}?sslmode=require&application_name={app}"
    srv = ServerProcess(our_binary(), workdir / "srv", backend_uri=uri)
    try:
        r = requests.post(srv.url + "/api/2.0/mlflow/experiments/create", json={"name": "tls"}, timeout=30)
        assert r.status_code == 200, r.text
        rows = pg_db._admin(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            f"WHERE a.application_name = '{app}'"
        )
        assert rows and all(ssl for (ssl,) in rows), rows
    finally:
        srv.stop()


def test_sslmode_verify_full_refuses_unverifiable_certificate(pg_db, workdir):
    uri = f"postgresql://postgres:pw-never-shown@127.0.0.1:5432/{pg_db.name}?sslmode=verify-full"
    cmd = server_command(our_binary(), free_port(), uri, workdir / "mlartifacts")
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert "pw-never-shown" not in output
