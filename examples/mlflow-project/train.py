"""Trains one of three regressors on synthetic customer data and logs it to the run that
`mlflow run` created (MLFLOW_RUN_ID): parameters, test metrics and the model."""

import argparse

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

MODELS = {
    "linear_regression": lambda: LinearRegression(),
    "random_forest": lambda: RandomForestRegressor(n_estimators=50, random_state=0),
    "gradient_boosting": lambda: GradientBoostingRegressor(random_state=0),
}


def data(n):
    """Monthly spend of `n` synthetic customers from age, visits and discount: partly
    non-linear, so the tree models have something to find."""
    rng = np.random.default_rng(42)
    age = rng.integers(18, 80, n).astype("float64")
    visits = rng.poisson(4.0, n).astype("float64")
    discount = rng.choice([0.0, 0.1, 0.2], n)
    spend = 20 + 3 * visits + np.where(age > 50, 15.0, 0.0) - 40 * discount
    X = pd.DataFrame({"age": age, "visits": visits, "discount": discount})
    return X, spend + rng.normal(0, 1.0, n)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-type", choices=sorted(MODELS), default="linear_regression")
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--test-size", type=float, default=0.25)
    args = parser.parse_args()

    X, y = data(args.n_samples)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=0
    )
    model = MODELS[args.model_type]().fit(X_train, y_train)
    predictions = model.predict(X_test)

    # `mlflow run` passes MLFLOW_RUN_ID: this joins its run rather than starting another.
    with mlflow.start_run():
        mlflow.log_metric("rmse", float(np.sqrt(mean_squared_error(y_test, predictions))))
        mlflow.log_metric("r2", float(r2_score(y_test, predictions)))
        # cloudpickle: skops (the default) refuses to reload the tree models it just saved.
        mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X_test, predictions),
            serialization_format="cloudpickle",
        )
    print(f"{args.model_type}: r2={r2_score(y_test, predictions):.3f}")


if __name__ == "__main__":
    main()
