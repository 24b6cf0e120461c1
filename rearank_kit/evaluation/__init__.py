"""Stage 4, evaluation (notebook 05): held-out sets with paired intervals, cross-validation by query,
the paper's reported numbers and the reproduction of its tables. Imports the stages below.
(Named ``evaluation`` so that ``rearank_kit.evaluate``, the public metrics function, stays a function.)
"""
