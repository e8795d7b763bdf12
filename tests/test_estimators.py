"""Cached grid-search estimators: real Keras training, real Optuna storage, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from typing import Any, ClassVar

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from hpolab.errors import CacheMismatchError, ConfigError, DataError
from hpolab.estimators import (
    Autoencoder,
    CacheWarning,
    KerasEstimator,
    ModelArtifacts,
    ResidualRegressor,
)
from hpolab.estimators import artifacts as artifacts_module
from hpolab.search.grid import grid_points, load_grid_trials


class TinyAE(Autoencoder):
    """The pattern for a new cached estimator: override the class-level defaults."""

    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {
        **Autoencoder.DEFAULT_CONFIG,
        "epochs": 3,
        "hidden_layers": (8,),
    }
    DEFAULT_PARAM_GRID: ClassVar[dict[str, list[Any]]] = {
        "latent_dim": [2, 3],
        "hidden_layers": [(8,), (12, 6)],
    }


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(160, 2))
    X = (z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(160, 6))).astype(np.float32)
    y = 2.0 * z[:, 0] + z[:, 1] ** 2
    return {"Xt": X[:120], "Xv": X[120:], "yt": y[:120], "yv": y[120:]}


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached fit must not train")

    monkeypatch.setattr(keras.Model, "fit", refuse)


def _bytes(art: ModelArtifacts) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in art.files() if p.exists()}


def test_first_fit_searches_grid_and_writes_the_five_artifacts(tmp_path, data):
    ae = TinyAE(model_dir=tmp_path, cache_prefix="ae_v1")
    ae.fit(data["Xt"], data["Xv"])
    art = ae.artifacts
    for path in (art.config, art.model, art.metrics, art.grid_results, art.scaler):
        assert path.exists(), path.name
    assert ae.n_configs_trained_ == 4 and not ae.from_cache_
    grid = json.loads(art.grid_results.read_text())
    assert [r["index"] for r in grid] == [0, 1, 2, 3]
    assert all(
        r["state"] == "complete" and r["seconds"] > 0 and "val_loss" in r["metrics"] for r in grid
    )
    # Deterministic order: sorted keys, product of values; each point is an Optuna trial.
    expected = grid_points(TinyAE.DEFAULT_PARAM_GRID)
    trials = load_grid_trials(art.search_storage, "ae_v1")
    assert [t.state for t in trials] == ["complete"] * 4
    assert [t.params for t in trials] == json.loads(json.dumps(expected))
    assert [{k: r["config"][k] for k in ("hidden_layers", "latent_dim")} for r in grid] == [
        t.params for t in trials
    ]
    # The best configuration is the one with the lowest validation loss, and its weights
    # are the ones kept: the saved model reproduces the recorded validation loss.
    best = min(grid, key=lambda r: r["metrics"]["val_loss"])
    assert ae.best_config_["latent_dim"] == best["config"]["latent_dim"]
    recomputed = float((ae.residual(data["Xv"]) ** 2).mean())
    assert recomputed == pytest.approx(ae.best_score_, rel=1e-4)
    assert ae.encode(data["Xv"]).shape == (40, ae.best_config_["latent_dim"])
    assert ae.reconstruction_error(data["Xv"]).shape == (40,)


def test_second_fit_loads_from_cache_and_trains_nothing(tmp_path, data, monkeypatch, capsys):
    first = TinyAE(model_dir=tmp_path, cache_prefix="ae")
    first.fit(data["Xt"], data["Xv"])
    expected = first.encode(data["Xv"])
    _no_training(monkeypatch)
    second = TinyAE(model_dir=tmp_path, cache_prefix="ae", verbose=1)
    second.fit(data["Xt"], data["Xv"])
    assert second.from_cache_ and second.n_configs_trained_ == 0
    np.testing.assert_allclose(second.encode(data["Xv"]), expected, rtol=1e-6, atol=1e-6)
    assert second.best_config_ == first.best_config_
    assert "loaded from cache" in capsys.readouterr().out


def test_reset_experiment_retrains_and_reset_is_an_alias(tmp_path, data, capsys):
    TinyAE(model_dir=tmp_path, cache_prefix="ae").fit(
        data["Xt"], data["Xv"], param_grid={"latent_dim": [3], "epochs": [2]}
    )
    again = TinyAE(model_dir=tmp_path, cache_prefix="ae", verbose=1)
    again.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": [2]}, reset_experiment=True)
    assert again.n_configs_trained_ == 1 and again.best_config_["latent_dim"] == 2
    assert "reset: removed" in capsys.readouterr().out
    alias = TinyAE(model_dir=tmp_path, cache_prefix="ae")
    alias.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": [2]}, reset=True)
    assert alias.n_configs_trained_ == 1


@pytest.mark.parametrize(
    "damage",
    ["delete_model", "truncate_model", "truncate_metrics", "delete_config", "garble_config"],
)
def test_incomplete_or_damaged_cache_is_reported_and_retrained(tmp_path, data, damage):
    grid = {"latent_dim": [2], "epochs": [2]}
    ae = TinyAE(model_dir=tmp_path, cache_prefix="ae")
    ae.fit(data["Xt"], data["Xv"], param_grid=grid)
    art = ae.artifacts
    if damage == "delete_model":
        art.model.unlink()
    elif damage == "truncate_model":
        art.model.write_bytes(art.model.read_bytes()[:200])
    elif damage == "truncate_metrics":
        art.metrics.write_text(art.metrics.read_text()[:10])
    elif damage == "delete_config":
        art.config.unlink()
    else:
        art.config.write_text("{not json")
    assert not art.inspect().valid
    again = TinyAE(model_dir=tmp_path, cache_prefix="ae")
    with pytest.warns(CacheWarning, match="incomplete"):
        again.fit(data["Xt"], data["Xv"], param_grid=grid)
    assert again.n_configs_trained_ == 1 and not again.from_cache_
    assert art.inspect().valid


def test_param_grid_and_model_config_are_exclusive(tmp_path, data):
    ae = TinyAE(model_dir=tmp_path)
    with pytest.raises(ConfigError, match="either param_grid .* or model_config"):
        ae.fit(
            data["Xt"], data["Xv"], param_grid={"latent_dim": [2]}, model_config={"latent_dim": 2}
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"param_grid": {"latent_dm": [2]}}, "unknown key 'latent_dm'.*did you mean 'latent_dim'"),
        ({"param_grid": {"latent_dim": []}}, r"param_grid.latent_dim: the list of values is empty"),
        ({"param_grid": {"latent_dim": 4}}, r"param_grid.latent_dim: expected a list"),
        ({"model_config": {"epoch": 2}}, "model_config: unknown key 'epoch'"),
    ],
)
def test_bad_grids_are_refused_with_the_field_named(tmp_path, data, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TinyAE(model_dir=tmp_path).fit(data["Xt"], data["Xv"], **kwargs)


def test_bad_arrays_and_bad_prefix_are_refused(tmp_path, data):
    X_nan = data["Xt"].copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(DataError, match="X_train: contains NaN"):
        TinyAE(model_dir=tmp_path).fit(X_nan, data["Xv"])
    with pytest.raises(DataError, match="X_val: shape"):
        TinyAE(model_dir=tmp_path).fit(data["Xt"], data["Xv"][:, :4])
    with pytest.raises(ConfigError, match="cache_prefix"):
        TinyAE(model_dir=tmp_path, cache_prefix="../evil").fit(data["Xt"], data["Xv"])


def test_tuples_survive_the_json_round_trip(tmp_path, data, monkeypatch):
    ae = TinyAE(model_dir=tmp_path, cache_prefix="t")
    ae.fit(data["Xt"], data["Xv"], model_config={"hidden_layers": (8, 4), "epochs": 2})
    stored = json.loads(ae.artifacts.config.read_text())
    assert stored["config"]["hidden_layers"] == [8, 4]
    _no_training(monkeypatch)
    loaded = TinyAE(model_dir=tmp_path, cache_prefix="t")
    loaded.fit(data["Xt"], data["Xv"], model_config={"hidden_layers": (8, 4), "epochs": 2})
    assert loaded.best_config_["hidden_layers"] == (8, 4)
    assert isinstance(loaded.best_config_["hidden_layers"], tuple)


QUIET_SCRIPT = """
import sys
import numpy as np
from hpolab.estimators import Autoencoder
import keras  # import noise of TensorFlow itself is not fit()'s output
X = np.random.default_rng(0).normal(size=(80, 5)).astype("float32")
grid = {"latent_dim": [2, 3, 4], "hidden_layers": [(4,), (6,)], "epochs": [1]}
sys.stdout.flush(); sys.stderr.write("READY\\n"); sys.stderr.flush()
for _ in range(2):  # a search, then a cached fit
    Autoencoder(model_dir=sys.argv[1], cache_prefix="q").fit(X[:60], X[60:], param_grid=grid)
"""


def test_verbose_0_prints_nothing(tmp_path):
    # A real process: under pytest, TensorFlow's logger writes to pytest's log capture
    # instead of stderr. Six configurations, as TensorFlow warns about retracing after five.
    proc = subprocess.run(
        [sys.executable, "-c", QUIET_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.split("READY\n", 1)[1] == ""
    assert ModelArtifacts(tmp_path.resolve(), "q").inspect().valid


def test_verbose_1_shows_progress_per_configuration(tmp_path, data, capsys):
    grid = {"latent_dim": [2, 3], "epochs": [2]}
    TinyAE(model_dir=tmp_path, cache_prefix="v", verbose=1).fit(
        data["Xt"], data["Xv"], param_grid=grid
    )
    out = capsys.readouterr().out
    assert "grid search: 2 configurations" in out
    assert "1/2 epochs=2 latent_dim=2" in out and "2/2 epochs=2 latent_dim=3" in out
    assert "best:" in out


def test_other_data_or_grid_is_not_silently_reused(tmp_path, data):
    grid = {"latent_dim": [2], "epochs": [2]}
    TinyAE(model_dir=tmp_path, cache_prefix="m").fit(data["Xt"], data["Xv"], param_grid=grid)
    art = ModelArtifacts(tmp_path.resolve(), "m")
    before = _bytes(art)
    strict = TinyAE(model_dir=tmp_path, cache_prefix="m", on_mismatch="error")
    with pytest.raises(CacheMismatchError, match="other training data"):
        strict.fit(data["Xt"] * 2, data["Xv"], param_grid=grid)
    with pytest.raises(CacheMismatchError, match="other grid"):
        strict.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": [3], "epochs": [2]})
    assert _bytes(art) == before  # refused: the cache is untouched
    lenient = TinyAE(model_dir=tmp_path, cache_prefix="m")
    with pytest.warns(CacheWarning, match="other training data"):
        lenient.fit(data["Xt"] * 2, data["Xv"], param_grid=grid)
    assert lenient.n_configs_trained_ == 1


def test_interrupted_save_never_leaves_a_valid_cache(tmp_path, data, monkeypatch):
    grid = {"latent_dim": [2], "epochs": [2]}
    TinyAE(model_dir=tmp_path, cache_prefix="s").fit(data["Xt"], data["Xv"], param_grid=grid)
    real_write = artifacts_module.atomic_write_json

    def interrupted(target, payload):
        if target.name.endswith("_grid_results.json"):
            raise KeyboardInterrupt
        real_write(target, payload)

    monkeypatch.setattr(artifacts_module, "atomic_write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        TinyAE(model_dir=tmp_path, cache_prefix="s").fit(
            data["Xt"], data["Xv"], param_grid=grid, reset=True
        )
    monkeypatch.undo()
    art = ModelArtifacts(tmp_path.resolve(), "s")
    assert not art.inspect().valid
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*tmp*"))
    again = TinyAE(model_dir=tmp_path, cache_prefix="s")
    with pytest.warns(CacheWarning, match="incomplete"):
        again.fit(data["Xt"], data["Xv"], param_grid=grid)
    assert again.n_configs_trained_ == 1


def test_interrupted_search_keeps_the_previous_cache(tmp_path, data, monkeypatch):
    grid = {"latent_dim": [2], "epochs": [2]}
    TinyAE(model_dir=tmp_path, cache_prefix="k").fit(data["Xt"], data["Xv"], param_grid=grid)
    art = ModelArtifacts(tmp_path.resolve(), "k")
    before = _bytes(art)

    def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", stop)
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        TinyAE(model_dir=tmp_path, cache_prefix="k").fit(
            data["Xt"], data["Xv"], param_grid={"latent_dim": [3]}
        )
    assert _bytes(art) == before and art.inspect().valid


def test_residual_regressor_single_config_and_cache_keyed_on_the_autoencoder(
    tmp_path, data, monkeypatch
):
    ae = TinyAE(model_dir=tmp_path, cache_prefix="ae")
    ae.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": [2], "epochs": [3]})
    config = {"hidden_layers": [16, 8], "learning_rate": 3e-3, "epochs": 30}
    reg = ResidualRegressor(pretrained_model=ae, model_dir=tmp_path, cache_prefix="rr")
    reg.fit(data["Xt"], data["Xv"], data["yt"], data["yv"], model_config=config)
    assert reg.n_configs_trained_ == 1
    assert reg.score(data["Xv"], data["yv"]) > 0.5
    predictions = reg.predict(data["Xv"])
    assert reg.metrics_["val"]["val_r2"] == pytest.approx(
        reg.score(data["Xv"], data["yv"]), abs=1e-4
    )
    with monkeypatch.context() as patch:
        _no_training(patch)
        cached = ResidualRegressor(pretrained_model=ae, model_dir=tmp_path, cache_prefix="rr")
        cached.fit(data["Xt"], data["Xv"], data["yt"], data["yv"], model_config=config)
        np.testing.assert_allclose(cached.predict(data["Xv"]), predictions, rtol=1e-5, atol=1e-5)
    other_ae = TinyAE(model_dir=tmp_path, cache_prefix="ae2")
    other_ae.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": [3], "epochs": [3]})
    with pytest.raises(CacheMismatchError, match="other training data"):
        ResidualRegressor(
            pretrained_model=other_ae, model_dir=tmp_path, cache_prefix="rr", on_mismatch="error"
        ).fit(data["Xt"], data["Xv"], data["yt"], data["yv"], model_config=config)


def test_residual_regressor_needs_a_fitted_autoencoder_and_targets(tmp_path, data):
    with pytest.raises(
        ConfigError, match="pretrained_model: ResidualRegressor needs a fitted Autoencoder"
    ):
        ResidualRegressor(model_dir=tmp_path).fit(data["Xt"], data["Xv"], data["yt"], data["yv"])
    with pytest.raises(DataError, match="y_train"):
        ResidualRegressor(model_dir=tmp_path).fit(data["Xt"], data["Xv"])


def test_keras_estimator_classifies_string_labels_and_follows_sklearn_conventions(
    tmp_path, data, monkeypatch
):
    labels = np.where(data["yt"] > 0, "leak", "normal")
    labels_val = np.where(data["yv"] > 0, "leak", "normal")
    est = KerasEstimator(model_type="mlp", model_dir=tmp_path, cache_prefix="clf")
    est.fit(
        data["Xt"],
        data["Xv"],
        labels,
        labels_val,
        param_grid={"hidden_layers": [[16]], "epochs": [20]},
    )
    assert set(est.predict(data["Xv"])) <= {"leak", "normal"}
    assert est.score(data["Xv"], labels_val) > 0.7
    assert est.predict_proba(data["Xv"]).shape == (40, 2)
    params = est.get_params()
    assert params["model_type"] == "mlp" and params["cache_prefix"] == "clf"
    copy = clone(est).set_params(verbose=0)
    assert copy.get_params()["model_dir"] == tmp_path and not hasattr(copy, "model_")
    # fit(X, y) as scikit-learn tools call it: the target is recognised, validation held out.
    reg = KerasEstimator(model_type="cnn1d", model_dir=tmp_path, cache_prefix="reg")
    reg.fit(data["Xt"], data["yt"], param_grid={"epochs": [3]})
    assert reg.state_["task"] == "regression" and reg.predict(data["Xv"]).shape == (40,)
    with pytest.raises(ConfigError, match="unknown key 'filterz'.*did you mean 'filters'"):
        reg.fit(data["Xt"], data["yt"], param_grid={"filterz": [8]})


def test_autoencoder_works_in_a_sklearn_pipeline(tmp_path, data):
    pipe = Pipeline(
        [("scale", StandardScaler()), ("ae", TinyAE(model_dir=tmp_path, cache_prefix="pipe"))]
    )
    pipe.set_params(ae__verbose=0)
    pipe.fit(data["Xt"])
    latent = pipe.transform(data["Xv"])
    assert latent.shape[0] == 40 and latent.shape[1] in (2, 3)
    assert pipe.score(data["Xv"]) < 0


def test_a_declared_metric_picks_the_best_configuration(tmp_path, data):
    est = KerasEstimator(model_type="mlp", model_dir=tmp_path, cache_prefix="r2", metric="val_r2")
    est.fit(
        data["Xt"],
        data["Xv"],
        data["yt"],
        data["yv"],
        param_grid={"learning_rate": [1e-4, 1e-2], "epochs": [4]},
    )
    scores = [r["metrics"]["val_r2"] for r in est.grid_results_]
    assert est.metrics_["direction"] == "maximize"
    assert est.best_score_ == pytest.approx(max(scores))
    assert (
        est.best_config_["learning_rate"]
        == est.grid_results_[scores.index(max(scores))]["config"]["learning_rate"]
    )
    assert est.score(data["Xv"], data["yv"]) == pytest.approx(max(scores), abs=1e-4)
    with pytest.raises(ConfigError, match="metric: 'val_accuracy' is not measured.*val_r2"):
        KerasEstimator(model_dir=tmp_path, cache_prefix="acc", metric="val_accuracy").fit(
            data["Xt"], data["Xv"], data["yt"], data["yv"], param_grid={"epochs": [1]}
        )


# ----------------------------------------------------------------- value normalization
def test_numeric_strings_are_trained_and_cached_as_numbers(tmp_path, data, monkeypatch):
    ae = TinyAE(model_dir=tmp_path, cache_prefix="n")
    ae.fit(data["Xt"], data["Xv"], model_config={"latent_dim": "3", "epochs": "2.0"})
    assert ae.best_config_["latent_dim"] == 3 and type(ae.best_config_["latent_dim"]) is int
    assert type(ae.best_config_["epochs"]) is int
    assert ae.encode(data["Xv"]).shape == (40, 3)
    art = ae.artifacts
    stored = json.loads(art.config.read_text())["config"]
    assert stored["latent_dim"] == 3 and stored["epochs"] == 2
    assert json.loads(art.grid_results.read_text())[0]["config"]["latent_dim"] == 3
    assert load_grid_trials(art.search_storage, "n")[0].params == {"epochs": 2, "latent_dim": 3}
    # "3", 3 and 3.0 are one configuration: the same cache, nothing trained.
    _no_training(monkeypatch)
    for same in ({"latent_dim": 3, "epochs": 2}, {"latent_dim": 3.0, "epochs": "2"}):
        again = TinyAE(model_dir=tmp_path, cache_prefix="n", on_mismatch="error")
        again.fit(data["Xt"], data["Xv"], model_config=same)
        assert again.from_cache_ and again.best_config_ == ae.best_config_


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"latent_dim": "abc"}, "model_config.latent_dim: 'abc' is not an integer (default 8)"),
        ({"latent_dim": 2.5}, "model_config.latent_dim: 2.5 is not an integer (default 8)"),
        ({"latent_dim": True}, "model_config.latent_dim: True is not an integer (default 8)"),
        ({"dropout": "high"}, "model_config.dropout: 'high' is not a finite number (default 0.0)"),
        ({"activation": 3}, "model_config.activation: 3 is not a string (default 'relu')"),
        (
            {"hidden_layers": [8, "x"]},
            "model_config.hidden_layers[1]: 'x' is not an integer (default (8,))",
        ),
    ],
)
def test_unconvertible_values_are_refused_before_anything_is_written(
    tmp_path, data, monkeypatch, config, message
):
    _no_training(monkeypatch)
    model_dir = tmp_path / "models"
    with pytest.raises(ConfigError) as info:
        TinyAE(model_dir=model_dir, cache_prefix="bad").fit(
            data["Xt"], data["Xv"], model_config=config
        )
    assert str(info.value) == message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not model_dir.exists()


def test_a_bad_value_with_reset_keeps_the_existing_cache(tmp_path, data):
    grid = {"latent_dim": [2], "epochs": [2]}
    TinyAE(model_dir=tmp_path, cache_prefix="r").fit(data["Xt"], data["Xv"], param_grid=grid)
    art = ModelArtifacts(tmp_path.resolve(), "r")
    before = _bytes(art)
    with pytest.raises(ConfigError, match=r"^param_grid.latent_dim: 'abc' is not an integer"):
        TinyAE(model_dir=tmp_path, cache_prefix="r").fit(
            data["Xt"], data["Xv"], param_grid={"latent_dim": [2, "abc"]}, reset=True
        )
    assert _bytes(art) == before and art.inspect().valid


def test_param_grid_values_are_normalized_and_searched_as_numbers(tmp_path, data):
    ae = TinyAE(model_dir=tmp_path, cache_prefix="g")
    ae.fit(data["Xt"], data["Xv"], param_grid={"latent_dim": ["2", 4], "epochs": [2]})
    assert ae.n_configs_trained_ == 2
    rows = json.loads(ae.artifacts.grid_results.read_text())
    assert [r["config"]["latent_dim"] for r in rows] == [2, 4]
    trials = load_grid_trials(ae.artifacts.search_storage, "g")
    assert [t.params["latent_dim"] for t in trials] == [2, 4]
    assert type(ae.best_config_["latent_dim"]) is int


def test_resolve_grid_converts_to_the_defaults_types_without_training():
    grid, mode = TinyAE().resolve_grid(
        param_grid={
            "latent_dim": ["2", 2.0, 2, " 3 "],  # one point per distinct value
            "hidden_layers": [(8, "4"), ["16"], "12"],
            "learning_rate": ["1e-3", 1],
            "batch_size": ["16"],
        }
    )
    assert mode == "grid"
    assert grid == {
        "latent_dim": [2, 3],
        "hidden_layers": [(8, 4), [16], 12],
        "learning_rate": [0.001, 1.0],
        "batch_size": [16],
    }
    # Training keys without a DEFAULT_CONFIG entry follow hpolab's training defaults.
    single, _ = TinyAE().resolve_grid(model_config={"warmup_epochs": "2", "lr_schedule": "cosine"})
    assert single == {"warmup_epochs": [2], "lr_schedule": ["cosine"]}
    with pytest.raises(ConfigError, match=r"^model_config.min_learning_rate: 'x' is not a finite"):
        TinyAE().resolve_grid(model_config={"min_learning_rate": "x"})
    # A KerasEstimator's builder parameters take the types of the builder's search space.
    lstm, _ = KerasEstimator(model_type="lstm").resolve_grid(
        param_grid={"units": ["8"], "bidirectional": ["true", False], "dropout": [0]}
    )
    assert lstm == {"units": [8], "bidirectional": [True, False], "dropout": [0.0]}
    with pytest.raises(ConfigError, match=r"^model_config.units: 'many' is not an integer \(e.g."):
        KerasEstimator(model_type="lstm").resolve_grid(model_config={"units": "many"})
    ensemble, _ = KerasEstimator(model_type="ensemble").resolve_grid(
        model_config={"members": "mlp+cnn1d", "cnn1d__filters": "8"}
    )
    assert ensemble == {"members": ["mlp+cnn1d"], "cnn1d__filters": [8]}
