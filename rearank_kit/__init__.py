"""rearank-kit: learn, train and evaluate REARANK, a reasoning listwise reranker trained with GRPO.

Importing the package is cheap (no torch, transformers or pyserini); the heavy parts load when
used. Start with ``notebooks/00_quickstart.ipynb`` or ``rearank-kit --help``.
"""

__version__ = "0.1.0"
