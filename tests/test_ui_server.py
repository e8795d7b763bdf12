"""``hpolab ui`` as a real process: when it prints its URLs, how it stops, what it logs.

The servers are real (MLflow's uvicorn with its job runners, optuna-dashboard's gunicorn);
processes are followed through /proc, so a child that left its parent's session counts too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from hpolab.cli import ui

STARTUP_TIMEOUT_S = 150
STOP_DEADLINE_S = 5.0
STUDY = "demo"
ACCESS_LOG = '"GET / HTTP/1.1"'  # uvicorn's access-log line for a GET of the UI
# Reads the servers without any HTTP proxy of the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5) -> bytes:
    with OPENER.open(url, timeout=timeout) as response:
        return response.read()


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid`` from /proc, ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root`` (whatever its session) -> its start time."""
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    found: dict[int, int] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            stat = stats[child]
            if stat is not None and stat[1] != "Z":
                found[child] = stat[2]
                stack.append(child)
    return found


def _alive(processes: dict[int, int]) -> list[int]:
    """Those of ``processes`` (pid -> start time) still running; zombies are dead."""
    alive = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[1] != "Z":
            alive.append(pid)
    return alive


def _describe(pids: list[int]) -> str:
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        lines.append(f"{pid}: {cmd[:150]}")
    return "\n".join(lines)


class UiProcess:
    """``hpolab ui`` started in a session of its own, its output read as it comes."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, "-m", "hpolab.cli.main", "ui", "--root", str(root)]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,  # its group is what a terminal's Ctrl-C reaches
        )
        self.stdout: list[tuple[float, str]] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, timed: bool) -> None:  # noqa: ANN001 - a text pipe
        for line in stream:
            if timed:
                self.stdout.append((time.monotonic(), line.rstrip("\n")))
            else:
                self.stderr.append(line)

    def output(self) -> str:
        return "\n".join(line for _, line in self.stdout) + "\n" + "".join(self.stderr)

    def wait_for_line(self, text: str, timeout: float = STARTUP_TIMEOUT_S) -> tuple[float, str]:
        """The first stdout line holding ``text`` and when it was read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.stdout):
                if text in line:
                    return when, line
            if self.process.poll() is not None:
                self.finish(timeout=5)
                break
            time.sleep(0.02)
        pytest.fail(f"hpolab ui printed no line with {text!r}\n--- output ---\n{self.output()}")

    def finish(self, timeout: float) -> int:
        """Wait for the exit (and the last output)."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Clean-up after a failed test: nothing of it may outlive the test."""
        family = _descendants(self.process.pid)
        for pid in [self.process.pid, *family]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with an MLflow store (tables made by the first server) and one study."""
    import optuna

    root = tmp_path_factory.mktemp("ui_root")
    (root / "mlruns").mkdir()
    (root / "mlruns" / "mlflow.db").touch()
    (root / "hpo_studies").mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"{STUDY}.mlp", storage=f"sqlite:///{root / 'hpo_studies' / f'{STUDY}.db'}"
    )
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    return root


@pytest.fixture
def started() -> Iterator[list[UiProcess]]:
    """The ``hpolab ui`` processes a test starts; whatever is left is killed after it."""
    processes: list[UiProcess] = []
    yield processes
    for process in processes:
        if process.process.poll() is None or _descendants(process.process.pid):
            process.kill()


def _check_stops(ui_process: UiProcess, signum: int, expected_code: int) -> None:
    """Send ``signum`` as a terminal or service manager would; every process is gone in 5 s."""
    family = _descendants(ui_process.process.pid)
    assert len(family) >= 3, _describe(list(family))  # mlflow, its uvicorn and job runner
    sent = time.monotonic()
    os.killpg(ui_process.process.pid, signum)  # the group: what Ctrl-C in a terminal reaches
    code = ui_process.finish(timeout=STOP_DEADLINE_S + 5)
    elapsed = time.monotonic() - sent
    left = _alive(family)
    assert not left, f"left running:\n{_describe(left)}"
    assert elapsed < STOP_DEADLINE_S, f"took {elapsed:.1f} s to stop"
    assert code == expected_code, ui_process.output()
    assert "Traceback" not in "".join(ui_process.stderr), ui_process.output()


@pytest.mark.slow
@pytest.mark.xdist_group("ui_server")
def test_urls_come_once_the_servers_answer_and_ctrl_c_stops_every_process(root, started):
    dashboard_port = _free_port()
    server = UiProcess(root, "--dashboard", "--dashboard-port", str(dashboard_port))
    started.append(server)

    first_answer: list[float] = []

    def poll() -> None:  # when the MLflow UI first answers, seen from outside
        while not first_answer and server.process.poll() is None:
            try:
                _get(server.url, timeout=1)
                first_answer.append(time.monotonic())
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=poll, daemon=True).start()
    printed, line = server.wait_for_line(server.url)
    # The line is read after the server answered: a GET right now must succeed at once.
    assert b"<html" in _get(server.url, timeout=2).lower(), line
    assert line.startswith(f"MLflow UI for {root}: "), line
    if first_answer:  # and it came promptly, not long after the first answer
        assert printed - first_answer[0] < 3, (printed, first_answer)
    _, dashboard_line = server.wait_for_line(f"http://127.0.0.1:{dashboard_port}/", timeout=5)
    assert dashboard_line.startswith(f"optuna-dashboard for {STUDY}: "), dashboard_line
    studies = _get(f"http://127.0.0.1:{dashboard_port}/api/studies")
    assert f"{STUDY}.mlp".encode() in studies

    for _ in range(3):
        _get(server.url)
    time.sleep(1)  # an access-log line would be written by now
    assert ACCESS_LOG not in server.output(), server.output()
    _check_stops(server, signal.SIGINT, 130)


@pytest.mark.slow
@pytest.mark.xdist_group("ui_server")
def test_sigterm_stops_every_process_and_verbose_shows_requests(root, started):
    server = UiProcess(root, "--verbose")
    started.append(server)
    server.wait_for_line(server.url)
    _get(server.url)
    deadline = time.monotonic() + 10
    while ACCESS_LOG not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ACCESS_LOG in server.output(), server.output()
    _check_stops(server, signal.SIGTERM, ui.EXIT_TERMINATED)


@pytest.mark.slow
@pytest.mark.xdist_group("ui_server")
def test_a_server_that_never_answers_is_an_error_and_is_stopped(root, started):
    server = UiProcess(root, "--startup-timeout", "0.5")
    started.append(server)
    deadline = time.monotonic() + 10
    family: dict[int, int] = {}
    while server.process.poll() is None and time.monotonic() < deadline:
        family.update(_descendants(server.process.pid))
        time.sleep(0.05)
    assert server.finish(timeout=10) == 1, server.output()
    stderr = "".join(server.stderr)
    assert "error: --startup-timeout: MLflow UI for" in stderr, stderr
    assert "did not answer within 0.5 s" in stderr, stderr
    assert family, "no server process was seen"
    assert not _alive(family), _describe(_alive(family))


@pytest.mark.slow
@pytest.mark.xdist_group("ui_server")
def test_a_server_that_dies_is_an_error(root, started):
    # MLflow exits at start-up on a tracking store it does not know.
    server = UiProcess(root, env={"MLFLOW_TRACKING_URI": "nosuchstore://x"})
    started.append(server)
    assert server.finish(timeout=STARTUP_TIMEOUT_S) == 1, server.output()
    assert f"error: MLflow UI for {root} exited with code 1" in "".join(server.stderr)
    assert server.url not in server.output()


def test_a_port_in_use_is_refused_before_starting(root):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "hpolab.cli.main", "ui", "--root", str(root)]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result
    assert f"error: --port {port}: something already listens on 127.0.0.1:{port}" in (result.stderr)


CHILDREN = """
import os, signal, subprocess, sys, time
stubborn = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); "
    "time.sleep(60)"], stdout=subprocess.PIPE)
stubborn.stdout.readline()  # its SIGTERM is ignored from now on
escaped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
    start_new_session=True)
print(stubborn.pid, escaped.pid, flush=True)
time.sleep(60)
"""


def test_stop_processes_ends_the_group_a_stubborn_child_and_one_in_its_own_session():
    leader = subprocess.Popen(
        [sys.executable, "-c", CHILDREN],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stubborn, escaped = (int(pid) for pid in leader.stdout.readline().split())
        family = _descendants(leader.pid)
        assert {stubborn, escaped} <= set(family)
        t0 = time.monotonic()
        ui.stop_processes([leader])
        assert time.monotonic() - t0 < STOP_DEADLINE_S
        assert leader.poll() is not None
        assert not _alive(family), _describe(_alive(family))
    finally:
        for pid in [leader.pid, *_descendants(leader.pid)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        leader.wait(timeout=10)


def test_server_commands_silence_access_logs_unless_verbose():
    quiet = ui.mlflow_command("sqlite:///x.db", "art", "127.0.0.1", 5000)
    loud = ui.mlflow_command("sqlite:///x.db", "art", "127.0.0.1", 5000, verbose=True)
    assert quiet[quiet.index("--uvicorn-opts") + 1] == ui.QUIET_UVICORN
    assert "--no-access-log" in ui.QUIET_UVICORN and "--uvicorn-opts" not in loud
    assert "--quiet" in ui.dashboard_command("sqlite:///s.db", "127.0.0.1", 8080)
    assert "--quiet" not in ui.dashboard_command("sqlite:///s.db", "127.0.0.1", 8080, True)
    assert ui.url_of("::1", 5000) == "http://[::1]:5000/"
    assert ui.probe_host("0.0.0.0") == "127.0.0.1" and ui.probe_host("::") == "::1"
