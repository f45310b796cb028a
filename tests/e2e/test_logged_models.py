"""MLflow 3 logged models as MLflow's own REST suite exercises them: search with `datasets`,
metric filters restricted to those datasets, ordering by a metric's latest value (NULLs last)
and the default order. They hold on the Python server too (MLFLOW_E2E_SERVER=python)."""

import json
import time

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException


def names(models):
    return [m.name for m in models]


@pytest.fixture
def three_models(client, experiment_id):
    """m1, m2, m3 created in that order; m1 and m2 carry `acc` metrics on datasets."""
    models = []
    for _ in range(3):
        models.append(client.create_logged_model(experiment_id))
        time.sleep(0.005)
    m1, m2, _m3 = models
    run = client.create_run(experiment_id).info.run_id
    log = client.log_metric
    log(run, "acc", 0.5, timestamp=1000, dataset_name="ds", dataset_digest="1", model_id=m1.model_id)
    log(run, "acc", 0.9, timestamp=1000, dataset_name="ds", dataset_digest="1", model_id=m2.model_id)
    # m2's latest acc (by timestamp) is on another dataset.
    log(run, "acc", 0.1, timestamp=2000, dataset_name="other", dataset_digest="2", model_id=m2.model_id)
    return experiment_id, models


def test_default_order_is_newest_first(client, three_models):
    exp, (m1, m2, m3) = three_models
    assert names(client.search_logged_models([exp])) == [m3.name, m2.name, m1.name]
    page = client.search_logged_models([exp], max_results=2)
    assert names(page) == [m3.name, m2.name] and page.token
    rest = client.search_logged_models([exp], max_results=2, page_token=page.token)
    assert names(rest) == [m1.name] and rest.token is None


def test_datasets_select_models_with_metrics_on_them(client, three_models):
    exp, (m1, m2, _m3) = three_models
    search = client.search_logged_models
    assert names(search([exp], datasets=[{"dataset_name": "ds", "dataset_digest": "1"}])) == [m2.name, m1.name]
    assert names(search([exp], datasets=[{"dataset_name": "other", "dataset_digest": "2"}])) == [m2.name]
    assert names(search([exp], datasets=[{"dataset_name": "ds", "dataset_digest": "nope"}])) == []
    both = [{"dataset_name": "ds", "dataset_digest": "1"}, {"dataset_name": "other", "dataset_digest": "2"}]
    assert names(search([exp], datasets=both)) == [m2.name, m1.name]


def test_metric_filters_only_see_the_given_datasets(client, three_models):
    exp, (_m1, m2, _m3) = three_models
    search = client.search_logged_models
    other = [{"dataset_name": "other", "dataset_digest": "2"}]
    assert names(search([exp], filter_string="metrics.acc > 0.6")) == [m2.name]
    assert names(search([exp], filter_string="metrics.acc > 0.6", datasets=other)) == []
    assert names(search([exp], filter_string="metrics.acc < 0.2", datasets=other)) == [m2.name]


@pytest.mark.ours_only
def test_a_dataset_without_digest_matches_any_digest(client, three_models):
    # As the client documents it. The Python server 3.17.2 instead compares the digest with
    # NULL (its handler passes dataset_digest=None on), so it finds nothing here.
    exp, (m1, m2, _m3) = three_models
    search = client.search_logged_models
    assert names(search([exp], datasets=[{"dataset_name": "ds"}])) == [m2.name, m1.name]
    assert names(search([exp], filter_string="metrics.acc < 0.2", datasets=[{"dataset_name": "other"}])) == [m2.name]


def test_order_by_latest_metric_value_nulls_last(client, three_models):
    exp, (m1, m2, m3) = three_models
    search = client.search_logged_models
    assert names(search([exp], order_by=[{"field_name": "metrics.acc", "ascending": True}])) == [m2.name, m1.name, m3.name]
    assert names(search([exp], order_by=[{"field_name": "metrics.acc", "ascending": False}])) == [m1.name, m2.name, m3.name]
    on_ds = [{"field_name": "metrics.acc", "ascending": False, "dataset_name": "ds"}]
    assert names(search([exp], order_by=on_ds)) == [m2.name, m1.name, m3.name]
    oldest_first = [{"field_name": "creation_timestamp", "ascending": True}]
    assert names(search([exp], order_by=oldest_first)) == [m1.name, m2.name, m3.name]


def test_search_refusals(server, client, three_models):
    exp, _ = three_models
    # The client itself needs dataset_name, so this one goes over raw HTTP.
    resp = requests.post(
        server.url + "/api/2.0/mlflow/logged-models/search",
        json={"experiment_ids": [exp], "datasets": [{"dataset_digest": "1"}]},
        timeout=30,
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"] == "`dataset_name` in the `datasets` clause must be specified."
    with pytest.raises(MlflowException, match="Only metrics are supported"):
        client.search_logged_models([exp], order_by=[{"field_name": "params.x"}])


# ---------------------------------------------------------------- runs/log-model


def history(client, run_id):
    return json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])


def test_log_model_records_the_history_tag(client, experiment_id):
    # The client's own call (MLflow 2's Model.log path, used by the spark flavour and promptlab).
    from mlflow.models import Model

    run_id = client.create_run(experiment_id).info.run_id
    flavors = {"python_function": {"loader_module": "mlflow.pyfunc.model", "config": {"k": 1}}, "x": {"v": 1}}
    first = Model(artifact_path="model", run_id=run_id, flavors=flavors)
    second = Model(artifact_path="again", run_id=run_id, flavors={"x": {"v": 2}})
    client._record_logged_model(run_id, first)
    client._record_logged_model(run_id, second)
    entries = history(client, run_id)
    assert [e["artifact_path"] for e in entries] == ["model", "again"]
    assert [e["model_uuid"] for e in entries] == [first.model_uuid, second.model_uuid]
    assert [e["utc_time_created"] for e in entries] == [first.utc_time_created, second.utc_time_created]
    assert entries[0]["flavors"] == {"python_function": {"loader_module": "mlflow.pyfunc.model"}, "x": {"v": 1}}
    for entry in entries:
        assert entry["run_id"] == run_id
        assert list(entry) == ["run_id", "artifact_path", "utc_time_created", "model_uuid", "flavors"]


def log_model_raw(server, payload):
    return requests.post(server.url + "/api/2.0/mlflow/runs/log-model", json=payload, timeout=30)


def test_log_model_raw_entry_and_refusals(server, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    model = {
        "run_id": run_id,
        "artifact_path": "m",
        "utc_time_created": "2026-12-04 16:00:00.123456",
        "flavors": {"python_function": {"loader_module": "x", "config": {"secret": 1}, "env": "conda.yaml"}},
        "model_uuid": "u1",
        "mlflow_version": "3.17.2",
    }
    ok = log_model_raw(server, {"run_id": run_id, "model_json": json.dumps(model)})
    assert ok.status_code == 200, ok.text
    stored = client.get_run(run_id).data.tags["mlflow.log-model.history"]
    # Byte for byte what MLflow's SQL store writes (json.dumps of Model.get_tags_dict()).
    assert stored == (
        f'[{{"run_id": "{run_id}", "artifact_path": "m", "utc_time_created": "2026-12-04 16:00:00.123456", '
        '"model_uuid": "u1", "flavors": {"python_function": {"loader_module": "x", "env": "conda.yaml"}}}]'
    )
    bad = log_model_raw(server, {"run_id": run_id, "model_json": "{not json"})
    assert bad.status_code == 400 and bad.json()["message"].startswith("Malformed model info.")
    missing = log_model_raw(server, {"run_id": run_id, "model_json": json.dumps({"run_id": run_id})})
    assert missing.status_code == 400
    assert "Model json is missing mandatory fields" in missing.json()["message"]
    assert log_model_raw(server, {"run_id": run_id}).json()["message"].startswith(
        "Missing value for required parameter 'model_json'"
    )
    client.delete_run(run_id)
    gone = log_model_raw(server, {"run_id": run_id, "model_json": json.dumps(model)})
    assert gone.status_code == 400 and gone.json()["error_code"] == "INVALID_PARAMETER_VALUE"
