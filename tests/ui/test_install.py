"""`mlflow ui install`: from an installed mlflow package's bundle, from a wheel the test builds,
and from a PyPI JSON API served locally (URL and sha256 from the JSON, resume with Range,
checksum refusal). The real PyPI is tried only with MLFLOW_UI_TEST_PYPI=1."""

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import REPO, our_binary  # noqa: E402

BINARY = our_binary()
MARKER = ".mlflow-ui-installed"
SITE_BUNDLE = next((REPO / ".venv/lib").glob("python3*/site-packages/mlflow/server/js/build"))


def install(*args, env=None, check=True):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [BINARY, "ui", "install", *map(str, args)], capture_output=True, text=True, env=full_env, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def make_wheel(path, version="3.17.2"):
    """A small wheel shaped like mlflow's: the bundle plus files that must not be extracted."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mlflow/__init__.py", "")
        z.writestr("mlflow/server/js/build/index.html", "<html><body>bundle</body></html>")
        z.writestr("mlflow/server/js/build/static/js/main.0123abcd.js", "console.log(1);" * 500)
        z.writestr(f"mlflow-{version}.dist-info/METADATA", f"Name: mlflow\nVersion: {version}\n")
        z.writestr("../evil.txt", "outside")
    return path


def test_from_dir_copies_the_installed_package_bundle_once(tmp_path):
    target = tmp_path / "ui" / "3.17.2"
    first = install("--dir", target, "--from-dir", SITE_BUNDLE.parent.parent.parent)
    assert "Installed MLflow UI 3.17.2" in first.stdout
    assert (target / "index.html").read_bytes() == (SITE_BUNDLE / "index.html").read_bytes()
    copied = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file() and p.name != MARKER)
    original = sorted(p.relative_to(SITE_BUNDLE) for p in SITE_BUNDLE.rglob("*") if p.is_file())
    assert copied == original
    marker = json.loads((target / MARKER).read_text())
    assert marker["version"] == "3.17.2" and marker["files"] == len(original)
    # Idempotent: the second run changes nothing and says so.
    stamp = (target / MARKER).stat().st_mtime_ns
    second = install("--dir", target, "--from-dir", SITE_BUNDLE)
    assert "already installed" in second.stdout
    assert (target / MARKER).stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.joinpath("ui").iterdir() if p.name.startswith(".")]


def test_from_wheel_extracts_only_the_bundle(tmp_path):
    wheel = make_wheel(tmp_path / "mlflow-3.17.2-py3-none-any.whl")
    target = tmp_path / "ui"
    install("--dir", target, "--from-wheel", wheel)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [MARKER, "index.html", "static/js/main.0123abcd.js"]
    assert not (tmp_path / "evil.txt").exists()


def test_refusals_leave_nothing_behind(tmp_path):
    wheel = make_wheel(tmp_path / "mlflow-3.18.0-py3-none-any.whl", version="3.18.0")
    wrong = install("--dir", tmp_path / "a", "--from-wheel", wheel, check=False)
    assert wrong.returncode == 1 and "pass --version 3.18.0" in wrong.stderr
    not_a_zip = tmp_path / "mlflow-3.17.2-py3-none-any.whl"
    not_a_zip.write_text("not a zip")
    bad = install("--dir", tmp_path / "b", "--from-wheel", not_a_zip, check=False)
    assert bad.returncode == 1 and "not a readable wheel" in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = install("--dir", tmp_path / "c", "--from-dir", empty, check=False)
    assert none.returncode == 1 and "holds no MLflow UI bundle" in none.stderr
    foreign = tmp_path / "d"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = install("--dir", foreign, "--from-dir", SITE_BUNDLE, check=False)
    assert refused.returncode == 1 and "not installed by `mlflow ui install`" in refused.stderr
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["mlflow-3.18.0-py3-none-any.whl", "mlflow-3.17.2-py3-none-any.whl", "empty", "d"]
    )


class Index:
    """A PyPI JSON API on localhost: `/pypi/mlflow/json` only (as some mirrors), file URLs
    relative to it, and Range support; records the Range headers it got."""

    def __init__(self, wheel, sha256=None, cut_after=None):
        self.wheel = wheel.read_bytes()
        self.sha256 = sha256 or hashlib.sha256(self.wheel).hexdigest()
        self.cut_after = cut_after
        self.ranges = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/pypi/mlflow/json":
                    entry = {
                        "packagetype": "bdist_wheel",
                        "filename": "mlflow-3.17.2-py3-none-any.whl",
                        "size": len(index.wheel),
                        "digests": {"sha256": index.sha256},
                        "url": "../../files/mlflow-3.17.2-py3-none-any.whl",
                    }
                    body = json.dumps({"releases": {"3.17.2": [entry]}}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                elif self.path == "/files/mlflow-3.17.2-py3-none-any.whl":
                    start = 0
                    header = self.headers.get("Range")
                    index.ranges.append(header)
                    if header:
                        start = int(header.removeprefix("bytes=").rstrip("-"))
                        self.send_response(206)
                        self.send_header("Content-Range", f"bytes {start}-{len(index.wheel) - 1}/{len(index.wheel)}")
                    else:
                        self.send_response(200)
                    body = index.wheel[start:]
                    if index.cut_after is not None and not header:
                        # The first attempt's connection breaks half-way through.
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body[: index.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                else:
                    body = b"{}"
                    self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pypi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_from_an_index_resumes_and_verifies(tmp_path):
    wheel = make_wheel(tmp_path / "src.whl")
    cache = tmp_path / "cache"
    index = Index(wheel, cut_after=len(wheel.read_bytes()) // 2)
    try:
        install("--dir", tmp_path / "ui", env={"MLFLOW_UI_INDEX_URL": index.url, "XDG_CACHE_HOME": cache})
        missing = install(
            "--dir", tmp_path / "ui3", "--version", "0.0.1", env={"MLFLOW_UI_INDEX_URL": index.url}, check=False
        )
        assert missing.returncode == 1 and "has no wheel of mlflow 0.0.1" in missing.stderr
    finally:
        index.close()
    assert (tmp_path / "ui/index.html").read_text() == "<html><body>bundle</body></html>"
    # The broken first transfer was continued, not restarted.
    assert index.ranges[0] is None and index.ranges[1] == f"bytes={len(wheel.read_bytes()) // 2}-"
    assert list((cache / "mlflow/ui").iterdir()) == []

    bad = Index(wheel, sha256="0" * 64)
    try:
        proc = install(
            "--dir", tmp_path / "ui2", env={"MLFLOW_UI_INDEX_URL": bad.url, "XDG_CACHE_HOME": cache}, check=False
        )
    finally:
        bad.close()
    assert proc.returncode == 1 and "the download was discarded" in proc.stderr
    assert not (tmp_path / "ui2").exists()
    assert list((cache / "mlflow/ui").iterdir()) == []


@pytest.mark.skipif(os.environ.get("MLFLOW_UI_TEST_PYPI") != "1", reason="set MLFLOW_UI_TEST_PYPI=1 to use pypi.org")
def test_from_pypi(tmp_path):
    install("--dir", tmp_path / "ui", env={"XDG_CACHE_HOME": tmp_path / "cache"})
    assert (tmp_path / "ui/index.html").read_bytes() == (SITE_BUNDLE / "index.html").read_bytes()
