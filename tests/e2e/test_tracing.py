"""MLflow 3 tracing end to end with the official client: `@mlflow.trace` and `start_span`
spans through OTLP, trace infos through the v3 API, search with MLflow's filter grammar in
pandas and list forms, tags, deletes, links to runs, assessments, async export, and the OTLP
endpoint's encodings and refusals. Runs against our server on every backend, and against the
Python server as an oracle (MLFLOW_E2E_SERVER=python)."""

import gzip
import json
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
import requests
from mlflow.entities import AssessmentSource, SpanEvent, SpanType


@mlflow.trace(span_type=SpanType.CHAIN, attributes={"stage": "outer"})
def outer(x):
    return inner(x) + 1


@mlflow.trace
def inner(x):
    with mlflow.start_span("manual", span_type=SpanType.TOOL) as span:
        span.set_inputs({"x": x, "tags": ["a", "b"]})
        span.set_attribute("count", 3)
        span.set_attribute("ratio", 0.25)
        span.add_event(SpanEvent("checkpoint", attributes={"step": 1, "note": "é ok"}))
        span.set_outputs({"y": x * 2})
    return x * 2


def run_trace(x):
    outer(x)
    return mlflow.get_last_active_trace_id()


def test_nested_spans_round_trip(traced):
    trace_id = run_trace(5)
    trace = mlflow.get_trace(trace_id)
    info = trace.info
    assert info.trace_id == trace_id
    assert info.experiment_id == traced
    assert info.state.value == "OK"
    assert info.request_preview == '{"x": 5}'
    assert info.response_preview == "11"
    assert info.tags["mlflow.traceName"] == "outer"
    assert info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info.execution_duration is not None and info.execution_duration >= 0
    spans = {s.name: s for s in trace.data.spans}
    assert [s.name for s in trace.data.spans][0] == "outer"
    assert set(spans) == {"outer", "inner", "manual"}
    assert spans["outer"].parent_id is None
    assert spans["inner"].parent_id == spans["outer"].span_id
    assert spans["manual"].parent_id == spans["inner"].span_id
    assert spans["outer"].span_type == "CHAIN"
    assert spans["outer"].attributes["stage"] == "outer"
    manual = spans["manual"]
    assert manual.span_type == "TOOL"
    assert manual.inputs == {"x": 5, "tags": ["a", "b"]}
    assert manual.outputs == {"y": 10}
    assert manual.attributes["count"] == 3
    assert manual.attributes["ratio"] == 0.25
    assert [(e.name, e.attributes) for e in manual.events] == [
        ("checkpoint", {"step": 1, "note": "é ok"})
    ]
    assert spans["outer"].outputs == 11
    assert manual.start_time_ns <= manual.end_time_ns


def test_error_span_makes_an_error_trace(traced):
    @mlflow.trace
    def broken():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        broken()
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    assert trace.info.state.value == "ERROR"
    span = trace.data.spans[0]
    assert span.status.status_code.value == "ERROR"
    assert "boom" in span.status.description
    assert any(e.name == "exception" for e in span.events)


def test_search_traces_filters_order_and_pages(traced, client):
    ids = []
    for i in range(5):
        with mlflow.start_span(f"op-{i}") as span:
            span.set_inputs({"i": i})
            mlflow.update_current_trace(tags={"parity": "even" if i % 2 == 0 else "odd"})
        ids.append(span.trace_id)
        time.sleep(0.01)

    df = mlflow.search_traces(locations=[traced], filter_string="tags.parity = 'even'")
    assert sorted(df["trace_id"]) == sorted(ids[0::2])
    listed = mlflow.search_traces(
        locations=[traced], return_type="list", order_by=["timestamp_ms ASC"]
    )
    assert [t.info.trace_id for t in listed] == ids
    assert all(len(t.data.spans) == 1 for t in listed)

    assert [
        t.info.trace_id
        for t in mlflow.search_traces(
            locations=[traced], filter_string="name = 'op-3'", return_type="list"
        )
    ] == [ids[3]]
    assert (
        len(mlflow.search_traces(locations=[traced], filter_string="trace.status = 'OK'"))
        == 5
    )
    assert (
        len(mlflow.search_traces(locations=[traced], filter_string="span.name LIKE 'op-%'"))
        == 5
    )
    assert (
        len(mlflow.search_traces(locations=[traced], filter_string="tags.parity IS NULL")) == 0
    )
    assert len(mlflow.search_traces(locations=[traced], filter_string="trace.text ILIKE '%OP-4%'")) == 1

    page1 = client.search_traces(locations=[traced], max_results=2, order_by=["timestamp_ms DESC"])
    assert [t.info.trace_id for t in page1] == ids[::-1][:2]
    assert page1.token
    page2 = client.search_traces(
        locations=[traced], max_results=2, order_by=["timestamp_ms DESC"], page_token=page1.token
    )
    assert [t.info.trace_id for t in page2] == ids[::-1][2:4]

    with pytest.raises(mlflow.exceptions.MlflowException, match="INVALID_PARAMETER_VALUE|Invalid"):
        client.search_traces(locations=[traced], filter_string="bogus.key = 'x'")


def test_tags_and_deletes(traced, client):
    first = run_trace(1)
    second = run_trace(2)
    third = run_trace(3)
    client.set_trace_tag(first, "color", "red")
    assert mlflow.get_trace(first).info.tags["color"] == "red"
    client.delete_trace_tag(first, "color")
    assert "color" not in mlflow.get_trace(first).info.tags
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.delete_trace_tag(first, "color")

    assert client.delete_traces(experiment_id=traced, trace_ids=[second]) == 1
    assert mlflow.get_trace(second, silent=True) is None
    deleted = client.delete_traces(
        experiment_id=traced, max_timestamp_millis=int(time.time() * 1000), max_traces=1
    )
    assert deleted == 1
    remaining = [t.info.trace_id for t in mlflow.search_traces(locations=[traced], return_type="list")]
    assert remaining == [third]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.delete_traces(experiment_id=traced)


def test_trace_in_a_run_is_found_by_run_id(traced, client):
    with mlflow.start_run() as run:
        in_run = run_trace(7)
    outside = run_trace(8)
    found = mlflow.search_traces(locations=[traced], run_id=run.info.run_id, return_type="list")
    assert [t.info.trace_id for t in found] == [in_run]
    client.link_traces_to_run([outside], run_id=run.info.run_id)
    found = mlflow.search_traces(
        locations=[traced], filter_string=f"run_id = '{run.info.run_id}'", return_type="list"
    )
    assert sorted(t.info.trace_id for t in found) == sorted([in_run, outside])


def test_assessments(traced):
    trace_id = run_trace(4)
    human = AssessmentSource(source_type="HUMAN", source_id="alice")
    fb = mlflow.log_feedback(
        trace_id=trace_id, name="quality", value=0.75, rationale="fine", source=human,
        metadata={"round": "1"},
    )
    ex = mlflow.log_expectation(trace_id=trace_id, name="expected", value={"answer": 9})
    got = mlflow.get_assessment(trace_id, fb.assessment_id)
    assert got.value == 0.75 and got.rationale == "fine" and got.source.source_id == "alice"
    assert got.metadata == {"round": "1"}
    info = mlflow.get_trace(trace_id).info
    assert {a.name for a in info.assessments} == {"quality", "expected"}
    assert next(a for a in info.assessments if a.name == "expected").value == {"answer": 9}

    found = mlflow.search_traces(
        locations=[traced], filter_string="feedback.quality > 0.5", return_type="list"
    )
    assert [t.info.trace_id for t in found] == [trace_id]
    assert not mlflow.search_traces(
        locations=[traced], filter_string="feedback.quality < 0.5", return_type="list"
    )

    updated = mlflow.update_assessment(
        trace_id=trace_id,
        assessment_id=fb.assessment_id,
        assessment=mlflow.entities.Feedback(name="quality", value=0.25),
    )
    assert updated.value == 0.25 and updated.rationale == "fine"
    override = mlflow.override_feedback(
        trace_id=trace_id, assessment_id=fb.assessment_id, value=1.0, rationale="redo"
    )
    assert override.overrides == fb.assessment_id
    assert mlflow.get_assessment(trace_id, fb.assessment_id).valid is False
    mlflow.delete_assessment(trace_id=trace_id, assessment_id=override.assessment_id)
    assert mlflow.get_assessment(trace_id, fb.assessment_id).valid is True
    mlflow.delete_assessment(trace_id=trace_id, assessment_id=ex.assessment_id)
    assert {a.name for a in mlflow.get_trace(trace_id).info.assessments} == {"quality"}
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        mlflow.get_assessment(trace_id, "a-0000")


def test_async_export(tracking, experiment_id, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    mlflow.tracing.reset()
    mlflow.set_experiment(experiment_id=experiment_id)
    try:
        ids = [run_trace(i) for i in range(3)]
        mlflow.flush_trace_async_logging()
        traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
        assert sorted(t.info.trace_id for t in traces) == sorted(ids)
        assert all(len(t.data.spans) == 3 for t in traces)
    finally:
        mlflow.tracing.reset()


# --- the OTLP endpoint itself -------------------------------------------------------------


def otlp_json(trace_hex, span_hex, name="raw"):
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_hex,
                                "spanId": span_hex,
                                "name": name,
                                "startTimeUnixNano": str(now),
                                "endTimeUnixNano": str(now + 1_000_000),
                                "attributes": [
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
                                ],
                                "status": {"code": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate"])
def test_otlp_json_bodies(tracking, experiment_id, encoding):
    trace_hex = f"{int(time.time_ns()):032x}"
    body = json.dumps(otlp_json(trace_hex, "00000000000000a1")).encode()
    headers = {"Content-Type": "application/json", "x-mlflow-experiment-id": experiment_id}
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    elif encoding == "deflate":
        body = zlib.compress(body)
        headers["Content-Encoding"] = "deflate"
    r = requests.post(f"{tracking.url}/v1/traces", data=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    trace = mlflow.get_trace(f"tr-{trace_hex}")
    assert trace.info.experiment_id == experiment_id
    assert trace.info.token_usage == {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}
    assert trace.info.tags["service.name"] == "svc"
    assert trace.data.spans[0].name == "raw"


def test_otlp_refusals(tracking, experiment_id):
    url = f"{tracking.url}/v1/traces"
    body = json.dumps(otlp_json("0" * 31 + "1", "00000000000000b1")).encode()
    r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422
    hdr = {"x-mlflow-experiment-id": experiment_id}
    r = requests.post(url, data=body, headers={**hdr, "Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 400 and "Invalid Content-Type" in r.text
    r = requests.post(
        url, data=b"not protobuf at all", headers={**hdr, "Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert r.status_code == 400
    r = requests.post(url, data=b"", headers={**hdr, "Content-Type": "application/x-protobuf"}, timeout=30)
    assert r.status_code == 400 and "no spans found" in r.text
    r = requests.post(
        url, data=b"junk", headers={**hdr, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert r.status_code == 400
    missing_span_id = otlp_json("0" * 31 + "2", "")
    r = requests.post(
        url, data=json.dumps(missing_span_id), headers={**hdr, "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 422


def otlp_spans(spans):
    """One OTLP JSON body of `spans`: (trace hex, span hex, parent span hex or None, name)."""
    body = otlp_json("0" * 32, "0" * 16)
    scope = body["resourceSpans"][0]["scopeSpans"][0]
    template = scope["spans"][0]
    scope["spans"] = []
    for trace_hex, span_hex, parent, name in spans:
        span = {**template, "traceId": trace_hex, "spanId": span_hex, "name": name}
        if parent:
            span["parentSpanId"] = parent
        scope["spans"].append(span)
    return body


def test_concurrent_otlp_batches_land_or_fail_alone(tracking, experiment_id):
    """Exporters posting at once: the server may write their batches together, yet each
    batch lands whole, batches adding spans to one shared trace all land, and the batches
    for a missing experiment fail alone."""
    base = time.time_ns()
    shared, root = f"{base:032x}", "00000000000000c0"
    jobs = [(experiment_id, otlp_spans([(shared, root, None, "root")]))]
    jobs += [
        (experiment_id, otlp_spans([(shared, f"{0xC0 + i:016x}", root, f"child-{i}")]))
        for i in range(1, 8)
    ]
    own = [f"{base + 1 + i:032x}" for i in range(16)]
    for i, t in enumerate(own):
        parent = f"{0xD00 + 2 * i:016x}"
        jobs.append((experiment_id, otlp_spans([(t, parent, None, "root"), (t, f"{0xD01 + 2 * i:016x}", parent, "child")])))
    missing = [f"{base + 100 + i:032x}" for i in range(4)]
    jobs += [("987654321", otlp_spans([(t, f"{0xE0 + i:016x}", None, "lost")])) for i, t in enumerate(missing)]
    random.Random(7).shuffle(jobs)
    start = threading.Barrier(len(jobs))

    def post(job):
        experiment, body = job
        start.wait(timeout=60)
        return requests.post(
            f"{tracking.url}/v1/traces", json=body, headers={"x-mlflow-experiment-id": experiment}, timeout=60
        )

    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(post, jobs))
    for (experiment, _), r in zip(jobs, answers):
        if experiment == experiment_id:
            assert r.status_code == 200, r.text
        else:
            assert 400 <= r.status_code < 500, r.text
    trace = mlflow.get_trace(f"tr-{shared}")
    assert sorted(s.name for s in trace.data.spans) == sorted(["root"] + [f"child-{i}" for i in range(1, 8)])
    assert trace.info.state.value == "OK"
    for t in own:
        trace = mlflow.get_trace(f"tr-{t}")
        assert trace.info.experiment_id == experiment_id
        assert sorted(s.name for s in trace.data.spans) == ["child", "root"]
    for t in missing:
        assert mlflow.get_trace(f"tr-{t}") is None


def test_trace_artifact_download(traced):
    trace_id = run_trace(6)
    r = requests.get(
        f"{mlflow.get_tracking_uri()}/ajax-api/2.0/mlflow/get-trace-artifact",
        params={"request_id": trace_id},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == "attachment; filename=traces.json"
    data = mlflow.entities.TraceData.from_dict(json.loads(r.text))
    assert [s.name for s in data.spans] == [s.name for s in mlflow.get_trace(trace_id).data.spans]
    r = requests.get(f"{mlflow.get_tracking_uri()}/ajax-api/2.0/mlflow/get-trace-artifact", timeout=30)
    assert r.status_code == 400
