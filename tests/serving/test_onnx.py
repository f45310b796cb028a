"""ONNX models scored natively by `mlflow models serve` (our binary built with the `onnx`
feature, tract): a small linear graph the test builds with the `onnx` package, logged with the
official client, served with no Python on PATH, and checked against numpy."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import Scoring, serve_env

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

W = np.array([[0.5], [-1.25], [2.0]], dtype=np.float32)
B = np.array([0.75], dtype=np.float32)
COLUMNS = ["a", "b", "c"]


def linear_graph():
    """prediction = features @ W + B, for any number of rows."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "B"], ["prediction"])],
        "linear",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    # IR 8 (ONNX 1.10): what every runtime reads, onnxruntime and tract alike.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def onnx_model(tracking):
    import mlflow
    import mlflow.onnx
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    mlflow.set_tracking_uri(tracking.url)
    signature = ModelSignature(
        inputs=Schema([ColSpec("float", c) for c in COLUMNS]),
        outputs=Schema([ColSpec("float", "prediction")]),
    )
    with mlflow.start_run():
        info = mlflow.onnx.log_model(linear_graph(), name="linear", signature=signature)
    return info


def expected(frame):
    return (frame[COLUMNS].to_numpy(np.float32) @ W + B).reshape(-1)


@pytest.fixture(scope="module")
def served(tracking, onnx_model, workdir, tmp_path_factory):
    # No python anywhere on PATH: the model must be scored without it.
    empty = tmp_path_factory.mktemp("nopython")
    env = serve_env(tracking.url, cache=workdir / "onnx-cache")
    env["PATH"] = str(empty)
    srv = Scoring(["-m", onnx_model.model_uri], env, workdir, timeout=120)
    srv.model_uri = onnx_model.model_uri
    yield srv
    srv.stop()


def test_onnx_is_scored_natively(served, tracking):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=COLUMNS)
    want = expected(frame)
    # Columns in another order than the signature's: matched by name.
    shuffled = frame[["c", "a", "b"]]
    r = served.invoke({"dataframe_split": json.loads(shuffled.to_json(orient="split"))})
    assert r.status_code == 200, r.text + served.log()
    got = [rec["prediction"] for rec in r.json()["predictions"]]
    assert got == pytest.approx(want.tolist(), rel=1e-6)
    # The same as MLflow's own onnx flavor (onnxruntime) predicts.
    import mlflow

    mlflow.set_tracking_uri(tracking.url)
    python = mlflow.pyfunc.load_model(served.model_uri).predict(frame.astype("float32"))
    assert got == pytest.approx(python["prediction"].tolist(), rel=1e-6)

    r = served.invoke({"dataframe_records": frame.to_dict(orient="records")})
    assert [rec["prediction"] for rec in r.json()["predictions"]] == pytest.approx(want, rel=1e-6)

    r = served.invoke(frame.to_csv(index=False), "text/csv")
    assert r.status_code == 200, r.text
    assert [rec["prediction"] for rec in r.json()["predictions"]] == pytest.approx(want, rel=1e-6)

    assert "Scoring the ONNX model natively" in served.log()


def test_onnx_errors_are_mlflows_json(served):
    r = served.invoke({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}})
    assert r.status_code == 400
    assert r.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    r = served.invoke({"dataframe_records": [{"a": "x", "b": 1.0, "c": 2.0}]})
    assert r.status_code == 400, r.text
