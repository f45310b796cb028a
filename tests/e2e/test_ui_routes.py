"""The web UI's routes outside the REST API, as MLflow 3.17.2's server answers them:
`upload-artifact`, a logged model's `artifacts/directories` and `artifacts/files`,
`runs/create-promptlab-run`, and the path checks of `/get-artifact`, `artifacts/list` and
`/model-versions/get-artifact` (MLflow's `Invalid path`, before anything is read).

The session server stores artifacts through its proxied store; tests/artifacts/
test_ui_routes.py repeats the storage side on S3, Azure and GCS emulators and with a
non-proxied `--default-artifact-root`."""

import json

import pytest
import requests

from e2e_support import unique_name

HOSTILE_PATHS = ["../path", "a/../../x", "/etc/passwd", "%2e%2e/x", "a/%252e%252e/%252e%252e/x", "x#y"]


def assert_error(r, code, message):
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == code
    assert message in body["message"]


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


# ---------------------------------------------------------------- upload-artifact


def test_upload_then_download_and_list(tracking, run_id):
    url = f"{tracking.url}/ajax-api/2.0/mlflow/upload-artifact"
    r = requests.post(url, params={"run_uuid": run_id, "path": "notes/a.txt"}, data="hello world")
    assert r.status_code == 200 and r.json() == {}
    got = requests.get(f"{tracking.url}/get-artifact", params={"run_uuid": run_id, "path": "notes/a.txt"})
    assert got.status_code == 200 and got.text == "hello world"
    assert got.headers["Content-Type"].startswith("text/plain")
    assert got.headers["Content-Disposition"] == "attachment; filename=a.txt"
    listing = requests.get(
        f"{tracking.url}/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "notes"}
    ).json()
    assert listing["files"] == [{"path": "notes/a.txt", "is_dir": False, "file_size": 11}]
    # The official client sees the uploaded file too.
    from mlflow import MlflowClient

    assert [f.path for f in MlflowClient(tracking.url).list_artifacts(run_id)] == ["notes"]


def test_upload_rejects_invalid_requests_in_mlflows_order(tracking, run_id):
    url = f"{tracking.url}/ajax-api/2.0/mlflow/upload-artifact"
    v = "INVALID_PARAMETER_VALUE"
    assert_error(requests.post(url, data="x"), v, "Request must specify run_uuid.")
    assert_error(requests.post(url, params={"run_uuid": run_id}, data="x"), v, "Request must specify path.")
    assert_error(requests.post(url, params={"run_uuid": run_id, "path": ""}, data="x"), v, "Request must specify path.")
    for bad in HOSTILE_PATHS:
        r = requests.post(url, params={"run_uuid": run_id, "path": bad}, data="x")
        assert_error(r, v, "Invalid path")
        assert r.json()["message"] == "Invalid path"
    assert_error(requests.post(url, params={"run_uuid": run_id, "path": "t.txt"}), v, "Request must specify data.")
    big = b"0" * (10 * 1024 * 1024 + 1)
    assert_error(
        requests.post(url, params={"run_uuid": run_id, "path": "big.bin"}, data=big),
        v,
        "Artifact size is too large. Max size is 10MB.",
    )
    # A missing run is MLflow's 404, after every check of the request itself.
    r = requests.post(url, params={"run_uuid": "0" * 32, "path": "t.txt"}, data="x")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Nothing was written by the refused calls.
    listing = requests.get(f"{tracking.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}).json()
    assert listing.get("files", []) == []
    # Only the UI's prefix serves it, and only POST.
    assert requests.post(f"{tracking.url}/api/2.0/mlflow/upload-artifact", data="x").status_code == 404
    assert requests.get(url).status_code == 405


def test_locations_outside_the_servers_stores_are_refused(tracking, client, tmp_path):
    """An experiment may name any artifact location; the server only reads and writes its
    own stores, so a location elsewhere is a 400 on every UI route and nothing is written."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("no")
    exp = client.create_experiment(unique_name("outside"), artifact_location=outside.as_uri())
    run = client.create_run(exp)
    run_id = run.info.run_id
    for r in [
        requests.post(
            f"{tracking.url}/ajax-api/2.0/mlflow/upload-artifact", params={"run_uuid": run_id, "path": "x.txt"}, data="x"
        ),
        requests.get(f"{tracking.url}/get-artifact", params={"run_id": run_id, "path": "x.txt"}),
        requests.get(f"{tracking.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}),
    ]:
        assert_error(r, "INVALID_PARAMETER_VALUE", "outside this server's artifact stores")
    model = client.create_logged_model(exp)
    r = requests.get(f"{tracking.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/directories")
    assert_error(r, "INVALID_PARAMETER_VALUE", "outside this server's artifact stores")
    assert sorted(p.name for p in outside.rglob("*")) == ["secret.txt"]


# ---------------------------------------------------------------- path validation


def test_path_validation_answers_invalid_path_before_reading(tracking, run_id):
    """MLflow's test_path_validation, with more hostile forms; the model version does not
    even exist: the path is refused first."""
    for bad in HOSTILE_PATHS:
        for url, params in [
            (f"{tracking.url}/api/2.0/mlflow/artifacts/list", {"run_id": run_id, "path": bad}),
            (f"{tracking.url}/get-artifact", {"run_id": run_id, "path": bad}),
            (f"{tracking.url}//model-versions/get-artifact", {"name": "model", "version": 1, "path": bad}),
            (f"{tracking.url}/model-versions/get-artifact", {"name": "nope", "version": 1, "path": bad}),
        ]:
            r = requests.get(url, params=params)
            assert r.status_code == 400, (url, bad, r.text)
            assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}, (url, bad)


def test_repeated_slashes_redirect_to_the_merged_path(tracking, run_id):
    r = requests.get(f"{tracking.url}//get-artifact", params={"run_id": run_id, "path": "x"}, allow_redirects=False)
    assert r.status_code == 308
    assert r.headers["Location"] == f"/get-artifact?run_id={run_id}&path=x"
    assert requests.get(f"{tracking.url}//no/such//route").status_code == 404


def test_log_image_download_names(tracking):
    """MLflow's test_rest_get_artifact_api_log_image: images logged with log_image are
    listed and downloaded with Flask's unquoted attachment name."""
    import io

    import mlflow
    import numpy as np
    from PIL import Image

    image = np.random.randint(0, 256, size=(20, 20, 3), dtype=np.uint8)
    with mlflow.start_run() as run:
        mlflow.log_image(image, key="dog", step=20, timestamp=100, synchronous=True)
    files = requests.get(
        f"{tracking.url}/ajax-api/2.0/mlflow/artifacts/list", params={"path": "images", "run_id": run.info.run_id}
    ).json()["files"]
    assert files
    for f in files:
        r = requests.get(f"{tracking.url}/get-artifact", params={"run_id": run.info.run_id, "path": f["path"]})
        assert r.status_code == 200
        name = f["path"].rsplit("/", 1)[1]
        assert r.headers["Content-Disposition"] == f"attachment; filename={name}"
        assert name.startswith("dog+step+20+timestamp+100")
        if name.endswith(".png"):
            assert r.headers["Content-Type"] == "image/png"
            assert (np.asarray(Image.open(io.BytesIO(r.content))) == image).all()


# ---------------------------------------------------------------- logged-model artifacts


@pytest.fixture
def logged_model(client, experiment_id, tmp_path):
    model = client.create_logged_model(experiment_id)
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "MLmodel").write_text(f"model_id: {model.model_id}\n")
    (src / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 10)
    client.log_model_artifacts(model.model_id, str(src))
    return model


@pytest.mark.parametrize("prefix", ["api", "ajax-api"])
def test_logged_model_directories(tracking, logged_model, prefix):
    base = f"{tracking.url}/{prefix}/2.0/mlflow/logged-models/{logged_model.model_id}/artifacts/directories"
    body = requests.get(base).json()
    assert body["root_uri"] == logged_model.artifact_location
    assert sorted(body["files"], key=lambda f: f["path"]) == [
        {"path": "MLmodel", "is_dir": False, "file_size": len(f"model_id: {logged_model.model_id}\n")},
        {"path": "sub", "is_dir": True},
    ]
    sub = requests.get(base, params={"artifact_directory_path": "sub"}).json()
    assert sub["files"] == [{"path": "sub/weights.bin", "is_dir": False, "file_size": 20}]
    for bad in HOSTILE_PATHS:
        assert_error(requests.get(base, params={"artifact_directory_path": bad}), "INVALID_PARAMETER_VALUE", "Invalid path")
    r = requests.get(f"{tracking.url}/{prefix}/2.0/mlflow/logged-models/m-{'0' * 32}/artifacts/directories")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_logged_model_files(tracking, logged_model):
    base = f"{tracking.url}/ajax-api/2.0/mlflow/logged-models/{logged_model.model_id}/artifacts/files"
    r = requests.get(base, params={"artifact_file_path": "MLmodel"})
    assert r.status_code == 200 and logged_model.model_id in r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["Content-Disposition"] == "attachment; filename=MLmodel"
    r = requests.get(base, params={"artifact_file_path": "sub/weights.bin"})
    assert r.content == b"\x00\x01" * 10 and r.headers["Content-Type"] == "application/octet-stream"
    assert_error(requests.get(base), "BAD_REQUEST", 'Request must include the "artifact_file_path" query parameter.')
    for bad in HOSTILE_PATHS:
        assert_error(requests.get(base, params={"artifact_file_path": bad}), "INVALID_PARAMETER_VALUE", "Invalid path")
    assert requests.get(base, params={"artifact_file_path": "nope.txt"}).status_code == 404
    # MLflow serves the file route under the UI's prefix only.
    api = base.replace("/ajax-api/", "/api/")
    assert requests.get(api, params={"artifact_file_path": "MLmodel"}).status_code == 404


def test_logged_model_of_pyfunc_log_model(tracking):
    """MLflow's test_list_logged_model_artifacts and test_get_logged_model_artifact."""
    import mlflow

    class Model(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    info = mlflow.pyfunc.log_model(name="model", python_model=Model())
    base = f"{tracking.url}/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts"
    paths = [f["path"] for f in requests.get(f"{base}/directories").json()["files"]]
    assert "MLmodel" in paths
    r = requests.get(f"{base}/files", params={"artifact_file_path": "MLmodel"})
    assert r.status_code == 200 and info.model_id in r.text


# ---------------------------------------------------------------- promptlab runs

PROMPTLAB_REQUIRED = [
    ("experiment_id", None),
    ("prompt_template", "Tell me about {{ topic }}"),
    ("prompt_parameters", [{"key": "topic", "value": "rust"}]),
    ("model_route", "my_route"),
    ("model_input", "Tell me about rust"),
    ("mlflow_version", "3.17.2"),
]


def test_promptlab_rejects_invalid_requests(tracking, experiment_id):
    url = f"{tracking.url}/ajax-api/2.0/mlflow/runs/create-promptlab-run"
    body = {}
    for name, value in PROMPTLAB_REQUIRED:
        assert_error(requests.post(url, json=body), "INVALID_PARAMETER_VALUE", f"CreatePromptlabRun request must specify {name}.")
        body[name] = experiment_id if value is None else value
    # Empty values count as missing, as in MLflow.
    assert_error(
        requests.post(url, json={**body, "prompt_parameters": []}),
        "INVALID_PARAMETER_VALUE",
        "CreatePromptlabRun request must specify prompt_parameters.",
    )
    r = requests.post(url, data="experiment_id=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(url, json={**body, "experiment_id": "987654321"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_promptlab_run(tracking, client, experiment_id):
    url = f"{tracking.url}/ajax-api/2.0/mlflow/runs/create-promptlab-run"
    name = unique_name("promptlab")
    r = requests.post(
        url,
        json={
            "experiment_id": experiment_id,
            "run_name": name,
            "prompt_template": "Tell me about {{ topic }}",
            "prompt_parameters": [{"key": "topic", "value": "rust"}],
            "model_route": "my_route",
            "model_parameters": [{"key": "temperature", "value": 0.1}],
            "model_input": "Tell me about rust",
            "model_output": "It is a language",
            "model_output_parameters": [{"key": "latency", "value": "100"}],
            "mlflow_version": "1.0.0",
            "user_id": "username",
            "start_time": 456,
        },
    )
    assert r.status_code == 200, r.text
    run = r.json()["run"]
    info, data = run["info"], run["data"]
    assert info["run_name"] == name and info["experiment_id"] == experiment_id
    assert info["user_id"] == "username" and info["status"] == "FINISHED" and info["start_time"] == 456
    assert info["end_time"] >= 456
    params = {p["key"]: p["value"] for p in data["params"]}
    assert params == {"model_route": "my_route", "prompt_template": "Tell me about {{ topic }}", "temperature": "0.1"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["mlflow.loggedArtifacts"] == '[{"path": "eval_results_table.json", "type": "table"}]'
    assert tags["mlflow.runSourceType"] == "PROMPT_ENGINEERING"
    assert json.loads(tags["mlflow.log-model.history"])[0]["artifact_path"] == "model"

    run_id = info["run_id"]
    table = client.load_table(experiment_id, "eval_results_table.json", run_ids=[run_id])
    assert list(table.columns[:4]) == ["topic", "prompt", "output", "latency"]
    assert table.iloc[0]["output"] == "It is a language" and str(table.iloc[0]["latency"]) == "100"
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["eval_results_table.json", "model"]
    model_files = {f.path for f in client.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/parameters.yaml", "model/requirements.txt"} <= model_files

    # The MLmodel and parameters are what MLflow's promptlab loader reads.
    import yaml
    from mlflow.models import Model

    local = client.download_artifacts(run_id, "model")
    mlmodel = Model.load(local)
    assert mlmodel.flavors["python_function"]["loader_module"] == "mlflow.prompt.promptlab_model"
    assert mlmodel.run_id == run_id
    assert [c["name"] for c in mlmodel.signature.inputs.to_dict()] == ["topic"]
    with open(f"{local}/parameters.yaml") as f:
        parameters = yaml.safe_load(f)
    assert parameters == {
        "prompt_template": "Tell me about {{ topic }}",
        "prompt_parameters": {"topic": "rust"},
        "model_parameters": {"temperature": "0.1"},
        "model_route": "my_route",
    }
