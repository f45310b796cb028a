"""The model registry through the official client 3.17.2: log_model with
registered_model_name and loading through models:/ URIs (version, stage in any case, alias),
register_model from runs:/, stages with archiving, search grammars with ordering and paging,
tags, rename, deletes, error codes, wire shapes and concurrent creation."""

import concurrent.futures as cf

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from e2e_support import unique_name

API = "/api/2.0/mlflow"
X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [3.5, 2.0]])


def error_code_of(fn, *args, **kwargs):
    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    return e.value.error_code


def fit(slope):
    y = X @ np.array([slope, 2.0]) + 0.5
    return LinearRegression().fit(X, y)


def api(server, method, path, **kw):
    return requests.request(method, f"{server.url}{API}{path}", timeout=30, **kw)


def new_run(client, experiment_id):
    run = client.create_run(experiment_id)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="module")
def registered(server):
    """A registered model with two versions logged by sklearn.log_model: v1 from `m1`,
    v2 from `m2` (different coefficients)."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        client = MlflowClient(tracking_uri=server.url)
        eid = client.create_experiment(unique_name("reg"))
        name = unique_name("my-model")
        models = {1: fit(1.0), 2: fit(-3.0)}
        infos = {}
        for version, model in models.items():
            with mlflow.start_run(experiment_id=eid):
                infos[version] = mlflow.sklearn.log_model(
                    model, name="model", registered_model_name=name
                )
        yield {"name": name, "models": models, "infos": infos, "experiment_id": eid}
    finally:
        mlflow.set_tracking_uri(previous)


def test_log_model_registers_ready_versions(client, registered):
    name = registered["name"]
    for version in (1, 2):
        assert str(registered["infos"][version].registered_model_version) == str(version)
        mv = client.get_model_version(name, str(version))
        assert mv.status == "READY"
        assert mv.current_stage == "None"
        assert mv.source == f"models:/{registered['infos'][version].model_id}"
        assert mv.run_id == registered["infos"][version].run_id


def test_load_by_version_predicts_like_the_original(tracking, registered):
    name = registered["name"]
    for version, model in registered["models"].items():
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_download_uri_is_the_logged_model_location(client, registered):
    name = registered["name"]
    uri = client.get_model_version_download_uri(name, "1")
    model_id = registered["infos"][1].model_id
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/models/{model_id}/artifacts")


def test_logged_model_records_its_versions(client, registered):
    model = client.get_logged_model(registered["infos"][1].model_id)
    assert registered["name"] in model.tags.get("mlflow.modelVersions", "")


def test_stages_with_archiving_and_loading_by_stage(tracking, client, registered):
    name = registered["name"]
    m1, m2 = registered["models"][1], registered["models"][2]
    mv = client.transition_model_version_stage(name, "1", "Staging")
    assert mv.current_stage == "Staging"
    mv = client.transition_model_version_stage(name, "1", "production")
    assert mv.current_stage == "Production"
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(X), m1.predict(X)
    )
    mv = client.transition_model_version_stage(
        name, "2", "Production", archive_existing_versions=True
    )
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    for uri in (f"models:/{name}/Production", f"models:/{name}/production"):
        np.testing.assert_allclose(mlflow.pyfunc.load_model(uri).predict(X), m2.predict(X))
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    stages = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert stages == {"Archived": "1", "Production": "2"}
    rm = client.get_registered_model(name)
    assert {v.current_stage for v in rm.latest_versions} == {"Archived", "Production"}


def test_alias_loading(tracking, client, registered):
    name = registered["name"]
    client.set_registered_model_alias(name, "champion", 1)
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X),
        registered["models"][1].predict(X),
    )
    mv = client.get_model_version_by_alias(name, "champion")
    assert mv.version == "1" and mv.aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    # An alias moves when set again; `latest` is the highest version.
    client.set_registered_model_alias(name, "champion", 2)
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version_by_alias(name, "latest").version == "2"
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}/latest").predict(X),
        registered["models"][2].predict(X),
    )
    client.delete_registered_model_alias(name, "champion")
    assert error_code_of(client.get_model_version_by_alias, name, "champion") == (
        "INVALID_PARAMETER_VALUE"
    )


def test_register_model_from_runs_uri(tracking, client, experiment_id):
    model = fit(7.0)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.sklearn.log_model(model, name="model")
    name = unique_name("from-run")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert mv.version == "1"
    got = client.get_model_version(name, "1")
    assert got.run_id == run.info.run_id and got.status == "READY"
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X), model.predict(X)
    )


def test_create_model_version_with_runs_source(client, experiment_id):
    run_id = new_run(client, experiment_id)
    name = unique_name("runs-src")
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert (mv.version, mv.run_id, mv.status) == ("1", run_id, "READY")
    assert client.get_model_version_download_uri(name, "1") == f"runs:/{run_id}/model"


def test_wire_shapes(server, client, experiment_id):
    run_id = new_run(client, experiment_id)
    name = unique_name("wire")
    r = api(server, "POST", "/registered-models/create", json={"name": name})
    assert r.status_code == 200
    rm = r.json()["registered_model"]
    assert rm["name"] == name and rm["creation_timestamp"] == rm["last_updated_timestamp"]
    assert "latest_versions" not in rm and "description" not in rm
    r = api(
        server,
        "POST",
        "/model-versions/create",
        json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    mv = r.json()["model_version"]
    assert mv["version"] == "1" and mv["status"] == "READY" and mv["current_stage"] == "None"
    assert mv["description"] == "" and mv["run_link"] == "" and mv["run_id"] == run_id
    # get-latest-versions answers POST (what the client uses) and GET.
    r = api(server, "POST", "/registered-models/get-latest-versions", json={"name": name})
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]
    r = api(
        server,
        "GET",
        "/registered-models/get-latest-versions",
        params={"name": name, "stages": "none"},
    )
    assert [v["version"] for v in r.json()["model_versions"]] == ["1"]
    r = api(
        server,
        "GET",
        "/registered-models/get-latest-versions",
        params={"name": name, "stages": "Production"},
    )
    assert r.status_code == 200 and r.json().get("model_versions", []) == []
    # The /ajax-api prefix serves the registry too.
    r = requests.get(
        f"{server.url}/ajax-api/2.0/mlflow/registered-models/get", params={"name": name}, timeout=30
    )
    assert r.json()["registered_model"]["latest_versions"][0]["version"] == "1"


def make_models(client, experiment_id, prefix, count):
    run_id = new_run(client, experiment_id)
    names = [f"{prefix}-{i}" for i in range(count)]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={"team": "a" if i % 2 == 0 else "b"})
        for _ in range(i + 1):
            client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    return names, run_id


def test_search_registered_models(client, experiment_id):
    prefix = unique_name("srch")
    names, _ = make_models(client, experiment_id, prefix, 5)
    found = client.search_registered_models(f"name LIKE '{prefix}-%'")
    assert [m.name for m in found] == names
    found = client.search_registered_models(f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [m.name for m in found] == names[::-1]
    found = client.search_registered_models(
        f"name LIKE '{prefix}-%' AND tags.team = 'a'", order_by=["name ASC"]
    )
    assert [m.name for m in found] == names[0::2]
    found = client.search_registered_models(f"name = '{names[3]}'")
    assert [m.name for m in found] == [names[3]]
    found = client.search_registered_models(f"name IN ('{names[1]}', '{names[2]}')")
    assert sorted(m.name for m in found) == names[1:3]
    # Paging: two at a time, in order, with no repeats.
    seen, token = [], None
    while True:
        page = client.search_registered_models(
            f"name LIKE '{prefix}-%'", max_results=2, page_token=token
        )
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == names
    # last_updated_timestamp ordering: the model touched last comes first.
    client.update_registered_model(names[0], description="touched")
    found = client.search_registered_models(
        f"name LIKE '{prefix}-%'", order_by=["last_updated_timestamp DESC"]
    )
    assert found[0].name == names[0] and found[0].description == "touched"


def test_search_hides_prompts_unless_asked(server, client):
    prefix = unique_name("prm")
    for name, tags in (
        (f"{prefix}-model", []),
        (f"{prefix}-prompt", [{"key": "mlflow.prompt.is_prompt", "value": "true"}]),
    ):
        r = api(server, "POST", "/registered-models/create", json={"name": name, "tags": tags})
        assert r.status_code == 200, r.text
    found = client.search_registered_models(f"name LIKE '{prefix}-%'")
    assert [m.name for m in found] == [f"{prefix}-model"]
    r = api(
        server,
        "GET",
        "/registered-models/search",
        params={"filter": f"name LIKE '{prefix}-%'"},
    )
    assert [m["name"] for m in r.json()["registered_models"]] == [f"{prefix}-model"]
    r = api(
        server,
        "GET",
        "/registered-models/search",
        params={"filter": f"name LIKE '{prefix}-%' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
    )
    assert [m["name"] for m in r.json()["registered_models"]] == [f"{prefix}-prompt"]


def test_search_model_versions(client, experiment_id):
    prefix = unique_name("mvs")
    names, run_id = make_models(client, experiment_id, prefix, 3)
    found = client.search_model_versions(f"name = '{names[2]}'")
    assert [v.version for v in found] == ["3", "2", "1"]
    found = client.search_model_versions(
        f"name = '{names[2]}' AND version_number >= 2", order_by=["version_number ASC"]
    )
    assert [v.version for v in found] == ["2", "3"]
    found = client.search_model_versions(f"run_id = '{run_id}'", order_by=["name", "version_number"])
    assert [(v.name, v.version) for v in found] == [
        (names[0], "1"),
        (names[1], "1"),
        (names[1], "2"),
        (names[2], "1"),
        (names[2], "2"),
        (names[2], "3"),
    ]
    found = client.search_model_versions(f"name IN ('{names[0]}', '{names[1]}')")
    assert len(found) == 3
    found = client.search_model_versions(f"source_path = 'runs:/{run_id}/model' AND name = '{names[1]}'")
    assert len(found) == 2
    client.set_model_version_tag(names[2], "2", "quality", "gold")
    found = client.search_model_versions(f"name = '{names[2]}' AND tags.quality = 'gold'")
    assert [v.version for v in found] == ["2"]
    # Raw paging with the REST API.
    seen, token = [], None
    while True:
        params = {"filter": f"run_id = '{run_id}'", "max_results": 4}
        if token:
            params["page_token"] = token
        body = requests.get(
            f"{client._tracking_client.tracking_uri}{API}/model-versions/search",
            params=params,
            timeout=30,
        ).json()
        seen += [(v["name"], v["version"]) for v in body.get("model_versions", [])]
        token = body.get("next_page_token")
        if not token:
            break
    assert len(seen) == 6 and len(set(seen)) == 6


def test_tags(client, experiment_id):
    run_id = new_run(client, experiment_id)
    name = unique_name("tags")
    client.create_registered_model(name, tags={"a": "1"}, description="d")
    client.set_registered_model_tag(name, "b", "2")
    client.set_registered_model_tag(name, "a", "3")
    assert client.get_registered_model(name).tags == {"a": "3", "b": "2"}
    client.delete_registered_model_tag(name, "a")
    assert client.get_registered_model(name).tags == {"b": "2"}
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags={"x": "y"})
    client.set_model_version_tag(name, "1", "k", "v")
    assert client.get_model_version(name, "1").tags == {"x": "y", "k": "v"}
    client.delete_model_version_tag(name, "1", "x")
    assert client.get_model_version(name, "1").tags == {"k": "v"}
    mv = client.update_model_version(name, "1", description="new description")
    assert mv.description == "new description"


def test_rename_moves_versions_tags_and_aliases(client, experiment_id):
    run_id = new_run(client, experiment_id)
    name, new_name = unique_name("old"), unique_name("new")
    client.create_registered_model(name, tags={"t": "v"})
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"})
    client.set_registered_model_alias(name, "best", 2)
    client.rename_registered_model(name, new_name)
    rm = client.get_registered_model(new_name)
    assert rm.tags == {"t": "v"} and rm.aliases == {"best": "2"}
    assert [v.name for v in rm.latest_versions] == [new_name]
    assert client.get_model_version(new_name, "1").tags == {"k": "v"}
    assert client.get_model_version_by_alias(new_name, "best").version == "2"
    assert error_code_of(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"
    # Numbering continues after the rename.
    assert client.create_model_version(new_name, f"runs:/{run_id}/m", run_id=run_id).version == "3"


def test_deletes(client, experiment_id):
    run_id = new_run(client, experiment_id)
    name = unique_name("del")
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(name, "gone", 2)
    client.delete_model_version(name, "2")
    assert error_code_of(client.get_model_version, name, "2") == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_registered_model(name).aliases == {}
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    # A deleted version's number is never reused.
    assert client.create_model_version(name, f"runs:/{run_id}/m", run_id=run_id).version == "3"
    client.delete_registered_model(name)
    assert error_code_of(client.get_registered_model, name) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code_of(client.get_model_version, name, "1") == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_model_versions(f"name = '{name}'") == []
    # The name is free again.
    client.create_registered_model(name)
    assert client.create_model_version(name, f"runs:/{run_id}/m", run_id=run_id).version == "1"


def test_error_codes(server, client, experiment_id):
    run_id = new_run(client, experiment_id)
    missing = unique_name("missing")
    assert error_code_of(client.get_registered_model, missing) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code_of(client.get_model_version, missing, "1") == "RESOURCE_DOES_NOT_EXIST"
    assert error_code_of(client.delete_registered_model, missing) == "RESOURCE_DOES_NOT_EXIST"
    name = unique_name("err")
    client.create_registered_model(name)
    assert error_code_of(client.create_registered_model, name) == "RESOURCE_ALREADY_EXISTS"
    assert error_code_of(client.get_model_version, name, "1") == "RESOURCE_DOES_NOT_EXIST"
    assert error_code_of(client.set_registered_model_alias, name, "a", 1) == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert error_code_of(client.get_model_version_by_alias, name, "nope") == (
        "INVALID_PARAMETER_VALUE"
    )
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    other = unique_name("other")
    client.create_registered_model(other)
    assert error_code_of(client.rename_registered_model, name, other) == "RESOURCE_ALREADY_EXISTS"
    cases = [
        ("POST", "/registered-models/create", {"name": "a/b"}),
        ("POST", "/registered-models/create", {"name": ""}),
        ("POST", "/registered-models/create", {}),
        ("GET", "/model-versions/get", {"name": name, "version": "one"}),
        (
            "POST",
            "/model-versions/transition-stage",
            {"name": name, "version": "1", "stage": "Prod", "archive_existing_versions": False},
        ),
        ("POST", "/registered-models/alias", {"name": name, "alias": "latest", "version": "1"}),
        ("POST", "/registered-models/alias", {"name": name, "alias": "v1", "version": "1"}),
        ("POST", "/registered-models/alias", {"name": name, "alias": "a b", "version": "1"}),
        ("GET", "/registered-models/search", {"filter": "run_id = 'x'"}),
        ("GET", "/registered-models/search", {"filter": "name = 'a' OR name = 'b'"}),
        ("GET", "/registered-models/search", {"order_by": "bogus"}),
        ("GET", "/registered-models/search", {"max_results": 1001}),
        ("GET", "/model-versions/search", {"filter": "version_number = 1.5"}),
        ("GET", "/model-versions/search", {"filter": "status = 'READY'"}),
        ("GET", "/model-versions/search", {"page_token": "!!"}),
        ("POST", "/registered-models/get-latest-versions", {"name": name, "stages": ["Prod"]}),
    ]
    for method, path, payload in cases:
        kw = {"params": payload} if method == "GET" else {"json": payload}
        r = api(server, method, path, **kw)
        assert r.status_code == 400, (path, payload, r.status_code, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (path, payload, r.text)


@pytest.mark.ours_only
def test_archive_with_inactive_stage_is_a_client_error(server, client, experiment_id):
    # MLflow answers this with a 500 (which the client retries); we answer 400.
    run_id = new_run(client, experiment_id)
    name = unique_name("arch")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    r = api(
        server,
        "POST",
        "/model-versions/transition-stage",
        json={"name": name, "version": "1", "stage": "Archived", "archive_existing_versions": True},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_concurrent_create_registered_model(server):
    name = unique_name("race")
    with cf.ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: api(server, "POST", "/registered-models/create", json={"name": name}),
                range(8),
            )
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [400] * 7, [r.text for r in responses]
    assert {r.json().get("error_code") for r in responses if r.status_code == 400} == {
        "RESOURCE_ALREADY_EXISTS"
    }


def test_concurrent_versions_never_share_a_number(server, client, experiment_id):
    run_id = new_run(client, experiment_id)
    name = unique_name("numbers")
    client.create_registered_model(name)
    payload = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
    with cf.ThreadPoolExecutor(12) as pool:
        responses = list(
            pool.map(
                lambda _: api(server, "POST", "/model-versions/create", json=payload), range(24)
            )
        )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    versions = sorted(int(r.json()["model_version"]["version"]) for r in responses)
    assert versions == list(range(1, 25))


@pytest.mark.ours_only
def test_separate_registry_store_is_refused(tmp_path):
    # The registry lives in the backend store; a different --registry-store-uri is refused
    # at startup instead of being silently ignored.
    import subprocess

    from e2e_support import free_port, our_binary, server_command

    cmd = server_command(our_binary(), free_port(), f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "art")
    other = cmd + ["--registry-store-uri", f"sqlite:///{tmp_path / 'b.db'}"]
    proc = subprocess.run(other, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "--registry-store-uri" in proc.stderr
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()


def test_copy_model_version(tracking, client, registered):
    """copy_model_version sends models:/<name>/<version> as the source; the copy resolves to
    the original's files and loads the same model."""
    src = registered["name"]
    dst = unique_name("copy")
    mv = client.copy_model_version(f"models:/{src}/1", dst)
    assert mv.version == "1" and mv.source == f"models:/{src}/1"
    assert client.get_model_version_download_uri(dst, "1") == client.get_model_version_download_uri(
        src, "1"
    )
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(f"models:/{dst}/1").predict(X),
        registered["models"][1].predict(X),
    )


def test_values_longer_than_their_columns(server):
    """SQLite keeps values longer than MLflow's column widths (as the Python server does
    there); PostgreSQL and MySQL would refuse them, so there they are a 400, not a 500."""
    from e2e_support import backend_choice, is_oracle

    long_text = "d" * 6000
    name = unique_name("long")
    r = api(server, "POST", "/registered-models/create", json={"name": name, "description": long_text})
    if backend_choice() == "sqlite":
        assert r.status_code == 200, r.text
        r = api(server, "GET", "/registered-models/get", params={"name": name})
        assert r.json()["registered_model"]["description"] == long_text
    elif not is_oracle():
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
