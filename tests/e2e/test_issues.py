"""GenAI issues (`/api/3.0/mlflow/issues`) through the official client's REST store: create
with every field and with the required ones, get, update, search by experiment and status
filter with MLflow's order (severity, then trace count when asked, then newest) and paging,
trace counts from issue-reference assessments, and MLflow's refusals over HTTP (unknown
experiment, issue and run, bad status, severity, filter and page size). Where the Python
server answers 500 (a status or severity outside its enums) or lets SQLite store an
over-long name, this server answers 400 on every database."""

import time

import mlflow
import pytest
import requests
from mlflow.entities.assessment import IssueReference
from mlflow.entities.issue import IssueSeverity, IssueStatus


@pytest.fixture
def store(client):
    return client._tracking_client.store


def _url(server, path=""):
    return f"{server.url}/api/3.0/mlflow/issues{path}"


def test_create_get_update(store, client, experiment_id):
    run = client.create_run(experiment_id)
    created = store.create_issue(
        experiment_id=experiment_id,
        name="Slow answers",
        description="Latency above two seconds",
        severity=IssueSeverity.HIGH,
        root_causes=["cold cache", "large prompts"],
        source_run_id=run.info.run_id,
        categories=["latency"],
        created_by="alice",
    )
    assert created.issue_id.startswith("iss-") and len(created.issue_id) == 36
    assert created.experiment_id == experiment_id
    assert created.status == IssueStatus.PENDING
    assert created.severity == IssueSeverity.HIGH
    assert created.root_causes == ["cold cache", "large prompts"]
    assert created.categories == ["latency"]
    assert created.source_run_id == run.info.run_id
    assert created.created_by == "alice"
    assert created.created_timestamp == created.last_updated_timestamp > 0

    got = store.get_issue(created.issue_id)
    assert got == created

    time.sleep(0.01)
    updated = store.update_issue(
        created.issue_id, status=IssueStatus.RESOLVED, name="Slow answers (fixed)"
    )
    assert updated.status == IssueStatus.RESOLVED
    assert updated.name == "Slow answers (fixed)"
    assert updated.description == "Latency above two seconds"
    assert updated.severity == IssueSeverity.HIGH
    assert updated.last_updated_timestamp > created.last_updated_timestamp
    assert store.get_issue(created.issue_id) == updated


def test_minimal_issue_leaves_optional_fields_out(tracking, experiment_id):
    r = requests.post(
        _url(tracking),
        json={"experiment_id": experiment_id, "name": "n", "description": "d"},
    )
    assert r.status_code == 200, r.text
    issue = r.json()["issue"]
    assert issue["status"] == "pending"
    for absent in ("severity", "root_causes", "categories", "source_run_id", "created_by"):
        assert absent not in issue


def test_search_order_filter_and_paging(store, client, experiment_id):
    other = client.create_experiment(f"issues-other-{time.time_ns()}")
    store.create_issue(experiment_id=other, name="elsewhere", description="d")
    low = store.create_issue(
        experiment_id=experiment_id, name="low", description="d", severity=IssueSeverity.LOW
    )
    plain = []
    for i in range(3):
        time.sleep(0.005)
        plain.append(store.create_issue(experiment_id=experiment_id, name=f"p{i}", description="d"))
    high = store.create_issue(
        experiment_id=experiment_id,
        name="high",
        description="d",
        severity=IssueSeverity.HIGH,
        status=IssueStatus.RESOLVED,
    )

    found = store.search_issues(experiment_id=experiment_id)
    # Highest severity first, issues without one last, newest first within a rank.
    assert [i.name for i in found] == ["high", "low", "p2", "p1", "p0"]
    assert found.token is None

    resolved = store.search_issues(experiment_id=experiment_id, filter_string="status = 'resolved'")
    assert [i.issue_id for i in resolved] == [high.issue_id]
    pending = store.search_issues(
        experiment_id=experiment_id, filter_string="status != 'resolved' AND status = 'pending'"
    )
    assert {i.issue_id for i in pending} == {low.issue_id} | {p.issue_id for p in plain}

    first = store.search_issues(experiment_id=experiment_id, max_results=2)
    assert [i.name for i in first] == ["high", "low"] and first.token
    second = store.search_issues(experiment_id=experiment_id, max_results=2, page_token=first.token)
    third = store.search_issues(experiment_id=experiment_id, max_results=2, page_token=second.token)
    assert [i.name for i in second] == ["p2", "p1"]
    assert [i.name for i in third] == ["p0"] and third.token is None

    everywhere = {i.name for i in store.search_issues()}
    assert {"elsewhere", "high"} <= everywhere


def test_trace_count_from_issue_assessments(tracking, store, experiment_id):
    a = store.create_issue(experiment_id=experiment_id, name="a", description="d")
    time.sleep(0.005)
    b = store.create_issue(experiment_id=experiment_id, name="b", description="d")
    mlflow.set_experiment(experiment_id=experiment_id)
    trace_ids = []
    for i in range(2):
        with mlflow.start_span(name=f"t{i}") as span:
            span.set_inputs({"i": i})
        trace_ids.append(span.trace_id)
    mlflow.flush_trace_async_logging()
    for trace_id in trace_ids:
        mlflow.log_assessment(trace_id, IssueReference(issue_id=a.issue_id, issue_name="a"))
    # Two references on one trace count that trace once.
    mlflow.log_assessment(trace_ids[0], IssueReference(issue_id=a.issue_id, issue_name="a"))

    counted = store.search_issues(experiment_id=experiment_id, include_trace_count=True)
    # Same (missing) severity: the issue on more traces comes first although it is older.
    assert [(i.issue_id, i.trace_count) for i in counted] == [(a.issue_id, 2), (b.issue_id, 0)]
    plain = store.search_issues(experiment_id=experiment_id)
    assert [i.issue_id for i in plain] == [b.issue_id, a.issue_id]
    assert all(i.trace_count is None for i in plain)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"experiment_id": "999999", "name": "n", "description": "d"}, "RESOURCE_DOES_NOT_EXIST"),
        ({"experiment_id": "EXP", "name": "n"}, "INVALID_PARAMETER_VALUE"),
        ({"experiment_id": "EXP", "description": "d"}, "INVALID_PARAMETER_VALUE"),
        (
            {"experiment_id": "EXP", "name": "n", "description": "d", "status": "open"},
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"experiment_id": "EXP", "name": "n", "description": "d", "severity": "urgent"},
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {"experiment_id": "EXP", "name": "n", "description": "d", "source_run_id": "f" * 32},
            "INVALID_PARAMETER_VALUE",
        ),
        ({"experiment_id": "EXP", "name": "n" * 251, "description": "d"}, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_create_refusals(tracking, experiment_id, body, code):
    body = {k: (experiment_id if v == "EXP" else v) for k, v in body.items()}
    r = requests.post(_url(tracking), json=body)
    assert r.status_code == (404 if code == "RESOURCE_DOES_NOT_EXIST" else 400), r.text
    assert r.json()["error_code"] == code
    found = requests.post(_url(tracking, "/search"), json={"experiment_id": experiment_id})
    assert "issues" not in found.json()


def test_get_update_search_refusals(tracking, store, experiment_id):
    r = requests.get(_url(tracking, "/iss-missing"))
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.patch(_url(tracking, "/iss-missing"), json={"issue_id": "iss-missing", "name": "x"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # As MLflow, the body names the issue too.
    r = requests.patch(_url(tracking, "/iss-missing"), json={"name": "x"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    issue = store.create_issue(experiment_id=experiment_id, name="n", description="d")
    r = requests.patch(
        _url(tracking, f"/{issue.issue_id}"), json={"issue_id": issue.issue_id, "severity": "huge"}
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert store.get_issue(issue.issue_id) == issue
    for body in (
        {"filter_string": "name = 'n'"},
        {"filter_string": "status > 'a'"},
        {"filter_string": "status = 'a' OR status = 'b'"},
        {"max_results": 0},
        {"max_results": 50001},
        {"page_token": "not-a-token"},
    ):
        r = requests.post(_url(tracking, "/search"), json={"experiment_id": experiment_id, **body})
        assert r.status_code == 400, body
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
