"""Rerank first-stage candidates with a listwise LLM and sliding windows.

    rearank-kit rerank --data dl19 --model smollm2-135m --top-k 20 --queries 5 --out runs/smol
    rearank-kit rerank --data dl19 --model le723z/Rearank-7B --backend vllm --out runs/r7b \\
        --engine-arg max_model_len=8192 --engine-arg gpu_memory_utilization=0.85
    rearank-kit rerank --data dl19 --backend openai --base-url http://localhost:8000/v1 --model NAME --out runs/srv
    rearank-kit rerank --run my.trec --passages my/passages.jsonl --queries-file my/queries.tsv --out runs/mine
    rearank-kit rerank --data msmarco-passage/trec-dl-2020/judged --out runs/dl20    # an ir_datasets id (network)

The output folder gets run.trec (TREC run), traces.jsonl (one record per model call),
rankings.jsonl (finished queries: the resume log), metrics.json (first stage vs reranked, when
the queries have judgments) and manifest.json. Interrupted? Run the same command again: finished
queries are kept and skipped. ``--json`` prints metrics.json (without per-query scores) on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rearank_kit.commands import _common
from rearank_kit.rank.run import DEFAULT_MEASURES
from rearank_kit.rank.settings import MODES

HELP = "rerank first-stage candidates with a listwise LLM (sliding windows, resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_input(p)
    _common.add_model(p)
    _common.add_backend(p)
    _common.add_template(p, None, "prompt template (default: the model's own: its preset's, or the one a training "
                                  "run used; another one is allowed with a warning)")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (an existing run there is resumed)")
    _common.add_top_k(p, 100, "rerank the first-stage top k")
    _common.add_windows(p, "passages per model call (default: the window a training run used, else 20)")
    _common.add_queries(p)
    p.add_argument("--max-new-tokens", type=_common.in_range("max_new_tokens"),
                   help="generation limit (default: 2048 for reasoning templates, else 128)")
    p.add_argument("--batch-size", type=_common.in_range("batch_size"),
                   help="conversations per forward pass (default: 1 for the hf backend on a CPU, else 8)")
    p.add_argument("--mode", choices=MODES, help="how windows go to the backend: pipelined (default: each query's "
                   "next window as soon as its reply is read), batched (lock-step, the authors' loop) or "
                   "sequential (query by query, window by window, the paper's description)")
    p.add_argument("--sequential", dest="mode", action="store_const", const="sequential", help="the same as --mode "
                   "sequential")
    p.add_argument("--group-size", type=_common.in_range("group_size"), default=32,
                   help="queries in flight (pipelined) or reranked together (batched) (default: 32)")
    p.add_argument("--temperature", type=_common.in_range("temperature", float), default=0.0, help="0 = greedy (default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--measures", default=DEFAULT_MEASURES, help=f"ir-measures for metrics.json (default: {DEFAULT_MEASURES})")
    p.add_argument("--states", metavar="DIR", help="a scored policy only: the state cache to read and extend "
                   "(rearank-kit states; default: a states/ folder inside --out)")
    p.add_argument("--overwrite", action="store_true", help="delete this command's earlier outputs in --out and start again")
    _common.add_progress(p)
    _common.add_json(p)


def print_summary(summary: dict[str, Any], out: Path) -> None:
    if "scored_pairs" in summary:  # a scored policy: one score per (query, passage), no text
        print(f"{summary['data']}: {summary['num_queries']} queries, {summary['scored_pairs']} passages scored")
    else:
        print(f"{summary['data']}: {summary['num_queries']} queries, {summary['model_calls']} model calls, "
              f"{summary['complete_answers']} complete answers (no repair needed)")  # fmt: skip
    if "reranked" in summary:
        width = max(len(m) for m in summary["reranked"])
        print(f"  {'measure':<{width}}  first stage  reranked   delta")
        for m, v in summary["reranked"].items():
            print(f"  {m:<{width}}  {summary['first_stage'][m]:11.4f}  {v:8.4f}  {summary['delta'][m]:+.4f}")
    else:
        print(f"  {summary['note']}")
    print(f"wrote {out}/run.trec, traces.jsonl, metrics.json, manifest.json")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.rank.run import check_out, rerank_benchmark
    from rearank_kit.rank.settings import RerankConfig

    out = Path(args.out)
    check_out(out)  # before anything is loaded
    _common.check_out_folder(out, "rerank")  # someone else's folder is refused, untouched
    kwargs = _common.backend_kwargs(args)  # --device, --engine-arg, --base-url checked before the data is read
    # None for what the user did not give: rerank_benchmark asks RerankConfig.for_model for the model's own.
    config = RerankConfig(
        top_k=args.top_k, window=args.window, step=args.stride, template=args.template,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
        batch_size=args.batch_size, group_size=args.group_size, mode=args.mode,
    ).check()  # fmt: skip
    bench, fields = _common.load_input(args, args.top_k)
    result = rerank_benchmark(bench, args.model, config, out, backend_name=args.backend, backend_kwargs=kwargs,
                              queries=args.queries, measures=args.measures, overwrite=args.overwrite,
                              progress=not args.no_progress, manifest_fields=fields, states=args.states)  # fmt: skip
    if args.json:
        _common.print_run_json(result.summary, result.out)
    else:
        print_summary(result.summary, result.out)
    return 0
