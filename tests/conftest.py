"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write_csv

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "data.csv")


def _reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _service(port: int, name: str, start: list[str]) -> None:
    """Make sure a local service answers on ``port``: start it if it is down, else fail."""
    import shutil
    import subprocess
    import time

    if _reachable("127.0.0.1", port):
        return
    if shutil.which(start[0]) is not None:
        subprocess.run(start, capture_output=True, timeout=60, check=False)
        for _ in range(40):
            if _reachable("127.0.0.1", port):
                return
            time.sleep(0.25)
    pytest.fail(f"{name} is not running on 127.0.0.1:{port}; start it with: {' '.join(start)}")


@pytest.fixture
def postgres() -> str:
    """URL of the PostgreSQL server on 127.0.0.1:5432 (trust auth, database ``test``)."""
    import glob

    versions = [Path(p).name for p in glob.glob("/etc/postgresql/*")] or ["15"]
    _service(
        5432,
        "PostgreSQL",
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"],
    )
    return "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def redis_url() -> str:
    """URL of the Redis server on 127.0.0.1:6379."""
    _service(
        6379,
        "Redis",
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
    return "redis://127.0.0.1:6379/0"
