"""Experiments, runs, metrics, params, tags and inputs through the official client."""

import math
import re
import sys
import time

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from e2e_support import unique_name

MAX_DOUBLE = sys.float_info.max  # MLflow stores +-Infinity as +-DBL_MAX


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------- experiments (fluent)


def test_set_experiment_creates_then_reuses(tracking):
    name = unique_name("setexp")
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.experiment_id != "0"
    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    by_id = mlflow.set_experiment(experiment_id=exp.experiment_id)
    assert by_id.name == name

    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    fetched = MlflowClient().get_experiment_by_name(name)
    assert fetched.experiment_id == exp.experiment_id
    assert fetched.artifact_location.endswith(exp.experiment_id)


def test_log_metrics_over_steps_and_history(tracking):
    mlflow.set_experiment(unique_name("metrics"))
    with mlflow.start_run() as run:
        for step in range(6):
            mlflow.log_metrics({"loss": 1.0 / (step + 1), "acc": step * 0.1}, step=step)
        mlflow.log_metric("single", 42.5, step=7, timestamp=1_700_000_000_123)
    client = MlflowClient()
    hist = sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in hist] == list(range(6))
    assert [m.value for m in hist] == pytest.approx([1.0 / (s + 1) for s in range(6)])
    assert all(m.key == "loss" and m.timestamp > 0 for m in hist)
    acc = client.get_metric_history(run.info.run_id, "acc")
    assert len(acc) == 6
    single = client.get_metric_history(run.info.run_id, "single")
    assert [(m.value, m.step, m.timestamp) for m in single] == [(42.5, 7, 1_700_000_000_123)]
    assert client.get_metric_history(run.info.run_id, "never-logged") == []

    data = client.get_run(run.info.run_id).data
    # The run shows the latest (highest step) value of each metric.
    assert data.metrics["loss"] == pytest.approx(1.0 / 6)
    assert data.metrics["acc"] == pytest.approx(0.5)
    assert data.metrics["single"] == 42.5


def test_latest_metric_is_max_step_not_last_logged(client, experiment_id):
    run = client.create_run(experiment_id)
    rid = run.info.run_id
    client.log_metric(rid, "m", 5.0, timestamp=1000, step=10)
    client.log_metric(rid, "m", 1.0, timestamp=2000, step=2)
    assert client.get_run(rid).data.metrics["m"] == 5.0
    assert len(client.get_metric_history(rid, "m")) == 2


def test_log_params_and_set_tags(tracking):
    mlflow.set_experiment(unique_name("params"))
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": 0.01, "layers": 3, "name": "resnet", "flag": True, "none": None})
        mlflow.log_param("single", "x y z")
        mlflow.set_tags({"team": "ml", "priority": 1})
        mlflow.set_tag("stage", "dev")
    data = MlflowClient().get_run(run.info.run_id).data
    assert data.params == {
        "lr": "0.01",
        "layers": "3",
        "name": "resnet",
        "flag": "True",
        "none": "None",
        "single": "x y z",
    }
    assert data.tags["team"] == "ml"
    assert data.tags["priority"] == "1"
    assert data.tags["stage"] == "dev"


def test_tag_upsert(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.set_tag(rid, "k", "v1")
    client.set_tag(rid, "k", "v2")
    assert client.get_run(rid).data.tags["k"] == "v2"


def test_nested_runs(tracking):
    exp = mlflow.set_experiment(unique_name("nested"))
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-a", nested=True) as child_a:
            with mlflow.start_run(run_name="grandchild", nested=True) as grandchild:
                pass
        with mlflow.start_run(run_name="child-b", nested=True) as child_b:
            pass
    client = MlflowClient()
    pid = parent.info.run_id
    assert "mlflow.parentRunId" not in client.get_run(pid).data.tags
    assert client.get_run(child_a.info.run_id).data.tags["mlflow.parentRunId"] == pid
    assert client.get_run(child_b.info.run_id).data.tags["mlflow.parentRunId"] == pid
    assert client.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child_a.info.run_id
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{pid}'"
    )
    assert {r.info.run_name for r in children} == {"child-a", "child-b"}
    for rid in (pid, child_a.info.run_id, child_b.info.run_id, grandchild.info.run_id):
        assert client.get_run(rid).info.status == "FINISHED"


def test_log_batch_with_nan_and_infinities(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    ts = now_ms()
    client.log_batch(
        rid,
        metrics=[
            Metric("nan", float("nan"), ts, 0),
            Metric("pinf", float("inf"), ts, 0),
            Metric("ninf", float("-inf"), ts, 0),
            Metric("normal", 1.5, ts, 0),
            Metric("normal", 2.5, ts + 1, 1),
            Metric("big_int_step", 3.0, ts, 2**40),
        ],
        params=[Param("p1", "a"), Param("p2", "b")],
        tags=[RunTag("t1", "x"), RunTag("t2", "y")],
    )
    data = client.get_run(rid).data
    assert math.isnan(data.metrics["nan"])
    assert data.metrics["pinf"] == MAX_DOUBLE
    assert data.metrics["ninf"] == -MAX_DOUBLE
    assert data.metrics["normal"] == 2.5
    assert data.metrics["big_int_step"] == 3.0
    assert data.params == {"p1": "a", "p2": "b"}
    assert data.tags["t1"] == "x" and data.tags["t2"] == "y"

    nan_hist = client.get_metric_history(rid, "nan")
    assert len(nan_hist) == 1 and math.isnan(nan_hist[0].value)
    assert [m.value for m in client.get_metric_history(rid, "pinf")] == [MAX_DOUBLE]
    assert [m.value for m in client.get_metric_history(rid, "ninf")] == [-MAX_DOUBLE]
    assert [m.step for m in client.get_metric_history(rid, "big_int_step")] == [2**40]
    normal = sorted(client.get_metric_history(rid, "normal"), key=lambda m: m.step)
    assert [(m.value, m.step, m.timestamp) for m in normal] == [(1.5, 0, ts), (2.5, 1, ts + 1)]


def test_log_batch_large_is_chunked_and_complete(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    ts = now_ms()
    metrics = [Metric(f"m{i % 50}", float(i), ts, i // 50) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    client.log_batch(rid, metrics=metrics, params=params)
    data = client.get_run(rid).data
    assert len(data.metrics) == 50
    assert len(data.params) == 150
    assert data.metrics["m0"] == 2450.0
    assert len(client.get_metric_history(rid, "m7")) == 50


# ---------------------------------------------------------------- run names


RUN_NAME_RE = re.compile(r"^[a-z]+-[a-z]+-\d+$")


def test_generated_run_name_and_tag(client, experiment_id):
    run = client.create_run(experiment_id)
    name = run.info.run_name
    assert RUN_NAME_RE.match(name), name
    assert run.data.tags["mlflow.runName"] == name
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_name == name
    assert fetched.data.tags["mlflow.runName"] == name


def test_explicit_run_name(tracking):
    mlflow.set_experiment(unique_name("names"))
    with mlflow.start_run(run_name="my explicit run") as run:
        pass
    fetched = MlflowClient().get_run(run.info.run_id)
    assert fetched.info.run_name == "my explicit run"
    assert fetched.data.tags["mlflow.runName"] == "my explicit run"


def test_run_name_from_tag_at_create(client, experiment_id):
    run = client.create_run(experiment_id, tags={"mlflow.runName": "from-tag"})
    assert run.info.run_name == "from-tag"
    assert client.get_run(run.info.run_id).info.run_name == "from-tag"


def test_rename_run_via_tag_and_update(client, experiment_id):
    rid = client.create_run(experiment_id, run_name="before").info.run_id
    client.set_tag(rid, "mlflow.runName", "after-tag")
    run = client.get_run(rid)
    assert run.info.run_name == "after-tag"
    assert run.data.tags["mlflow.runName"] == "after-tag"

    client.update_run(rid, name="after-update")
    run = client.get_run(rid)
    assert run.info.run_name == "after-update"
    assert run.data.tags["mlflow.runName"] == "after-update"
    found = client.search_runs([experiment_id], "attributes.run_name = 'after-update'")
    assert [r.info.run_id for r in found] == [rid]


# ---------------------------------------------------------------- run lifecycle


def test_update_status_and_end_time(client, experiment_id):
    start = now_ms() - 10_000
    run = client.create_run(experiment_id, start_time=start)
    rid = run.info.run_id
    assert run.info.status == "RUNNING"
    assert run.info.start_time == start
    assert run.info.end_time is None
    assert run.info.lifecycle_stage == "active"
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert run.info.artifact_uri.endswith(f"/{rid}/artifacts")

    end = start + 5_000
    client.set_terminated(rid, status="FAILED", end_time=end)
    info = client.get_run(rid).info
    assert info.status == "FAILED"
    assert info.end_time == end

    client.update_run(rid, status="KILLED")
    assert client.get_run(rid).info.status == "KILLED"
    # A finished run can still be logged to.
    client.log_metric(rid, "after_end", 1.0)
    assert client.get_run(rid).data.metrics["after_end"] == 1.0


def test_fluent_end_run_status(tracking):
    mlflow.set_experiment(unique_name("status"))
    run = mlflow.start_run()
    mlflow.end_run(status="KILLED")
    info = MlflowClient().get_run(run.info.run_id).info
    assert info.status == "KILLED"
    assert info.end_time is not None


def test_delete_and_restore_run(client, experiment_id):
    keep = client.create_run(experiment_id).info.run_id
    rid = client.create_run(experiment_id).info.run_id
    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"

    def ids(view):
        return {r.info.run_id for r in client.search_runs([experiment_id], run_view_type=view)}

    assert ids(ViewType.ACTIVE_ONLY) == {keep}
    assert ids(ViewType.DELETED_ONLY) == {rid}
    assert ids(ViewType.ALL) == {keep, rid}

    with pytest.raises(MlflowException) as e:
        client.log_metric(rid, "x", 1.0)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    client.restore_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"
    assert ids(ViewType.ACTIVE_ONLY) == {keep, rid}
    assert ids(ViewType.DELETED_ONLY) == set()
    client.log_metric(rid, "x", 1.0)


def test_delete_and_restore_experiment(client):
    name = unique_name("delexp")
    eid = client.create_experiment(name)
    rid = client.create_run(eid).info.run_id
    client.delete_experiment(eid)

    exp = client.get_experiment(eid)
    assert exp.lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    assert client.get_run(rid).info.lifecycle_stage == "deleted"

    def names(view):
        return {
            e.name
            for e in client.search_experiments(view_type=view, filter_string=f"name = '{name}'")
        }

    assert names(ViewType.ACTIVE_ONLY) == set()
    assert names(ViewType.DELETED_ONLY) == {name}
    assert names(ViewType.ALL) == {name}

    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    assert client.get_run(rid).info.lifecycle_stage == "active"
    assert names(ViewType.ACTIVE_ONLY) == {name}
    assert names(ViewType.DELETED_ONLY) == set()


def test_set_experiment_refuses_deleted(tracking):
    name = unique_name("deleted-set")
    client = MlflowClient()
    client.delete_experiment(client.create_experiment(name))
    with pytest.raises(MlflowException):
        mlflow.set_experiment(name)


def test_rename_experiment(client):
    old, new = unique_name("old"), unique_name("new")
    eid = client.create_experiment(old)
    client.rename_experiment(eid, new)
    assert client.get_experiment(eid).name == new
    assert client.get_experiment_by_name(new).experiment_id == eid
    assert client.get_experiment_by_name(old) is None


def test_experiment_tags_set_and_delete(client):
    eid = client.create_experiment(unique_name("exptags"), tags={"created": "yes"})
    client.set_experiment_tag(eid, "owner", "alice")
    client.set_experiment_tag(eid, "owner", "bob")
    client.set_experiment_tag(eid, "note", "x" * 1000)
    tags = client.get_experiment(eid).tags
    assert tags["created"] == "yes"
    assert tags["owner"] == "bob"
    assert tags["note"] == "x" * 1000
    client.delete_experiment_tag(eid, "owner")
    tags = client.get_experiment(eid).tags
    assert "owner" not in tags
    assert tags["created"] == "yes"


def test_delete_run_tag(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.set_tag(rid, "keep", "1")
    client.set_tag(rid, "drop", "2")
    client.delete_tag(rid, "drop")
    tags = client.get_run(rid).data.tags
    assert "drop" not in tags
    assert tags["keep"] == "1"
    with pytest.raises(MlflowException) as e:
        client.delete_tag(rid, "drop")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_param_immutability(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.log_param(rid, "lr", "0.1")
    client.log_param(rid, "lr", "0.1")  # same value: accepted, no-op
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "lr", "0.2")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as e:
        client.log_batch(rid, params=[Param("lr", "0.3")])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(rid).data.params == {"lr": "0.1"}


def test_long_param_value_truncated(client, experiment_id):
    rid = client.create_run(experiment_id).info.run_id
    client.log_batch(rid, params=[Param("long", "v" * 7000)])
    assert client.get_run(rid).data.params["long"] == "v" * 6000


# ---------------------------------------------------------------- inputs


def test_log_input_pandas_dataset_and_search(tracking):
    exp = mlflow.set_experiment(unique_name("inputs"))
    ds_name = unique_name("ds")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(df, name=ds_name, targets="y")
    with mlflow.start_run() as with_ds:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # de-duplicated
    with mlflow.start_run() as without_ds:
        pass

    client = MlflowClient()
    inputs = client.get_run(with_ds.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    d = inputs[0].dataset
    assert d.name == ds_name
    assert d.digest == dataset.digest
    assert d.source_type == "code"
    assert "mlflow_colspec" in d.schema
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
    assert client.get_run(without_ds.info.run_id).inputs.dataset_inputs == []

    eids = [exp.experiment_id]
    by_name = client.search_runs(eids, f"datasets.name = '{ds_name}'")
    assert [r.info.run_id for r in by_name] == [with_ds.info.run_id]
    by_digest = client.search_runs(eids, f"datasets.digest = '{dataset.digest}'")
    assert [r.info.run_id for r in by_digest] == [with_ds.info.run_id]
    by_ctx = client.search_runs(eids, "datasets.context = 'training'")
    assert [r.info.run_id for r in by_ctx] == [with_ds.info.run_id]
    assert client.search_runs(eids, "datasets.name = 'no-such-dataset'") == []
    df_out = mlflow.search_runs(eids, filter_string=f"datasets.name LIKE '{ds_name[:6]}%'")
    assert list(df_out["run_id"]) == [with_ds.info.run_id]
