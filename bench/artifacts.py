#!/usr/bin/env python3
"""Artifact throughput: our server against the Python `mlflow server` 3.17.2, both serving
artifacts from local disk, plus the disk's own copy speed for reference.

    bench/artifacts.py [--big-mb 1024] [--small 1000] [--small-kb 4] [--threads 8]
                       [--wrk-seconds 10] [--connections 16]

Small files are measured twice: through a Python client (8 threads of http.client, what a
Python user's uploads look like; on 2 cores the client itself becomes the limit), and with
wrk (16 connections, the server's own capacity: every PUT a new file, every GET one of the
uploaded files). Standard library plus wrk. Every transfer is checked (sizes and SHA-256;
after the wrk PUTs, every acknowledged file must be on disk). Loopback only.
"""

import argparse
import hashlib
import json
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind, workdir):
    port = free_port()
    db = f"sqlite:///{workdir}/{kind}.db"
    dest = str(workdir / f"{kind}-artifacts")
    if kind == "ours":
        cmd = [str(REPO / "target/release/mlflow"), "server"]
    else:
        cmd = [str(REPO / ".venv/bin/mlflow"), "server"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", db,
            "--artifacts-destination", dest]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / f"{kind}.log", "w"), start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{kind} server did not become healthy")


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def put_file(port, path, src):
    size = os.path.getsize(src)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.putrequest("PUT", f"{PREFIX}/{path}")
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(size))
    c.endheaders()
    with open(src, "rb") as f:
        while block := f.read(CHUNK):
            c.send(block)
    r = c.getresponse()
    r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"PUT {path}: {r.status}")


def get_file(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", f"{PREFIX}/{path}")
    r = c.getresponse()
    h = hashlib.sha256()
    n = 0
    while block := r.read(CHUNK):
        h.update(block)
        n += len(block)
    c.close()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: {r.status}")
    return n, h.hexdigest()


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def run_wrk(script, port, seconds, conns, env, out):
    env = {**os.environ, "BENCH_LUA_DIR": str(REPO / "bench/lua"), "BENCH_OUT": str(out), **env}
    subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "60s", "-s",
                    str(REPO / "bench/lua" / script), f"http://127.0.0.1:{port}"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    if r["non2xx"] or r["socket_errors"] or r["timeouts"]:
        raise RuntimeError(f"{script}: {r}")
    return r


def measure(kind, workdir, big, big_sha, smalls, threads, wrk_seconds, conns, small_size):
    proc, port = start(kind, workdir)
    try:
        t = time.perf_counter()
        put_file(port, "bench/big.bin", big)
        up = time.perf_counter() - t
        t = time.perf_counter()
        n, digest = get_file(port, "bench/big.bin")
        down = time.perf_counter() - t
        assert n == os.path.getsize(big) and digest == big_sha, f"{kind}: big file differs"
        with ThreadPoolExecutor(threads) as pool:
            t = time.perf_counter()
            list(pool.map(lambda p: put_file(port, f"bench/small/{p.name}", p), smalls))
            small_up = time.perf_counter() - t
            t = time.perf_counter()
            got = list(pool.map(lambda p: get_file(port, f"bench/small/{p.name}"), smalls))
            small_down = time.perf_counter() - t
        for p, (size, digest) in zip(smalls, got):
            assert size == p.stat().st_size and digest == sha(p), f"{kind}: {p.name} differs"
        res = {"big_up": up, "big_down": down, "small_up": small_up, "small_down": small_down}
        if wrk_seconds:
            put = run_wrk("put_small.lua", port, wrk_seconds, conns, {"BENCH_SIZE": str(small_size)},
                          workdir / f"{kind}-put.json")
            on_disk = sum(len(f) for _, _, f in os.walk(workdir / f"{kind}-artifacts/bench/wrk"))
            assert on_disk >= put["ok"], f"{kind}: {put['ok']} PUTs acknowledged, {on_disk} files"
            get = run_wrk("get_small.lua", port, wrk_seconds, conns, {"BENCH_FILES": str(len(smalls))},
                          workdir / f"{kind}-get.json")
            res["wrk_put"], res["wrk_get"] = put["ok_rps"], get["ok_rps"]
        return res
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--small-kb", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--wrk-seconds", type=int, default=10, help="0 skips the wrk phases")
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if not (REPO / "target/release/mlflow").exists():
        subprocess.run(["cargo", "build", "--release", "-p", "mlflow-server"], cwd=REPO, check=True)
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-artbench-"))
    try:
        big = workdir / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.big_mb):
                f.write(os.urandom(CHUNK))
        big_sha = sha(big)
        t = time.perf_counter()
        shutil.copyfile(big, workdir / "copy.bin")
        os.sync()
        disk = time.perf_counter() - t
        (workdir / "copy.bin").unlink()
        small_dir = workdir / "small"
        small_dir.mkdir()
        smalls = []
        for i in range(args.small):
            p = small_dir / f"f{i:05d}.txt"
            p.write_bytes(os.urandom(args.small_kb * 1024))
            smalls.append(p)
        if args.wrk_seconds and not shutil.which("wrk"):
            raise SystemExit("wrk is missing (apt-get install wrk), or pass --wrk-seconds 0")
        results = {k: measure(k, workdir, big, big_sha, smalls, args.threads, args.wrk_seconds,
                              args.connections, args.small_kb * 1024)
                   for k in ("ours", "python")}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mb = args.big_mb
    o, p = results["ours"], results["python"]
    rows = [
        (f"upload one {mb} MB file (MB/s)", mb / o["big_up"], mb / p["big_up"]),
        (f"download one {mb} MB file (MB/s)", mb / o["big_down"], mb / p["big_down"]),
        (f"upload {args.small} files of {args.small_kb} KB, {args.threads} threads (files/s)",
         args.small / o["small_up"], args.small / p["small_up"]),
        (f"download {args.small} files of {args.small_kb} KB, {args.threads} threads (files/s)",
         args.small / o["small_down"], args.small / p["small_down"]),
    ]
    if args.wrk_seconds:
        rows += [
            (f"wrk: upload new {args.small_kb} KB files, {args.connections} connections (files/s)",
             o["wrk_put"], p["wrk_put"]),
            (f"wrk: download {args.small_kb} KB files, {args.connections} connections (files/s)",
             o["wrk_get"], p["wrk_get"]),
        ]
    print(f"disk copy of the {mb} MB file (shutil.copyfile + sync): {mb / disk:.0f} MB/s")
    print("| workload | ours | python | ratio |")
    print("|---|---|---|---|")
    for name, ours, py in rows:
        print(f"| {name} | {ours:,.1f} | {py:,.1f} | {ours / py:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
