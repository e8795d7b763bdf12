"""The ``hpolab`` study subcommands against a real small study made here (temp root)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import completed_in_process, run_cli, write_csv

from hpolab.reporting.plots import PLOTS

# One worker runs the whole module: its tests share the study made by the fixture.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(name="study_ops")]

STUDY = "ops"
N_TRIALS = 5


def hpolab(*args: str, root: Path) -> subprocess.CompletedProcess:
    """Run ``hpolab ARGS --root ROOT`` from ROOT, without a terminal (stdin empty).

    In this process: the console command's own ``main``, without a new interpreter and
    TensorFlow import per call; the console script itself is tested in test_cli_more.
    """
    from hpolab.cli.main import main

    return completed_in_process(main, *args, "--root", str(root), cwd=root, columns=200)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


# Session scope: with tests of other modules interleaved on the worker, a module-scoped
# fixture would be torn down and built again; the xdist group keeps it on one worker.
@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study with two model types, plots, final models and MLflow runs."""
    base = tmp_path_factory.mktemp("ops")
    data = write_csv(base / "data.csv", n=200)
    run_cli(
        "--study-name",
        STUDY,
        "--data",
        str(data),
        "--target",
        "label",
        "--models",
        "mlp,cnn1d",
        "--n-trials",
        str(N_TRIALS),
        "--epochs",
        "3",
        "--seed",
        "3",
        "--metric",
        "val_loss",
        "-q",
        root=base,
        check=True,
    )
    return base


def test_studies_lists_every_study_with_progress(root):
    table = ok(hpolab("studies", root=root)).stdout
    assert STUDY in table and "mlp" in table and "cnn1d" in table
    assert f"{N_TRIALS}/{N_TRIALS}" in table
    rows = json.loads(ok(hpolab("studies", "--json", root=root)).stdout)
    assert [r["study"] for r in rows] == [STUDY]
    assert rows[0]["state"] == "finished"
    assert {m["model_type"] for m in rows[0]["model_types"]} == {"mlp", "cnn1d"}


def test_status_counts_trials_per_state(root):
    status = json.loads(ok(hpolab("status", STUDY, "--json", root=root)).stdout)
    for mt, s in status["model_types"].items():
        assert s["complete"] + s["pruned"] + s["fail"] == s["trials_done"] == N_TRIALS, mt
        assert s["state"] == "finished" and s["eta_seconds"] == 0
        assert s["best_value"] is not None and s["seconds_spent"] > 0
    table = ok(hpolab("status", STUDY, root=root)).stdout
    assert "finished" in table and f"{N_TRIALS}/{N_TRIALS}" in table


def test_unknown_study_lists_the_known_ones(root):
    for command in ("status", "report", "delete"):
        proc = hpolab(command, "nope", root=root)
        assert proc.returncode == 2, command
        assert proc.stderr.startswith("error: study: no study 'nope'"), proc.stderr
        assert f"known studies: {STUDY}" in proc.stderr and "Traceback" not in proc.stderr


def test_best_gives_params_and_final_model(root):
    best = json.loads(ok(hpolab("best", STUDY, "--json", root=root)).stdout)
    assert set(best) == {"mlp", "cnn1d"}
    mlp = best["mlp"]
    assert mlp["metric"] == "val_loss" and mlp["direction"] == "minimize"
    assert "hidden_layers" in mlp["params"] and Path(mlp["final_model"]).exists()
    assert mlp["final_model_trial"] == mlp["best_trial"] and "accuracy" in mlp["test_metrics"]
    only = json.loads(
        ok(hpolab("best", STUDY, "--model-type", "cnn1d", "--json", root=root)).stdout
    )
    assert set(only) == {"cnn1d"}
    bad = hpolab("best", STUDY, "--model-type", "lstm", root=root)
    assert bad.returncode == 2 and "has no model type 'lstm'; it has mlp, cnn1d" in bad.stderr


def test_trials_filters_sorts_and_writes_csv(root):
    rows = json.loads(
        ok(
            hpolab("trials", STUDY, "--state", "complete", "--sort", "value", "--json", root=root)
        ).stdout
    )
    assert rows and all(r["state"] == "complete" for r in rows)
    for mt in ("mlp", "cnn1d"):
        values = [r["value"] for r in rows if r["model_type"] == mt]
        assert values == sorted(values)  # val_loss: best (lowest) first
    out = root / "trials.csv"
    ok(hpolab("trials", STUDY, "--model-type", "mlp", "--csv", str(out), root=root))
    with out.open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == N_TRIALS and {r["model_type"] for r in table} == {"mlp"}
    assert json.loads(table[0]["params"])
    bad = hpolab("trials", STUDY, "--state", "done", root=root)
    assert bad.returncode == 2 and "--state: 'done' is not one of" in bad.stderr


def test_fetch_exports_that_reload_with_the_same_predictions(root, tmp_path):
    import keras
    import tensorflow as tf

    ok(hpolab("fetch", STUDY, "--model-type", "mlp", "--dest", str(tmp_path / "k"), root=root))
    ok(
        hpolab(
            "fetch",
            STUDY,
            "--model-type",
            "mlp",
            "--dest",
            str(tmp_path / "h"),
            "--format",
            "h5",
            root=root,
        )
    )
    ok(
        hpolab(
            "fetch",
            STUDY,
            "--model-type",
            "mlp",
            "--dest",
            str(tmp_path / "s"),
            "--format",
            "savedmodel",
            root=root,
        )
    )
    sidecar = json.loads((tmp_path / "k" / "final_model_mlp.json").read_text())
    assert sidecar["model_type"] == "mlp" and sidecar["preprocessing"]["classes"] == ["no", "yes"]
    batch = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    reference = keras.saving.load_model(tmp_path / "k" / "final_model_mlp.keras").predict(
        batch, verbose=0
    )
    h5 = keras.saving.load_model(tmp_path / "h" / "final_model_mlp.h5", compile=False)
    np.testing.assert_allclose(h5.predict(batch, verbose=0), reference, atol=1e-5)
    served = tf.saved_model.load(str(tmp_path / "s" / "final_model_mlp_savedmodel"))
    np.testing.assert_allclose(served.serve(batch).numpy(), reference, atol=1e-5)
    bad = hpolab("fetch", STUDY, "--dest", str(tmp_path), "--format", "onnx", root=root)
    assert (
        bad.returncode == 2 and "--format: 'onnx' is not one of keras, savedmodel, h5" in bad.stderr
    )


def test_retrain_a_chosen_trial_replaces_the_final_model(root):
    trials = json.loads(
        ok(
            hpolab(
                "trials", STUDY, "--model-type", "cnn1d", "--state", "complete", "--json", root=root
            )
        ).stdout
    )
    best = json.loads(
        ok(hpolab("best", STUDY, "--model-type", "cnn1d", "--json", root=root)).stdout
    )
    other = next(t["number"] for t in trials if t["number"] != best["cnn1d"]["best_trial"])
    done = json.loads(
        ok(
            hpolab(
                "retrain",
                STUDY,
                "--model-type",
                "cnn1d",
                "--trial",
                str(other),
                "--json",
                root=root,
            )
        ).stdout
    )
    assert done["cnn1d"]["trial"] == other
    sidecar = json.loads(Path(done["cnn1d"]["sidecar"]).read_text())
    assert (
        sidecar["best_trial"] == other
        and sidecar["mlflow_run_id"] == done["cnn1d"]["mlflow_run_id"]
    )
    assert sidecar["registered_model"]["version"]
    bad = hpolab("retrain", STUDY, "--model-type", "cnn1d", "--trial", "999", root=root)
    assert bad.returncode == 2 and "trial 999" in bad.stderr and "complete trials:" in bad.stderr


def test_plots_are_built_and_logged_to_the_parent_run(root):
    from mlflow.tracking import MlflowClient

    vis = root / "hpo_results" / STUDY / "mlp_visualizations"
    expected = set(PLOTS)  # all seven
    assert {p.stem for p in vis.glob("*.png")} == expected  # drawn at the end of the study
    before = {p: p.stat().st_mtime for p in vis.glob("*.png")}
    drawn = json.loads(
        ok(hpolab("plots", STUDY, "--model-type", "mlp", "--json", root=root)).stdout
    )
    assert set(drawn["mlp"]["png"]) == expected
    assert all(p.stat().st_mtime >= before[p] for p in before)
    # One self-contained page for the study: plotly.js inside, once, nothing loaded beside it.
    page = Path(drawn["mlp"]["page"])
    text = page.read_text()
    assert page.name == f"{STUDY}_plots.html" and text.count("plotly.js v") == 1
    assert '<script src="' not in text and not list(vis.glob("*.html"))
    assert not (vis / "plotly.min.js").exists()
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(STUDY)
    parent = client.search_runs([experiment.experiment_id], "tags.`hpolab.role` = 'study'")[0]
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "visualizations/mlp")}
    assert "visualizations/mlp/optimization_history.png" in logged
    top = {a.path for a in client.list_artifacts(parent.info.run_id, "visualizations")}
    assert f"visualizations/{STUDY}_plots.html" in top
    assert "val_loss" in parent.data.tags.get("mlflow.note.content", "")


def test_report_is_a_pdf_with_every_section(root):
    done = json.loads(ok(hpolab("report", STUDY, "--json", root=root)).stdout)
    pdf = Path(done["report"])
    assert pdf == root / "hpo_results" / STUDY / f"{STUDY}_report.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages == done["pages"]
    # Sections are packed: fewer pages than one per section (summary, then per model
    # type its space, test split and 7 plots), and at least one page per model type.
    assert 2 < pages < 1 + 2 * (1 + 1 + 4)


def test_compare_and_delete(root):
    ok(
        run_cli(
            "--study-name",
            "ops2",
            "--data",
            str(root / "data.csv"),
            "--target",
            "label",
            "--models",
            "mlp",
            "--n-trials",
            "1",
            "--epochs",
            "1",
            "--no-plots",
            "--no-mlflow",
            "-q",
            root=root,
        )
    )
    rows = json.loads(ok(hpolab("compare", STUDY, "ops2", "--json", root=root)).stdout)
    assert {(r["study"], r["model_type"]) for r in rows} == {
        (STUDY, "mlp"),
        (STUDY, "cnn1d"),
        ("ops2", "mlp"),
    }
    assert all(r["seconds_spent"] > 0 for r in rows)
    assert "ops2" in ok(hpolab("compare", STUDY, "ops2", root=root)).stdout
    one = hpolab("compare", STUDY, root=root)
    assert one.returncode == 2 and "at least two" in one.stderr

    refused = hpolab("delete", "ops2", root=root)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert (root / "hpo_studies" / "ops2.db").exists()
    deleted = ok(hpolab("delete", "ops2", "--yes", root=root))
    assert "delete removed" in deleted.stdout
    assert not (root / "hpo_studies" / "ops2.db").exists()
    # Nor SQLite's write-ahead log and its index, which a new study of the name would meet.
    assert not list((root / "hpo_studies").glob("ops2.db-*"))
    assert not (root / "models" / "hpo_derived" / "ops2").exists()
    studies = json.loads(ok(hpolab("studies", "--json", root=root)).stdout)
    assert [s["study"] for s in studies] == [STUDY]  # the other study is untouched


def _wait_http(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail with the server's output if it exits."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                assert response.status == 200
                return
        except OSError:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.time() < deadline, f"{url} did not answer in {timeout} s"
            time.sleep(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_serves_on_loopback_only_and_warns_for_other_hosts(root):
    port, dashboard = _free_port(), _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpolab.cli.main",
            "ui",
            "--root",
            str(root),
            "--port",
            str(port),
            "--dashboard",
            "--study",
            STUDY,
            "--dashboard-port",
            str(dashboard),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", server)
        _wait_http(f"http://127.0.0.1:{dashboard}/api/studies", server)
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        local = [line.split()[3] for line in listening.splitlines() if line.strip()]
        assert local and all(addr.startswith("127.0.0.1:") for addr in local), listening
        with urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/api/studies", timeout=10) as r:
            names = {s["study_name"] for s in json.loads(r.read())["study_summaries"]}
        assert names == {f"{STUDY}.mlp", f"{STUDY}.cnn1d"}  # optuna-dashboard on the study
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    (root / "empty").mkdir(exist_ok=True)
    missing = hpolab("ui", root=root / "empty")
    assert missing.returncode == 2 and "no MLflow tracking store" in missing.stderr
    port = _free_port()
    exposed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpolab.cli.main",
            "ui",
            "--root",
            str(root),
            "--port",
            str(port),
            "--host",
            "0.0.0.0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(3)
    finally:
        os.killpg(exposed.pid, signal.SIGINT)
        _, err = exposed.communicate(timeout=30)
    assert "warning: --host 0.0.0.0 makes the MLflow UI reachable from other machines" in err


@pytest.mark.postgres
def test_subcommands_reach_a_study_kept_in_postgresql(root):
    import uuid

    import optuna

    url = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"pgops_{uuid.uuid4().hex[:8]}"
    source = f"sqlite:///{root / 'hpo_studies' / f'{STUDY}.db'}"
    try:
        for mt in ("mlp", "cnn1d"):
            optuna.copy_study(
                from_study_name=f"{STUDY}.{mt}",
                from_storage=source,
                to_storage=url,
                to_study_name=f"{name}.{mt}",
            )
        listed = json.loads(ok(hpolab("studies", "--storage", url, "--json", root=root)).stdout)
        assert name in {s["study"] for s in listed}
        status = json.loads(
            ok(hpolab("status", name, "--storage", url, "--json", root=root)).stdout
        )
        assert status["model_types"]["mlp"]["trials_done"] == N_TRIALS
        ok(hpolab("delete", name, "--storage", url, "--yes", root=root))
        gone = hpolab("status", name, "--storage", url, root=root)
        assert gone.returncode == 2 and f"no study {name!r}" in gone.stderr
    finally:
        for mt in ("mlp", "cnn1d"):
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=f"{name}.{mt}", storage=url)


def test_delete_in_a_shared_storage_leaves_a_study_named_like_a_model_type(tmp_path: Path):
    """Studies ``x`` and ``x.mlp`` share one storage: ``x``'s model types are ``x.<type>``
    only, so deleting ``x`` keeps ``x.mlp`` (stored as ``x.mlp.mlp``) whole, and creates
    no MLflow experiment for a study that never had one."""
    import optuna

    from hpolab import run_study

    data = write_csv(tmp_path / "data.csv", n=80)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    common = {"data": str(data), "target": "label", "models": "mlp", "n_trials": 1}
    for name in ("x", "x.mlp"):
        run_study(
            None,
            root=tmp_path,
            quiet=True,
            track=False,
            storage=storage,
            study_name=name,
            epochs=1,
            plots=False,
            **common,
        )
    ok(hpolab("delete", "x", "--yes", "--storage", storage, root=tmp_path))
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert "x.mlp" not in names and "x.mlp.mlp" in names
    assert not (tmp_path / "mlruns").exists()  # no tracking store made by the delete
    survivor = hpolab("status", "x.mlp", "--storage", storage, root=tmp_path)
    assert survivor.returncode == 0 and "mlp" in survivor.stdout
