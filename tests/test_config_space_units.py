"""Config validation and search-space replay (fast, no training)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpolab.config import ParamSpec, StudySection, load_config
from hpolab.errors import ConfigError
from hpolab.search.samplers import make_pruner, make_sampler
from hpolab.search.space import SearchSpace


def test_short_forms_expand_to_typed_params() -> None:
    assert ParamSpec.model_validate([1, 2]).type == "categorical"
    assert ParamSpec.model_validate("relu").type == "fixed"
    assert ParamSpec.model_validate({"low": 1, "high": 4}).type == "int"
    assert ParamSpec.model_validate({"low": 0.0, "high": 1}).type == "float"


def test_overrides_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("study: {name: a, metric: val_r2}\nmodels: {cnn1d: {}}\n")
    cfg = load_config(path, n_trials=7, **{"training.batch_size": 8})
    assert cfg.study.n_trials == 7 and cfg.training.batch_size == 8
    assert cfg.study.resolved_direction == "maximize"
    assert "filters" in cfg.models["cnn1d"].search_space  # default space filled in
    with pytest.raises(ConfigError, match="does not apply to classification"):
        cfg.check_task("classification")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"study": {"n_trial": 3}}, "study.n_trial: unknown key; did you mean 'n_trials'?"),
        ({"study": {"sampler": "bayes"}}, "study.sampler"),
        ({"study": {"name": "../x"}}, "study.name"),
        ({"study": {"n_trials": 0}}, "study.n_trials"),
        ({"models": {"mlp": {"search_space": {"dropout": {"low": 0.5, "high": 0.1}}}}}, "<= high"),
        (
            {"models": {"mlp": {"search_space": {"units": {"low": 0, "high": 9, "log": True}}}}},
            "low > 0",
        ),
        (
            {
                "models": {
                    "mlp": {
                        "search_space": {"dropout": {"low": 0.1, "high": 0.2, "when": {"nope": 1}}}
                    }
                }
            },
            "unknown parameter 'nope'",
        ),
        (
            {
                "study": {"sampler": "grid"},
                "models": {"mlp": {"search_space": {"dropout": {"low": 0.0, "high": 0.5}}}},
            },
            "grid search needs finite values",
        ),
        ({"data": {"val_size": 0.5, "test_size": 0.5}}, "leaves too little"),
    ],
)
def test_bad_configs_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def _space() -> SearchSpace:
    cfg = load_config(
        {
            "models": {
                "mlp": {
                    "search_space": {
                        "hidden_layers": [[64], [128, 64]],
                        "optimizer": ["adam", "sgd"],
                        "momentum": {
                            "low": 0.0,
                            "high": 0.9,
                            "step": 0.45,
                            "when": {"optimizer": "sgd"},
                        },
                        "activation": "gelu",
                    }
                }
            }
        }
    )
    return SearchSpace(cfg.models["mlp"].params())


def test_suggest_and_replay_round_trip_lists_conditions_and_fixed_values() -> None:
    space = _space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_conditions = set()
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial)
        assert isinstance(params["hidden_layers"], list)
        assert isinstance(trial.params["hidden_layers"], str)  # stored JSON-safe
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert params["activation"] == "gelu" and "activation" not in trial.params
        study.tell(trial, 0.0)
        assert space.replay(study.trials[-1].params) == params
        seen_conditions.add(params["optimizer"])
    assert seen_conditions == {"adam", "sgd"}


def test_grid_points_drop_inactive_duplicates() -> None:
    # 2 layer choices x (adam + sgd x 3 momentum values) = 2 x 4 distinct configurations.
    assert _space().grid_size() == 8


def test_grid_sampler_runs_every_point_once() -> None:
    cfg = load_config(
        {
            "study": {"sampler": "grid"},
            "models": {
                "mlp": {
                    "param_grid": {
                        "hidden_layers": [[4], [8, 4]],
                        "learning_rate": [0.001, 0.003, 0.01],
                    }
                }
            },
        }
    )
    space = SearchSpace(cfg.models["mlp"].params())
    study = optuna.create_study(sampler=make_sampler("grid", space, 0))
    study.optimize(lambda t: float(len(str(space.suggest(t)))), n_trials=50)
    assert len(study.trials) == 6
    assert len({str(space.replay(t.params)) for t in study.trials}) == 6


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", "RandomSampler"),
        ("tpe", "TPESampler"),
        ("gp", "GPSampler"),
        ("cmaes", "CmaEsSampler"),
        ("grid", "GridSampler"),
    ],
)
def test_samplers_by_name(name: str, cls: str) -> None:
    space = SearchSpace({"x": ParamSpec(type="categorical", choices=[1, 2])})
    assert type(make_sampler(name, space, None)).__name__ == cls
    seeded = make_sampler(name, space, 0)  # seeded per trial, except grid (fixed order)
    assert type(getattr(seeded, "current", seeded)).__name__ == cls


def test_pruners_by_name() -> None:
    assert isinstance(make_pruner("none", 5), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 5), optuna.pruners.HyperbandPruner)


def test_pruner_warmup_reaches_the_pruner_and_is_checked() -> None:
    from hpolab.config import StudySection

    assert make_pruner("median", 10)._n_warmup_steps == 2  # the default
    assert make_pruner("median", 10, 0)._n_warmup_steps == 0
    assert make_pruner("hyperband", 30)._min_resource == 1
    assert make_pruner("hyperband", 30, 4)._min_resource == 4
    assert StudySection().resolved_pruner_warmup(cross_validating=False) is None
    assert StudySection().resolved_pruner_warmup(cross_validating=True) == 1  # folds
    assert StudySection(pruner_warmup=0).resolved_pruner_warmup(cross_validating=True) == 0
    with pytest.raises(ValueError, match="pruner_warmup: there is no pruner to warm up"):
        StudySection(pruner="none", pruner_warmup=2)
    with pytest.raises(ValueError, match="minimum resource is at least 1"):
        StudySection(pruner="hyperband", pruner_warmup=0)
    with pytest.raises(ValueError, match="pruner_warmup"):
        StudySection(pruner_warmup=-1)


def test_default_metric_follows_the_task_only_when_the_default_data_was_replaced() -> None:
    assert load_config(None).data.spectrogram is not None  # the default study's windows
    replaced = load_config(None, data="builtin:diabetes")
    assert replaced.study.metric == "val_accuracy"
    assert replaced.data.spectrogram is None and not replaced.data.options
    assert replaced.for_task("classification").study.metric == "val_accuracy"
    later = load_config(replaced, **{"training.epochs": 3})  # flag kept through overrides
    assert later.for_task("regression").study.metric == "val_rmse"
    explicit = load_config(None, data="builtin:diabetes", metric="val_accuracy")
    with pytest.raises(ConfigError, match="study.metric: 'val_accuracy' does not apply"):
        explicit.for_task("regression")
    with pytest.raises(ConfigError, match="does not apply to regression"):
        load_config({"study": {"metric": "val_auc"}}).for_task("regression")


def test_startup_trials_default_to_a_quarter_of_the_budget() -> None:
    def startup(**study: object) -> int:
        return load_config({"study": study}).study.resolved_startup_trials

    assert startup(n_trials=20) == 5
    assert startup(n_trials=8) == 3  # at least 3
    assert startup(n_trials=200) == 10  # at most Optuna's default
    assert startup(n_trials=20, startup_trials=7) == 7
    with pytest.raises(ConfigError, match="study.startup_trials"):
        startup(startup_trials=0)
    with pytest.raises(ConfigError, match="study.startup_trials"):
        startup(startup_trials="many")
    space = SearchSpace({"x": ParamSpec(type="float", low=0.0, high=1.0)})
    for name in ("tpe", "gp"):
        sampler = make_sampler(name, space, 0, startup_trials=4)
        assert sampler.current._n_startup_trials == 4, name
        assert make_sampler(name, space, None, startup_trials=4)._n_startup_trials == 4


def test_the_first_trial_tries_the_middle_of_the_space() -> None:
    """Trial 0 takes the middle of each numeric range (log ranges in log space, on their
    step); categorical parameters and every later trial are the sampler's own."""
    import optuna

    def objective(trial: optuna.Trial) -> float:
        units = trial.suggest_int("units", 32, 256)
        rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5, step=0.1)
        trial.suggest_categorical("activation", ["relu", "tanh"])
        return units * rate + dropout

    middle = {"units": 144, "learning_rate": 1e-3, "dropout": 0.2}
    space = SearchSpace({"x": ParamSpec(type="float", low=0.0, high=1.0)})
    for name in ("tpe", "gp", "cmaes", "random"):
        for seed in (None, 5):
            sampler = make_sampler(name, space, seed, startup_trials=2, center_first=True)
            study = optuna.create_study(sampler=sampler)
            study.optimize(objective, n_trials=4)
            first = {k: v for k, v in study.trials[0].params.items() if k != "activation"}
            assert first == middle, (name, seed)
            assert study.trials[0].params["activation"] in ("relu", "tanh")
            assert all(t.params != study.trials[0].params for t in study.trials[1:]), name
    plain = optuna.create_study(sampler=make_sampler("tpe", space, 5, startup_trials=2))
    plain.optimize(objective, n_trials=1)
    assert plain.trials[0].params["units"] != 144  # off: the sampler's own start

    def center_first(**study: object) -> bool:
        return load_config({"study": study}).study.center_first

    assert not center_first(), "measured: it finds the best sooner on some data, not all"
    assert center_first(first_trial="center") and center_first(sampler="gp", first_trial="center")
    assert center_first(sampler="random", first_trial="center")
    assert not StudySection(sampler="grid").center_first
    with pytest.raises(ValueError, match="first_trial: a grid search visits its own points"):
        StudySection(sampler="grid", first_trial="center")
    with pytest.raises(ConfigError, match="study.first_trial"):
        center_first(first_trial="middle")


def test_a_sampler_seeded_per_trial_keeps_the_inferred_search_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sampler made for each trial takes over the search space its predecessor
    inferred (TPE and GP), and samples exactly what it would have inferring it afresh."""
    from hpolab.search import samplers

    def objective(trial: optuna.Trial) -> float:
        units = trial.suggest_int("units", 32, 256)
        rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        return units * rate

    space = SearchSpace({"x": ParamSpec(type="float", low=0.0, high=1.0)})

    def run(name: str, kept: bool) -> tuple[list[dict], int]:
        sampler = make_sampler(name, space, 3, startup_trials=3)
        spaces: list[object] = []  # held, so no two of them share an id

        def track(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            inner = sampler.current
            tpe, gp = "_search_space", "_intersection_search_space"  # Optuna's names
            spaces.append(getattr(inner, tpe, None) or getattr(inner, gp))

        if not kept:
            monkeypatch.setattr(samplers, "keep_search_space", lambda *_: None)
        storage = f"sqlite:///{tmp_path / f'{name}-{kept}.db'}"
        study = optuna.create_study(storage=storage, sampler=sampler)
        study.optimize(objective, n_trials=8, callbacks=[track])
        monkeypatch.undo()
        return [t.params for t in study.trials], len({id(space) for space in spaces})

    for name in ("tpe", "gp"):
        kept, kept_spaces = run(name, kept=True)
        fresh, fresh_spaces = run(name, kept=False)
        assert kept == fresh, name
        assert kept_spaces == 1, name  # one cache, updated trial by trial
        assert fresh_spaces == 8, name
