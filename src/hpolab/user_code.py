"""The user's own code named in a config as ``module:function`` (builders, data loaders).

A module is imported from the folder the config names (its own folder by default), else
from the working directory or anywhere on ``sys.path``. Python callers may pass a callable
instead; it is recorded as its ``module:qualname``.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpolab.errors import ConfigError

# "package.module:function" (a dotted module, a function name).
PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


# Sources of hpolab's own that read like module:function.
_OWN_PREFIXES = ("builtin:", "memory:")


def is_function_path(text: Any) -> bool:
    """Whether ``text`` reads as ``module:function`` (not ``builtin:<name>``)."""
    return (
        isinstance(text, str)
        and PATTERN.fullmatch(text) is not None
        and not text.startswith(_OWN_PREFIXES)
    )


def describe_callable(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a function, as a config records it."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}:{getattr(function, '__qualname__', repr(function))}"


def import_function(field: str, text: str, folder: str | None) -> Callable[..., Any]:
    """The function ``text`` names, imported from ``folder``, the working directory or
    ``sys.path``.

    Raises:
        ConfigError: naming ``field``, the module or function that is missing, or the error
            the module raised while importing.
    """
    if not is_function_path(text):
        raise ConfigError(f"{field}: {text!r} is not 'module:function' (e.g. my_models:build)")
    module_name, function_name = text.split(":")
    for place in (folder, str(Path.cwd())):
        if place and place not in sys.path:
            sys.path.insert(0, place)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            where = f"{folder} or the working directory" if folder else "the working directory"
            raise ConfigError(
                f"{field}: module {module_name!r} not found in {where}; put {module_name}.py "
                "beside the config or run from its folder"
            ) from None
        raise ConfigError(f"{field}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # the user's module may raise anything while importing
        raise ConfigError(
            f"{field}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"{field}: {module_name} has no function {function_name!r}")
    return function
