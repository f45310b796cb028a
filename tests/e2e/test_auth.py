"""MLflow's basic-auth app (`mlflow server --app-name basic-auth`) driven by the official client
and its auth client (`mlflow.server.get_app_client`): users, grants, 401/403 answers, creators
owning what they create, searches showing only what a user may read, the failed-login limit,
and the auth database shared both ways with the Python server.

The auth database lives on the backend under test (MLFLOW_E2E_BACKEND). Runs against the oracle
too (MLFLOW_E2E_SERVER=python) except where marked ours_only."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from e2e_support import Database, ServerProcess, backend_choice, is_oracle, new_store, server_choice, unique_name

ADMIN_PASSWORD = "admin-e2e-password"
PASSWORD = "user-e2e-password"


def auth_db_uri(backend, tmp):
    """(auth database URI, database to drop or None) on `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{Path(tmp) / 'basic_auth.db'}", None
    db = Database(backend, prefix="mlflow_auth")
    return db.uri, db


class AuthServer:
    """A server with basic auth: its tracking store and its auth database."""

    def __init__(
        self, binary, tmp, auth_uri, backend_uri=None, default_permission="READ", env=None, extra_ini=""
    ):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        ini = Path(tmp) / "auth.ini"
        ini.write_text(
            f"[mlflow]\ndefault_permission = {default_permission}\n"
            f"database_uri = {auth_uri}\nadmin_username = admin\n{extra_ini}"
        )
        extra_env = {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # The Python server wants it for its sign-up form's CSRF token; ours has no form.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "e2e-only-secret",
        }
        extra_env.update(env or {})
        self.proc = ServerProcess(
            binary, tmp, backend_uri=backend_uri, extra_args=["--app-name", "basic-auth"], extra_env=extra_env
        )
        self.url = self.proc.url

    def stop(self):
        self.proc.stop()


@pytest.fixture(scope="module")
def auth_server():
    tmp = tempfile.mkdtemp(prefix="mlflow-e2e-auth-")
    backend = backend_choice()
    if is_oracle() and backend == "mysql":
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip("MLflow 3.17.2's auth migrations fail on MariaDB (two foreign keys named fk_user_id)")
    store_uri, store_db = new_store(backend, tmp)
    auth_uri, auth_db = auth_db_uri(backend, tmp)
    srv = None
    try:
        srv = AuthServer(server_choice(), tmp, auth_uri, backend_uri=store_uri)
        yield srv
    finally:
        if srv is not None:
            srv.stop()
        for db in (store_db, auth_db):
            if db is not None:
                db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def as_user(monkeypatch, auth_server):
    """Switches the client's credentials: as_user(name, password) -> MlflowClient."""
    from mlflow import MlflowClient

    def switch(username, password):
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        return MlflowClient(tracking_uri=auth_server.url)

    return switch


@pytest.fixture
def admin(as_user):
    return as_user("admin", ADMIN_PASSWORD)


@pytest.fixture
def app_client(admin, auth_server):
    from mlflow.server import get_app_client

    return get_app_client("basic-auth", tracking_uri=auth_server.url)


def new_user(app_client):
    name = unique_name("user")
    app_client.create_user(name, PASSWORD)
    return name


def status_of(call):
    """The HTTP status of a client call that fails."""
    from mlflow.exceptions import MlflowException, RestException

    with pytest.raises((MlflowException, RestException)) as info:
        call()
    text = str(info.value)
    for code in (401, 403, 404, 400):
        if f"{code}" in text or getattr(info.value, "get_http_status_code", lambda: 0)() == code:
            return code
    return text


def test_unauthenticated_requests_get_401_with_a_basic_challenge(auth_server):
    url = auth_server.url + "/api/2.0/mlflow/experiments/search"
    for auth in (None, ("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)):
        r = requests.get(url, params={"max_results": 1}, auth=auth, timeout=30)
        assert r.status_code == 401, (auth, r.text)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
        assert "You are not authenticated" in r.text
    r = requests.get(url, params={"max_results": 1}, auth=("admin", ADMIN_PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    # A bearer token is no basic credential: MLflow's basic-auth app refuses it.
    r = requests.get(url, headers={"Authorization": "Bearer abc"}, timeout=30)
    assert r.status_code == 401
    assert requests.get(auth_server.url + "/health", timeout=30).status_code == 200
    r = requests.get(auth_server.url + "/api/3.0/mlflow/server-info", timeout=30)
    assert r.status_code == 200, r.text


def test_users_api_through_the_app_client(app_client, as_user, auth_server):
    from mlflow.exceptions import RestException

    name = unique_name("user")
    user = app_client.create_user(name, PASSWORD)
    assert (user.username, user.is_admin) == (name, False)
    fetched = app_client.get_user(name)
    assert (fetched.id, fetched.username, fetched.is_admin) == (user.id, name, False)
    with pytest.raises(RestException, match="RESOURCE_ALREADY_EXISTS"):
        app_client.create_user(name, PASSWORD)
    with pytest.raises(RestException, match="at least 12 characters"):
        app_client.create_user(unique_name("short"), "short")
    app_client.update_user_password(name, "another-password-1")
    url = auth_server.url + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(url, auth=(name, PASSWORD), timeout=30).status_code == 401
    assert requests.get(url, auth=(name, "another-password-1"), timeout=30).status_code == 200
    # A user reads itself but not others, and changes its own password only with the current one.
    me = requests.get(
        auth_server.url + "/api/2.0/mlflow/users/get", params={"username": name},
        auth=(name, "another-password-1"), timeout=30,
    )
    assert me.status_code == 200 and me.json()["user"]["username"] == name
    other = requests.get(
        auth_server.url + "/api/2.0/mlflow/users/get", params={"username": "admin"},
        auth=(name, "another-password-1"), timeout=30,
    )
    assert other.status_code == 403
    r = requests.patch(
        auth_server.url + "/api/2.0/mlflow/users/update-password",
        json={"username": name, "password": "third-password-1"},
        auth=(name, "another-password-1"), timeout=30,
    )
    assert r.status_code == 400 and "Current password is required" in r.text
    app_client.update_user_admin(name, True)
    assert app_client.get_user(name).is_admin is True
    app_client.delete_user(name)
    with pytest.raises(RestException, match="RESOURCE_DOES_NOT_EXIST"):
        app_client.get_user(name)
    assert requests.get(url, auth=(name, "another-password-1"), timeout=30).status_code == 401


def test_read_user_is_refused_an_update_until_granted_manage(app_client, admin, as_user):
    bob = new_user(app_client)
    exp = admin.create_experiment(unique_name("exp"))
    app_client.grant_user_permission(bob, "experiment", exp, "READ")
    assert app_client.get_user_permission(bob, "experiment", exp).permission == "READ"
    as_bob = as_user(bob, PASSWORD)
    assert as_bob.get_experiment(exp).experiment_id == exp
    assert status_of(lambda: as_bob.set_experiment_tag(exp, "k", "v")) == 403
    assert status_of(lambda: as_bob.create_run(exp)) == 403
    # Nothing was written by the refused calls.
    assert "k" not in admin.get_experiment(exp).tags

    admin = as_user("admin", ADMIN_PASSWORD)
    app_client.revoke_user_permission(bob, "experiment", exp)
    app_client.grant_user_permission(bob, "experiment", exp, "MANAGE")
    result = app_client.get_user_permission(bob, "experiment", exp)
    assert (result.permission, result.allowed) == ("MANAGE", True)
    as_bob = as_user(bob, PASSWORD)
    as_bob.set_experiment_tag(exp, "k", "v")
    run = as_bob.create_run(exp)
    as_bob.log_metric(run.info.run_id, "m", 1.0)
    # MANAGE lets bob hand out permissions on this experiment, and on nothing else.
    as_user("admin", ADMIN_PASSWORD)
    carol = new_user(app_client)
    as_user(bob, PASSWORD)
    from mlflow.server import get_app_client

    bob_app = get_app_client("basic-auth", tracking_uri=app_client.tracking_uri)
    bob_app.grant_user_permission(carol, "experiment", exp, "EDIT")
    other = as_user("admin", ADMIN_PASSWORD).create_experiment(unique_name("exp"))
    as_user(bob, PASSWORD)
    assert status_of(lambda: bob_app.grant_user_permission(carol, "experiment", other, "EDIT")) == 403
    as_bob = as_user(bob, PASSWORD)
    as_bob.delete_experiment(exp)


def test_creators_own_what_they_create_and_others_only_read(app_client, as_user):
    bob, carol = new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("bobs"))
    model = unique_name("model")
    as_bob.create_registered_model(model)
    run = as_bob.create_run(exp)
    as_user("admin", ADMIN_PASSWORD)
    assert app_client.get_user_permission(bob, "experiment", exp).permission == "MANAGE"
    assert app_client.get_user_permission(bob, "registered_model", model).permission == "MANAGE"
    assert app_client.get_user_permission(carol, "experiment", exp).permission == "READ"

    as_carol = as_user(carol, PASSWORD)
    assert as_carol.get_run(run.info.run_id).info.run_id == run.info.run_id
    assert as_carol.get_registered_model(model).name == model
    assert status_of(lambda: as_carol.log_param(run.info.run_id, "p", "1")) == 403
    assert status_of(lambda: as_carol.update_registered_model(model, description="x")) == 403
    assert status_of(lambda: as_carol.delete_registered_model(model)) == 403
    assert status_of(lambda: as_carol.set_terminated(run.info.run_id)) == 403

    # A DENY hides the experiment from carol's searches and refuses its reads.
    as_user("admin", ADMIN_PASSWORD)
    app_client.grant_user_permission(carol, "experiment", exp, "DENY")
    as_carol = as_user(carol, PASSWORD)
    assert status_of(lambda: as_carol.get_experiment(exp)) == 403
    assert status_of(lambda: as_carol.get_run(run.info.run_id)) == 403
    names = [e.experiment_id for e in as_carol.search_experiments(max_results=1000)]
    assert exp not in names
    assert as_carol.search_runs([exp]) == []
    as_bob = as_user(bob, PASSWORD)
    assert exp in [e.experiment_id for e in as_bob.search_experiments(max_results=1000)]
    as_bob.rename_registered_model(model, model + "-v2")
    as_user("admin", ADMIN_PASSWORD)
    assert app_client.get_user_permission(bob, "registered_model", model + "-v2").permission == "MANAGE"


def test_artifacts_and_traces_are_checked(app_client, as_user, auth_server, tmp_path):
    import mlflow

    bob, carol = new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("arts"))
    run = as_bob.create_run(exp)
    f = tmp_path / "a.txt"
    f.write_text("hello")
    as_bob.log_artifact(run.info.run_id, str(f))
    as_carol = as_user(carol, PASSWORD)
    assert [a.path for a in as_carol.list_artifacts(run.info.run_id)] == ["a.txt"]
    artifact_url = f"{auth_server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run.info.run_id}/artifacts/b.txt"
    r = requests.put(artifact_url, data=b"x", auth=(carol, PASSWORD), timeout=30)
    assert r.status_code == 403
    r = requests.put(artifact_url, data=b"x", auth=(bob, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    as_user(bob, PASSWORD)
    mlflow.set_tracking_uri(auth_server.url)
    mlflow.set_experiment(experiment_id=exp)

    @mlflow.trace
    def answer(q):
        return q.upper()

    answer("hi")
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    r = requests.get(f"{auth_server.url}/api/3.0/mlflow/traces/{trace_id}", auth=(carol, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.patch(
        f"{auth_server.url}/api/3.0/mlflow/traces/{trace_id}/tags",
        json={"key": "k", "value": "v"}, auth=(carol, PASSWORD), timeout=30,
    )
    assert r.status_code == 403


def test_ui_artifact_routes_are_checked_on_the_run(app_client, as_user, auth_server):
    """The UI's upload-artifact needs update on the run, /get-artifact read, and
    search-datasets read on each experiment, as MLflow's auth app checks them."""
    bob, carol, dave = new_user(app_client), new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("ui-arts"))
    run_id = as_bob.create_run(exp).info.run_id
    upload = f"{auth_server.url}/ajax-api/2.0/mlflow/upload-artifact"
    params = {"run_uuid": run_id, "path": "u.txt"}
    r = requests.post(upload, params=params, data="from bob", auth=(bob, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(upload, params={**params, "path": "c.txt"}, data="x", auth=(carol, PASSWORD), timeout=30)
    assert r.status_code == 403
    get = f"{auth_server.url}/get-artifact"
    r = requests.get(get, params={"run_uuid": run_id, "path": "u.txt"}, auth=(carol, PASSWORD), timeout=30)
    assert r.status_code == 200 and r.text == "from bob"
    datasets = f"{auth_server.url}/ajax-api/2.0/mlflow/experiments/search-datasets"
    r = requests.post(datasets, json={"experiment_ids": [exp]}, auth=(carol, PASSWORD), timeout=30)
    assert r.status_code == 200, r.text
    as_user("admin", ADMIN_PASSWORD)
    app_client.grant_user_permission(dave, "experiment", exp, "DENY")
    r = requests.get(get, params={"run_uuid": run_id, "path": "u.txt"}, auth=(dave, PASSWORD), timeout=30)
    assert r.status_code == 403
    r = requests.post(datasets, json={"experiment_ids": [exp]}, auth=(dave, PASSWORD), timeout=30)
    assert r.status_code == 403
    assert requests.get(get, params={"run_uuid": run_id, "path": "u.txt"}, timeout=30).status_code == 401


@pytest.mark.ours_only
def test_unknown_routes_are_for_admins_only(auth_server, app_client):
    bob = new_user(app_client)
    url = auth_server.url + "/api/2.0/mlflow/no-such-route"
    assert requests.get(url, auth=(bob, PASSWORD), timeout=30).status_code == 403
    assert requests.get(url, auth=("admin", ADMIN_PASSWORD), timeout=30).status_code == 404


@pytest.mark.ours_only
def test_failed_logins_are_rate_limited():
    tmp = tempfile.mkdtemp(prefix="mlflow-e2e-auth-limit-")
    srv = AuthServer(
        server_choice(), tmp, f"sqlite:///{Path(tmp) / 'auth.db'}", env={"MLFLOW_AUTH_MAX_FAILED_LOGINS": "3"}
    )
    try:
        url = srv.url + "/api/2.0/mlflow/experiments/search"
        for _ in range(3):
            assert requests.get(url, auth=("admin", "wrong-password"), timeout=30).status_code == 401
        r = requests.get(url, auth=("admin", ADMIN_PASSWORD), timeout=30)
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.ours_only
def test_the_server_refuses_to_start_without_an_admin_password():
    tmp = tempfile.mkdtemp(prefix="mlflow-e2e-auth-nopw-")
    try:
        with pytest.raises(RuntimeError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
            AuthServer(
                server_choice(), tmp, f"sqlite:///{Path(tmp) / 'auth.db'}",
                env={"MLFLOW_AUTH_ADMIN_PASSWORD": None},
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.ours_only
def test_cached_logins_end_with_a_password_change_or_deletion(monkeypatch):
    """MLflow's opt-in login cache (auth_cache_ttl_seconds): changes through the API apply at once."""
    from mlflow.server import get_app_client

    tmp = tempfile.mkdtemp(prefix="mlflow-e2e-auth-cache-")
    srv = AuthServer(
        server_choice(), tmp, f"sqlite:///{Path(tmp) / 'auth.db'}", extra_ini="auth_cache_ttl_seconds = 300\n"
    )
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        client = get_app_client("basic-auth", tracking_uri=srv.url)
        client.create_user("cached", PASSWORD)
        url = srv.url + "/api/2.0/mlflow/experiments/search?max_results=1"
        for _ in range(2):
            assert requests.get(url, auth=("cached", PASSWORD), timeout=30).status_code == 200
        assert requests.get(url, auth=("cached", PASSWORD + "x"), timeout=30).status_code == 401
        client.update_user_password("cached", "cached-password-2")
        assert requests.get(url, auth=("cached", PASSWORD), timeout=30).status_code == 401
        assert requests.get(url, auth=("cached", "cached-password-2"), timeout=30).status_code == 200
        client.delete_user("cached")
        assert requests.get(url, auth=("cached", "cached-password-2"), timeout=30).status_code == 401
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_ui_artifact_and_dataset_routes_follow_read_permissions(app_client, as_user, auth_server, tmp_path):
    """The UI's /get-artifact, /model-versions/get-artifact and experiments/search-datasets
    need READ on the run's experiment or the version's model, as MLflow's validators ask."""
    bob, carol = new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("ui-arts"))
    run_id = as_bob.create_run(exp).info.run_id
    f = tmp_path / "a.txt"
    f.write_text("hello")
    as_bob.log_artifact(run_id, str(f), artifact_path="model")
    model = unique_name("ui-model")
    as_bob.create_registered_model(model)
    as_bob.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)

    def get_artifact(user):
        return requests.get(
            f"{auth_server.url}/get-artifact", params={"run_uuid": run_id, "path": "model/a.txt"},
            auth=(user, PASSWORD), timeout=30,
        )

    def version_artifact(user):
        return requests.get(
            f"{auth_server.url}/model-versions/get-artifact", params={"name": model, "version": "1", "path": "a.txt"},
            auth=(user, PASSWORD), timeout=30,
        )

    def search_datasets(user):
        return requests.post(
            f"{auth_server.url}/ajax-api/2.0/mlflow/experiments/search-datasets",
            json={"experiment_ids": [exp]}, auth=(user, PASSWORD), timeout=30,
        )

    def allowed(r):
        # The Python server answers this route with a 500 behind its own proxied-artifact check
        # ("the tracking URI must be a valid http or https URI"); past the permission check all
        # the same.
        if is_oracle() and r.request.url.startswith(f"{auth_server.url}/model-versions/"):
            return r.status_code != 403
        return r.status_code == 200 and r.text == "hello"

    # carol reads by the default READ permission.
    for call in (get_artifact, version_artifact):
        assert allowed(call(carol))
    assert search_datasets(carol).status_code == 200

    as_user("admin", ADMIN_PASSWORD)
    app_client.grant_user_permission(carol, "experiment", exp, "DENY")
    assert get_artifact(carol).status_code == 403
    assert search_datasets(carol).status_code == 403
    assert allowed(version_artifact(carol))  # the model's permission decides here
    app_client.grant_user_permission(carol, "registered_model", model, "DENY")
    assert version_artifact(carol).status_code == 403
    for call in (get_artifact, version_artifact):
        assert allowed(call(bob))


@pytest.mark.ours_only
def test_registering_a_version_needs_read_on_the_source_run(app_client, as_user):
    bob, carol = new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("src-run"))
    run_id = as_bob.create_run(exp).info.run_id
    as_user("admin", ADMIN_PASSWORD)
    app_client.grant_user_permission(carol, "experiment", exp, "DENY")
    as_carol = as_user(carol, PASSWORD)
    model = unique_name("carols")
    as_carol.create_registered_model(model)  # carol owns (MANAGE) the model
    assert status_of(lambda: as_carol.create_model_version(model, f"runs:/{run_id}/m", run_id=run_id)) == 403
    assert as_carol.search_model_versions(f"name = '{model}'") == []
    as_user("admin", ADMIN_PASSWORD)
    app_client.revoke_user_permission(carol, "experiment", exp)
    as_carol = as_user(carol, PASSWORD)
    assert as_carol.create_model_version(model, f"runs:/{run_id}/m", run_id=run_id).version == "1"


GRAPHQL_QUERY = """
query Q($exp: String, $run: String, $model: String) {
  mlflowGetExperiment(input: {experimentId: $exp}) { experiment { experimentId } }
  mlflowGetRun(input: {runId: $run}) { run { info { runId } modelVersions { name } } }
  mlflowSearchRuns(input: {experimentIds: [$exp]}) { runs { info { runId } } }
  mlflowGetMetricHistoryBulkInterval(input: {runIds: [$run], metricKey: "m"}) { metrics { key } }
  mlflowListArtifacts(input: {runId: $run}) { files { path } }
  mlflowSearchModelVersions(input: {filter: $model}) { modelVersions { name } }
}
"""


def test_graphql_answers_each_field_only_for_what_the_caller_may_read(app_client, as_user, auth_server, tmp_path):
    """/graphql is open to every logged-in user, and each of MLflow's protected root fields
    (plus a run's model versions) is checked on its own resource, as MLflow's
    GraphQLAuthorizationMiddleware does: a denied field is null, with no error."""
    bob, carol = new_user(app_client), new_user(app_client)
    as_bob = as_user(bob, PASSWORD)
    exp = as_bob.create_experiment(unique_name("gql"))
    run_id = as_bob.create_run(exp).info.run_id
    as_bob.log_metric(run_id, "m", 1.0)
    f = tmp_path / "a.txt"
    f.write_text("hello")
    as_bob.log_artifact(run_id, str(f))
    model = unique_name("gql-model")
    as_bob.create_registered_model(model)
    as_bob.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)

    def query(user, password=PASSWORD):
        r = requests.post(
            f"{auth_server.url}/graphql",
            json={"query": GRAPHQL_QUERY, "variables": {"exp": exp, "run": run_id, "model": f"name='{model}'"}},
            auth=(user, password),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body.get("errors") is None, body
        return body["data"]

    def everything_visible(data):
        assert data["mlflowGetExperiment"]["experiment"]["experimentId"] == exp
        assert data["mlflowGetRun"]["run"]["info"]["runId"] == run_id
        assert [v["name"] for v in data["mlflowGetRun"]["run"]["modelVersions"]] == [model]
        assert [r["info"]["runId"] for r in data["mlflowSearchRuns"]["runs"]] == [run_id]
        assert [m["key"] for m in data["mlflowGetMetricHistoryBulkInterval"]["metrics"]] == ["m"]
        assert [a["path"] for a in data["mlflowListArtifacts"]["files"]] == ["a.txt"]
        assert [v["name"] for v in data["mlflowSearchModelVersions"]["modelVersions"]] == [model]

    # Unauthenticated: 401 as every other route.
    assert requests.post(f"{auth_server.url}/graphql", json={"query": "{ test { output } }"}, timeout=30).status_code == 401
    # bob owns it all; carol reads by the default READ permission.
    everything_visible(query(bob))
    everything_visible(query(carol))

    as_user("admin", ADMIN_PASSWORD)
    app_client.grant_user_permission(carol, "experiment", exp, "DENY")
    data = query(carol)
    for field in ("mlflowGetExperiment", "mlflowGetRun", "mlflowSearchRuns", "mlflowGetMetricHistoryBulkInterval", "mlflowListArtifacts"):
        assert data[field] is None, (field, data)
    # The registered model's permission decides for its versions.
    assert [v["name"] for v in data["mlflowSearchModelVersions"]["modelVersions"]] == [model]
    app_client.grant_user_permission(carol, "registered_model", model, "DENY")
    data = query(carol)
    assert data["mlflowSearchModelVersions"]["modelVersions"] in ([], None), data
    # The run's own model versions are filtered the same way once the run is readable again.
    app_client.revoke_user_permission(carol, "experiment", exp)
    data = query(carol)
    assert data["mlflowGetRun"]["run"]["info"]["runId"] == run_id
    assert data["mlflowGetRun"]["run"]["modelVersions"] in ([], None), data
    everything_visible(query(bob))
    everything_visible(query("admin", ADMIN_PASSWORD))
