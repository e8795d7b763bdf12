"""The final-model store: one owner of ``models/hpo_derived/<study>/final_model_<type>.*``.

A final model is two files: the model (``.keras``, or ``.skops`` for scikit-learn
baselines) and its JSON sidecar (:class:`Sidecar`: parameters, test metrics, preprocessing,
data fingerprint, best trial, MLflow run id and the model's SHA-256). Both are written
atomically, the model first and the sidecar last, so a sidecar always describes a complete
model file. Reading checks that checksum: a model and a sidecar from different runs are
never paired. Every problem is one error, :class:`FinalModelError`.

The store moves files; it does not train or load models (``hpolab.training`` does).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hpolab.errors import FinalModelError
from hpolab.layout import Layout, atomic_save, atomic_write_json, check_name, file_sha256

__all__ = [
    "FinalModelError",
    "FinalModelRecord",
    "FinalModelStore",
    "Sidecar",
    "read_fetched",
    "read_record",
]


@dataclass
class Sidecar:
    """What ``final_model_<type>.json`` holds about its model."""

    study: str
    model_type: str
    best_trial: int
    best_value: float | None
    metric: str
    direction: str
    params: dict[str, Any]
    training: dict[str, Any]
    test_metrics: dict[str, float]
    # Sidecars of earlier versions may lack what follows: each has a default.
    n_test_samples: int = 0
    test_outputs: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    trial_mlflow_run_id: str | None = None
    mlflow_run_id: str | None = None
    model_file: str = ""
    model_sha256: str = ""
    retrain_seconds: float = 0.0
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    versions: dict[str, str] = field(default_factory=dict)
    registered_model: dict[str, Any] | None = None
    # The test score beside a trivial model's (training.evaluation.baseline_comparison).
    baseline: dict[str, Any] | None = None
    # A model of the user's: its builder (module:function) and where its module was found,
    # whose import registers the model's custom Keras objects.
    builder: dict[str, Any] | None = None
    # Keys this version does not know (written by a newer one): kept, written back as read.
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``registered_model`` only once the model is registered)."""
        raw = asdict(self)
        extras = raw.pop("extras")
        if raw["registered_model"] is None:
            del raw["registered_model"]
        return {**raw, **extras}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Sidecar:
        """Read a sidecar's JSON; missing keys take their defaults, unknown ones are kept."""
        known = {f.name for f in fields(cls)} - {"extras"}
        extras = {k: v for k, v in raw.items() if k not in known}
        return cls(**{k: v for k, v in raw.items() if k in known}, extras=extras)


@dataclass
class FinalModelRecord:
    """A final model on disk: its files and its sidecar."""

    model_path: Path
    sidecar_path: Path
    sidecar: Sidecar


@dataclass(frozen=True)
class FinalModelStore:
    """Final models of every study under one :class:`~hpolab.layout.Layout`."""

    layout: Layout

    def sidecar_path(self, study: str, model_type: str) -> Path:
        return self.layout.final_sidecar_path(study, model_type)

    def model_types(self, study: str) -> list[str]:
        """Model types of ``study`` with a saved sidecar, sorted."""
        folder = self.layout.final_model_dir(check_name(study, "study"))
        names = (p.stem.removeprefix("final_model_") for p in folder.glob("final_model_*.json"))
        return sorted(names)

    def read(self, study: str, model_type: str) -> FinalModelRecord:
        """The final model of ``study`` / ``model_type``, checked against its checksum.

        Raises:
            FinalModelError: no final model, an unreadable sidecar, or a checksum mismatch.
        """
        sidecar_path = self.sidecar_path(check_name(study, "study"), model_type)
        if not sidecar_path.is_file():
            raise FinalModelError(
                f"study {study!r} has no final model for {model_type!r} under {sidecar_path.parent}"
            )
        return read_record(sidecar_path)

    def find(self, study: str, model_type: str) -> FinalModelRecord | None:
        """:meth:`read`, or ``None`` where there is no intact final model."""
        try:
            return self.read(study, model_type)
        except FinalModelError:
            return None

    def write(
        self, sidecar: Sidecar, save: Callable[[Path], None], suffix: str = ".keras"
    ) -> FinalModelRecord:
        """Save the model with ``save(tmp_path)`` then its sidecar, both atomically.

        The sidecar's ``model_file`` and ``model_sha256`` are filled in here.
        """
        model_path = self.layout.final_model_path(sidecar.study, sidecar.model_type, suffix)
        atomic_save(model_path, save, suffix=suffix)
        sidecar.model_file = model_path.name
        sidecar.model_sha256 = file_sha256(model_path)
        record = FinalModelRecord(
            model_path, self.sidecar_path(sidecar.study, sidecar.model_type), sidecar
        )
        self.rewrite(record)
        return record

    def rewrite(self, record: FinalModelRecord) -> None:
        """Write ``record``'s sidecar again (after MLflow gave it a run id)."""
        atomic_write_json(record.sidecar_path, record.sidecar.to_dict())


def read_record(sidecar_path: Path) -> FinalModelRecord:
    """The final model described by ``sidecar_path``, checked against its checksum.

    Raises:
        FinalModelError: an unreadable sidecar, or a missing model or checksum mismatch.
    """
    try:
        sidecar = Sidecar.from_dict(json.loads(sidecar_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise FinalModelError(f"{sidecar_path} cannot be read ({exc}); retrain the study") from None
    # Only a file name: a hand-edited sidecar cannot point outside its own folder.
    model_path = sidecar_path.parent / Path(sidecar.model_file).name
    if not model_path.is_file() or sidecar.model_sha256 != file_sha256(model_path):
        raise FinalModelError(
            f"{model_path} does not match its sidecar JSON (missing or checksum differs); "
            "retrain the study"
        )
    return FinalModelRecord(model_path, sidecar_path, sidecar)


def read_fetched(path: Path, model_type: str | None = None) -> FinalModelRecord:
    """A final model copied out of a study (``hpolab fetch``): ``path`` is its folder, its
    model file or its sidecar; ``model_type`` picks one where the folder holds several.

    Raises:
        FinalModelError: nothing to load there, several model types and none chosen, or the
            files do not match.
    """
    if path.is_file():
        sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
        if not sidecar.is_file():
            raise FinalModelError(f"{path}: its sidecar {sidecar.name} is missing next to it")
        record = read_record(sidecar)
        if model_type is not None and record.sidecar.model_type != model_type:
            raise FinalModelError(
                f"{path} is the final model of {record.sidecar.model_type!r}, not {model_type!r}"
            )
        return record
    found = {p.stem.removeprefix("final_model_"): p for p in path.glob("final_model_*.json")}
    if not found:
        raise FinalModelError(f"{path}: no final model (final_model_<type>.json) there")
    if model_type is None and len(found) > 1:
        raise FinalModelError(f"{path} holds {', '.join(sorted(found))}; pass model_type")
    chosen = model_type or next(iter(found))
    if chosen not in found:
        raise FinalModelError(f"{path}: no final model for {chosen!r}; has {', '.join(found)}")
    return read_record(found[chosen])
