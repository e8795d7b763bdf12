"""Builders of the user's own Keras models, named in a config as ``module:function``.

Two ways in:

- ``build(params, input_shape, n_outputs, task) -> keras.Model`` with the params of the
  model type's ``search_space`` (as hpolab's own builders);
- ``build(hp) -> keras.Model``, a define-by-run builder declaring its space in code with
  ``hp`` (:class:`~hpolab.models.hyperparameters.HyperParameters`).

A module is imported from the folder the config names (its own folder by default), else
from the working directory or anywhere on ``sys.path``. A callable may be given directly
from Python. Resolved builders are registered per process by model-type name, so the rest
of hpolab builds them like its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpolab.errors import ConfigError
from hpolab.user_code import describe_callable, import_function

if TYPE_CHECKING:
    from hpolab.config import StudyConfig


@dataclass(frozen=True)
class UserBuilder:
    """A resolved builder: the function, how it is called, where it came from."""

    model_type: str
    function: Callable[..., Any]
    define_by_run: bool
    source: str  # "module:function" as given, or the callable's module:qualname

    @property
    def field(self) -> str:
        return f"models.{self.model_type}.builder"


_BUILDERS: dict[str, UserBuilder] = {}


def resolve(model_type: str, builder: Any, folder: str | None = None) -> UserBuilder:
    """The builder of ``model_type`` (``module:function`` text or a callable), checked.

    Raises:
        ConfigError: naming ``models.<model_type>.builder`` and the fix.
    """
    field = f"models.{model_type}.builder"
    if callable(builder):
        function, source = builder, describe_callable(builder)
    else:
        function, source = import_function(field, str(builder), folder), str(builder)
    return UserBuilder(model_type, function, _is_define_by_run(field, source, function), source)


def register(builder: UserBuilder) -> None:
    """Make ``builder`` the one hpolab uses for its model type in this process."""
    _BUILDERS[builder.model_type] = builder


def register_config(cfg: StudyConfig) -> dict[str, UserBuilder]:
    """Resolve and register every builder ``cfg`` names (imports the user's modules)."""
    found = {}
    for model_type, spec in cfg.models.items():
        if spec.builder is not None:
            found[model_type] = resolve(model_type, spec.builder, cfg.study.code_path)
            register(found[model_type])
    return found


def registered(model_type: str) -> UserBuilder | None:
    """The user builder registered for ``model_type``, if any."""
    return _BUILDERS.get(model_type)


def _is_define_by_run(field: str, source: str, function: Callable[..., Any]) -> bool:
    """``build(hp)`` (one argument) or ``build(params, input_shape, n_outputs, task)``."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False  # a builtin or an odd callable: called the params way, errors then
    if len(signature.parameters) == 1:
        return True
    try:
        signature.bind(None, input_shape=None, n_outputs=None, task=None)
    except TypeError:
        raise ConfigError(
            f"{field}: {source} takes ({', '.join(signature.parameters)}); a builder is "
            "build(hp) or build(params, input_shape, n_outputs, task)"
        ) from None
    return False


def call(
    builder: UserBuilder,
    params: dict[str, Any],
    input_shape: tuple[int, ...],
    task: str,
    n_outputs: int,
    hp: Any = None,
) -> Any:
    """Run the builder and check it returned a Keras model.

    Raises:
        ConfigError: the builder raised or returned something else (its message kept).
    """
    try:
        if builder.define_by_run:
            model = builder.function(hp)
        else:
            model = builder.function(
                dict(params), input_shape=input_shape, n_outputs=n_outputs, task=task
            )
    except ConfigError:
        raise
    except Exception as exc:  # the user's code: any error is the builder's
        raise ConfigError(
            f"{builder.field}: {builder.source} raised {type(exc).__name__}: {exc}"
        ) from None
    import keras

    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"{builder.field}: {builder.source} returned {type(model).__name__}, not a keras.Model"
        )
    return model
