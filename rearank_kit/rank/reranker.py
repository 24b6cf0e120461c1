"""The short way in: rerank your own passages for a query in three lines.

    from rearank_kit import Reranker
    with Reranker("smollm2-135m") as reranker:            # or Reranker("le723z/Rearank-7B", backend="vllm")
        result = reranker.rerank("what is a cat", ["Cars have wheels.", "A cat is a small feline.", "Tea is hot."])
    result.passages, result.order, result.reasoning

``Reranker`` holds one loaded model (hf, vllm or openai backend; ``backends/``) and the
conventions it runs with (``settings.RerankConfig.for_model``): the prompt template is the
model's own (its preset's, or what a kit training run or export recorded; another one warns for a
trained model, and a preset refuses one it does not suit), and so is the window when a training run
recorded one. More passages than a window are reranked with the sliding windows of
``windows.py`` (window 20, stride 10, bottom to top); ``rerank_many`` sends the windows of many
queries to the backend together, exactly as ``rearank-kit rerank`` does.

It works in memory and writes nothing. For benchmarks, resumable run folders, metrics and traces
on disk, use ``run.rerank_benchmark`` or ``rearank-kit rerank``. A Reranker holds the model
until ``close()`` (or the end of a ``with`` block): vLLM keeps its GPU memory until then.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.records import Candidate, Query, Ranking
from rearank_kit.rank.settings import RerankConfig, config_for_backend
from rearank_kit.rank.windows import rerank_queries

Passage = Any  # a str, a mapping with "text" (and any other fields), or a data.Candidate


@dataclass(frozen=True)
class RerankResult:
    """One query reranked: the passages as given, best first, and what the model said.

    With more passages than a window the model is called once per window (bottom to top);
    ``output`` and ``reasoning`` are then those of the last call, the top window, which placed
    the passages that come first; ``traces`` holds every call.
    """

    query: str
    passages: list[Passage]  # the input passages (the same objects), best first
    order: list[int]  # 0-based positions in the input, best first: passages == [given[i] for i in order]
    reasoning: str  # the model's <think> text ("" for answer-only templates, or when there was no call)
    output: str  # the model's raw reply, prefill included
    traces: list[dict[str, Any]] = field(default_factory=list)  # one record per model call (traces.jsonl fields)


def passage_text(passage: Passage, where: str) -> str:
    """The text of one input passage: a string, ``passage["text"]`` or ``Candidate.text``."""
    if isinstance(passage, str):
        return passage
    if isinstance(passage, Candidate):
        return passage.text
    if isinstance(passage, Mapping) and isinstance(passage.get("text"), str):
        return passage["text"]
    raise KitError(f"{where}: a passage must be a string, a mapping with a 'text' string, or a Candidate; "
                   f"got {type(passage).__name__}")  # fmt: skip


def reasoning_of(trace: Mapping[str, Any]) -> str:
    """The reasoning of one model call: its <think> block, or, when the reply opened <think> and
    was cut at the token limit before closing it, what it had reasoned so far."""
    output = (trace.get("output") or "").lstrip()
    think = (trace.get("diagnostics") or {}).get("think_text") or ""
    if not think and output.startswith("<think>") and "</think>" not in output:
        think = output[len("<think>") :].split("<answer>", 1)[0]
    return think.strip()


def _is_scored(model: Any) -> bool:
    from pathlib import Path

    return isinstance(model, str | os.PathLike) and (Path(model).expanduser() / "scored_policy.json").is_file()


class Reranker:
    """A listwise reranker: a loaded model and the conventions it runs with.

    ``model``: a preset (``smollm2-135m``, ``le723z/Rearank-7B``, ...), a local folder, a hub id,
    or a kit training run folder / checkpoint / export. ``backend``: ``"hf"``, ``"vllm"``,
    ``"openai"``, or a backend already loaded (left open by ``close``). ``template``: None for the
    model's own. ``window`` / ``stride``: the sliding windows (default: the window a training run
    recorded, else 20; stride half the window). Other keyword arguments go to the backend
    (``load_backend``): ``device`` for hf ("auto" by default), ``vllm.LLM`` arguments such as
    ``max_model_len`` or ``gpu_memory_utilization`` for vllm, ``base_url`` for openai.
    """

    def __init__(
        self,
        model: str | os.PathLike = "smollm2-135m",
        backend: Any = "hf",
        *,
        template: str | None = None,
        window: int | None = None,
        stride: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = False,
        **backend_kwargs: Any,
    ) -> None:
        loaded = not isinstance(backend, str)
        self.scored = None  # a scored policy's head and the states it reads (scored.py), else None
        if not loaded and _is_scored(model):
            self._init_scored(str(model), backend, window, stride, template, max_new_tokens, temperature, progress,
                              batch_size, backend_kwargs)  # fmt: skip
            return
        if loaded and backend_kwargs:
            raise KitError(f"backend arguments {', '.join(backend_kwargs)} cannot apply to a backend already loaded")
        self.model = str(getattr(backend, "model_id", model) if loaded else model)
        # Every check that needs no model runs before one is loaded; the window, stride and template
        # are the model's own unless given (settings.RerankConfig.for_model).
        asked = RerankConfig(window=window, step=stride, template=template, max_new_tokens=max_new_tokens,
                             temperature=temperature, seed=seed, batch_size=batch_size)  # fmt: skip
        self.config, self.template = asked.for_model(self.model)
        self.config = replace(self.config, top_k=self.config.window)
        self.progress = progress
        self._owns_backend = not loaded
        if loaded:
            self.backend = backend
        else:
            from rearank_kit.rank.backends import load_backend

            self.backend = load_backend(backend, model=self.model, **backend_kwargs)
        self.config = config_for_backend(self.config, self.backend)

    def _init_scored(self, model, backend, window, stride, template, max_new_tokens, temperature, progress,
                     batch_size, backend_kwargs) -> None:
        """A scored policy: the flags of windows and generation do not apply and are refused by name."""
        from rearank_kit.rank.models import resolve_device
        from rearank_kit.rank.run import check_scored_config
        from rearank_kit.rank.scored import load_scored_policy, trained_prompt
        from rearank_kit.rank.states import PairStates, state_key

        check_scored_config(RerankConfig(window=window, step=stride, template=template, max_new_tokens=max_new_tokens,
                                         temperature=temperature), backend, backend_kwargs)  # fmt: skip
        self.model, self.progress, self._owns_backend, self.backend = model, progress, False, None
        policy = load_scored_policy(model)
        prompt = trained_prompt(policy, model)
        device = resolve_device(backend_kwargs.get("device", "auto"))
        self.scored = (policy, PairStates(state_key(policy.model, prompt, policy.layers), prompt, device,
                                          batch_size or 16))  # fmt: skip
        self.template, self.config = None, None

    def _rerank_scored(self, query: str, given: list, texts: list[str]) -> RerankResult:
        from rearank_kit.rank.scored import first_stage_prior

        policy, states = self.scored
        with_scores = all(isinstance(p, Candidate) for p in given)
        # The policy was trained with the first stage's scores; plain passages have none, so their
        # given order stands in for them (the rank prior).
        prior = first_stage_prior([p.score for p in given] if with_scores else [0.0] * len(given),
                                  policy.prior if with_scores else "rank")  # fmt: skip
        scores = policy.scores(states(query, texts), prior) if given else []
        order = sorted(range(len(given)), key=lambda i: (-scores[i], i))
        trace = {"qid": "0", "window": [0, len(given)], "scores": [float(scores[i]) for i in order],
                 "model": self.model, "template": policy.prompt, "template_hash": policy.prompt_hash}  # fmt: skip
        return RerankResult(query, [given[i] for i in order], order, "", "", [trace])

    # --- reranking ------------------------------------------------------------------------------

    def rerank(self, query: str, passages: Sequence[Passage]) -> RerankResult:
        """``passages`` reranked for ``query`` (all of them, with sliding windows when they are
        more than a window)."""
        return self.rerank_many([query], [passages])[0]

    def rerank_many(self, queries: Sequence[str], passages: Sequence[Sequence[Passage]]) -> list[RerankResult]:
        """Many queries at once (``passages[i]`` for ``queries[i]``): the windows at one position of
        every query go to the backend in one call. Results in input order."""
        if isinstance(queries, str):
            raise KitError("rerank_many takes a list of queries (and a list of passage lists); use rerank() for one")
        if len(queries) != len(passages):
            raise KitError(f"rerank_many: {len(queries)} queries but {len(passages)} passage lists; give one list "
                           "of passages per query")  # fmt: skip
        if getattr(self, "backend", None) is None and getattr(self, "scored", None) is None:
            raise KitError("this Reranker was closed")
        rankings, lists = [], []
        for i, (query, given) in enumerate(zip(queries, passages, strict=True)):
            if not isinstance(query, str):
                raise KitError(f"query {i}: expected a string, got {type(query).__name__}")
            if isinstance(given, str | Mapping):
                raise KitError(f"query {i}: passages must be a list of passages, not one {type(given).__name__}")
            lists.append(list(given))
            texts = [passage_text(p, f"query {i}, passage {j}") for j, p in enumerate(lists[-1])]
            if self.scored is not None:
                rankings.append(self._rerank_scored(query, lists[-1], texts))
                continue
            rankings.append(Ranking(Query(str(i), query), [Candidate(str(j), t, j + 1) for j, t in enumerate(texts)]))
        if self.scored is not None:
            return rankings
        longest = max((len(r.candidates) for r in rankings), default=0)
        config = replace(self.config, top_k=max(longest, 1))
        traces: dict[str, list[dict[str, Any]]] = {r.query.qid: [] for r in rankings}
        reranked = rerank_queries(rankings, self.backend, config, self.template, {}, None, self.progress,
                                  on_trace=lambda t: traces[t["qid"]].append(t))  # fmt: skip
        results = []
        for ranking, given in zip(reranked, lists, strict=True):
            order = [int(c.docid) for c in ranking.candidates]
            calls = traces[ranking.query.qid]
            top = calls[-1] if calls else {}
            results.append(RerankResult(
                query=ranking.query.text, passages=[given[i] for i in order], order=order,
                reasoning=reasoning_of(top) if top else "", output=top.get("output", ""), traces=calls,
            ))  # fmt: skip
        return results

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Free the model (a backend passed in already loaded is left to its owner)."""
        self.scored = None
        backend, self.backend = getattr(self, "backend", None), None
        if backend is not None and self._owns_backend:
            backend.close()

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if getattr(self, "scored", None) is not None:
            return f"Reranker(model={self.model!r}, scored policy on {self.scored[0].model!r})"
        name = getattr(self.backend, "name", "closed") if getattr(self, "backend", None) is not None else "closed"
        return (f"Reranker(model={self.model!r}, backend={name!r}, template={self.template.name!r}, "
                f"window={self.config.window}, stride={self.config.step})")  # fmt: skip
