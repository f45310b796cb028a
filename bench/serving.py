#!/usr/bin/env python3
"""Model serving (issue 15): `/invocations` throughput and latency of our
`mlflow models serve` against the Python `mlflow models serve` 3.17.2, on the same models.

    bench/serving.py [--seconds 15] [--warmup 5] [--connections 16] [--markdown FILE] [--keep]

Two models, both on 8 float features, logged with the official client into our tracking
server (bench/serving_models.py): a scikit-learn pipeline (StandardScaler + Ridge; ours
scores it in its Python worker pool) and an ONNX MLP 8-64-64-1 (ours runs it natively,
the Python server through MLflow's onnx flavor, onnxruntime). Each is served by each server
in turn (`-m runs:/…`, `--env-manager local`, default workers: one on both), then wrk sends
`dataframe_split` requests of 1 row and of 100 rows over 16 connections. Before the load,
each server's predictions are compared with the model's own; a wrk answer counts only if it
is a 2xx holding "predictions".
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    PY_MLFLOW, PY_PYTHON, REPO, fmt, free_port, log, our_binary, parse_args, ratio, Server,
    table, tracking_server, wrk, wrk_line,
)

TARGETS = {"sklearn": 5, "onnx": 50}


def ping(port, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def serve(side, uri, tracking, work, name):
    port = free_port()
    binary = our_binary() if side == "ours" else PY_MLFLOW
    argv = [binary, "models", "serve", "-m", uri, "--port", port, "--host", "127.0.0.1",
            "--env-manager", "local"]
    env = {"MLFLOW_TRACKING_URI": tracking,
           # ours finds the venv's python (the one with mlflow and sklearn) on PATH
           "PATH": f"{PY_PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_MODEL_CACHE": str(work / "model-cache")}
    return Server(argv, work / f"{side}-{name}.log", port, env=env, cwd=work,
                  health=lambda proc: ping(port, proc))


def predictions(body):
    preds = json.loads(body)["predictions"]
    out = []
    for p in preds:
        if isinstance(p, dict):
            (p,) = p.values()
        if isinstance(p, list):
            (p,) = p
        out.append(float(p))
    return out


def check(srv, payload, expected):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    c.request("POST", "/invocations", body=json.dumps(payload),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    raw = r.read()
    if r.status != 200:
        return f"HTTP {r.status}: {raw[:200]!r}"
    got = predictions(raw)
    if len(got) != len(expected):
        return f"{len(got)} predictions for {len(expected)} rows"
    worst = max(abs(g - e) / max(1.0, abs(e)) for g, e in zip(got, expected))
    return "ok" if worst < 1e-4 else f"differs from the model's own predictions by {worst:.2g}"


def main():
    a, work, sides = parse_args(__doc__, "serving", 15, 5, 16, [("--models", {"default": "sklearn,onnx"})])
    models = a.models.split(",")
    tracking = tracking_server("ours", free_port(), work, work / "tracking.db")
    res = {}
    try:
        subprocess.run([str(PY_PYTHON), str(REPO / "bench/serving_models.py"), tracking.url,
                        str(work / "models.json")], check=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
        spec = json.loads((work / "models.json").read_text())
        for name, payload in spec["payloads"].items():
            (work / f"{name.replace(' ', '_')}.json").write_text(json.dumps(payload))
        for model in models:
            m = spec["models"][model]
            for side in sides:
                log(f"{side}: serving the {model} model {m['uri']}")
                srv = serve(side, m["uri"], tracking.url, work, model)
                try:
                    log(f"{side}: ready after {srv.start_s:.1f} s")
                    for pname, payload in spec["payloads"].items():
                        verdict = check(srv, payload, m["expected"][pname])
                        env = {"BENCH_PATH": "/invocations", "BENCH_EXPECT": '"predictions"',
                               "BENCH_BODY_FILE": work / f"{pname.replace(' ', '_')}.json"}
                        cpu0 = srv.cpu_s()
                        r = wrk("request.lua", srv.url, a.seconds, a.connections, env,
                                work / f"{side}-{model}-{pname.replace(' ', '_')}.json", warmup=a.warmup)
                        r["cpu_s"] = round(srv.cpu_s() - cpu0, 1)
                        r["rss_mb"] = round(srv.rss_kb() / 1024, 1)
                        r["check"] = verdict
                        r["start_s"] = round(srv.start_s, 1)
                        res[(model, pname, side)] = r
                        log(wrk_line(side, f"{model} {pname}", r) + f"  check: {verdict}")
                finally:
                    srv.stop()
    finally:
        tracking.stop()
        if res:
            report(res, models, list(spec["payloads"]), sides, a)
            (work / "results.json").write_text(json.dumps({" / ".join(k): v for k, v in res.items()}, indent=1))
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(res, models, payloads, sides, a):
    rows, detail = [], []
    for model in models:
        for p in payloads:
            rs = [res.get((model, p, s)) for s in sides]
            if not all(rs):
                continue
            row = [f"{model}, {p} per request"]
            row += [f"{fmt(r['ok_rps'])} req/s, p99 {fmt(r['lat_p99_ms'])} ms" for r in rs]
            if len(sides) == 2:
                row += [ratio(rs[0], rs[1]), ratio(rs[0], rs[1], key="lat_p99_ms", invert=True)]
            row.append(f"≥{TARGETS[model]}x")
            rows.append(row)
            for s, r in zip(sides, rs):
                detail.append([s, model, p, r["requests"], r["non2xx"], r["bad_body"],
                               f"{r['socket_errors']}/{r['timeouts']}", fmt(r["lat_p50_ms"]),
                               fmt(r["lat_p99_ms"]), r["cpu_s"], r["rss_mb"], r["start_s"],
                               r["loadavg_1m"], r["check"]])
    head = ["workload (16 connections)", *sides]
    if len(sides) == 2:
        head += ["throughput ratio", "p99 ratio (python / ours)"]
    text = table(head + ["target"], rows) + "\n\n" + table(
        ["server", "model", "payload", "requests", "non-2xx", "bad body", "socket errors/timeouts",
         "p50 ms", "p99 ms", "server CPU s", "RSS MB after", "ready after s", "load avg after",
         "predictions"], detail)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
