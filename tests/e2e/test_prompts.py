"""The prompt registry with the official client: register text and chat prompts (versions
with MLflow's placeholder source), load by version and alias, search, and prompts linked to
the traces that use them. Other sources are refused for prompt versions only."""

import mlflow
import pytest
import requests

from e2e_support import unique_name


def test_register_load_alias_search(tracking):
    name = unique_name("prompt")
    v1 = mlflow.genai.register_prompt(
        name=name, template="Answer {{question}} briefly.", commit_message="first", tags={"team": "a"}
    )
    assert v1.version == 1
    v2 = mlflow.genai.register_prompt(name=name, template="Answer {{question}} in detail.")
    assert v2.version == 2
    assert mlflow.genai.load_prompt(f"prompts:/{name}/1").template == "Answer {{question}} briefly."
    assert mlflow.genai.load_prompt(f"prompts:/{name}/1").format(question="why") == "Answer why briefly."
    mlflow.genai.set_prompt_alias(name, alias="prod", version=1)
    assert mlflow.genai.load_prompt(f"prompts:/{name}@prod").version == 1
    mlflow.genai.delete_prompt_alias(name, alias="prod")
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.genai.load_prompt(f"prompts:/{name}@prod")

    chat = mlflow.genai.register_prompt(
        name=f"{name}-chat", template=[{"role": "user", "content": "Hi {{who}}"}]
    )
    assert chat.template == [{"role": "user", "content": "Hi {{who}}"}]

    found = mlflow.genai.search_prompts(filter_string=f"name LIKE '{name}%'")
    assert sorted(p.name for p in found) == sorted([name, f"{name}-chat"])
    # Prompts stay out of the model search.
    assert not mlflow.search_registered_models(filter_string=f"name LIKE '{name}%'")


def test_prompt_sources_are_placeholders_only(tracking):
    name = unique_name("prompt-src")
    mlflow.genai.register_prompt(name=name, template="x")
    tags = [{"key": "mlflow.prompt.is_prompt", "value": "true"}, {"key": "mlflow.prompt.text", "value": "y"}]
    r = requests.post(
        f"{tracking.url}/api/2.0/mlflow/model-versions/create",
        json={"name": name, "source": "prompt-template", "tags": tags},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    r = requests.post(
        f"{tracking.url}/api/2.0/mlflow/model-versions/create",
        json={"name": name, "source": "file:///etc/passwd", "tags": tags},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid prompt source" in r.json()["message"]


def test_prompt_linked_to_trace(tracking, experiment_id, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.tracing.reset()
    mlflow.set_experiment(experiment_id=experiment_id)
    # A link is stored as "name/version" in entity_associations.destination_id, VARCHAR(36) in
    # MLflow's schema: PostgreSQL and MariaDB refuse a longer one (MLflow's client swallows
    # that error), so the name stays short.
    name = unique_name("tp")[:24]
    mlflow.genai.register_prompt(name=name, template="Hello {{x}}")
    try:
        @mlflow.trace
        def use_prompt():
            return mlflow.genai.load_prompt(f"prompts:/{name}/1").format(x="y")

        use_prompt()
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.MlflowClient().link_prompt_versions_to_trace(
            trace_id=trace_id, prompt_versions=[mlflow.genai.load_prompt(f"prompts:/{name}/1")]
        )
        found = mlflow.search_traces(
            locations=[experiment_id], filter_string=f"prompt = '{name}/1'", return_type="list"
        )
        assert [t.info.trace_id for t in found] == [trace_id]
    finally:
        mlflow.tracing.reset()
