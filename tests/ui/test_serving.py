"""`mlflow server` serving MLflow's web UI bundle: `/`, `/static-files/*`, under
`--static-prefix`, content types, ETag and 304, cache policy, gzip and brotli; and the page
of our own at `/` when no bundle is installed."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import REPO, ServerProcess, our_binary  # noqa: E402

BUNDLE = next((REPO / ".venv/lib").glob("python3*/site-packages/mlflow/server/js/build"))
MAIN_JS = next((BUNDLE / "static/js").glob("main.*.js")).relative_to(BUNDLE)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    srv = ServerProcess(our_binary(), tmp_path_factory.mktemp("ui"), extra_args=["--ui-dir", str(BUNDLE)])
    yield srv
    srv.stop()


def test_index_is_the_bundles_with_revalidation(ui_server):
    r = requests.get(ui_server.url + "/")
    assert r.status_code == 200
    assert r.content == (BUNDLE / "index.html").read_bytes()
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["ETag"]
    again = requests.get(ui_server.url + "/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = requests.get(ui_server.url + "/", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


def test_hashed_assets_are_immutable_and_compressed(ui_server):
    url = f"{ui_server.url}/static-files/{MAIN_JS}"
    raw = (BUNDLE / MAIN_JS).read_bytes()
    plain = requests.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == raw
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Accept-Encoding" in plain.headers["Vary"]

    gz = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    assert gz.headers["Content-Encoding"] == "gzip"
    body = gz.raw.read()
    assert gzip.decompress(body) == raw and len(body) < len(raw) / 2
    assert gz.headers["ETag"] != plain.headers["ETag"]

    br = requests.get(url, headers={"Accept-Encoding": "gzip, deflate, br"}, stream=True)
    assert br.headers["Content-Encoding"] == "br"
    assert len(br.raw.read()) < len(body)
    # Any representation's ETag revalidates.
    for tag in (plain.headers["ETag"], gz.headers["ETag"], br.headers["ETag"]):
        assert requests.get(url, headers={"If-None-Match": tag}).status_code == 304


def test_other_files_and_refusals(ui_server):
    css = next((BUNDLE / "static/css").glob("main.*.css")).relative_to(BUNDLE)
    r = requests.get(f"{ui_server.url}/static-files/{css}")
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    icon = requests.get(ui_server.url + "/static-files/favicon.ico")
    assert icon.status_code == 200 and icon.content == (BUNDLE / "favicon.ico").read_bytes()
    assert icon.headers["Cache-Control"] == "no-cache"
    manifest = requests.get(ui_server.url + "/static-files/manifest.json")
    assert manifest.headers["Content-Type"] == "application/json; charset=utf-8"
    for bad in ["/static-files/nope.js", "/static-files/..%2f..%2fetc%2fpasswd", "/static-files/%2e%2e/index.html"]:
        assert requests.get(ui_server.url + bad).status_code == 404, bad
    head = requests.head(f"{ui_server.url}/static-files/{MAIN_JS}")
    assert head.status_code == 200 and head.content == b""


def test_static_prefix(tmp_path):
    srv = ServerProcess(
        our_binary(), tmp_path, extra_args=["--ui-dir", str(BUNDLE), "--static-prefix", "/mlflow"],
        health_path="/mlflow/health",
    )
    try:
        index = requests.get(srv.url + "/mlflow/")
        assert index.content == (BUNDLE / "index.html").read_bytes()
        js = requests.get(f"{srv.url}/mlflow/static-files/{MAIN_JS}")
        assert js.status_code == 200 and js.content == (BUNDLE / MAIN_JS).read_bytes()
        assert requests.get(f"{srv.url}/static-files/{MAIN_JS}").status_code == 404
    finally:
        srv.stop()


@pytest.mark.skipif(
    Path("/usr/share/mlflow/ui/3.17.2/index.html").exists(), reason="a system-wide UI bundle is installed"
)
def test_without_a_bundle_the_page_says_how_to_install(tmp_path):
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": None, "MLFLOW_UI_DIR": None}
    srv = ServerProcess(our_binary(), tmp_path, extra_env=env)
    try:
        name = "<script>alert(1)</script> & co"
        requests.post(srv.url + "/api/2.0/mlflow/experiments/create", json={"name": name}).raise_for_status()
        r = requests.get(srv.url + "/")
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "mlflow ui install" in r.text and "--from-wheel" in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in r.text and "<script>" not in r.text
        assert "Default" in r.text
        assert requests.get(srv.url + "/static-files/index.html").status_code == 404
    finally:
        srv.stop()


def test_a_ui_dir_without_a_bundle_stops_the_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run(
        [our_binary(), "server", "--port", "1", "--ui-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "holds no index.html" in proc.stderr and "mlflow ui install --dir" in proc.stderr
