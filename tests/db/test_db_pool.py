"""How many connections one server process opens to PostgreSQL / MariaDB: `--db-pool-size`
(or `MLFLOW_DB_POOL_SIZE`) first, then the Python server's `MLFLOW_SQLALCHEMYSTORE_POOL_SIZE`
+ `MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW`, else twice `--workers` (4 to 64).

The test holds a lock on the `runs` table, so every run lookup waits inside the database with
its connection taken; 16 such requests make the pool grow to its limit and no further. The
database's own view of its sessions is the measure. Once the lock goes, every request must
succeed: waiting for a connection is not an error."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from e2e_support import MY_ADMIN, PG_ADMIN, Database, ServerProcess, our_binary, unique_name

API = "/api/2.0/mlflow"
CLIENTS = 16


def sessions(db):
    """Connections open to the test database, the asking one excluded."""
    if db.backend == "postgresql":
        rows = db._admin(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db.name}'")
    else:
        rows = db._admin(f"SELECT count(*) FROM information_schema.processlist WHERE db = '{db.name}'")
    return int(rows[0][0])


class TableLock:
    """Holds an exclusive lock on `runs` until released: readers block on it."""

    def __init__(self, db):
        if db.backend == "postgresql":
            import psycopg2

            self.con = psycopg2.connect(dbname=db.name, connect_timeout=10, **PG_ADMIN)
            self.con.cursor().execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        else:
            import pymysql

            # The lock's own session must not be counted as one of the server's.
            self.con = pymysql.connect(database=db.name, autocommit=True, connect_timeout=10, **MY_ADMIN)
            self.con.cursor().execute("LOCK TABLES runs WRITE")
        self.backend = db.backend

    def release(self):
        if self.backend == "postgresql":
            self.con.rollback()
        else:
            self.con.cursor().execute("UNLOCK TABLES")
        self.con.close()


CASES = [
    # (extra args, extra environment, connections expected)
    (["--db-pool-size", "3"], {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "20"}, 3),
    ([], {"MLFLOW_DB_POOL_SIZE": "5"}, 5),
    ([], {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "2", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "4"}, 6),
    (["--workers", "2"], {}, 4),
    (["--db-pool-size", "12"], {}, 12),
]


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
@pytest.mark.parametrize("args,env,expected", CASES, ids=["flag-wins", "env", "sqlalchemy-env", "workers", "flag-12"])
def test_pool_grows_to_its_limit_and_no_further(backend, args, env, expected, workdir):
    db = Database(backend, prefix="mlflow_pool")
    server = None
    lock = None
    try:
        clean_env = {
            "MLFLOW_DB_POOL_SIZE": None,
            "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": None,
            "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": None,
            **env,
        }
        server = ServerProcess(our_binary(), workdir / "s", backend_uri=db.uri, extra_env=clean_env, extra_args=args)
        s = requests.Session()
        r = s.post(server.url + API + "/experiments/create", json={"name": unique_name("pool")}, timeout=60)
        assert r.status_code == 200, r.text
        eid = r.json()["experiment_id"]
        r = s.post(server.url + API + "/runs/create", json={"experiment_id": eid}, timeout=60)
        assert r.status_code == 200, r.text
        run_id = r.json()["run"]["info"]["run_id"]

        lock = TableLock(db)
        start = threading.Barrier(CLIENTS + 1, timeout=60)

        def get_run(_):
            start.wait()
            return requests.get(server.url + API + "/runs/get", params={"run_id": run_id}, timeout=60)

        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(get_run, i) for i in range(CLIENTS)]
            start.wait()
            # Wait until the pool stops growing (all connections busy, the rest queued), then
            # watch a little longer: it must not open more than its limit.
            seen, deadline, stable_since = 0, time.monotonic() + 8, time.monotonic()
            while time.monotonic() < deadline:
                now = sessions(db) - 1  # minus the lock's session
                if now != seen:
                    seen, stable_since = max(seen, now), time.monotonic()
                elif now >= expected and time.monotonic() - stable_since > 1.0:
                    break
                time.sleep(0.05)
            lock.release()
            lock = None
            responses = [f.result() for f in futures]
        assert seen == expected, f"{seen} connections open with {args} {env}; expected {expected}"
        assert [r.status_code for r in responses] == [200] * CLIENTS, [r.text for r in responses if r.status_code != 200]
    finally:
        if lock is not None:
            lock.release()
        if server is not None:
            server.stop()
        db.drop()


def test_pool_size_zero_is_refused(workdir):
    db = Database("postgresql", prefix="mlflow_pool")
    try:
        with pytest.raises(Exception):
            ServerProcess(
                our_binary(), workdir / "s", backend_uri=db.uri, extra_args=["--db-pool-size", "0"], health_timeout=5
            )
        log = next((workdir / "s").glob("server-*.log")).read_text()
        assert "--db-pool-size" in log and "0" in log, log
    finally:
        db.drop()
