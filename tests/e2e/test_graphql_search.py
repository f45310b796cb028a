"""The UI's GraphQL `SearchRuns` with each run's `modelVersions`, on every backend: the
versions of a whole page are read in batched searches (not one search per run), and each
run must still get exactly the versions, in the order, that a search by its own run id
returns. The page spans more than one batch (500 run ids)."""

import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))

from test_graphql import bundle_query  # noqa: E402

RUNS = 503


def test_search_runs_model_versions_match_per_run_search(client, experiment_id, tracking):
    runs = [client.create_run(experiment_id, run_name=f"mv-{i}").info.run_id for i in range(RUNS)]
    a, b = f"gql-a-{experiment_id}", f"gql-b-{experiment_id}"
    client.create_registered_model(a)
    client.create_registered_model(b)
    # run 0 has versions of both models (two of a), runs 250 and 502 one each; the batches
    # of 500 put runs 0 and 250 in one and 502 in the next, whatever the page's order
    for name, run in [(a, runs[0]), (a, runs[0]), (b, runs[0]), (b, runs[250]), (a, runs[502])]:
        client.create_model_version(name, f"runs:/{run}/model", run_id=run)

    r = requests.post(tracking.url + "/graphql", json={
        "query": bundle_query("SearchRuns"),
        "operationName": "SearchRuns",
        "variables": {"data": {"experimentIds": [experiment_id], "maxResults": 1000,
                               "runViewType": "ACTIVE_ONLY", "orderBy": ["attributes.start_time DESC"]}},
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["errors"] is None, body["errors"]
    page = body["data"]["mlflowSearchRuns"]["runs"]
    got = {run["info"]["runUuid"]: [(v["name"], v["version"]) for v in run["modelVersions"]] for run in page}
    assert sorted(got) == sorted(runs)

    def per_run(run):
        return [(v.name, v.version) for v in client.search_model_versions(f"run_id='{run}'")]

    assert got[runs[0]] == per_run(runs[0])
    assert sorted(got[runs[0]]) == [(a, "1"), (a, "2"), (b, "1")]
    assert got[runs[250]] == per_run(runs[250]) == [(b, "2")]
    assert got[runs[502]] == per_run(runs[502]) == [(a, "3")]
    assert all(got[run] == [] for run in runs if run not in (runs[0], runs[250], runs[502]))
    # the other fields of a version come through the batch as well
    (v,) = [v for run in page if run["info"]["runUuid"] == runs[502] for v in run["modelVersions"]]
    (want,) = client.search_model_versions(f"run_id='{runs[502]}'")
    assert v["source"] == want.source and v["status"] == "READY"
    assert v["creationTimestamp"].isdigit()
