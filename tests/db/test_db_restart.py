"""The database restarts under load: requests during the outage fail with 503
TEMPORARILY_UNAVAILABLE in MLflow's error JSON, and the server recovers by itself.

Runs on a private PostgreSQL cluster (initdb in a temporary folder, its own port), so stopping
it disturbs nobody else's database."""

import os
import pwd
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from e2e_support import ServerProcess, free_port, our_binary

API = "/api/2.0/mlflow"


def new_run(srv, name):
    s = requests.Session()
    eid = s.post(srv.url + API + "/experiments/create", json={"name": name}, timeout=30).json()["experiment_id"]
    return s.post(srv.url + API + "/runs/create", json={"experiment_id": eid}, timeout=30).json()["run"]["info"]["run_id"]


class MetricLoad:
    """`workers` threads logging metric `m` to one run, each with its own steps, until
    `stop()`, which returns one (time, status, error_code, step, seconds) per request; status
    -1 and the exception when no answer came."""

    def __init__(self, url, run_id, workers, pause=0.0):
        self.url, self.run_id, self.pause = url, run_id, pause
        self.results, self._lock, self._stop = [], threading.Lock(), threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(w,), daemon=True) for w in range(workers)]
        for t in self._threads:
            t.start()

    def _work(self, worker):
        session = requests.Session()
        step = worker * 1_000_000
        while not self._stop.is_set():
            step += 1
            started = time.time()
            try:
                r = session.post(self.url + API + "/runs/log-metric", timeout=60, json={
                    "run_id": self.run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": step})
                code = r.json().get("error_code") if r.status_code != 200 else None
                row = (time.time(), r.status_code, code, step, time.time() - started)
            except requests.RequestException as e:
                row = (time.time(), -1, repr(e), step, time.time() - started)
            with self._lock:
                self.results.append(row)
            if self.pause:
                time.sleep(self.pause)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        return self.results


def pg_bin(name):
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql (tests/db/setup.sh installs them)")
    return str(versions[-1] / name)


class PrivatePostgres:
    def __init__(self, root):
        self.dir = Path(root) / "pgdata"
        self.port = free_port()
        # initdb and postgres refuse to run as root: use the postgres account then.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        Path(root).mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
        self.run(pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
                        "CREATE DATABASE mlflow"], check=True, capture_output=True)
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def run(self, *cmd):
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True, timeout=120)

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(pg_bin("pg_ctl"), "-D", str(self.dir), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self):
        self.run(pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_pg(tmp_path):
    root = Path("/tmp") / f"mlflow-pg-{os.getpid()}-{time.time_ns()}"
    pg = PrivatePostgres(root)
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def test_database_restart_under_load(private_pg, tmp_path):
    srv = ServerProcess(our_binary(), tmp_path / "srv", backend_uri=private_pg.uri,
                        extra_env={"MLFLOW_DB_ACQUIRE_TIMEOUT": "2"})
    try:
        run_id = new_run(srv, "restart")
        load = MetricLoad(srv.url, run_id, workers=16, pause=0.01)
        time.sleep(2)
        down_at = time.time()
        private_pg.stop()
        time.sleep(5)
        private_pg.start()
        up_at = time.time()
        time.sleep(6)
        results = load.stop()

        before = [r for r in results if r[0] < down_at]
        during = [r for r in results if down_at <= r[0] <= up_at]
        after = [r for r in results if r[0] > up_at + 3]
        assert before and all(r[1] == 200 for r in before), before[-5:]
        failed = [r for r in during if r[1] != 200]
        assert failed, "no request failed while the database was down"
        assert all(r[1] == 503 and r[2] == "TEMPORARILY_UNAVAILABLE" for r in failed), failed[:5]
        # Each failure is answered within a few pool timeouts (2 s here), not queued behind
        # the other requests' timeouts.
        assert max(r[4] for r in failed) < 8, sorted(r[4] for r in failed)[-5:]
        assert len(after) > 10 and all(r[1] == 200 for r in after), [r for r in after if r[1] != 200][:5]

        # Every acknowledged metric is in the database: none was lost to the restart.
        acked = {r[3] for r in results if r[1] == 200}
        hist = requests.get(srv.url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": "m"},
                     timeout=60).json()["metrics"]
        assert acked <= {int(m["step"]) for m in hist}
        assert srv.proc.poll() is None, "the server exited"
    finally:
        srv.stop()


def test_mariadb_connections_killed_under_load(workdir):
    """MariaDB drops the server's connections (as on a restart or a failover) again and again
    under load: failures are 503s, and the server carries on by itself afterwards. Only this
    test's database's connections are killed, so the shared server is not disturbed."""
    from e2e_support import Database

    db = Database("mysql", prefix="mlflow_kill")
    srv = ServerProcess(our_binary(), workdir / "srv", backend_uri=db.uri, extra_env={"MLFLOW_DB_ACQUIRE_TIMEOUT": "2"})
    try:
        run_id = new_run(srv, "kill")
        load = MetricLoad(srv.url, run_id, workers=8)
        time.sleep(1)
        kills_until = time.time() + 3
        killed = 0
        while time.time() < kills_until:
            for (pid,) in db._admin(f"SELECT id FROM information_schema.processlist WHERE db = '{db.name}'"):
                try:
                    db._admin(f"KILL CONNECTION {int(pid)}")
                    killed += 1
                except Exception:
                    pass  # gone already
            time.sleep(0.2)
        calm = time.time()
        time.sleep(3)
        results = load.stop()
        assert killed > 0
        print(f"{killed} connections killed; statuses:", sorted({(r[1], r[2]) for r in results}, key=str))
        bad = [r for r in results if r[1] != 200 and not (r[1] == 503 and r[2] == "TEMPORARILY_UNAVAILABLE")]
        assert not bad, bad[:5]
        after = [r for r in results if r[0] > calm + 1]
        assert len(after) > 10 and all(r[1] == 200 for r in after), [r for r in after if r[1] != 200][:5]
        acked = {r[3] for r in results if r[1] == 200}
        hist = requests.get(srv.url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": "m"},
                            timeout=60).json()["metrics"]
        assert acked <= {int(m["step"]) for m in hist}
    finally:
        srv.stop()
        db.drop()
