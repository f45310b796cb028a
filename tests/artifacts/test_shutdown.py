"""SIGTERM stops the server gracefully: requests in flight finish, and every write that
was acknowledged is still there after a restart."""

import signal
import threading
import time

import requests

from conftest import Server


def test_in_flight_upload_finishes_on_sigterm():
    server = Server()
    try:
        def slow_body():
            for _ in range(20):
                yield b"x" * 100_000
                time.sleep(0.05)

        result = {}
        url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/slow.bin"
        t = threading.Thread(target=lambda: result.update(r=requests.put(url, data=slow_body())))
        t.start()
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 200
        assert server.proc.wait(10) == 0
        assert (server.artifact_root / "0/r/artifacts/slow.bin").stat().st_size == 2_000_000
    finally:
        server.stop()


def test_acknowledged_metrics_survive_shutdown():
    server = Server()
    run = requests.post(
        f"{server.url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0", "start_time": 1}
    ).json()["run"]["info"]["run_id"]
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker):
        session = requests.Session()
        step = 0
        while not stop.is_set():
            try:
                r = session.post(
                    f"{server.url}/api/2.0/mlflow/runs/log-metric",
                    json={"run_id": run, "key": f"w{worker}", "value": step, "timestamp": 1, "step": step},
                    timeout=5,
                )
            except requests.RequestException:
                return
            if r.status_code == 200:
                with lock:
                    acked.append((worker, step))
            step += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 50
    db = server.dir / "mlflow.db"
    again = Server(["--backend-store-uri", f"sqlite:///{db}"])
    try:
        for worker in range(8):
            hist = requests.get(
                f"{again.url}/api/2.0/mlflow/metrics/get-history",
                params={"run_id": run, "metric_key": f"w{worker}"},
            ).json().get("metrics", [])
            steps = {m["step"] for m in hist}
            missing = [s for w, s in acked if w == worker and s not in steps]
            assert not missing, f"worker {worker} lost acknowledged steps {missing[:10]}"
    finally:
        again.stop()
        server.stop()
