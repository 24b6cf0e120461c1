"""Evaluate a model on held-out augmented sets: rank reward, nDCG@10 gain, paired comparisons.

    rearank-kit evaluate-sets --model smollm2-135m --sets runs/aug --split test --lenient --out runs/eval-base
    rearank-kit evaluate-sets --model runs/grpo --sets runs/aug --split test --out runs/eval-grpo --against runs/eval-base

--model takes a preset, folder or hub id, a training run folder (its template, prefill, parsing
mode and window come from its manifest) or a checkpoint inside one. Every set of the split is
reranked once, greedily. Writes OUT/sets.jsonl (one line per set: ids, grades, reply, scores; no
passage text), OUT/metrics.json and OUT/manifest.json; an interrupted run resumes with the same
command. --against OTHER_OUT compares with another evaluation of the same sets: mean difference,
a 95% interval from a bootstrap over queries then sets, and a sign-flip p-value.
"""

from __future__ import annotations

import argparse
import json

from rearank_kit.commands._common import add_json, add_progress, add_template, check_out_folder, in_range
from rearank_kit.core.stats import format_interval
from rearank_kit.rank.settings import Range

NAME = "evaluate-sets"
HELP = "evaluate a model on held-out augmented sets (rank reward, nDCG@10 gain, paired comparison)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m",
                   help="model preset, folder, hub id, training run folder or checkpoint (default: smollm2-135m)")
    p.add_argument("--sets", required=True, help="augment output folder (rearank-kit augment --out)")
    p.add_argument("--split", default="test", help="train, validation or test ('heldout' = test; default: test)")
    p.add_argument("--out", required=True, help="output folder (an existing evaluation there is resumed)")
    p.add_argument("--against", help="another evaluate-sets output folder of the same sets to compare with")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm"), help="inference backend (default: hf)")
    add_template(p, None, "prompt template (default: the model's own; a training run's is recorded)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lenient", dest="lenient", action="store_const", const=True,
                      help="score answers without an <answer> block too (what the kit's CPU runs train with)")
    mode.add_argument("--strict", dest="lenient", action="store_const", const=False,
                      help="score only complete <answer> blocks (the paper's reward)")
    p.add_argument("--sets-per-query", type=in_range(Range("--sets-per-query", 1)), help="only the first N sets of each query (quick probes)")
    p.add_argument("--max-new-tokens", type=in_range("max_new_tokens"), help="generation limit (default: by template and set size)")
    p.add_argument("--batch-size", type=in_range("batch_size"), default=1, help="sets per generate call (default: 1)")
    p.add_argument("--ids-only", action="store_true",
                   help="keep only each reply's ranking syntax in sets.jsonl (for files to be published: a small "
                        "model's free text may copy passage text)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (decoding is greedy)")
    add_json(p)
    add_progress(p)


def print_metrics(m: dict) -> None:
    r = m["rank_reward"]
    print(f"{m['model']} on {m['sets']} {m['split']} sets of {m['queries']} queries ({m['template']} template, "
          f"{'lenient' if m['lenient'] else 'strict'} parsing)")
    print(f"  rank reward        mean {r['mean']:+.4f}  median {r['median']:+.4f}  below -1: {r['share_below_minus_1']:.1%}")
    print(f"  nDCG@10            initial {m['ndcg10_initial']:.4f}  reranked {m['ndcg10_reranked']:.4f}  "
          f"best possible {m['ndcg10_best']:.4f}")
    print(f"  gain over initial  {format_interval(m['vs_initial_order'])}")
    print(f"  complete answers   {m['complete_answers']:.1%}   copies of the input order {m['copied_input_order']:.1%}")
    if "comparison" in m:
        c = m["comparison"]
        print(f"  against {c['against']}:")
        print(f"    rank reward      {format_interval(c['rank_reward'])}")
        print(f"    nDCG@10          {format_interval(c['ndcg10_reranked'])}")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets

    check_out_folder(args.out, "evaluate-sets")  # before a model loads

    config = SetEvalConfig(split=args.split, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           per_query=args.sets_per_query, lenient=args.lenient, seed=args.seed, ids_only=args.ids_only)
    metrics = evaluate_sets(args.model, args.sets, args.out, config, backend=args.backend, template=args.template,
                            against=args.against, progress=not args.no_progress)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print_metrics(metrics)
    return 0
