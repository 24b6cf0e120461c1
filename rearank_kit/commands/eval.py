"""Evaluate a run (or the benchmark's first-stage candidates) against its judgments.

    rearank-kit eval --data dl19
    rearank-kit eval --data dl19 --run runs/dl19/run.trec --measures nDCG@10,RR@10,R@100 --json
    rearank-kit eval --data dl19 --run runs/dl19/run.trec --missing-queries skip

Means are over every judged query by default, a judged query missing from the run counting as 0
(trec_eval -c, as pyserini and RankLLM report); --missing-queries skip averages over the judged
queries the run ranks (trec_eval without -c). The output says which, and which queries were missing.
"""

from __future__ import annotations

import argparse
import json

HELP = "evaluate a TREC run against a benchmark's qrels (default: the first-stage candidates)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="benchmark folder, or a name looked up in $REARANK_KIT_DATA then data/, or with a network an ir_datasets id / bright/<task>")
    p.add_argument("--run", help="TREC run file to evaluate (default: the benchmark's candidates.trec)")
    p.add_argument("--measures", default="nDCG@10", help="comma-separated ir-measures names (default: nDCG@10)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--per-query", action="store_true", help="also show (or include in --json) per-query scores")
    p.add_argument("--missing-queries", choices=("zero", "skip"), default="zero",
                   help="judged queries missing from the run: zero = count as 0 (trec_eval -c, the default), "
                        "skip = leave them out of the mean (trec_eval without -c)")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.core.errors import KitError
    from rearank_kit.core.metrics import evaluate
    from rearank_kit.core.records import read_qrels, read_run
    from rearank_kit.data.remote import resolve_any

    folder = resolve_any(args.data)  # a folder, a local name, or (with a network) an ir_datasets id
    qrels_path = folder / "qrels.txt"
    qrels = read_qrels(qrels_path)
    if not qrels:  # e.g. a folder made by `rearank-kit retrieve` without --qrels
        raise KitError(f"no judgments in {qrels_path}: there is nothing to evaluate against")
    run_path = args.run or folder / "candidates.trec"
    # The rank column decides the order. First-stage BM25 scores tie often, and trec_eval would
    # reorder ties by docid; the published BM25 figures (dl19 0.5058...) use the file's ranks.
    run = {q: {c.docid: float(len(cands) - i) for i, c in enumerate(cands)} for q, cands in read_run(run_path).items()}
    result = evaluate(run, qrels, args.measures, args.missing_queries)
    if len(result.missing) == len(qrels):
        raise KitError(f"{run_path}: none of its {len(run)} queries has judgments in {qrels_path}")
    if args.json:
        out = result.to_json()
        if not args.per_query:
            out.pop("per_query")
        out.update({"data": str(folder), "run": str(run_path)})
        print(json.dumps(out, indent=2))
        return 0
    print(f"{folder.name}: {run_path} ({result.num_queries} queries)")
    print(f"  {result.policy}; missing: {_listed(result.missing)}")
    if args.per_query:
        print(result.per_query.round(4).to_string())
        print()
    width = max(len(m) for m in result.mean)
    for m, v in result.mean.items():
        print(f"  {m:<{width}}  {v:.4f}")
    return 0


def _listed(qids, shown: int = 10) -> str:
    if not qids:
        return "none"
    more = f", ... ({len(qids)} in all)" if len(qids) > shown else ""
    return ", ".join(qids[:shown]) + more
