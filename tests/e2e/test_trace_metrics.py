"""Trace metrics (`traces/metrics`) and filter correlation (`traces/calculate-filter-correlation`)
through the official client: trace counts by status and name, latency averages, extremes and
percentiles, hourly time buckets, span counts by type, assessment values by name, the
`view.entity = 'value'` filters, the NPMI of two trace filters with and without a base
filter, and MLflow's refusals over HTTP. Expected values are computed here from the traces
the client reads back. Where the Python server answers 500 (a percentile without or out of
its range) or reads an unknown view type as TRACES, this server answers 400."""

import math
from datetime import datetime, timezone

import mlflow
import pytest
import requests
from mlflow.entities import SpanType
from mlflow.entities.trace_metrics import (
    AggregationType,
    MetricAggregation,
    MetricViewType,
)
from mlflow.entities.trace_status import TraceStatus
from mlflow.tracing.client import TracingClient


def _agg(kind, p=None):
    return MetricAggregation(aggregation_type=kind, percentile_value=p)


def _make_traces(client, experiment_id):
    """Three named traces (two OK, one ERROR), each with an LLM and two TOOL spans."""
    ids = []
    for name, status in [("plan", TraceStatus.OK), ("plan", TraceStatus.ERROR), ("act", TraceStatus.OK)]:
        root = client.start_trace(name=name, experiment_id=experiment_id, tags={"team": name})
        for span_type in (SpanType.LLM, SpanType.TOOL, SpanType.TOOL):
            child = client.start_span(
                name=f"{name}-{span_type}",
                trace_id=root.trace_id,
                parent_id=root.span_id,
                span_type=span_type,
            )
            client.end_span(trace_id=root.trace_id, span_id=child.span_id)
        client.end_trace(trace_id=root.trace_id, status=status)
        ids.append(root.trace_id)
    return ids


def _percentile(values, p):
    values = sorted(values)
    rank = p / 100 * (len(values) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def test_trace_counts_latency_buckets_spans(traced, client):
    store = client._tracing_client.store
    ids = _make_traces(client, traced)
    infos = [client.get_trace(i).info for i in ids]
    query = lambda **kw: store.query_trace_metrics(experiment_ids=[traced], **kw)  # noqa: E731

    by_status = query(
        view_type=MetricViewType.TRACES,
        metric_name="trace_count",
        aggregations=[_agg(AggregationType.COUNT)],
        dimensions=["trace_status"],
    )
    assert [(p.dimensions, p.values) for p in by_status] == [
        ({"trace_status": "ERROR"}, {"COUNT": 1.0}),
        ({"trace_status": "OK"}, {"COUNT": 2.0}),
    ]
    assert all(p.metric_name == "trace_count" for p in by_status)

    total = query(
        view_type=MetricViewType.TRACES,
        metric_name="trace_count",
        aggregations=[_agg(AggregationType.COUNT)],
        filters=["trace.status = 'OK'", "trace.tag.team = 'plan'"],
    )
    assert [(p.dimensions, p.values) for p in total] == [({}, {"COUNT": 1.0})]

    durations = {}
    for info in infos:
        durations.setdefault(info.tags["mlflow.traceName"], []).append(info.execution_duration)
    latency = query(
        view_type=MetricViewType.TRACES,
        metric_name="latency",
        aggregations=[
            _agg(AggregationType.AVG),
            _agg(AggregationType.MIN),
            _agg(AggregationType.MAX),
            _agg(AggregationType.PERCENTILE, 50.0),
        ],
        dimensions=["trace_name"],
    )
    assert [p.dimensions["trace_name"] for p in latency] == ["act", "plan"]
    for p in latency:
        d = durations[p.dimensions["trace_name"]]
        assert p.values["AVG"] == pytest.approx(sum(d) / len(d))
        assert p.values["MIN"] == min(d) and p.values["MAX"] == max(d)
        assert p.values["P50.0"] == pytest.approx(_percentile(d, 50))

    start = min(i.request_time for i in infos)
    end = max(i.request_time for i in infos)
    buckets = query(
        view_type=MetricViewType.TRACES,
        metric_name="trace_count",
        aggregations=[_agg(AggregationType.COUNT)],
        time_interval_seconds=3600,
        start_time_ms=start,
        end_time_ms=end,
    )
    expected = {}
    for info in infos:
        bucket = info.request_time // 3_600_000 * 3_600_000
        label = datetime.fromtimestamp(bucket / 1000, tz=timezone.utc).isoformat()
        expected[label] = expected.get(label, 0) + 1
    assert {p.dimensions["time_bucket"]: p.values["COUNT"] for p in buckets} == expected
    outside = query(
        view_type=MetricViewType.TRACES,
        metric_name="trace_count",
        aggregations=[_agg(AggregationType.COUNT)],
        start_time_ms=end + 1,
    )
    assert [p.values for p in outside] == [{"COUNT": 0.0}]

    spans = query(
        view_type=MetricViewType.SPANS,
        metric_name="span_count",
        aggregations=[_agg(AggregationType.COUNT)],
        dimensions=["span_type"],
    )
    assert [(p.dimensions["span_type"], p.values["COUNT"]) for p in spans] == [
        ("LLM", 3.0),
        ("TOOL", 6.0),
        ("UNKNOWN", 3.0),
    ]
    tools_of_plan = query(
        view_type=MetricViewType.SPANS,
        metric_name="span_count",
        aggregations=[_agg(AggregationType.COUNT)],
        filters=["span.type = 'TOOL'", "trace.tag.mlflow.traceName = 'plan'"],
    )
    assert [p.values for p in tools_of_plan] == [{"COUNT": 4.0}]


def test_assessment_values(traced, client):
    store = client._tracing_client.store
    ids = _make_traces(client, traced)
    for trace_id, score in zip(ids, [0.5, 1.0, 0.0]):
        mlflow.log_feedback(trace_id=trace_id, name="quality", value=score)
    mlflow.log_feedback(trace_id=ids[0], name="safe", value=True)
    values = store.query_trace_metrics(
        experiment_ids=[traced],
        view_type=MetricViewType.ASSESSMENTS,
        metric_name="assessment_value",
        aggregations=[_agg(AggregationType.AVG), _agg(AggregationType.MAX)],
        dimensions=["assessment_name"],
    )
    assert [(p.dimensions, p.values) for p in values] == [
        ({"assessment_name": "quality"}, {"AVG": 0.5, "MAX": 1.0}),
        ({"assessment_name": "safe"}, {"AVG": 1.0, "MAX": 1.0}),
    ]
    counted = store.query_trace_metrics(
        experiment_ids=[traced],
        view_type=MetricViewType.ASSESSMENTS,
        metric_name="assessment_count",
        aggregations=[_agg(AggregationType.COUNT)],
        filters=["assessment.name = 'quality'", "trace.status = 'OK'"],
    )
    assert [p.values for p in counted] == [{"COUNT": 2.0}]


def test_filter_correlation(traced, client):
    for i in range(6):
        client.end_trace(
            trace_id=client.start_trace(
                name="p", experiment_id=traced, tags={"env": "prod", "kind": "TOOL"}
            ).trace_id
        )
    for i in range(4):
        kind = "LLM" if i >= 1 else "TOOL"
        client.end_trace(
            trace_id=client.start_trace(
                name="d", experiment_id=traced, tags={"env": "dev", "kind": kind}
            ).trace_id
        )
    tracing = TracingClient(tracking_uri=client.tracking_uri)
    r = tracing.calculate_trace_filter_correlation(
        experiment_ids=[traced],
        filter_string1="tags.env = 'prod'",
        filter_string2="tags.kind = 'TOOL'",
    )
    assert (r.total_count, r.filter1_count, r.filter2_count, r.joint_count) == (10, 6, 7, 6)
    # NPMI from the counts: pmi = log(p(x,y) / (p(x) p(y))), normalised by -log p(x,y).
    pxy, px, py = 6 / 10, 6 / 10, 7 / 10
    assert r.npmi == pytest.approx(math.log(pxy / (px * py)) / -math.log(pxy))
    assert -1 <= r.npmi_smoothed <= 1

    base = tracing.calculate_trace_filter_correlation(
        experiment_ids=[traced],
        filter_string1="tags.kind = 'LLM'",
        filter_string2="tags.kind = 'TOOL'",
        base_filter="tags.env = 'dev'",
    )
    assert (base.total_count, base.filter1_count, base.filter2_count, base.joint_count) == (
        4,
        3,
        1,
        0,
    )
    assert base.npmi == -1.0

    none = tracing.calculate_trace_filter_correlation(
        experiment_ids=[traced],
        filter_string1="tags.env = 'staging'",
        filter_string2="tags.kind = 'TOOL'",
    )
    # Undefined: left out of the answer, which the client reads as NaN and None.
    assert none.filter1_count == 0 and math.isnan(none.npmi) and none.npmi_smoothed is None


def _metrics(server, body):
    return requests.post(f"{server.url}/api/3.0/mlflow/traces/metrics", json=body)


@pytest.mark.parametrize(
    "change",
    [
        {"metric_name": "tokens_per_second"},
        {"view_type": "RUNS"},
        {"aggregations": [{"aggregation_type": "SUM"}]},
        {"aggregations": [{"aggregation_type": "PERCENTILE"}]},
        {"aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": 101}]},
        {"aggregations": []},
        {"dimensions": ["span_type"]},
        {"filters": ["trace.status != 'OK'"]},
        {"filters": ["span.type = 'LLM'"]},
        {"filters": ["trace.colour = 'red'"]},
        {"filters": ["trace.status = OK"]},
        {"time_interval_seconds": 60},
        {"max_results": -1},
    ],
)
def test_metrics_refusals(tracking, experiment_id, change):
    body = {
        "experiment_ids": [experiment_id],
        "view_type": "TRACES",
        "metric_name": "trace_count",
        "aggregations": [{"aggregation_type": "COUNT"}],
        **change,
    }
    r = _metrics(tracking, body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_empty_answers(tracking, experiment_id):
    body = {
        "experiment_ids": [experiment_id],
        "view_type": "TRACES",
        "metric_name": "trace_count",
        "aggregations": [{"aggregation_type": "COUNT"}],
    }
    r = _metrics(tracking, body)
    assert r.json()["data_points"] == [{"metric_name": "trace_count", "values": {"COUNT": 0.0}}]
    r = _metrics(tracking, {**body, "experiment_ids": []})
    assert r.json()["data_points"][0]["values"] == {"COUNT": 0.0}
    r = _metrics(tracking, {**body, "max_results": 0})
    assert r.status_code == 200 and not r.json().get("data_points")
    r = _metrics(tracking, {**body, "dimensions": ["trace_status"]})
    assert not r.json().get("data_points")


def test_correlation_refusals(tracking, experiment_id):
    url = f"{tracking.url}/api/3.0/mlflow/traces/calculate-filter-correlation"
    for body in (
        {"experiment_ids": [experiment_id], "filter_string1": "invalid.filter = 'x'",
         "filter_string2": "tags.a = 'b'"},
        {"experiment_ids": [experiment_id], "filter_string1": "tags.a = 'b'"},
        {"filter_string1": "tags.a = 'b'", "filter_string2": "tags.a = 'b'"},
    ):
        r = requests.post(url, json=body)
        assert r.status_code == 400, body
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
