#!/usr/bin/env python3
"""The web UI's requests on a 10,000-run experiment (issue 12): our server against the
Python `mlflow server` 3.17.2 on copies of one SQLite store.

    bench/ui.py [--runs 10000] [--seconds 10] [--warmup 3] [--connections 1]
                [--keep] [--markdown FILE]

The store is filled once through our server's HTTP API (`benchctl.py setup`: an experiment
of `--runs` runs with metrics, a param and a tag each, and a run with 1,000 metric keys),
plus a 300-step `loss` history for each of the 100 newest runs and a registered model with
20 versions made from runs of that first page. Then each server in turn answers the
requests the UI's experiment and run pages make, with the bundle's own GraphQL query texts
(read from the installed `mlflow` package's UI build): GraphQL `MlflowGetExperimentQuery`,
`SearchRuns` (the runs table's page of 100, with each run's experiment and model versions),
REST `runs/search` (newest first, and sorted by a metric), metric history bulk interval
(REST and GraphQL, the 100 runs of the page) and GraphQL `GetRun` of the 1,000-metric run.
Each is sent by wrk over one connection (`--connections`), so its latency is the server's
time per request; the target is under 100 ms. Before the load both servers' answers are
compared (the same runs, versions and metric points).
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from harness import (
    REPO, Client, fmt, free_port, log, parse_args, ratio, table, tracking_server, wrk, wrk_line,
)

HISTORY_STEPS = 300
VERSIONS = 20
TARGET_MS = 100


def bundle_query(name):
    """The GraphQL query text the installed UI bundle sends as operation `name`."""
    build = next((REPO / ".venv/lib").glob("python3*/site-packages/mlflow/server/js/build"))
    for js in (build / "static/js").glob("*.js"):
        text = js.read_text(errors="replace")
        start = text.find(f"query {name}(")
        if start >= 0:
            return text[start:text.index("`", start)].replace("\\n", "\n")
    raise SystemExit(f"query {name} not in the UI bundle {build}")


def seed(work, runs):
    port = free_port()
    db = work / "seed.db"
    srv = tracking_server("ours", port, work, db)
    try:
        subprocess.run([sys.executable, str(REPO / "bench/benchctl.py"), "setup", "--url", srv.url,
                        "--runs", str(runs), "--keys", "1000", "--workers", "4",
                        "--out", str(work / "setup.json")], check=True)
        setup = json.loads((work / "setup.json").read_text())
        cl = Client(srv.url)
        exp = setup["search_experiment_id"]
        page = cl.call("POST", "/runs/search", {"experiment_ids": [exp], "max_results": 100,
                                                "order_by": ["attributes.start_time DESC"]})
        first = [r["info"]["run_id"] for r in page["runs"]]
        ts = int(time.time() * 1000)
        for i, rid in enumerate(first):
            cl.call("POST", "/runs/log-batch", {"run_id": rid, "metrics": [
                {"key": "loss", "value": 1.0 / (s + 1 + i), "timestamp": ts + s, "step": s}
                for s in range(HISTORY_STEPS)]})
        cl.call("POST", "/registered-models/create", {"name": "bench-ui-model"})
        for rid in first[:VERSIONS]:
            cl.call("POST", "/model-versions/create", {"name": "bench-ui-model", "run_id": rid,
                                                       "source": f"runs:/{rid}/model"})
    finally:
        srv.stop()
    snap = work / "seed-snapshot.db"
    subprocess.run([sys.executable, str(REPO / "bench/benchctl.py"), "snapshot", "--src", str(db),
                    "--dst", str(snap)], check=True)
    return snap, setup, first


def requests_of(setup, first):
    """(name, method, path, body or None, expected substring)."""
    exp, run = setup["search_experiment_id"], setup["get_run_id"]
    search = {"experiment_ids": [exp], "filter": "", "run_view_type": "ACTIVE_ONLY",
              "max_results": 100, "order_by": ["attributes.start_time DESC"]}
    gql_search = bundle_query("SearchRuns")
    gql_search_no_versions = gql_search.replace(
        gql_search[gql_search.index("modelVersions {"):gql_search.index("}", gql_search.index("modelVersions {")) + 1], "")
    gsearch_vars = {"data": {"experimentIds": [exp], "filter": "", "runViewType": "ACTIVE_ONLY",
                             "maxResults": 100, "orderBy": ["attributes.start_time DESC"]}}
    bulk_q = urlencode([("run_ids", r) for r in first] + [("metric_key", "loss"), ("max_results", 320)])
    return [
        ("graphql MlflowGetExperimentQuery", "POST", "/graphql",
         {"query": bundle_query("MlflowGetExperimentQuery"), "operationName": "MlflowGetExperimentQuery",
          "variables": {"input": {"experimentId": exp}}}, '"lifecycleStage"'),
        ("graphql SearchRuns, 100 of 10,000 runs", "POST", "/graphql",
         {"query": gql_search, "operationName": "SearchRuns", "variables": gsearch_vars}, '"modelVersions"'),
        ("graphql SearchRuns without modelVersions", "POST", "/graphql",
         {"query": gql_search_no_versions, "operationName": "SearchRuns", "variables": gsearch_vars}, '"runUuid"'),
        ("ajax runs/search, newest 100", "POST", "/ajax-api/2.0/mlflow/runs/search", search, '"next_page_token"'),
        ("ajax runs/search, sorted by metrics.m", "POST", "/ajax-api/2.0/mlflow/runs/search",
         {**search, "order_by": ["metrics.`m` DESC"]}, '"next_page_token"'),
        ("ajax metrics/get-history-bulk-interval, 100 runs", "GET",
         f"/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?{bulk_q}", None, '"metrics"'),
        ("graphql GetMetricHistoryBulkInterval, 100 runs", "POST", "/graphql",
         {"query": bundle_query("GetMetricHistoryBulkInterval"), "operationName": "GetMetricHistoryBulkInterval",
          "variables": {"data": {"runIds": first, "metricKey": "loss", "maxResults": 320}}}, '"metrics"'),
        ("graphql GetRun, run with 1,000 metrics", "POST", "/graphql",
         {"query": bundle_query("GetRun"), "operationName": "GetRun", "variables": {"data": {"runId": run}}},
         f'"{setup["get_last_key"]}"'),
        ("model-versions/search of one run (the old per-run lookup)", "GET",
         "/ajax-api/2.0/mlflow/model-versions/search?" + urlencode({"filter": f"run_id='{first[0]}'"}),
         None, '"model_versions"'),
    ]


def digest(name, answer):
    """What both servers must agree on in an answer."""
    if answer.get("errors"):
        return {"errors": answer["errors"]}
    data = answer.get("data") or {}
    if "SearchRuns" in name:
        runs = data["mlflowSearchRuns"]["runs"]
        return [(r["info"]["runUuid"], r["experiment"]["name"],
                 sorted(v["version"] for v in r.get("modelVersions") or [])) for r in runs]
    if "runs/search" in name:
        return [r["info"]["run_id"] for r in answer["runs"]]
    if "bulk-interval" in name:
        return sorted((m["run_id"], int(m["step"])) for m in answer["metrics"])
    if "BulkInterval" in name:
        return sorted((m["runId"], int(m["step"])) for m in data["mlflowGetMetricHistoryBulkInterval"]["metrics"])
    if "GetRun" in name:
        return sorted(m["key"] for m in data["mlflowGetRun"]["run"]["data"]["metrics"])
    if "GetExperiment" in name:
        return data["mlflowGetExperiment"]["experiment"]["name"]
    return sorted(v["version"] for v in answer["model_versions"])


def main():
    a, work, sides = parse_args(__doc__, "ui", 10, 3, 1, [("--runs", {"type": int, "default": 10_000})])
    try:
        snap, setup, first = seed(work, a.runs)
        reqs = requests_of(setup, first)
        res, answers = {}, {}
        for side in sides:
            d = work / side
            d.mkdir()
            shutil.copy(snap, d / "store.db")
            srv = tracking_server(side, free_port(), d, d / "store.db")
            try:
                cl = Client(srv.url, timeout=300)
                for i, (name, method, path, body, expect) in enumerate(reqs):
                    status, raw = cl.request(method, path, body)
                    if status != 200:
                        raise SystemExit(f"{side} {name}: HTTP {status}: {raw[:300]!r}")
                    answers[(side, name)] = digest(name, json.loads(raw))
                    env = {"BENCH_METHOD": method, "BENCH_PATH": path, "BENCH_EXPECT": expect}
                    if body is not None:
                        env["BENCH_BODY_FILE"] = d / f"body{i}.json"
                        env["BENCH_BODY_FILE"].write_text(json.dumps(body))
                    cpu0 = srv.cpu_s()
                    r = wrk("request.lua", srv.url, a.seconds, a.connections, env, d / f"req{i}.json",
                            warmup=a.warmup, threads=1)
                    r["cpu_s"] = round(srv.cpu_s() - cpu0, 1)
                    res[(side, name)] = r
                    log(wrk_line(side, name[:28], r))
            finally:
                srv.stop()
        checks = {}
        for name, *_ in reqs:
            if len(sides) == 2:
                same = answers[("ours", name)] == answers[("python", name)]
                checks[name] = "same answer" if same else "ANSWERS DIFFER"
            else:
                checks[name] = "-"
        report(res, reqs, sides, checks, a)
        (work / "answers.json").write_text(json.dumps({" / ".join(k): v for k, v in answers.items()}))
    finally:
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(res, reqs, sides, checks, a):
    rows = []
    for name, *_ in reqs:
        rs = [res[(s, name)] for s in sides]
        row = [name]
        row += [f"{fmt(r['lat_p50_ms'])} / {fmt(r['lat_p99_ms'])}" for r in rs]
        if len(sides) == 2:
            row.append(ratio(rs[0], rs[1], key="lat_p50_ms", invert=True))
        ours = res.get(("ours", name))
        row.append(("✅" if ours["lat_p99_ms"] < TARGET_MS else "❌") if ours else "")
        row.append(checks[name])
        rows.append(row)
    head = ["UI request", *[f"{s} p50 / p99 ms" for s in sides]]
    if len(sides) == 2:
        head.append("ratio (p50)")
    text = table(head + [f"ours < {TARGET_MS} ms", "answers"], rows)
    detail = [[s, name, r["requests"], fmt(r["ok_rps"]), r["non2xx"], r["bad_body"],
               f"{r['socket_errors']}/{r['timeouts']}", fmt(r["lat_max_ms"]), r["cpu_s"], r["loadavg_1m"]]
              for (s, name), r in res.items()]
    text += "\n\n" + table(["server", "request", "requests", "req/s", "non-2xx", "bad body",
                            "socket errors/timeouts", "max ms", "server CPU s", "load avg after"], detail)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
