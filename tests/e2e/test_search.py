"""search_runs (DataFrame and list) and search_experiments: filter grammar, order_by, view
types and paging, against a small fixed data set built once per module."""

import time
from types import SimpleNamespace

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from e2e_support import backend_choice, unique_name

T0 = 1_600_000_000_000

# name: (metrics, params, tags, status, start offset)
RUNS = {
    "alpha-1": (
        {"acc": 0.9, "loss": 0.3, "val acc": 0.7},
        {"model": "cnn", "lr": "0.01", "group": "a"},
        {"team": "vision", "my key": "has space"},
        "FINISHED",
        1000,
    ),
    "alpha-2": (
        {"acc": 0.8, "loss": 0.5},
        {"model": "rnn", "lr": "0.1", "group": "b"},
        {"team": "nlp"},
        "FAILED",
        2000,
    ),
    "beta-1": (
        {"acc": 0.95},
        {"model": "CNN-large", "group": "a"},
        {"team": "Vision"},
        "RUNNING",
        3000,
    ),
    "beta-2": (
        {"loss": 0.1},
        {"model": "mlp", "lr": "0.001", "group": "b"},
        {},
        "KILLED",
        4000,
    ),
}
ACTIVE = set(RUNS)


@pytest.fixture(scope="module")
def data(server):
    client = MlflowClient(tracking_uri=server.url)
    eid = client.create_experiment(unique_name("search"))
    ids = {}
    for name, (metrics, params, tags, status, offset) in RUNS.items():
        run = client.create_run(eid, run_name=name, start_time=T0 + offset, tags=tags)
        rid = run.info.run_id
        ids[name] = rid
        for step, (k, v) in enumerate(metrics.items()):
            # An older, lower-step value first: filters must see the latest value only.
            client.log_metric(rid, k, -100.0, timestamp=T0, step=0)
            client.log_metric(rid, k, v, timestamp=T0 + 1, step=1 + step)
        for k, v in params.items():
            client.log_param(rid, k, v)
        if status != "RUNNING":
            client.set_terminated(rid, status=status, end_time=T0 + offset + 500)
    gone = client.create_run(eid, run_name="gamma", start_time=T0 + 5000)
    client.log_metric(gone.info.run_id, "acc", 0.99)
    client.delete_run(gone.info.run_id)
    ids["gamma"] = gone.info.run_id
    return SimpleNamespace(client=client, eid=eid, ids=ids, names={v: k for k, v in ids.items()})


def names_of(data, runs):
    return [data.names[r.info.run_id] for r in runs]


def search_names(data, filter_string="", **kw):
    return names_of(data, data.client.search_runs([data.eid], filter_string, **kw))


FILTERS = [
    # metrics (latest value)
    ("metrics.acc > 0.85", {"alpha-1", "beta-1"}),
    ("metrics.acc >= 0.9", {"alpha-1", "beta-1"}),
    ("metrics.acc < 0.9", {"alpha-2"}),
    ("metrics.acc <= 0.9", {"alpha-1", "alpha-2"}),
    ("metrics.acc = 0.8", {"alpha-2"}),
    ("metrics.acc != 0.8", {"alpha-1", "beta-1"}),
    ("metrics.acc < -50", set()),
    ("metric.loss < 0.4 and metrics.acc > 0.5", {"alpha-1"}),
    ("metrics.`val acc` = 0.7", {"alpha-1"}),
    # params
    ("params.model = 'cnn'", {"alpha-1"}),
    ("param.model != 'cnn'", {"alpha-2", "beta-1", "beta-2"}),
    ("params.model LIKE 'cnn%'", {"alpha-1"}),
    ("params.model LIKE '%n'", {"alpha-1", "alpha-2"}),
    ("params.model ILIKE 'cnn%'", {"alpha-1", "beta-1"}),
    ("params.model LIKE '_nn'", {"alpha-1", "alpha-2"}),
    ('params.model = "rnn"', {"alpha-2"}),
    ("params.lr IS NULL", {"beta-1"}),
    ("params.lr IS NOT NULL", {"alpha-1", "alpha-2", "beta-2"}),
    ("params.lr = '0.01' AND params.group = 'a'", {"alpha-1"}),
    ("params.`lr` = '0.1'", {"alpha-2"}),
    # tags
    ("tags.team = 'vision'", {"alpha-1"}),
    ("tag.team ILIKE 'VISION'", {"alpha-1", "beta-1"}),
    ("tags.team LIKE 'V%'", {"beta-1"}),
    ("tags.team != 'nlp'", {"alpha-1", "beta-1"}),
    ("tags.team IS NULL", {"beta-2"}),
    ("tags.team IS NOT NULL", {"alpha-1", "alpha-2", "beta-1"}),
    ("tags.`my key` = 'has space'", {"alpha-1"}),
    ("tags.`my key` IS NULL", {"alpha-2", "beta-1", "beta-2"}),
    ("tags.`mlflow.runName` = 'beta-2'", {"beta-2"}),
    # attributes
    ("attributes.run_name = 'alpha-1'", {"alpha-1"}),
    ("attributes.run_name LIKE 'alpha%'", {"alpha-1", "alpha-2"}),
    ("run_name ILIKE 'BETA-%'", {"beta-1", "beta-2"}),
    ("attributes.run_name != 'alpha-1'", {"alpha-2", "beta-1", "beta-2"}),
    ("attributes.status = 'FAILED'", {"alpha-2"}),
    ("status != 'RUNNING'", {"alpha-1", "alpha-2", "beta-2"}),
    (f"attributes.start_time > {T0 + 2500}", {"beta-1", "beta-2"}),
    (f"attributes.start_time >= {T0 + 2000} AND attributes.start_time <= {T0 + 3000}", {"alpha-2", "beta-1"}),
    (f"attributes.start_time = {T0 + 1000}", {"alpha-1"}),
    (f"attributes.start_time != {T0 + 1000}", {"alpha-2", "beta-1", "beta-2"}),
    (f"attributes.start_time < {T0}", set()),
    (f"attributes.end_time <= {T0 + 2500}", {"alpha-1", "alpha-2"}),
    # combined
    ("metrics.acc > 0.5 AND params.model ILIKE '%cnn%' AND tags.team = 'Vision'", {"beta-1"}),
    ("", ACTIVE),
]


@pytest.mark.parametrize("filter_string,expected", FILTERS)
def test_search_runs_filter(data, filter_string, expected):
    assert set(search_names(data, filter_string)) == expected


def test_search_runs_run_id_in_and_not_in(data):
    a1, a2 = data.ids["alpha-1"], data.ids["alpha-2"]
    assert set(search_names(data, f"attributes.run_id IN ('{a1}', '{a2}')")) == {"alpha-1", "alpha-2"}
    assert set(search_names(data, f"run_id NOT IN ('{a1}')")) == ACTIVE - {"alpha-1"}
    assert set(search_names(data, f"attributes.run_id = '{a2}'")) == {"alpha-2"}


def test_search_runs_view_types(data):
    assert set(search_names(data, run_view_type=ViewType.ACTIVE_ONLY)) == ACTIVE
    assert set(search_names(data, run_view_type=ViewType.DELETED_ONLY)) == {"gamma"}
    assert set(search_names(data, run_view_type=ViewType.ALL)) == ACTIVE | {"gamma"}
    assert search_names(data, "metrics.acc > 0.98", run_view_type=ViewType.ALL) == ["gamma"]
    assert search_names(data, "metrics.acc > 0.98") == []


ORDERS = [
    ([], ["beta-2", "beta-1", "alpha-2", "alpha-1"]),  # default: start_time DESC
    (["metrics.acc DESC"], ["beta-1", "alpha-1", "alpha-2", "beta-2"]),  # missing last
    (["metrics.acc ASC"], ["alpha-2", "alpha-1", "beta-1", "beta-2"]),
    (["metrics.loss"], ["beta-2", "alpha-1", "alpha-2", "beta-1"]),
    (["params.model ASC"], ["beta-1", "alpha-1", "beta-2", "alpha-2"]),  # 'CNN-large' < 'cnn'
    (["params.model DESC"], ["alpha-2", "beta-2", "alpha-1", "beta-1"]),
    (["attributes.start_time ASC"], ["alpha-1", "alpha-2", "beta-1", "beta-2"]),
    (["attributes.start_time DESC"], ["beta-2", "beta-1", "alpha-2", "alpha-1"]),
    (["attributes.run_name DESC"], ["beta-2", "beta-1", "alpha-2", "alpha-1"]),
    (["attributes.status ASC"], ["alpha-2", "alpha-1", "beta-2", "beta-1"]),
    (["params.group ASC", "metrics.acc DESC"], ["beta-1", "alpha-1", "alpha-2", "beta-2"]),
    (["params.group DESC", "attributes.start_time ASC"], ["alpha-2", "beta-2", "alpha-1", "beta-1"]),
    (["tags.team ASC", "attributes.run_name ASC"], ["beta-1", "alpha-2", "alpha-1", "beta-2"]),
    (["params.`group` ASC", "metrics.`loss` DESC"], ["alpha-1", "beta-1", "alpha-2", "beta-2"]),
]


# Text that differs only in case ('CNN-large'/'cnn', 'Vision'/'vision'): MySQL's default
# collation orders it case-insensitively, for MLflow's Python server as for ours; equal
# values then fall to the next key.
MYSQL_ORDERS = {
    4: ["alpha-1", "beta-1", "beta-2", "alpha-2"],  # 'cnn' < 'CNN-large' < 'mlp' < 'rnn'
    5: ["alpha-2", "beta-2", "beta-1", "alpha-1"],
    12: ["alpha-2", "alpha-1", "beta-1", "beta-2"],  # 'nlp' < 'vision' = 'Vision', then name
}


@pytest.mark.parametrize(
    "order_by,expected",
    [
        (o, MYSQL_ORDERS[i] if i in MYSQL_ORDERS and backend_choice() == "mysql" else e)
        for i, (o, e) in enumerate(ORDERS)
    ],
)
def test_search_runs_order_by(data, order_by, expected):
    assert search_names(data, order_by=order_by) == expected


def test_search_runs_dataframe(tracking, data):
    df = mlflow.search_runs(
        experiment_ids=[data.eid],
        filter_string="metrics.acc > 0.5",
        order_by=["metrics.acc DESC"],
    )
    assert list(df["tags.mlflow.runName"]) == ["beta-1", "alpha-1", "alpha-2"]
    assert list(df["run_id"]) == [data.ids[n] for n in ["beta-1", "alpha-1", "alpha-2"]]
    assert list(df["metrics.acc"]) == pytest.approx([0.95, 0.9, 0.8])
    assert list(df["params.model"]) == ["CNN-large", "cnn", "rnn"]
    assert list(df["status"]) == ["RUNNING", "FINISHED", "FAILED"]
    assert list(df["experiment_id"]) == [data.eid] * 3
    for col in ("start_time", "end_time", "artifact_uri", "metrics.loss", "tags.team", "params.lr"):
        assert col in df.columns, col
    assert round(df["start_time"].iloc[2].timestamp() * 1000) == T0 + 2000  # pandas Timestamp

    everything = mlflow.search_runs(experiment_ids=[data.eid], run_view_type=ViewType.ALL)
    assert len(everything) == 5
    limited = mlflow.search_runs(experiment_ids=[data.eid], max_results=3)
    assert len(limited) == 3
    empty = mlflow.search_runs(experiment_ids=[data.eid], filter_string="metrics.acc > 10")
    assert len(empty) == 0


def test_search_runs_list_form(tracking, data):
    runs = mlflow.search_runs(
        experiment_ids=[data.eid],
        filter_string="params.lr IS NOT NULL",
        order_by=["params.lr DESC"],
        output_format="list",
    )
    assert isinstance(runs, list)
    assert names_of(data, runs) == ["alpha-2", "alpha-1", "beta-2"]
    first = runs[0]
    assert first.data.params["model"] == "rnn"
    assert first.data.metrics == {"acc": 0.8, "loss": 0.5}
    assert first.data.tags["team"] == "nlp"
    assert first.info.status == "FAILED"
    assert first.info.end_time == T0 + 2000 + 500

    by_name = mlflow.search_runs(
        experiment_names=[data.client.get_experiment(data.eid).name],
        filter_string="attributes.run_name = 'beta-1'",
        output_format="list",
    )
    assert names_of(data, by_name) == ["beta-1"]


@pytest.mark.parametrize("order_by", [[], ["metrics.acc DESC"], ["params.model ASC", "attributes.run_name DESC"]])
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_search_runs_paging(data, order_by, page_size):
    full = search_names(data, order_by=order_by, run_view_type=ViewType.ALL)
    assert len(full) == 5
    seen, token, pages = [], None, 0
    while True:
        page = data.client.search_runs(
            [data.eid],
            order_by=order_by,
            run_view_type=ViewType.ALL,
            max_results=page_size,
            page_token=token,
        )
        assert len(page) <= page_size
        seen += names_of(data, page)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages < 10, "paging does not terminate"
    assert seen == full
    assert pages == -(-5 // page_size) or (pages == 5 // page_size + 1 and 5 % page_size == 0)


def test_search_runs_multiple_experiments(data):
    other = data.client.create_experiment(unique_name("search-other"))
    rid = data.client.create_run(other, run_name="other-run").info.run_id
    data.client.log_metric(rid, "acc", 0.91)
    runs = data.client.search_runs([data.eid, other], "metrics.acc > 0.85", order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in runs] == [data.ids["beta-1"], rid, data.ids["alpha-1"]]


# ---------------------------------------------------------------- search_experiments


@pytest.fixture(scope="module")
def exps(server):
    client = MlflowClient(tracking_uri=server.url)
    prefix = unique_name("sx")
    ids = {}
    for suffix, tags in [("a", {"color": "red"}), ("b", {"color": "blue"}), ("c", {}), ("d", {"color": "red"})]:
        ids[suffix] = client.create_experiment(f"{prefix}-{suffix}", tags=tags)
        time.sleep(0.02)  # distinct creation_time
    client.delete_experiment(ids["d"])
    return SimpleNamespace(client=client, prefix=prefix, ids=ids)


def exp_suffixes(exps, **kw):
    return [e.name[len(exps.prefix) + 1 :] for e in exps.client.search_experiments(**kw)]


def test_search_experiments_filters(exps):
    p = exps.prefix
    like = f"name LIKE '{p}-%'"
    assert exp_suffixes(exps, filter_string=like) == ["c", "b", "a"]  # creation_time DESC
    assert sorted(exp_suffixes(exps, filter_string=like, view_type=ViewType.ALL)) == ["a", "b", "c", "d"]
    assert exp_suffixes(exps, filter_string=like, view_type=ViewType.DELETED_ONLY) == ["d"]
    assert exp_suffixes(exps, filter_string=f"name = '{p}-b'") == ["b"]
    assert exp_suffixes(exps, filter_string=f"attribute.name ILIKE '{p.upper()}-A'") == ["a"]
    assert exp_suffixes(exps, filter_string=f"{like} AND name != '{p}-b'") == ["c", "a"]
    assert exp_suffixes(exps, filter_string=f"{like} AND tags.color = 'red'") == ["a"]
    assert exp_suffixes(exps, filter_string=f"{like} AND tag.color != 'red'") == ["b"]
    assert exp_suffixes(exps, filter_string=f"{like} AND tags.color LIKE 'bl%'") == ["b"]
    assert exp_suffixes(exps, filter_string=f"{like} AND tags.color ILIKE 'RED'", view_type=ViewType.ALL) == [
        "d",
        "a",
    ]
    assert exp_suffixes(exps, filter_string=f"{like} AND tags.color IS NULL") == ["c"]
    assert exp_suffixes(exps, filter_string=f"{like} AND tags.color IS NOT NULL") == ["b", "a"]
    a, c = exps.ids["a"], exps.ids["c"]
    assert exp_suffixes(exps, filter_string=f"experiment_id IN ('{a}', '{c}')") == ["c", "a"]
    assert exp_suffixes(exps, filter_string=f"{like} AND experiment_id NOT IN ('{a}')") == ["c", "b"]
    created = exps.client.get_experiment(exps.ids["b"]).creation_time
    assert exp_suffixes(exps, filter_string=f"{like} AND creation_time >= {created}") == ["c", "b"]
    assert exp_suffixes(exps, filter_string=f"{like} AND creation_time < {created}") == ["a"]
    assert exp_suffixes(exps, filter_string=f"{like} AND last_update_time > 0") == ["c", "b", "a"]


def test_search_experiments_order_by(exps):
    like = f"name LIKE '{exps.prefix}-%'"
    assert exp_suffixes(exps, filter_string=like, order_by=["name ASC"]) == ["a", "b", "c"]
    assert exp_suffixes(exps, filter_string=like, order_by=["name DESC"]) == ["c", "b", "a"]
    assert exp_suffixes(exps, filter_string=like, order_by=["creation_time ASC"]) == ["a", "b", "c"]
    assert exp_suffixes(exps, filter_string=like, order_by=["experiment_id DESC"]) == ["c", "b", "a"]
    assert exp_suffixes(
        exps, filter_string=like, order_by=["last_update_time DESC", "name ASC"], view_type=ViewType.ALL
    )[0] == "d"  # deleting updates last_update_time


def test_search_experiments_experiment_id_order_is_numeric(server):
    client = MlflowClient(tracking_uri=server.url)
    prefix = unique_name("sxnum")
    ids = [client.create_experiment(f"{prefix}-{i}") for i in range(12)]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["experiment_id ASC"])
    assert [e.experiment_id for e in found] == sorted(ids, key=int)


def test_search_experiments_paging(exps):
    like = f"name LIKE '{exps.prefix}-%'"
    full = exp_suffixes(exps, filter_string=like, view_type=ViewType.ALL, order_by=["name ASC"])
    assert full == ["a", "b", "c", "d"]
    seen, token = [], None
    for _ in range(10):
        page = exps.client.search_experiments(
            filter_string=like, view_type=ViewType.ALL, order_by=["name ASC"], max_results=3, page_token=token
        )
        assert len(page) <= 3
        seen += [e.name[len(exps.prefix) + 1 :] for e in page]
        token = page.token
        if not token:
            break
    assert seen == full


def test_search_experiments_default_includes_default(server):
    client = MlflowClient(tracking_uri=server.url)
    found = client.search_experiments(filter_string="name = 'Default'")
    assert [(e.experiment_id, e.name) for e in found] == [("0", "Default")]


def test_search_experiments_fluent(tracking, exps):
    found = mlflow.search_experiments(filter_string=f"name LIKE '{exps.prefix}-%'", order_by=["name ASC"])
    assert [e.experiment_id for e in found] == [exps.ids[s] for s in "abc"]
    assert found[0].tags["color"] == "red"


def test_search_runs_bad_filter_rejected(data):
    for bad in ["metrics.acc >", "params.model = cnn", "foo.bar = 'x'", "metrics.acc > 1 OR metrics.acc < 0"]:
        with pytest.raises(MlflowException) as e:
            data.client.search_runs([data.eid], bad)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE", bad
