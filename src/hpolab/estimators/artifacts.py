"""The files of a cached estimator, and how they are written and checked as one set.

A cache is the five files ``{prefix}_config.json``, ``{prefix}_model.keras``,
``{prefix}_metrics.json``, ``{prefix}_grid_results.json`` and (optionally)
``{prefix}_scaler.json``. The config file is the commit marker: it is removed first when a
cache is rewritten and written last, listing the SHA-256 of every other file. A cache counts
as present only if the config parses and every file it lists exists, parses and has that
digest, so an interrupted save or a truncated file is never loaded as valid.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpolab.layout import atomic_path, atomic_write_json, file_sha256

CACHE_FORMAT = 1


@dataclass
class CacheStatus:
    """What :meth:`ModelArtifacts.inspect` found."""

    valid: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    any_present: bool = False


@dataclass(frozen=True)
class ModelArtifacts:
    """Paths of one cache: ``model_dir`` / ``{prefix}_<part>``."""

    model_dir: Path
    prefix: str

    @property
    def config(self) -> Path:
        return self.model_dir / f"{self.prefix}_config.json"

    @property
    def model(self) -> Path:
        return self.model_dir / f"{self.prefix}_model.keras"

    @property
    def metrics(self) -> Path:
        return self.model_dir / f"{self.prefix}_metrics.json"

    @property
    def grid_results(self) -> Path:
        return self.model_dir / f"{self.prefix}_grid_results.json"

    @property
    def scaler(self) -> Path:
        return self.model_dir / f"{self.prefix}_scaler.json"

    @property
    def search_db(self) -> Path:
        """Optuna storage of the last grid search (not part of the cache)."""
        return self.model_dir / f"{self.prefix}_search.db"

    @property
    def search_storage(self) -> str:
        return f"sqlite:///{self.search_db}"

    def files(self) -> list[Path]:
        """Every cache file, the config (commit marker) last."""
        return [self.model, self.metrics, self.grid_results, self.scaler, self.config]

    def existing(self) -> list[Path]:
        return [p for p in [*self.files(), self.search_db] if p.exists()]

    def inspect(self) -> CacheStatus:
        """Check that the cache is complete and intact, without loading the model."""
        present = any(p.exists() for p in self.files())
        if not self.config.exists():
            problem = f"{self.config.name} is missing"
            return CacheStatus(False, [problem] if present else [], any_present=present)
        try:
            manifest = json.loads(self.config.read_text(encoding="utf-8"))
            listed: dict[str, str] = manifest["cache"]["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return CacheStatus(False, [f"{self.config.name} does not parse"], any_present=True)
        problems = [
            problem
            for name, digest in listed.items()
            if (problem := _check_file(self.model_dir / name, digest))
        ]
        return CacheStatus(not problems, problems, manifest, any_present=True)

    def remove(self) -> list[Path]:
        """Delete every cache file (config first) and the search database; return them."""
        removed = self.existing()
        for path in [self.config, *self.files(), self.search_db]:
            path.unlink(missing_ok=True)
        return removed

    def write(
        self,
        *,
        model_file: Path,
        config: dict[str, Any],
        metrics: dict[str, Any],
        grid_results: list[dict[str, Any]],
        scaler: dict[str, Any] | None,
        cache: dict[str, Any],
    ) -> None:
        """Write the whole cache; only a complete write leaves a valid cache behind."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        # Invalidate first: from here until the last rename, no valid cache exists.
        self.config.unlink(missing_ok=True)
        with atomic_path(self.model, suffix=".keras") as tmp:
            shutil.copyfile(model_file, tmp)
        atomic_write_json(self.metrics, metrics)
        atomic_write_json(self.grid_results, grid_results)
        written = [self.model, self.metrics, self.grid_results]
        if scaler is not None:
            atomic_write_json(self.scaler, scaler)
            written.append(self.scaler)
        else:
            self.scaler.unlink(missing_ok=True)
        digests = {p.name: file_sha256(p) for p in written}
        manifest = {
            "config": config,
            "cache": {**cache, "format": CACHE_FORMAT, "files": digests},
        }
        atomic_write_json(self.config, manifest)


def _check_file(path: Path, digest: str) -> str | None:
    if not path.exists():
        return f"{path.name} is missing"
    if file_sha256(path) != digest:
        return f"{path.name} is damaged (its checksum changed)"
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return f"{path.name} does not parse"
    return None


def find_caches(model_dir: Path) -> list[ModelArtifacts]:
    """Every cache prefix with at least one file in ``model_dir``, sorted by prefix."""
    suffixes = (
        "_config.json",
        "_model.keras",
        "_metrics.json",
        "_grid_results.json",
        "_scaler.json",
        "_search.db",
    )
    prefixes = {
        path.name[: -len(suffix)]
        for path in model_dir.glob("*")
        for suffix in suffixes
        if path.name.endswith(suffix) and not path.name.startswith(".")
    }
    return [ModelArtifacts(model_dir, prefix) for prefix in sorted(prefixes)]


def cache_summary(art: ModelArtifacts) -> dict[str, Any]:
    """One cache as plain data: status, estimator, best score, size (no model loading)."""
    status = art.inspect()
    summary: dict[str, Any] = {
        "prefix": art.prefix,
        "status": "valid" if status.valid else "incomplete",
        "problems": status.problems,
        "files": [p.name for p in art.existing()],
        "bytes": sum(p.stat().st_size for p in art.existing()),
    }
    if status.valid:
        cache = status.manifest["cache"]
        metrics = json.loads(art.metrics.read_text(encoding="utf-8"))
        summary.update(
            estimator=cache.get("estimator"),
            metric=metrics.get("metric"),
            best_score=metrics.get("best_score"),
            n_configs=cache.get("n_configs"),
            created=cache.get("created"),
            config=status.manifest.get("config"),
        )
    return summary
