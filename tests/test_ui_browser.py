"""Browser tests of ``hpolab ui``: the MLflow UI lists a study's parent run and its trials,
shows a pruned trial as finished (not failed) and renders the study's interactive plots;
optuna-dashboard names the study's objective by its metric.

Runs a tiny study once, serves it with ``hpolab ui --dashboard`` and checks the pages in a
real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import run_cli

if TYPE_CHECKING:
    from playwright.sync_api import Locator

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = 'install them with: apt-get install chromium; pip install -e ".[dev]"'
STUDY = "webui"
TRIALS = [f"mlp-trial-{n}" for n in range(3)]
METRIC = "val_loss"
STARTUP_TIMEOUT_S = 90
UI_TIMEOUT_MS = 30_000
# MLflow 3's runs table (ag-grid) has no accessible name on the button that expands a parent
# run's children; its generated component id is the only stable hook.
EXPANDER = "button[data-component-id*='runnamecellrenderer']"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _stop_process_group(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``hpolab ui`` and everything it started (mlflow, uvicorn, job runners)."""
    pgid = server.pid  # started with start_new_session=True: it leads its own group
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        server.poll()  # reap the leader so it does not linger as a zombie
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    server.wait(timeout=10)


@contextmanager
def _hpolab_ui(root: Path, log: Path) -> Iterator[tuple[str, str]]:
    """Serve ``root`` with ``hpolab ui --dashboard``; yield both base URLs once they answer."""
    port, dashboard_port = _free_port(), _free_port()
    base, dashboard = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}"
    command = [sys.executable, "-m", "hpolab.cli.main", "ui", "--root", str(root)]
    command += ["--dashboard", "--study", STUDY, "--dashboard-port", str(dashboard_port)]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=out,  # a file, not a pipe: MLflow logs every request and must never block
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for url in (f"{base}/", f"{dashboard}/api/studies"):
            while True:
                try:
                    _get(url)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        state = "still running" if server.returncode is None else "exited"
                        pytest.fail(
                            f"hpolab ui did not answer on {url} within {STARTUP_TIMEOUT_S} s "
                            f"({state}, code {server.returncode})\n--- server output ---\n"
                            f"{log.read_text(errors='replace')}"
                        )
                    time.sleep(0.5)
        yield base, dashboard
    finally:
        _stop_process_group(server)


def _artifacts_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("HPOLAB_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _check_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(f"playwright is not installed; {INSTALL_HINT}", pytrace=False)
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing; {INSTALL_HINT}", pytrace=False)


# A learning rate from 1e-5 (hardly learns) to 1e-1, random with this seed: the median
# pruner stops some trials after their warm-up.
CONFIG = f"""
study: {{name: {STUDY}, sampler: random, pruner: median, n_trials: 8, seed: 3, metric: {METRIC}}}
data: {{source: "builtin:breast_cancer"}}
training: {{epochs: 5, patience: 5}}
models:
  mlp:
    search_space:
      hidden_layers: [[4]]
      learning_rate: {{low: 1.0e-5, high: 1.0e-1, log: true}}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A root with a tiny study, served by one ``hpolab ui --dashboard`` for the module."""
    _check_browser()
    root = tmp_path_factory.mktemp("webui")
    (root / "webui.yaml").write_text(CONFIG)
    run_cli("--config", str(root / "webui.yaml"), "-q", root=root, timeout=300, check=True)
    with _hpolab_ui(root, root / "hpolab_ui.log") as (base, dashboard):
        yield root, base, dashboard


@pytest.mark.slow
@pytest.mark.xdist_group("ui_browser")
def test_mlflow_ui_lists_the_study_run_and_its_trials(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as page actions: a loaded machine renders slowly.
    expect.set_options(timeout=UI_TIMEOUT_MS)

    _, base, _ = served
    screenshot = _artifacts_dir(tmp_path) / "mlflow_ui_runs.png"

    with sync_playwright() as pw:
        query = urllib.parse.urlencode({"experiment_name": STUDY})
        found = json.loads(_get(f"{base}/ajax-api/2.0/mlflow/experiments/get-by-name?{query}"))
        experiment_id = found["experiment"]["experiment_id"]

        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            # "#/experiments/<id>" alone redirects to the GenAI overview; "/runs" is the table.
            page.goto(f"{base}/#/experiments/{experiment_id}/runs")
            rows = page.get_by_role("row")  # scoping to rows skips the breadcrumb's "webui"

            def run_link(name: str) -> Locator:
                return rows.get_by_role("link", name=name, exact=True)

            expect(run_link(STUDY)).to_be_visible(timeout=UI_TIMEOUT_MS)
            if not run_link(TRIALS[0]).is_visible():  # children start collapsed
                parent_row = rows.filter(has=page.get_by_role("link", name=STUDY, exact=True))
                parent_row.locator(EXPANDER).click()
            for trial in TRIALS:
                expect(run_link(trial)).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    print(f"MLflow UI screenshot: {screenshot}")
    assert screenshot.is_file() and screenshot.stat().st_size > 0, screenshot


@pytest.mark.slow
@pytest.mark.xdist_group("ui_browser")
def test_dashboard_names_the_objective_by_the_study_metric(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    import optuna
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as page actions: a loaded machine renders slowly.
    expect.set_options(timeout=UI_TIMEOUT_MS)

    root, _, dashboard = served
    storage = f"sqlite:///{root / 'hpo_studies' / f'{STUDY}.db'}"
    assert optuna.load_study(study_name=f"{STUDY}.mlp", storage=storage).metric_names == [METRIC]
    studies = json.loads(_get(f"{dashboard}/api/studies"))["study_summaries"]
    study_id = next(s["study_id"] for s in studies if s["study_name"] == f"{STUDY}.mlp")
    screenshot = _artifacts_dir(tmp_path) / "optuna_dashboard_history.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{dashboard}/dashboard/studies/{study_id}")
            # The history plot's y axis (a Plotly SVG title) reads "Objective 0" unnamed.
            expect(page.locator("text.ytitle", has_text=METRIC)).to_be_visible()
            expect(page.get_by_text("Objective 0")).to_have_count(0)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    print(f"optuna-dashboard screenshot: {screenshot}")
    assert screenshot.is_file() and screenshot.stat().st_size > 0, screenshot


def _runs(base: str, experiment_id: str) -> list[dict]:
    body = json.dumps({"experiment_ids": [experiment_id], "max_results": 100}).encode()
    request = urllib.request.Request(
        f"{base}/ajax-api/2.0/mlflow/runs/search",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["runs"]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


@pytest.mark.slow
@pytest.mark.xdist_group("ui_browser")
def test_a_pruned_trial_reads_finished_and_the_plots_page_renders(
    served: tuple[Path, str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as page actions: a loaded machine renders slowly.
    expect.set_options(timeout=UI_TIMEOUT_MS)

    _, base, _ = served
    query = urllib.parse.urlencode({"experiment_name": STUDY})
    found = json.loads(_get(f"{base}/ajax-api/2.0/mlflow/experiments/get-by-name?{query}"))
    experiment_id = found["experiment"]["experiment_id"]
    runs = _runs(base, experiment_id)
    pruned = [r for r in runs if _tags(r).get("hpolab.state") == "pruned"]
    assert pruned, "the seeded study prunes at least one trial"
    parent = next(r for r in runs if _tags(r).get("hpolab.role") == "study")
    shots = _artifacts_dir(tmp_path)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            run_id = pruned[0]["info"]["run_id"]
            page.goto(f"{base}/#/experiments/{experiment_id}/runs/{run_id}")
            # The run page's "About this run" reads Finished; Failed or Killed would be red.
            expect(page.get_by_text("Finished", exact=True)).to_be_visible()
            expect(page.get_by_text("Failed", exact=True)).to_have_count(0)
            expect(page.get_by_text("Killed", exact=True)).to_have_count(0)
            page.screenshot(path=str(shots / "mlflow_pruned_trial.png"), full_page=True)

            artifact = f"visualizations/{STUDY}_plots.html"
            parent_id = parent["info"]["run_id"]
            page.goto(f"{base}/#/experiments/{experiment_id}/runs/{parent_id}/artifacts/{artifact}")
            # MLflow previews HTML in an iframe; plotly draws each figure as an SVG there.
            figures = page.frame_locator("iframe").locator(".js-plotly-plot svg.main-svg")
            expect(figures.first).to_be_visible()
            assert figures.count() >= 5, figures.count()
            page.screenshot(path=str(shots / "mlflow_plots_page.png"), full_page=True)
        finally:
            browser.close()
