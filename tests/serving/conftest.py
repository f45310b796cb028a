"""Fixtures for the model-serving suite: our tracking server on a free port with a fresh
SQLite store, models logged into it with the official client, and `mlflow models serve`
processes (our binary) started against it.

Runs once per `tests/run` (on SQLite): serving reads the registry and artifacts over REST, so
the backend database changes nothing here."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import PYTHON, ServerProcess, free_port, our_binary  # noqa: E402

BINARY = Path(our_binary())


def serve_env(tracking_url, cache=None, path_first=(), **extra):
    """The environment of an `mlflow models ...` command: our binary first on PATH, then the
    venv's python (the one that has mlflow)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = tracking_url
    env["PATH"] = os.pathsep.join(
        [*map(str, path_first), str(BINARY.parent), str(PYTHON.parent), os.environ.get("PATH", "")]
    )
    if cache is not None:
        env["MLFLOW_MODEL_CACHE"] = str(cache)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


class Scoring:
    """A running `mlflow models serve`; `.url`, `.log()`."""

    def __init__(self, args, env, tmp, timeout=120, shell=False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tmp) / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")
        if shell:
            cmd = ["bash", "-c", args.replace("{port}", str(self.port))]
        else:
            cmd = [str(BINARY), "models", "serve", *args, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=tmp, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve not up within {timeout}s:\n{self.log()}")

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def invoke(self, body, content_type="application/json"):
        data = body if isinstance(body, (str, bytes)) else __import__("json").dumps(body)
        return requests.post(
            self.url + "/invocations", data=data, headers={"Content-Type": content_type}, timeout=120
        )

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def workdir():
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-serving-"))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def tracking(workdir):
    """Our tracking server, serving artifacts (the default)."""
    srv = ServerProcess(str(BINARY), workdir / "tracking")
    yield srv
    srv.stop()
