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


def test_metric_points_follow_the_selection(data):
    """The chart points are answered in one pass (not field by field): aliases, named and inline
    fragments, `__typename` and the queried key order all hold, NaN is null, and the errors
    are the REST call's."""
    query = """
      query P($d: MlflowGetMetricHistoryBulkIntervalInput!) {
        mlflowGetMetricHistoryBulkInterval(input: $d) {
          metrics { s: step ...Point ... on MlflowMetricWithRunId { k: key runId } __typename }
        }
      }
      fragment Point on MlflowMetricWithRunId { value step }
    """
    body = gql(data, query, {"d": {"runIds": data["runs"][:1], "metricKey": "loss", "maxResults": 2}})
    assert body["errors"] is None
    points = body["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert [list(p) for p in points] == [["s", "value", "step", "k", "runId", "__typename"]] * 2
    assert [(p["s"], p["step"], p["k"], p["runId"]) for p in points] == [
        ("0", "0", "loss", data["runs"][0]),
        ("3", "3", "loss", data["runs"][0]),
    ]
    assert points[0]["value"] == 1.0 and points[0]["__typename"] == "MlflowMetricWithRunId"
    nan = gql(data, query, {"d": {"runIds": data["runs"][:1], "metricKey": "odd"}})
    assert [p["value"] for p in nan["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]] == [None]
    no_key = gql(data, query, {"d": {"runIds": data["runs"][:1]}})
    assert no_key["data"] == {"mlflowGetMetricHistoryBulkInterval": None}
    assert no_key["errors"] == ["Missing value for required parameter 'metric_key'. See the API docs for more information about request parameters."]


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


def test_query_limits(data):
    """MLflow's guard (test_graphql_handler_batching_raise_error): root fields and aliases
    (10 by default), depth 10 and 1000 selections, checked before anything runs."""
    fields = " ".join(f'k{i}: test(inputString: "a") {{ output }}' for i in range(12))
    body = gql(data, f"query q {{ {fields} }}", operationName="q")
    assert body["data"] is None
    assert body["errors"] == [
        "GraphQL queries should have at most 10 root fields, got 12 root fields. To increase the limit, "
        "set the MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS environment variable."
    ]
    assert gql(data, " ".join(["{", fields.split(" k10:")[0], "}"]))["errors"] is None  # 10 pass
    aliases = " ".join(f"e{i}: experiment {{ name }}" for i in range(12))
    body = gql(data, f'{{ mlflowGetExperiment(input: {{experimentId: "{data["exp"]}"}}) {{ {aliases} }} }}')
    assert body["data"] is None and "queries should have at most 10 aliases, got 12 aliases" in body["errors"][0]
    inner = "name"
    for _ in range(12):
        inner = f"name {{ {inner} }}"
    body = gql(data, f'{{ mlflowGetExperiment(input: {{experimentId: "1"}}) {{ experiment {{ {inner} }} }} }}')
    assert body == {"data": None, "errors": ["Query exceeds maximum depth of 10"]}
    wide = " ".join(f"f{i} {{ name }}" for i in range(1002))
    body = gql(data, f'{{ mlflowGetExperiment(input: {{experimentId: "1"}}) {{ experiment {{ {wide} }} }} }}')
    assert body == {"data": None, "errors": ["Query exceeds maximum total selections of 1000"]}


def test_root_field_limit_from_the_environment(tmp_path):
    srv = ServerProcess(our_binary(), tmp_path, extra_env={"MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS": "2"})
    try:
        fields = " ".join(f"k{i}: test {{ output }}" for i in range(3))
        body = gql({"url": srv.url}, f"{{ {fields} }}")
        assert "at most 2 root fields, got 3" in body["errors"][0]
        assert "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS" in body["errors"][0]
    finally:
        srv.stop()


def test_search_datasets_mutation(data):
    """MLflow's test_search_datasets_graphql: the experiment page's dataset list."""
    body = gql(
        data,
        f'mutation m {{ mlflowSearchDatasets(input: {{experimentIds: ["{data["exp"]}"]}}) '
        "{ datasetSummaries { experimentId name digest context } } }",
        operationName="m",
    )
    assert body["errors"] is None
    (summary,) = body["data"]["mlflowSearchDatasets"]["datasetSummaries"]
    assert summary["experimentId"] == data["exp"] and summary["name"] == "train"
    assert summary["context"] == "training" and summary["digest"]
    body = gql(data, "mutation { mlflowSearchDatasets(input: {experimentIds: []}) { datasetSummaries { name } } }")
    assert body["data"] == {"mlflowSearchDatasets": None}
    assert body["errors"] == ["SearchDatasets request must specify at least one experiment_id."]


def test_search_datasets_without_context(tmp_path):
    import mlflow
    import numpy as np

    srv = ServerProcess(our_binary(), tmp_path)
    try:
        mlflow.set_tracking_uri(srv.url)
        exp = mlflow.create_experiment("no-context")
        with mlflow.start_run(experiment_id=exp):
            mlflow.log_input(mlflow.data.from_numpy(np.arange(3), name="plain"))
        body = gql(
            {"url": srv.url},
            f'mutation {{ mlflowSearchDatasets(input: {{experimentIds: ["{exp}"]}}) {{ datasetSummaries {{ name context }} }} }}',
        )
        # Unset in REST, the proto default in GraphQL, as MLflow answers.
        assert body["data"]["mlflowSearchDatasets"]["datasetSummaries"] == [{"name": "plain", "context": ""}]
    finally:
        srv.stop()


def test_list_artifacts_sizes(data):
    """MLflow's test_list_artifacts_graphql: a directory's fileSize is "0"."""
    body = gql(
        data,
        f'{{ files: mlflowListArtifacts(input: {{runId: "{data["runs"][0]}"}}) {{ files {{ path isDir fileSize }} }} }}',
    )
    assert body["data"]["files"]["files"] == [{"path": "model", "isDir": True, "fileSize": "0"}]
    body = gql(
        data,
        f'{{ sub: mlflowListArtifacts(input: {{runId: "{data["runs"][0]}", path: "model"}}) '
        "{ files { path isDir fileSize } } }",
    )
    assert body["data"]["sub"]["files"] == [{"path": "model/MLmodel", "isDir": False, "fileSize": "21"}]
