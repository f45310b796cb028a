"""A write transaction that loses a lock conflict is run again by the server, whatever the
write. Here a second connection makes the server's set-experiment-tag transaction (a write
that had no retry before every write went through one path) the victim of a real deadlock on
PostgreSQL and MariaDB: the request still succeeds, and the tag is written once. (SQLite's
equivalent, a write lock held past the busy timeout, is a unit test in server/src/store/tx.rs.)"""

import threading
import time

import pytest
import requests

from e2e_support import MY_ADMIN, PG_ADMIN, Database, ServerProcess, our_binary, unique_name

API = "/api/2.0/mlflow"


@pytest.fixture(params=["postgresql", "mysql"])
def served(request, workdir):
    db = Database(request.param, prefix="mlflow_conflict")
    server = None
    try:
        server = ServerProcess(our_binary(), workdir / "s", backend_uri=db.uri)
        yield server, db
    finally:
        if server is not None:
            server.stop()
        db.drop()


def connect(db):
    """A connection of the test's own, in a transaction until it commits or rolls back."""
    if db.backend == "postgresql":
        import psycopg2

        return psycopg2.connect(dbname=db.name, connect_timeout=10, **PG_ADMIN)
    import pymysql

    return pymysql.connect(database=db.name, autocommit=False, connect_timeout=10, **MY_ADMIN)


def lock_waits(db):
    """How many of the database's sessions wait for a lock."""
    if db.backend == "postgresql":
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
    else:
        sql = (
            "SELECT count(*) FROM information_schema.innodb_trx t JOIN "
            "information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
            f"WHERE t.trx_state = 'LOCK WAIT' AND p.db = '{db.name}'"
        )
    return db.query(sql)[0][0]


def wait_for_lock_wait(db, result, timeout=20):
    """Until the server's write waits for a lock; fails if the server answers first."""
    deadline = time.monotonic() + timeout
    while lock_waits(db) < 1:
        if "response" in result:
            r = result["response"]
            pytest.fail(f"the server answered instead of waiting: {r.status_code} {r.text[:300]}")
        assert time.monotonic() < deadline, "the server's write never waited for the lock"
        time.sleep(0.02)


def test_a_deadlocked_write_is_run_again(served):
    server, db = served
    s = requests.Session()
    r = s.post(server.url + API + "/experiments/create", json={"name": unique_name("conflict")})
    assert r.status_code == 200, r.text
    eid = r.json()["experiment_id"]
    tag = {"experiment_id": eid, "key": "k", "value": "old"}
    assert s.post(server.url + API + "/experiments/set-experiment-tag", json=tag).status_code == 200
    key = "key" if db.backend == "postgresql" else "`key`"

    locker = connect(db)
    try:
        cur = locker.cursor()
        if db.backend == "postgresql":
            # The server's session (1 s) detects the deadlock first and so is its victim.
            cur.execute("SET LOCAL deadlock_timeout = '30s'")
            cur.execute("SELECT 1 FROM experiments WHERE experiment_id = %s FOR UPDATE", (eid,))
        else:
            # InnoDB rolls back the transaction that changed less: the locker changes rows
            # first (the experiment's, and some padding) so that the server's is the victim.
            cur.execute(
                "UPDATE experiments SET last_update_time = last_update_time + 1 "
                "WHERE experiment_id = %s",
                (eid,),
            )
            cur.executemany(
                f"INSERT INTO experiment_tags ({key}, value, experiment_id) VALUES (%s, 'x', 0)",
                [(f"pad-{i}",) for i in range(50)],
            )

        # The server's transaction deletes the old tag row, then waits to insert the new one
        # (its foreign key check needs the experiment row the locker holds).
        result = {}

        def set_tag():
            result["response"] = requests.post(
                server.url + API + "/experiments/set-experiment-tag",
                json={**tag, "value": "new"},
                timeout=120,
            )

        writer = threading.Thread(target=set_tag)
        writer.start()
        wait_for_lock_wait(db, result)
        # The locker now waits for the tag row the server deleted: a deadlock, which the
        # database breaks by rolling the server's transaction back. The locker gets the row.
        cur.execute(
            f"SELECT value FROM experiment_tags WHERE experiment_id = %s AND {key} = 'k' FOR UPDATE",
            (eid,),
        )
        assert [tuple(r) for r in cur.fetchall()] == [("old",)]
        # The server's retry waits for the locker's locks.
        wait_for_lock_wait(db, result)
    finally:
        locker.rollback()
        locker.close()
    writer.join(timeout=120)
    response = result["response"]
    assert response.status_code == 200, response.text
    rows = db.query(
        f"SELECT value FROM experiment_tags WHERE experiment_id = {int(eid)} AND {key} = 'k'"
    )
    assert [tuple(r) for r in rows] == [("new",)]
