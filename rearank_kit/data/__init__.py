"""Stage 1, getting data (notebooks 00-01): benchmarks by name or path, first-stage retrieval
(BM25), remote benchmarks (ir_datasets, BEIR through pyserini, BRIGHT with the authors' runs),
the user's own first stage, RankLLM's files, and the fixed cross-validation folds.
Imports only ``core``.
"""
