"""The ground floor: what every stage may import, and which imports nothing above it.

Errors, optional imports, the environment (switches, the cache, the network probe), whole-file
writes, manifests, the data model (queries, candidates, rankings and their files), and the pure
pieces every stage shares: metrics, the ranking parser, prompt templates, paired statistics.
Nothing here imports torch, transformers, pyserini or pandas at import time.
"""
