"""The client commands of our `mlflow` binary (`models`, `experiments`, `runs`), run as
subprocesses against the session server with MLFLOW_TRACKING_URI set (MLFLOW_E2E_CLI names
another binary to test).

With MLFLOW_E2E_SERVER=python the same commands (our binary) run against the Python server,
which checks that the CLI speaks MLflow's REST API and not just ours."""

import base64
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from e2e_support import (
    PYTHON,
    REPO,
    ServerProcess,
    free_port,
    is_oracle,
    our_binary,
    server_choice,
    unique_name,
)


def _cli_binary():
    """MLFLOW_E2E_CLI if set; else the server under test when it is ours; else (the Python
    oracle) the most recently built of target/{release,debug}/mlflow."""
    if os.environ.get("MLFLOW_E2E_CLI"):
        return Path(os.environ["MLFLOW_E2E_CLI"])
    if not is_oracle():
        return Path(our_binary())
    built = [
        p for p in (REPO / "target/release/mlflow", REPO / "target/debug/mlflow") if p.exists()
    ]
    return max(built, key=lambda p: p.stat().st_mtime) if built else Path(our_binary())


BINARY = _cli_binary()

pytestmark = pytest.mark.skipif(
    not BINARY.exists(), reason=f"our mlflow binary is not built ({BINARY})"
)

SEED_REGISTRY_LINES = """\
# Register model
mlflow models create -n my-model -d "Customer churn prediction"

# Promote to staging
mlflow models transition-request create --name my-model --version 1 --stage Staging

# Promote to production after validation
mlflow models transition-request create --name my-model --version 1 --stage Production

# Monitor production models
mlflow models list | grep Production
"""


def _env(url, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    env["MLFLOW_TRACKING_URI"] = url
    env.update(extra)
    return env


def cli(url, *args, check=True, **env):
    """Runs `mlflow ARGS...` (our binary) against `url`; returns the CompletedProcess."""
    proc = subprocess.run(
        [str(BINARY), *args],
        env=_env(url, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (
            f"mlflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def cli_json(url, *args, **env):
    return json.loads(cli(url, *args, "--json", **env).stdout)


def bash(url, script):
    """Runs `script` with bash, `mlflow` on PATH being our binary."""
    env = _env(url, PATH=f"{BINARY.parent}:{os.environ.get('PATH', '')}")
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _one_error_line(proc):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _version(client, name):
    """A model version of `name` with a `runs:/` source (what `register_model` sends)."""
    exp = client.create_experiment(unique_name("cli-exp"))
    run = client.create_run(exp)
    return client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)


@pytest.fixture(scope="module")
def seed_server():
    """A server of its own, so the seed's fixed name `my-model` is free."""
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-e2e-cli-"))
    srv = ServerProcess(server_choice(), tmp)
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- the seed -------------------------------------------------------------------------------


def test_seed_registry_lines_verbatim(seed_server):
    from mlflow import MlflowClient

    url = seed_server.url
    client = MlflowClient(tracking_uri=url)
    first, rest = SEED_REGISTRY_LINES.split("# Promote to staging")
    proc = bash(url, "set -euo pipefail\n" + first)
    assert proc.returncode == 0, proc.stderr
    assert "my-model" in proc.stdout
    # The seed promotes version 1, which registering a model's files creates.
    assert _version(client, "my-model").version == "1"

    proc = bash(url, "set -euo pipefail\n# Promote to staging" + rest)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert "version 1 to Staging" in proc.stdout and "version 1 to Production" in proc.stdout
    assert proc.stdout.count("Applied directly") == 2, proc.stdout
    production = [line for line in lines if "Production" in line and line.startswith("my-model")]
    assert len(production) == 1, proc.stdout
    assert production[0].split()[:3] == ["my-model", "1", "Production"], production
    assert "Customer churn prediction" in production[0]

    model = client.get_registered_model("my-model")
    assert model.description == "Customer churn prediction"
    assert client.get_model_version("my-model", "1").current_stage == "Production"


def test_seed_registry_workflow_loads_the_production_model(seed_server):
    """register (log_model) → transition with the CLI → list | grep Production → load."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LinearRegression

    url = seed_server.url
    name = unique_name("churn")
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LinearRegression().fit(X, np.array([1.0, 3.0, 5.0, 7.0]))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
        for stage in ("Staging", "Production"):
            cli(
                url,
                "models",
                "transition-request",
                "create",
                "--name",
                name,
                "--version",
                "1",
                "--stage",
                stage,
                "--archive-existing-versions",
            )
        proc = bash(url, f"mlflow models list | grep Production | grep {name}")
        assert proc.returncode == 0 and proc.stdout.split()[:3] == [name, "1", "Production"]
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/Production")
        assert list(loaded.predict(np.array([[4.0]]))) == pytest.approx([9.0])
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(previous)


def _readme_registry_block():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("\n## Model registry\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_readme_registry_workflow_runs_as_written():
    """The README's registry block, on a fresh server (it uses the seed's `my-model`), with
    only the server address changed; `python` is the venv's."""
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-e2e-readme-"))
    srv = ServerProcess(server_choice(), tmp)
    try:
        block = _readme_registry_block()
        assert "export MLFLOW_TRACKING_URI=http://127.0.0.1:5000\n" in block
        block = block.replace("http://127.0.0.1:5000", srv.url)
        env = _env(srv.url, PATH=f"{BINARY.parent}:{PYTHON.parent}:{os.environ.get('PATH', '')}")
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            check=False,
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
        out = proc.stdout.splitlines()
        assert [
            line.split()[:3] for line in out if "Production" in line and line.startswith("my-model")
        ] == [["my-model", "1", "Production"]], proc.stdout
        assert out[-1] == "[0 1]", proc.stdout
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --- models ---------------------------------------------------------------------------------


def test_models_create_get_list_json(server, client):
    name = unique_name("cli-model")
    created = cli_json(
        server.url, "models", "create", "-n", name, "-d", "first", "--tag", "team=ml"
    )
    assert created["registered_model"]["name"] == name
    got = cli_json(server.url, "models", "get", name)["registered_model"]
    assert got["name"] == name and got["description"] == "first"
    assert {"key": "team", "value": "ml"} in got["tags"]
    assert cli_json(server.url, "models", "get", "--name", name)["registered_model"]["name"] == name

    listed = cli_json(server.url, "models", "list")["registered_models"]
    assert name in [m["name"] for m in listed]
    table = cli(server.url, "models", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "VERSION", "STAGE"]
    assert any(line.startswith(name) for line in table.splitlines())

    text = cli(server.url, "models", "get", name).stdout
    assert name in text and "first" in text and "team=ml" in text


def test_models_versions_stages_and_aliases(server, client):
    name = unique_name("cli-model")
    cli(server.url, "models", "create", "-n", name)
    for _ in range(3):
        _version(client, name)

    mv = cli_json(
        server.url,
        "models",
        "transition-request",
        "create",
        "--name",
        name,
        "--version",
        "2",
        "--stage",
        "production",
    )["model_version"]
    assert mv["version"] == "2" and mv["current_stage"] == "Production"
    out = cli(
        server.url,
        "models",
        "transition-request",
        "create",
        "-n",
        name,
        "-v",
        "3",
        "-s",
        "Production",
        "--archive-existing-versions",
    ).stdout
    assert "version 3 to Production" in out and "Archived" in out
    assert client.get_model_version(name, "2").current_stage == "Archived"

    cli(server.url, "models", "alias", "set", name, "champion", "3")
    assert client.get_model_version_by_alias(name, "champion").version == "3"
    assert cli_json(server.url, "models", "alias", "set", name, "challenger", "1") == {}

    versions = cli_json(server.url, "models", "versions", "list", name)["model_versions"]
    assert sorted(v["version"] for v in versions) == ["1", "2", "3"]
    rows = [
        line.split()
        for line in cli(server.url, "models", "versions", "list", name).stdout.splitlines()
    ]
    assert rows[0][:4] == ["VERSION", "STAGE", "STATUS", "ALIASES"]
    assert [r[:3] for r in rows[1:]] == [
        ["3", "Production", "READY"],
        ["2", "Archived", "READY"],
        ["1", "None", "READY"],
    ]
    assert rows[1][3] == "champion" and rows[3][3] == "challenger" and "champion" not in rows[2]

    listed = [
        line.split()[:4]
        for line in cli(server.url, "models", "list").stdout.splitlines()
        if line.startswith(name + " ")
    ]
    assert [name, "3", "Production", "champion"] in listed
    assert [name, "2", "Archived"] in [row[:3] for row in listed]

    cli(server.url, "models", "alias", "delete", name, "champion")
    aliases = client.get_registered_model(name).aliases
    assert "champion" not in aliases and aliases.get("challenger") == "1"

    out = cli(server.url, "models", "delete", name).stdout
    assert name in out
    proc = cli(server.url, "models", "get", name, check=False)
    assert (
        _one_error_line(proc)
        == f"error: RESOURCE_DOES_NOT_EXIST: Registered Model with name={name} not found"
    )


def test_models_lists_follow_every_page(server, client):
    prefix = unique_name("cli-page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        cli(server.url, "models", "create", "-n", n)
    for _ in range(5):
        _version(client, names[0])
    small = {"MLFLOW_CLI_PAGE_SIZE": "2"}
    listed = cli_json(server.url, "models", "list", "--filter", f"name LIKE '{prefix}%'", **small)
    assert sorted(m["name"] for m in listed["registered_models"]) == names
    versions = cli_json(server.url, "models", "versions", "list", names[0], **small)[
        "model_versions"
    ]
    assert sorted(int(v["version"]) for v in versions) == [1, 2, 3, 4, 5]


def test_models_errors_are_one_line_with_nonzero_exit(server):
    missing = unique_name("missing")
    for args in (
        ["models", "get", missing],
        ["models", "delete", missing],
        ["models", "versions", "list", missing],
        [
            "models",
            "transition-request",
            "create",
            "--name",
            missing,
            "--version",
            "1",
            "--stage",
            "Staging",
        ],
    ):
        line = _one_error_line(cli(server.url, *args, check=False))
        assert "RESOURCE_DOES_NOT_EXIST" in line and missing in line, (args, line)

    name = unique_name("cli-dup")
    cli(server.url, "models", "create", "-n", name)
    line = _one_error_line(cli(server.url, "models", "create", "-n", name, check=False))
    assert line.startswith("error: RESOURCE_ALREADY_EXISTS: ")


def test_bad_arguments_are_usage_errors(server):
    proc = cli(
        server.url,
        "models",
        "transition-request",
        "create",
        "--name",
        "x",
        "--version",
        "1",
        "--stage",
        "Prod",
        check=False,
    )
    assert proc.returncode == 2 and "Production" in proc.stderr
    proc = cli(server.url, "experiments", "delete", check=False)
    assert proc.returncode == 2 and "--experiment-id" in proc.stderr


# --- connection and credentials -------------------------------------------------------------


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["models", "list"], ["experiments", "list"], ["runs", "describe", "abc"]):
        line = _one_error_line(cli(url, *args, check=False))
        assert url in line and "cannot reach" in line, line


def test_non_http_tracking_uri_is_refused():
    line = _one_error_line(cli("sqlite:///mlflow.db", "models", "list", check=False))
    assert "MLFLOW_TRACKING_URI" in line


_UNAUTHENTICATED = (401, {"error_code": "UNAUTHENTICATED", "message": "You are not authenticated."})


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers with the next of `script` (status, JSON body), the last one forever, and
    remembers each request's Authorization header."""

    seen: ClassVar[list] = []
    peer_certs: ClassVar[list] = []
    script: ClassVar[list] = [_UNAUTHENTICATED]

    def _reply(self):
        _Recorder.seen.append(self.headers.get("Authorization"))
        if isinstance(self.connection, ssl.SSLSocket):
            _Recorder.peer_certs.append(self.connection.getpeercert())
        status, payload = _Recorder.script[min(len(_Recorder.seen), len(_Recorder.script)) - 1]
        body = json.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_DELETE = _reply

    def log_message(self, *args):
        pass


def _serve(tls=None):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    if tls is not None:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Recorder.seen = []
    _Recorder.peer_certs = []
    _Recorder.script = [_UNAUTHENTICATED]
    return srv


@pytest.fixture
def recorder():
    srv = _serve()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(cwd, name, cn, ext):
    """`name`.pem and `name`.key: a leaf certificate signed by ca.pem."""
    (cwd / f"{name}.ext").write_text(ext)
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={cn}",
        cwd=cwd,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        f"{name}.pem",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


@pytest.fixture
def tls_recorder(tmp_path):
    """An HTTPS recorder with a certificate from a private CA, asking for a client
    certificate from the same CA (optional); yields (url, directory of the PEM files)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=mlflow-e2e-ca",
        cwd=tmp_path,
    )
    _signed(
        tmp_path,
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    _signed(
        tmp_path, "client", "cli-user", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    )
    (tmp_path / "client-bundle.pem").write_text(
        (tmp_path / "client.pem").read_text() + (tmp_path / "client.key").read_text()
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    ctx.load_verify_locations(tmp_path / "ca.pem")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    srv = _serve(ctx)
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}", tmp_path
    finally:
        srv.shutdown()


def test_tls_settings_are_honoured_as_in_the_python_client(tls_recorder):
    url, pem = tls_recorder
    # A 401 is one line that says which server refused and what to set.
    unauthenticated = (
        f"error: not authenticated by the tracking server at {url}: the server requires a "
        "login; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    )

    line = _one_error_line(cli(url, "models", "list", check=False))
    assert url in line and "cannot reach" in line and "certificate" in line, line
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in line
    assert _Recorder.seen == []

    proc = cli(
        url, "models", "list", check=False, MLFLOW_TRACKING_SERVER_CERT_PATH=str(pem / "ca.pem")
    )
    assert _one_error_line(proc) == unauthenticated and len(_Recorder.seen) == 1
    assert not _Recorder.peer_certs[-1]

    proc = cli(url, "models", "list", check=False, MLFLOW_TRACKING_INSECURE_TLS="true")
    assert _one_error_line(proc) == unauthenticated and len(_Recorder.seen) == 2

    proc = cli(
        url,
        "models",
        "list",
        check=False,
        MLFLOW_TRACKING_SERVER_CERT_PATH=str(pem / "ca.pem"),
        MLFLOW_TRACKING_CLIENT_CERT_PATH=str(pem / "client-bundle.pem"),
    )
    assert _one_error_line(proc) == unauthenticated
    assert ((("commonName", "cli-user"),),) == _Recorder.peer_certs[-1]["subject"]

    missing = str(pem / "missing.pem")
    line = _one_error_line(
        cli(url, "models", "list", check=False, MLFLOW_TRACKING_SERVER_CERT_PATH=missing)
    )
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" in line and missing in line


def test_credentials_are_sent_as_the_python_client_does_and_never_printed(recorder):
    proc = cli(recorder, "models", "list", check=False, MLFLOW_TRACKING_TOKEN="tok-s3cret")
    assert _one_error_line(proc) == (
        f"error: not authenticated by the tracking server at {recorder}: "
        "the token in MLFLOW_TRACKING_TOKEN was not accepted"
    )
    assert _Recorder.seen[-1] == "Bearer tok-s3cret"
    assert "s3cret" not in proc.stdout + proc.stderr

    # Username and password win over a token, as in the Python client.
    proc = cli(
        recorder,
        "experiments",
        "list",
        check=False,
        MLFLOW_TRACKING_USERNAME="alice",
        MLFLOW_TRACKING_PASSWORD="pw-s3cret",
        MLFLOW_TRACKING_TOKEN="tok-s3cret",
    )
    assert _Recorder.seen[-1] == "Basic " + base64.b64encode(b"alice:pw-s3cret").decode()
    assert "s3cret" not in proc.stdout + proc.stderr

    # Credentials in the URI are used, and the URI is shown without them.
    host = recorder.removeprefix("http://")
    proc = cli(f"http://bob:url-s3cret@{host}", "runs", "describe", "x", check=False)
    assert _Recorder.seen[-1] == "Basic " + base64.b64encode(b"bob:url-s3cret").decode()
    assert "s3cret" not in proc.stdout + proc.stderr

    free = f"http://carol:url-s3cret@127.0.0.1:{free_port()}"
    line = _one_error_line(cli(free, "models", "list", check=False))
    assert "s3cret" not in line and "carol" not in line and "127.0.0.1" in line


def test_try_again_later_answers_are_retried_with_the_python_clients_settings(recorder):
    busy = (503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database is busy"})
    _Recorder.script = [busy, busy, (200, {"registered_models": [{"name": "m"}]})]
    quick = {"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
    proc = cli(recorder, "models", "list", "--json", MLFLOW_HTTP_REQUEST_MAX_RETRIES="2", **quick)
    assert json.loads(proc.stdout) == {"registered_models": [{"name": "m"}]}
    assert len(_Recorder.seen) == 3

    _Recorder.seen = []
    proc = cli(
        recorder, "models", "list", check=False, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1", **quick
    )
    assert _one_error_line(proc) == "error: TEMPORARILY_UNAVAILABLE: database is busy"
    assert len(_Recorder.seen) == 2

    # A lasting error (MLflow answers INVALID_STATE with 500) is not retried.
    _Recorder.seen = []
    _Recorder.script = [(500, {"error_code": "INVALID_STATE", "message": "not active"})]
    proc = cli(
        recorder, "experiments", "rename", "-x", "1", "--new-name", "n", check=False, **quick
    )
    assert _one_error_line(proc) == "error: INVALID_STATE: not active" and len(_Recorder.seen) == 1


# --- experiments ----------------------------------------------------------------------------


def test_experiments_lifecycle(server, client, tmp_path):
    name = unique_name("cli-exp")
    out = cli(
        server.url,
        "experiments",
        "create",
        "--experiment-name",
        name,
        "--artifact-location",
        str(tmp_path / "art"),
    ).stdout
    exp = client.get_experiment_by_name(name)
    assert out.strip() == f"Created experiment '{name}' with id {exp.experiment_id}"
    assert exp.artifact_location.endswith("art")
    eid = exp.experiment_id

    listed = cli_json(server.url, "experiments", "list")["experiments"]
    assert name in [e["name"] for e in listed]
    table = cli(server.url, "experiments", "list").stdout
    assert any(line.split()[:2] == [eid, name] for line in table.splitlines())

    got = cli_json(server.url, "experiments", "get", "--experiment-id", eid)["experiment"]
    assert got["name"] == name
    assert (
        cli_json(server.url, "experiments", "get", "-n", name)["experiment"]["experiment_id"] == eid
    )

    renamed = name + "-renamed"
    out = cli(
        server.url, "experiments", "rename", "--experiment-id", eid, "--new-name", renamed
    ).stdout
    assert renamed in out and client.get_experiment(eid).name == renamed

    out = cli(server.url, "experiments", "delete", "--experiment-id", eid).stdout
    assert out.strip() == f"Experiment with ID {eid} has been deleted."
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    active = [
        e["experiment_id"] for e in cli_json(server.url, "experiments", "list")["experiments"]
    ]
    deleted = cli_json(server.url, "experiments", "list", "--view", "deleted_only")["experiments"]
    assert eid not in active and eid in [e["experiment_id"] for e in deleted]

    cli(server.url, "experiments", "restore", "-x", eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    cli(server.url, "experiments", "delete", eid)  # the id positionally works too
    cli(server.url, "experiments", "restore", eid)

    line = _one_error_line(
        cli(server.url, "experiments", "delete", "--experiment-id", "987654321", check=False)
    )
    assert "RESOURCE_DOES_NOT_EXIST" in line


def test_experiments_list_pages_and_max_results(server, client):
    prefix = unique_name("cli-exp-page")
    ids = {client.create_experiment(f"{prefix}-{i}") for i in range(5)}
    flt = f"name LIKE '{prefix}%'"
    listed = cli_json(server.url, "experiments", "list", "--filter", flt, MLFLOW_CLI_PAGE_SIZE="2")
    assert {e["experiment_id"] for e in listed["experiments"]} == ids
    limited = cli_json(
        server.url,
        "experiments",
        "list",
        "--filter",
        flt,
        "--max-results",
        "3",
        MLFLOW_CLI_PAGE_SIZE="2",
    )
    assert len(limited["experiments"]) == 3


# --- runs -----------------------------------------------------------------------------------


def test_runs_list_describe_delete_restore(server, client):
    eid = client.create_experiment(unique_name("cli-runs"))
    runs = []
    for i in range(5):
        run = client.create_run(eid, run_name=f"r{i}")
        client.log_param(run.info.run_id, "lr", str(i))
        client.log_metric(run.info.run_id, "acc", 0.5 + i / 10)
        client.set_terminated(run.info.run_id)
        runs.append(run.info.run_id)

    listed = cli_json(server.url, "runs", "list", "--experiment-id", eid, MLFLOW_CLI_PAGE_SIZE="2")
    assert sorted(r["info"]["run_id"] for r in listed["runs"]) == sorted(runs)
    table = cli(server.url, "runs", "list", "--experiment-id", eid).stdout.splitlines()
    assert len(table) == 6 and all(any(rid in line for line in table) for rid in runs)
    # MLFLOW_EXPERIMENT_ID stands in for --experiment-id, as in the Python CLI.
    assert len(cli(server.url, "runs", "list", MLFLOW_EXPERIMENT_ID=eid).stdout.splitlines()) == 6

    rid = runs[2]
    described = cli_json(server.url, "runs", "describe", "--run-id", rid)["run"]
    assert described["info"]["run_id"] == rid and described["info"]["run_name"] == "r2"
    text = cli(server.url, "runs", "describe", rid).stdout
    assert rid in text and "r2" in text and "lr" in text and "acc" in text and "FINISHED" in text

    assert (
        cli(server.url, "runs", "delete", "--run-id", rid).stdout.strip()
        == f"Run with ID {rid} has been deleted."
    )
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    active = cli_json(server.url, "runs", "list", "--experiment-id", eid)["runs"]
    assert rid not in [r["info"]["run_id"] for r in active]
    deleted = cli_json(
        server.url, "runs", "list", "--experiment-id", eid, "--view", "deleted_only"
    )["runs"]
    assert [r["info"]["run_id"] for r in deleted] == [rid]
    cli(server.url, "runs", "restore", "--run-id", rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"

    line = _one_error_line(cli(server.url, "runs", "describe", "--run-id", "0" * 32, check=False))
    assert "RESOURCE_DOES_NOT_EXIST" in line


# --- help -----------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["models"],
    ["models", "list"],
    ["models", "create"],
    ["models", "get"],
    ["models", "delete"],
    ["models", "transition-request"],
    ["models", "transition-request", "create"],
    ["models", "versions"],
    ["models", "versions", "list"],
    ["models", "alias"],
    ["models", "alias", "set"],
    ["models", "alias", "delete"],
    ["experiments"],
    ["experiments", "list"],
    ["experiments", "create"],
    ["experiments", "get"],
    ["experiments", "delete"],
    ["experiments", "restore"],
    ["experiments", "rename"],
    ["runs"],
    ["runs", "list"],
    ["runs", "describe"],
    ["runs", "delete"],
    ["runs", "restore"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mlflow")
def test_every_command_has_help(command):
    proc = cli("http://127.0.0.1:1", *command, "--help")
    assert f"Usage: mlflow {' '.join(command)}".strip() in proc.stdout
    if len(command) >= 2 and command[-1] not in ("transition-request", "versions", "alias"):
        assert "--json" in proc.stdout, proc.stdout


def test_python_cli_spellings_are_accepted(server):
    """The flags of the Python CLI's `experiments` and `runs` commands parse here too."""
    for args in (
        ["experiments", "create", "--help"],
        ["experiments", "search", "--help"],
    ):
        cli(server.url, *args)
    help_create = cli(server.url, "experiments", "create", "--help").stdout
    assert "--experiment-name" in help_create and "--artifact-location" in help_create
    assert "-x, --experiment-id" in cli(server.url, "experiments", "delete", "--help").stdout
    assert "--run-id" in cli(server.url, "runs", "describe", "--help").stdout
    assert "--experiment-id" in cli(server.url, "runs", "list", "--help").stdout
