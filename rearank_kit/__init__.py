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

from rearank_kit.core.errors import KitError

__version__ = "0.1.0"

# name -> module that defines it (imported on first use)
_EXPORTS = {
    "Reranker": "rank.reranker",
    "RerankResult": "rank.reranker",
    "RerankConfig": "rank.settings",
    "rerank_benchmark": "rank.run",
    "RerankRun": "rank.run",
    "load_backend": "rank.backends",
    "GenerationConfig": "rank.backends",
    "load_benchmark": "data.benchmarks",
    "Benchmark": "core.records",
    "Ranking": "core.records",
    "Query": "core.records",
    "Candidate": "core.records",
    "load_input": "data.inputs",
    "evaluate": "core.metrics",
    "resolve_policy": "rank.policy",
    "load_template": "core.prompts",
    "read_rankllm": "data.rankllm",
    "write_rankllm": "data.rankllm",
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
