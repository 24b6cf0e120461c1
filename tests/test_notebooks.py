"""Static checks on the tutorial notebooks; executing them is nbmake's job.

CI runs both in one go (smoke mode keeps the notebooks to minutes on a CPU):

    REARANK_KIT_SMOKE=1 .venv/bin/python -m pytest -q --nbmake tests notebooks

The rules checked here (docs: ``notebooks/README.md``): committed without outputs or execution
counts; the ``python3`` kernel; the first cell says what you will learn, the runtime and the
hardware; the last cell holds exercises; every notebook imports from ``rearank_kit``, names its run
folder with ``run_folder("<its own name>")`` and writes only below it; no notebook defines a
function or a class (anything reusable belongs in the package); no ``input()``, which would block CI;
and every notebook matches the cells in ``notebooks/_build.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
EXPECTED = [
    "00_quickstart",
    "01_data_augmentation",
    "02_reward_design",
    "03_grpo_training",
    "04_reward_and_length_curves",
    "05_benchmark_evaluation",
    "06_reasoning_traces",
]
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

# Calls that write a file or a folder, and where their destination is (argument index or keyword).
WRITERS = {
    "to_csv": (0, "path_or_buf"), "savefig": (0, "fname"), "write_json": (0, "path"), "write_run": (1, "path"),
    "write_augmented": (1, "out"), "save_figure": (1, "path"), "atomic_write_text": (0, "path"),
    "write_text": (None, None), "run_augment": (1, "out"), "train": (2, "out"), "rerank": (3, "out_dir"),
}  # fmt: skip


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def python_source(cell: str) -> str:
    """A code cell without IPython magics and shell escapes, so that ``ast`` can read it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.splitlines())


def parse(path: Path) -> ast.Module:
    source = "\n\n".join(python_source(c) for c in code_cells(load(path)))
    return ast.parse(source, filename=str(path))


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def run_derived_names(tree: ast.Module) -> set[str]:
    """``RUN`` and every name assigned from an expression that uses it (or such a name), in order."""
    derived = {"RUN"}
    for node in ast.walk(tree):
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.For):
            targets, value = [node.target], node.iter
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets, value = [node.optional_vars], node.context_expr
        if value is not None and _names(value) & derived:
            for target in targets:
                base = target
                while isinstance(base, (ast.Subscript, ast.Attribute)):
                    base = base.value
                derived |= _names(base)
    return derived


def writer_calls(tree: ast.Module):
    """(name, destination expression or None, node) for every call in WRITERS."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in WRITERS:
            continue
        index, keyword = WRITERS[name]
        if name == "write_text":  # Path(...).write_text(text): the path is the receiver
            yield name, func.value if isinstance(func, ast.Attribute) else None, node
            continue
        dest = next((k.value for k in node.keywords if k.arg == keyword), None)
        if dest is None and index is not None and len(node.args) > index:
            dest = node.args[index]
        yield name, dest, node


# --- the sequence -------------------------------------------------------------------------------


def test_the_sequence_is_complete():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


def test_readme_lists_every_notebook():
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [name for name in EXPECTED if name not in readme]
    assert not missing, f"notebooks/README.md does not mention {missing}"


def test_notebooks_match_their_build_script():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOK_DIR / "_build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.NOTEBOOKS) == EXPECTED
    stale = [n for n in EXPECTED if (NOTEBOOK_DIR / f"{n}.ipynb").read_text(encoding="utf-8") != build.render(n)]
    assert not stale, (
        f"edited outside notebooks/_build.py (or not rebuilt): {stale}; run .venv/bin/python notebooks/_build.py"
    )


# --- each notebook ------------------------------------------------------------------------------

each = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


@each
def test_committed_without_outputs_or_execution_counts(path):
    nb = load(path)
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]  # fmt: skip
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; strip them before committing"


@each
def test_kernel_is_python3(path):
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@each
def test_opens_with_what_you_will_learn_runtime_and_hardware(path):
    first = load(path)["cells"][0]
    text = "".join(first["source"]).lower()
    assert first["cell_type"] == "markdown", f"{path.name}: the first cell must be markdown"
    for needed in ("what you will learn", "runtime", "hardware", "smoke"):
        assert needed in text, f"{path.name}: the first cell does not mention {needed!r}"


@each
def test_ends_with_exercises(path):
    last = load(path)["cells"][-1]
    assert last["cell_type"] == "markdown" and re.search(r"^#+\s*Exercises", "".join(last["source"]), re.M), (
        f"{path.name}: the last cell must be a markdown '## Exercises' section"
    )


@each
def test_imports_from_rearank_kit(path):
    tree = parse(path)
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert any(m.split(".")[0] == "rearank_kit" for m in modules), f"{path.name}: imports nothing from rearank_kit"


@each
def test_names_its_own_run_folder(path):
    tree = parse(path)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "run_folder"]  # fmt: skip
    assert len(calls) == 1, f"{path.name}: expected exactly one run_folder(...) call, found {len(calls)}"
    arg = calls[0].args[0] if calls[0].args else None
    assert isinstance(arg, ast.Constant) and arg.value == path.stem, (
        f"{path.name}: the run folder must be named after the notebook: RUN = run_folder({path.stem!r})"
    )
    assigned = [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.value is calls[0]]
    assert assigned and any(isinstance(t, ast.Name) and t.id == "RUN" for t in assigned[0].targets)


@each
def test_writes_only_under_its_run_folder(path):
    tree = parse(path)
    derived = run_derived_names(tree)
    outside = []
    for name, dest, node in writer_calls(tree):
        if dest is None or not (_names(dest) & derived):
            outside.append(f"line {node.lineno}: {name}({ast.unparse(dest) if dest is not None else '?'})")
    assert not outside, f"{path.name}: writes not under RUN: {outside}"


@each
def test_defines_nothing_reusable(path):
    tree = parse(path)
    defined = [f"{type(n).__name__} {n.name} (line {n.lineno})" for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]  # fmt: skip
    assert not defined, f"{path.name}: defines {defined}; move reusable code into rearank_kit"


@each
def test_never_waits_for_keyboard_input(path):
    tree = parse(path)
    calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "input"]  # fmt: skip
    assert not calls, f"{path.name}: input() blocks a non-interactive run (lines {calls}); use a variable to edit"


# --- the checks themselves ----------------------------------------------------------------------


def test_write_check_catches_a_write_outside_the_run_folder():
    tree = ast.parse(
        'RUN = run_folder("x")\nOUT = RUN / "a"\ndf.to_csv(OUT / "ok.csv")\ndf.to_csv("runs/elsewhere.csv")'
    )
    derived = run_derived_names(tree)
    flagged = [ast.unparse(dest) for _, dest, _ in writer_calls(tree) if not (_names(dest) & derived)]
    assert flagged == ["'runs/elsewhere.csv'"]


def test_magics_do_not_break_the_ast_check():
    assert ast.parse(python_source("%matplotlib inline\n!ls\nx = 1"))
