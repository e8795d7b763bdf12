"""Error types of hpolab.

Every error a user can fix derives from :class:`HpolabError`; the CLI turns it into a
one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def unknown_key(field: str, key: object, known: Iterable[str], what: str = "key") -> ConfigError:
    """The error for ``key`` not among ``known``: one line, with the closest known name."""
    names = sorted({str(k) for k in known})
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"use {', '.join(names)}"
    return ConfigError(f"{field}: unknown {what} {key!r}; {hint}")


class HpolabError(Exception):
    """Root of every error hpolab raises on purpose (bad input, inconsistent state)."""

    exit_code: int = 2


class ConfigError(HpolabError):
    """A study or training configuration is invalid."""


class DataError(HpolabError):
    """The data cannot be loaded or does not fit the configuration."""


class StudyMismatchError(HpolabError):
    """A resumed study does not match the stored one (direction, metric, data, space)."""


class StudyNotFoundError(HpolabError):
    """A study or model type asked for does not exist under the root."""


class StorageError(HpolabError):
    """The Optuna storage cannot be opened."""


class TrackingError(HpolabError):
    """The MLflow tracking store cannot be used."""


class TrialFailed(HpolabError):
    """A trial could not produce a value (for example the loss became NaN)."""


class CacheMismatchError(HpolabError):
    """A cached estimator was trained on other data or another grid than asked for."""


class FinalModelError(StudyNotFoundError):
    """No usable final model: none saved, its sidecar unreadable, or the checksum differs."""


class WorkersFailed(HpolabError):
    """Every worker process of a local pool (``--workers N``) failed."""

    exit_code = 1
