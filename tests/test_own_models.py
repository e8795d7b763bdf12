"""Models and data of the user's own: builders named module:function (define-by-run with
``hp`` or with the config's params), loaders, a fixed validation / test split, the Python
API with callables and in-memory data, custom layers, and one-line errors for bad input.

Every user module is written by the test into a temp folder, as a user's project would be.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from helpers import run_cli

import hpolab

DEFINE_BY_RUN = """
import keras

def build(hp):
    inputs = keras.Input(shape=hp.input_shape)
    x = keras.layers.Flatten()(inputs)
    for i in range(hp.Int("n_layers", 1, 3)):
        x = keras.layers.Dense(hp.Int(f"units_{i}", 8, 32, step=8), activation="relu",
                               name=f"hidden_{i}")(x)
    hp.Float("learning_rate", 1e-3, 3e-2, log=True)
    return keras.Model(inputs, keras.layers.Dense(hp.n_outputs, activation="softmax")(x))

def build_params(params, input_shape, n_outputs, task):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(params["width"], activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation="softmax")(x))

def picky(hp):
    width = hp.Choice("width", [4, 8])
    if width == 8:
        raise ValueError("8 is not supported on this device")
    inputs = keras.Input(shape=hp.input_shape)
    return keras.Model(inputs, keras.layers.Dense(hp.n_outputs, activation="softmax")(inputs))

def grid(hp):
    inputs = keras.Input(shape=hp.input_shape)
    x = inputs
    for i in range(hp.Int("n_layers", 1, 2)):
        widths = [4, 8] if i == 0 else [4]
        x = keras.layers.Dense(hp.Choice(f"units_{i}", widths), activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(hp.n_outputs, activation="softmax")(x))

def twice(hp):
    hp.Int("units", 8, 32)
    hp.Int("units", 8, 64)
    return None

def not_a_model(hp):
    return "a model"

def two_args(a, b):
    return None

@keras.saving.register_keras_serializable(package="tests_own")
class Scale(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2.0

class Unregistered(keras.layers.Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
    def call(self, inputs):
        return inputs * self.factor

def with_layer(hp):
    inputs = keras.Input(shape=hp.input_shape)
    x = Scale()(inputs)
    return keras.Model(inputs, keras.layers.Dense(hp.n_outputs, activation="softmax")(x))

def with_unregistered(hp):
    inputs = keras.Input(shape=hp.input_shape)
    x = Unregistered(3.0)(inputs)
    return keras.Model(inputs, keras.layers.Dense(hp.n_outputs, activation="softmax")(x))

def load_data(n=160):
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    return X, y
"""


def _project(tmp_path: Path, module: str = "user_models") -> Path:
    """A user's project folder holding the module, as on disk."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(DEFINE_BY_RUN))
    return folder


def _config(folder: Path, name: str, models: dict, **sections) -> Path:
    cfg = {
        "study": {"name": name, "n_trials": 4, "seed": 3, "metric": "val_accuracy", "plots": False},
        "data": {"source": "builtin:breast_cancer"},
        "training": {"epochs": 3, "patience": 3},
        "models": models,
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _study(root: Path, name: str, mt: str) -> optuna.Study:
    url = f"sqlite:///{root / 'hpo_studies' / f'{name}.db'}"
    return optuna.load_study(study_name=f"{name}.{mt}", storage=url)


@pytest.mark.slow
def test_define_by_run_builder_from_the_cli_resumes_and_ships_the_best_architecture(
    tmp_path: Path,
) -> None:
    folder = _project(tmp_path)
    cfg = _config(
        folder,
        "own",
        {"mine": {"builder": "user_models:build"}},
        study={"sampler": "tpe", "pruner": "median"},
    )
    run_cli("--config", str(cfg), root=tmp_path, check=True, process=True)
    study = _study(tmp_path, "own", "mine")
    assert len(study.trials) == 4
    for t in study.trials:  # looped widths: one per layer, as the code declared them
        assert {f"units_{i}" for i in range(t.params["n_layers"])} <= set(t.params)
        assert not {f"units_{i}" for i in range(t.params["n_layers"], 3)} & set(t.params)
    again = run_cli("--config", str(cfg), "--n-trials", "6", root=tmp_path, check=True)
    assert "new trials this run: 2" in again.stdout
    study = _study(tmp_path, "own", "mine")
    assert len(study.trials) == 6
    best = study.best_trial
    final = hpolab.load_final_model("own", "mine", root=tmp_path)
    widths = [layer.units for layer in final.model.layers if layer.name.startswith("hidden_")]
    assert widths == [best.params[f"units_{i}"] for i in range(best.params["n_layers"])]
    sidecar = json.loads(final.path.with_suffix(".json").read_text())
    assert sidecar["training"]["learning_rate"] == pytest.approx(best.params["learning_rate"])
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer().data[:10].astype(np.float32)
    assert set(final.predict(X)) <= {0, 1}  # the dataset's own labels


def test_python_api_takes_a_callable_builder_and_in_memory_data(tmp_path: Path) -> None:
    sys.path.insert(0, str(_project(tmp_path, "api_models")))
    try:
        import api_models
    finally:
        sys.path.pop(0)
    X, y = api_models.load_data()
    config = {
        "study": {"name": "nb", "n_trials": 2, "metric": "val_accuracy", "plots": False},
        "training": {"epochs": 1},
        "models": {"mine": {"builder": api_models.build}},
    }
    result = hpolab.run_study(config, data={"X": X, "y": y}, root=tmp_path, quiet=True, track=False)
    assert set(result.best_params["mine"]) >= {"n_layers", "units_0", "learning_rate"}
    assert set(result.predict(X[:8])) <= {"up", "down"}
    again = hpolab.run_study(
        config, data=(X, y), root=tmp_path, quiet=True, track=False, n_trials=3
    )
    assert again.study_new_trials == 1  # the same in-memory data resumes the study

    import pandas as pd

    frame = pd.DataFrame(X, columns=list("abcd")).assign(label=y)
    params = {"mine": {"builder": api_models.build_params, "search_space": {"width": [4, 8]}}}
    by_frame = hpolab.run_study(
        {**config, "study": {**config["study"], "name": "nb2"}, "models": params},
        data=frame,
        root=tmp_path,
        quiet=True,
        track=False,
        target="label",
    )
    assert by_frame.best_params["mine"]["width"] in (4, 8)
    assert set(by_frame.predict(X[:4])) <= {"up", "down"}


def _csv(path: Path, X: np.ndarray, y: np.ndarray, part: list[str] | None = None) -> Path:
    header = "a,b,c,d,label" + (",part" if part else "")
    rows = [header]
    for i, (features, label) in enumerate(zip(X, y, strict=True)):
        row = ",".join(f"{v:.6f}" for v in features) + f",{label}"
        rows.append(row + (f",{part[i]}" if part else ""))
    path.write_text("\n".join(rows) + "\n")
    return path


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, np.where(X[:, 0] - X[:, 2] > 0, "yes", "no")


@pytest.mark.slow
def test_own_validation_and_test_files_are_the_rows_measured(tmp_path: Path) -> None:
    from hpolab.config import load_config
    from hpolab.data import load_dataset

    train = _csv(tmp_path / "train.csv", *_rows(150, 1))
    X_val, y_val = _rows(40, 2)
    X_test, y_test = _rows(30, 3)
    val = _csv(tmp_path / "val.csv", X_val, y_val)
    test = _csv(tmp_path / "test.csv", X_test, y_test)
    data = {"source": str(train), "target": "label", "validation": str(val), "test": str(test)}
    cfg = _config(tmp_path, "split", {"mlp": {}}, data=data)
    loaded = load_dataset(load_config(cfg).data)
    # Exactly the validation file's rows (scaled with the training rows' statistics).
    assert np.allclose(loaded.feature_scaler.inverse(loaded.X_val), X_val, atol=1e-5)
    assert [loaded.classes[i] for i in loaded.y_val] == list(y_val)
    assert len(loaded.X_train) == 150 and len(loaded.X_test) == 30
    run_cli("--config", str(cfg), root=tmp_path, check=True)
    final = hpolab.load_final_model("split", "mlp", root=tmp_path)
    by_hand = float(np.mean(final.predict(X_test) == y_test))
    assert final.metadata["test_metrics"]["accuracy"] == pytest.approx(by_hand, abs=1e-6)
    # Another validation file is another study: it refuses to resume.
    _csv(val, *_rows(40, 4))
    changed = run_cli("--config", str(cfg), root=tmp_path)
    assert changed.returncode == 2 and "data fingerprint" in changed.stderr


def test_a_split_column_names_each_row_s_part(tmp_path: Path) -> None:
    from hpolab.config import DataSection
    from hpolab.data import load_dataset

    X, y = _rows(100, 5)
    part = ["train"] * 60 + ["validation"] * 25 + ["test"] * 15
    path = _csv(tmp_path / "parts.csv", X, y, part)
    data = load_dataset(DataSection(source=str(path), target="label", split_column="part"))
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (60, 25, 15)
    assert data.input_shape == (4,)  # the part column is not a feature
    bad = _csv(tmp_path / "bad.csv", X, y, ["train"] * 99 + ["dev"])
    with pytest.raises(hpolab.errors.DataError, match="split_column.*'dev'"):
        load_dataset(DataSection(source=str(bad), target="label", split_column="part"))


def test_a_loader_of_the_user_s_own_is_the_data_source(tmp_path: Path) -> None:
    from hpolab.config import load_config
    from hpolab.data import load_dataset

    folder = _project(tmp_path)
    cfg = load_config(
        _config(folder, "loader", {"mlp": {}}, data={"source": "user_models:load_data"})
    )
    data = load_dataset(cfg.data, code_path=cfg.study.code_path)
    assert data.classes == ["down", "up"] and data.input_shape == (4,)


@pytest.mark.slow
def test_a_grid_over_a_define_by_run_space_visits_every_configuration(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    cfg = _config(
        folder,
        "dbrgrid",
        {"g": {"builder": "user_models:grid"}},
        study={"sampler": "grid", "n_trials": 50},
        training={"epochs": 1},
    )
    run_cli("--config", str(cfg), "--no-mlflow", root=tmp_path, check=True)
    study = _study(tmp_path, "dbrgrid", "g")
    seen = {
        json.dumps(t.params, sort_keys=True)
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    # n_layers 1: units_0 in 2 values; n_layers 2: 2 x 1 values -> 4 configurations.
    assert len(seen) == 4


@pytest.mark.slow
def test_a_registered_custom_layer_saves_and_loads_safely(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    cfg = _config(
        folder,
        "layer",
        {"m": {"builder": "user_models:with_layer"}},
        study={"n_trials": 1},
        training={"epochs": 1},
    )
    run_cli("--config", str(cfg), root=tmp_path, check=True)
    final = hpolab.load_final_model("layer", "m", root=tmp_path)  # safe_mode=True
    assert any(type(layer).__name__ == "Scale" for layer in final.model.layers)
    assert final.metadata["builder"]["source"] == "user_models:with_layer"
    # A fresh process (the module not imported): export imports the study's own code.
    out = tmp_path / "serving"
    command = ["export", "--study", "layer", "--dest", str(out), "--format", "savedmodel"]
    done = subprocess.run(
        [sys.executable, "-m", "hpolab.cli.main", *command, "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "final_model_m.json").is_file() and any(out.iterdir())
    assert "apply the feature_scaler of" in done.stdout and "final_model_m.json" in done.stdout


def test_a_builder_failing_for_some_params_fails_that_trial_only(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    cfg = _config(
        folder,
        "picky",
        {"p": {"builder": "user_models:picky"}},
        study={"n_trials": 6, "sampler": "random"},
        training={"epochs": 1},
    )
    run_cli("--config", str(cfg), root=tmp_path, check=True)
    trials = _study(tmp_path, "picky", "p").trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(t.params["width"] == 8 for t in failed)
    assert "8 is not supported" in failed[0].user_attrs["error"]
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        ("missing_module:build", "module 'missing_module' not found"),
        ("user_models:nope", "has no function 'nope'"),
        ("user_models:two_args", "takes (a, b); a builder is build(hp)"),
        ("user_models:not_a_model", "returned str, not a keras.Model"),
        ("user_models:twice", "'units' is declared twice with different ranges"),
        ("user_models:with_unregistered", "register_keras_serializable"),
        ("not a path", "is not 'module:function'"),
    ],
)
def test_bad_builders_are_one_line_errors_before_anything_is_stored(
    tmp_path: Path, builder: str, expected: str
) -> None:
    folder = _project(tmp_path)
    cfg = _config(folder, "bad", {"mine": {"builder": builder}})
    done = run_cli("--config", str(cfg), root=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "models.mine.builder" in lines[0] and expected in lines[0], lines[0]
    assert not (tmp_path / "hpo_studies" / "bad.db").exists()


@pytest.mark.slow
def test_a_changed_define_by_run_space_refuses_to_resume(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    cfg = _config(
        folder,
        "changing",
        {"mine": {"builder": "user_models:build"}},
        study={"n_trials": 1},
        training={"epochs": 1},
    )
    run_cli("--config", str(cfg), root=tmp_path, check=True)
    module = folder / "user_models.py"
    module.write_text(
        module.read_text().replace('hp.Int("n_layers", 1, 3)', 'hp.Int("n_layers", 1, 4)')
    )
    done = run_cli("--config", str(cfg), "--n-trials", "2", root=tmp_path, process=True)
    assert done.returncode == 2 and "different search space" in done.stderr
    assert len(_study(tmp_path, "changing", "mine").trials) == 1
