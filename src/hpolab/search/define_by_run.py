"""The search space of a define-by-run builder ``build(hp)``, with SearchSpace's interface.

During the search the builder runs on an ``hp`` backed by the Optuna trial, so Optuna sees
the parameters as the code declares them (loops, conditions). A finished trial's params
are replayed as they are: rebuilding with them (``hpolab.models.hyperparameters.Replay``)
gives the same architecture. Before the search the builder runs once on a probe (the first
value of each range): that build checks the builder on the data's shape, and the ranges it
declares are the space's signature, which a resumed study must match. A grid is discovered
by building each branch of the code once (every value of each finite range it reaches).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpolab.config import ParamSpec, StudyConfig
from hpolab.errors import ConfigError
from hpolab.models.custom import UserBuilder, call, registered
from hpolab.models.hyperparameters import (
    HyperParameters,
    Probe,
    ValueSource,
    decode_choice,
    encode_choice,
    finite_values,
)
from hpolab.search.space import SearchSpace, tidy

if TYPE_CHECKING:
    import optuna

    from hpolab.data.dataset import Dataset

MAX_GRID_BUILDS = 2000


class DefineByRunSpace:
    """The space a define-by-run builder declares; see the module docstring."""

    def __init__(
        self,
        builder: UserBuilder | None,
        input_shape: tuple[int, ...] = (),
        n_outputs: int = 1,
        task: str = "classification",
    ) -> None:
        """Probe ``builder`` on the data's shape; without one (a stored study read by a
        command that does not build), the space only replays trials."""
        self.builder = builder
        self.shape = (tuple(input_shape), int(n_outputs), task)
        self.domains: dict[str, dict[str, Any]] = {}
        self.probe_values: dict[str, Any] = {}
        if builder is not None:
            probe = self.run(Probe())
            self.domains, self.probe_values = dict(probe.domains), dict(probe.values)
        # What reports and the training checks read (ranges on the probe's path).
        self.params = {name: ParamSpec.model_validate(d) for name, d in self.domains.items()}
        self._grid: list[dict[str, Any]] | None = None

    def run(self, source: ValueSource) -> HyperParameters:
        """Build once with values from ``source``; the ``hp`` tells what was declared."""
        from hpolab.training.fit import clear_keras

        if self.builder is None:
            raise ConfigError("this define-by-run space only replays stored trials")
        input_shape, n_outputs, task = self.shape
        hp = HyperParameters(
            source,
            input_shape=input_shape,
            n_outputs=n_outputs,
            task=task,
            builder=f"{self.builder.field} ({self.builder.source})",
        )
        call(self.builder, {}, input_shape, task, n_outputs, hp=hp)
        clear_keras()
        return hp

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's values, drawn as the builder declares them."""
        return {k: tidy(v) for k, v in self.run(trial).values.items()}

    def replay(self, trial_params: Mapping[str, Any]) -> dict[str, Any]:
        """A finished trial's params, decoded (layer-size lists back from their JSON)."""
        return {k: tidy(decode_choice(v)) for k, v in trial_params.items()}

    def signature(self) -> str:
        """The ranges the probe build declares: a changed builder changes them."""
        source = None if self.builder is None else self.builder.source
        return json.dumps({"define_by_run": source, "probe": self.domains}, sort_keys=True)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every configuration the code can reach, each branch built once."""
        if self._grid is None:
            self._grid = self._discover()
        return self._grid

    def grid_size(self) -> int:
        return len(self.grid_points())

    def grid(self) -> dict[str, list[Any]]:
        """Per parameter, every value it takes somewhere (encoded for ``GridSampler``)."""
        values: dict[str, list[Any]] = {}
        for point in self.grid_points():
            for name, value in point.items():
                encoded = encode_choice(value)
                if encoded not in values.setdefault(name, []):
                    values[name].append(encoded)
        return values

    def _discover(self) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = [{}]
        builds = 0
        while pending:
            forced = pending.pop()
            builds += 1
            if builds > MAX_GRID_BUILDS:
                raise ConfigError(
                    f"{self.builder.field}: the grid has over {MAX_GRID_BUILDS} configurations; "
                    "use fewer values or another sampler"
                )
            hp = self.run(Probe(forced))
            open_names = [n for n in hp.domains if n not in forced]
            if not open_names:
                points.append({k: tidy(v) for k, v in hp.values.items()})
                continue
            name = open_names[0]  # branch on the first range not decided yet
            options = finite_values(name, hp.domains[name])
            pending.extend({**forced, name: v} for v in reversed(options))
        return points


AnySpace = SearchSpace | DefineByRunSpace


def make_space(cfg: StudyConfig, model_type: str, data: Dataset | None = None) -> AnySpace:
    """The space of ``model_type``: its config's, or the one its define-by-run builder
    declares (probed on ``data``; without data, one that replays stored trials).

    Raises:
        ConfigError: a define-by-run builder given a ``search_space`` as well.
    """
    spec = cfg.models[model_type]
    user = registered(model_type) if spec.builder is not None else None
    if user is None or not user.define_by_run:
        return SearchSpace(spec.params())
    if spec.params():
        raise ConfigError(
            f"models.{model_type}.search_space: {user.source} declares its space with hp; "
            "declare training settings there too (hp.Float('learning_rate', ...)) and drop "
            "search_space"
        )
    if data is None:
        return DefineByRunSpace(None)
    return DefineByRunSpace(user, data.input_shape, data.n_outputs, data.task)


def first_values(space: AnySpace) -> dict[str, Any]:
    """A configuration of ``space`` without drawing: the first value of each range (the
    config's space sampled by a probe as by a trial)."""
    if isinstance(space, DefineByRunSpace):
        return dict(space.probe_values)
    return space.suggest(Probe())  # type: ignore[arg-type]
