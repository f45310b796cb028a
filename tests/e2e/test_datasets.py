"""Evaluation datasets (`mlflow.genai.datasets`) with the official client: create with tags
and experiments, records merged by their inputs and read back with `to_df`, schema, profile
and digest following the records, tags, search with filters, order and pages, experiment
associations, record deletion, records from traces, and MLflow's errors. The last test
writes datasets through one server and reads them through the Python server (and back)."""

import json
import shutil
import tempfile
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.genai import datasets as gd

from e2e_support import ServerProcess, backend_choice, new_store, our_binary, unique_name


def test_create_merge_and_read_records(tracking, experiment_id):
    name = unique_name("ds")
    ds = gd.create_dataset(name=name, experiment_id=experiment_id, tags={"team": "qa", "n": 1})
    assert ds.dataset_id.startswith("d-") and ds.name == name
    assert ds.tags == {"team": "qa", "n": "1", "mlflow.user": ds.tags["mlflow.user"]}
    assert ds.experiment_ids == [experiment_id]
    assert ds.to_df().empty
    first_digest = ds.digest

    ds.merge_records([
        {"inputs": {"question": "2+2?"}, "expectations": {"answer": "4"}},
        {"inputs": {"question": "capital of France?"}, "outputs": "Paris"},
        {"inputs": {"question": "héllo", "n": 3}, "expectations": {"ok": True}, "tags": {"k": "v"}},
    ])
    got = gd.get_dataset(dataset_id=ds.dataset_id)
    assert got.digest != first_digest
    assert json.loads(got.profile) == {"num_records": 3}
    schema = json.loads(got.schema)
    assert schema["inputs"] == {"question": "string", "n": "integer"}
    assert schema["expectations"] == {"answer": "string", "ok": "boolean"}
    assert schema["outputs"] == "string"

    df = got.to_df().sort_values("created_time", kind="stable")
    assert len(df) == 3
    by_q = {r["inputs"]["question"]: r for _, r in df.iterrows()}
    assert by_q["2+2?"]["expectations"] == {"answer": "4"}
    assert by_q["2+2?"]["source_type"] == "HUMAN"
    assert by_q["capital of France?"]["outputs"] == "Paris"
    assert by_q["capital of France?"]["source_type"] == "CODE"
    assert by_q["héllo"]["tags"]["k"] == "v"
    assert all(r.startswith("dr-") for r in df["dataset_record_id"])

    # Same inputs (keys in another order): merged into the existing record, not duplicated.
    got.merge_records([
        {"inputs": {"n": 3, "question": "héllo"}, "expectations": {"extra": 1.5}},
        {"inputs": {"question": "new one"}},
    ])
    again = gd.get_dataset(dataset_id=ds.dataset_id)
    assert json.loads(again.profile) == {"num_records": 4}
    records = again.to_dict()["records"]
    rec = next(r for r in records if r["inputs"] == {"question": "héllo", "n": 3})
    assert rec["expectations"] == {"ok": True, "extra": 1.5}
    assert rec["tags"]["k"] == "v"
    assert json.loads(again.schema)["expectations"]["extra"] == "float"


def test_tags_search_and_delete(tracking, experiment_id):
    prefix = unique_name("search")
    a = gd.create_dataset(name=f"{prefix}-a", experiment_id=experiment_id, tags={"env": "dev"})
    b = gd.create_dataset(name=f"{prefix}-b", experiment_id=experiment_id, tags={"env": "prod"})
    c = gd.create_dataset(name=f"{prefix}-c", experiment_id="0")

    gd.set_dataset_tags(dataset_id=a.dataset_id, tags={"env": "staging", "owner": "bob"})
    gd.delete_dataset_tag(dataset_id=a.dataset_id, key="owner")
    gd.delete_dataset_tag(dataset_id=a.dataset_id, key="never-set")
    tags = gd.get_dataset(dataset_id=a.dataset_id).tags
    assert tags["env"] == "staging" and "owner" not in tags

    found = gd.search_datasets(filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"])
    assert [d.name for d in found] == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    found = gd.search_datasets(
        experiment_ids=[experiment_id], filter_string="tags.env = 'prod'"
    )
    assert [d.dataset_id for d in found] == [b.dataset_id]
    found = gd.search_datasets(filter_string=f"name = '{prefix}-c'")
    assert [d.dataset_id for d in found] == [c.dataset_id]
    # Newest first by default.
    found = gd.search_datasets(experiment_ids=[experiment_id])
    assert [d.dataset_id for d in found] == [b.dataset_id, a.dataset_id]
    # By name, through the search the client does for get_dataset(name=...).
    assert gd.get_dataset(name=f"{prefix}-b").dataset_id == b.dataset_id

    client = mlflow.MlflowClient()
    page = client.search_datasets(
        filter_string=f"name LIKE '{prefix}-%'", max_results=2, order_by=["name DESC"]
    )
    assert [d.name for d in page] == [f"{prefix}-c", f"{prefix}-b"] and page.token
    rest = client.search_datasets(
        filter_string=f"name LIKE '{prefix}-%'", max_results=2, order_by=["name DESC"],
        page_token=page.token,
    )
    assert [d.name for d in rest] == [f"{prefix}-a"] and not rest.token

    gd.delete_dataset(dataset_id=c.dataset_id)
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        gd.get_dataset(dataset_id=c.dataset_id)
    assert not gd.search_datasets(filter_string=f"name = '{prefix}-c'")


def test_experiments_and_record_deletion(tracking, experiment_id, client):
    other = client.create_experiment(unique_name("ds-exp"))
    ds = gd.create_dataset(name=unique_name("assoc"), experiment_id=experiment_id)
    gd.add_dataset_to_experiments(dataset_id=ds.dataset_id, experiment_ids=[other])
    assert sorted(gd.get_dataset(dataset_id=ds.dataset_id).experiment_ids) == sorted(
        [experiment_id, other]
    )
    found = gd.search_datasets(experiment_ids=[other])
    assert [d.dataset_id for d in found] == [ds.dataset_id]
    gd.remove_dataset_from_experiments(dataset_id=ds.dataset_id, experiment_ids=[experiment_id])
    assert gd.get_dataset(dataset_id=ds.dataset_id).experiment_ids == [other]
    with pytest.raises(mlflow.exceptions.MlflowException, match="No Experiment with id"):
        gd.add_dataset_to_experiments(dataset_id=ds.dataset_id, experiment_ids=["987654321"])

    ds.merge_records([{"inputs": {"i": i}} for i in range(5)])
    store = mlflow.tracking._tracking_service.utils._get_store()
    first, token = store._load_dataset_records(ds.dataset_id, max_results=3)
    second, end = store._load_dataset_records(ds.dataset_id, max_results=3, page_token=token)
    assert len(first) == 3 and len(second) == 2 and token and end is None
    assert {r.inputs["i"] for r in first + second} == set(range(5))

    ids = [r.dataset_record_id for r in first[:2]]
    assert gd.get_dataset(dataset_id=ds.dataset_id).delete_records(ids) == 2
    left = gd.get_dataset(dataset_id=ds.dataset_id)
    assert len(left.to_df()) == 3
    assert json.loads(left.profile) == {"num_records": 3}


def test_records_from_traces(tracking, experiment_id, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.tracing.reset()
    mlflow.set_experiment(experiment_id=experiment_id)
    try:
        @mlflow.trace
        def answer(question):
            return question.upper()

        answer("why")
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.log_expectation(trace_id=trace_id, name="expected", value="WHY")
        traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
        ds = gd.create_dataset(name=unique_name("from-traces"), experiment_id=experiment_id)
        ds.merge_records(traces)
        df = gd.get_dataset(dataset_id=ds.dataset_id).to_df()
        assert len(df) == 1
        row = df.iloc[0]
        assert row["inputs"] == {"question": "why"}
        assert row["outputs"] == "WHY"
        assert row["expectations"] == {"expected": "WHY"}
        assert row["source_type"] == "TRACE" and row["source_id"] == trace_id
    finally:
        mlflow.tracing.reset()


def test_errors(tracking):
    base = f"{tracking.url}/api/3.0/mlflow/datasets"
    r = requests.get(f"{base}/d-{'0' * 32}", timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(f"{base}/create", json={"tags": "{}"}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(f"{base}/search", json={"filter_string": "color = 'red'"}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(f"{base}/search", json={"order_by": ["created_by ASC"]}, timeout=30)
    assert r.status_code == 400
    with pytest.raises(mlflow.exceptions.MlflowException):
        gd.set_dataset_tags(dataset_id=f"d-{'1' * 32}", tags={"a": "b"})
    # Deleting what is not there is not an error.
    gd.delete_dataset(dataset_id=f"d-{'2' * 32}")


def write_datasets(url):
    mlflow.set_tracking_uri(url)
    ds = gd.create_dataset(name=unique_name("compat"), experiment_id="0", tags={"k": "v"})
    ds.merge_records([
        {"inputs": {"q": "a", "n": 1}, "expectations": {"x": [1, 2]}, "outputs": {"y": "z"}},
        {"inputs": {"q": "ü"}, "outputs": None, "tags": {"t": "1"},
         "source": {"source_type": "document", "source_data": {"source_id": "doc-1"}}},
    ])
    ds.merge_records([{"inputs": {"n": 1, "q": "a"}, "expectations": {"w": 0.5}}])
    return ds.dataset_id


def read_datasets(url, dataset_id):
    mlflow.set_tracking_uri(url)
    whole = gd.get_dataset(dataset_id=dataset_id).to_dict()
    records = sorted(whole.pop("records"), key=lambda r: json.dumps(r["inputs"], sort_keys=True))
    found = [d.dataset_id for d in gd.search_datasets(filter_string="tags.k = 'v'")]
    return {
        "dataset": whole,
        "records": records,
        "found": found,
    }


@pytest.mark.ours_only
@pytest.mark.parametrize("writer", ["python", "ours"])
def test_datasets_read_back_through_the_other_server(writer):
    tmp = Path(tempfile.mkdtemp(prefix="ds-compat-"))
    uri, db = new_store(backend_choice(), tmp)
    first, second = ("python", our_binary()) if writer == "python" else (our_binary(), "python")
    try:
        srv = ServerProcess(first, tmp / "first", backend_uri=uri, db_path=tmp / "mlflow.db")
        try:
            dataset_id = write_datasets(srv.url)
            before = read_datasets(srv.url, dataset_id)
        finally:
            srv.stop()
        srv = ServerProcess(second, tmp / "second", backend_uri=uri, db_path=tmp / "mlflow.db")
        try:
            after = read_datasets(srv.url, dataset_id)
        finally:
            srv.stop()
    finally:
        if db is not None:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    assert after == before
    assert len(before["records"]) == 2 and before["found"] == [dataset_id]
    doc = next(r for r in before["records"] if r["inputs"] == {"q": "ü"})
    assert doc["source_type"] == "DOCUMENT" and doc["source_id"] == "doc-1"
    merged = next(r for r in before["records"] if r["inputs"] == {"q": "a", "n": 1})
    assert merged["expectations"] == {"x": [1, 2], "w": 0.5}
    assert merged["outputs"] == {"y": "z"}
