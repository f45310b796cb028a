"""64 concurrent writers on one SQLite store: no error at all, and every acknowledged metric is
readable afterwards with exactly the logged values (issue 2, "A concurrency test")."""

import threading
import time

import requests
from mlflow import MlflowClient
from mlflow.entities import Metric

from e2e_support import unique_name

WRITERS = 64
SINGLE_METRICS = 12  # log-metric requests per writer (raw HTTP, one acknowledged point each)
BATCH_METRICS = 50  # plus one log-batch per writer through MlflowClient


def _writer(url, run_id, index, barrier, acked, errors):
    session = requests.Session()
    try:
        barrier.wait(timeout=120)
        for step in range(SINGLE_METRICS):
            value = index * 1000.0 + step + 0.25
            body = {
                "run_id": run_id,
                "key": "loss",
                "value": value,
                "timestamp": int(time.time() * 1000),
                "step": step,
            }
            r = session.post(f"{url}/api/2.0/mlflow/runs/log-metric", json=body, timeout=120)
            if r.status_code != 200:
                errors.append(f"writer {index} log-metric step {step}: {r.status_code} {r.text[:300]}")
                continue
            acked.append((run_id, "loss", step, value))

        client = MlflowClient(tracking_uri=url)
        ts = int(time.time() * 1000)
        batch = [Metric("acc", index + step / 100.0, ts, step) for step in range(BATCH_METRICS)]
        client.log_batch(run_id, metrics=batch)
        acked.extend((run_id, "acc", m.step, m.value) for m in batch)
        client.set_terminated(run_id)
    except Exception as e:  # any error, including client-side MlflowException, fails the test
        errors.append(f"writer {index}: {type(e).__name__}: {e}")
    finally:
        session.close()


def test_64_concurrent_writers_lose_nothing(tracking, monkeypatch):
    # A retried 5xx would hide an error: the client must report the first failure.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    url = tracking.url
    client = MlflowClient(tracking_uri=url)
    exp_id = client.create_experiment(unique_name("concurrency"))

    # Runs are created concurrently too: run creation is a write on the same store.
    run_ids = [None] * WRITERS
    create_errors = []

    def create(i):
        try:
            run_ids[i] = MlflowClient(tracking_uri=url).create_run(exp_id, run_name=f"w{i}").info.run_id
        except Exception as e:
            create_errors.append(f"create_run {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not create_errors, "\n".join(create_errors[:10])
    assert len(set(run_ids)) == WRITERS

    barrier = threading.Barrier(WRITERS)
    acked, errors = [], []
    threads = [
        threading.Thread(target=_writer, args=(url, run_ids[i], i, barrier, acked, errors))
        for i in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "writers did not finish in time"
    assert not errors, f"{len(errors)} errors, first: " + "\n".join(errors[:10])
    assert len(acked) == WRITERS * (SINGLE_METRICS + BATCH_METRICS)

    expected = {}
    for run_id, key, step, value in acked:
        expected.setdefault((run_id, key), []).append((step, value))

    for (run_id, key), points in expected.items():
        history = client.get_metric_history(run_id, key)
        got = sorted((m.step, m.value) for m in history)
        assert got == sorted(points), f"run {run_id} metric {key}: history differs from what was acknowledged"

    runs = client.search_runs([exp_id], max_results=1000)
    assert len(runs) == WRITERS
    for run in runs:
        i = int(run.info.run_name[1:])
        assert run.info.status == "FINISHED"
        assert run.data.metrics["loss"] == i * 1000.0 + (SINGLE_METRICS - 1) + 0.25
        assert run.data.metrics["acc"] == i + (BATCH_METRICS - 1) / 100.0
