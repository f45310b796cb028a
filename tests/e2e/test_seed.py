"""The project seed (../shared/seed/mlflow-preset.md), run as written."""

import os
import shlex
import subprocess

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from e2e_support import PYTHON, unique_name

SEED_SNIPPET = """
import mlflow
mlflow.start_run()
mlflow.log_param('learning_rate', 0.01)
mlflow.log_metric('accuracy', 0.95)
mlflow.end_run()
"""


def _default_run_ids(client):
    runs = client.search_runs(["0"], run_view_type=ViewType.ALL, max_results=50000)
    return {r.info.run_id for r in runs}


def test_seed_python_snippet_verbatim(server):
    client = MlflowClient(tracking_uri=server.url)
    before = _default_run_ids(client)

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_EXPERIMENT")}
    env["MLFLOW_TRACKING_URI"] = server.url
    proc = subprocess.run(
        [str(PYTHON), "-c", SEED_SNIPPET], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"seed snippet failed:\n{proc.stdout}\n{proc.stderr}"

    new = _default_run_ids(client) - before
    assert len(new) == 1, f"expected exactly one new run in Default, got {new}"
    run = client.get_run(new.pop())
    assert run.info.experiment_id == "0"
    assert run.info.status == "FINISHED"
    assert run.info.end_time is not None and run.info.end_time >= run.info.start_time
    assert run.data.params == {"learning_rate": "0.01"}
    assert run.data.metrics == {"accuracy": 0.95}
    assert run.data.tags.get("mlflow.runName") == run.info.run_name
    assert run.info.run_name
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert [(m.value, m.step) for m in history] == [(0.95, 0)]


def _sh(cmd):
    return subprocess.run(cmd, shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60)


@pytest.mark.ours_only
def test_seed_curl_experiments_status_200(server):
    url = f"http://127.0.0.1:{server.port}/api/2.0/experiments"
    proc = _sh(f"curl -s -o /dev/null -w '%{{http_code}}' {shlex.quote(url)}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "200"


@pytest.mark.ours_only
def test_seed_curl_jq_names(server):
    client = MlflowClient(tracking_uri=server.url)
    live = unique_name("seed-live")
    gone = unique_name("seed-gone")
    client.create_experiment(live)
    client.delete_experiment(client.create_experiment(gone))

    url = f"http://127.0.0.1:{server.port}/api/2.0/experiments"
    proc = _sh(f"set -o pipefail; curl -s {shlex.quote(url)} | jq '.[].name'")
    assert proc.returncode == 0, f"curl | jq failed: {proc.stderr}"
    names = proc.stdout.splitlines()
    assert '"Default"' in names, proc.stdout
    assert f'"{live}"' in names
    assert f'"{gone}"' not in names, "deleted experiments must not be listed"

    # The objects carry the documented fields.
    proc = _sh(
        f"set -o pipefail; curl -s {shlex.quote(url)} | "
        "jq -r '.[] | select(.name==\"Default\") | [.experiment_id, .lifecycle_stage, .artifact_location] | @tsv'"
    )
    assert proc.returncode == 0, proc.stderr
    exp_id, stage, location = proc.stdout.strip().split("\t")
    assert (exp_id, stage) == ("0", "active")
    assert location
