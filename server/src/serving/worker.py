"""A Python worker of `mlflow models serve` (the Rust front starts one per --workers).

It loads one pyfunc model and answers batches of scoring jobs read from stdin; every message
is a 4-byte big-endian length and a JSON document. Frames (tabular requests) with the same
columns and no params are predicted together in one call of the model and the predictions
split back per request; a batch that fails, or whose predictions cannot be split by row, is
predicted request by request through MLflow's own scoring function, so every request gets
exactly the answer `mlflow models serve` would give it. What the model prints goes to stderr.
"""

import base64
import io
import json
import os
import struct
import sys
import traceback


def main():
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    read = sys.stdin.buffer

    def send(obj):
        data = json.dumps(obj).encode()
        out.write(struct.pack(">I", len(data)) + data)

    def receive():
        header = read.read(4)
        if len(header) < 4:
            return None
        (n,) = struct.unpack(">I", header)
        return json.loads(read.read(n))

    os.environ["_MLFLOW_IS_IN_SERVING_ENVIRONMENT"] = "true"
    from mlflow.pyfunc import scoring_server as ss

    model = ss.load_model_with_mlflow_config(sys.argv[1])
    schema = model.metadata.get_input_schema()
    send({"ready": True, "python": sys.version.split()[0]})
    while True:
        msg = receive()
        if msg is None:
            return
        send({"results": score(ss, model, schema, msg["jobs"])})


def answer(ss, model, schema, body, content_type):
    """One request through MLflow's scoring function, with its error handling."""
    from mlflow.exceptions import MlflowException

    try:
        r = ss.invocations(body, content_type, model, schema)
        return {"status": r.status, "body": r.response, "content_type": r.mimetype}
    except MlflowException as e:
        return {
            "status": e.get_http_status_code(),
            "body": e.serialize_as_json(),
            "content_type": "application/json",
        }
    except Exception:
        traceback.print_exc()
        return {"status": 500, "body": "Internal Server Error", "content_type": "text/plain"}


def solo(ss, model, schema, job):
    kind = job["kind"]
    if kind == "frame":
        body = {"dataframe_split": {"columns": job["columns"], "data": job["data"]}}
        if job.get("params") is not None:
            body["params"] = job["params"]
        return answer(ss, model, schema, json.dumps(body), "application/json")
    if kind == "bytes":
        return answer(ss, model, schema, base64.b64decode(job["body"]), job["content_type"])
    return answer(ss, model, schema, job["body"], job["content_type"])


def split(raw, counts):
    """Per-request slices of batched predictions, or None when they are not row-aligned."""
    import numpy as np
    import pandas as pd

    total = sum(counts)
    if isinstance(raw, (pd.DataFrame, pd.Series)):
        if len(raw) != total:
            return None
        take = lambda a, b: raw.iloc[a:b]  # noqa: E731
    elif isinstance(raw, np.ndarray) and raw.ndim >= 1 and raw.shape[0] == total:
        take = lambda a, b: raw[a:b]  # noqa: E731
    elif isinstance(raw, list) and len(raw) == total:
        take = lambda a, b: raw[a:b]  # noqa: E731
    else:
        return None
    slices, start = [], 0
    for n in counts:
        slices.append(take(start, start + n))
        start += n
    return slices


def batch(ss, model, schema, jobs):
    """Predicts frames with equal columns in one call; None when that is not possible."""
    from mlflow.utils.proto_json_utils import dataframe_from_parsed_json

    rows = [row for job in jobs for row in job["data"]]
    try:
        df = dataframe_from_parsed_json(
            {"columns": jobs[0]["columns"], "data": rows}, pandas_orient="split", schema=schema
        )
        raw = model.predict(df)
    except Exception:
        return None
    slices = split(raw, [len(job["data"]) for job in jobs])
    if slices is None:
        return None
    results = []
    for part in slices:
        buf = io.StringIO()
        ss.predictions_to_json(part, buf)
        results.append({"status": 200, "body": buf.getvalue(), "content_type": "application/json"})
    return results


def score(ss, model, schema, jobs):
    results = [None] * len(jobs)
    groups = {}
    for i, job in enumerate(jobs):
        if job["kind"] == "frame" and job.get("params") is None:
            groups.setdefault(tuple(job["columns"]), []).append(i)
        else:
            results[i] = solo(ss, model, schema, job)
    for members in groups.values():
        batched = None
        if len(members) > 1:
            batched = batch(ss, model, schema, [jobs[i] for i in members])
        if batched is None:
            batched = [solo(ss, model, schema, jobs[i]) for i in members]
        for i, r in zip(members, batched):
            results[i] = r
    return results


if __name__ == "__main__":
    main()
