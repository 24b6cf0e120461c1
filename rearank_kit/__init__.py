"""rearank-kit: learn, train and evaluate REARANK, a reasoning listwise reranker trained with GRPO.

    from rearank_kit import Reranker
    with Reranker("smollm2-135m") as reranker:      # Reranker("le723z/Rearank-7B", backend="vllm") on a GPU
        print(reranker.rerank("what is a cat", ["Cars have wheels.", "A cat is a small feline."]).passages)

The names in ``__all__`` are the supported surface (``docs/API.md``); everything else is reachable
through its module. Importing the package is cheap (no torch, transformers or pyserini): each
name is imported from its module when first used. Start with ``notebooks/00_quickstart.ipynb``
or ``rearank-kit --help``.
"""

from __future__ import annotations

import importlib
from typing import Any

from rearank_kit.errors import KitError

__version__ = "0.1.0"

# name -> module that defines it (imported on first use)
_EXPORTS = {
    "Reranker": "reranker",
    "RerankResult": "reranker",
    "RerankConfig": "rerank",  # not the function rerank: rearank_kit.rerank is its module's name
    "rerank_benchmark": "rerank_run",
    "RerankRun": "rerank_run",
    "load_backend": "backends",
    "GenerationConfig": "backends",
    "load_benchmark": "data",
    "Benchmark": "data",
    "Ranking": "data",
    "Query": "data",
    "Candidate": "data",
    "load_input": "inputs",
    "evaluate": "metrics",
    "resolve_policy": "policy",
    "load_template": "prompts",
    "read_rankllm": "rankllm",
    "write_rankllm": "rankllm",
}

__all__ = ["__version__", "KitError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rearank_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rearank_kit.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
