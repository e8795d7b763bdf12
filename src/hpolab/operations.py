"""Operations on stored studies: list, status, best, trials, fetch, retrain, plots, delete,
compare. The ``hpolab`` subcommands are thin fronts over these functions.

Every function takes the workspace ``root`` (default ``$HPOLAB_ROOT`` or the current
directory) and an optional ``storage`` URL for studies kept outside it (PostgreSQL).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hpolab.errors import ConfigError, StudyMismatchError, StudyNotFoundError
from hpolab.layout import Layout, check_name
from hpolab.models.registry import model_file_suffix
from hpolab.progress import QuietReporter, Reporter
from hpolab.search.catalog import (
    StoredStudy,
    best_trial,
    known_studies,
    model_type_status,
    open_stored,
    trial_rows,
)

Root = str | os.PathLike[str] | None
EXPORT_FORMATS = ("keras", "savedmodel", "h5", "tflite")
TRIAL_STATES = ("complete", "pruned", "fail", "running", "waiting")


def list_studies(root: Root = None, storage: str | None = None) -> list[dict[str, Any]]:
    """Every study under ``root`` (or in ``storage``) with per-model-type progress."""
    layout = Layout.from_root(root)
    rows = []
    for name, url in known_studies(layout, storage).items():
        stored = open_stored(layout, name, url if storage else None)
        per_model = [model_type_status(stored, mt) for mt in stored.model_types]
        states = {m["state"] for m in per_model}
        rows.append(
            {
                "study": name,
                "storage": url,
                "model_types": per_model,
                "state": "running"
                if "running" in states
                else ("finished" if states == {"finished"} else "incomplete"),
            }
        )
    return rows


def study_status(name: str, root: Root = None, storage: str | None = None) -> dict[str, Any]:
    """Per model type: trials complete / pruned / failed / running, best so far, ETA."""
    stored = open_stored(Layout.from_root(root), name, storage)
    return {
        "study": name,
        "storage": stored.storage_url,
        "model_types": {mt: model_type_status(stored, mt) for mt in stored.model_types},
    }


def best(
    name: str, model_type: str | None = None, root: Root = None, storage: str | None = None
) -> dict[str, dict[str, Any]]:
    """Best value, trial, parameters and the final model (if any) per model type."""
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    out: dict[str, dict[str, Any]] = {}
    for mt in stored.check_model_type(model_type):
        trial = best_trial(stored.studies[mt])
        sidecar = _sidecar(layout, name, mt)
        cfg = stored.config(mt)
        out[mt] = {
            "metric": cfg.study.metric,
            "direction": cfg.study.resolved_direction,
            "best_value": None if trial is None else trial.value,
            "best_trial": None if trial is None else trial.number,
            "params": {} if trial is None else stored.space(mt).replay(trial.params),
            "val_metrics": {} if trial is None else trial.user_attrs.get("val_metrics", {}),
            "mlflow_run_id": None if trial is None else trial.user_attrs.get("mlflow_run_id"),
            "final_model": str(layout.final_model_path(name, mt, model_file_suffix(mt)))
            if sidecar
            else None,
            "final_model_trial": sidecar.get("best_trial") if sidecar else None,
            "test_metrics": sidecar.get("test_metrics", {}) if sidecar else {},
        }
    return out


def trials(
    name: str,
    model_type: str | None = None,
    state: str | None = None,
    sort: str = "number",
    root: Root = None,
    storage: str | None = None,
) -> list[dict[str, Any]]:
    """Trials of a study as rows (``model_type`` added), filtered by state and sorted."""
    if state is not None and state not in TRIAL_STATES:
        raise ConfigError(f"--state: {state!r} is not one of {', '.join(TRIAL_STATES)}")
    if sort not in ("number", "value", "duration"):
        raise ConfigError(f"--sort: {sort!r} is not one of number, value, duration")
    stored = open_stored(Layout.from_root(root), name, storage)
    rows = []
    for mt in stored.check_model_type(model_type):
        direction = stored.config(mt).study.resolved_direction
        for row in trial_rows(stored.studies[mt], stored.space(mt)):
            if state is None or row["state"] == state:
                rows.append({"model_type": mt, "direction": direction, **row})
    if sort == "value":
        # Best first, whatever the direction; trials without a value last.
        rows.sort(
            key=lambda r: (
                r["value"] is None,
                (-1 if r["direction"] == "maximize" else 1) * (r["value"] or 0.0),
            )
        )
    elif sort == "duration":
        rows.sort(key=lambda r: -(r["duration_seconds"] or 0.0))
    for row in rows:
        row.pop("direction")
    return rows


def fetch(
    name: str,
    dest: str | os.PathLike[str],
    model_type: str | None = None,
    fmt: str = "keras",
    root: Root = None,
    storage: str | None = None,
) -> list[Path]:
    """Copy (or export) the final model(s) and their sidecars to ``dest``; return the files."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    chosen = stored.check_model_type(model_type)
    missing = [mt for mt in chosen if not _sidecar(layout, name, mt)]
    if missing:
        raise StudyNotFoundError(
            f"study {name!r} has no final model for {', '.join(missing)} yet; "
            f"run hpolab retrain {name}" + (f" --model-type {missing[0]}" if model_type else "")
        )
    target = Path(dest).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for mt in chosen:
        written.extend(_export_one(layout, name, mt, target, fmt))
    return written


def _export_one(layout: Layout, name: str, mt: str, target: Path, fmt: str) -> list[Path]:
    from hpolab.api import load_final_model

    source = layout.final_model_path(name, mt, model_file_suffix(mt))
    if fmt != "keras" and source.suffix != ".keras":
        raise ConfigError(
            f"--format {fmt}: {mt} is a scikit-learn baseline saved as {source.name}; "
            "use --format keras, which copies the model file as it is"
        )
    sidecar = target / layout.final_sidecar_path(name, mt).name
    shutil.copy2(layout.final_sidecar_path(name, mt), sidecar)
    if fmt == "keras":
        out = target / source.name
        shutil.copy2(source, out)
        return [out, sidecar]
    from hpolab.training.export import export_model

    model = load_final_model(name, mt, root=layout.root).model  # checks the checksum
    (result,) = export_model(model, target, f"final_model_{mt}", [fmt])
    if not result.ok or result.path is None:
        raise ConfigError(f"--format {fmt}: {result.describe()}")
    return [result.path, sidecar]


def retrain(
    name: str,
    model_type: str | None = None,
    trial: int | None = None,
    root: Root = None,
    storage: str | None = None,
    track: bool = True,
    reporter: Reporter | None = None,
) -> dict[str, dict[str, Any]]:
    """Retrain the best trial (or trial number ``trial``) into the final model, again."""
    from hpolab.data import load_dataset
    from hpolab.search.finish import final_model
    from hpolab.tracking import StudyTracker

    reporter = reporter or QuietReporter()
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    chosen = stored.check_model_type(model_type)
    if trial is not None and len(chosen) != 1:
        raise ConfigError(
            "--trial: name the model type too (--model-type), trial numbers are per model type"
        )
    out: dict[str, dict[str, Any]] = {}
    for mt in chosen:
        cfg = stored.config(mt)
        study = stored.studies[mt]
        frozen = _pick_trial(stored, mt, trial)
        data = load_dataset(cfg.data, layout.preprocessing_cache_dir)
        stored_fp = stored.meta(mt).get("data_fingerprint")
        if stored_fp and stored_fp != data.fingerprint:
            raise StudyMismatchError(
                f"data: {cfg.data.source} has changed since study {name!r} ran "
                f"(fingerprint {stored_fp} -> {data.fingerprint}); retraining would not "
                "reproduce its trials"
            )
        tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, name) if track else None
        parent = stored.meta(mt).get("mlflow_parent_run_id") if track else None
        info = final_model(
            cfg,
            mt,
            study,
            stored.space(mt),
            data,
            layout,
            tracker,
            parent,
            reporter,
            trial=frozen,
            force=True,
        )
        assert info is not None
        out[mt] = {
            "trial": frozen.number,
            "model": str(info.model_path),
            "sidecar": str(info.sidecar_path),
            "test_metrics": info.test_metrics,
            "seconds": round(info.seconds, 2),
            "mlflow_run_id": info.mlflow_run_id,
        }
    return out


def _pick_trial(stored: StoredStudy, mt: str, number: int | None) -> Any:
    from optuna.trial import TrialState

    study = stored.studies[mt]
    if number is None:
        frozen = best_trial(study)
        if frozen is None:
            raise StudyNotFoundError(f"study {stored.name!r} ({mt}) has no complete trial yet")
        return frozen
    complete = {
        t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    if number not in complete:
        shown = ", ".join(str(n) for n in sorted(complete)[:20]) or "none"
        raise ConfigError(
            f"--trial: trial {number} of {stored.name!r} ({mt}) is not a complete trial; "
            f"complete trials: {shown}"
        )
    return complete[number]


def plots(
    name: str,
    model_type: str | None = None,
    root: Root = None,
    storage: str | None = None,
    track: bool = True,
) -> dict[str, dict[str, Any]]:
    """(Re)build the visualizations of each model type; log them to the parent run."""
    from hpolab.reporting.results import param_importance
    from hpolab.search.finish import draw_plots
    from hpolab.tracking import StudyTracker

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    out: dict[str, dict[str, Any]] = {}
    for mt in stored.check_model_type(model_type):
        cfg = stored.config(mt)
        study = stored.studies[mt]
        importance = param_importance(study, cfg.study.seed).get("values", {})
        parent = stored.meta(mt).get("mlflow_parent_run_id") if track else None
        tracker = (
            StudyTracker(layout.tracking_uri, layout.artifacts_dir, name)
            if parent and layout.tracking_db.exists()
            else None
        )
        drawn = draw_plots(layout, name, mt, study, cfg.study.metric, importance, tracker, parent)
        out[mt] = {
            "directory": str(drawn.directory),
            "png": {k: str(v) for k, v in drawn.png.items()},
            "html": {k: str(v) for k, v in drawn.html.items()},
            "skipped": drawn.skipped,
        }
    return out


def report(
    name: str, root: Root = None, storage: str | None = None, redraw: bool = False
) -> dict[str, Any]:
    """Write ``hpo_results/<study>/<study>_report.pdf``; draw missing plots first."""
    from hpolab.reporting.report import ModelSection, build_report
    from hpolab.reporting.results import param_importance

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    sections = []
    for mt in stored.model_types:
        plot_dir = layout.visualizations_dir(name, mt)
        if redraw or not any(plot_dir.glob("*.png")):
            plots(name, mt, root=layout.root, storage=storage, track=False)
        cfg = stored.config(mt)
        study = stored.studies[mt]
        trial = best_trial(study)
        sidecar = _sidecar(layout, name, mt)
        space = stored.space(mt)
        sections.append(
            ModelSection(
                model_type=mt,
                metric=cfg.study.metric,
                direction=cfg.study.resolved_direction,
                n_trials_target=cfg.study.n_trials,
                space={k: v.model_dump(exclude_defaults=True) for k, v in space.params.items()},
                trials=trial_rows(study, space),
                best_value=None if trial is None else trial.value,
                best_trial=None if trial is None else trial.number,
                best_params={} if trial is None else space.replay(trial.params),
                importance=param_importance(study, cfg.study.seed),
                test_metrics=sidecar.get("test_metrics", {}),
                test_outputs=sidecar.get("test_outputs", {}),
                plots={p.stem: p for p in sorted(plot_dir.glob("*.png"), key=_plot_order)},
            )
        )
    cfg = stored.config()
    setup = {
        "data": f"{cfg.data.source} (target {cfg.data.target or '-'}, "
        f"task {cfg.data.task or 'inferred'})",
        "objective": f"{cfg.study.metric} ({cfg.study.resolved_direction})",
        "search": f"sampler {cfg.study.sampler}, pruner {cfg.study.pruner}, "
        f"{cfg.study.n_trials} trials per model type, seed {cfg.study.seed}",
        "training": f"up to {cfg.training.epochs} epochs, batch {cfg.training.batch_size}, "
        f"patience {cfg.training.patience}, optimizer {cfg.training.optimizer}",
        "storage": stored.storage_url,
    }
    path = layout.report_file(name)
    pages = build_report(path, name, setup, sections)
    return {"report": str(path), "pages": pages}


def _plot_order(path: Path) -> int:
    from hpolab.reporting.plots import PLOTS

    return PLOTS.index(path.stem) if path.stem in PLOTS else len(PLOTS)


def delete(
    name: str, root: Root = None, storage: str | None = None, reporter: Reporter | None = None
) -> list[str]:
    """Delete a study: Optuna storage, results, final models, MLflow runs and model."""
    from hpolab.search.setup import delete_study

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    removed = delete_study(name, stored.storage, layout, reporter or QuietReporter(), "delete")
    stored.storage.engine.dispose()
    db = layout.study_db(name)
    if storage is None and db.exists():
        db.unlink()
        removed.append(str(db))
    return removed


def compare(
    names: list[str], root: Root = None, storage: str | None = None
) -> list[dict[str, Any]]:
    """Best values, trial counts and time spent of several studies, side by side."""
    if len(names) < 2:
        raise ConfigError("compare: give at least two study names")
    rows = []
    for name in names:
        status = study_status(name, root, storage)
        for mt, s in status["model_types"].items():
            rows.append(
                {
                    "study": name,
                    "model_type": mt,
                    "metric": s["metric"],
                    "direction": s["direction"],
                    "best_value": s["best_value"],
                    "trials": s["trials_done"],
                    "complete": s["complete"],
                    "pruned": s["pruned"],
                    "failed": s["fail"],
                    "seconds_spent": s["seconds_spent"],
                }
            )
    return rows


def _sidecar(layout: Layout, name: str, model_type: str) -> dict[str, Any]:
    path = layout.final_sidecar_path(name, model_type)
    model = layout.final_model_path(name, model_type, model_file_suffix(model_type))
    if not (path.is_file() and model.is_file()):
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def export(
    dest: Path,
    model_file: str | Path | None = None,
    run: str | None = None,
    study: str | None = None,
    model_type: str | None = None,
    formats: str | list[str] | None = None,
    root: Root = None,
    storage: str | None = None,
) -> list[Any]:
    """Export a model (a ``.keras`` file, a manual run's or a study's final model).

    Each export is reloaded and compared with the model on a batch of 8 random inputs of
    the model's input shape (standardized inputs, as the model sees them).
    Returns :class:`hpolab.training.export.ExportResult` per format.
    """
    from hpolab.training.export import export_model, parse_formats
    from hpolab.training.saving import load_model

    wanted = parse_formats(formats)
    layout = Layout.from_root(root)
    if run is not None:
        check_name(run, "--run")
        source = layout.manual_model_dir(run)
        found = sorted(source.glob("final_model_*.keras"))
        if not found:
            raise StudyNotFoundError(
                f"--run: no final model of run {run!r} under {source}; "
                "train it with train_nn_model.py first"
            )
        path = found[0]
    elif study is not None:
        from hpolab.api import load_final_model

        final = load_final_model(study, model_type, root=layout.root)  # checks the checksum
        path = final.path
        if path.suffix != ".keras":
            raise ConfigError(
                f"export: {final.metadata['model_type']} is a scikit-learn baseline "
                f"({path.name}); use hpolab fetch to copy it"
            )
    else:
        path = Path(str(model_file)).expanduser()
        if not path.is_file() or path.suffix != ".keras":
            raise ConfigError(f"export: {path} is not a .keras file")
    model = load_model(path)
    return export_model(model, Path(dest).expanduser().resolve(), path.stem, wanted)
