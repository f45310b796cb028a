"""The registry under several server processes on one PostgreSQL / MariaDB database (and two
on one SQLite file): racing creations of one registered model give exactly one success, and
version numbers computed by concurrent writers through both servers never repeat or skip."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from e2e_support import Database, ServerProcess, our_binary, unique_name

API = "/api/2.0/mlflow"
WRITERS = 16
PER_WRITER = 5


def post(session, url, path, body):
    return session.post(url + API + path, json=body, timeout=120)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def two_servers(request, workdir):
    db = None
    if request.param == "sqlite":
        uri = f"sqlite:///{workdir / 'shared.db'}"
        first = ServerProcess(our_binary(), workdir / "s0", backend_uri=uri)
        servers = [first]
        try:
            servers.append(ServerProcess(our_binary(), workdir / "s1", backend_uri=uri))
            yield servers
        finally:
            for s in servers:
                s.stop()
        return
    db = Database(request.param, prefix="mlflow_regmulti")
    servers = []
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(ServerProcess, our_binary(), workdir / f"s{i}", backend_uri=db.uri)
                for i in range(2)
            ]
            servers = [f.result() for f in futures]
        yield servers
    finally:
        for s in servers:
            s.stop()
        db.drop()


def new_run(session, urls, prefix):
    """A run in a new experiment: the experiment made through one server, the run through the
    other."""
    eid = post(session, urls[0], "/experiments/create", {"name": unique_name(prefix)}).json()["experiment_id"]
    return post(session, urls[1], "/runs/create", {"experiment_id": eid}).json()["run"]["info"]["run_id"]


def test_registry_races_across_servers(two_servers):
    urls = [s.url for s in two_servers]
    s = requests.Session()
    run_id = new_run(s, urls, "regmulti")

    # One name, created by every writer at once through both servers: one success.
    name = unique_name("race")
    barrier = threading.Barrier(WRITERS, timeout=120)

    def create(i):
        session = requests.Session()
        barrier.wait()
        return post(session, urls[i % 2], "/registered-models/create", {"name": name})

    with ThreadPoolExecutor(WRITERS) as pool:
        responses = list(pool.map(create, range(WRITERS)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [400] * (WRITERS - 1), [r.text[:200] for r in responses]
    assert {r.json()["error_code"] for r in responses if r.status_code == 400} == {
        "RESOURCE_ALREADY_EXISTS"
    }

    # Versions created concurrently through both servers: 1..N, each exactly once.
    barrier = threading.Barrier(WRITERS, timeout=120)

    def versions(i):
        session = requests.Session()
        barrier.wait()
        got = []
        for _ in range(PER_WRITER):
            r = post(
                session,
                urls[i % 2],
                "/model-versions/create",
                {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
            )
            assert r.status_code == 200, r.text
            got.append(int(r.json()["model_version"]["version"]))
        return got

    with ThreadPoolExecutor(WRITERS) as pool:
        numbers = sorted(n for got in pool.map(versions, range(WRITERS)) for n in got)
    assert numbers == list(range(1, WRITERS * PER_WRITER + 1))
    r = requests.get(
        urls[0] + API + "/model-versions/search",
        params={"filter": f"name = '{name}'", "max_results": 1000},
        timeout=60,
    )
    assert len(r.json()["model_versions"]) == WRITERS * PER_WRITER


def test_mixed_registry_writes_across_servers(two_servers):
    """Creations, stage transitions with archiving, alias moves and tag writes on one model
    at once through both servers: no deadlock or lock timeout reaches a client, and the
    model ends consistent (at most one version in Production)."""
    urls = [s.url for s in two_servers]
    s = requests.Session()
    run_id = new_run(s, urls, "regmix")
    name = unique_name("mixed")
    assert post(s, urls[0], "/registered-models/create", {"name": name}).status_code == 200
    source = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
    for _ in range(4):
        assert post(s, urls[0], "/model-versions/create", source).status_code == 200
    barrier = threading.Barrier(WRITERS, timeout=120)

    def writer(i):
        session = requests.Session()
        url = urls[i % 2]
        barrier.wait()
        for j in range(PER_WRITER):
            op = (i + j) % 4
            if op == 0:
                r = post(session, url, "/model-versions/create", source)
            elif op == 1:
                r = post(
                    session,
                    url,
                    "/model-versions/transition-stage",
                    {
                        "name": name,
                        "version": str(1 + (i + j) % 4),
                        "stage": "Production",
                        "archive_existing_versions": True,
                    },
                )
            elif op == 2:
                r = post(
                    session,
                    url,
                    "/registered-models/alias",
                    {"name": name, "alias": f"a{i % 3}", "version": str(1 + j % 4)},
                )
            else:
                r = post(
                    session,
                    url,
                    "/model-versions/set-tag",
                    {"name": name, "version": str(1 + i % 4), "key": "k", "value": str(j)},
                )
            assert r.status_code == 200, (op, r.status_code, r.text[:300])

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(writer, range(WRITERS)))
    r = requests.get(
        urls[1] + API + "/model-versions/search",
        params={"filter": f"name = '{name}'", "max_results": 1000},
        timeout=60,
    )
    versions = r.json()["model_versions"]
    numbers = sorted(int(v["version"]) for v in versions)
    assert numbers == list(range(1, len(numbers) + 1))
    assert sum(v["current_stage"] == "Production" for v in versions) <= 1
