"""``train_run``: the entry point of a manual run, from a spec (or a run to resume) to a result."""

from __future__ import annotations

from pathlib import Path

from hpolab.errors import ConfigError
from hpolab.layout import Layout
from hpolab.manual.console import LoggedReporter, console_log
from hpolab.manual.context import RunResult
from hpolab.manual.run_dir import check_run_dir, default_run_name, prepare_run_dir
from hpolab.manual.spec import RunSpec, saved_spec
from hpolab.progress import QuietReporter, Reporter


def train_run(
    spec: RunSpec | None,
    run_name: str | None = None,
    root: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    experiment: str | None = "manual_runs",
    reporter: Reporter | None = None,
) -> RunResult:
    """Train ``spec`` into a run folder (or continue it), report, export, track.

    With ``resume=True`` the run continues with the configuration it started with
    (``spec`` may be ``None``) from its last epoch checkpoint. ``experiment=None``
    logs nothing to MLflow.

    Raises:
        ConfigError: no spec and nothing to resume, a bad or taken run name, a resume of
            a missing or complete run, or data the spec does not fit.
    """
    reporter = reporter or QuietReporter()
    layout = Layout.from_root(root)
    if spec is None and not (resume and run_name):
        raise ConfigError("train_run: give a spec, or resume=True with the run_name")
    run_name = run_name or default_run_name(spec.model_type)  # type: ignore[union-attr]
    folder = check_run_dir(layout, run_name, overwrite, resume)
    if resume:
        spec = saved_spec(folder)
    assert spec is not None
    from hpolab.data import load_dataset

    # The data is loaded and checked before the run folder is touched, so bad data or a
    # metric that does not fit it leaves an existing run (and its name) as it was.
    data = load_dataset(spec.cfg.data, layout.preprocessing_cache_dir).for_params(spec.params)
    spec.cfg = spec.cfg.for_task(data.task)
    folder = prepare_run_dir(layout, run_name, overwrite, resume)
    # Keras and the report's matplotlib are imported only once a run really trains.
    from hpolab.manual.steps import train

    with console_log(folder.console_log, append=resume) as log:
        logged = LoggedReporter(reporter, log)
        _announce(spec, folder.path, logged)
        return train(spec, data, folder, layout, resume, experiment, logged)


def _announce(spec: RunSpec, run_dir: Path, reporter: Reporter) -> None:
    """What the run trains, where, and which searched parameters keep their defaults."""
    reporter.message(f"run [bold]{run_dir.name}[/]: {spec.model_type} ({spec.source}) -> {run_dir}")
    if spec.unset:
        reporter.message(
            f"searched in the config, left at the builder's defaults: {', '.join(spec.unset)}"
            " (set them with --set name=value or use --from-study)"
        )
