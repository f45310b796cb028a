"""Shared pieces of the one-file benchmarks (`serving.py`, `ui.py`, `traces.py`): start a
server in its own session and stop its whole process group, run a wrk phase (warm-up, then
measured) with a script from `bench/lua/`, sample a process tree's RSS and CPU, print a
Markdown table. Standard library plus wrk; uses `benchctl.py`'s HTTP client and /proc readers.

Our binary is `$CARGO_TARGET_DIR/release/mlflow` (else `target/release/mlflow`), or
`MLFLOW_BENCH_BIN`; the Python server is `.venv/bin/mlflow` (mlflow 3.17.2).
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchctl  # noqa: E402
from benchctl import Client, free_port, kill_group, status_kb, tree, wait_healthy  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
LUA = REPO / "bench/lua"
PY_MLFLOW = REPO / ".venv/bin/mlflow"
PY_PYTHON = REPO / ".venv/bin/python"
# This machine has no internet; keep both servers' usage telemetry quiet alike.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def our_binary():
    if os.environ.get("MLFLOW_BENCH_BIN"):
        return Path(os.environ["MLFLOW_BENCH_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "release/mlflow"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


class Server:
    """A process started in its own session (its group is stopped as one), healthy before
    the constructor returns: `health(proc)` true, or by default `GET /health` answered OK."""

    def __init__(self, argv, logfile, port, env=None, cwd=None, timeout=300, health=None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.logfile = Path(logfile)
        full_env = {**os.environ, **QUIET, **(env or {})}
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdout=open(self.logfile, "wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=full_env, cwd=cwd)
        ok = health(self.proc) if health else wait_healthy(port, timeout, self.proc, poll=0.05)
        self.start_s = time.monotonic() - t0
        if not ok:
            self.stop()
            tail = self.logfile.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{argv[0]} did not become healthy:\n{tail}")

    def pids(self):
        return tree(self.proc.pid)

    def cpu_s(self):
        return benchctl.cpu_seconds(self.pids())

    def rss_kb(self):
        return sum((status_kb(p) or {}).get("VmRSS", 0) for p in self.pids())

    def stop(self):
        kill_group(self.proc)


def tracking_server(side, port, store_dir, db_file):
    """`mlflow server` of `side` ("ours" or "python") on the SQLite file `db_file`."""
    binary = our_binary() if side == "ours" else PY_MLFLOW
    store_dir = Path(store_dir)
    argv = [binary, "server", "--host", "127.0.0.1", "--port", port,
            "--backend-store-uri", f"sqlite:///{db_file}",
            "--artifacts-destination", store_dir / f"{side}-artifacts"]
    return Server(argv, store_dir / f"{side}-server.log", port)


class RssSampler:
    """Peak and last RSS (sum over the process tree) every `interval` seconds."""

    def __init__(self, server, interval=0.2):
        self.server, self.interval = server, interval
        self.peak_kb = 0
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            kb = self.server.rss_kb()
            self.peak_kb = max(self.peak_kb, kb)
            self.samples.append((time.monotonic(), kb))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak_kb


def wrk(script, url, seconds, conns, env, out, warmup=0, threads=None, warm_env=None):
    """One wrk phase with `bench/lua/<script>` (after `warmup` unmeasured seconds); returns the
    JSON the script's done() wrote (see lua/common.lua), with the load average after it."""
    threads = threads or min(2, conns)
    base = {**os.environ, "BENCH_LUA_DIR": str(LUA), **{k: str(v) for k, v in env.items()}}

    def run(secs, path, extra):
        cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", "60s",
               "--latency", "-s", str(LUA / script), url]
        subprocess.run(cmd, env={**base, **extra, "BENCH_OUT": str(path)}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    out = Path(out)
    if warmup:
        run(warmup, out.with_suffix(".warmup.json"),
            {k: str(v) for k, v in (warm_env or {}).items()})
    run(seconds, out, {})
    r = json.loads(out.read_text())
    r["loadavg_1m"] = loadavg()
    out.write_text(json.dumps(r))
    return r


def wrk_line(side, name, r):
    return (f"{side:6} {name:28} {r['ok_rps']:9.1f} ok req/s  non-2xx {r['non2xx']}  "
            f"bad body {r['bad_body']}  errors {r['socket_errors']}/{r['timeouts']}  "
            f"p50 {r['lat_p50_ms']:.1f} ms  p99 {r['lat_p99_ms']:.1f} ms  load {r['loadavg_1m']}")


def clean(r):
    """No failed or wrong answers in a wrk phase."""
    return r["ok"] > 0 and r["non2xx"] == 0 and r["bad_body"] == 0 and r["timeouts"] == 0 \
        and r["socket_errors"] == 0


def ratio(ours, python, key="ok_rps", invert=False):
    if not (clean(ours) and clean(python)) or not ours[key] or not python[key]:
        return "n/a (errors)"
    x = python[key] / ours[key] if invert else ours[key] / python[key]
    return f"{x:,.1f}x"


def fmt(x, digits=1):
    return f"{x:,.{digits}f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_body(path, obj):
    Path(path).write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def ensure_wrk():
    """wrk from Debian's package (4.1.0-3 in Debian 12), as bench/run installs it."""
    import shutil

    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk (Debian package)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found; install it (apt-get install wrk)")


def parse_args(doc, name, seconds, warmup, connections, extra=()):
    """The options every one-file benchmark takes, plus `extra` (flag, kwargs) pairs; returns
    (args, work dir, sides)."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, kwargs in extra:
        ap.add_argument(flag, **kwargs)
    ap.add_argument("--seconds", type=int, default=seconds, help="measured seconds per phase")
    ap.add_argument("--warmup", type=int, default=warmup, help="unmeasured seconds before each phase")
    ap.add_argument("--connections", type=int, default=connections)
    ap.add_argument("--only", choices=["ours", "python"])
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--markdown", help="also write the tables to this file")
    a = ap.parse_args()
    ensure_wrk()
    if not our_binary().exists():  # also seeds the data, whichever side is measured
        raise SystemExit(f"{our_binary()} missing: cargo build --release -p mlflow-server "
                         "--bin mlflow --features mlflow-server/onnx")
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    log(f"work dir {work}")
    return a, work, [a.only] if a.only else ["ours", "python"]
