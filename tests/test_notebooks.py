"""Static checks on the tutorial notebooks; executing them is nbmake's job.

CI runs both in one go (smoke mode keeps the notebooks to minutes on a CPU):

    REARANK_KIT_SMOKE=1 .venv/bin/python -m pytest -q --nbmake tests notebooks

The rules checked here (docs: ``notebooks/README.md``): committed without outputs or execution
counts; the ``python3`` kernel; the first cell says what you will learn, the prerequisites, the
runtime and the hardware; an exercises section, and a last cell that recaps the notebook; every
notebook imports from ``rearank_kit``, names its run folder with ``run_folder("<its own name>")``
and writes only below it; no class, and no function but the learner's exercise stubs: a function
whose body only raises ``NotImplementedError`` and that a ``rearank_kit.course.exercises`` checker is
called on (anything reusable belongs in the package; solutions live in ``notebooks/solutions/``);
no ``input()``, which would block CI.

Each notebook is a jupytext pair (``notebooks/jupytext.toml``): ``NN_name.ipynb`` and its percent-format
source ``NN_name.py``. The pair tests check that both files exist, hold the same cells, and that
``jupytext --sync`` from either side rewrites nothing (so cell ids and metadata do not churn); ruff
checks the sources.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.cli import jupytext as jupytext_cli
from jupytext.config import load_jupytext_config

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
    "07_grpo_from_scratch",
    "08_faithfulness_lab",
]
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
SYNC = ".venv/bin/jupytext --sync notebooks/*.ipynb"

# Calls that write a file or a folder, and where their destination is (argument index or keyword).
WRITERS = {
    "to_csv": (0, "path_or_buf"), "savefig": (0, "fname"), "write_json": (0, "path"), "write_run": (1, "path"),
    "write_augmented": (1, "out"), "save_figure": (1, "path"), "atomic_write_text": (0, "path"),
    "write_text": (None, None), "run_augment": (1, "out"), "train": (2, "out"), "rerank": (3, "out_dir"),
    "write_report": (1, "out"),
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


def test_notebooks_are_paired_with_percent_sources():
    formats = load_jupytext_config(str(NOTEBOOK_DIR / f"{EXPECTED[0]}.ipynb")).formats
    assert formats in ("ipynb,py:percent", ["ipynb,py:percent"]), f"notebooks/jupytext.toml pairs {formats!r}"
    notebooks, sources = {p.stem for p in NOTEBOOKS}, {p.stem for p in SOURCES}
    assert notebooks <= sources, f"no .py beside {sorted(notebooks - sources)}; create it with {SYNC}"
    assert sources <= notebooks, (
        f"no .ipynb beside {sorted(sources - notebooks)}; create it with .venv/bin/jupytext --sync notebooks/NN_name.py "
        "and give it the kernel and cell timeout of the others (see notebooks/README.md)"
    )


def cell_diff(ipynb: nbformat.NotebookNode, source: nbformat.NotebookNode) -> str:
    """Where two notebooks' cells first differ (type or text), as a short unified diff; "" if they agree."""
    a = [(c.cell_type, c.source) for c in ipynb.cells]
    b = [(c.cell_type, c.source) for c in source.cells]
    if a == b:
        return ""
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    x, y = (a[i] if i < len(a) else ("none", "")), (b[i] if i < len(b) else ("none", ""))
    diff = difflib.unified_diff(x[1].splitlines(), y[1].splitlines(), ".ipynb", ".py", lineterm="", n=1)
    return f"{len(a)} vs {len(b)} cells; cell {i} ({x[0]} vs {y[0]}) differs:\n" + "\n".join(list(diff)[:20])


def copy_pair(path: Path, folder: Path) -> Path:
    """A copy of the pair of `path` and of notebooks/jupytext.toml in `folder`; returns the copied .ipynb."""
    folder.mkdir()
    for file in (path, path.with_suffix(".py"), NOTEBOOK_DIR / "jupytext.toml"):
        shutil.copyfile(file, folder / file.name)
    return folder / path.name


def sync(path: Path, newer: str) -> dict[str, str]:
    """The pair's texts after `jupytext --sync`, the `newer` side (".py" or ".ipynb") made the newest."""
    stamp = path.stat().st_mtime
    for suffix in (".ipynb", ".py"):  # sync reads the cells from the newer file of the pair
        os.utime(path.with_suffix(suffix), (stamp, stamp + (60 if suffix == newer else 0)))
    assert jupytext_cli(["--sync", "--quiet", str(path)]) == 0
    return {suffix: path.with_suffix(suffix).read_text(encoding="utf-8") for suffix in (".ipynb", ".py")}


def test_ruff_passes_over_the_notebook_sources():
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "notebooks"], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert lint.returncode == 0, f"ruff check notebooks:\n{lint.stdout}{lint.stderr}\nfix the .py, then {SYNC}"


# --- each notebook ------------------------------------------------------------------------------

each = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


@each
def test_pair_holds_the_same_cells(path):
    diff = cell_diff(nbformat.read(path, as_version=4), jupytext.read(path.with_suffix(".py"), fmt="py:percent"))
    assert not diff, f"{path.name} and {path.stem}.py disagree: {diff}\nrun {SYNC} (it keeps the newer side)"


@each
def test_a_sync_from_either_side_changes_nothing(path, tmp_path):
    committed = {suffix: path.with_suffix(suffix).read_text(encoding="utf-8") for suffix in (".ipynb", ".py")}
    for newer in (".py", ".ipynb"):
        after = sync(copy_pair(path, tmp_path / newer.strip(".")), newer)
        changed = [path.stem + suffix for suffix, text in after.items() if text != committed[suffix]]
        assert not changed, f"a sync from the {newer} side rewrites {changed}; run {SYNC} and commit both files"


@each
def test_cell_ids_are_stable(path):
    nb = load(path)
    ids = [c.get("id") for c in nb["cells"]]
    # Without ids (nbformat < 4.5) every read invents random ones, and every save changes every cell.
    assert (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5) and all(ids), f"{path.name}: cells without an id"
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"


@each
def test_cells_carry_no_metadata(path):
    noisy = {i: sorted(c["metadata"]) for i, c in enumerate(load(path)["cells"]) if c["metadata"]}
    assert not noisy, (
        f"{path.name}: cell metadata {noisy}. jupytext writes `lines_to_next_cell` when a cell of the .py is not "
        f"followed by exactly one blank line (add it, then {SYNC}); clear other keys in Jupyter's property inspector"
    )


@each
def test_committed_without_outputs_or_execution_counts(path):
    nb = load(path)
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]  # fmt: skip
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; strip them before committing"


@each
def test_kernel_is_python3_with_a_cell_timeout(path):
    metadata = load(path)["metadata"]
    assert metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"
    # nbmake reads the per-cell limit here (default 300 s, too short for a model cell on busy CI cores).
    assert metadata.get("execution", {}).get("timeout"), f"{path.name}: no metadata.execution.timeout"


@each
def test_opens_with_goals_prerequisites_runtime_and_hardware(path):
    first = load(path)["cells"][0]
    text = "".join(first["source"]).lower()
    assert first["cell_type"] == "markdown", f"{path.name}: the first cell must be markdown"
    for needed in ("what you will learn", "prerequisites", "runtime", "hardware", "smoke"):
        assert needed in text, f"{path.name}: the first cell does not mention {needed!r}"


@each
def test_has_exercises_and_ends_with_a_recap(path):
    cells = load(path)["cells"]
    headings = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert any(re.search(r"^#+\s*Exercises", h, re.M) for h in headings), f"{path.name}: no '## Exercises' section"
    last = cells[-1]
    assert last["cell_type"] == "markdown" and re.search(r"^#+\s*Recap", "".join(last["source"]), re.M), (
        f"{path.name}: the last cell must be a markdown '## Recap' section (what the notebook showed, in a few lines)"
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


def is_stub(node: ast.FunctionDef) -> bool:
    """A function whose body is an optional docstring and ``raise NotImplementedError``: what a learner fills in."""
    body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(
        getattr(node.body[0], "value", None), ast.Constant) else node.body  # fmt: skip
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def checked_names(tree: ast.Module) -> set[str]:
    """Names passed as the first argument to a ``check_*`` function (rearank_kit.course.exercises)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func.startswith("check_"):
                names.add(node.args[0].id)
    return names


def defined_not_allowed(tree: ast.Module) -> list[str]:
    checked = checked_names(tree)
    bad = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ClassDef) or isinstance(n, ast.AsyncFunctionDef):
            bad.append(f"{type(n).__name__} {n.name} (line {n.lineno})")
        elif isinstance(n, ast.FunctionDef) and not (is_stub(n) and n.name in checked):
            bad.append(f"function {n.name} (line {n.lineno})")
    return bad


@each
def test_defines_only_exercise_stubs(path):
    tree = parse(path)
    bad = defined_not_allowed(tree)
    assert not bad, (
        f"{path.name}: defines {bad}. A notebook may define only exercise stubs (body: raise NotImplementedError) "
        "that a rearank_kit.course.exercises check_* is called on; move reusable code into rearank_kit and solutions into "
        "notebooks/solutions/"
    )


@each
def test_exercise_stubs_are_imported_from_the_kit_checkers(path):
    tree = parse(path)
    stubs = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    if stubs:
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "rearank_kit.course.exercises" in modules, f"{path.name}: stubs {stubs} but no checker from rearank_kit.course.exercises"
        solved = (NOTEBOOK_DIR / "solutions").glob("*.py")
        names = {f.name for p in solved for f in ast.walk(ast.parse(p.read_text())) if isinstance(f, ast.FunctionDef)}
        assert set(stubs) <= names, f"{path.name}: no solution in notebooks/solutions/ for {sorted(set(stubs) - names)}"


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


def test_a_sync_keeps_the_ids_of_edited_cells_and_adds_one_for_a_new_cell(tmp_path):
    # jupytext matches the cells of the edited .py to those of the .ipynb and keeps their ids; this
    # guards that our settings and the pinned jupytext still do.
    path = copy_pair(NOTEBOOK_DIR / f"{EXPECTED[2]}.ipynb", tmp_path / "pair")
    source = path.with_suffix(".py")
    ids = [c.id for c in nbformat.read(path, as_version=4).cells]

    source.write_text(source.read_text(encoding="utf-8").replace('"run folder:"', '"folder:"', 1), encoding="utf-8")
    sync(path, ".py")
    cells = nbformat.read(path, as_version=4).cells
    assert 'print("folder:", RUN)' in cells[1].source and [c.id for c in cells] == ids

    source.write_text(
        source.read_text(encoding="utf-8").replace("# %%\n", "# %%\nADDED = 1\n\n# %%\n", 1), encoding="utf-8"
    )
    once = sync(path, ".py")
    cells = nbformat.read(path, as_version=4).cells
    assert cells[1].source == "ADDED = 1" and cells[1].id not in ids
    assert [c.id for c in cells[:1] + cells[2:]] == ids
    assert sync(path, ".py") == once == sync(path, ".ipynb")


def test_the_stub_rule_allows_checked_stubs_only():
    allowed = ast.parse("def f(x):\n    'doc'\n    raise NotImplementedError\ncheck_ndcg(f)")
    assert defined_not_allowed(allowed) == []
    unchecked = ast.parse("def f(x):\n    raise NotImplementedError")
    solved = ast.parse("def f(x):\n    return x\ncheck_ndcg(f)")
    helper = ast.parse("class A:\n    pass")
    assert [defined_not_allowed(t) for t in (unchecked, solved, helper)] == [
        ["function f (line 1)"], ["function f (line 1)"], ["ClassDef A (line 1)"]]


def test_magics_do_not_break_the_ast_check():
    assert ast.parse(python_source("%matplotlib inline\n!ls\nx = 1"))
