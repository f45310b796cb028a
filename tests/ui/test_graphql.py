"""The requests of MLflow's web UI beyond the REST API, against our binary with data logged by
the official client: `/graphql` with the bundle's own queries (read from the installed UI's
JS), MLflow's answer shapes (errors as messages, the failed field null), batching and GET;
`experiments/search-datasets`, `/get-artifact`, `/model-versions/get-artifact` and the
stubs MLflow itself answers when a feature is off."""

import re
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import REPO, ServerProcess, our_binary  # noqa: E402

BUNDLE = next((REPO / ".venv/lib").glob("python3*/site-packages/mlflow/server/js/build"))


def bundle_query(name):
    """The query text the UI sends, as it is in the bundle."""
    for js in (BUNDLE / "static/js").glob("*.js"):
        text = js.read_text(errors="replace")
        start = text.find(f"query {name}(")
        if start >= 0:
            return text[start : text.index("`", start)].replace("\\n", "\n")
    raise AssertionError(f"query {name} not in the bundle")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import mlflow
    import numpy as np
    from mlflow import MlflowClient

    srv = ServerProcess(our_binary(), tmp_path_factory.mktemp("ui-graphql"))
    try:
        mlflow.set_tracking_uri(srv.url)
        exp = mlflow.create_experiment("ui-graphql", tags={"team": "a"})
        runs = []
        for i in range(3):
            with mlflow.start_run(experiment_id=exp, run_name=f"g-{i}") as run:
                mlflow.log_param("lr", f"0.{i + 1}")
                for step in range(4):
                    mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
                mlflow.log_metric("odd", float("nan"))
                mlflow.log_input(mlflow.data.from_numpy(np.arange(5), name="train"), context="training")
                runs.append(run.info.run_id)
        with mlflow.start_run(run_id=runs[0]):
            mlflow.log_text("artifact_path: model\n", "model/MLmodel")
        client = MlflowClient(srv.url)
        client.create_registered_model("g-model")
        client.create_model_version("g-model", f"runs:/{runs[0]}/model", run_id=runs[0])
        yield {"url": srv.url, "exp": exp, "runs": runs}
    finally:
        srv.stop()


def gql(data, query, variables=None, **extra):
    r = requests.post(data["url"] + "/graphql", json={"query": query, "variables": variables, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_get_experiment(data):
    body = gql(data, bundle_query("MlflowGetExperimentQuery"), {"input": {"experimentId": data["exp"]}})
    assert body["errors"] is None
    exp = body["data"]["mlflowGetExperiment"]["experiment"]
    assert exp["name"] == "ui-graphql" and exp["experimentId"] == data["exp"]
    assert {"key": "team", "value": "a"} in exp["tags"]
    assert re.fullmatch(r"\d{13}", exp["creationTime"]) and exp["lifecycleStage"] == "active"


def test_get_run_with_experiment_versions_inputs(data):
    body = gql(data, bundle_query("GetRun"), {"data": {"runId": data["runs"][0]}})
    assert body["errors"] is None
    run = body["data"]["mlflowGetRun"]["run"]
    assert run["info"]["runName"] == "g-0" and run["info"]["status"] == "FINISHED"
    assert run["experiment"]["name"] == "ui-graphql"
    assert [(v["name"], v["version"], v["status"]) for v in run["modelVersions"]] == [("g-model", "1", "READY")]
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["loss"]["step"] == "3" and metrics["odd"]["value"] is None  # NaN is null
    (ds,) = run["inputs"]["datasetInputs"]
    assert ds["dataset"]["name"] == "train" and ds["tags"] == [{"key": "mlflow.data.context", "value": "training"}]
    assert run["outputs"] == {"modelOutputs": []}


def test_search_runs_and_metric_history(data):
    body = gql(
        data,
        bundle_query("SearchRuns"),
        {"data": {"experimentIds": [data["exp"]], "filter": "params.lr != '0.2'", "orderBy": ["params.lr DESC"]}},
    )
    assert body["errors"] is None
    names = [r["info"]["runName"] for r in body["data"]["mlflowSearchRuns"]["runs"]]
    assert names == ["g-2", "g-0"]
    hist = gql(
        data, bundle_query("GetMetricHistoryBulkInterval"), {"data": {"runIds": data["runs"], "metricKey": "loss"}}
    )["data"]["mlflowGetMetricHistoryBulkInterval"]
    assert hist["__typename"] == "MlflowGetMetricHistoryBulkIntervalResponse"
    assert sorted((m["runId"], m["step"]) for m in hist["metrics"]) == sorted(
        (r, str(s)) for r in data["runs"] for s in range(4)
    )


def test_error_shapes(data):
    missing = gql(data, bundle_query("GetRun"), {"data": {"runId": "nope"}})
    assert missing == {"data": {"mlflowGetRun": None}, "errors": ["Run with id=nope not found"]}
    unknown = gql(data, "{ bogus }")
    assert unknown["data"] is None and len(unknown["errors"]) == 1 and "bogus" in unknown["errors"][0]
    syntax = gql(data, "{ mlflowGetRun(")
    assert syntax["data"] is None and syntax["errors"]
    no_query = requests.post(data["url"] + "/graphql", json={})
    assert no_query.status_code == 400 and no_query.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_batching_and_get(data):
    query = "query Q($s: String) { test(inputString: $s) { output } }"
    r = requests.post(data["url"] + "/graphql", json=[{"query": query, "variables": {"s": "a"}}, {"query": query, "variables": {"s": "b"}}])
    assert [a["data"]["test"]["output"] for a in r.json()] == ["a", "b"]
    r = requests.get(data["url"] + "/graphql", params={"query": query, "variables": '{"s": "c"}'})
    assert r.json() == {"data": {"test": {"output": "c"}}, "errors": None}


def test_ui_rest_extras(data):
    url = data["url"]
    ds = requests.post(url + "/ajax-api/2.0/mlflow/experiments/search-datasets", json={"experiment_ids": [data["exp"]]})
    (summary,) = ds.json()["dataset_summaries"]
    assert summary["name"] == "train" and summary["context"] == "training" and summary["experiment_id"] == data["exp"]
    none = requests.post(url + "/ajax-api/2.0/mlflow/experiments/search-datasets", json={"experiment_ids": []})
    assert none.status_code == 400
    art = requests.get(url + "/get-artifact", params={"path": "model/MLmodel", "run_uuid": data["runs"][0]})
    assert art.status_code == 200 and art.text == "artifact_path: model\n"
    assert art.headers["Content-Type"].startswith("text/plain")
    mv = requests.get(url + "/model-versions/get-artifact", params={"path": "MLmodel", "name": "g-model", "version": "1"})
    assert mv.status_code == 200 and mv.text == "artifact_path: model\n"
    for bad in ("../x", "/etc/passwd", "model/../../x"):
        r = requests.get(url + "/get-artifact", params={"path": bad, "run_uuid": data["runs"][0]})
        assert r.status_code == 400, bad
    assert requests.get(url + "/get-artifact", params={"path": "nope", "run_uuid": data["runs"][0]}).status_code == 404
    assert requests.get(url + "/ajax-api/3.0/mlflow/ui-telemetry").json()["disable_ui_telemetry"] is True
    assert requests.post(url + "/ajax-api/3.0/mlflow/ui-telemetry", json={"records": [{"a": 1}]}).status_code == 200
    assert requests.get(url + "/ajax-api/2.0/mlflow/gateway-proxy").json() == {"endpoints": []}
