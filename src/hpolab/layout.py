"""Every path hpolab writes, safe names, and atomic writes.

All outputs live under one relocatable root (``--root`` or ``HPOLAB_ROOT``), so several
workspaces can coexist and tests can run in a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpolab.errors import ConfigError

ROOT_ENV = "HPOLAB_ROOT"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
# A workspace root as callers give it: a path, or None for ``$HPOLAB_ROOT`` / the current
# directory (see :meth:`Layout.from_root`).
Root = str | os.PathLike[str] | None
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(value: str, field: str) -> str:
    """Return ``value`` if it is a safe file/study name, else raise :class:`ConfigError`.

    Names become file names and MLflow experiment names, so path separators and ``..``
    are refused rather than sanitised: a silently changed name would not be found again.
    """
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{field}: {value!r} is not a valid name; use 1-100 letters, digits, '_', '-' "
            "or '.', starting with a letter or digit (no '/', no '..')"
        )
    return value


def ensure_folder(path: Path, field: str) -> Path:
    """``path`` as an existing folder, made if missing.

    Raises:
        ConfigError: ``path`` is a file, or cannot be created (one line naming ``field``).
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{field}: {str(path)!r} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{field}: cannot create {str(path)!r} ({exc.strerror}); give a folder you can write to"
        ) from None
    return path


@dataclass(frozen=True)
class Layout:
    """Output locations under one root directory."""

    root: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike[str] | None = None) -> Layout:
        """Build a layout from ``root``, ``$HPOLAB_ROOT`` or the current directory."""
        chosen = root if root is not None else os.environ.get(ROOT_ENV, ".")
        return cls(Path(chosen).expanduser().resolve())

    def check_root(self) -> None:
        """Make sure the root is a folder (made if missing), else one error naming --root."""
        ensure_folder(self.root, "--root")

    @property
    def studies_dir(self) -> Path:
        return self.root / "hpo_studies"

    @property
    def results_root(self) -> Path:
        return self.root / "hpo_results"

    @property
    def mlruns_dir(self) -> Path:
        return self.root / "mlruns"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def training_run_dir(self, run: str) -> Path:
        """Folder of a manual training run (checkpoints, best model, logs, report)."""
        return self.root / "training" / "runs" / run

    def training_run(self, run: str) -> RunFolder:
        """The files of a manual training run; see :class:`RunFolder`."""
        return RunFolder(self.training_run_dir(run))

    def manual_model_dir(self, run: str) -> Path:
        """Where the final model of a manual run is copied for use."""
        return self.models_dir / "manual_runs" / run

    @property
    def preprocessing_cache_dir(self) -> Path:
        """Preprocessed arrays (spectrograms) shared by every study under this root."""
        return self.root / "cache" / "preprocessed"

    @property
    def cached_models_dir(self) -> Path:
        """Default home of the cached estimators' artifacts."""
        return self.models_dir / "cached"

    def study_db(self, study: str) -> Path:
        return self.studies_dir / f"{study}.db"

    def default_storage_url(self, study: str) -> str:
        return f"sqlite:///{self.study_db(study)}"

    def results_dir(self, study: str) -> Path:
        return self.results_root / study

    def results_file(self, study: str, model_type: str) -> Path:
        return self.results_dir(study) / f"hpo_results_{model_type}.json"

    def visualizations_dir(self, study: str, model_type: str) -> Path:
        return self.results_dir(study) / f"{model_type}_visualizations"

    def trial_dir(self, study: str, model_type: str, number: int) -> Path:
        """Files of one trial's callbacks (checkpoints, metrics log, TensorBoard)."""
        return self.results_dir(study) / "trials" / model_type / f"trial_{number}"

    def plots_page(self, study: str) -> Path:
        """The interactive plots of every model type, one self-contained HTML page."""
        return self.results_dir(study) / f"{study}_plots.html"

    def report_file(self, study: str) -> Path:
        return self.results_dir(study) / f"{study}_report.pdf"

    def combined_results_file(self, study: str) -> Path:
        return self.results_dir(study) / "hpo_combined_results.json"

    def final_model_dir(self, study: str) -> Path:
        return self.models_dir / "hpo_derived" / study

    def final_model_path(self, study: str, model_type: str, suffix: str = ".keras") -> Path:
        """``suffix`` is ``.keras`` for networks, ``.skops`` for scikit-learn baselines."""
        return self.final_model_dir(study) / f"final_model_{model_type}{suffix}"

    def final_sidecar_path(self, study: str, model_type: str) -> Path:
        return self.final_model_dir(study) / f"final_model_{model_type}.json"

    @property
    def tracking_db(self) -> Path:
        return self.mlruns_dir / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow runs go: ``$MLFLOW_TRACKING_URI`` if set, else the root's store."""
        return os.environ.get(TRACKING_ENV) or f"sqlite:///{self.tracking_db}"

    @property
    def shared_tracking(self) -> bool:
        """Whether runs go to a tracking store outside the root (``$MLFLOW_TRACKING_URI``)."""
        return self.tracking_uri != f"sqlite:///{self.tracking_db}"

    @property
    def artifacts_dir(self) -> Path:
        return self.mlruns_dir / "artifacts"


@dataclass(frozen=True)
class RunFolder:
    """The files of one manual training run (``training/runs/<run>/``)."""

    path: Path

    @property
    def name(self) -> str:
        """The run's name (the folder's)."""
        return self.path.name

    @property
    def state(self) -> Path:
        """Status, epochs done and MLflow run id, rewritten as the run goes."""
        return self.path / "run_state.json"

    @property
    def config(self) -> Path:
        """The effective configuration; a resume reads it back."""
        return self.path / "config.yaml"

    @property
    def console_log(self) -> Path:
        """What the run reported, appended to by a resume."""
        return self.path / "console.log"

    @property
    def history(self) -> Path:
        """Every epoch's metrics."""
        return self.path / "training_history.json"

    @property
    def model_info(self) -> Path:
        """Type, params, size, data, timing, test metrics and versions of the final model."""
        return self.path / "model_info.json"

    @property
    def best_model(self) -> Path:
        """The model at the best validation epoch."""
        return self.path / "best_model.keras"

    @property
    def checkpoints(self) -> Path:
        """Folder of the last epochs' checkpoints (``epoch_<n>.keras``), for resume."""
        return self.path / "checkpoints"

    @property
    def report(self) -> Path:
        """The PDF report (its figures are written beside it as PNG)."""
        return self.path / "report.pdf"

    def final_model(self, model_type: str) -> Path:
        """The model at the end of training (best weights restored)."""
        return self.path / f"final_model_{model_type}.keras"


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic:
    readers see either the old file or the complete new one, never a partial write.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid in the name lets a later run tell a dead writer's leftover.
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=f".tmp{suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            # mkstemp makes the file private (0600); a result is as readable as any file
            # the user creates (the umask decides).
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# The names atomic_path gives its temporary files: ".<name>.<pid>.<8 random>.tmp<suffix>"
# (older versions: without the pid).
_TEMP_NAME = re.compile(r"\..+?(?:\.(\d+))?\.[A-Za-z0-9_]{8}\.tmp(?:\.\w+)?")
# A temporary file untouched this long belongs to a writer that died (writes take seconds).
STALE_TEMP_SECONDS = 120.0
# ...or this long, when its writer's process is known gone.
_DEAD_WRITER_SECONDS = 2.0


def is_temp_file(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` (never a result)."""
    return bool(_TEMP_NAME.fullmatch(path.name))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # not Linux, or gone just now: only the signal check counts
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove_stale_temp_files(folder: Path, recursive: bool = True) -> int:
    """Delete temporary files a killed writer left in ``folder``; return how many.

    A file whose writer (its pid is in the name) is gone, or that nobody touched for
    :data:`STALE_TEMP_SECONDS`: another worker's write in progress is left alone.
    """
    if not folder.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in (folder.rglob if recursive else folder.glob)(".*.tmp*"):
        match = _TEMP_NAME.fullmatch(path.name)
        try:
            if match is None or not path.is_file():
                continue
            age = now - path.stat().st_mtime
            writer_gone = match.group(1) is not None and not process_alive(int(match.group(1)))
            if age > STALE_TEMP_SECONDS or (writer_gone and age > _DEAD_WRITER_SECONDS):
                path.unlink()
                removed += 1
        except FileNotFoundError:  # its writer finished (or another sweep got it) just now
            continue
    return removed


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(target: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``target`` atomically."""
    atomic_write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_json_default))


def atomic_save(target: Path, save: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``save(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target, suffix=suffix) as tmp:
        save(tmp)


@contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``target`` (``<target>.lock``) for one host's processes.

    For first-time creation of local databases by workers starting together; workers on
    other hosts coordinate through the study storage instead.
    """
    import fcntl  # POSIX only; imported here so the rest of the module loads everywhere

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (integrity check of saved models and caches)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays appear in metrics and scaler statistics.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
