"""The package's layout: one folder per stage, imports only down or sideways, no import circles.

Every import counts, the lazy ones inside functions too (a lazy import is still a dependency; it
only moves the cost). The stages, lowest first, are ``LAYERS``; ``docs/DEVELOPING.md`` draws the map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rearank_kit"

# folder -> height; a module may import its own folder and lower ones, never a higher one
LAYERS = {"core": 0, "data": 1, "rank": 2, "train": 3, "evaluation": 4, "analysis": 5, "course": 6, "commands": 7}
TOP_MODULES = {"rearank_kit.cli": 7}  # the CLI sits on top with its commands


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The kit's modules ``path`` imports (at module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import module` names a module; `from module import name` names the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            while target and target not in modules:  # rearank_kit.core.files.write_json -> rearank_kit.core.files
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def height(module: str) -> int | None:
    if module in TOP_MODULES:
        return TOP_MODULES[module]
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None  # the package root: the public names, lazily


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# --- the checks ------------------------------------------------------------------------------------


def test_every_module_sits_in_a_stage_folder():
    loose = [m for m in import_graph() if m != "rearank_kit" and height(m) is None]
    assert not loose, f"modules outside the stage folders {sorted(LAYERS)}: {loose}"


def test_imports_go_down_or_sideways_never_up():
    graph = import_graph()
    upward = [
        f"{m} (height {height(m)}) imports {dep} (height {height(dep)})"
        for m, deps in graph.items() for dep in sorted(deps)
        if m != "rearank_kit" and dep != "rearank_kit" and height(dep) > height(m)
    ]  # fmt: skip
    assert not upward, "imports that go up a stage:\n" + "\n".join(upward)


def test_no_import_circles():
    graph = {m: {d for d in deps if d != "rearank_kit"} for m, deps in import_graph().items()}
    assert cycles(graph) == []


# The checker itself must see what it is there to catch: a circle through a lazy import, an upward
# import, a relative import.
@pytest.mark.parametrize("files, expect_cycle", [
    ({"core/a.py": "from rearank_kit.core import b\n", "core/b.py": "def f():\n    from rearank_kit.core.a import x\n"}, True),
    ({"core/a.py": "from rearank_kit.core.b import x\n", "core/b.py": "import os\n"}, False),
    ({"rank/a.py": "from . import b\n", "rank/b.py": "from .a import y\n"}, True),
])  # fmt: skip
def test_the_checker_finds_circles(tmp_path, monkeypatch, files, expect_cycle):
    root = tmp_path / "rearank_kit"
    for rel, text in {"__init__.py": "", "core/__init__.py": "", "rank/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", root)
    assert bool(cycles(import_graph())) is expect_cycle


def test_the_checker_finds_an_upward_import(tmp_path, monkeypatch):
    root = tmp_path / "rearank_kit"
    for rel, text in {"__init__.py": "", "core/__init__.py": "", "course/__init__.py": "",
                      "core/a.py": "def f():\n    from rearank_kit.course.b import g\n", "course/b.py": ""}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", root)
    graph = import_graph()
    assert graph["rearank_kit.core.a"] == {"rearank_kit.course.b"}
    assert height("rearank_kit.course.b") > height("rearank_kit.core.a")
