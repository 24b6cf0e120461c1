"""Rerank a benchmark's first-stage candidates with a listwise LLM and sliding windows.

    rearank-kit rerank --data dl19 --model smollm2-135m --top-k 20 --queries 5 --out runs/smol
    rearank-kit rerank --data dl19 --model le723z/Rearank-7B --backend vllm --template rearank --out runs/r7b
    rearank-kit rerank --data dl19 --backend openai --base-url http://localhost:8000/v1 --model NAME --out runs/srv

The output folder gets run.trec (TREC run), traces.jsonl (one record per model call),
rankings.jsonl (finished queries: the resume log), metrics.json (first stage vs reranked, when
the queries have judgments) and manifest.json. Interrupted? Run the same command again: finished
queries are kept and skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rearank_kit.rerank_run import DEFAULT_MEASURES

HELP = "rerank a benchmark's candidates with a listwise LLM (sliding windows, resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="benchmark name (looked up in $REARANK_KIT_DATA, then data/) or folder")
    p.add_argument("--model", default="smollm2-135m",
                   help="model preset, local folder, hub id, or a training run folder / checkpoint (its template, "
                        "prefill and window come from its manifest; default: the bundled smollm2-135m)")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm", "openai"), help="inference backend (default: hf)")
    p.add_argument("--template", help="prompt template name or .toml file (default: the model's own: its preset's, or "
                        "the one a training run used; another one is allowed with a warning)")
    p.add_argument("--out", required=True, help="output folder (an existing run there is resumed)")
    p.add_argument("--top-k", type=int, default=100, help="rerank the first-stage top k (default: 100)")
    p.add_argument("--window", type=int, help="passages per model call (default: 20, or the window a training run used)")
    p.add_argument("--step", type=int, help="window stride, bottom to top (default: half the window)")
    p.add_argument("--queries", type=int, help="only the first N queries (smoke runs)")
    p.add_argument("--max-new-tokens", type=int, help="generation limit (default: 2048 for reasoning templates, else 128)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="conversations per forward pass (default: 1 for the hf backend on a CPU, else 8)")
    p.add_argument("--group-size", type=int, default=32, help="queries reranked together in batched mode (default: 32)")
    p.add_argument("--sequential", action="store_true", help="query by query, window by window (the paper's loop)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-url", help="OpenAI-compatible server URL (openai backend)")
    p.add_argument("--measures", default=DEFAULT_MEASURES, help=f"ir-measures for metrics.json (default: {DEFAULT_MEASURES})")
    p.add_argument("--overwrite", action="store_true", help="delete this command's earlier outputs in --out and start again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def backend_kwargs(backend: str, base_url: str | None) -> dict[str, Any]:
    from rearank_kit.errors import KitError

    if backend == "openai":
        if not base_url:
            raise KitError("the openai backend needs --base-url (e.g. http://localhost:8000/v1)")
        return {"base_url": base_url}
    if base_url:
        raise KitError(f"--base-url is for the openai backend, not {backend}")
    return {}


def print_summary(summary: dict[str, Any], out: Path) -> None:
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
    from rearank_kit.policy import resolve_policy
    from rearank_kit.rerank import RerankConfig
    from rearank_kit.rerank_run import rerank_benchmark

    policy = resolve_policy(args.model, args.template)  # warns when --template is not what the run trained with
    window = args.window or policy.window or 20
    config = RerankConfig(
        top_k=args.top_k, window=window, step=args.step or max(window // 2, 1), template=policy.template,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
        batch_size=args.batch_size, group_size=args.group_size, mode="sequential" if args.sequential else "batched",
    )  # fmt: skip
    run = rerank_benchmark(args.data, args.model, config, args.out, backend_name=args.backend,
                           backend_kwargs=backend_kwargs(args.backend, args.base_url), queries=args.queries,
                           measures=args.measures, overwrite=args.overwrite, progress=not args.no_progress)  # fmt: skip
    print_summary(run.summary, run.out)
    return 0
