"""The URI spellings MLflow users have in their configs reach the database: driver suffixes,
default ports, unix sockets, query options."""

import os

import pytest
import requests

from e2e_support import Database, ServerProcess, our_binary

PG_SOCKET_DIR = "/var/run/postgresql"
MY_SOCKET = "/run/mysqld/mysqld.sock"

URIS = [
    ("postgresql", "postgres://postgres@127.0.0.1:5432/{db}", None),
    ("postgresql", "postgresql+pg8000://postgres:unused%40pw@localhost/{db}?connect_timeout=5", None),
    ("postgresql", "postgresql+psycopg://postgres@/{db}?host=" + PG_SOCKET_DIR, PG_SOCKET_DIR + "/.s.PGSQL.5432"),
    ("mysql", "mariadb+mariadbconnector://root@127.0.0.1/{db}?charset=utf8mb4", None),
    ("mysql", "mysql+mysqldb://root@/{db}?unix_socket=" + MY_SOCKET, MY_SOCKET),
]


@pytest.mark.parametrize("backend,template,socket", URIS, ids=[u[1].split("://")[0] + ("-socket" if u[2] else "") for u in URIS])
def test_uri_forms_connect(backend, template, socket, workdir):
    if socket and not os.path.exists(socket):
        pytest.skip(f"no socket at {socket} on this machine")
    db = Database(backend, prefix="mlflow_uri")
    try:
        srv = ServerProcess(our_binary(), workdir / "srv", backend_uri=template.format(db=db.name))
        try:
            r = requests.post(srv.url + "/api/2.0/mlflow/experiments/create", json={"name": "uri"}, timeout=30)
            assert r.status_code == 200, r.text
        finally:
            srv.stop()
        names = [tuple(r) for r in db.query("SELECT name FROM experiments ORDER BY experiment_id")]
        assert names == [("Default",), ("uri",)]
    finally:
        db.drop()
