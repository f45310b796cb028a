"""The security middleware as MLflow 3.17.2 has it: the Host check against DNS rebinding, the
CORS guard, security headers, and JSON-only writes. Every refused request must leave the store
untouched, which each test checks through the official client afterwards.

Runs against the oracle too (MLFLOW_E2E_SERVER=python): the expectations are the Python
server's behaviour."""

import shutil
import tempfile

import pytest
import requests

from e2e_support import ServerProcess, server_choice, unique_name

INVALID_HOST = "Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED = "Cross-origin request blocked"
CREATE = "/api/2.0/mlflow/experiments/create"


def _created(client, name):
    return client.get_experiment_by_name(name) is not None


@pytest.fixture
def extra_server():
    """Starts servers with extra flags or environment; stops them at the end."""
    started = []

    def start(extra_args=(), extra_env=None):
        tmp = tempfile.mkdtemp(prefix="mlflow-e2e-sec-")
        srv = ServerProcess(server_choice(), tmp, extra_args=extra_args, extra_env=extra_env)
        started.append((srv, tmp))
        return srv

    yield start
    for srv, tmp in started:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_foreign_host_is_refused_and_touches_nothing(client, server):
    name = unique_name("rebinding")
    for host in ("evil.example", "evil.example:5000", f"localhost.evil.example:{server.port}"):
        r = requests.post(
            server.url + CREATE, json={"name": name}, headers={"Host": host}, timeout=10
        )
        assert r.status_code == 403, (host, r.text)
        assert r.text == INVALID_HOST
    assert not _created(client, name)
    # Reads are refused as well: a rebound page must not read the data either.
    r = requests.get(
        server.url + "/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        headers={"Host": "evil.example"},
        timeout=10,
    )
    assert (r.status_code, r.text) == (403, INVALID_HOST)
    r = requests.get(
        server.url + "/api/2.0/mlflow-artifacts/artifacts",
        headers={"Host": "evil.example"},
        timeout=10,
    )
    assert r.status_code == 403
    # Load balancers probe /health with their own Host.
    r = requests.get(server.url + "/health", headers={"Host": "lb.internal"}, timeout=10)
    assert (r.status_code, r.text) == (200, "OK")


def test_local_hosts_are_accepted_by_default(client, server):
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "localhost"):
        r = requests.get(
            server.url + "/api/2.0/mlflow/experiments/get",
            params={"experiment_id": "0"},
            headers={"Host": host},
            timeout=10,
        )
        assert r.status_code == 200, (host, r.text)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_cross_origin_writes_are_refused(client, server):
    name = unique_name("csrf")
    r = requests.post(
        server.url + CREATE,
        json={"name": name},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert (r.status_code, r.text) == (403, CORS_BLOCKED)
    assert "Access-Control-Allow-Origin" not in r.headers
    assert not _created(client, name)
    # A page served from localhost (the UI's dev server) may write.
    r = requests.post(
        server.url + CREATE,
        json={"name": name},
        headers={"Origin": "http://localhost:3000"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert _created(client, name)


def test_text_plain_post_is_refused(client, server):
    # text/plain is a CORS "simple" content type: a form on any page can send it without a
    # preflight, so the API must not read it as JSON.
    name = unique_name("plain")
    r = requests.post(
        server.url + CREATE,
        data=f'{{"name": "{name}"}}',
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Content-Type" in r.json()["message"]
    assert not _created(client, name)


def test_preflight(server):
    def preflight(origin):
        return requests.options(
            server.url + CREATE,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )

    r = preflight("http://127.0.0.1:8080")
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8080"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = preflight("https://evil.example")
    assert r.status_code == 400
    assert "Access-Control-Allow-Origin" not in r.headers


def test_configured_hosts_and_origins(client, extra_server):
    srv = extra_server(
        extra_args=[
            "--allowed-hosts",
            "mlflow.example.com,*.corp.example",
            "--cors-allowed-origins",
            "https://app.example.com",
            "--x-frame-options",
            "DENY",
        ]
    )
    url = srv.url + "/api/2.0/mlflow/experiments/search"
    ok = requests.get(url, params={"max_results": 1}, headers={"Host": "mlflow.example.com"}, timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.headers["X-Frame-Options"] == "DENY"
    ok = requests.get(url, params={"max_results": 1}, headers={"Host": "a.corp.example"}, timeout=10)
    assert ok.status_code == 200
    # The list replaces the defaults.
    refused = requests.get(url, params={"max_results": 1}, headers={"Host": "localhost"}, timeout=10)
    assert refused.status_code == 403

    name = unique_name("cors")
    host = {"Host": "mlflow.example.com"}
    r = requests.post(
        srv.url + CREATE,
        json={"name": name},
        headers={**host, "Origin": "https://other.example"},
        timeout=10,
    )
    assert r.status_code == 403
    r = requests.post(
        srv.url + CREATE,
        json={"name": name},
        headers={**host, "Origin": "https://app.example.com"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"


def test_environment_variables_and_disabling(extra_server):
    srv = extra_server(extra_env={"MLFLOW_SERVER_ALLOWED_HOSTS": "only.example"})
    url = srv.url + "/api/2.0/mlflow/experiments/search"
    assert requests.get(url, params={"max_results": 1}, headers={"Host": "only.example"}, timeout=10).status_code == 200
    assert requests.get(url, params={"max_results": 1}, timeout=10).status_code == 403

    srv = extra_server(extra_args=["--disable-security-middleware"])
    url = srv.url + "/api/2.0/mlflow/experiments/search"
    r = requests.get(url, params={"max_results": 1}, headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 200
    assert "X-Frame-Options" not in r.headers
    r = requests.post(
        srv.url + CREATE,
        json={"name": unique_name("off")},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert r.status_code == 200
