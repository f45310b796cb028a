#!/usr/bin/env python3
"""Tracing (issue 13): OTLP span ingest and `search_traces`, our server against the Python
`mlflow server` 3.17.2, both on SQLite, one after the other.

    .venv/bin/python bench/traces.py [--traces 100000] [--seconds 20] [--warmup 5] [--connections 16]
                    [--keep] [--markdown FILE]

- ingest: `POST /v1/traces` (OTLP protobuf, what the OpenTelemetry exporter sends), 100 spans
  per request: 10 traces of 10 spans (a root and nine children, MLflow span attributes, one
  trace in ten with an ERROR root). wrk makes new trace ids for every request
  (lua/otlp.lua). Each server starts on a fresh store; afterwards the store must hold every
  acknowledged trace with all its spans (read from the SQLite file), and the server's RSS is
  sampled through the phase (flat memory).
- search: `POST /api/3.0/mlflow/traces/search` as the 3.17.2 client sends it, 100 per page,
  over `--traces` traces in one experiment, unfiltered and with `trace.status = 'ERROR'`.
  The traces are ingested once through our server's `/v1/traces` and each server starts on
  a copy of that SQLite file (MLflow's schema: the Python server reads it as its own).
"""

import http.client
import json
import shutil
import sqlite3
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import (
    Client, fmt, free_port, log, parse_args, ratio, RssSampler, table, tracking_server, wrk,
    wrk_line,
)

TRACES_PER_REQUEST = 10
SPANS_PER_TRACE = 10
PLACEHOLDER = b"\x7fTRACEPLACEHO%03d"
T_START = 1_700_000_000_000_000_000  # ns; patched per request while seeding
T_END = T_START + 1_250_000_000


def otlp_template():
    """An ExportTraceServiceRequest of 100 spans whose trace ids are placeholders."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    def attr(k, v):
        return KeyValue(key=k, value=AnyValue(string_value=json.dumps(v)))

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="bench")))
    ss = rs.scope_spans.add()
    ss.scope.name = "mlflow.tracing"
    for t in range(TRACES_PER_REQUEST):
        trace_id = PLACEHOLDER % t
        assert len(trace_id) == 16
        for s in range(SPANS_PER_TRACE):
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = struct.pack(">Q", s + 1)
            if s:
                span.parent_span_id = struct.pack(">Q", 1)
            span.name = f"agent-{t}" if s == 0 else f"step-{s}"
            span.kind = 1
            span.start_time_unix_nano = T_START
            span.end_time_unix_nano = T_END
            span.attributes.extend([
                attr("mlflow.spanType", "CHAIN" if s == 0 else "LLM"),
                attr("mlflow.spanInputs", {"question": f"What is {t} + {s}?", "context": "x" * 80}),
                attr("mlflow.spanOutputs", {"answer": str(t + s), "tokens": 42}),
            ])
            error = s == 0 and t == 3
            span.status.code = Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK
    body = req.SerializeToString()
    assert body.count(b"\x7fTRACEPLACEHO") == TRACES_PER_REQUEST * SPANS_PER_TRACE
    return body


def seed_body(template, n):
    """Request `n` of the seed: its own trace ids and times (1 ms apart per request)."""
    body = template
    for t in range(TRACES_PER_REQUEST):
        body = body.replace(PLACEHOLDER % t, b"\xee\x01" + struct.pack(">QIH", n, t, 1))
    shift = n * 1_000_000
    body = body.replace(struct.pack("<Q", T_START), struct.pack("<Q", T_START + shift))
    return body.replace(struct.pack("<Q", T_END), struct.pack("<Q", T_END + shift))


def post_otlp(port, exp, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", "/v1/traces", body=body, headers={
        "Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": exp})
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"/v1/traces -> {r.status}")


def seed(work, template, traces):
    """`traces` traces ingested through our server; returns (db file, experiment id)."""
    port = free_port()
    db = work / "seed.db"
    srv = tracking_server("ours", port, work, db)
    try:
        exp = Client(srv.url).call("POST", "/experiments/create", {"name": "bench-traces"})["experiment_id"]
        requests = traces // TRACES_PER_REQUEST
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as ex:
            for i, _ in enumerate(ex.map(lambda n: post_otlp(port, exp, seed_body(template, n)),
                                         range(requests))):
                if (i + 1) % 2000 == 0:
                    log(f"  seed: {(i + 1) * TRACES_PER_REQUEST} traces "
                        f"({(i + 1) * TRACES_PER_REQUEST / (time.monotonic() - t0):.0f}/s)")
    finally:
        srv.stop()
    snap = work / "seed-snapshot.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("VACUUM INTO ?", (str(snap),))
    con.close()
    con = sqlite3.connect(snap)
    con.execute("PRAGMA journal_mode=DELETE")
    n, spans = count(con, exp)
    con.close()
    log(f"seeded {n} traces, {spans} spans ({snap.stat().st_size / 1e6:.0f} MB)")
    if n != requests * TRACES_PER_REQUEST or spans != n * SPANS_PER_TRACE:
        raise SystemExit(f"seed incomplete: {n} traces, {spans} spans")
    return snap, exp


def count(con, exp):
    n = con.execute("SELECT count(*) FROM trace_info WHERE experiment_id = ?", (int(exp),)).fetchone()[0]
    spans = con.execute("SELECT count(*) FROM spans s JOIN trace_info t ON t.request_id = s.trace_id "
                        "WHERE t.experiment_id = ?", (int(exp),)).fetchone()[0]
    return n, spans


def search_body(exp, filt):
    body = {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}],
            "max_results": 100}
    if filt:
        body["filter"] = filt
    return body


SEARCHES = [("search_traces", None), ("search_traces_error", "trace.status = 'ERROR'")]


def check_search(cl, exp, filt):
    """The first page: 100 traces of the experiment, newest first, matching the filter."""
    status, raw = cl.request("POST", "/api/3.0/mlflow/traces/search", search_body(exp, filt))
    if status != 200:
        raise SystemExit(f"search_traces -> {status}: {raw[:300]!r}")
    page = json.loads(raw)
    traces = page.get("traces", [])
    states = {t.get("state") for t in traces}
    problems = []
    if len(traces) != 100 or not page.get("next_page_token"):
        problems.append(f"{len(traces)} traces, token {bool(page.get('next_page_token'))}")
    if filt and states != {"ERROR"}:
        problems.append(f"states {states}")
    if not filt and states != {"OK", "ERROR"}:
        problems.append(f"states {states}")
    return problems, [t["trace_id"] for t in traces]


def main():
    a, work, sides = parse_args(__doc__, "traces", 20, 5, 16, [("--traces", {"type": int, "default": 100_000})])
    template = otlp_template()
    (work / "otlp.bin").write_bytes(template)
    res = {s: {} for s in sides}
    try:
        # ingest, each on a fresh store
        for side in sides:
            d = work / f"ingest-{side}"
            d.mkdir()
            db = d / "store.db"
            srv = tracking_server(side, free_port(), d, db)
            try:
                exp = Client(srv.url).call("POST", "/experiments/create", {"name": "ingest"})["experiment_id"]
                env = {"BENCH_BODY_FILE": work / "otlp.bin", "BENCH_EXPERIMENT_ID": exp}
                rss = RssSampler(srv)
                cpu0 = srv.cpu_s()
                r = wrk("otlp.lua", srv.url, a.seconds, a.connections, env, d / "ingest.json",
                        warmup=a.warmup, warm_env={"BENCH_PHASE": "2"})
                r["cpu_s"] = round(srv.cpu_s() - cpu0, 1)
                rss.stop()
                measured = [kb for t, kb in rss.samples]
                r["rss_first_mb"] = measured[0] / 1024 if measured else 0
                r["rss_peak_mb"] = rss.peak_kb / 1024
                r["rss_last_mb"] = measured[-1] / 1024 if measured else 0
            finally:
                srv.stop()
            con = sqlite3.connect(db)
            n, spans = count(con, exp)
            con.close()
            warm = json.loads((d / "ingest.warmup.json").read_text())
            acked = (r["ok"] + warm["ok"]) * TRACES_PER_REQUEST
            r["stored_traces"], r["stored_spans"], r["acked_traces"] = n, spans, acked
            ok = n >= acked and spans == n * SPANS_PER_TRACE
            r["check"] = "ok" if ok else f"stored {n} traces / {spans} spans for {acked} acknowledged"
            res[side]["ingest"] = r
            log(wrk_line(side, "ingest", r) + f"  spans/s {r['ok_rps'] * 100:,.0f}  "
                f"RSS {r['rss_first_mb']:.1f}->{r['rss_last_mb']:.1f} MB (peak {r['rss_peak_mb']:.1f})  "
                f"check: {r['check']}")

        snap, exp = seed(work, template, a.traces)
        first_pages = {}
        for side in sides:
            d = work / f"search-{side}"
            d.mkdir()
            db = d / "store.db"
            shutil.copy(snap, db)
            srv = tracking_server(side, free_port(), d, db)
            try:
                cl = Client(srv.url, timeout=300)
                for name, filt in SEARCHES:
                    problems, ids = check_search(cl, exp, filt)
                    first_pages[(side, name)] = ids
                    body = d / f"{name}.body.json"
                    body.write_text(json.dumps(search_body(exp, filt)))
                    env = {"BENCH_PATH": "/api/3.0/mlflow/traces/search", "BENCH_BODY_FILE": body,
                           "BENCH_EXPECT": '"next_page_token"'}
                    cpu0 = srv.cpu_s()
                    r = wrk("request.lua", srv.url, a.seconds, a.connections, env,
                            d / f"{name}.json", warmup=a.warmup)
                    r["cpu_s"] = round(srv.cpu_s() - cpu0, 1)
                    r["check"] = "; ".join(problems) or "ok"
                    res[side][name] = r
                    log(wrk_line(side, name, r) + f"  check: {r['check']}")
            finally:
                srv.stop()
        for name, _ in SEARCHES:
            if len(sides) == 2 and first_pages[("ours", name)] != first_pages[("python", name)]:
                same = len(set(first_pages[("ours", name)]) & set(first_pages[("python", name)]))
                log(f"{name}: first pages differ ({same}/100 traces in common)")
                for s in sides:
                    res[s][name]["check"] += f"; first page differs from the other server's ({same}/100 common)"
        report(res, sides, a)
        (work / "results.json").write_text(json.dumps(res, indent=1))
    finally:
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(res, sides, a):
    rows = []
    labels = {"ingest": "ingest `/v1/traces`, 100 spans per request (spans/s)",
              "search_traces": f"search_traces over {a.traces:,} traces, 100 per page (req/s)",
              "search_traces_error": f"search_traces `trace.status = 'ERROR'` over {a.traces:,} traces (req/s)"}
    targets = {"ingest": 30, "search_traces": 20, "search_traces_error": 20}
    for w, label in labels.items():
        scale = 100 if w == "ingest" else 1
        cells = [fmt(res[s][w]["ok_rps"] * scale) for s in sides]
        r = ratio(res["ours"][w], res["python"][w]) if len(sides) == 2 else ""
        rows.append([label, *cells, r, f"≥{targets[w]}x"])
    md = [table(["workload", *sides, "ratio", "target"], rows), ""]
    detail = []
    for s in sides:
        for w in labels:
            r = res[s][w]
            extra = (f"RSS {r['rss_first_mb']:.1f} → {r['rss_last_mb']:.1f} MB, peak {r['rss_peak_mb']:.1f}"
                     if w == "ingest" else "")
            detail.append([s, w, r["requests"], r["non2xx"], r["bad_body"],
                           f"{r['socket_errors']}/{r['timeouts']}", fmt(r["lat_p50_ms"]),
                           fmt(r["lat_p99_ms"]), r["cpu_s"], r["loadavg_1m"], extra, r["check"]])
    md.append(table(["server", "workload", "requests", "non-2xx", "bad body", "socket errors/timeouts",
                     "p50 ms", "p99 ms", "server CPU s", "load avg after", "memory", "check"], detail))
    text = "\n".join(md)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
