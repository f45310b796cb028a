"""Corners of the tracking API not covered elsewhere: the datasets.* search grammar, filters that
try to inject SQL, the /ajax-api prefix, /version, raw get-history paging, get-history-bulk-interval,
NaN ordering, int64 round trips, writes to deleted runs and experiments, MLflow's length limits
and truncation, and log-batch size limits."""

import math
import time
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from e2e_support import backend_choice, unique_name

API = "/api/2.0/mlflow"


def now_ms():
    return int(time.time() * 1000)


def error_code_of(fn, *args, **kwargs):
    with pytest.raises(MlflowException) as e:
        fn(*args, **kwargs)
    return e.value.error_code


def assert_4xx_json(resp, code=None):
    assert 400 <= resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    body = resp.json()
    assert isinstance(body, dict) and body.get("error_code") and body.get("message"), body
    if code is not None:
        assert body["error_code"] == code, body
    return body


# ---------------------------------------------------------------- datasets.* grammar


@pytest.fixture(scope="module")
def ds(server):
    """Three runs: `train` has dataset A (training) and B (eval), `evalonly` has B (eval),
    `bare` has none."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        client = MlflowClient(tracking_uri=server.url)
        eid = client.create_experiment(unique_name("dsgrammar"))
        tag = unique_name("d")[-8:]
        a = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name=f"Alpha-{tag}")
        b = mlflow.data.from_pandas(pd.DataFrame({"y": [0.5, 1.5, 2.5]}), name=f"beta-{tag}")
        ids = {}
        with mlflow.start_run(experiment_id=eid, run_name="train") as r:
            mlflow.log_input(a, context="training")
            mlflow.log_input(b, context="eval")
            ids["train"] = r.info.run_id
        with mlflow.start_run(experiment_id=eid, run_name="evalonly") as r:
            mlflow.log_input(b, context="eval")
            ids["evalonly"] = r.info.run_id
        with mlflow.start_run(experiment_id=eid, run_name="bare") as r:
            ids["bare"] = r.info.run_id
    finally:
        mlflow.set_tracking_uri(previous)
    return SimpleNamespace(
        client=client, eid=eid, a=a, b=b, ids=ids, names={v: k for k, v in ids.items()}
    )


def ds_names(ds, filter_string):
    return {ds.names[r.info.run_id] for r in ds.client.search_runs([ds.eid], filter_string)}


def test_search_datasets_grammar(ds):
    A, B = ds.a.name, ds.b.name
    cases = [
        (f"datasets.name = '{A}'", {"train"}),
        (f"dataset.name = '{B}'", {"train", "evalonly"}),
        (f"datasets.name != '{A}'", {"train", "evalonly"}),  # any dataset of the run matches
        (f"datasets.name LIKE 'Alpha-%'", {"train"}),
        (f"datasets.name LIKE 'alpha-%'", set()),  # LIKE is case-sensitive
        (f"datasets.name ILIKE 'alpha-%'", {"train"}),
        (f"datasets.name IN ('{A}', 'nope')", {"train"}),
        (f"datasets.name IN ('{A}', '{B}')", {"train", "evalonly"}),
        (f"datasets.name NOT IN ('{A}')", {"train", "evalonly"}),
        (f"datasets.digest = '{ds.a.digest}'", {"train"}),
        (f"datasets.digest IN ('{ds.b.digest}')", {"train", "evalonly"}),
        ("datasets.context = 'training'", {"train"}),
        ("datasets.context = 'eval'", {"train", "evalonly"}),
        ("datasets.context ILIKE 'EVAL'", {"train", "evalonly"}),
        (f"datasets.name = '{B}' AND datasets.context = 'eval'", {"train", "evalonly"}),
        (f"datasets.name = '{A}' AND run_name = 'train'", {"train"}),
        ("datasets.name = 'no-such-dataset'", set()),
    ]
    failures = []
    for filter_string, expected in cases:
        got = ds_names(ds, filter_string)
        if got != expected:
            failures.append(f"{filter_string!r}: got {sorted(got)}, expected {sorted(expected)}")
    assert not failures, "\n".join(failures)


def test_search_datasets_bad_key_rejected(ds):
    assert error_code_of(ds.client.search_runs, [ds.eid], "datasets.color = 'x'") == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------- filters never inject SQL


@pytest.fixture
def victim(client):
    eid = client.create_experiment(unique_name("inject"))
    rid = client.create_run(eid, run_name="victim").info.run_id
    client.log_param(rid, "p", "safe")
    client.set_tag(rid, "t", "o'brien")
    return SimpleNamespace(eid=eid, rid=rid)


INJECTIONS = [
    "params.p = 'x'' OR ''1''=''1'",
    "params.p = 'x\" OR 1=1 --'",
    "params.`p' OR 1=1 --` = 'safe'",
    "params.`p\"; DROP TABLE runs; --` = 'x'",
    "tags.t = 'a'); DELETE FROM runs; --'",
    "attributes.run_name = 'victim'' OR ''a''=''a'",
    "params.p LIKE '%' OR 1=1",
    "run_id IN ('x') OR 1=1",
]


@pytest.mark.parametrize("filter_string", INJECTIONS)
def test_filter_cannot_inject_sql(server, client, victim, filter_string):
    try:
        runs = client.search_runs([victim.eid], filter_string)
    except MlflowException as e:
        assert e.error_code == "INVALID_PARAMETER_VALUE", f"{filter_string!r}: {e}"
    else:
        assert runs == [], f"{filter_string!r} matched {len(runs)} run(s): injected?"
    # Nothing was dropped or deleted, and the server still answers.
    run = client.get_run(victim.rid)
    assert run.data.params == {"p": "safe"} and run.info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([victim.eid], "params.p = 'safe'")] == [victim.rid]


def test_quoted_values_match_exactly(client, victim):
    # A value containing a single quote is reachable through a double-quoted literal.
    assert [r.info.run_id for r in client.search_runs([victim.eid], "tags.t = \"o'brien\"")] == [victim.rid]
    assert client.search_runs([victim.eid], "tags.t = \"o'brie\"") == []


def test_experiment_filter_cannot_inject_sql(client):
    for bad in ["name = 'x'' OR ''1''=''1'", "name = 'x' OR 1=1", "tags.`a' OR 1=1 --` = 'b'"]:
        try:
            found = client.search_experiments(filter_string=bad, view_type=ViewType.ALL)
        except MlflowException as e:
            assert e.error_code == "INVALID_PARAMETER_VALUE", f"{bad!r}: {e}"
        else:
            assert found == [], f"{bad!r} matched {[x.name for x in found]}"
    assert client.get_experiment("0").name == "Default"


# ---------------------------------------------------------------- prefixes and infra routes


def test_ajax_api_prefix_serves_the_same_api(server, client, experiment_id):
    rid = client.create_run(experiment_id, run_name="ajax").info.run_id
    r = requests.get(f"{server.url}/ajax-api/2.0/mlflow/runs/get", params={"run_id": rid}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["run"]["info"]["run_id"] == rid
    r = requests.post(
        f"{server.url}/ajax-api/2.0/mlflow/runs/log-metric",
        json={"run_id": rid, "key": "m", "value": 2.5, "timestamp": now_ms(), "step": 3},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    assert client.get_run(rid).data.metrics == {"m": 2.5}
    r = requests.post(
        f"{server.url}/ajax-api/2.0/mlflow/experiments/search",
        json={"max_results": 10, "filter": "name = 'Default'"},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    assert [e["experiment_id"] for e in r.json()["experiments"]] == ["0"]


def test_version_route(server):
    r = requests.get(server.url + "/version", timeout=10)
    assert r.status_code == 200
    assert r.text.strip()


def test_search_experiments_by_get(server):
    r = requests.get(
        server.url + API + "/experiments/search",
        params={"max_results": 5, "filter": "name = 'Default'"},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    exps = r.json()["experiments"]
    assert [(e["experiment_id"], e["name"], e["lifecycle_stage"]) for e in exps] == [("0", "Default", "active")]


# ---------------------------------------------------------------- wire format of runs


def test_run_wire_format(server, client, experiment_id):
    run = client.create_run(experiment_id, run_name="wire")
    rid = run.info.run_id
    client.log_metric(rid, "nan", float("nan"), timestamp=1, step=0)
    client.log_param(rid, "p", "v")
    body = requests.get(server.url + API + "/runs/get", params={"run_id": rid}, timeout=30).json()["run"]
    info = body["info"]
    assert info["run_id"] == rid and info["run_uuid"] == rid
    assert info["experiment_id"] == experiment_id
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert isinstance(info["start_time"], int)
    assert "end_time" not in info
    assert info["artifact_uri"].endswith(f"/{experiment_id}/{rid}/artifacts")
    assert info["run_name"] == "wire"
    assert {"key": "mlflow.runName", "value": "wire"} in body["data"]["tags"]
    assert body["data"]["params"] == [{"key": "p", "value": "v"}]
    [m] = body["data"]["metrics"]
    assert m["key"] == "nan" and m["value"] == "NaN" and m["timestamp"] == 1 and m["step"] == 0


def test_default_experiment_and_artifact_uris(server, client, experiment_id):
    default = client.get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    assert default.artifact_location == "mlflow-artifacts:/0"
    exp = client.get_experiment(experiment_id)
    assert exp.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    run = client.create_run(experiment_id)
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts"
    custom = client.create_experiment(unique_name("customloc"), artifact_location="mlflow-artifacts:/elsewhere/x")
    assert client.get_experiment(custom).artifact_location == "mlflow-artifacts:/elsewhere/x"
    crun = client.create_run(custom)
    assert crun.info.artifact_uri == f"mlflow-artifacts:/elsewhere/x/{crun.info.run_id}/artifacts"


def test_int64_steps_and_timestamps_round_trip(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    big_step = 2**53 + 1  # not representable as a double: must travel as an integer
    big_ts = 2**41 + 7
    client.log_batch(rid, metrics=[Metric("m", 1.5, big_ts, big_step), Metric("m", 0.5, 5, -3)])
    hist = sorted(client.get_metric_history(rid, "m"), key=lambda m: m.step)
    assert [(m.step, m.timestamp, m.value) for m in hist] == [(-3, 5, 0.5), (big_step, big_ts, 1.5)]
    assert client.get_run(rid).data.metrics == {"m": 1.5}


# ---------------------------------------------------------------- metric history over raw HTTP


def test_get_history_paging_raw(server, client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    points = [Metric("h", float(i) / 4, 1000 + i, i) for i in range(7)]
    client.log_batch(rid, metrics=points)
    seen, token = [], None
    for _ in range(10):
        params = {"run_id": rid, "run_uuid": rid, "metric_key": "h", "max_results": 3}
        if token:
            params["page_token"] = token
        r = requests.get(server.url + API + "/metrics/get-history", params=params, timeout=30)
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        page = body.get("metrics", [])
        assert len(page) <= 3
        seen += [(m["step"], m["value"], m["timestamp"]) for m in page]
        token = body.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == [(m.step, m.value, m.timestamp) for m in points]

    r = requests.get(
        server.url + API + "/metrics/get-history", params={"run_id": rid, "metric_key": "h"}, timeout=30
    )
    assert r.status_code == 200
    assert len(r.json()["metrics"]) == 7 and not r.json().get("next_page_token")


def test_get_history_bulk_interval(server, client, experiment_id):
    r1 = client.create_run(experiment_id).info.run_id
    r2 = client.create_run(experiment_id).info.run_id
    client.log_batch(r1, metrics=[Metric("loss", 10.0 - i, 1000 + i, i) for i in range(5)])
    client.log_batch(r2, metrics=[Metric("loss", 20.0 - i, 2000 + i, i) for i in range(3)])
    r = requests.get(
        server.url + API + "/metrics/get-history-bulk-interval",
        params={"run_ids": [r1, r2], "metric_key": "loss", "max_results": 100},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    got = sorted((m["run_id"], m["step"], m["value"]) for m in r.json()["metrics"])
    want = sorted([(r1, i, 10.0 - i) for i in range(5)] + [(r2, i, 20.0 - i) for i in range(3)])
    assert got == want
    assert all(m["key"] == "loss" for m in r.json()["metrics"])

    r = requests.get(
        server.url + API + "/metrics/get-history-bulk-interval",
        params={"run_ids": [r1], "metric_key": "loss", "start_step": 1, "end_step": 3, "max_results": 100},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    assert sorted(m["step"] for m in r.json()["metrics"]) == [1, 2, 3]

    r = requests.get(
        server.url + API + "/metrics/get-history-bulk-interval",
        params={"run_ids": [r1], "metric_key": "loss", "max_results": 100000},
        timeout=30,
    )
    assert_4xx_json(r, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- ordering with NaN


def test_order_by_metric_nan_and_missing_last(client):
    eid = client.create_experiment(unique_name("nanorder"))
    ids = {}
    for name, value in [("low", 1.0), ("nan", float("nan")), ("high", 3.0), ("none", None), ("mid", 2.0)]:
        rid = client.create_run(eid, run_name=name).info.run_id
        ids[rid] = name
        if value is not None:
            client.log_metric(rid, "m", value)
    desc = [ids[r.info.run_id] for r in client.search_runs([eid], order_by=["metrics.m DESC"])]
    asc = [ids[r.info.run_id] for r in client.search_runs([eid], order_by=["metrics.m ASC"])]
    assert desc[:3] == ["high", "mid", "low"], desc
    assert asc[:3] == ["low", "mid", "high"], asc
    assert set(desc[3:]) == set(asc[3:]) == {"nan", "none"}
    assert desc[3:] == asc[3:] == ["nan", "none"], (desc, asc)
    # NaN never satisfies a comparison.
    assert {ids[r.info.run_id] for r in client.search_runs([eid], "metrics.m > -1e308")} == {"low", "mid", "high"}


# ---------------------------------------------------------------- deleted runs and experiments


def test_writes_to_deleted_run_rejected(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.delete_run(rid)
    assert error_code_of(client.log_metric, rid, "m", 1.0) == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.log_param, rid, "p", "v") == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.set_tag, rid, "t", "v") == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.log_batch, rid, metrics=[Metric("m", 1.0, now_ms(), 0)]) == "INVALID_PARAMETER_VALUE"
    run = client.get_run(rid)  # still readable
    assert run.info.lifecycle_stage == "deleted"
    assert run.data.metrics == {} and run.data.params == {}
    client.restore_run(rid)
    client.log_metric(rid, "m", 1.0)
    assert client.get_run(rid).data.metrics == {"m": 1.0}


def test_create_run_in_deleted_experiment_rejected(client):
    eid = client.create_experiment(unique_name("deadexp"))
    client.delete_experiment(eid)
    assert error_code_of(client.create_run, eid) == "INVALID_PARAMETER_VALUE"
    assert client.search_runs([eid], run_view_type=ViewType.ALL) == []


def test_deleted_experiment_name_is_still_taken(client):
    name = unique_name("taken")
    eid = client.create_experiment(name)
    client.delete_experiment(eid)
    assert error_code_of(client.create_experiment, name) == "RESOURCE_ALREADY_EXISTS"
    got = client.get_experiment_by_name(name)
    assert got is not None and got.experiment_id == eid and got.lifecycle_stage == "deleted"


def test_rename_experiment_to_taken_name_rejected(client):
    a_name, b_name = unique_name("ren-a"), unique_name("ren-b")
    a = client.create_experiment(a_name)
    b = client.create_experiment(b_name)
    # The Python server answers BAD_REQUEST (its IntegrityError); any 400-class code is right.
    code = error_code_of(client.rename_experiment, a, b_name)
    assert code in ("RESOURCE_ALREADY_EXISTS", "BAD_REQUEST", "INVALID_PARAMETER_VALUE"), code
    assert client.get_experiment(a).name == a_name
    assert client.get_experiment_by_name(b_name).experiment_id == b


# ---------------------------------------------------------------- limits and truncation


def test_length_limits(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.log_param(rid, "p6000", "v" * 6000)
    client.set_tag(rid, "t8000", "t" * 8000)
    client.set_tag(rid, "t9000", "u" * 9000)  # truncated to 8000 server side
    data = client.get_run(rid).data
    assert data.params["p6000"] == "v" * 6000
    assert data.tags["t8000"] == "t" * 8000
    assert data.tags["t9000"] == "u" * 8000

    if backend_choice() == "sqlite":
        client.create_experiment("e" * 500)
    else:  # experiments.name is VARCHAR(256) in MLflow's schema; only SQLite ignores sizes
        assert error_code_of(client.create_experiment, "e" * 500) == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.create_experiment, "f" * 501) == "INVALID_PARAMETER_VALUE"
    eid = client.create_experiment(unique_name("exptag"))
    client.set_experiment_tag(eid, "big", "x" * 20000)
    assert client.get_experiment(eid).tags["big"] == "x" * 20000
    assert error_code_of(client.set_experiment_tag, eid, "k" * 251, "v") == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("key", ["a/../b", "/leading", "a//b", "bad\nkey", "semi;colon", "tab\tkey"])
def test_invalid_keys_rejected(client, experiment_id, key):
    rid = client.create_run(experiment_id).info.run_id
    assert error_code_of(client.log_param, rid, key, "v") == "INVALID_PARAMETER_VALUE"
    assert error_code_of(client.log_metric, rid, key, 1.0) == "INVALID_PARAMETER_VALUE"
    assert client.get_run(rid).data.params == {}


def test_log_batch_size_limits_raw(server, client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    ts = now_ms()
    too_many = {
        "run_id": rid,
        "metrics": [{"key": f"m{i}", "value": 1.0, "timestamp": ts, "step": 0} for i in range(1001)],
    }
    r = requests.post(server.url + API + "/runs/log-batch", json=too_many, timeout=60)
    assert_4xx_json(r, "INVALID_PARAMETER_VALUE")
    r = requests.post(
        server.url + API + "/runs/log-batch",
        json={"run_id": rid, "params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        timeout=60,
    )
    assert_4xx_json(r, "INVALID_PARAMETER_VALUE")
    r = requests.post(
        server.url + API + "/runs/log-batch",
        json={"run_id": rid, "tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        timeout=60,
    )
    assert_4xx_json(r, "INVALID_PARAMETER_VALUE")
    data = client.get_run(rid).data
    assert data.metrics == {} and data.params == {}
    assert not any(k.startswith("t") and k[1:].isdigit() for k in data.tags)

    # Exactly at the limits is accepted.
    ok = {
        "run_id": rid,
        "metrics": [{"key": f"m{i}", "value": float(i), "timestamp": ts, "step": 0} for i in range(900)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
    }
    r = requests.post(server.url + API + "/runs/log-batch", json=ok, timeout=60)
    assert r.status_code == 200, r.text[:300]
    data = client.get_run(rid).data
    assert len(data.metrics) == 900 and len(data.params) == 100


def test_search_runs_max_results_limit(client, experiment_id):
    assert error_code_of(client.search_runs, [experiment_id], max_results=50001) == "INVALID_PARAMETER_VALUE"
    assert client.search_runs([experiment_id], max_results=50000) == []


def test_unicode_round_trip(client):
    name = unique_name("ünï-漢字")
    eid = client.create_experiment(name, tags={"note": "é ü 漢 🚀"})
    rid = client.create_run(eid, run_name="run-ß-😀").info.run_id
    client.log_param(rid, "p", "välue-中")
    client.set_tag(rid, "t", "ταγ")
    assert client.get_experiment_by_name(name).experiment_id == eid
    run = client.get_run(rid)
    assert run.info.run_name == "run-ß-😀"
    assert run.data.params == {"p": "välue-中"} and run.data.tags["t"] == "ταγ"
    assert [r.info.run_id for r in client.search_runs([eid], "params.p = 'välue-中'")] == [rid]


# ---------------------------------------------------------------- metric semantics


def test_identical_metric_points_are_stored_once(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.log_metric(rid, "m", 1.0, timestamp=100, step=1)
    client.log_metric(rid, "m", 1.0, timestamp=100, step=1)
    client.log_batch(rid, metrics=[Metric("m", 1.0, 100, 1), Metric("m", 2.0, 100, 1)])
    hist = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, "m"))
    assert hist == [(1, 100, 1.0), (1, 100, 2.0)]


def test_latest_metric_tie_breaks(client, experiment_id):
    """`run.data.metrics` = max of (step, timestamp, value) per key."""
    rid = client.create_run(experiment_id).info.run_id
    client.log_batch(
        rid,
        metrics=[
            Metric("ts", 5.0, 200, 3),
            Metric("ts", 9.0, 100, 3),  # same step, older timestamp: not latest
            Metric("val", 1.0, 100, 3),
            Metric("val", 7.0, 100, 3),  # same step and timestamp: larger value wins
            Metric("val", 3.0, 100, 3),
            Metric("neg", -5.0, 100, 0),
            Metric("neg", -1.0, 50, -1),  # negative step is older than step 0
        ],
    )
    assert client.get_run(rid).data.metrics == {"ts": 5.0, "val": 7.0, "neg": -5.0}
    later = client.search_runs([experiment_id], f"attributes.run_id = '{rid}' AND metrics.val = 7")
    assert [r.info.run_id for r in later] == [rid]
    assert client.search_runs([experiment_id], f"attributes.run_id = '{rid}' AND metrics.ts = 9") == []


# ---------------------------------------------------------------- run lifecycle


def test_resume_run_and_end_again(tracking):
    exp = mlflow.set_experiment(unique_name("resume"))
    with mlflow.start_run() as first:
        mlflow.log_metric("m", 1.0, step=0)
    client = MlflowClient()
    ended = client.get_run(first.info.run_id)
    assert ended.info.status == "FINISHED" and ended.info.end_time is not None
    with mlflow.start_run(run_id=first.info.run_id) as resumed:
        assert resumed.info.run_id == first.info.run_id
        assert client.get_run(first.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("m", 2.0, step=1)
    again = client.get_run(first.info.run_id)
    assert again.info.status == "FINISHED"
    assert again.info.end_time >= ended.info.end_time
    assert again.data.metrics == {"m": 2.0}
    assert again.info.experiment_id == exp.experiment_id
    assert len(client.search_runs([exp.experiment_id])) == 1


def test_end_run_failed_and_killed(client, experiment_id):
    a = client.create_run(experiment_id).info.run_id
    b = client.create_run(experiment_id).info.run_id
    client.set_terminated(a, status="FAILED", end_time=1234)
    client.set_terminated(b, status="KILLED")
    ra, rb = client.get_run(a).info, client.get_run(b).info
    assert (ra.status, ra.end_time) == ("FAILED", 1234)
    assert rb.status == "KILLED" and rb.end_time >= rb.start_time
    found = client.search_runs([experiment_id], "attributes.status = 'KILLED'")
    assert [r.info.run_id for r in found] == [b]


# ---------------------------------------------------------------- more attributes in search


@pytest.fixture
def attr_runs(server, client):
    eid = client.create_experiment(unique_name("attrs"))
    ids = {}
    for name, user, start in [("r-alice", "alice", 1_000), ("r-bob", "bob", 2_000), ("r-open", "alice", 3_000)]:
        r = requests.post(
            server.url + API + "/runs/create",
            json={"experiment_id": eid, "user_id": user, "run_name": name, "start_time": start},
            timeout=30,
        )
        assert r.status_code == 200, r.text[:300]
        ids[name] = r.json()["run"]["info"]["run_id"]
    client.set_terminated(ids["r-alice"], end_time=5_000)
    client.set_terminated(ids["r-bob"], end_time=4_000)
    return SimpleNamespace(eid=eid, ids=ids, names={v: k for k, v in ids.items()})


def attr_search(client, attr_runs, filter_string="", **kw):
    return [attr_runs.names[r.info.run_id] for r in client.search_runs([attr_runs.eid], filter_string, **kw)]


def test_search_user_id_artifact_uri_and_created(client, attr_runs):
    assert attr_search(client, attr_runs, "attributes.user_id = 'alice'") == ["r-open", "r-alice"]
    assert attr_search(client, attr_runs, "user_id LIKE 'b%'") == ["r-bob"]
    assert attr_search(client, attr_runs, "attributes.user_id != 'alice'") == ["r-bob"]
    bob = attr_runs.ids["r-bob"]
    assert attr_search(client, attr_runs, f"attributes.artifact_uri LIKE '%{bob}%'") == ["r-bob"]
    assert attr_search(client, attr_runs, "attributes.created >= 2000") == ["r-open", "r-bob"]
    assert attr_search(client, attr_runs, "attributes.Created < 2000") == ["r-alice"]
    assert attr_search(client, attr_runs, "attributes.end_time > 4500") == ["r-alice"]
    assert attr_search(client, attr_runs, "run.run_name = 'r-bob'") == ["r-bob"]


def test_order_by_end_time_nulls_last(client, attr_runs):
    assert attr_search(client, attr_runs, order_by=["attributes.end_time DESC"]) == ["r-alice", "r-bob", "r-open"]
    assert attr_search(client, attr_runs, order_by=["attributes.end_time ASC"]) == ["r-bob", "r-alice", "r-open"]
    assert attr_search(client, attr_runs, order_by=["attributes.user_id ASC", "attributes.start_time ASC"]) == [
        "r-alice",
        "r-open",
        "r-bob",
    ]
    assert attr_search(client, attr_runs, order_by=["attributes.created ASC"]) == ["r-alice", "r-bob", "r-open"]


def test_delete_missing_experiment_tag(client):
    eid = client.create_experiment(unique_name("notag"))
    code = error_code_of(client.delete_experiment_tag, eid, "never-set")
    assert code == "RESOURCE_DOES_NOT_EXIST"


def test_in_is_only_for_ids(client, attr_runs):
    for bad in ["attributes.run_name IN ('r-bob')", "attributes.user_id NOT IN ('alice')", "params.p IN ('x')"]:
        assert error_code_of(client.search_runs, [attr_runs.eid], bad) == "INVALID_PARAMETER_VALUE", bad


# ---------------------------------------------------------------- behaviours of the Python server
# found by sending the same requests to both servers; the client sees them.


def test_restore_of_an_active_experiment_is_not_found(client):
    eid = client.create_experiment(unique_name("active"))
    assert error_code_of(client.restore_experiment, eid) == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment(eid).lifecycle_stage == "active"


def test_metric_history_of_unknown_run_is_empty(client):
    assert client.get_metric_history("0123456789abcdef0123456789abcdef", "acc") == []


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.acc == 0.5",
        "metrics.acc <> 0.5",
        "params.p IN ('v')",
        "attributes.status IS NULL",
        "metrics.acc IS NULL",
    ],
)
def test_filters_the_python_server_rejects(client, experiment_id, filter_string):
    rid = client.create_run(experiment_id).info.run_id
    client.log_metric(rid, "acc", 0.5)
    client.log_param(rid, "p", "v")
    assert error_code_of(client.search_runs, [experiment_id], filter_string) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "filter_string",
    ["name IN ('Default')", "attributes.name = 'Default'", "name > 'a'", "lifecycle_stage = 'active'"],
)
def test_experiment_filters_the_python_server_rejects(client, filter_string):
    assert error_code_of(client.search_experiments, filter_string=filter_string) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("order_by", ["`Run name`", "bogus", "lifecycle_stage", "params.p ASC NULLS"])
def test_order_by_keys_the_python_server_rejects(client, experiment_id, order_by):
    assert error_code_of(client.search_runs, [experiment_id], order_by=[order_by]) == "INVALID_PARAMETER_VALUE"


# ---------------------------------------------------------------- search returns data exactly


# Ours only: MLflow 3.17.2's search-runs leaves out the model inputs that its runs/get returns.
@pytest.mark.ours_only
def test_search_returns_each_runs_data_exactly_as_get_run(client, ds):
    """A search page carries every run's params, tags, latest metrics, inputs and outputs
    exactly as runs/get does: doubles to the last bit, text with quotes, backslashes, newlines
    and non-ASCII intact (on PostgreSQL the page is built as JSON inside the database)."""
    eid = client.create_experiment(unique_name("exact"))
    values = [0.1 + 0.2, 1 / 3, 1e-300, 5e-324, -0.0, 1.7976931348623157e308, 123456789.12345679,
              float("inf"), float("-inf"), float("nan"), -2.5e-7]
    texts = ['say "hi"', "back\\slash", "two\nlines", "tab\there", "ünïcødé ✓ 🚀", "{\"json\": [1]}", ""]
    runs = {}
    for i in range(3):
        rid = client.create_run(eid, run_name=f"exact-{i}").info.run_id
        client.log_batch(
            rid,
            metrics=[Metric(f"m{j}", v, 1000 + j, j) for j, v in enumerate(values)],
            params=[Param(f"p{j}", t) for j, t in enumerate(texts)],
            tags=[RunTag(f"t{j}", t) for j, t in enumerate(texts)],
        )
        if i == 0:  # a logged model as the run's output and as another run's input
            from mlflow.entities import LoggedModelInput, LoggedModelOutput

            model = client.create_logged_model(eid, name="exact-model", source_run_id=rid)
            client.log_outputs(rid, [LoggedModelOutput(model.model_id, 3)])
        if i == 1:
            client.log_inputs(rid, models=[LoggedModelInput(model.model_id)])
        runs[rid] = client.get_run(rid)
    found = client.search_runs([eid, ds.eid], max_results=100)
    assert {r.info.run_id for r in found} >= set(runs)
    for run in found:
        expected = runs.get(run.info.run_id) or client.get_run(run.info.run_id)
        assert run.data.params == expected.data.params
        assert run.data.tags == expected.data.tags
        assert model_io(run) == model_io(expected)
        assert exact(run.data.metrics) == exact(expected.data.metrics)
    for run in (r for r in found if r.info.run_id in runs):
        m = run.data.metrics
        assert m["m0"] == 0.1 + 0.2 and m["m1"] == 1 / 3 and m["m2"] == 1e-300 and m["m3"] == 5e-324
        assert m["m6"] == 123456789.12345679 and m["m10"] == -2.5e-7 and math.isnan(m["m9"])
        assert run.data.params["p1"] == "back\\slash" and run.data.tags["t4"] == "ünïcødé ✓ 🚀"
    ios = [model_io(r) for r in found if r.info.run_id in runs]
    assert sum(len(io[1]) for io in ios) == 1 and sum(len(io[2]) for io in ios) == 1, ios


def exact(metrics):
    """Metric values compared bit for bit (NaN equal to NaN, -0.0 not equal to 0.0)."""
    import struct

    return {k: struct.pack("<d", v) for k, v in metrics.items()}


def model_io(run):
    """(dataset inputs, model inputs, model outputs) of a run, absent lists as empty ones."""
    inputs, outputs = run.inputs, run.outputs
    return (
        sorted(str(d.to_dictionary()) for d in (inputs.dataset_inputs if inputs else [])),
        [m.model_id for m in (inputs.model_inputs if inputs else [])],
        [(m.model_id, m.step) for m in (outputs.model_outputs if outputs else [])],
    )
