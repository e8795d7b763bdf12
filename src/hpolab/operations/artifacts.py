"""Handing out model files: ``fetch`` a study's final model, ``export`` any model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.errors import ConfigError, StudyNotFoundError
from hpolab.final_models import FinalModelError, FinalModelRecord, FinalModelStore
from hpolab.layout import Layout, Root, check_name, ensure_folder
from hpolab.search.catalog import open_stored

if TYPE_CHECKING:
    from hpolab.api import FinalModel

EXPORT_FORMATS = ("keras", "savedmodel", "h5", "tflite")


def fetch(
    name: str,
    dest: str | os.PathLike[str],
    model_type: str | None = None,
    fmt: str = "keras",
    root: Root = None,
    storage: str | None = None,
) -> list[Path]:
    """Copy (or export) the final model(s) and their sidecars to ``dest``; return the files.

    Raises:
        FinalModelError: a chosen model type has no final model, or its files do not match.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    chosen = stored.check_model_type(model_type)
    records = _read_finals(FinalModelStore(layout), name, chosen, model_type)
    target = ensure_folder(Path(dest).expanduser().resolve(), "--dest")
    written: list[Path] = []
    for record in records:
        written.extend(_export_one(record, target, fmt))
    return written


def _read_finals(
    store: FinalModelStore, name: str, chosen: list[str], model_type: str | None
) -> list[FinalModelRecord]:
    """The final models of ``chosen``, all checked before any file is copied."""
    saved = set(store.model_types(name))
    missing = [mt for mt in chosen if mt not in saved]
    if missing:
        # One message for every type not retrained yet, with the command that makes them.
        raise FinalModelError(
            f"study {name!r} has no final model for {', '.join(missing)} yet; "
            f"run hpolab retrain {name}" + (f" --model-type {missing[0]}" if model_type else "")
        )
    # A saved but damaged model fails here with the store's reason.
    return [store.read(name, mt) for mt in chosen]


def _export_one(record: FinalModelRecord, target: Path, fmt: str) -> list[Path]:
    """Copy one final model's sidecar to ``target`` with the model, or the model exported."""
    source, mt = record.model_path, record.sidecar.model_type
    if fmt != "keras" and source.suffix != ".keras":
        raise ConfigError(
            f"--format {fmt}: {mt} is a scikit-learn baseline saved as {source.name}; "
            "use --format keras, which copies the model file as it is"
        )
    sidecar = target / record.sidecar_path.name
    shutil.copy2(record.sidecar_path, sidecar)
    if fmt == "keras":
        out = target / source.name
        shutil.copy2(source, out)
        return [out, sidecar]
    # TensorFlow only for real exports: a plain copy stays light.
    from hpolab.training.export import export_model
    from hpolab.training.saving import load_model

    model = load_model(source)  # the store has checked its checksum
    (result,) = export_model(model, target, f"final_model_{mt}", [fmt])
    if not result.ok or result.path is None:
        raise ConfigError(f"--format {fmt}: {result.describe()}")
    return [result.path, sidecar]


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
    the model's input shape (standardized inputs, as the model sees them). The model's
    sidecar (or a manual run's ``model_info.json``) is copied next to the exports as
    ``<model>.json``: exports take standardized inputs, the caller applies its scaling.
    Returns :class:`hpolab.training.export.ExportResult` per format.
    """
    from hpolab.training.export import export_model, parse_formats
    from hpolab.training.saving import load_model

    wanted = parse_formats(formats)
    layout = Layout.from_root(root)
    if run is not None:
        path = _manual_run_model(layout, run)
        model = load_model(path)
    elif study is not None:
        final = _study_model(layout, study, model_type)
        path, model = final.path, final.model  # loaded once, after its checksum was checked
    else:
        path = _keras_file(model_file)
        model = load_model(path)
    target = ensure_folder(Path(dest).expanduser().resolve(), "--dest")
    results = export_model(model, target, path.stem, wanted)
    metadata = _copy_metadata(path, target)
    for result in results:
        result.metadata = metadata
    return results


def _copy_metadata(model_path: Path, target: Path) -> Path | None:
    """Put the model's metadata next to its exports: a final model's sidecar (scaling,
    labels), or a manual run's ``model_info.json``. Every export expects standardized
    inputs: the caller applies the ``feature_scaler`` written there, and reads labels
    from its ``classes``."""
    candidates = [model_path.with_suffix(".json"), model_path.parent / "model_info.json"]
    for source in candidates:
        if source.is_file() and _is_metadata(source):
            copied = target / f"{model_path.stem}.json"
            if source.resolve() != copied.resolve():
                shutil.copy2(source, copied)
            return copied
    return None


def _is_metadata(path: Path) -> bool:
    """Whether ``path`` is hpolab's metadata of a model (not, say, a Keras ``to_json``)."""
    import json

    try:
        return "preprocessing" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def _manual_run_model(layout: Layout, run: str) -> Path:
    """The final ``.keras`` model of manual run ``run``."""
    check_name(run, "--run")
    source = layout.manual_model_dir(run)
    found = sorted(source.glob("final_model_*.keras"))
    if not found:
        raise StudyNotFoundError(
            f"--run: no final model of run {run!r} under {source}; "
            "train it with train_nn_model.py first"
        )
    return found[0]


def _keras_file(model_file: str | Path | None) -> Path:
    """``model_file`` if it is an existing ``.keras`` file."""
    path = Path(str(model_file)).expanduser()
    if not path.is_file() or path.suffix != ".keras":
        raise ConfigError(f"export: {path} is not a .keras file")
    return path


def _study_model(layout: Layout, study: str, model_type: str | None) -> FinalModel:
    """The final ``.keras`` model of ``study``, loaded (``model_type`` may be left out)."""
    from hpolab.api import load_final_model
    from hpolab.final_models import FinalModelStore
    from hpolab.user_code import import_function

    store = FinalModelStore(layout)
    for mt in [model_type] if model_type else store.model_types(study):
        record = store.find(study, mt)
        builder = record.sidecar.builder if record is not None else None
        if builder:  # the study's own model code registers its custom objects, as in retrain
            import_function("builder", builder["source"], builder.get("code_path"))
    final = load_final_model(study, model_type, root=layout.root)  # checks the checksum
    if final.path.suffix != ".keras":
        raise ConfigError(
            f"export: {final.metadata['model_type']} is a scikit-learn baseline "
            f"({final.path.name}); use hpolab fetch to copy it"
        )
    return final
