"""Registered scorers (`mlflow.genai.scorers`) with the official client: register built-in
scorers and judges (each registration a new version), list the latest versions, list all
versions, get by version, delete one version or all, and MLflow's refusals (custom `@scorer`
code, unknown scorers and experiments). Registering never calls a model."""

import mlflow
import pytest
import requests
from mlflow.genai.judges import make_judge
from mlflow.genai.scorers import (
    Guidelines,
    delete_scorer,
    get_scorer,
    list_scorers,
    scorer,
)
from mlflow.genai.scorers.registry import list_scorer_versions

from e2e_support import unique_name


def test_register_list_get_delete(tracking, experiment_id):
    Guidelines(name="polite", guidelines=["Be polite."]).register(experiment_id=experiment_id)
    Guidelines(name="polite", guidelines=["Be very polite."]).register(experiment_id=experiment_id)
    judge = make_judge(
        name="on_topic", instructions="Is {{ outputs }} about {{ inputs }}?",
        model="openai:/gpt-4o-mini", feedback_value_type=bool,
    )
    judge.register(experiment_id=experiment_id)

    latest = list_scorers(experiment_id=experiment_id)
    assert [s.name for s in latest] == ["on_topic", "polite"]
    polite = get_scorer(name="polite", experiment_id=experiment_id)
    assert polite.guidelines == ["Be very polite."]
    assert get_scorer(name="polite", experiment_id=experiment_id, version=1).guidelines == [
        "Be polite."
    ]
    versions = list_scorer_versions(name="polite", experiment_id=experiment_id)
    assert [(v.guidelines, n) for v, n in versions] == [(["Be polite."], 1), (["Be very polite."], 2)]
    assert get_scorer(name="on_topic", experiment_id=experiment_id).model == "openai:/gpt-4o-mini"

    delete_scorer(name="polite", experiment_id=experiment_id, version=1)
    assert [n for _, n in list_scorer_versions(name="polite", experiment_id=experiment_id)] == [2]
    delete_scorer(name="polite", experiment_id=experiment_id, version="all")
    assert [s.name for s in list_scorers(experiment_id=experiment_id)] == ["on_topic"]
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        get_scorer(name="polite", experiment_id=experiment_id)
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        delete_scorer(name="on_topic", experiment_id=experiment_id, version=9)


def test_refusals(tracking, experiment_id, client):
    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["answer"]

    with pytest.raises(mlflow.exceptions.MlflowException):
        exact.register(name="exact", experiment_id=experiment_id)
    assert list_scorers(experiment_id=experiment_id) == []

    base = f"{tracking.url}/api/3.0/mlflow/scorers"
    r = requests.post(f"{base}/register", json={
        "experiment_id": experiment_id, "name": "x", "serialized_scorer": "{not json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(f"{base}/register", json={
        "experiment_id": "987654321", "name": "x", "serialized_scorer": "{}"}, timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(f"{base}/register", json={"experiment_id": experiment_id, "name": "x"},
                      timeout=30)
    assert r.status_code == 400
    r = requests.get(f"{base}/get", params={"experiment_id": experiment_id, "name": "nope"},
                     timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    deleted = client.create_experiment(unique_name("scorer-deleted"))
    client.delete_experiment(deleted)
    with pytest.raises(mlflow.exceptions.MlflowException):
        Guidelines(name="g", guidelines=["x"]).register(experiment_id=deleted)
