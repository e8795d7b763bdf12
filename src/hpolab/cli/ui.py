"""``hpolab ui``: the MLflow UI (and optionally optuna-dashboard) for this root."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys

from hpolab.cli.common import add_root_option, console, subcommand

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DASHBOARD_MAIN = "import sys; from optuna_dashboard._cli import main; sys.exit(main())"


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "ui",
        "serve the MLflow UI of the root",
        "Serve the root's MLflow tracking store (mlruns/) on 127.0.0.1: one experiment per "
        "study, its parent run with the summary, plots and results, a child run per trial "
        "with per-epoch curves, and the registered final models. Only this machine can "
        "reach it unless --host says otherwise. Stop with Ctrl-C.",
        "examples:\n  hpolab ui\n  hpolab ui --port 5001\n"
        "  hpolab ui --dashboard --study leak_v1     # also optuna-dashboard on --dashboard-port",
    )
    parser.add_argument("--port", type=int, default=5000, help="MLflow UI port (default 5000)")
    parser.add_argument(
        "--host",
        help="interface to listen on (default 127.0.0.1; anything else exposes the UI)",
    )
    parser.add_argument(
        "--dashboard", action="store_true", help="also start optuna-dashboard on a study"
    )
    parser.add_argument("--study", help="study for --dashboard (default: the newest)")
    parser.add_argument("--dashboard-port", type=int, default=8080, help="default 8080")
    add_root_option(parser)
    parser.set_defaults(handler=run)


def mlflow_command(tracking_uri: str, artifacts: str, host: str, port: int) -> list[str]:
    """The ``mlflow ui`` command line serving ``tracking_uri``."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--default-artifact-root",
        artifacts,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def run(args: argparse.Namespace) -> int:
    from hpolab.errors import ConfigError, StudyNotFoundError
    from hpolab.layout import Layout
    from hpolab.search.catalog import known_studies

    layout = Layout.from_root(args.root)
    if not layout.tracking_db.exists():
        raise StudyNotFoundError(
            f"--root: no MLflow tracking store at {layout.tracking_db}; run a study first "
            "(run_hpo.py) or give the --root it ran in"
        )
    host = args.host or "127.0.0.1"
    out = console()
    if host not in LOOPBACK:
        sys.stderr.write(
            f"warning: --host {host} makes the MLflow UI reachable from other machines; it has "
            "no authentication\n"
        )
    # A service manager stops us with SIGTERM: clean up the servers as for Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    processes = []
    if args.dashboard:
        if importlib.util.find_spec("optuna_dashboard") is None:
            raise ConfigError(
                "--dashboard: optuna-dashboard is not installed (pip install optuna-dashboard)"
            )
        studies = known_studies(layout)
        if not studies:
            raise StudyNotFoundError("--dashboard: no study under the root yet")
        name = args.study or max(studies, key=lambda s: layout.study_db(s).stat().st_mtime)
        if name not in studies:
            raise StudyNotFoundError(
                f"--study: no study {name!r}; known studies: {', '.join(studies)}"
            )
        processes.append(
            subprocess.Popen(
                # The same interpreter as hpolab: works whether or not its bin/ is on PATH.
                [
                    sys.executable,
                    "-c",
                    DASHBOARD_MAIN,
                    studies[name],
                    "--host",
                    host,
                    "--port",
                    str(args.dashboard_port),
                    "--quiet",
                ]
            )
        )
        out.print(f"optuna-dashboard for {name}: http://{host}:{args.dashboard_port}/")
    if layout.shared_tracking and layout.tracking_uri.startswith(("http://", "https://")):
        out.print(f"MLflow runs are on the tracking server {layout.tracking_uri}: open it there")
        return 0
    out.print(f"MLflow UI for {layout.root}: http://{host}:{args.port}/  (Ctrl-C stops it)")
    command = mlflow_command(layout.tracking_uri, str(layout.artifacts_dir), host, args.port)
    try:
        server = subprocess.Popen(command)
        processes.append(server)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
