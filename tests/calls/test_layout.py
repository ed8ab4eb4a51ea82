"""The shape of ``callbot/calls``: imports flow one way, and nothing reaches up.

Read from the source with ``ast``, so a circle introduced by a new import fails
here, before it fails at start-up in one process and not another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import callbot.calls

PACKAGE = Path(callbot.calls.__file__).parent
MODULES = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
# Project wiring the domain must never import.
WIRING = (
    "callbot.celery",
    "callbot.runtime",
    "callbot.settings",
    "callbot.asgi",
    "callbot.urls",
    "dashboard",
    "callbot.api",
)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.extend((n, node.lineno, id(node) in top) for n in names)
        elif isinstance(node, ast.Import):
            found.extend((a.name, node.lineno, id(node) in top) for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, _, _ in _imports(path):
            if module.startswith("callbot.calls."):
                other = module.removeprefix("callbot.calls.").split(".")[0]
                if other in MODULES and other != name:
                    graph[name].add(other)
    return graph


def test_no_function_level_imports_of_our_own_modules() -> None:
    inside = [
        f"{path.name}:{line} {module}"
        for path in MODULES.values()
        for module, line, top in _imports(path)
        if not top and module.startswith(("callbot", "dashboard"))
    ]
    assert inside == []


def test_modules_of_calls_import_each_other_without_a_circle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            circle = " -> ".join([*path[path.index(name) :], name])
            raise AssertionError(f"import circle: {circle}")
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert done == set(MODULES)


def test_the_domain_imports_no_project_wiring() -> None:
    reaching_up = [
        f"{path.name}:{line} {module}"
        for path in [*MODULES.values(), *PACKAGE.glob("*/**/*.py")]
        for module, line, _ in _imports(path)
        if module.startswith(WIRING)
    ]
    assert reaching_up == []


def test_modules_stay_small_enough_to_hold_one_idea() -> None:
    # ingest applies one notification batch (rosters and the per-call working set
    # are modules of their own); it is long because Graph's resources are many.
    allowed = {"ingest": 560}
    too_long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > allowed.get(name, 450)
    }
    assert too_long == {}
