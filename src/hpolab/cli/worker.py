"""``hpolab worker``: join a study on shared storage as one more worker."""

from __future__ import annotations

import argparse

from hpolab.cli import run as run_cmd

DESCRIPTION = """\
Join a study as one more worker: the same options as run_hpo.py. Start it on each
machine with the same --config, --study-name and shared --storage (PostgreSQL/MySQL URL,
redis://host:6379, or grpc://host:13000 from hpolab storage-proxy) and, for one MLflow
view, the same --tracking-uri. Workers share the n_trials budget; one of them (elected in
the storage) retrains the final models and writes the results, the others exit 0 and say
which one does. Trials of a worker that dies are recovered by the others.
"""

EPILOG = """\
examples:
  hpolab worker --config configs/parallel.yaml --storage postgresql://user@db:5432/hpo \\
      --tracking-uri http://mlflow:5000
  hpolab worker --config configs/parallel.yaml --storage redis://cache:6379 --worker-index 3
  hpolab worker --config configs/parallel.yaml --storage grpc://proxy:13000 --no-finish
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "worker",
        help="join a study on shared storage as one more worker",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_cmd.add_worker_arguments(parser)
    parser.set_defaults(handler=run_cmd.run)
