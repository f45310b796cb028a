"""MLflow's own web UI, served by our binary, in Debian's chromium (headless, driven by
playwright) with data logged by the official client: experiments list, runs table with a
typed filter and sorting, run page with its metric chart, compare of three runs, artifact
views of a text file and a PNG, a logged model's artifacts, a registered model with versions,
a stage and an alias.

Every page fails its test on a console error or on a 4xx/5xx answer to a request the UI made,
except `users/current` (404 without basic auth, as MLflow answers it). Screenshots go to
pytest's temporary folder, printed at the end (MLFLOW_UI_SCREENSHOTS chooses one)."""

import os
import shutil
import sys
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import REPO, ServerProcess, our_binary  # noqa: E402

BUNDLE = next((REPO / ".venv/lib").glob("python3*/site-packages/mlflow/server/js/build"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# MLflow answers it 404 too when basic auth is off; the UI expects that.
ALLOWED_FAILURES = ("/ajax-api/2.0/mlflow/users/current",)
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    # pytest's temporary folders: the last three sessions' are kept, older ones removed.
    chosen = os.environ.get("MLFLOW_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nscreenshots in {folder}")


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Our server with the UI, and what the official client logged into it."""
    import mlflow
    from mlflow import MlflowClient
    from PIL import Image

    srv = ServerProcess(our_binary(), tmp_path_factory.mktemp("ui-browser"), extra_args=["--ui-dir", str(BUNDLE)])
    try:
        mlflow.set_tracking_uri(srv.url)
        exp_id = mlflow.create_experiment("ui-browser")
        runs = []
        for i in range(3):
            with mlflow.start_run(experiment_id=exp_id, run_name=f"trial-{i}") as run:
                mlflow.log_params({"lr": f"0.{i + 1}", "depth": str(i + 2)})
                for step in range(10):
                    mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
                mlflow.log_metric("accuracy", 0.7 + 0.1 * i)
                runs.append(run.info.run_id)
        with mlflow.start_run(run_id=runs[0]):
            mlflow.log_text("hello from the browser test\n", "notes/readme.txt")
            mlflow.log_image(Image.new("RGB", (64, 48), (200, 30, 30)), "plots/red.png")
            mlflow.log_text("artifact_path: model\nflavors:\n  python_function: {}\n", "model/MLmodel")
        client = MlflowClient(srv.url)
        client.create_registered_model("ui-browser-model", description="seen in chromium")
        for _ in range(2):
            client.create_model_version("ui-browser-model", f"runs:/{runs[0]}/model", run_id=runs[0])
        client.transition_model_version_stage("ui-browser-model", "1", "Production")
        client.set_registered_model_alias("ui-browser-model", "champion", "2")
        model = client.create_logged_model(exp_id, name="ui-browser-logged")
        src = tmp_path_factory.mktemp("logged-model")
        (src / "MLmodel").write_text(f"artifact_path: model\nmodel_id: {model.model_id}\n")
        (src / "notes.txt").write_text("logged model notes in chromium\n")
        client.log_model_artifacts(model.model_id, str(src))
        yield {"server": srv, "exp": exp_id, "runs": runs, "model": model.model_id}
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, logged, shots, request):
    """A fresh page; after the test, a screenshot, and no console error nor failed request."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    problems = []
    pg.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_response(r):
        path = urllib.parse.urlsplit(r.url).path
        if r.url.startswith(logged["server"].url) and r.status >= 400 and path not in ALLOWED_FAILURES:
            problems.append(f"{r.status} {r.request.method} {r.url}")

    pg.on("response", on_response)
    yield pg
    pg.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()
    # users/current's expected 404 is logged by chromium as a console error too.
    problems = [p for p in problems if not ("404" in p and p.startswith("console: Failed to load resource"))]
    assert not problems, "\n".join(problems)


def goto(page, logged, fragment):
    page.goto(f"{logged['server'].url}/#{fragment}")


def test_experiments_list(page, logged):
    goto(page, logged, "/experiments")
    page.get_by_text("ui-browser", exact=True).wait_for()
    assert page.get_by_text("Default", exact=True).count() >= 1


def runs_in_table(page):
    return [n for n in ("trial-0", "trial-1", "trial-2") if page.get_by_text(n, exact=True).count()]


def test_runs_table_filter_and_sort(page, logged):
    goto(page, logged, f"/experiments/{logged['exp']}/runs")
    page.get_by_text("trial-2", exact=True).first.wait_for()
    assert runs_in_table(page) == ["trial-0", "trial-1", "trial-2"]
    # Params and metrics are columns of the table.
    page.get_by_text("3 matching runs").wait_for()
    box = page.get_by_test_id("search-box")
    box.fill("params.lr = '0.2'")
    box.press("Enter")
    page.get_by_text("1 matching runs").or_(page.get_by_text("1 matching run")).first.wait_for()
    assert runs_in_table(page) == ["trial-1"]
    # Sorted by the metric, ascending then descending: the rows come in that order.
    for ascending, expected in (("true", ["trial-0", "trial-1", "trial-2"]), ("false", ["trial-2", "trial-1", "trial-0"])):
        goto(page, logged, f"/experiments/{logged['exp']}/runs?orderByKey=metrics.%60accuracy%60&orderByAsc={ascending}")
        page.get_by_text("3 matching runs").wait_for()
        page.get_by_text("trial-0", exact=True).first.wait_for()
        rows = sorted(expected, key=lambda n: page.get_by_text(n, exact=True).first.bounding_box()["y"])
        assert rows == expected, rows


def test_run_page_with_metric_chart(page, logged):
    run = logged["runs"][0]
    goto(page, logged, f"/experiments/{logged['exp']}/runs/{run}")
    page.get_by_text("trial-0").first.wait_for()
    for text in ("lr", "0.1", "depth", "loss", "accuracy"):
        assert page.get_by_text(text, exact=True).count() >= 1, text
    goto(page, logged, f"/experiments/{logged['exp']}/runs/{run}/model-metrics")
    page.locator("canvas, svg.main-svg").first.wait_for()
    assert page.get_by_text("loss").count() >= 1


def test_compare_three_runs(page, logged):
    runs = urllib.parse.quote(str(logged["runs"]).replace("'", '"'))
    exps = urllib.parse.quote(f'["{logged["exp"]}"]')
    goto(page, logged, f"/compare-runs?runs={runs}&experiments={exps}")
    for name in ("trial-0", "trial-1", "trial-2"):
        page.get_by_text(name).first.wait_for()
    # Parameter and metric rows for every run.
    assert page.get_by_text("lr").count() >= 1 and page.get_by_text("accuracy").count() >= 1
    page.locator("canvas, svg.main-svg, .js-plotly-plot").first.wait_for()


def test_artifacts_text_and_png(page, logged):
    run = logged["runs"][0]
    goto(page, logged, f"/experiments/{logged['exp']}/runs/{run}/artifacts/notes/readme.txt")
    page.get_by_text("hello from the browser test").wait_for()
    goto(page, logged, f"/experiments/{logged['exp']}/runs/{run}/artifacts")
    page.get_by_text("plots", exact=True).first.click()
    page.get_by_text("red.png", exact=True).first.click()
    # The image is fetched through /get-artifact and shown decoded at its own size.
    page.wait_for_function(
        "() => [...document.images].some(i => i.complete && i.naturalWidth === 64 && i.naturalHeight === 48)"
    )


def test_logged_model_artifacts(page, logged):
    """The logged model page's artifact tab lists through `logged-models/{id}/artifacts/
    directories` and shows a file through `artifacts/files`."""
    goto(page, logged, f"/experiments/{logged['exp']}/models/{logged['model']}/artifacts")
    page.get_by_text("notes.txt", exact=True).first.click()
    page.get_by_text("logged model notes in chromium").wait_for()
    assert page.get_by_text("MLmodel", exact=True).count() >= 1


def test_registered_model_versions_stage_alias(page, logged):
    goto(page, logged, "/models")
    page.get_by_text("ui-browser-model").first.wait_for()
    goto(page, logged, "/models/ui-browser-model")
    page.get_by_text("Version 2").first.wait_for()
    assert page.get_by_text("Version 1").count() >= 1
    assert page.get_by_text("champion").count() >= 1
    assert page.get_by_text("seen in chromium").count() >= 1
    goto(page, logged, "/models/ui-browser-model/versions/1")
    page.get_by_text("Production").first.wait_for()
