"""Registry webhooks with the official client: create, list (paging), get, update, delete and
test; secrets never returned and Fernet-encrypted in the `webhooks` table; real deliveries to
a small HTTP receiver started here, checked for MLflow's headers, HMAC signature and payload
of each registry and prompt event, retried on 5xx, never sent for a disabled webhook, and never
holding up the request that raised them. Error cases (names, URL schemes, private addresses,
entity/action pairs, paging limits, unknown ids) answer MLflow's 4xx JSON."""

import base64
import hashlib
import hmac
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
import requests
from cryptography.fernet import Fernet
from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookStatus
from mlflow.exceptions import MlflowException

from e2e_support import (
    ServerProcess,
    backend_choice,
    free_port,
    is_oracle,
    new_store,
    server_choice,
    unique_name,
)

KEY = Fernet.generate_key().decode()
SECRET = "s3cr3t-for-hmac"
MODEL_EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


class Receiver:
    """Records every POST (header names lower-cased); `/flaky/<n>` answers 500 to its first n requests, `/status/<code>`
    always answers `code`, anything else 200."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    seen = sum(1 for r in outer.requests if r["path"] == self.path)
                parts = self.path.strip("/").split("/")
                code = 200
                if parts[0] == "flaky" and seen <= int(parts[1]):
                    code = 500
                elif parts[0] == "status":
                    code = int(parts[1])
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {code}".encode())

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def at(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait(self, path, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.at(path))} deliveries, expected {count}")


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.httpd.shutdown()


@pytest.fixture(scope="module")
def hook_server():
    """A server that may deliver to the local receiver (http, private addresses allowed)."""
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-e2e-webhooks-"))
    uri, db = new_store(backend_choice(), tmp)
    env = {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": KEY,
        "MLFLOW_WEBHOOK_CACHE_TTL": "0",
        "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "5",
    }
    srv = ServerProcess(server_choice(), tmp, backend_uri=uri, extra_env=env)
    srv.database = db
    try:
        yield srv
    finally:
        srv.stop()
        if db is not None:
            db.drop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def hc(hook_server):
    return MlflowClient(hook_server.url)


def stored_secret(srv, webhook_id):
    statement = f"SELECT secret FROM webhooks WHERE webhook_id = '{webhook_id}'"
    if srv.database is None:
        with sqlite3.connect(srv.backend_uri.removeprefix("sqlite:///")) as con:
            return con.execute(statement).fetchone()[0]
    return srv.database.query(statement)[0][0]


def check_signature(delivery, secret=SECRET):
    h = delivery["headers"]
    assert h["content-type"] == "application/json"
    delivery_id, ts = h["x-mlflow-delivery-id"], h["x-mlflow-timestamp"]
    assert abs(int(ts) - time.time()) < 120
    signed = f"{delivery_id}.{ts}.{delivery['body']}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert h["x-mlflow-signature"] == f"v1,{expected}"
    payload = json.loads(delivery["body"])
    assert set(payload) == {"entity", "action", "timestamp", "data"}
    assert payload["timestamp"].endswith("+00:00")
    return payload


def test_crud_and_secret_never_returned(hc, hook_server, receiver):
    url = f"{receiver.base}/crud"
    hooks = [
        hc.create_webhook(name=f"crud-{i}", url=url, events=["registered_model.created"], secret=SECRET)
        for i in range(3)
    ]
    w = hooks[0]
    assert w.secret is None and w.status == WebhookStatus.ACTIVE
    assert [str(e) for e in w.events] == ["registered_model.created"]
    raw = requests.get(f"{hook_server.url}/api/2.0/mlflow/webhooks/{w.webhook_id}", timeout=30).json()
    assert "secret" not in raw["webhook"] and SECRET not in json.dumps(raw)
    assert raw["webhook"]["events"] == [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]
    assert raw["webhook"]["status"] == "ACTIVE"

    # Encrypted at rest with MLflow's scheme: the Python server can read it back.
    stored = stored_secret(hook_server, w.webhook_id)
    assert stored != SECRET and Fernet(KEY.encode()).decrypt(stored.encode()).decode() == SECRET

    got = hc.get_webhook(w.webhook_id)
    assert (got.name, got.url, got.secret) == ("crud-0", url, None)

    seen, token = [], None
    while True:
        page = hc.list_webhooks(max_results=2, page_token=token)
        assert len(page) <= 2
        seen += [h.webhook_id for h in page]
        token = page.token
        if not token:
            break
    assert {h.webhook_id for h in hooks} <= set(seen) and len(seen) == len(set(seen))

    updated = hc.update_webhook(
        w.webhook_id,
        name="crud-renamed",
        description="d",
        events=["model_version.created", "model_version_alias.deleted"],
        status="DISABLED",
    )
    assert (updated.name, updated.description, updated.status) == ("crud-renamed", "d", WebhookStatus.DISABLED)
    assert sorted(str(e) for e in updated.events) == ["model_version.created", "model_version_alias.deleted"]
    assert updated.url == url and updated.last_updated_timestamp >= w.last_updated_timestamp
    partial = hc.update_webhook(w.webhook_id, description="only this")
    assert (partial.name, partial.description, partial.status) == ("crud-renamed", "only this", WebhookStatus.DISABLED)
    assert stored_secret(hook_server, w.webhook_id) == stored  # untouched without a new secret

    hc.delete_webhook(w.webhook_id)
    for call in (hc.get_webhook, hc.delete_webhook, lambda i: hc.update_webhook(i, name="x")):
        with pytest.raises(MlflowException, match=f"Webhook with ID {w.webhook_id} not found") as e:
            call(w.webhook_id)
        assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert w.webhook_id not in {h.webhook_id for h in hc.list_webhooks(max_results=1000)}
    for h in hooks[1:]:
        hc.delete_webhook(h.webhook_id)


def test_model_events_are_signed_with_mlflow_payloads(hc, hook_server, receiver):
    path = f"/models-{unique_name('p')}"
    hook = hc.create_webhook(name="models", url=receiver.base + path, events=MODEL_EVENTS, secret=SECRET)
    name = unique_name("hooked-model")
    mlflow.set_tracking_uri(hook_server.url)
    exp = hc.create_experiment(unique_name("hooks"))
    run_id = hc.create_run(exp).info.run_id
    source = f"runs:/{run_id}/model"
    hc.create_registered_model(name, tags={"team": "a"}, description="desc")
    hc.create_model_version(name, source, run_id=run_id, tags={"k": "v"})
    hc.set_model_version_tag(name, "1", "stage", "blue")
    hc.delete_model_version_tag(name, "1", "stage")
    hc.set_registered_model_alias(name, "champion", "1")
    hc.delete_registered_model_alias(name, "champion")
    hc.set_registered_model_tag(name, "not", "a prompt")  # models' own tags raise nothing

    got = receiver.wait(path, 6)
    payloads = [check_signature(d) for d in got]
    by_event = {f"{p['entity']}.{p['action']}": p["data"] for p in payloads}
    assert by_event == {
        "registered_model.created": {"name": name, "tags": {"team": "a"}, "description": "desc"},
        "model_version.created": {
            "name": name, "version": "1", "source": source, "run_id": run_id,
            "tags": {"k": "v"}, "description": None,
        },
        "model_version_tag.set": {"name": name, "version": "1", "key": "stage", "value": "blue"},
        "model_version_tag.deleted": {"name": name, "version": "1", "key": "stage"},
        "model_version_alias.created": {"name": name, "alias": "champion", "version": "1"},
        "model_version_alias.deleted": {"name": name, "alias": "champion"},
    }
    assert len({d["headers"]["x-mlflow-delivery-id"] for d in got}) == 6
    time.sleep(0.5)
    assert len(receiver.at(path)) == 6
    hc.delete_webhook(hook.webhook_id)


def test_prompt_events(hc, hook_server, receiver):
    path = f"/prompts-{unique_name('p')}"
    events = ["prompt.created", "prompt_version.created", "prompt_alias.created", "prompt_tag.set"]
    hook = hc.create_webhook(name="prompts", url=receiver.base + path, events=events)
    mlflow.set_tracking_uri(hook_server.url)
    name = unique_name("hooked-prompt")
    mlflow.genai.register_prompt(name=name, template="Hi {{who}}", tags={"team": "b"})
    mlflow.genai.set_prompt_alias(name, alias="prod", version=1)

    wanted = {"prompt.created", "prompt_version.created", "prompt_alias.created"}
    deadline = time.time() + 20
    while time.time() < deadline:
        got = receiver.at(path)
        if wanted <= {"{entity}.{action}".format(**json.loads(d["body"])) for d in got}:
            break
        time.sleep(0.05)
    for d in got:
        assert "x-mlflow-signature" not in d["headers"]  # no secret, no signature
    data = {f"{p['entity']}.{p['action']}": p["data"] for p in (json.loads(d["body"]) for d in got)}
    assert data["prompt.created"]["name"] == name
    assert "mlflow.prompt.is_prompt" not in data["prompt.created"]["tags"]
    version = data["prompt_version.created"]
    assert (version["name"], version["version"], version["template"]) == (name, "1", "Hi {{who}}")
    assert not any(k in version["tags"] for k in ("mlflow.prompt.is_prompt", "mlflow.prompt.text"))
    assert data["prompt_alias.created"] == {"name": name, "alias": "prod", "version": "1"}
    hc.delete_webhook(hook.webhook_id)


def test_retries_disabled_hooks_and_unreachable_endpoints(hc, receiver):
    flaky = f"/flaky/1/{unique_name('f')}"
    off = f"/off-{unique_name('o')}"
    hooks = [
        hc.create_webhook(name="flaky", url=receiver.base + flaky, events=["registered_model.created"]),
        hc.create_webhook(name="off", url=receiver.base + off, events=["registered_model.created"], status="DISABLED"),
        # Nothing listens there: the delivery fails after its retries, the request does not.
        hc.create_webhook(name="dead", url=f"http://127.0.0.1:{free_port()}/x", events=["registered_model.created"]),
    ]
    started = time.time()
    hc.create_registered_model(unique_name("retry-model"))
    assert time.time() - started < 2

    got = receiver.wait(flaky, 2)
    assert got[0]["body"] == got[1]["body"]
    assert got[0]["headers"]["x-mlflow-delivery-id"] == got[1]["headers"]["x-mlflow-delivery-id"]
    time.sleep(1)
    assert len(receiver.at(flaky)) == 2 and receiver.at(off) == []
    for h in hooks:
        hc.delete_webhook(h.webhook_id)


def test_test_endpoint(hc, receiver):
    path = f"/test-{unique_name('t')}"
    hook = hc.create_webhook(
        name="tested", url=receiver.base + path, events=["model_version_tag.set", "prompt_alias.deleted"], secret=SECRET
    )
    result = hc.test_webhook(hook.webhook_id, event="prompt_alias.deleted")
    assert result.success and result.response_status == 200 and result.response_body == "answered 200"
    payload = check_signature(receiver.at(path)[-1])
    assert (payload["entity"], payload["action"]) == ("prompt_alias", "deleted")
    assert payload["data"] == {"name": "example_prompt", "alias": "example_alias"}

    result = hc.test_webhook(hook.webhook_id)  # the webhook's first event
    payload = check_signature(receiver.at(path)[-1])
    assert payload["entity"] in ("model_version_tag", "prompt_alias")

    hc.update_webhook(hook.webhook_id, url=f"{receiver.base}/status/404")
    result = hc.test_webhook(hook.webhook_id)
    assert not result.success and result.response_status == 404

    hc.update_webhook(hook.webhook_id, url=f"http://127.0.0.1:{free_port()}/closed")
    result = hc.test_webhook(hook.webhook_id)
    assert not result.success and result.response_status is None
    assert result.error_message.startswith("Failed to test webhook")

    with pytest.raises(MlflowException, match="Webhook with ID nope not found"):
        hc.test_webhook("nope")
    hc.delete_webhook(hook.webhook_id)


def _error(resp, code, status=400):
    assert resp.status_code == status, resp.text
    assert resp.json()["error_code"] == code, resp.text
    return resp.json()["message"]


def test_validation_errors(server):
    """On a server with MLflow's defaults: https only, no private addresses."""
    api = f"{server.url}/api/2.0/mlflow/webhooks"
    ok_event = [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]

    def create(**body):
        return requests.post(api, json=body, timeout=30)

    msg = _error(create(name="bad name", url="https://8.8.8.8/x", events=ok_event), "INVALID_PARAMETER_VALUE")
    assert msg.startswith("Webhook name 'bad name' is invalid.")
    msg = _error(create(name="h", url="http://8.8.8.8/x", events=ok_event), "INVALID_PARAMETER_VALUE")
    assert msg == "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."
    for host in ("127.0.0.1", "10.0.0.8", "169.254.169.254", "[::1]", "localhost"):
        msg = _error(create(name="h", url=f"https://{host}/x", events=ok_event), "INVALID_PARAMETER_VALUE")
        assert "must not resolve to a non-public IP address" in msg, msg
    msg = _error(create(name="h", url="https:///x", events=ok_event), "INVALID_PARAMETER_VALUE")
    assert msg.startswith("Webhook URL must include a hostname")
    bad_pair = [{"entity": "REGISTERED_MODEL", "action": "DELETED"}]
    msg = _error(create(name="h", url="https://8.8.8.8/x", events=bad_pair), "INVALID_PARAMETER_VALUE")
    assert msg == "Invalid action 'deleted' for entity 'registered_model'. Valid actions are: ['created']"
    if not is_oracle():  # MLflow answers an unknown entity name with a 500
        _error(create(name="h", url="https://8.8.8.8/x", events=[{"entity": "NOPE", "action": "CREATED"}]),
               "INVALID_PARAMETER_VALUE")
    _error(create(name="h", url="https://8.8.8.8/x"), "INVALID_PARAMETER_VALUE")
    _error(create(name="h", url="https://8.8.8.8/x", events=[]), "INVALID_PARAMETER_VALUE")
    _error(create(url="https://8.8.8.8/x", events=ok_event), "INVALID_PARAMETER_VALUE")
    if not is_oracle():  # MLflow drops an unknown status and makes the webhook ACTIVE
        _error(create(name="h", url="https://8.8.8.8/x", events=ok_event, status="PAUSED"), "INVALID_PARAMETER_VALUE")

    msg = _error(requests.get(api, params={"max_results": 1001}, timeout=30), "INVALID_PARAMETER_VALUE")
    assert msg == "max_results must be between 1 and 1000."
    for method in ("get", "patch", "delete"):
        resp = requests.request(method, f"{api}/missing-id", json={}, timeout=30)
        assert _error(resp, "RESOURCE_DOES_NOT_EXIST", 404) == "Webhook with ID missing-id not found."

    # A public address is accepted; an update to a private one is refused and changes nothing.
    client = MlflowClient(server.url)
    hook = client.create_webhook(name="public", url="https://8.8.8.8/hook", events=["model_version.created"])
    with pytest.raises(MlflowException, match="non-public IP address"):
        client.update_webhook(hook.webhook_id, url="https://127.0.0.1/x", name="changed")
    assert client.get_webhook(hook.webhook_id).name == "public"
    client.delete_webhook(hook.webhook_id)
