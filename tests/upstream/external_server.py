"""The external server under test for MLflow's own REST tests (tests/upstream/run).

Our glue code only; MLflow's tests are materialised at run time by run_upstream.sh, and
external_server_plugin.py (the pytest hooks) installs what this module defines.
The upstream REST suites start their tracking server in one of three ways:

* ``initialize_backend_stores(uri, default_artifact_root=...)`` followed by
  ``with ServerThread(app, get_safe_port()) as url`` (in-process uvicorn thread);
* ``with _init_server(backend_uri, root_artifact_uri, extra_env=...) as url``
  (``python -m uvicorn mlflow.server.fastapi_app:app`` subprocess);
* ``with _launch_server(host, port, backend, root, destination)`` in
  tests/tracking/test_mlflow_artifacts.py (``mlflow server`` subprocess).

This plugin swaps all three for one launcher that starts::

    $SERVER_BIN server --host 127.0.0.1 --port P --backend-store-uri URI \
        [--default-artifact-root ROOT] --artifacts-destination DIR $SERVER_EXTRA_ARGS

in its own process group, waits for ``GET /health``, and on exit stops that group
(SIGTERM, then SIGKILL). ``initialize_backend_stores`` is replaced by a recorder,
so the stores the fixture asked for become the external server's flags and no
in-process server is ever started. ``get_safe_port`` hands out ports from
UPSTREAM_PORT_MIN..UPSTREAM_PORT_MAX only (default 5700-5799).

Environment:
  SERVER_BIN               executable under test (required)
  SERVER_EXTRA_ARGS        extra arguments after ours (shlex-split), e.g. "--workers 1"
  UPSTREAM_PORT_MIN/MAX    port range (default 5700/5799)
  UPSTREAM_START_TIMEOUT   seconds to wait for /health (default 180)
  UPSTREAM_DB              "fresh" (default): each server gets a new SQLite file that the
                           server under test creates itself (copied from a template the
                           same binary made once per session); "asis": keep the file the
                           upstream fixture pre-created with Python MLflow's migrations
  UPSTREAM_DESELECT        deselect list (default: deselect.txt beside this file)
  OUT_DIR                  where summary.txt, failed.txt, deselected.txt, no_server.txt
                           and server-logs/ (logs of servers alive during a failure) go
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

HOST = "127.0.0.1"
_HERE = Path(__file__).resolve().parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# --------------------------------------------------------------------------- ports


class _PortAllocator:
    """Round-robin over the allowed range, skipping ports something already listens on."""

    def __init__(self) -> None:
        lo = int(_env("UPSTREAM_PORT_MIN", "5700"))
        hi = int(_env("UPSTREAM_PORT_MAX", "5799"))
        worker = _env("PYTEST_XDIST_WORKER")  # gw0, gw1, ... when run under pytest-xdist
        if worker:
            count = int(_env("PYTEST_XDIST_WORKER_COUNT", "1"))
            index = int(worker[2:])
            span = (hi - lo + 1) // count
            lo, hi = lo + index * span, lo + (index + 1) * span - 1
        self.ports = list(range(lo, hi + 1))
        self.next = 0
        self.lock = threading.Lock()

    @staticmethod
    def _free(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
        return True

    def get(self) -> int:
        with self.lock:
            for _ in range(len(self.ports)):
                port = self.ports[self.next]
                self.next = (self.next + 1) % len(self.ports)
                if self._free(port):
                    return port
        raise RuntimeError(f"no free port in {self.ports[0]}-{self.ports[-1]}")


_ports: _PortAllocator | None = None


def get_safe_port() -> int:
    global _ports
    if _ports is None:
        _ports = _PortAllocator()
    return _ports.get()


# ------------------------------------------------------------------ bookkeeping


@dataclass
class _State:
    out_dir: Path
    log_dir: Path
    work_dir: Path
    current_nodeid: str = "<session>"
    server_seq: int = 0
    template: Path | None = None
    template_tried: bool = False


_state: _State | None = None
_live: list[ExternalServer] = []
_final: dict[str, str] = {}  # nodeid -> final outcome, filled by the plugin's report hook
_pending: dict | None = None  # last initialize_backend_stores() call, consumed by the next start
_server_used: set[str] = set()  # nodeids during whose call phase a server was alive


def _st() -> _State:
    global _state
    if _state is None:
        out = Path(_env("OUT_DIR") or tempfile.mkdtemp(prefix="upstream-out-")).resolve()
        work = Path(_env("UPSTREAM_WORK") or tempfile.mkdtemp(prefix="upstream-work-")).resolve()
        worker = _env("PYTEST_XDIST_WORKER", "main")
        work = work / worker
        work.mkdir(parents=True, exist_ok=True)
        log_dir = out / "server-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        _state = _State(out_dir=out, log_dir=log_dir, work_dir=work)
    return _state


def _sqlite_path(uri: str | None) -> Path | None:
    if not uri or not uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(uri).path)
    if uri.startswith("sqlite:////"):
        return Path(path)
    # sqlite:///relative.db -> urlparse path "/relative.db"
    return Path(path[1:]) if path.startswith("/") else Path(path)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


# ---------------------------------------------------------------------- server


class ExternalServer:
    """One run of $SERVER_BIN; start() returns its URL, stop() ends its process group."""

    def __init__(
        self,
        port: int | None = None,
        backend_uri: str | None = None,
        default_artifact_root: str | None = None,
        artifacts_destination: str | None = None,
        registry_uri: str | None = None,
        extra_env: dict | None = None,
        use_template: bool = True,
    ) -> None:
        st = _st()
        st.server_seq += 1
        self.seq = st.server_seq
        self.dir = st.work_dir / f"server-{self.seq:04d}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or get_safe_port()
        self.url = f"http://{HOST}:{self.port}"
        if backend_uri and urlparse(backend_uri).scheme in ("http", "https"):
            # Python's in-process server can use another server as its store (RestStore);
            # `mlflow server` cannot (the registry refuses http URIs): give it its own DB.
            backend_uri = None
        self.backend_uri = backend_uri or f"sqlite:///{self.dir / 'mlflow.db'}"
        self.default_artifact_root = default_artifact_root
        self.artifacts_destination = artifacts_destination or str(self.dir / "mlartifacts")
        self.registry_uri = registry_uri
        self.extra_env = {k: str(v) for k, v in (extra_env or {}).items()}
        self.use_template = use_template
        self.owner = st.current_nodeid
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.owner)[-150:]
        self.log_path = st.log_dir / f"{self.seq:04d}-{safe}.log"
        self.saw_failure = False
        self.tests: set[str] = {self.owner}  # tests that ran while this server was up
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [
            _env("SERVER_BIN"),
            "server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.backend_uri,
        ]
        if self.registry_uri and self.registry_uri != self.backend_uri:
            cmd += ["--registry-store-uri", self.registry_uri]
        if self.default_artifact_root:
            cmd += ["--default-artifact-root", self.default_artifact_root]
        cmd += ["--artifacts-destination", self.artifacts_destination]
        cmd += shlex.split(_env("SERVER_EXTRA_ARGS", "") or "")
        return cmd

    def _prepare_db(self) -> None:
        path = _sqlite_path(self.backend_uri)
        if path is None or (_env("UPSTREAM_DB", "fresh") == "asis"):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_sqlite(path)  # drop what Python MLflow pre-created; the server makes its own
        template = _template() if self.use_template else None
        if template is not None:
            shutil.copy2(template, path)

    def start(self) -> str:
        if not _env("SERVER_BIN"):
            raise RuntimeError("SERVER_BIN is not set")
        self._prepare_db()
        env = {**os.environ, **self.extra_env}
        cmd = self.command()
        _server_used.add(self.owner)
        with open(self.log_path, "ab") as log:
            log.write(f"# owner: {self.owner}\n# cmd: {shlex.join(cmd)}\n".encode())
            log.write(f"# extra_env: {self.extra_env}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=os.getcwd(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() ends workers/children too
            )
        _live.append(self)
        timeout = float(_env("UPSTREAM_START_TIMEOUT", "180"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.saw_failure = True
                self.stop()
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before /health answered:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self.url
            except OSError:
                pass
            time.sleep(0.1)
        self.saw_failure = True
        self.stop()
        raise RuntimeError(f"server not healthy after {timeout}s:\n{_tail(self.log_path)}")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=float(_env("UPSTREAM_STOP_TIMEOUT", "20")))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc is not None:
            # children that outlived the leader (same group id = leader's pid)
            _signal_group(proc.pid, signal.SIGKILL)
        if self in _live:
            _live.remove(self)
            _stopped.append(self)
        if _env("UPSTREAM_KEEP_SERVER_DIRS", "0") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
        _sweep_logs()


_stopped: list[ExternalServer] = []


def _sweep_logs(final: bool = False) -> None:
    """Delete logs of stopped servers once every test that saw them has passed or skipped.

    Upstream's conftest reports a test's setup/call/teardown only after its teardown, i.e.
    after a function-scoped server is gone, so the decision waits for the final reports.
    """
    keep_all = _env("UPSTREAM_KEEP_LOGS", "0") == "1"
    for server in list(_stopped):
        outcomes = [_final.get(t) for t in server.tests if not t.startswith("<")]
        if any(o == "failed" for o in outcomes) or server.saw_failure or keep_all:
            _stopped.remove(server)  # keep its log
        elif final or all(o is not None for o in outcomes):
            _stopped.remove(server)
            with contextlib.suppress(FileNotFoundError):
                server.log_path.unlink()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "<no log>"


def _template() -> Path | None:
    """A SQLite file the server under test initialised itself (made once per session)."""
    st = _st()
    if st.template_tried or _env("UPSTREAM_DB_TEMPLATE", "1") != "1":
        return st.template
    st.template_tried = True
    tdir = st.work_dir / "template"
    tdir.mkdir(parents=True, exist_ok=True)
    db = tdir / "mlflow.db"
    server = ExternalServer(backend_uri=f"sqlite:///{db}", use_template=False)
    server.owner = "<template>"
    try:
        server.start()
    except RuntimeError as e:
        sys.stderr.write(f"[upstream] template DB not made, servers start on empty files: {e}\n")
        return None
    # keep the run's dir (it is the template's home): stop without removing it
    proc = server.proc
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=float(_env("UPSTREAM_STOP_TIMEOUT", "20")))
    except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _signal_group(proc.pid, signal.SIGKILL)
    _live.remove(server)
    with contextlib.suppress(FileNotFoundError):
        server.log_path.unlink()
    if db.exists() and not Path(f"{db}-wal").exists():
        st.template = tdir / "template.db"
        shutil.copy2(db, st.template)
    else:
        sys.stderr.write("[upstream] template DB missing or has a WAL left; not using one\n")
    return st.template


# ------------------------------------------------------ replacements for upstream


def _record_backend_stores(
    backend_store_uri=None,
    registry_store_uri=None,
    default_artifact_root=None,
    workspace_store_uri=None,
    read_replica_backend_store_uri=None,
    **_ignored,
):
    """Stand-in for mlflow.server.handlers.initialize_backend_stores: remember, start nothing."""
    global _pending
    _pending = {
        "backend_uri": backend_store_uri,
        "registry_uri": registry_store_uri,
        "default_artifact_root": default_artifact_root,
    }


def _is_mlflow_app(app) -> bool:
    if app is None:
        return True
    if isinstance(app, str):
        return app in ("mlflow.server.fastapi_app:app", "mlflow.server:app")
    try:
        import mlflow.server
        import mlflow.server.fastapi_app

        return app is mlflow.server.fastapi_app.app or app is mlflow.server.app
    except Exception:
        return False


class ExternalServerThread:
    """Stand-in for tests.tracking.integration_test_utils.ServerThread(app, port)."""

    def __init__(self, app, port: int):
        if not _is_mlflow_app(app):
            pytest.fail(f"[upstream] ServerThread with a custom app ({app!r}) cannot be external")
        self.host = HOST
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.health_url = f"{self.url}/health"
        self._server: ExternalServer | None = None

    def start(self) -> None:
        global _pending
        cfg, _pending = (_pending or {}), None
        self._server = ExternalServer(
            port=self.port,
            backend_uri=cfg.get("backend_uri"),
            registry_uri=cfg.get("registry_uri"),
            default_artifact_root=cfg.get("default_artifact_root"),
        )
        self._server.start()

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def join(self, timeout=None) -> None:
        pass

    def is_alive(self) -> bool:
        return self._server is not None

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.shutdown()


@contextlib.contextmanager
def _external_init_server(
    backend_uri, root_artifact_uri, extra_env=None, app=None, server_type="fastapi"
):
    """Stand-in for tests.tracking.integration_test_utils._init_server."""
    if not _is_mlflow_app(app):
        pytest.fail(f"[upstream] _init_server with a custom app ({app!r}) cannot be external")
    server = ExternalServer(
        backend_uri=backend_uri, default_artifact_root=root_artifact_uri, extra_env=extra_env
    )
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def _external_launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination):
    """Stand-in for test_mlflow_artifacts._launch_server (it ran `mlflow server`)."""
    server = ExternalServer(
        port=port,
        backend_uri=backend_store_uri,
        default_artifact_root=default_artifact_root,
        artifacts_destination=artifacts_destination,
    )
    try:
        server.start()
        yield server.proc
    finally:
        server.stop()


_MODULE_PATCHES = {
    "ServerThread": ExternalServerThread,
    "_init_server": _external_init_server,
    "initialize_backend_stores": _record_backend_stores,
    "get_safe_port": get_safe_port,
}
_patched_modules: set[str] = set()


def _patch_module(mod) -> None:
    if mod is None or mod.__name__ in _patched_modules:
        return
    _patched_modules.add(mod.__name__)
    for name, repl in _MODULE_PATCHES.items():
        if name in vars(mod):
            setattr(mod, name, repl)
    if "_launch_server" in vars(mod) and "_await_server_up_or_die" in vars(mod):
        mod._launch_server = _external_launch_server
