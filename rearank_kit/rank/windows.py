"""Listwise reranking with sliding windows (RankGPT, Sun et al. 2023; REARANK, Zhang et al. 2025).

A listwise reranker sees a *window* of passages at once and answers with a permutation
(``<answer>[3] > [1] > ...</answer>``). A first-stage list longer than the window is reranked
with overlapping windows from the bottom of the list to the top: with ``top_k=100``,
``window=20`` and ``step=10`` the model ranks positions 80-99, then 70-89, ..., then 0-19
(9 calls). Each window sees the list as the previous window left it, so a strong passage found
near the bottom *bubbles up* one window at a time and can reach the top in a single pass.

    rearank-kit rerank --data dl19 --model smollm2-135m --template compact --out runs/dl19-smol
    rearank-kit demo          # the bundled sample, the bundled model

How this departs from the paper's code (RankGPT's ``sliding_windows``):

* Windows are *pipelined* across queries (``mode="pipelined"``, the default): each query's next
  window goes to the backend the moment its previous reply is parsed, up to ``group_size``
  queries in flight (vLLM's request queue, concurrent server requests, or hf micro-batches that a
  query joins as soon as its window is ready). The paper's code runs the windows of a batch of
  queries in lock-step: window position k of every query in one call, the next position only
  after the slowest reply of that call (``mode="batched"`` here); the paper's description is
  query by query, window by window (``mode="sequential"``). Under greedy decoding all three give
  the same rankings: a window's prompt depends only on its own query's earlier windows.
* When ``top_k`` is not a multiple of ``step`` the paper's loop never gives the top few
  passages a window of their own; here the last window always starts at position 0. A list
  shorter than the window gets one window over the whole list.
* Finished queries are appended to ``rankings.jsonl`` as they finish, so an interrupted run
  resumes where it stopped (the same command again), and every model call leaves a trace record.

``rerank()`` works in memory; ``run.rerank_benchmark`` writes (and resumes) a run folder;
``reranker.Reranker`` is the short public door (``Reranker(model).rerank(query, passages)``).
Every entry point asks ``settings.RerankConfig.for_model`` for the window, stride, template and
generation limit; the template is loaded once per run and the PromptTemplate object passed down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rearank_kit.core.files import append_jsonl
from rearank_kit.core.parsing import ParseResult, parse_ranking
from rearank_kit.core.prompts import PromptTemplate
from rearank_kit.core.records import Benchmark, Ranking
from rearank_kit.rank.settings import RerankConfig, config_for_backend, default_mode

# The two logs a run folder keeps while it works (run.py owns the folder).
RANKINGS_LOG = "rankings.jsonl"  # one finished, reranked Ranking per line (the resume log)
TRACES_LOG = "traces.jsonl"  # one record per model call

# --- window arithmetic --------------------------------------------------------------------------


def window_positions(k: int, window: int, step: int) -> list[tuple[int, int]]:
    """The [start, end) windows that rerank the top ``k``, in the order they are run (bottom first).

    >>> window_positions(100, 20, 10)[:3], len(window_positions(100, 20, 10))
    ([(80, 100), (70, 90), (60, 80)], 9)
    >>> window_positions(7, 20, 10), window_positions(25, 20, 10)
    ([(0, 7)], [(5, 25), (0, 15)])
    """
    if window < 1 or step < 1:
        raise ValueError(f"window and step must be positive, got {window} and {step}")
    if k <= 0:
        return []
    if k <= window:
        return [(0, k)]
    positions, end = [], k
    while True:
        start = max(end - window, 0)
        positions.append((start, end))
        if start == 0:  # the top window has been ranked: done (RankGPT would stop before it)
            return positions
        end -= step


# --- one window, for teaching -------------------------------------------------------------------


@dataclass
class WindowResult:
    """What one model call did: the prompt, the raw reply and how it was read."""

    messages: list[dict[str, str]]
    output: str
    parse: ParseResult
    passages: list[str]  # the passages in the model's order, best first
    generation: Any = None

    @property
    def order(self) -> list[int]:
        return self.parse.order


def _generation_config(config: RerankConfig) -> Any:
    from rearank_kit.rank.backends import GenerationConfig

    return GenerationConfig(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p,
        seed=config.seed, batch_size=config.batch_size, stop=list(config.stop) if config.stop else None,
    )  # fmt: skip


def rerank_one(
    query: str,
    passages: Sequence[str],
    backend: Any,
    template: str | PromptTemplate | None = None,
    max_new_tokens: int | None = None,
    temperature: float = 0.0,
) -> WindowResult:
    """One model call on one window (no sliding): the parsed ranking and the raw output.
    ``template`` defaults to the model's own (``settings.model_template``).

    >>> r = rerank_one("what is a cat", ["Cars have wheels.", "A cat is a small feline."], backend)
    >>> r.output, r.order   # e.g. ('<answer>[2] > [1]</answer>', [1, 0])
    """
    config = RerankConfig(window=max(len(passages), 2), max_new_tokens=max_new_tokens, temperature=temperature)
    config, template = config.for_model(getattr(backend, "model_id", None), template)
    config = config_for_backend(config, backend)
    messages = template.messages(query, list(passages))
    gen = backend.generate([messages], _generation_config(config), prefill=template.prefill or None)[0]
    parse = parse_ranking(gen.text, len(passages))
    return WindowResult(messages, gen.text, parse, [passages[i] for i in parse.order], gen)


# --- sliding windows over many queries ----------------------------------------------------------


@dataclass
class _QueryState:
    """A query in progress: its current list (top k, mutated window by window) and its windows."""

    ranking: Ranking
    head: list  # the top-k candidates, reordered in place
    tail: list  # candidates below top k: never shown to the model, kept in first-stage order
    windows: list[tuple[int, int]] = field(default_factory=list)
    done: int = 0  # windows whose reply has been applied

    def window(self) -> list:
        """The candidates of the next window, in the current order."""
        return self.head[slice(*self.windows[self.done])]

    def apply(self, window: list, gen: Any, ctx: _Context, seconds: float, call_seconds: float, size: int) -> None:
        """Read the reply to ``window`` (the next one), reorder the list and leave a trace record."""
        start, end = self.windows[self.done]
        parsed = parse_ranking(gen.text, len(window))
        self.head[start:end] = [window[i] for i in parsed.order]  # later windows see this order
        self.done += 1
        if ctx.record is not None:
            ctx.record({
                "qid": self.ranking.query.qid, "window": [start, end], "docids": [c.docid for c in window],
                "output": gen.text, "order": parsed.order, "diagnostics": parsed.diagnostics(),
                "prompt_tokens": gen.prompt_tokens, "output_tokens": gen.output_tokens,
                "finish_reason": gen.finish_reason,
                # Time is measured per backend call (batched) or per wait for replies (pipelined);
                # each record gets its share, so the records add up to the time spent in the model.
                "seconds": seconds, "call_seconds": call_seconds, "call_size": size,
                "model": getattr(ctx.backend, "model_id", None), "template": ctx.template.name,
                "template_hash": ctx.template.hash,
            })  # fmt: skip

    def result(self) -> Ranking:
        return Ranking(self.ranking.query, self.head + self.tail)


@dataclass
class _Context:
    """What every window of a run shares."""

    backend: Any
    template: PromptTemplate
    gen_config: Any
    record: Callable[[dict[str, Any]], None] | None  # trace sinks, None when nobody listens
    finish: Callable[[_QueryState], None]  # a query's last window is done: log it
    bar: Any

    def messages(self, s: _QueryState, window: list) -> list[dict[str, str]]:
        return self.template.messages(s.ranking.query.text, [c.text for c in window])


def _run_group(states: list[_QueryState], ctx: _Context) -> None:
    """Lock-step windows of a group of queries: one backend call per window position (round). A
    query is logged the moment its last window is done, so an interrupted run loses no finished query."""
    prefill = ctx.template.prefill or None
    for s in states:
        if not s.windows:  # nothing to rank (one candidate or none)
            ctx.finish(s)
    for _ in range(max((len(s.windows) for s in states), default=0)):
        # Queries with fewer candidates have fewer windows and drop out of later rounds.
        active = [s for s in states if s.done < len(s.windows)]
        windows = [s.window() for s in active]
        started = time.perf_counter()
        outs = ctx.backend.generate([ctx.messages(s, w) for s, w in zip(active, windows, strict=True)],
                                    ctx.gen_config, prefill=prefill)  # fmt: skip
        seconds = time.perf_counter() - started
        if len(outs) != len(active):
            raise RuntimeError(f"backend returned {len(outs)} generations for {len(active)} conversations")
        for s, window, gen in zip(active, windows, outs, strict=True):
            s.apply(window, gen, ctx, seconds / len(active), seconds, len(active))
            if s.done == len(s.windows):
                ctx.finish(s)
        ctx.bar.update(len(active))


def _run_pipelined(todo: list[_QueryState], ctx: _Context, limit: int) -> None:
    """Every query's next window is submitted the moment its previous reply is parsed, with at
    most ``limit`` queries in flight; a query is logged as soon as its last window is done."""
    from rearank_kit.rank.backends.pipeline import open_pipeline

    waiting = list(range(len(todo)))[::-1]  # indices into todo; pop() starts them in input order
    flying: dict[int, list] = {}  # index in todo -> the window its request shows the model
    with open_pipeline(ctx.backend, ctx.gen_config, ctx.template.prefill or None) as pipe:

        def submit(i: int) -> None:
            flying[i] = todo[i].window()
            pipe.submit(i, ctx.messages(todo[i], flying[i]))

        while waiting or flying:
            while waiting and len(flying) < limit:
                i = waiting.pop()
                if todo[i].windows:
                    submit(i)
                else:  # nothing to rank (one candidate or none)
                    ctx.finish(todo[i])
            if not flying:
                continue
            started = time.perf_counter()
            done = pipe.wait()
            seconds = time.perf_counter() - started
            if not done:
                raise RuntimeError(f"the backend's pipeline returned nothing with {len(flying)} requests in flight")
            for i, gen in done:
                s = todo[i]
                s.apply(flying.pop(i), gen, ctx, seconds / len(done), seconds, len(done))
                if s.done < len(s.windows):
                    submit(i)
                else:
                    ctx.finish(s)
            ctx.bar.update(len(done))


# --- the sliding-window loop -------------------------------------------------------------------


def rerank_queries(
    rankings: list[Ranking], backend: Any, config: RerankConfig, template: PromptTemplate,
    finished: dict[str, Ranking], out: Path | None, progress: bool,
    on_trace: Callable[[dict[str, Any]], None] | None = None,
) -> list[Ranking]:
    """Rerank the queries not yet in ``finished`` (qid -> ranking, filled in as queries finish);
    with a folder ``out``, append each model call to its traces and each finished query to its
    rankings log; ``on_trace`` (optional) receives every trace record too. ``config`` is
    resolved, ``template`` the PromptTemplate it names; ``config.mode`` None is the backend's
    ``default_mode``."""
    from tqdm.auto import tqdm

    sinks = [on_trace] if on_trace is not None else []
    if out is not None:
        sinks.append(lambda trace: append_jsonl(out / TRACES_LOG, trace))

    def record(trace: dict[str, Any]) -> None:
        for sink in sinks:
            sink(trace)

    def finish(s: _QueryState) -> None:
        finished[s.ranking.query.qid] = s.result()
        if out is not None:
            append_jsonl(out / RANKINGS_LOG, finished[s.ranking.query.qid].to_dict())

    todo = [
        _QueryState(r, list(r.candidates[: config.top_k]), list(r.candidates[config.top_k :]))
        for r in rankings if r.query.qid not in finished
    ]  # fmt: skip
    for s in todo:
        # A window of one passage has nothing to rank: such queries need no model call.
        s.windows = [w for w in window_positions(len(s.head), config.window, config.step) if w[1] - w[0] > 1]
    mode = config.mode or default_mode(backend)
    bar = tqdm(total=sum(len(s.windows) for s in todo), desc=f"rerank windows ({mode})", unit="win",
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    ctx = _Context(backend, template, _generation_config(config), record if sinks else None, finish, bar)
    try:
        if mode == "pipelined":
            _run_pipelined(todo, ctx, config.group_size)
        else:
            size = 1 if mode == "sequential" else config.group_size
            for g in range(0, len(todo), size):
                _run_group(todo[g : g + size], ctx)
    finally:
        bar.close()
    return [finished[r.query.qid] for r in rankings]


def rerank(
    data: Benchmark | Sequence[Ranking],
    backend: Any,
    config: RerankConfig | None = None,
    *,
    progress: bool = True,
) -> list[Ranking]:
    """Rerank every query's top ``config.top_k`` with sliding windows, in memory; rankings in
    input order. ``run.rerank_benchmark`` does the same into a run folder (resumable, traces,
    metrics)."""
    rankings = list(data.rankings if isinstance(data, Benchmark) else data)
    config, template = (config or RerankConfig()).for_model(getattr(backend, "model_id", None))
    return rerank_queries(rankings, backend, config_for_backend(config, backend), template, {}, None, progress)
