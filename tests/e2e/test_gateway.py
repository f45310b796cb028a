"""MLflow's AI gateway configuration API with the official client's store: secrets (encrypted
at rest with MLflow's KEK scheme, values never returned), model definitions, endpoints with
traffic split, fallback, usage tracking, attached models, bindings and tags, the provider
catalogue, the secrets setting, the deployments proxy's checks and online scoring of gateway
judges. The interop tests decrypt our rows with MLflow's own crypto functions, and have
MLflow's SqlAlchemyStore write a secret that our server serves and re-keys."""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import (
    FallbackConfig,
    FallbackStrategy,
    GatewayEndpointModelConfig,
    GatewayModelLinkageType,
    GatewayResourceType,
    RoutingStrategy,
)
from mlflow.exceptions import MlflowException
from mlflow.utils.crypto import KEKManager, _decrypt_secret

from e2e_support import ServerProcess, backend_choice, is_oracle, new_store, server_choice, unique_name

PASSPHRASE = "e2e-gateway-passphrase-with-enough-entropy"
API = "/api/3.0/mlflow/gateway"


class Gateway:
    """A server of ours (or the oracle) with a KEK passphrase, on a fresh store."""

    def __init__(self, extra_env=None):
        self.tmp = Path(tempfile.mkdtemp(prefix="mlflow-gw-"))
        self.uri, self.db = new_store(backend_choice(), self.tmp)
        env = {"MLFLOW_CRYPTO_KEK_PASSPHRASE": PASSPHRASE, "MLFLOW_CRYPTO_KEK_VERSION": None}
        env.update(extra_env or {})
        self.server = ServerProcess(server_choice(), self.tmp, backend_uri=self.uri, extra_env=env)
        self.url = self.server.url
        self.store = MlflowClient(self.url)._tracking_client.store

    def rows(self, statement):
        if self.db is not None:
            return self.db.query(statement)
        con = sqlite3.connect(self.tmp / "mlflow.db")
        try:
            return con.execute(statement).fetchall()
        finally:
            con.close()

    def sealed(self, secret_id):
        ((enc, dek, version),) = self.rows(
            f"SELECT encrypted_value, wrapped_dek, kek_version FROM secrets WHERE secret_id = '{secret_id}'"
        )
        return bytes(enc), bytes(dek), version

    def close(self):
        self.server.stop()
        if self.db is not None:
            self.db.drop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def gw():
    g = Gateway()
    yield g
    g.close()


def error_of(response):
    return response.status_code, response.json().get("error_code"), response.json().get("message", "")


def make_model(store, provider="openai", model="gpt-4"):
    secret = store.create_gateway_secret(
        secret_name=unique_name("key"), secret_value={"api_key": "sk-" + unique_name("v")}, provider=provider
    )
    return secret, store.create_gateway_model_definition(
        name=unique_name("def"), secret_id=secret.secret_id, provider=provider, model_name=model
    )


def primary(model_def, weight=1.0):
    return GatewayEndpointModelConfig(
        model_definition_id=model_def.model_definition_id, linkage_type=GatewayModelLinkageType.PRIMARY, weight=weight
    )


def test_secret_lifecycle_is_masked_and_sealed_for_mlflow(gw):
    store = gw.store
    name = unique_name("aws")
    secret = store.create_gateway_secret(
        secret_name=name,
        secret_value={"aws_access_key_id": "AKIAORIGINAL1234", "aws_secret_access_key": "original-secret-key-1234"},
        provider="bedrock",
        auth_config={"auth_mode": "access_keys", "aws_region_name": "us-east-1"},
        created_by="alice",
    )
    assert secret.secret_id.startswith("s-") and len(secret.secret_id) == 34
    assert secret.masked_values == {"aws_access_key_id": "AKI...1234", "aws_secret_access_key": "ori...1234"}
    assert secret.auth_config == {"auth_mode": "access_keys", "aws_region_name": "us-east-1"}
    assert secret.created_by == "alice"

    # At rest: nothing readable, and MLflow's own code opens it with the passphrase.
    enc, dek, version = gw.sealed(secret.secret_id)
    assert version == 1 and b"AKIA" not in enc and b"original" not in enc
    plain = _decrypt_secret(enc, dek, KEKManager(passphrase=PASSPHRASE, kek_version=1), secret.secret_id, name)
    assert plain == {"aws_access_key_id": "AKIAORIGINAL1234", "aws_secret_access_key": "original-secret-key-1234"}
    with pytest.raises(MlflowException):
        _decrypt_secret(enc, dek, KEKManager(passphrase="another-passphrase", kek_version=1), secret.secret_id, name)

    fetched = store.get_secret_info(secret_id=secret.secret_id)
    assert (fetched.secret_name, fetched.provider, fetched.masked_values) == (name, "bedrock", secret.masked_values)
    raw = requests.get(f"{gw.url}{API}/secrets/get", params={"secret_id": secret.secret_id}).text
    assert "ORIGINAL" not in raw and "original-secret" not in raw

    updated = store.update_gateway_secret(
        secret_id=secret.secret_id,
        secret_value={"aws_access_key_id": "AKIAROTATED5678", "aws_secret_access_key": "rotated-secret-key-5678"},
        updated_by="bob",
    )
    assert updated.masked_values == {"aws_access_key_id": "AKI...5678", "aws_secret_access_key": "rot...5678"}
    assert updated.last_updated_at >= secret.created_at and updated.last_updated_by == "bob"
    assert updated.auth_config == secret.auth_config  # an update without auth_config keeps it
    enc, dek, _ = gw.sealed(secret.secret_id)
    plain = _decrypt_secret(enc, dek, KEKManager(passphrase=PASSPHRASE, kek_version=1), secret.secret_id, name)
    assert plain["aws_secret_access_key"] == "rotated-secret-key-5678"

    short = store.create_gateway_secret(secret_name=unique_name("short"), secret_value={"api_key": "abc"})
    assert short.masked_values == {"api_key": "***"} and short.provider is None
    assert {s.secret_id for s in store.list_secret_infos(provider="bedrock")} >= {secret.secret_id}
    assert short.secret_id not in {s.secret_id for s in store.list_secret_infos(provider="bedrock")}
    store.delete_gateway_secret(short.secret_id)
    assert short.secret_id not in {s.secret_id for s in store.list_secret_infos()}


def test_secret_requests_are_validated_without_echoing_values(gw):
    url = f"{gw.url}{API}/secrets/create"
    assert error_of(requests.post(url, json={"secret_value": {"api_key": "sk-x"}}))[:2] == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    status, code, message = error_of(requests.post(url, json={"secret_name": unique_name("n")}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "secret_value" in message
    status, code, message = error_of(
        requests.post(url, json={"secret_name": unique_name("n"), "secret_value": {"api_key": ["sk-leak-me"]}})
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "sk-leak-me" not in message

    name = unique_name("dup")
    gw.store.create_gateway_secret(secret_name=name, secret_value={"api_key": "sk-first-value"})
    with pytest.raises(MlflowException, match="already exists") as e:
        gw.store.create_gateway_secret(secret_name=name, secret_value={"api_key": "sk-second-value"})
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert gw.rows(f"SELECT COUNT(*) FROM secrets WHERE secret_name = '{name}'")[0][0] == 1

    status, code, _ = error_of(requests.get(f"{gw.url}{API}/secrets/get", params={"secret_id": "s-missing"}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    status, code, _ = error_of(requests.delete(f"{gw.url}{API}/secrets/delete", json={"secret_id": "s-missing"}))
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_model_definitions(gw):
    store = gw.store
    secret, model = make_model(store)
    assert model.model_definition_id.startswith("d-") and model.secret_name == secret.secret_name
    fetched = store.get_gateway_model_definition(model.model_definition_id)
    assert (fetched.name, fetched.provider, fetched.model_name) == (model.name, "openai", "gpt-4")

    updated = store.update_gateway_model_definition(
        model_definition_id=model.model_definition_id, provider="anthropic", model_name="claude-3-5-haiku-latest"
    )
    assert (updated.provider, updated.model_name, updated.name) == ("anthropic", "claude-3-5-haiku-latest", model.name)
    assert model.model_definition_id in {
        d.model_definition_id for d in store.list_gateway_model_definitions(provider="anthropic")
    }
    assert model.model_definition_id in {
        d.model_definition_id for d in store.list_gateway_model_definitions(secret_id=secret.secret_id)
    }

    with pytest.raises(MlflowException) as e:
        store.create_gateway_model_definition(
            name=unique_name("def"), secret_id="s-missing", provider="openai", model_name="gpt-4"
        )
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="already exists"):
        store.create_gateway_model_definition(
            name=model.name, secret_id=secret.secret_id, provider="openai", model_name="gpt-4"
        )
    status, code, message = error_of(requests.post(f"{gw.url}{API}/model-definitions/create", json={"name": "x"}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "secret_id" in message

    store.delete_gateway_model_definition(model.model_definition_id)
    assert model.model_definition_id not in {d.model_definition_id for d in store.list_gateway_model_definitions()}


def test_endpoints_with_fallback_usage_tracking_models_bindings_and_tags(gw):
    store = gw.store
    secret, main = make_model(store, "openai", "gpt-4")
    _, backup = make_model(store, "anthropic", "claude-3-5-sonnet")
    name = unique_name("ep")
    endpoint = store.create_gateway_endpoint(
        name=name,
        model_configs=[
            primary(main),
            GatewayEndpointModelConfig(
                model_definition_id=backup.model_definition_id,
                linkage_type=GatewayModelLinkageType.FALLBACK,
                weight=1.0,
                fallback_order=0,
            ),
        ],
        routing_strategy=RoutingStrategy.REQUEST_BASED_TRAFFIC_SPLIT,
        fallback_config=FallbackConfig(strategy=FallbackStrategy.SEQUENTIAL, max_attempts=2),
    )
    assert endpoint.endpoint_id.startswith("e-") and endpoint.usage_tracking is True
    assert [m.model_definition.model_name for m in endpoint.model_mappings] == ["gpt-4", "claude-3-5-sonnet"]
    assert endpoint.model_mappings[1].linkage_type == GatewayModelLinkageType.FALLBACK
    assert endpoint.fallback_config.max_attempts == 2
    assert endpoint.fallback_config.strategy == FallbackStrategy.SEQUENTIAL
    experiment = MlflowClient(gw.url).get_experiment(endpoint.experiment_id)
    assert experiment.name == f"gateway/{name}"
    assert experiment.tags["mlflow.experiment.sourceType"] == "GATEWAY"
    assert experiment.tags["mlflow.experiment.sourceId"] == endpoint.endpoint_id
    assert experiment.tags["mlflow.experiment.isGateway"] == "true"

    by_name = store.get_gateway_endpoint(name=name)
    assert by_name.endpoint_id == endpoint.endpoint_id and len(by_name.model_mappings) == 2
    listed = {e.endpoint_id: e for e in store.list_gateway_endpoints(provider="anthropic")}
    assert endpoint.endpoint_id in listed and listed[endpoint.endpoint_id].routing_strategy is not None

    # Attach, detach, replace and rename.
    _, extra = make_model(store, "openai", "gpt-3.5-turbo")
    mapping = store.attach_model_to_endpoint(endpoint_id=endpoint.endpoint_id, model_config=primary(extra, 0.5))
    assert mapping.model_definition_id == extra.model_definition_id and mapping.weight == 0.5
    assert len(store.get_gateway_endpoint(endpoint.endpoint_id).model_mappings) == 3
    with pytest.raises(MlflowException, match="already attached"):
        store.attach_model_to_endpoint(endpoint_id=endpoint.endpoint_id, model_config=primary(extra))
    store.detach_model_from_endpoint(endpoint_id=endpoint.endpoint_id, model_definition_id=extra.model_definition_id)
    assert len(store.get_gateway_endpoint(endpoint.endpoint_id).model_mappings) == 2
    with pytest.raises(MlflowException, match="not attached"):
        store.detach_model_from_endpoint(endpoint_id=endpoint.endpoint_id, model_definition_id=extra.model_definition_id)
    with pytest.raises(MlflowException, match="in use") as e:
        store.delete_gateway_model_definition(main.model_definition_id)
    assert e.value.error_code == "INVALID_STATE"

    renamed = unique_name("renamed")
    updated = store.update_gateway_endpoint(
        endpoint_id=endpoint.endpoint_id,
        name=renamed,
        model_configs=[primary(extra)],
        fallback_config=FallbackConfig(strategy=FallbackStrategy.SEQUENTIAL, max_attempts=3),
    )
    assert updated.name == renamed and [m.model_definition_id for m in updated.model_mappings] == [
        extra.model_definition_id
    ]
    assert updated.fallback_config.max_attempts == 3
    with pytest.raises(MlflowException, match="Invalid endpoint name"):
        store.update_gateway_endpoint(endpoint_id=endpoint.endpoint_id, name="bad name")

    # Bindings and tags.
    binding = store.create_endpoint_binding(
        endpoint_id=endpoint.endpoint_id, resource_type=GatewayResourceType.SCORER, resource_id="job-1"
    )
    assert (binding.resource_type, binding.resource_id) == (GatewayResourceType.SCORER, "job-1")
    assert [b.resource_id for b in store.list_endpoint_bindings(endpoint_id=endpoint.endpoint_id)] == ["job-1"]
    assert [b.endpoint_id for b in store.list_endpoint_bindings(resource_id="job-1")] == [endpoint.endpoint_id]
    store.delete_endpoint_binding(endpoint_id=endpoint.endpoint_id, resource_type="scorer", resource_id="job-1")
    assert store.list_endpoint_bindings(endpoint_id=endpoint.endpoint_id) == []
    status, code, _ = error_of(
        requests.post(
            f"{gw.url}{API}/endpoints/bindings/create",
            json={"endpoint_id": endpoint.endpoint_id, "resource_type": "nonsense", "resource_id": "x"},
        )
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")

    from mlflow.entities import GatewayEndpointTag

    store.set_gateway_endpoint_tag(endpoint.endpoint_id, GatewayEndpointTag("team", "search"))
    assert [(t.key, t.value) for t in store.get_gateway_endpoint(endpoint.endpoint_id).tags] == [("team", "search")]
    store.delete_gateway_endpoint_tag(endpoint.endpoint_id, "team")
    assert store.get_gateway_endpoint(endpoint.endpoint_id).tags == []

    # A deleted secret leaves its model definitions orphaned, not deleted.
    store.delete_gateway_secret(secret.secret_id)
    orphan = store.get_gateway_model_definition(main.model_definition_id)
    assert orphan.secret_id is None and orphan.secret_name is None

    store.create_endpoint_binding(endpoint_id=endpoint.endpoint_id, resource_type=GatewayResourceType.SCORER, resource_id="j2")
    store.delete_gateway_endpoint(endpoint.endpoint_id)
    assert endpoint.endpoint_id not in {e.endpoint_id for e in store.list_gateway_endpoints()}
    assert store.list_endpoint_bindings(resource_id="j2") == []
    with pytest.raises(MlflowException) as e:
        store.get_gateway_endpoint(endpoint.endpoint_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_endpoint_requests_are_validated(gw):
    url = f"{gw.url}{API}/endpoints/create"
    refused = [unique_name("refused"), unique_name("refused")]
    status, code, message = error_of(requests.post(url, json={"name": refused[0]}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "model_configs" in message
    status, code, _ = error_of(
        requests.post(url, json={"name": refused[1], "model_configs": [{"model_definition_id": "d-missing"}]})
    )
    assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
    status, code, message = error_of(
        requests.post(url, json={"name": "has space", "model_configs": [{"model_definition_id": "d-x"}]})
    )
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "Invalid endpoint name" in message
    # No experiment was left behind by the refused requests.
    names = [e.name for e in MlflowClient(gw.url).search_experiments()]
    assert not {f"gateway/{n}" for n in refused} & set(names)

    _, model = make_model(gw.store)
    quiet = gw.store.create_gateway_endpoint(name=unique_name("quiet"), model_configs=[primary(model)], usage_tracking=False)
    assert quiet.usage_tracking is False and quiet.experiment_id is None
    tracked = gw.store.update_gateway_endpoint(endpoint_id=quiet.endpoint_id, usage_tracking=True)
    assert tracked.usage_tracking is True and tracked.experiment_id is not None


def test_providers_and_secrets_config(gw):
    data = requests.get(f"{gw.url}/ajax-api/3.0/mlflow/gateway/supported-providers").json()
    assert "openai" in data["providers"] and data["providers"] == sorted(data["providers"])
    bedrock = requests.get(f"{gw.url}/ajax-api/3.0/mlflow/gateway/provider-config", params={"provider": "bedrock"}).json()
    modes = {m["mode"]: m for m in bedrock["auth_modes"]}
    assert bedrock["default_mode"] == "api_key" and {"access_keys", "iam_role"} <= set(modes)
    assert [f["name"] for f in modes["access_keys"]["secret_fields"]] == ["aws_access_key_id", "aws_secret_access_key"]
    other = requests.get(f"{gw.url}{API}/provider-config", params={"provider": "acme"}).json()
    assert other["auth_modes"][0]["config_fields"][0]["name"] == "api_base"
    assert requests.get(f"{gw.url}{API}/provider-config").status_code == 400

    assert requests.get(f"{gw.url}{API}/secrets/config").json() == {
        "secrets_available": True,
        "using_default_passphrase": False,
    }
    default = Gateway(extra_env={"MLFLOW_CRYPTO_KEK_PASSPHRASE": None})
    try:
        assert requests.get(f"{default.url}{API}/secrets/config").json()["using_default_passphrase"] is True
    finally:
        default.close()


def test_gateway_proxy_checks_paths_only_with_a_target(gw):
    proxy = "/ajax-api/2.0/mlflow/gateway-proxy"
    assert requests.post(gw.url + proxy, json={"gateway_path": "foo/bar"}).json() == {"endpoints": []}
    target = Gateway(extra_env={"MLFLOW_DEPLOYMENTS_TARGET": "http://127.0.0.1:9"})
    try:
        for method, kwargs, words in [
            ("post", {"json": {}}, "must specify a gateway_path"),
            ("post", {"json": {"gateway_path": "foo/bar"}}, "Invalid gateway_path: foo/bar for method: POST"),
            ("get", {"params": {"gateway_path": "hello/world"}}, "Invalid gateway_path: hello/world for method: GET"),
        ]:
            status, code, message = error_of(getattr(requests, method)(target.url + proxy, **kwargs))
            assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and words in message
        assert requests.delete(target.url + proxy).status_code == 405
    finally:
        target.close()


def test_gateway_judge_binding_and_online_scoring(gw):
    client = MlflowClient(gw.url)
    store = gw.store
    experiment_id = client.create_experiment(unique_name("online"))
    _, model = make_model(store)
    endpoint = store.create_gateway_endpoint(name=unique_name("judge"), model_configs=[primary(model)])
    scorer = {"instructions_judge_pydantic_data": {"model": f"gateway:/{endpoint.name}"}}
    version = store.register_scorer(experiment_id, "my_scorer", json.dumps(scorer))
    assert json.loads(version._serialized_scorer)["instructions_judge_pydantic_data"]["model"] == f"gateway:/{endpoint.name}"
    # Kept by endpoint id, as MLflow does, and bound to the endpoint.
    (stored,) = gw.rows(f"SELECT serialized_scorer FROM scorer_versions v JOIN scorers s ON s.scorer_id = v.scorer_id "
                        f"WHERE s.scorer_id = '{version.scorer_id}'")
    assert endpoint.endpoint_id in stored[0]
    (binding,) = store.list_endpoint_bindings(resource_id=version.scorer_id)
    assert (binding.endpoint_id, binding.display_name) == (endpoint.endpoint_id, "my_scorer")

    for rate, filter_string in [(0.5, "status = 'OK'"), (0.8, None)]:
        config = store.upsert_online_scoring_config(
            experiment_id=experiment_id, scorer_name="my_scorer", sample_rate=rate, filter_string=filter_string
        )
        assert (config.scorer_id, config.sample_rate, config.filter_string) == (version.scorer_id, rate, filter_string)
        (listed,) = store.get_online_scoring_configs([version.scorer_id])
        assert (listed.sample_rate, listed.filter_string) == (rate, filter_string)

    with pytest.raises(MlflowException, match="between 0.0 and 1.0"):
        store.upsert_online_scoring_config(experiment_id=experiment_id, scorer_name="my_scorer", sample_rate=1.5)
    store.register_scorer(experiment_id, "plain", json.dumps({"instructions_judge_pydantic_data": {"model": "openai:/gpt-4"}}))
    with pytest.raises(MlflowException, match="does not use a gateway model"):
        store.upsert_online_scoring_config(experiment_id=experiment_id, scorer_name="plain", sample_rate=0.5)
    with pytest.raises(MlflowException) as e:
        store.register_scorer(experiment_id, "ghost", json.dumps({"instructions_judge_pydantic_data": {"model": "gateway:/no-such-endpoint"}}))
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.skipif(is_oracle(), reason="drives our binary's `crypto rotate-kek` command")
def test_secret_written_by_mlflow_is_served_and_rekeyed(monkeypatch):
    """MLflow's SqlAlchemyStore writes a secret into the store our server uses; we serve it,
    and our `mlflow crypto rotate-kek` re-keys it (checking that it decrypts first) so that
    MLflow's code opens it under the new passphrase."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    g = Gateway()
    try:
        monkeypatch.setenv("MLFLOW_CRYPTO_KEK_PASSPHRASE", PASSPHRASE)
        py_store = SqlAlchemyStore(g.uri, (g.tmp / "py-artifacts").as_uri())
        theirs = py_store.create_gateway_secret(
            secret_name="written-by-python", secret_value={"api_key": "sk-python-secret-9876"}, provider="openai"
        )
        py_store.engine.dispose()
        fetched = g.store.get_secret_info(secret_id=theirs.secret_id)
        assert fetched.masked_values == {"api_key": "sk-...9876"} and fetched.provider == "openai"
        ours = g.store.create_gateway_secret(secret_name="written-by-us", secret_value={"api_key": "sk-rust-secret-1234"})
        g.server.stop()

        binary = server_choice()
        env = {**os.environ, "MLFLOW_CRYPTO_KEK_PASSPHRASE": "wrong-passphrase"}
        refused = subprocess.run(
            [binary, "crypto", "rotate-kek", "--new-passphrase", "next", "--backend-store-uri", g.uri, "--yes"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert refused.returncode != 0 and "nothing was changed" in refused.stderr
        assert g.sealed(theirs.secret_id)[2] == 1

        env["MLFLOW_CRYPTO_KEK_PASSPHRASE"] = PASSPHRASE
        done = subprocess.run(
            [binary, "crypto", "rotate-kek", "--new-passphrase", "the-next-passphrase", "--backend-store-uri", g.uri, "--yes"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "Rotated 2 secrets" in done.stdout
        new_kek = KEKManager(passphrase="the-next-passphrase", kek_version=2)
        for secret, value in [(theirs, "sk-python-secret-9876"), (ours, "sk-rust-secret-1234")]:
            enc, dek, version = g.sealed(secret.secret_id)
            assert version == 2
            assert _decrypt_secret(enc, dek, new_kek, secret.secret_id, secret.secret_name) == {"api_key": value}
    finally:
        g.close()
