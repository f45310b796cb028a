"""Request validation worded as MLflow words it: wrong types, missing fields, the metric
history endpoints' limits and experiment artifact locations. These are the regression tests
for MLflow's own REST suite (test_rest_tracking.py's *_validation tests); they hold on the
Python server too (MLFLOW_E2E_SERVER=python)."""

from pathlib import Path

import pytest
import requests

from e2e_support import unique_name

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"


def post(server, path, payload):
    return requests.post(server.url + API + path, json=payload, timeout=30)


def assert_400(resp, text):
    assert resp.status_code == 400, f"{resp.status_code}: {resp.text[:300]}"
    body = resp.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert text in body["message"], body["message"]
    return body["message"]


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


def test_create_experiment_wrong_types(server):
    message = assert_400(post(server, "/experiments/create", {"name": 123}), "Invalid value 123 for parameter 'name' supplied")
    assert message.endswith("See the API docs for more information about request parameters."), message
    assert "Value was of type 'int'" in message
    assert_400(post(server, "/experiments/create", {}), "Missing value for required parameter 'name'.")
    assert_400(
        post(server, "/experiments/create", {"name": unique_name(), "artifact_location": 9.0}),
        "Invalid value 9.0 for parameter 'artifact_location' supplied",
    )
    assert_400(
        post(server, "/experiments/create", {"name": unique_name(), "tags": "5"}),
        "Invalid value \"5\" for parameter 'tags' supplied",
    )


@pytest.mark.parametrize(
    "payload,text",
    [
        ({"run_id": 31, "key": "m", "value": 41, "timestamp": 59, "step": 26}, "Invalid value 31 for parameter 'run_id' supplied"),
        ({"key": 31, "value": 41, "timestamp": 59, "step": 26}, "Invalid value 31 for parameter 'key' supplied"),
        ({"key": "m", "value": 31, "timestamp": 59, "step": "foo"}, "Invalid value \"foo\" for parameter 'step' supplied"),
        ({"key": "m", "value": 31, "timestamp": "foo", "step": 41}, "Invalid value \"foo\" for parameter 'timestamp' supplied"),
        ({"run_id": None, "key": "m", "value": 31, "timestamp": 59}, "Missing value for required parameter 'run_id'"),
        ({"value": 31, "timestamp": 59, "step": 41}, "Missing value for required parameter 'key'"),
    ],
)
def test_log_metric_messages(server, run_id, payload, text):
    assert_400(post(server, "/runs/log-metric", {"run_id": run_id, **payload}), text)


def test_log_param_and_set_tag_messages(server, run_id):
    assert_400(post(server, "/runs/log-parameter", {"run_id": 31, "key": "p", "value": 41}), "Invalid value 31 for parameter 'run_id' supplied")
    assert_400(post(server, "/runs/log-parameter", {"run_id": run_id, "key": 31, "value": 41}), "Invalid value 31 for parameter 'key' supplied")
    assert_400(post(server, "/runs/set-tag", {"run_id": 31, "key": "t", "value": 41}), "Invalid value 31 for parameter 'run_id' supplied")
    assert_400(post(server, "/runs/set-tag", {"run_id": run_id, "key": "t", "value": 41}), "Invalid value 41 for parameter 'value' supplied")
    assert_400(post(server, "/runs/set-tag", {"run_id": run_id, "value": "v"}), "Missing value for required parameter 'key'")
    # The deprecated run_uuid still names the run.
    assert post(server, "/runs/set-tag", {"run_uuid": run_id, "key": "k", "value": "v"}).status_code == 200


def test_log_batch_messages(server, client, run_id):
    for field in ["metrics", "params", "tags"]:
        assert_400(post(server, "/runs/log-batch", {"run_id": run_id, field: "foo"}), f"Invalid value \"foo\" for parameter '{field}' supplied")
    assert_400(
        post(server, "/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]}),
        "Missing value for required parameter 'metrics[0].timestamp'",
    )
    ok = post(server, "/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5, "timestamp": 123456789}]})
    assert ok.status_code == 200, ok.text
    assert client.get_run(run_id).data.metrics == {"mae": 2.5}


def get(server, path, params):
    return requests.get(server.url + AJAX + path, params=params, timeout=30)


def test_metric_history_bulk_limits(server):
    assert_400(get(server, "/metrics/get-history-bulk", {"metric_key": "k"}), "GetMetricHistoryBulk request must specify at least one run_id")
    assert_400(
        get(server, "/metrics/get-history-bulk", {"run_id": [f"id_{i}" for i in range(101)], "metric_key": "k"}),
        "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.",
    )
    assert_400(get(server, "/metrics/get-history-bulk", {"run_id": ["123"]}), "GetMetricHistoryBulk request must specify a metric_key")


def test_metric_history_bulk_order_and_max_results(server, client, experiment_id):
    run_a, run_b = sorted(client.create_run(experiment_id).info.run_id for _ in range(2))
    history = [(1, 2, 10.0), (1, 3, 12.0), (1, 3, 11.0), (2, 3, 12.0), (0, 9, 1.0)]
    for run in (run_b, run_a):
        for timestamp, step, value in history:
            client.log_metric(run, "m", value, timestamp=timestamp, step=step)
    expected = [
        {"key": "m", "value": v, "timestamp": t, "step": s, "run_id": run}
        for run in (run_a, run_b)
        for t, s, v in sorted(history)
    ]
    resp = get(server, "/metrics/get-history-bulk", {"run_id": [run_b, run_a], "metric_key": "m"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["metrics"] == expected
    resp = get(server, "/metrics/get-history-bulk", {"run_id": [run_b, run_a], "metric_key": "m", "max_results": 7})
    assert resp.json()["metrics"] == expected[:7]


def test_metric_history_bulk_interval_limits(server):
    path = "/metrics/get-history-bulk-interval"
    assert_400(get(server, path, {"metric_key": "k"}), "Missing value for required parameter 'run_ids'.")
    assert_400(
        get(server, path, {"run_ids": [f"id_{i}" for i in range(101)], "metric_key": "k"}),
        "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids.",
    )
    assert_400(get(server, path, {"run_ids": ["123"], "metric_key": "k", "max_results": 0}), "max_results must be between 1 and 2500")
    assert_400(get(server, path, {"run_ids": ["123"], "metric_key": ""}), "Missing value for required parameter 'metric_key'")
    assert_400(
        get(server, path, {"run_ids": ["123"], "metric_key": "k", "start_step": 1, "end_step": 0}),
        "end_step must be greater than start_step. ",
    )
    assert_400(
        get(server, path, {"run_ids": ["123"], "metric_key": "k", "start_step": 1}),
        "If either start step or end step are specified, both must be specified.",
    )


def test_relative_artifact_location_resolves_against_the_server_directory(server, client):
    experiment_id = client.create_experiment(unique_name("rel"), artifact_location="my_location")
    assert client.get_experiment(experiment_id).artifact_location == str(Path(server.tmp).resolve() / "my_location")
    experiment_id = client.create_experiment(unique_name("abs"), artifact_location="s3://bucket/x")
    assert client.get_experiment(experiment_id).artifact_location == "s3://bucket/x"


@pytest.mark.parametrize(
    "location,text",
    [
        ("s3://bucket/x#frag", "'artifact_location' URL can't include fragments or params."),
        ("https://host/x;p=1", "'artifact_location' URL can't include fragments or params."),
        ("s3://bucket/x?a=..%2fb", "Invalid query string"),
        ("runs:/abc/model", "Artifact location cannot be a runs:/ URI."),
    ],
)
def test_artifact_location_refusals(server, location, text):
    assert_400(post(server, "/experiments/create", {"name": unique_name(), "artifact_location": location}), text)
