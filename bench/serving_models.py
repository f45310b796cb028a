"""Logs the two models of `serving.py` with the official client (run with .venv's python):
a scikit-learn pipeline and an ONNX MLP, both on 8 float features, made from synthetic data.
Writes their model URIs, the 1-row and 100-row request bodies and the predictions the
models themselves make on them (numpy for the ONNX graph) to the JSON file `argv[2]`.

    .venv/bin/python bench/serving_models.py TRACKING_URL OUT.json
"""

import json
import sys

import mlflow
import numpy as np
import pandas as pd

FEATURES = [f"f{i}" for i in range(8)]
HIDDEN = 64


def frame(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))).astype("float32"), columns=FEATURES)


def sklearn_model(X):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = X.to_numpy() @ np.linspace(-1, 1, len(FEATURES)) + np.random.default_rng(1).normal(0, 0.1, len(X))
    return make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(X, y)


def mlp_weights():
    rng = np.random.default_rng(5)
    return [
        (rng.normal(0, 0.3, (len(FEATURES), HIDDEN)).astype(np.float32), rng.normal(0, 0.1, HIDDEN).astype(np.float32)),
        (rng.normal(0, 0.3, (HIDDEN, HIDDEN)).astype(np.float32), rng.normal(0, 0.1, HIDDEN).astype(np.float32)),
        (rng.normal(0, 0.3, (HIDDEN, 1)).astype(np.float32), rng.normal(0, 0.1, 1).astype(np.float32)),
    ]


def onnx_graph(weights):
    """prediction = relu(relu(x W1 + b1) W2 + b2) W3 + b3"""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, cur = [], [], "features"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]))
        out = "prediction" if i == len(weights) - 1 else f"a{i}"
        nodes.append(helper.make_node("Add", [f"m{i}", f"B{i}"], [out]))
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            cur = f"r{i}"
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", len(FEATURES)])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def mlp_predict(weights, X):
    h = X.to_numpy(np.float32)
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    return h.reshape(-1)


def main():
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    url, out = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("bench-serving")
    X = frame(500, 0)
    payloads = {"1 row": frame(1, 11), "100 rows": frame(100, 12)}
    result = {"payloads": {k: {"dataframe_split": json.loads(v.to_json(orient="split"))}
                           for k, v in payloads.items()}, "models": {}}

    model = sklearn_model(X)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)))
    result["models"]["sklearn"] = {
        "uri": info.model_uri,
        "expected": {k: model.predict(v).tolist() for k, v in payloads.items()}}

    weights = mlp_weights()
    signature = ModelSignature(inputs=Schema([ColSpec("float", c) for c in FEATURES]),
                               outputs=Schema([ColSpec("float", "prediction")]))
    with mlflow.start_run():
        info = mlflow.onnx.log_model(onnx_graph(weights), name="mlp", signature=signature)
    result["models"]["onnx"] = {
        "uri": info.model_uri,
        "expected": {k: mlp_predict(weights, v).tolist() for k, v in payloads.items()}}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
