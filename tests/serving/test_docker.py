"""`mlflow models generate-dockerfile` and `build-docker` (our binary): the Dockerfile parsed
with dockerfile-parse, its ENTRYPOINT run from the build context as the image would run it,
the Kubernetes manifests validated against the Kubernetes schema (kubernetes-validate), and
`docker build` called with the context (a recording stand-in for the engine), or one clear
line when there is no engine."""

import json
import os
import stat
import subprocess
import time

import kubernetes_validate
import pytest
import requests
import yaml
from conftest import BINARY, PYTHON, serve_env
from dockerfile_parse import DockerfileParser
from e2e_support import free_port
from models import log_sklearn

IMAGE = "registry.example.com/team/churn-model:1.2"


@pytest.fixture(scope="module")
def model(tracking):
    info, X = log_sklearn(tracking.url, registered_name="docker-model")
    return info, X


def models_cmd(tracking, *args, cwd, env_path=None, **env):
    env = serve_env(tracking.url, **env)
    if env_path is not None:
        env["PATH"] = env_path
    return subprocess.run([str(BINARY), "models", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def instructions(dockerfile):
    parser = DockerfileParser(path=str(dockerfile))
    return parser, [(i["instruction"], i["value"]) for i in parser.structure
                    if i["instruction"] != "COMMENT"]


def test_generate_dockerfile_and_kubernetes_manifests(tracking, model, tmp_path):
    _, X = model
    out = tmp_path / "ctx"
    proc = models_cmd(tracking, "generate-dockerfile", "-m", "models:/docker-model/1", "-d", out,
                      "--kubernetes", "--image", IMAGE, "--replicas", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    parser, steps = instructions(out / "Dockerfile")
    python_env = yaml.safe_load((out / "model_dir" / "python_env.yaml").read_text())
    major_minor = ".".join(python_env["python"].split(".")[:2])
    assert parser.baseimage == f"python:{major_minor}-slim"
    kinds = [k for k, _ in steps]
    assert kinds[0] == "FROM" and kinds[-1] == "ENTRYPOINT" and "EXPOSE" in kinds
    assert dict(steps)["EXPOSE"] == "8080"
    # Everything COPY takes is in the context.
    for kind, value in steps:
        if kind == "COPY":
            assert (out / value.split()[0]).exists(), value
    assert (out / "model_dir" / "MLmodel").exists()
    assert os.access(out / "mlflow", os.X_OK)
    run = dict(steps)["RUN"]
    assert "python -m venv /opt/ml/env" in run and "-r requirements.txt" in run
    assert (out / "model_dir" / "requirements.txt").exists()
    assert parser.envs["MLFLOW_PYTHON"] == "/opt/ml/env/bin/python"

    # The ENTRYPOINT, run from the context as the image runs it (the model's environment
    # stands in for /opt/ml/env).
    entry = json.loads(dict(steps)["ENTRYPOINT"])
    assert entry[:3] == ["/usr/local/bin/mlflow", "models", "serve"]
    port = free_port()
    argv = [str(out / "mlflow")] + [
        str(out / "model_dir") if a == "/opt/ml/model" else str(port) if a == "8080" else a
        for a in entry[1:]
    ]
    argv[argv.index("0.0.0.0")] = "127.0.0.1"
    env = serve_env(tracking.url, MLFLOW_PYTHON=str(PYTHON))
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(url + "/ping", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        rows = X.head(3)
        r = requests.post(url + "/invocations", json={"dataframe_split": rows.to_dict(orient="split")},
                          timeout=60)
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The manifests, against the Kubernetes schema of the pinned validator.
    version = kubernetes_validate.latest_version()
    docs = {}
    for name in ("deployment.yaml", "service.yaml"):
        for doc in yaml.safe_load_all((out / name).read_text()):
            kubernetes_validate.validate(doc, version, strict=True)
            docs[doc["kind"]] = doc
    deployment, service = docs["Deployment"], docs["Service"]
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "churn-model"
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    # A manifest the schema refuses (the check can fail).
    bad = dict(deployment, spec=dict(deployment["spec"], replicas="two"))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


FAKE_ENGINE = """#!/bin/sh
# Records how it was called and what the build context held.
printf '%s\\n' "$@" > "{log}"
ls "$4" > "{log}.context"
cp "$4/Dockerfile" "{log}.dockerfile"
exit {status}
"""


def fake_engine(tmp_path, status=0):
    bin_dir = tmp_path / f"bin{status}"
    bin_dir.mkdir()
    log = tmp_path / f"docker{status}.log"
    script = bin_dir / "docker"
    script.write_text(FAKE_ENGINE.format(log=log, status=status))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir, log


def test_build_docker_calls_the_engine_with_the_context(tracking, model, tmp_path):
    bin_dir, log = fake_engine(tmp_path)
    proc = models_cmd(tracking, "build-docker", "-m", "models:/docker-model/1", "-n", "churn:7",
                      "--kubernetes", cwd=tmp_path, env_path=f"{bin_dir}:/usr/bin:/bin")
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    assert argv[:3] == ["build", "-t", "churn:7"]
    context = argv[3]
    assert set(log.with_suffix(".log.context").read_text().split()) == {
        "Dockerfile", "model_dir", "mlflow", "deployment.yaml", "service.yaml"}
    DockerfileParser(path=str(log.with_suffix(".log.dockerfile")))  # parses
    assert not os.path.exists(context), "the temporary context is removed"
    deployment = yaml.safe_load((tmp_path / "kubernetes" / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "churn:7"

    bin_dir, _ = fake_engine(tmp_path, status=1)
    proc = models_cmd(tracking, "build-docker", "-m", "models:/docker-model/1", "-n", "x",
                      cwd=tmp_path, env_path=f"{bin_dir}:/usr/bin:/bin")
    assert proc.returncode == 1 and "build exited with" in proc.stderr


def test_build_docker_without_an_engine_is_one_clear_line(tracking, model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = models_cmd(tracking, "build-docker", "-m", "models:/docker-model/1", "-n", "x",
                      cwd=tmp_path, env_path=str(empty))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "neither docker nor podman is on PATH" in lines[0], proc.stderr
    assert "generate-dockerfile" in lines[0]
