"""How hpolab names things in an Optuna storage, without importing Optuna.

Shared by the storage (write side) and the catalog (read side), which read-only commands
load without Optuna: see :mod:`hpolab.search.sqlite_reader`.
"""

from __future__ import annotations

import re
from typing import Any

# Prefix of hpolab metadata in Optuna study user attributes.
META = "hpolab"
JOURNAL_SCHEMES = ("redis://", "rediss://", "unix://")


def optuna_study_name(study: str, model_type: str) -> str:
    """Each model type is its own Optuna study inside the study's storage."""
    return f"{study}.{model_type}"


def model_types_from(optuna_names: list[str], study: str) -> list[str]:
    """Model types of hpolab study ``study`` among the Optuna study names of a storage.

    Names with a ``:`` are hpolab's bookkeeping (see :mod:`hpolab.search.workers`). Model
    types have no ``.``: ``x.mlp.cnn1d`` is model type cnn1d of study ``x.mlp``, not of ``x``.
    """
    prefix = f"{study}."
    return [
        n.removeprefix(prefix)
        for n in optuna_names
        if n.startswith(prefix) and ":" not in n and "." not in n.removeprefix(prefix)
    ]


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def is_sql_url(url: str) -> bool:
    """Whether ``url`` is a SQLAlchemy URL (Optuna's RDB storage) rather than Redis or gRPC."""
    return not url.startswith((*JOURNAL_SCHEMES, "grpc://"))


def get_meta(study: Any) -> dict[str, Any]:
    """hpolab metadata stored on an Optuna study (empty for a new one)."""
    return dict(study.user_attrs.get(META, {}))
