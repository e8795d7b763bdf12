"""What a killed process leaves behind is cleaned up and never shipped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers import small_config, write_csv
from mlflow.tracking import MlflowClient

import hpolab


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found.extend(_artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return found


def test_stale_temp_files_are_removed_on_start_and_never_logged(tmp_path: Path):
    data = write_csv(tmp_path / "d.csv", n=80)
    config = small_config(tmp_path / "c.yaml", data, name="tmpfiles", n_trials=1, plots=True)
    hpolab.run_study(config, root=tmp_path, quiet=True)
    plots = tmp_path / "hpo_results" / "tmpfiles" / "mlp_visualizations"
    assert any(plots.glob("*.png"))
    # A plot writer killed mid-write left this (an hour ago), another one is writing now.
    stale = plots / ".slice.png.k3j2h1g0.tmp.png"
    stale.write_bytes(b"half a png")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    in_flight = plots / f".contour.png.{os.getpid()}.a1b2c3d4.tmp.png"
    in_flight.write_bytes(b"being written")
    # A writer killed seconds ago (its pid in the name is gone): removed at once.
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    just_killed = plots / f".edf.png.{gone}.q1w2e3r4.tmp.png"
    just_killed.write_bytes(b"half")
    ten_seconds_ago = time.time() - 10
    os.utime(just_killed, (ten_seconds_ago, ten_seconds_ago))

    result = hpolab.run_study(config, root=tmp_path, quiet=True, n_trials=2)
    assert result.new_trials == 1
    assert not stale.exists() and not just_killed.exists()  # removed on start
    assert in_flight.exists()  # another writer's file is left alone
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tmpfiles")
    logged = [
        path
        for run in client.search_runs([experiment.experiment_id])
        for path in _artifacts(client, run.info.run_id)
    ]
    assert any(p.endswith(".png") for p in logged)
    assert not [p for p in logged if ".tmp" in Path(p).name]


def test_a_trial_s_process_is_known_gone_only_on_this_host():
    import signal
    import socket
    import subprocess
    import sys

    from hpolab.search.loop import process_gone

    host = socket.gethostname()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not process_gone({"host": host, "pid": child.pid})  # alive
        child.send_signal(signal.SIGKILL)
        time.sleep(0.5)
        assert process_gone({"host": host, "pid": child.pid})  # killed, not reaped yet
        child.wait()
        assert process_gone({"host": host, "pid": child.pid})  # gone
        assert not process_gone({"host": "another-host", "pid": child.pid})  # cannot know
        assert not process_gone({"host": host, "pid": os.getpid()})  # this process
        assert not process_gone(None) and not process_gone({"host": host})
    finally:
        child.kill()
        child.wait()


def test_crashes_do_not_use_the_budget_but_failed_configurations_do(tmp_path: Path):
    import optuna

    data = write_csv(tmp_path / "d.csv", n=80)
    config = small_config(tmp_path / "c.yaml", data, name="budget", n_trials=1)
    hpolab.run_study(config, root=tmp_path, quiet=True, track=False)
    storage = f"sqlite:///{tmp_path / 'hpo_studies' / 'budget.db'}"
    study = optuna.load_study(study_name="budget.mlp", storage=storage)
    failed = optuna.trial.TrialState.FAIL
    # A trial whose worker was killed more often than max_retries (no error of its own)...
    study.add_trial(optuna.create_trial(state=failed, params={}, distributions={}))
    # ...and a configuration that failed by itself (its loss diverged).
    study.add_trial(
        optuna.create_trial(state=failed, user_attrs={"error": "loss is NaN"}, distributions={})
    )
    result = hpolab.run_study(config, root=tmp_path, quiet=True, track=False, n_trials=3)
    states = [t.state for t in optuna.load_study(study_name="budget.mlp", storage=storage).trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2  # 1 + 1 new, not 1 + 0
    assert result.new_trials == 1


def _final_state(tmp_path: Path, study: str):
    import json

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    finals = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`hpolab.role` = 'final_model'"
    )
    versions = client.search_model_versions(f"name = '{study}-mlp'")
    sidecar_path = tmp_path / "models" / "hpo_derived" / study / "final_model_mlp.json"
    return client, finals, versions, sidecar_path, json.loads(sidecar_path.read_text())


def _forget_logging(sidecar_path: Path, sidecar: dict) -> None:
    """The sidecar as a process killed inside the final model's logging leaves it."""
    import json

    sidecar["mlflow_run_id"] = None
    sidecar.pop("registered_model", None)
    sidecar_path.write_text(json.dumps(sidecar))


def test_resume_finishes_a_half_done_final_model_logging_exactly_once(tmp_path: Path):
    data = write_csv(tmp_path / "d.csv", n=80)
    config = small_config(tmp_path / "c.yaml", data, name="half", n_trials=1)
    hpolab.run_study(config, root=tmp_path, quiet=True)
    client, (final,), (version,), sidecar_path, sidecar = _final_state(tmp_path, "half")

    # Killed after registering, before the run was ended and the sidecar rewritten.
    client.update_run(final.info.run_id, "RUNNING")
    _forget_logging(sidecar_path, sidecar)
    hpolab.run_study(config, root=tmp_path, quiet=True)
    _, finals, versions, _, sidecar = _final_state(tmp_path, "half")
    assert [r.info.run_id for r in finals] == [final.info.run_id]  # the same run, ended
    assert finals[0].info.status == "FINISHED"
    assert [v.version for v in versions] == [version.version]  # registered once
    assert sidecar["mlflow_run_id"] == final.info.run_id
    assert sidecar["registered_model"]["version"] == str(version.version)

    # Killed before the final run was made: it is logged and registered now, once.
    client.delete_model_version("half-mlp", version.version)
    client.delete_run(final.info.run_id)
    _forget_logging(sidecar_path, sidecar)
    hpolab.run_study(config, root=tmp_path, quiet=True)
    _, finals, versions, _, sidecar = _final_state(tmp_path, "half")
    assert len(finals) == 1 and finals[0].info.status == "FINISHED"
    assert len(versions) == 1 and sidecar["mlflow_run_id"] == finals[0].info.run_id
    logged = {a.path for a in client.list_artifacts(finals[0].info.run_id, "model")}
    assert "model/MLmodel" in logged  # a whole MLflow model


def test_model_files_never_run_code_unless_trusted(tmp_path: Path):
    import shutil

    import joblib
    import numpy as np
    import pytest
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    from hpolab.final_models import FinalModelError
    from hpolab.models import build_model
    from hpolab.training.baselines import load_estimator, save_estimator

    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = np.arange(40) % 2
    for model_type in ("random_forest", "svm", "gradient_boosting"):
        model = build_model(model_type, {}, (3,), "classification", 2).fit(X, y)
        save_estimator(model, tmp_path / f"{model_type}.skops")
        loaded = load_estimator(tmp_path / f"{model_type}.skops")  # the zoo's types: trusted
        assert (loaded.predict(X) == model.predict(X)).all()
    # A file someone else wrote, holding a function to call on the data: refused.
    skops.io.dump(FunctionTransformer(shutil.rmtree), tmp_path / "foreign.skops")
    with pytest.raises(FinalModelError, match=r"does not trust by default \(shutil.rmtree\)"):
        load_estimator(tmp_path / "foreign.skops")
    assert load_estimator(tmp_path / "foreign.skops", trust=True).func is shutil.rmtree
    # A pickle runs code when loaded: only with trust=True.
    joblib.dump(model, tmp_path / "old.joblib")
    with pytest.raises(FinalModelError, match="a pickle"):
        load_estimator(tmp_path / "old.joblib")
    assert load_estimator(tmp_path / "old.joblib", trust=True).predict(X).shape == (40,)


def test_a_trial_that_never_sent_a_heartbeat_is_recovered_after_the_grace(tmp_path: Path):
    """Killed between creating its trial and the first heartbeat (and before recording
    its worker): without this, the trial would stay RUNNING and block the study."""
    import datetime

    import optuna

    from hpolab.progress import QuietReporter
    from hpolab.search.loop import _recover_stale
    from hpolab.search.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, 2, 3)
    study = optuna.create_study(study_name="s.mlp", storage=storage)
    template = optuna.trial.FrozenTrial(
        number=-1,
        state=optuna.trial.TrialState.RUNNING,
        value=None,
        datetime_start=datetime.datetime.now() - datetime.timedelta(seconds=60),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=-1,
    )
    storage.create_new_trial(study._study_id, template_trial=template)
    storage.create_new_trial(
        study._study_id,
        template_trial=optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING),
    )  # started just now: may still send its first beat
    _recover_stale(study, storage, None, QuietReporter())
    states = [t.state.name for t in study.trials]
    assert states[:2] == ["FAIL", "RUNNING"] and states[2:] == ["WAITING"]  # re-queued


def _dead_worker() -> dict:
    """The ``worker`` record of a process of this host that has exited."""
    import socket
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {"host": socket.gethostname(), "pid": child.pid}


def test_a_re_queued_trial_is_not_failed_for_the_dead_worker_it_inherited(tmp_path: Path):
    """A re-queued trial carries the user attributes of the attempt it repeats, the dead
    worker's record included, until its new worker records itself. Another worker
    recovering stale trials in between must not fail the live trial for it."""
    import optuna
    from optuna.trial import TrialState

    from hpolab.progress import QuietReporter
    from hpolab.search.loop import _recover_stale
    from hpolab.search.storage import open_storage
    from hpolab.search.workers import WORKER

    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", 1, 30, 3)
    study = optuna.create_study(study_name="s.mlp", storage=storage)
    first = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    first.set_user_attr(WORKER, _dead_worker())
    _recover_stale(study, storage, None, QuietReporter())
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]
    retry = study.trials[1]
    assert retry.user_attrs[WORKER] == first.user_attrs[WORKER]  # inherited
    # A live worker takes it (as Optuna pops a waiting trial), not yet recorded as its own.
    assert storage.set_trial_state_values(retry._trial_id, state=TrialState.RUNNING)
    _recover_stale(study, storage, None, QuietReporter())
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING]
    # Once its own worker is recorded, that worker's death is noticed at once again.
    storage.set_trial_user_attr(retry._trial_id, WORKER, _dead_worker())
    _recover_stale(study, storage, None, QuietReporter())
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING], states
