"""Traces interoperate with the Python `mlflow server` 3.17.2 both ways on the session's backend
(SQLite, PostgreSQL or MariaDB): traces, spans, tags and assessments written through one
server read back identically through the other, started on the same store."""

import shutil
import tempfile
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import AssessmentSource, SpanEvent, SpanType

from e2e_support import ServerProcess, backend_choice, new_store, our_binary, unique_name

pytestmark = pytest.mark.ours_only


def write_traces(url):
    """A few traces through `url`: nested spans with events, an error, tags, assessments."""
    mlflow.set_tracking_uri(url)
    mlflow.tracing.reset()
    exp = mlflow.set_experiment(unique_name("trace-compat")).experiment_id

    @mlflow.trace(span_type=SpanType.CHAIN, attributes={"k": "v"})
    def outer(x):
        with mlflow.start_span("tool", span_type=SpanType.TOOL) as s:
            s.set_inputs({"x": x, "text": "héllo"})
            s.add_event(SpanEvent("ev", attributes={"n": 1}))
            s.set_outputs([x, x * 2])
        mlflow.update_current_trace(tags={"color": "blue"})
        return {"answer": x + 1}

    @mlflow.trace
    def broken():
        raise RuntimeError("nope")

    ids = []
    for i in range(3):
        outer(i)
        ids.append(mlflow.get_last_active_trace_id())
    with pytest.raises(RuntimeError):
        broken()
    ids.append(mlflow.get_last_active_trace_id())
    mlflow.log_feedback(trace_id=ids[0], name="quality", value=0.5, rationale="ok",
                        source=AssessmentSource(source_type="HUMAN", source_id="bob"))
    mlflow.log_expectation(trace_id=ids[1], name="expected", value={"answer": 2})
    mlflow.MlflowClient().set_trace_tag(ids[2], "reviewed", "yes")
    return exp


def snapshot(url, exp):
    """Everything a client sees of the experiment's traces, in a comparable form."""
    mlflow.set_tracking_uri(url)
    traces = mlflow.search_traces(locations=[exp], return_type="list", order_by=["timestamp_ms ASC"])
    out = []
    for t in traces:
        info = t.info
        spans = [
            (s.name, s.span_type, s.parent_id, s.status.status_code.value, s.inputs, s.outputs,
             sorted((k, str(v)) for k, v in s.attributes.items()),
             [(e.name, e.timestamp, e.attributes) for e in s.events], s.start_time_ns, s.end_time_ns)
            for s in t.data.spans
        ]
        assessments = sorted(
            (a.name, a.value, a.source.source_type, a.source.source_id, a.rationale, a.valid)
            for a in info.assessments
        )
        out.append({
            "id": info.trace_id, "state": info.state.value, "time": info.request_time,
            "duration": info.execution_duration, "request": info.request_preview,
            "response": info.response_preview, "tags": info.tags,
            "metadata": info.trace_metadata, "spans": spans, "assessments": assessments,
        })
    assert len(out) == 4
    return out


@pytest.fixture
def store():
    tmp = Path(tempfile.mkdtemp(prefix="trace-compat-"))
    uri, db = new_store(backend_choice(), tmp)
    try:
        yield tmp, uri
    finally:
        if db is not None:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("writer", ["python", "ours"])
def test_traces_read_back_through_the_other_server(store, writer, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    tmp, uri = store
    first, second = ("python", our_binary()) if writer == "python" else (our_binary(), "python")
    srv = ServerProcess(first, tmp / "first", backend_uri=uri, db_path=tmp / "mlflow.db")
    try:
        exp = write_traces(srv.url)
        before = snapshot(srv.url, exp)
    finally:
        srv.stop()
    srv = ServerProcess(second, tmp / "second", backend_uri=uri, db_path=tmp / "mlflow.db")
    try:
        after = snapshot(srv.url, exp)
    finally:
        srv.stop()
        mlflow.tracing.reset()
    assert after == before
