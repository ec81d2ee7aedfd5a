"""The layering rules of docs/architecture.md, checked on the source: a wrong import fails here, not in review.

- ``ingest``, ``retrieval``, ``memory`` and ``eval`` never import ``app`` (dependencies point downward; a lower package
  that needs a language model declares a protocol and ``app`` hands in the implementation).
- Nothing outside ``app/cli/`` imports ``app.cli``: commands call library code, never the other way round.
- No import cycles between project modules, counting imports inside functions (those once held a cycle together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "ingest", "retrieval", "memory", "eval")
LOWER_PACKAGES = ("ingest", "retrieval", "memory", "eval")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            modules[_module_name(path)] = path
    return modules


MODULES = _project_modules()


def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in ``path`` (top level, inside functions, under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


def _runtime_imports(path: Path) -> set[str]:
    """Like ``_imports`` but without the imports under ``if TYPE_CHECKING:`` (they never run, so form no cycle)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            found.update(name for name in candidates if name in MODULES)
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", LOWER_PACKAGES)
def test_lower_packages_never_import_app(package: str) -> None:
    offenders = {
        module: sorted(target for target in targets if target == "app" or target.startswith("app."))
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
    }
    assert not {m: t for m, t in offenders.items() if t}, f"{package} must not import app"


def test_nothing_outside_the_cli_imports_it() -> None:
    offenders = {
        module: sorted(t for t in targets if t == "app.cli" or t.startswith("app.cli."))
        for module, targets in GRAPH.items()
        if not (module == "app.cli" or module.startswith("app.cli."))
    }
    offenders |= {
        str(path.relative_to(REPO)): ["app.cli"]
        for path in [REPO / "streamlit_app.py", *(REPO / "app" / "ui").rglob("*.py")]
        if any(t == "app.cli" or t.startswith("app.cli.") for t in _imports(path))
    }
    assert not {m: t for m, t in offenders.items() if t}, "only app/cli may import app.cli"


def test_no_import_cycles() -> None:
    graph = {name: _runtime_imports(path) - {name} for name, path in MODULES.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
