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
import time
from pathlib import Path
from typing import Any

HELP = "rerank a benchmark's candidates with a listwise LLM (sliding windows, resumable)"
DEFAULT_MEASURES = "nDCG@5,nDCG@10,nDCG@20"
OUTPUT_FILES = ("run.trec", "traces.jsonl", "rankings.jsonl", "metrics.json", "manifest.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="benchmark name (looked up in $REARANK_KIT_DATA, then data/) or folder")
    p.add_argument("--model", default="smollm2-135m", help="model preset, local folder or hub id (default: the bundled smollm2-135m)")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm", "openai"), help="inference backend (default: hf)")
    p.add_argument("--template", help="prompt template name or .toml file (default: the model preset's own)")
    p.add_argument("--out", required=True, help="output folder (an existing run there is resumed)")
    p.add_argument("--top-k", type=int, default=100, help="rerank the first-stage top k (default: 100)")
    p.add_argument("--window", type=int, default=20, help="passages per model call (default: 20)")
    p.add_argument("--step", type=int, default=10, help="window stride, bottom to top (default: 10)")
    p.add_argument("--queries", type=int, help="only the first N queries (smoke runs)")
    p.add_argument("--max-new-tokens", type=int, help="generation limit (default: 2048 for reasoning templates, else 128)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="conversations per forward pass (hf backend; default: 8 on a GPU, 1 on a CPU)")
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


def execute(
    data: str,
    out: str | Path,
    config: Any,
    model: str = "smollm2-135m",
    backend: str = "hf",
    queries: int | None = None,
    base_url: str | None = None,
    measures: str = DEFAULT_MEASURES,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Load, rerank, write the folder; returns metrics.json's content (plus timing)."""
    from rearank_kit.backends import load_backend
    from rearank_kit.data import BENCHMARK_FILES, load_benchmark, rankings_to_run, write_run
    from rearank_kit.errors import KitError
    from rearank_kit.files import iter_jsonl, write_json
    from rearank_kit.manifest import fingerprint_files
    from rearank_kit.models import check_template
    from rearank_kit.prompts import load_template
    from rearank_kit.rerank import check_resume, rerank

    if queries is not None and queries < 1:
        raise KitError(f"--queries must be positive, got {queries}")
    engine_kwargs = backend_kwargs(backend, base_url)
    template = load_template(config.template)
    check_template(model, template.name)
    config = config.resolved(template)
    bench = load_benchmark(data, top_k=config.top_k).head(queries)
    if not bench.rankings:
        raise KitError(f"{bench.path}: no queries to rerank")
    out = Path(out)
    if overwrite:
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    fields = {
        "data": bench.name,
        "data_path": str(bench.path),
        "data_fingerprint": fingerprint_files(bench.path / f for f in BENCHMARK_FILES),
        "queries": [r.query.qid for r in bench.rankings],
    }
    check_resume(out, config, manifest_fields=fields)  # the cheap checks, before a model is loaded
    started = time.perf_counter()
    with load_backend(backend, model=model, **engine_kwargs) as engine:
        reranked = rerank(bench, engine, config, out, progress=progress, manifest_fields=fields)
    seconds = time.perf_counter() - started

    write_run(reranked, out / "run.trec", tag=f"rearank-kit-{template.name}")
    wanted = set(fields["queries"])
    traces = [t for t in iter_jsonl(out / "traces.jsonl") if t.get("qid") in wanted]
    summary: dict[str, Any] = {
        "data": bench.name,
        "num_queries": len(reranked),
        "model_calls": len(traces),
        "complete_answers": sum(1 for t in traces if _complete(t.get("diagnostics") or {})),
        "seconds_this_session": round(seconds, 2),
    }
    judged = [r for r in bench.rankings if bench.qrels.get(r.query.qid)]
    if judged:
        summary.update(_compare(rankings_to_run(bench.rankings), rankings_to_run(reranked), bench.qrels, measures))
    else:
        summary["note"] = "no judgments (qrels) for these queries: nothing to evaluate"
    write_json(out / "metrics.json", summary)
    _finish_manifest(out, summary)
    return summary


def _complete(diag: dict) -> bool:
    return diag.get("num_valid") == diag.get("num") and not diag.get("num_duplicate") and not diag.get("num_out_of_range")


def _compare(first: dict, reranked: dict, qrels: dict, measures: str) -> dict[str, Any]:
    from rearank_kit.metrics import evaluate, paired_ttest

    # Only the judgments of the reranked queries: with --queries N the others are not part of the run.
    qrels = {q: qrels[q] for q in reranked if q in qrels}
    base, new = evaluate(first, qrels, measures), evaluate(reranked, qrels, measures)
    p_values = {m: paired_ttest(new.per_query[m].to_dict(), base.per_query[m].to_dict())[1] for m in new.mean}
    return {
        "judged_queries": new.num_queries,
        "first_stage": base.mean,
        "reranked": new.mean,
        "delta": {m: new.mean[m] - base.mean[m] for m in new.mean},
        "paired_ttest_p": p_values,
        "per_query": {"first_stage": base.to_json()["per_query"], "reranked": new.to_json()["per_query"]},
    }


def _finish_manifest(out: Path, summary: dict[str, Any]) -> None:
    """rerank() wrote the manifest when it started; mark it done and add the outcome."""
    import json

    from rearank_kit.files import write_json

    path = out / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    results={k: v for k, v in summary.items() if k != "per_query"},
                    files=[n for n in OUTPUT_FILES if (out / n).exists()])  # fmt: skip
    write_json(path, manifest)


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
    from rearank_kit.models import default_template
    from rearank_kit.rerank import RerankConfig

    batch_size = args.batch_size
    if batch_size is None:
        # On a CPU the hf backend is prefill-bound and left-padded batches take a slow masked
        # attention path: measured here, 8 dl19 windows took 8x longer in one batch of 8 than
        # one by one (BENCHMARKS.md). Batches pay off on GPUs and in vLLM, which pads nothing.
        from rearank_kit.models import resolve_device

        batch_size = 1 if args.backend == "hf" and resolve_device("auto") == "cpu" else 8
    config = RerankConfig(
        top_k=args.top_k, window=args.window, step=args.step, template=args.template or default_template(args.model),
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
        batch_size=batch_size, group_size=args.group_size, mode="sequential" if args.sequential else "batched",
    )  # fmt: skip
    summary = execute(args.data, args.out, config, model=args.model, backend=args.backend, queries=args.queries,
                      base_url=args.base_url, measures=args.measures, overwrite=args.overwrite,
                      progress=not args.no_progress)  # fmt: skip
    print_summary(summary, Path(args.out))
    return 0
