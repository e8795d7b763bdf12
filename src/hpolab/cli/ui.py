"""``hpolab ui``: the MLflow UI (and optionally optuna-dashboard) for this root.

Each server runs as a child process in a session of its own, so a terminal's Ctrl-C
reaches only hpolab, which then stops every server's whole process group (MLflow's uvicorn
worker and job runners, optuna-dashboard's gunicorn) and any descendant that left it. A
URL is printed only once its server answers HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from hpolab.cli.common import EXIT_INTERRUPTED, add_root_option, console, subcommand
from hpolab.errors import ConfigError, HpolabError

if TYPE_CHECKING:
    from hpolab.layout import Layout

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DASHBOARD_MAIN = "import sys; from optuna_dashboard._cli import main; sys.exit(main())"
# SIGTERM is how service managers ask for a clean stop: a clean stop exits 0.
EXIT_TERMINATED = 0
STARTUP_TIMEOUT_S = 180.0
# SIGTERM first, SIGKILL after the grace: every server process is gone well within 5 s.
STOP_GRACE_S = 3.0
KILL_WAIT_S = 1.0
POLL_S = 0.25
PROBE_TIMEOUT_S = 2.0
# Without these uvicorn logs every request, and at INFO its start-up chatter.
QUIET_UVICORN = "--no-access-log --log-level warning"
# The readiness probe goes straight to the server, never through an HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class UiServerError(HpolabError):
    """A server of ``hpolab ui`` exited or never answered."""

    exit_code = 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ui`` subcommand."""
    parser = subcommand(
        sub,
        "ui",
        "serve the MLflow UI of the root",
        "Serve the root's MLflow tracking store (mlruns/) on 127.0.0.1: one experiment per "
        "study, its parent run with the summary, plots and results, a child run per trial "
        "with per-epoch curves, and the registered final models. Only this machine can "
        "reach it unless --host says otherwise. A URL is printed once its server answers.\n\n"
        "Ctrl-C stops every server process and exits with code 130; SIGTERM does the same "
        f"and exits with code {EXIT_TERMINATED}. A server that exits or does not answer "
        "within --startup-timeout stops the others and exits with code 1. The servers' "
        "request logs and start-up messages are hidden unless --verbose.",
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
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=STARTUP_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the servers to answer (default {STARTUP_TIMEOUT_S:g})",
    )
    add_root_option(parser)
    # The shared options may already bring --verbose; ui adds it where they do not.
    with suppress(argparse.ArgumentError):
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="show the servers' start-up messages and every HTTP request they serve",
        )
    parser.set_defaults(handler=run)


def mlflow_command(
    tracking_uri: str, artifacts: str, host: str, port: int, verbose: bool = False
) -> list[str]:
    """The ``mlflow ui`` command line serving ``tracking_uri`` (access logs off unless verbose)."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--registry-store-uri",  # given, so MLflow does not announce its default
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
    return command if verbose else [*command, "--uvicorn-opts", QUIET_UVICORN]


def dashboard_command(storage_url: str, host: str, port: int, verbose: bool = False) -> list[str]:
    """The optuna-dashboard command line serving ``storage_url``."""
    # The same interpreter as hpolab: works whether or not its bin/ is on PATH.
    command = [sys.executable, "-c", DASHBOARD_MAIN, storage_url, "--host", host]
    return [*command, "--port", str(port), *([] if verbose else ["--quiet"])]


def server_env(verbose: bool) -> dict[str, str]:
    """The servers' environment: MLflow's INFO lines and import warnings off unless verbose."""
    env = dict(os.environ)
    if not verbose:
        env["MLFLOW_LOGGING_LEVEL"] = "WARNING"
        env.setdefault("PYTHONWARNINGS", "ignore:starlette.middleware.wsgi is deprecated")
    return env


def url_of(host: str, port: int) -> str:
    """``http://host:port/``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def probe_host(host: str) -> str:
    """Where this machine reaches a server listening on ``host`` (any-address -> loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


@dataclass(frozen=True)
class ServerSpec:
    """A server to start: what it is called, how to start it, where it answers."""

    name: str
    command: list[str]
    host: str
    port: int
    option: str  # the option choosing the port, for messages

    @property
    def url(self) -> str:
        """The address users open."""
        return url_of(self.host, self.port)

    @property
    def probe(self) -> str:
        """The address polled until the server answers."""
        return url_of(probe_host(self.host), self.port)


@dataclass
class Server:
    """A started server process and what it serves."""

    spec: ServerSpec
    process: subprocess.Popen[bytes]


def answers(url: str) -> bool:
    """Whether an HTTP server answers ``url`` (any status: an HTTP error is an answer too)."""
    try:
        with _OPENER.open(url, timeout=PROBE_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, http.client.HTTPException):
        return False


def check_port_free(host: str, port: int, option: str) -> None:
    """Refuse a port something already listens on: its answers would pass for our server's."""
    try:
        with socket.create_connection((probe_host(host), port), timeout=1):
            pass
    except OSError:
        return
    raise ConfigError(
        f"{option} {port}: something already listens on {host}:{port}; stop it or choose "
        f"another {option}"
    )


def run(args: argparse.Namespace) -> int:
    """Serve the root's MLflow UI (and optuna-dashboard) until Ctrl-C or SIGTERM.

    Returns:
        The exit code: 130 after Ctrl-C, :data:`EXIT_TERMINATED` after SIGTERM.

    Raises:
        HpolabError: a bad option, no tracking store or study, a port in use, or a server
            that exited or never answered (:class:`UiServerError`).
    """
    from hpolab.errors import StudyNotFoundError
    from hpolab.layout import Layout

    layout = Layout.from_root(args.root)
    if not layout.shared_tracking and not layout.tracking_db.exists():
        raise StudyNotFoundError(
            f"--root: no MLflow tracking store at {layout.tracking_db}; run a study first "
            "(run_hpo.py) or give the --root it ran in"
        )
    if not args.startup_timeout > 0:  # NaN too
        raise ConfigError(f"--startup-timeout {args.startup_timeout:g}: give seconds above 0")
    host = args.host or "127.0.0.1"
    if host not in LOOPBACK:
        sys.stderr.write(
            f"warning: --host {host} makes the MLflow UI reachable from other machines; it has "
            "no authentication\n"
        )
    specs = []
    if args.dashboard:
        specs.append(_dashboard_spec(args, layout, host))
    remote = layout.shared_tracking and layout.tracking_uri.startswith(("http://", "https://"))
    if remote:
        console().print(
            f"MLflow runs are on the tracking server {layout.tracking_uri}: open it there",
            soft_wrap=True,
            markup=False,
        )
    else:
        specs.append(_mlflow_spec(args, layout, host))
    if not specs:
        return 0
    for spec in specs:
        check_port_free(spec.host, spec.port, spec.option)
    return serve(specs, server_env(args.verbose), args.startup_timeout)


def _mlflow_spec(args: argparse.Namespace, layout: Layout, host: str) -> ServerSpec:
    return ServerSpec(
        name=f"MLflow UI for {layout.root}",
        command=mlflow_command(
            layout.tracking_uri, str(layout.artifacts_dir), host, args.port, args.verbose
        ),
        host=host,
        port=args.port,
        option="--port",
    )


def _dashboard_spec(args: argparse.Namespace, layout: Layout, host: str) -> ServerSpec:
    from hpolab.errors import StudyNotFoundError
    from hpolab.search.catalog import known_studies

    if importlib.util.find_spec("optuna_dashboard") is None:
        raise ConfigError(
            "--dashboard: optuna-dashboard is not installed (pip install optuna-dashboard)"
        )
    if args.dashboard_port == args.port:
        raise ConfigError(
            f"--dashboard-port {args.dashboard_port}: the MLflow UI uses that --port; "
            "choose another"
        )
    studies = known_studies(layout)
    if not studies:
        raise StudyNotFoundError("--dashboard: no study under the root yet")
    name = args.study or max(studies, key=lambda s: layout.study_db(s).stat().st_mtime)
    if name not in studies:
        raise StudyNotFoundError(f"--study: no study {name!r}; known studies: {', '.join(studies)}")
    return ServerSpec(
        name=f"optuna-dashboard for {name}",
        command=dashboard_command(studies[name], host, args.dashboard_port, args.verbose),
        host=host,
        port=args.dashboard_port,
        option="--dashboard-port",
    )


def serve(specs: Sequence[ServerSpec], env: dict[str, str], timeout: float) -> int:
    """Start the servers, announce each once it answers, and keep them until a stop signal.

    Returns:
        130 after Ctrl-C (SIGINT), :data:`EXIT_TERMINATED` after SIGTERM.

    Raises:
        UiServerError: a server exited, or did not answer within ``timeout`` seconds.
    """
    out = console()

    def announce(server: Server) -> None:
        # soft_wrap: a long root path must not break the URL over two lines.
        out.print(f"{server.spec.name}: {server.spec.url}", soft_wrap=True, markup=False)

    with StopSignals() as signals:
        servers: list[Server] = []
        try:
            for spec in specs:
                with signals.deferred():  # a signal mid-start would lose track of the child
                    servers.append(Server(spec, start(spec.command, env)))
            names = " and ".join(spec.name for spec in specs)
            sys.stderr.write(f"starting {names} (this can take a minute)...\n")
            wait_until_answering(servers, timeout, announce)
            out.print("Ctrl-C stops the servers", soft_wrap=True, markup=False)
            watch(servers)
        except Stopped as stop:
            return EXIT_INTERRUPTED if stop.signum == signal.SIGINT else EXIT_TERMINATED
        finally:
            signals.hold()
            stop_processes([server.process for server in servers])


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new session (and so of its own process group)."""
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_until_answering(
    servers: Sequence[Server], timeout: float, announce: Callable[[Server], None]
) -> None:
    """Poll each server until it answers HTTP; announce it then.

    Raises:
        UiServerError: a server exited, or ``timeout`` seconds passed without an answer.
    """
    deadline = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            check_running(server)
            # Checked again after the answer: it must come from our server, still running.
            if answers(server.spec.probe) and check_running(server) is None:
                announce(server)
                waiting.remove(server)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.spec.name for s in waiting)
            raise UiServerError(
                f"--startup-timeout: {names} did not answer within {timeout:g} s; see its "
                "messages above, or give a larger --startup-timeout"
            )
        if waiting:
            time.sleep(POLL_S)


def check_running(server: Server) -> None:
    """Raise :class:`UiServerError` if ``server`` has exited."""
    code = server.process.poll()
    if code is not None:
        raise UiServerError(f"{server.spec.name} exited with code {code}; see its messages above")


def watch(servers: Sequence[Server]) -> NoReturn:
    """Block while every server runs; one exiting on its own is an error."""
    while True:
        for server in servers:
            check_running(server)
        time.sleep(0.5)


class Stopped(Exception):
    """SIGINT (Ctrl-C) or SIGTERM asked ``hpolab ui`` to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGINT, SIGTERM, SIGHUP and SIGQUIT raise :class:`Stopped`, once, never while a
    child is being started.

    After the first (or :meth:`hold`) further signals are ignored, so a second Ctrl-C
    cannot cut the clean-up short and leave servers running. The previous handlers come
    back on exit.
    """

    def __init__(self) -> None:
        self.held = False
        self.deferring = False
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        # Only the main thread may set handlers; elsewhere the caller's own handling stands.
        if threading.current_thread() is threading.main_thread():
            # A closed terminal (SIGHUP) or Ctrl-\ must stop the servers too: they run in
            # their own sessions and would not get the hang-up themselves.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.held:
            return
        if self.deferring:
            self.pending = self.pending or signum
            return
        self.held = True
        raise Stopped(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a stop signal until the block is done, then raise it."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending is not None and not self.held:
            self.held = True
            raise Stopped(self.pending)

    def hold(self) -> None:
        """Ignore stop signals from now on (the servers are being stopped)."""
        self.held = True


@dataclass(frozen=True)
class ProcInfo:
    """One process as /proc shows it; ``started`` tells a reused pid from the original."""

    pid: int
    ppid: int
    pgrp: int
    state: str
    started: int


def process_table() -> dict[int, ProcInfo] | None:
    """Every process on this machine from /proc, or ``None`` where there is no /proc."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    table = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            info = _read_stat(entry / "stat")
            if info is not None:
                table[info.pid] = info
    return table


def _read_stat(path: Path) -> ProcInfo | None:
    try:
        text = path.read_text()
    except OSError:
        return None  # exited while we looked
    # The command name may hold spaces and parentheses: the fields follow its last ")".
    fields = text[text.rindex(")") + 2 :].split()
    return ProcInfo(
        pid=int(text.split(" ", 1)[0]),
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        state=fields[0],
        started=int(fields[19]),
    )


def process_family(leaders: Sequence[int]) -> dict[int, ProcInfo]:
    """Live processes in the leaders' groups or descending from a leader (zombies are dead).

    Descendants count even when they started a session of their own (MLflow starts job
    processes so); a group signal would miss them.
    """
    table = process_table() or {}
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    family = {pid: info for pid, info in table.items() if info.pgrp in leaders}
    seen, stack = set(leaders), list(leaders)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                family[child] = table[child]
                stack.append(child)
    return {pid: info for pid, info in family.items() if info.state != "Z"}


def stop_processes(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop each process with its group and descendants: SIGTERM, then SIGKILL what is left.

    Each process must lead its own group (started with ``start_new_session=True``).
    """
    leaders = [p.pid for p in processes]
    if not leaders:
        return
    known = process_family(leaders)  # before signalling: exiting parents orphan their children
    _signal(leaders, known, signal.SIGTERM)
    if _wait_gone(processes, known, STOP_GRACE_S):
        return
    _signal(leaders, {**known, **process_family(leaders)}, signal.SIGKILL)
    _wait_gone(processes, known, KILL_WAIT_S)


def _signal(leaders: Sequence[int], known: dict[int, ProcInfo], signum: int) -> None:
    for leader in leaders:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signum)
    for info in _still_there(known).values():
        with suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, signum)


def _still_there(known: dict[int, ProcInfo]) -> dict[int, ProcInfo]:
    """Those of ``known`` still alive, under the same pid (not a pid since reused)."""
    now = process_table()
    if now is None:
        return {}
    return {
        pid: info
        for pid, info in known.items()
        if pid in now and now[pid].started == info.started and now[pid].state != "Z"
    }


def _wait_gone(
    processes: Sequence[subprocess.Popen[bytes]], known: dict[int, ProcInfo], seconds: float
) -> bool:
    """Wait up to ``seconds`` for the processes, their groups and ``known`` to be gone."""
    leaders = [p.pid for p in processes]
    deadline = time.monotonic() + seconds
    while True:
        for process in processes:
            process.poll()  # reap the leaders, so they do not linger as zombies
        if not _alive(leaders, known):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _alive(leaders: Sequence[int], known: dict[int, ProcInfo]) -> bool:
    if process_table() is None:  # no /proc: ask the groups themselves
        for leader in leaders:
            try:
                os.killpg(leader, 0)
                return True
            except (ProcessLookupError, PermissionError):
                continue
        return False
    return bool(process_family(leaders)) or bool(_still_there(known))
