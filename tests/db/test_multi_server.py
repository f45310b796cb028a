"""Two of our server processes on one PostgreSQL / MariaDB database, concurrent writers through
both: every acknowledged write is there afterwards, latest metrics stay right under concurrent
log-metric on one key, and racing creations of one name give exactly one success."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from e2e_support import Database, ServerProcess, our_binary, unique_name

BACKENDS = ["postgresql", "mysql"]
API = "/api/2.0/mlflow"
WRITERS = 16
BATCHES = 10
PER_BATCH = 20
SHARED_STEPS = 30


def post(session, url, path, body):
    return session.post(url + API + path, json=body, timeout=120)


@pytest.fixture(params=BACKENDS)
def two_servers(request, workdir):
    db = Database(request.param, prefix="mlflow_multi")
    servers = []
    try:
        # Both start at once on the empty database: one creates the schema, the other waits.
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(ServerProcess, our_binary(), workdir / f"s{i}", backend_uri=db.uri) for i in range(2)
            ]
            servers = [f.result() for f in futures]
        yield servers
    finally:
        for s in servers:
            s.stop()
        db.drop()


def test_concurrent_writers_through_two_servers(two_servers):
    a, b = two_servers
    urls = [a.url, b.url]
    s = requests.Session()
    r = post(s, a.url, "/experiments/create", {"name": unique_name("multi")})
    assert r.status_code == 200, r.text
    eid = r.json()["experiment_id"]
    # One run every writer logs the same metric key to, through alternating servers.
    shared = post(s, b.url, "/runs/create", {"experiment_id": eid, "start_time": 1}).json()["run"]["info"]["run_id"]
    barrier = threading.Barrier(WRITERS, timeout=120)
    acked = {}  # writer -> (run_id, batches acknowledged, shared steps acknowledged)

    def writer(i):
        session = requests.Session()
        url = urls[i % 2]
        r = post(session, url, "/runs/create", {"experiment_id": eid, "start_time": 1000 + i})
        if r.status_code != 200:
            barrier.abort()  # the others fail at once instead of waiting for this writer
        assert r.status_code == 200, r.text
        run_id = r.json()["run"]["info"]["run_id"]
        barrier.wait()
        batches, steps = [], []
        for k in range(BATCHES):
            url = urls[(i + k) % 2]
            metrics = [
                {"key": f"m{j % 4}", "value": float(i * 10000 + k * 100 + j), "timestamp": 1000 + k, "step": k * PER_BATCH + j}
                for j in range(PER_BATCH)
            ]
            body = {"run_id": run_id, "metrics": metrics, "params": [{"key": f"p{k}", "value": str(i)}],
                    "tags": [{"key": "writer", "value": str(i)}]}
            r = post(session, url, "/runs/log-batch", body)
            assert r.status_code == 200, r.text
            batches.append(k)
            # The same param value and one tag key, written to one run from every writer.
            r = post(session, urls[(i + k + 1) % 2], "/runs/log-batch",
                     {"run_id": shared, "params": [{"key": "common", "value": "same"}],
                      "tags": [{"key": "last-writer", "value": str(i)}]})
            assert r.status_code == 200, r.text
            # Concurrent log-metric on one key of one run: step i*SHARED_STEPS + k is unique.
            for step in range(k * 3, k * 3 + 3):
                global_step = i * SHARED_STEPS + step
                r = post(session, urls[(i + step) % 2], "/runs/log-metric",
                         {"run_id": shared, "key": "shared", "value": float(global_step),
                          "timestamp": 5000 - global_step, "step": global_step})
                assert r.status_code == 200, r.text
                steps.append(global_step)
        acked[i] = (run_id, batches, steps)

    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(writer, i) for i in range(WRITERS)]
        errors = []
        for i, f in enumerate(futures):
            try:
                f.result(timeout=600)
            except Exception as e:
                errors.append(f"writer {i}: {type(e).__name__}: {e}")
    errors.sort(key=lambda e: "BrokenBarrierError" in e)  # the cause first
    assert not errors, "\n".join(errors[:10])
    assert len(acked) == WRITERS

    for i, (run_id, batches, _) in acked.items():
        for url in urls:  # both servers see every write
            run = requests.get(url + API + "/runs/get", params={"run_id": run_id}, timeout=60).json()["run"]
            params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
            assert params == {f"p{k}": str(i) for k in batches}
            latest = {m["key"]: m for m in run["data"]["metrics"]}
            for j in range(4):
                # The greatest step of key m{j} is in the last batch.
                k, jj = BATCHES - 1, max(x for x in range(PER_BATCH) if x % 4 == j)
                assert latest[f"m{j}"]["step"] == k * PER_BATCH + jj
                assert latest[f"m{j}"]["value"] == float(i * 10000 + k * 100 + jj)
        for j in range(4):
            hist = requests.get(a.url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": f"m{j}"},
                                timeout=60).json()["metrics"]
            assert len(hist) == BATCHES * PER_BATCH // 4

    all_steps = sorted(s for _, _, steps in acked.values() for s in steps)
    assert len(all_steps) == WRITERS * SHARED_STEPS
    hist = requests.get(b.url + API + "/metrics/get-history", params={"run_id": shared, "metric_key": "shared"},
                        timeout=60).json()["metrics"]
    assert sorted(m["step"] for m in hist) == all_steps
    for url in urls:
        run = requests.get(url + API + "/runs/get", params={"run_id": shared}, timeout=60).json()["run"]
        assert run["data"]["params"] == [{"key": "common", "value": "same"}]
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["last-writer"] in {str(i) for i in range(WRITERS)}
        (latest,) = run["data"]["metrics"]
        assert latest["step"] == all_steps[-1] and latest["value"] == float(all_steps[-1])
        assert latest["timestamp"] == 5000 - all_steps[-1]

    found = post(s, a.url, "/runs/search", {"experiment_ids": [eid], "max_results": 1000}).json()["runs"]
    assert {r["info"]["run_id"] for r in found} == {shared} | {run_id for run_id, _, _ in acked.values()}


def test_creation_races_have_one_winner(two_servers):
    a, b = two_servers
    racers = 12
    for round_ in range(3):
        name = unique_name(f"race{round_}")
        barrier = threading.Barrier(racers, timeout=60)

        def create(i):
            session = requests.Session()
            barrier.wait()
            return post(session, [a.url, b.url][i % 2], "/experiments/create", {"name": name})

        with ThreadPoolExecutor(racers) as pool:
            responses = list(pool.map(create, range(racers)))
        ok = [r for r in responses if r.status_code == 200]
        lost = [r for r in responses if r.status_code != 200]
        assert len(ok) == 1, [r.text for r in responses]
        assert all(r.json().get("error_code") == "RESOURCE_ALREADY_EXISTS" for r in lost), [r.text for r in lost]
        eid = ok[0].json()["experiment_id"]
        for url in (a.url, b.url):
            got = requests.get(url + API + "/experiments/get-by-name", params={"experiment_name": name}, timeout=60)
            assert got.json()["experiment"]["experiment_id"] == eid

