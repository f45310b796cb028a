"""`mlflow run` (our binary) against our tracking server, checked with the official client: the
seed's loop over examples/mlflow-project as written, MLproject parameters (defaults, types,
shell quoting, extras), MLflow's project tags, FINISHED/FAILED from the exit status, scripts
in a directory without MLproject, Git URIs, experiments by name or id, and interruption."""

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import BINARY, serve_env
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mlflow-project"

SEED_LOOP = """\
set -euo pipefail
for model in linear_regression random_forest gradient_boosting; do
  mlflow run . -P model_type=$model --run-name "experiment-$model"
done
curl -s {url}/api/2.0/experiments | jq '.[].name'
"""


def mlflow_run(tracking, *args, cwd, timeout=300, **env):
    return subprocess.run(
        [str(BINARY), "run", *map(str, args)],
        env=serve_env(tracking.url, **env), cwd=cwd, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def client(tracking):
    return MlflowClient(tracking_uri=tracking.url)


def only_run(tracking, experiment_id, name=None):
    runs = client(tracking).search_runs([experiment_id], order_by=["attributes.start_time DESC"])
    if name is not None:
        runs = [r for r in runs if r.info.run_name == name]
    assert runs, f"no run {name!r} in experiment {experiment_id}"
    return runs[0]


def project(tmp_path, mlproject, files):
    d = tmp_path / "proj"
    d.mkdir()
    if mlproject is not None:
        (d / "MLproject").write_text(textwrap.dedent(mlproject))
    for name, text in files.items():
        (d / name).write_text(textwrap.dedent(text))
    return d


# Logs what it was called with.
ECHO = """\
import json, os, sys
import mlflow
mlflow.set_tag("argv", json.dumps(sys.argv[1:]))
mlflow.set_tag("env_experiment", os.environ["MLFLOW_EXPERIMENT_ID"])
mlflow.log_metric("m", 1.5)
"""


def test_the_seeds_loop_over_the_example_project(tracking):
    """The seed's lines verbatim, in examples/mlflow-project, with the default env manager
    (the project's virtualenv, built once from its python_env.yaml)."""
    script = SEED_LOOP.format(url=tracking.url)
    proc = subprocess.run(
        ["bash", "-c", script], env=serve_env(tracking.url), cwd=EXAMPLE,
        capture_output=True, text=True, timeout=1500, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"Default"' in proc.stdout.splitlines()
    for model in ["linear_regression", "random_forest", "gradient_boosting"]:
        run = only_run(tracking, "0", f"experiment-{model}")
        assert run.info.status == "FINISHED"
        assert run.data.params == {"model_type": model, "n_samples": "200", "test_size": "0.25"}
        assert set(run.data.metrics) == {"rmse", "r2"}
        assert run.data.metrics["r2"] > 0.5, run.data.metrics
        tags = run.data.tags
        assert tags["mlflow.source.type"] == "PROJECT"
        assert tags["mlflow.project.entryPoint"] == "main"
        assert tags["mlflow.project.backend"] == "local"
        assert tags["mlflow.project.env"] == "virtualenv"
        assert tags["mlflow.runName"] == f"experiment-{model}"
        assert tags["mlflow.user"]
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=False)
        if head.returncode == 0:
            top = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--show-toplevel"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            assert tags["mlflow.source.name"] == f"file://{top}#examples/mlflow-project"
            assert tags["mlflow.source.git.commit"] == head.stdout.strip()
        else:
            assert tags["mlflow.source.name"] == str(EXAMPLE)
        # The model the code logged is in the run.
        assert client(tracking).list_artifacts(run.info.run_id) or client(tracking).search_logged_models(
            experiment_ids=["0"], filter_string=f"source_run_id = '{run.info.run_id}'"
        )


def test_parameters_defaults_quoting_and_extras(tracking, tmp_path):
    d = project(tmp_path, """\
        name: echo
        entry_points:
          main:
            parameters:
              alpha: {type: float, default: 0.5}
              label: string
              count: {type: int, default: 3}
            command: "python echo.py {alpha} {label} --count {count}"
        """, {"echo.py": ECHO})
    exp = client(tracking).create_experiment("params-quoting")
    proc = mlflow_run(tracking, d, "-P", "label=it's a test", "-P", "extra=x y", "-P",
                      "flag=1", "--experiment-id", exp, "--env-manager", "local", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = only_run(tracking, exp)
    assert run.info.status == "FINISHED"
    assert json.loads(run.data.tags["argv"]) == [
        "0.5", "it's a test", "--count", "3", "--extra", "x y", "--flag", "1"]
    # Logged as MLflow logs them: shell-quoted.
    assert run.data.params == {"alpha": "0.5", "label": "'it'\"'\"'s a test'", "count": "3",
                               "extra": "'x y'", "flag": "1"}
    assert run.data.tags["env_experiment"] == exp
    assert run.data.metrics == {"m": 1.5}
    assert "mlflow.project.env" not in run.data.tags

    # A missing value, a wrong type, a malformed -P: refused before any run is created.
    before = len(client(tracking).search_runs([exp]))
    for args, message in [
        ([], "No value given for missing parameters: 'label'"),
        (["-P", "label=x", "-P", "alpha=fast"], "Expected a float for parameter alpha"),
        (["-P", "label=x", "-e", "nope"], "Could not find nope among entry points"),
    ]:
        proc = mlflow_run(tracking, d, *args, "--experiment-id", exp, "--env-manager", "local",
                          cwd=tmp_path)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    proc = mlflow_run(tracking, d, "-P", "novalue", cwd=tmp_path)
    assert proc.returncode == 2 and "Use -P name=value" in proc.stderr
    assert len(client(tracking).search_runs([exp])) == before


def test_exit_status_makes_the_run_failed(tracking, tmp_path):
    # (Code that logs through the fluent API ends the run FINISHED itself at exit, whatever
    # its status, as in MLflow; this one does not touch the run.)
    d = project(tmp_path, "entry_points:\n  main:\n    command: python fail.py\n",
                {"fail.py": "import sys\nsys.exit(3)\n"})
    exp = client(tracking).create_experiment("failing")
    proc = mlflow_run(tracking, d, "--experiment-id", exp, "--env-manager", "local",
                      cwd=tmp_path)
    assert proc.returncode == 1
    run = only_run(tracking, exp)
    assert f"Run (ID '{run.info.run_id}') failed" in proc.stderr
    assert run.info.status == "FAILED" and run.info.end_time


def test_a_directory_without_mlproject_runs_scripts(tracking, tmp_path):
    d = project(tmp_path, None, {"main.py": ECHO})
    proc = mlflow_run(tracking, d, "-e", "main.py", "-P", "alpha=0.1", "--experiment-name",
                      "no-mlproject", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    exp = client(tracking).get_experiment_by_name("no-mlproject")
    run = only_run(tracking, exp.experiment_id)
    assert json.loads(run.data.tags["argv"]) == ["--alpha", "0.1"]
    assert run.data.params == {"alpha": "0.1"}
    assert run.data.tags["mlflow.project.entryPoint"] == "main.py"
    assert run.data.tags["mlflow.source.name"] == str(d)
    # Without -e, MLflow looks for an entry point called main, and there is none.
    proc = mlflow_run(tracking, d, cwd=tmp_path)
    assert proc.returncode == 1 and "Could not find main" in proc.stderr
    proc = mlflow_run(tracking, d, "--experiment-name", "x", "--experiment-id", "0", cwd=tmp_path)
    assert proc.returncode == 1 and "Specify only one" in proc.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_uris_are_cloned(tracking, tmp_path):
    repo = project(tmp_path, "entry_points:\n  main:\n    command: python echo.py\n",
                   {"echo.py": ECHO})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git[:3], "init", "-q", "-b", "trunk"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    subprocess.run([*git, "checkout", "-q", "-b", "feature"], check=True)
    (repo / "echo.py").write_text(ECHO.replace('"argv"', '"branch_argv"'))
    subprocess.run([*git, "commit", "-q", "-am", "two"], check=True)
    feature = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
    subprocess.run([*git, "checkout", "-q", "trunk"], check=True)
    uri = f"file://{repo}"
    exp = client(tracking).create_experiment("from-git")
    proc = mlflow_run(tracking, uri, "-v", "feature", "--experiment-id", exp,
                      "--env-manager", "local", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = only_run(tracking, exp)
    tags = run.data.tags
    assert "branch_argv" in tags
    assert tags["mlflow.source.name"] == uri
    assert tags["mlflow.source.git.commit"] == feature
    assert tags["mlflow.source.git.repoURL"] == uri
    assert tags["mlflow.source.git.branch"] == "feature"
    # The clone is gone afterwards.
    assert not [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("mlflow-project-*")
                if p.stat().st_mtime > time.time() - 60]
    proc = mlflow_run(tracking, uri, "-v", "no-such-branch", cwd=tmp_path)
    assert proc.returncode == 1 and "Unable to checkout version 'no-such-branch'" in proc.stderr


def test_interrupting_the_run_marks_it_failed(tracking, tmp_path):
    d = project(tmp_path, "entry_points:\n  main:\n    command: python slow.py\n",
                {"slow.py": "import mlflow, time\nmlflow.log_metric('started', 1)\ntime.sleep(120)\n"})
    exp = client(tracking).create_experiment("interrupted")
    proc = subprocess.Popen(
        [str(BINARY), "run", str(d), "--experiment-id", exp, "--env-manager", "local"],
        env=serve_env(tracking.url), cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            runs = client(tracking).search_runs([exp])
            if runs and "started" in runs[0].data.metrics:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the run never started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 1
    finally:
        proc.kill()
    assert only_run(tracking, exp).info.status == "FAILED"
