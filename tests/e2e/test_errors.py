"""Errors: MlflowException codes through the client, and raw HTTP requests that must get a
4xx with MLflow's error JSON (never a 5xx, which the client would retry for minutes)."""

import time

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from e2e_support import unique_name

API = "/api/2.0/mlflow"
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def error_code_of(fn, *args, **kwargs):
    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    return e.value.error_code


def assert_error_json(resp, status=None, code=None):
    """A 4xx whose body is MLflow's error JSON."""
    assert 400 <= resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    if status is not None:
        assert resp.status_code == status, f"{resp.status_code}: {resp.text[:300]}"
    body = resp.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["error_code"] == code, body
    return body


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


# ---------------------------------------------------------------- through the client


def test_get_run_unknown(client):
    assert error_code_of(client.get_run, UNKNOWN_RUN) == "RESOURCE_DOES_NOT_EXIST"


def test_get_experiment_unknown(client):
    assert error_code_of(client.get_experiment, "987654321") == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name(unique_name("missing")) is None


def test_duplicate_experiment(client):
    name = unique_name("dup")
    client.create_experiment(name)
    assert error_code_of(client.create_experiment, name) == "RESOURCE_ALREADY_EXISTS"


def test_bad_filters(client, experiment_id):
    for bad in ["metrics.acc >>> 1", "nonsense", "params.x = unquoted", "attributes.nope = 'x'"]:
        assert error_code_of(client.search_runs, [experiment_id], bad) == "INVALID_PARAMETER_VALUE", bad
    for bad in ["name >>> 'x'", "tags.a = unquoted", "foo.name = 'x'"]:
        assert error_code_of(client.search_experiments, filter_string=bad) == "INVALID_PARAMETER_VALUE", bad
    assert error_code_of(client.search_runs, [experiment_id], "", order_by=["metrics.acc SIDEWAYS"]) == (
        "INVALID_PARAMETER_VALUE"
    )


def test_oversize_key(client, run_id):
    key = "k" * 251
    assert error_code_of(client.log_param, run_id, key, "v") == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.log_metric, run_id, key, 1.0) == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.set_tag, run_id, key, "v") == "INVALID_PARAMETER_VALUE"
    ok = "k" * 250
    client.log_param(run_id, ok, "v")
    client.log_metric(run_id, ok, 1.0)
    data = client.get_run(run_id).data
    assert data.params == {ok: "v"}
    assert data.metrics == {ok: 1.0}


def test_write_to_unknown_run(client):
    assert error_code_of(client.log_metric, UNKNOWN_RUN, "m", 1.0) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code_of(client.set_tag, UNKNOWN_RUN, "t", "v") == "RESOURCE_DOES_NOT_EXIST"


def test_create_run_in_unknown_experiment(client):
    assert error_code_of(client.create_run, "987654321") == "RESOURCE_DOES_NOT_EXIST"


def test_rejected_log_batch_writes_nothing(client, run_id):
    client.log_param(run_id, "p", "1")
    ts = int(time.time() * 1000)
    metrics = [Metric(f"m{i}", float(i), ts, 0) for i in range(5)]
    code = error_code_of(
        client.log_batch,
        run_id,
        metrics=metrics,
        params=[Param("fresh", "x"), Param("p", "2")],
        tags=[RunTag("batch-tag", "x")],
    )
    assert code == "INVALID_PARAMETER_VALUE"
    run = client.get_run(run_id)
    assert run.data.metrics == {}, "metrics of a rejected log-batch were written"
    assert run.data.params == {"p": "1"}
    assert "batch-tag" not in run.data.tags
    for i in range(5):
        assert client.get_metric_history(run_id, f"m{i}") == []


def test_log_batch_duplicate_param_keys_rejected(client, run_id):
    ts = int(time.time() * 1000)
    code = error_code_of(
        client.log_batch,
        run_id,
        metrics=[Metric("m", 1.0, ts, 0)],
        params=[Param("dup", "1"), Param("dup", "2")],
    )
    assert code == "INVALID_PARAMETER_VALUE"
    run = client.get_run(run_id)
    assert run.data.metrics == {} and run.data.params == {}


# ---------------------------------------------------------------- raw HTTP


def post(server, path, **kw):
    return requests.post(server.url + API + path, timeout=30, **kw)


def test_malformed_json(server, run_id):
    for body in ["{not json", "", "[1, 2", '{"run_id": "x",}']:
        resp = post(server, "/runs/log-metric", data=body, headers={"Content-Type": "application/json"})
        assert_error_json(resp)


@pytest.mark.parametrize(
    "path,payload",
    [
        ("/runs/log-metric", {"key": "m", "value": 1.0, "timestamp": "abc", "step": 0}),
        ("/runs/log-metric", {"key": "m", "value": "abc", "timestamp": 1, "step": 0}),
        ("/runs/log-metric", {"key": "m", "value": 1.0, "timestamp": 1, "step": "two"}),
        ("/runs/log-metric", {"key": ["m"], "value": 1.0, "timestamp": 1}),
        ("/runs/log-batch", {"metrics": "not-a-list"}),
        ("/runs/log-parameter", {"key": "p", "value": {"nested": 1}}),
        ("/experiments/create", {"name": 123}),
        ("/runs/search", {"experiment_ids": "0", "max_results": "many"}),
    ],
)
def test_wrong_types(server, run_id, path, payload):
    if path.startswith("/runs/") and path != "/runs/search":
        payload = {"run_id": run_id, **payload}
    resp = post(server, path, json=payload)
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "path,payload",
    [
        ("/runs/log-metric", {"value": 1.0, "timestamp": 1}),
        ("/runs/log-metric", {"key": "m", "timestamp": 1}),
        ("/runs/log-metric", {"key": "m", "value": 1.0}),
        ("/runs/set-tag", {"value": "v"}),
        ("/experiments/create", {}),
        ("/experiments/update", {"new_name": "x"}),
        ("/experiments/set-experiment-tag", {"experiment_id": "0", "value": "v"}),
    ],
)
def test_missing_required_fields(server, run_id, path, payload):
    if path.startswith("/runs/"):
        payload = {"run_id": run_id, **payload}
    resp = post(server, path, json=payload)
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")


def test_missing_required_query_params(server):
    for path in ["/runs/get", "/experiments/get", "/metrics/get-history"]:
        resp = requests.get(server.url + API + path, timeout=30)
        assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")


def test_unknown_ids_raw(server):
    resp = requests.get(server.url + API + "/runs/get", params={"run_id": UNKNOWN_RUN}, timeout=30)
    assert_error_json(resp, status=404, code="RESOURCE_DOES_NOT_EXIST")
    resp = requests.get(
        server.url + API + "/experiments/get-by-name", params={"experiment_name": unique_name("x")}, timeout=30
    )
    assert_error_json(resp, status=404, code="RESOURCE_DOES_NOT_EXIST")
    resp = post(server, "/experiments/delete", json={"experiment_id": "987654321"})
    assert_error_json(resp, status=404, code="RESOURCE_DOES_NOT_EXIST")


def test_oversize_key_raw(server, run_id):
    resp = post(server, "/runs/log-parameter", json={"run_id": run_id, "key": "k" * 251, "value": "v"})
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")
    resp = post(server, "/runs/set-tag", json={"run_id": run_id, "key": "k" * 251, "value": "v"})
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")
    resp = post(server, "/experiments/create", json={"name": "n" * 501})
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")


def test_non_json_content_type_rejected(server, run_id):
    resp = post(
        server,
        "/runs/set-tag",
        data='{"run_id": "%s", "key": "k", "value": "v"}' % run_id,
        headers={"Content-Type": "text/plain"},
    )
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")


def test_unknown_route_is_404(server):
    for path in ["/api/2.0/mlflow/no-such-thing", "/api/2.0/mlflow/runs/nope", "/definitely/not/here"]:
        assert requests.get(server.url + path, timeout=30).status_code == 404, path
        assert requests.post(server.url + path, json={}, timeout=30).status_code == 404, path


@pytest.mark.ours_only
def test_unknown_route_error_json(server):
    # The Python server answers Flask's HTML 404 here (the client maps it to ENDPOINT_NOT_FOUND);
    # ours answers with an error JSON.
    resp = requests.post(server.url + "/api/2.0/mlflow/no-such-thing", json={}, timeout=30)
    body = assert_error_json(resp, status=404)
    assert body["error_code"] in ("ENDPOINT_NOT_FOUND", "NOT_FOUND", "RESOURCE_DOES_NOT_EXIST")


def test_wrong_method_is_4xx(server, run_id):
    cases = [
        ("GET", "/runs/log-metric"),
        ("DELETE", "/runs/create"),
        ("PUT", "/experiments/create"),
        ("POST", "/runs/get"),
    ]
    for method, path in cases:
        resp = requests.request(method, server.url + API + path, json={"run_id": run_id}, timeout=30)
        assert 400 <= resp.status_code < 500, f"{method} {path}: {resp.status_code} {resp.text[:200]}"


@pytest.mark.ours_only
def test_wrong_method_error_json(server, run_id):
    for method, path in [("GET", "/runs/log-metric"), ("PUT", "/experiments/create")]:
        resp = requests.request(method, server.url + API + path, json={"run_id": run_id}, timeout=30)
        assert_error_json(resp)


def test_rejected_raw_log_batch_writes_nothing(server, client, run_id):
    client.log_param(run_id, "p", "1")
    payload = {
        "run_id": run_id,
        "metrics": [{"key": f"raw{i}", "value": float(i), "timestamp": 1, "step": 0} for i in range(10)],
        "params": [{"key": "p", "value": "other"}],
        "tags": [{"key": "raw-tag", "value": "x"}],
    }
    resp = post(server, "/runs/log-batch", json=payload)
    assert_error_json(resp, status=400, code="INVALID_PARAMETER_VALUE")
    run = client.get_run(run_id)
    assert run.data.metrics == {}
    assert "raw-tag" not in run.data.tags
    resp = requests.get(
        server.url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": "raw0"}, timeout=30
    )
    assert resp.status_code == 200
    assert resp.json().get("metrics", []) == []


GARBAGE = [
    # The Python server answers this one with a 500 (an HTML page): ours must not.
    pytest.param("/runs/log-batch", {"metrics": [None]}, marks=pytest.mark.ours_only),
    ("/runs/log-batch", {"params": [{"key": None, "value": "x"}]}),
    ("/runs/log-metric", {"run_id": 12, "key": "m", "value": 1, "timestamp": 1}),
    ("/runs/create", {"experiment_id": "not-a-number"}),
    ("/runs/create", {"experiment_id": {"a": 1}}),
    ("/experiments/get-by-name", {"experiment_name": ""}),
    ("/runs/search", {"experiment_ids": ["0"], "filter": "metrics.m > 'x' ; DROP TABLE runs"}),
    ("/runs/search", {"experiment_ids": ["0"], "max_results": -1}),
    ("/runs/search", {"experiment_ids": ["0"], "page_token": "%%%not-a-token"}),
    ("/experiments/search", {"max_results": 0}),
    ("/experiments/search", {"max_results": 1000, "page_token": "bogus"}),
]


@pytest.mark.parametrize("path,payload", GARBAGE)
def test_never_5xx_on_garbage(server, run_id, path, payload):
    if path.startswith("/runs/log-batch"):
        payload = {"run_id": run_id, **payload}
    resp = post(server, path, json=payload)
    assert resp.status_code < 500, f"{path} {payload}: {resp.status_code} {resp.text[:300]}"
    assert resp.status_code >= 400, f"{path} {payload} was accepted: {resp.text[:300]}"
    # The store survived (e.g. the injection attempt).
    assert requests.get(server.url + API + "/runs/get", params={"run_id": run_id}, timeout=30).status_code == 200
