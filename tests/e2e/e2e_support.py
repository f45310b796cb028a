"""Helpers shared by the end-to-end tests (imported by conftest.py and the test modules;
a uniquely named module so it never collides with another suite's conftest)."""

import os
import signal
import socket
import threading
import subprocess
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
PY_MLFLOW = VENV / "bin" / "mlflow"
PYTHON = VENV / "bin" / "python"

# A server answering 5xx would make the client retry for minutes: fail fast instead.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


def default_binary():
    """target/release/mlflow if it was built, else target/debug/mlflow."""
    release = REPO / "target/release/mlflow"
    return str(release if release.exists() else REPO / "target/debug/mlflow")


def server_choice():
    return os.environ.get("MLFLOW_E2E_SERVER") or default_binary()


def is_oracle():
    return server_choice() == "python"


def our_binary():
    """Path of our binary, even when the session runs against the oracle."""
    choice = server_choice()
    return default_binary() if choice == "python" else choice


# --- backend databases -------------------------------------------------------------------
# MLFLOW_E2E_BACKEND selects the session server's store: sqlite (default), postgresql or mysql
# (MariaDB/MySQL). For the last two each session gets a fresh, uniquely named database on the
# local server (tests/db/setup.sh makes sure one runs), dropped afterwards.
PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres")
MY_ADMIN = dict(host="127.0.0.1", port=3306, user="root", password="")


def backend_choice():
    choice = (os.environ.get("MLFLOW_E2E_BACKEND") or "sqlite").lower()
    aliases = {"postgres": "postgresql", "pg": "postgresql", "mariadb": "mysql"}
    choice = aliases.get(choice, choice)
    if choice not in ("sqlite", "postgresql", "mysql"):
        raise ValueError(f"MLFLOW_E2E_BACKEND={choice!r}: expected sqlite, postgresql or mysql")
    return choice


class Database:
    """A fresh database on the local PostgreSQL or MariaDB server.

    `.uri` is the SQLAlchemy URI both servers accept (the Python server needs the driver
    spelled out: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which is not installed)."""

    def __init__(self, backend, prefix="mlflow_e2e"):
        self.backend = backend
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        if backend == "postgresql":
            a = PG_ADMIN
            self.uri = f"postgresql+psycopg2://{a['user']}@{a['host']}:{a['port']}/{self.name}"
        elif backend == "mysql":
            a = MY_ADMIN
            self.uri = f"mysql+pymysql://{a['user']}@{a['host']}:{a['port']}/{self.name}"
        else:
            raise ValueError(backend)
        self._admin(f"CREATE DATABASE {self.name}")

    def _admin(self, statement, dbname=None):
        if self.backend == "postgresql":
            import psycopg2

            con = psycopg2.connect(dbname=dbname or "postgres", connect_timeout=10, **PG_ADMIN)
            con.autocommit = True
        else:
            import pymysql

            con = pymysql.connect(database=dbname, autocommit=True, connect_timeout=10, **MY_ADMIN)
        try:
            with con.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            con.close()

    def query(self, statement):
        """Rows of one statement run inside this database."""
        return self._admin(statement, dbname=self.name)

    def drop(self):
        try:
            if self.backend == "postgresql":
                self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            else:
                self._admin(f"DROP DATABASE IF EXISTS {self.name}")
        except Exception as e:  # a leftover database is harmless; say so and go on
            print(f"could not drop test database {self.name}: {e}")


def new_store(backend, tmp):
    """(backend URI, database or None) for a fresh store of `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{Path(tmp) / 'mlflow.db'}", None
    db = Database(backend)
    return db.uri, db


_HANDED_OUT = set()
_PORTS_LOCK = threading.Lock()


def free_port():
    """A port nothing listens on, never the same one twice in this test process: the kernel
    may hand a just-closed port to the next bind, and servers started in parallel threads
    would then collide."""
    with _PORTS_LOCK:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def server_command(binary, port, backend_uri, artifacts_dest, extra_args=()):
    exe = str(PY_MLFLOW) if binary == "python" else binary
    cmd = [
        exe,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts_dest),
    ]
    if binary == "python":
        cmd += ["--workers", "1"]
    return cmd + list(extra_args)


class ServerProcess:
    """A running `mlflow server`; `.url`, `.tmp`, `.log_path`, `.db_path`."""

    def __init__(
        self, binary, tmp, db_path=None, health_timeout=None, backend_uri=None, extra_env=None, extra_args=(),
        health_path="/health",
    ):
        if health_timeout is None:
            # Ours must be healthy within 60 s; the Python oracle needs ~12 s on an idle machine
            # and much longer on a loaded one.
            health_timeout = 180 if binary == "python" else 60
        self.binary = binary
        self.health_path = health_path
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path) if db_path else self.tmp / "mlflow.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        env["NO_COLOR"] = "1"
        for name, value in (extra_env or {}).items():  # None removes a variable
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if binary == "python":
            env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
            # The reference server's default SQLAlchemy pool (5 + 10 overflow) times out with 64
            # concurrent clients ("QueuePool limit ... reached"); size it for the concurrency test.
            env.setdefault("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "64")
            env.setdefault("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "16")
        self.backend_uri = backend_uri or f"sqlite:///{self.db_path}"
        # Another process may take the chosen port between free_port() and the server's bind
        # (an outgoing connection's ephemeral port): then the server starts again on another.
        for attempt in range(3):
            cmd = server_command(binary, self.port, self.backend_uri, self.tmp / "mlartifacts", extra_args)
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.tmp,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            try:
                self._wait_healthy(health_timeout)
                return
            except Exception:
                port_taken = "Address already in use" in self.log_tail()
                self.stop()
                if attempt == 2 or not port_taken:
                    raise
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = self.tmp / f"server-{self.port}.log"
            self._log = open(self.log_path, "wb")

    def _wait_healthy(self, timeout):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before becoming healthy\n{self.log_tail()}"
                )
            try:
                r = requests.get(self.url + self.health_path, timeout=2)
                if r.status_code == 200 and r.text.strip() == "OK":
                    return
                last = f"{r.status_code} {r.text[:200]!r}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"{self.url}{self.health_path} not OK within {timeout}s (last: {last})\n{self.log_tail()}")

    def log_tail(self, lines=40):
        try:
            self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            # The Python server runs gunicorn/uvicorn children: signal the whole group we created.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        # Reap stragglers of the group (python workers) if any survived the leader.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode


def unique_name(prefix="e2e"):
    return f"{prefix}-{uuid.uuid4().hex}"
