"""Stage 2, ranking with a model (notebooks 00, 05): the models the kit knows, the policy a model
carries (its template, window, prior), backends (hf, vLLM, OpenAI-compatible), the one owner of
rerank settings, sliding windows, the scored listwise policy, the run folder and the ``Reranker``
API. Imports ``core`` and ``data``.
"""
