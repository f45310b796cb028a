"""Models the serving tests log: made here from small synthetic data (nothing downloaded)."""

import numpy as np
import pandas as pd

FEATURES = ["tenure", "monthly_charges", "support_calls"]


def training_frame(n=40):
    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {
            "tenure": rng.uniform(0, 72, n),
            "monthly_charges": rng.uniform(20, 120, n),
            "support_calls": rng.integers(0, 10, n).astype("float64"),
        }
    )
    y = 0.02 * X.tenure - 0.01 * X.monthly_charges + 0.3 * X.support_calls + rng.normal(0, 0.1, n)
    return X, y


def log_sklearn(tracking_url, registered_name=None):
    """Logs a LinearRegression with a signature; returns (model_info, X)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    X, y = training_frame()
    model = LinearRegression().fit(X, y)
    mlflow.set_tracking_uri(tracking_url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=registered_name,
        )
    return info, X


def log_fragile(tracking_url):
    """A pyfunc model whose process dies on the input -1 (a crash in native code, as far as
    the server can tell) and that doubles anything else."""
    import mlflow
    import mlflow.pyfunc

    class FragileModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            import os

            if (model_input["x"] == -1).any():
                os._exit(3)
            return model_input["x"] * 2

    mlflow.set_tracking_uri(tracking_url)
    with mlflow.start_run():
        return mlflow.pyfunc.log_model(
            name="fragile",
            python_model=FragileModel(),
            input_example=pd.DataFrame({"x": [1.0, 2.0]}),
        )
