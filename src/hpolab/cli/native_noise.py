"""Native libraries' start-up chatter, kept off the terminal.

TensorFlow 2.16+ writes its oneDNN notice (``I0000 ... port.cc:153] oneDNN custom
operations are on ...``) and absl's ``WARNING: All log messages before
absl::InitializeLog() ...`` straight to file descriptor 2 while it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says. Python's ``sys.stderr`` never sees them, so they are
filtered at the descriptor: the import runs with descriptor 2 pointed at a temporary
file, and afterwards everything but those INFO / WARNING lines is written back.

The filter hooks the import itself (a finder on ``sys.meta_path``), so it applies
wherever the library is first imported, and costs nothing when a command never imports it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

# absl / glog lines at INFO or WARNING level ("I0000 00:00:1795493376.147140   16126
# port.cc:153] ..."), and absl's notice that logging is not initialized. Errors (E, F)
# and everything else a native library writes are kept.
NOISE = re.compile(
    r"^(?:[IW]\d{4} \d+:\d+:[\d.]+\s+\d+ [^\]]+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)


def is_noise(line: str) -> bool:
    """Whether ``line`` is a native start-up INFO / WARNING line (dropped unless verbose)."""
    return NOISE.match(line) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture descriptor 2 for the block; write back every line that is not noise."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a replaced stream may not flush
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # stderr closed (2>&-): nothing to filter
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            _replay(captured.read().decode("utf-8", errors="replace"))


def _replay(text: str) -> None:
    """Write the kept lines to ``sys.stderr`` (a test's or a log's stream included)."""
    kept = [line for line in text.splitlines(keepends=True) if not is_noise(line)]
    if kept and sys.stderr is not None:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


class _FilteredLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` inside :func:`filtered_stderr`."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # One import only (later ones are served from sys.modules); a mere spec lookup
        # before it must not disarm the filter, so the finder goes here.
        for finder in [f for f in sys.meta_path if isinstance(f, _FilteredImport)]:
            if finder.name == module.__name__:
                sys.meta_path.remove(finder)
        # The module keeps its real loader: resources and reloads go through it.
        module.__loader__ = self.inner
        if module.__spec__ is not None:
            module.__spec__.loader = self.inner
        with filtered_stderr():
            self.inner.exec_module(module)


class _FilteredImport(importlib.abc.MetaPathFinder):
    """Finds ``name`` with the other finders and filters its first import."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _FilteredLoader(spec.loader)
                return spec
        return None


def filter_import(name: str) -> None:
    """Filter native start-up noise while top-level package ``name`` is first imported.

    Does nothing if ``name`` is already imported or already hooked.
    """
    if name in sys.modules:
        return
    if any(isinstance(f, _FilteredImport) and f.name == name for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FilteredImport(name))
