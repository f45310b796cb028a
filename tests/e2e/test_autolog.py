"""An autologger end to end: `mlflow.openai.autolog()` with the official `openai` client talking
to a local OpenAI-compatible HTTP stub that this test starts (test scaffolding only: the
server under test talks to nothing). The traces the autologger sends must come back through
`search_traces` with MLflow's span types, inputs, outputs and token usage."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pytest
from mlflow.entities import SpanType

openai = pytest.importorskip("openai")


class _Stub(BaseHTTPRequestHandler):
    """Answers chat completions (plain and streamed) and embeddings like the OpenAI API."""

    def log_message(self, *args):
        pass

    def _json(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path.endswith("/embeddings"):
            inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
            self._json({
                "object": "list", "model": req["model"],
                "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                         for i, _ in enumerate(inputs)],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            })
            return
        question = req["messages"][-1]["content"]
        answer = f"echo: {question}"
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if req.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i, piece in enumerate([answer[:5], answer[5:]]):
                chunk = {
                    "id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1,
                    "model": req["model"],
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}
                                 if i == 0 else {"content": piece},
                                 "finish_reason": None if i == 0 else "stop"}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json({
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1,
            "model": req["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}],
            "usage": usage,
        })


@pytest.fixture
def llm():
    """An OpenAI client pointed at the stub."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{httpd.server_port}/v1", api_key="test")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def autolog(tracking, experiment_id, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.tracing.reset()
    mlflow.set_experiment(experiment_id=experiment_id)
    mlflow.openai.autolog()
    try:
        yield experiment_id
    finally:
        mlflow.openai.autolog(disable=True)
        mlflow.tracing.reset()


def test_openai_autolog_traces(autolog, llm):
    exp = autolog

    @mlflow.trace(span_type=SpanType.AGENT)
    def agent(question):
        reply = llm.chat.completions.create(
            model="gpt-stub", messages=[{"role": "user", "content": question}], temperature=0
        )
        return reply.choices[0].message.content

    assert agent("hello") == "echo: hello"
    agent_trace = mlflow.get_last_active_trace_id()
    llm.embeddings.create(model="embed-stub", input=["a", "b"])
    stream = llm.chat.completions.create(
        model="gpt-stub", messages=[{"role": "user", "content": "streamed"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "echo: streamed"

    traces = mlflow.search_traces(locations=[exp], return_type="list",
                                  order_by=["timestamp_ms ASC"])
    assert len(traces) == 3
    nested, embedding, streamed = traces
    assert nested.info.trace_id == agent_trace
    assert nested.info.state.value == "OK"
    spans = {s.span_type: s for s in nested.data.spans}
    assert set(spans) == {SpanType.AGENT, SpanType.CHAT_MODEL}
    chat = spans[SpanType.CHAT_MODEL]
    assert chat.parent_id == spans[SpanType.AGENT].span_id
    assert chat.inputs["messages"] == [{"role": "user", "content": "hello"}]
    assert chat.inputs["model"] == "gpt-stub"
    assert chat.outputs["choices"][0]["message"]["content"] == "echo: hello"
    assert nested.info.token_usage == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}

    assert [s.span_type for s in embedding.data.spans] == [SpanType.EMBEDDING]
    assert embedding.data.spans[0].inputs["input"] == ["a", "b"]
    assert [s.span_type for s in streamed.data.spans] == [SpanType.CHAT_MODEL]
    assert streamed.data.spans[0].outputs["choices"][0]["message"]["content"] == "echo: streamed"

    # The autologged spans are searchable like any other.
    found = mlflow.search_traces(locations=[exp], filter_string="span.type = 'CHAT_MODEL'",
                                 return_type="list")
    assert {t.info.trace_id for t in found} == {nested.info.trace_id, streamed.info.trace_id}
    df = mlflow.search_traces(locations=[exp], filter_string="span.type = 'EMBEDDING'")
    assert list(df["trace_id"]) == [embedding.info.trace_id]
