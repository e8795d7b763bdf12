"""The package boundaries of the architecture map in README.md, checked on the source.

Each outside library is imported in one place; the training mechanics live in one core;
there are no import cycles between hpolab's modules and no function is over 80 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "hpolab"


def _modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return trees


MODULES = _modules()


def _imports(tree: ast.Module, module_level_only: bool = False) -> set[str]:
    """Absolute names imported by a module (anywhere, or only at module level)."""
    nodes = tree.body if module_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("mlflow", {"tracking"}),
        ("optuna", {"search", "reporting", "operations", "estimators", "cli", "manual"}),
    ],
)
def test_each_outside_library_is_imported_in_its_own_packages(library, allowed):
    offenders = [
        module
        for module, tree in MODULES.items()
        if library in {_top(n) for n in _imports(tree)} and _package_of(module) not in allowed
    ]
    assert not offenders, f"{library} imported outside {sorted(allowed)}: {offenders}"


@pytest.mark.parametrize("package", ["training", "data", "models"])
def test_training_data_and_models_do_not_speak_optuna(package):
    offenders = [
        module
        for module, tree in MODULES.items()
        if _package_of(module) == package and "optuna" in {_top(n) for n in _imports(tree)}
    ]
    assert not offenders


def test_search_speaks_optuna_only():
    banned = {"keras", "tensorflow", "sklearn"}
    offenders = {
        module: sorted(banned & {_top(n) for n in _imports(tree)})
        for module, tree in MODULES.items()
        if _package_of(module) == "search" and banned & {_top(n) for n in _imports(tree)}
    }
    assert not offenders


def _calls(attribute_chain: str) -> list[str]:
    """Functions (module:function) whose body calls ``attribute_chain`` (e.g. keras.x.y)."""
    found = []
    for module, tree in MODULES.items():
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == attribute_chain:
                    found.append(f"{module}:{func.name}")
    return sorted(set(found))


@pytest.mark.parametrize(
    ("call", "owner"),
    [
        ("keras.utils.set_random_seed", "hpolab.training.fit:seed_everything"),
        ("keras.backend.clear_session", "hpolab.training.fit:clear_keras"),
        ("model.fit", "hpolab.training.fit:fit_arrays"),
    ],
)
def test_training_mechanics_have_one_home(call, owner):
    assert _calls(call) == [owner]


def test_no_import_cycles_between_modules():
    graph = {
        module: {
            name
            for name in _imports(tree, module_level_only=True)
            if name in MODULES and name != module
        }
        for module, tree in MODULES.items()
    }
    # A package's __init__ importing its own submodules is how it re-exports them.
    for module in graph:
        graph[module] = {n for n in graph[module] if not n.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_nothing_imports_the_package_root():
    offenders = [
        module
        for module, tree in MODULES.items()
        if module != "hpolab" and "hpolab" in _imports(tree)
    ]
    assert not offenders


def test_no_function_is_over_80_lines():
    long = [
        f"{module}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for module, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert not long
