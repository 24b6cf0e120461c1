"""Helpers every notebook uses: smoke mode, the run folder, and what hardware is around.

Smoke mode (``REARANK_KIT_SMOKE=1``) shrinks every notebook to seconds-to-minutes on a CPU:
the bundled model, 2-3 queries, 1-2 training steps. CI executes the notebooks this way.

A notebook writes only inside the run folder it names at the top (``run_folder("01_augment")``),
under ``$REARANK_KIT_RUNS`` (default: ``runs/notebooks`` in the kit's checkout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from rearank_kit.core.env import SOURCE_ROOT, env_flag

T = TypeVar("T")

REPO_ROOT = SOURCE_ROOT


def smoke() -> bool:
    """True when ``REARANK_KIT_SMOKE`` is on (1/true/yes/on; see ``env.env_flag``)."""
    return env_flag("REARANK_KIT_SMOKE")


def pick(full: T, smoke_value: T) -> T:
    """``smoke_value`` in smoke mode, else ``full``: keeps notebook cells free of if/else noise."""
    return smoke_value if smoke() else full


def run_folder(name: str) -> Path:
    """The one folder a notebook may write to (created if missing)."""
    root = Path(os.environ.get("REARANK_KIT_RUNS", REPO_ROOT / "runs" / "notebooks"))
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def has_cuda() -> bool:
    """Whether a CUDA GPU is usable (imports torch lazily; False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def benchmark_or_sample(name: str) -> str:
    """``name`` when that benchmark is available (e.g. dl19 via ``REARANK_KIT_DATA``), else the
    bundled ``sample`` collection, saying so: notebooks then run anywhere."""
    from rearank_kit.data.benchmarks import available_benchmarks

    if name in available_benchmarks():
        return name
    print(f"Benchmark {name!r} is not available here (set REARANK_KIT_DATA); using the bundled 'sample' instead.")
    return "sample"


def folds_for(data: str):
    """The committed folds of a benchmark (``data/folds/<name>.json``: dl21, sample): drawn once,
    never redrawn (``data/folds.py``)."""
    from rearank_kit.core.errors import KitError
    from rearank_kit.data.folds import load_folds

    path = REPO_ROOT / "data" / "folds" / f"{data}.json"
    if not path.is_file():
        raise KitError(f"{path}: no committed folds for {data!r}; draw them once with data.folds.draw_folds and commit them")
    return load_folds(path)


def describe_hardware() -> str:
    """One line: CPU cores, and the GPU when there is one."""
    line = f"{os.cpu_count()} CPU cores"
    if has_cuda():
        import torch

        props = torch.cuda.get_device_properties(0)
        line += f", GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        line += ", no GPU"
    return line + (" - smoke mode" if smoke() else "")
