"""Build REARANK's training sets: many random passage sets per annotated query, scored and filtered.

For every judged query, draw --samples-per-query sets of --window passages from its first-stage
top-100, score each set's initial and best nDCG@10, and drop sets with no relevant passage or
with nDCG@10 below --min-ndcg. Queries are split into train/test by query. See
rearank_kit/train/augment.py for the algorithm and how it departs from the paper.

    rearank-kit augment --data dl21 --samples-per-query 50 --window 20 --seed 0 --out runs/aug-dl21
    rearank-kit augment --data sample --window 5 --template compact --out runs/aug-sample
    rearank-kit augment --run my.trec --passages my/passages.jsonl --queries-file my/queries.tsv \
        --qrels my/qrels.txt --out runs/aug-mine          # your own first stage (judgments needed)

Writes OUT/dataset/ (datasets.DatasetDict: train, test), OUT/sets.jsonl, OUT/summary.json and
OUT/manifest.json, all at once at the end (an interrupted run leaves nothing behind).
"""

from __future__ import annotations

import argparse
import json

from rearank_kit.commands import _common
from rearank_kit.rank.settings import Range

HELP = "draw REARANK's augmented training sets (random passage sets per judged query)"
# The numeric flags checked when the command line is parsed (the fractions, whose ranges are open at
# one end and depend on each other, by AugmentConfig.validate before anything is read).
RANGES = {
    "samples_per_query": _common.SAMPLES_PER_QUERY,
    "window": Range("--window", 2),  # a set of one passage has nothing to rank
    "seed": _common.SEED,
    "min_ndcg": Range("--min-ndcg", 0, 1),
    "min_room": Range("--min-room", 0, 1),
    "fold": Range("--fold", 0),
}


def _number(field: str, kind: type = int):
    return _common.in_range(field, kind, RANGES)


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_input(p, qrels_help="TREC qrels (required with --run: sets are drawn for judged queries)")
    p.add_argument("--out", required=True, help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--samples-per-query", type=_number("samples_per_query"), default=50, help="sets drawn per query (default: 50)")
    p.add_argument("--window", type=_number("window"), default=20,
                   help="passages per set (default: 20, the paper; 5 for the CPU preset)")
    p.add_argument("--seed", type=_number("seed"), default=0, help="random seed (default: 0); same seed, same sets")
    p.add_argument("--filter", choices=("initial", "best"), default="initial",
                   help="apply --min-ndcg to the set's initial or best possible nDCG@10 (default: initial)")
    p.add_argument("--min-ndcg", type=_number("min_ndcg", float), default=0.1, help="drop sets below this nDCG@10 (default: 0.1)")
    p.add_argument("--order", choices=("bm25", "random"), default="bm25",
                   help="initial order of a set's passages (default: bm25)")
    _common.add_template(p, "rearank", "prompt template of the sets' prompts (default: rearank)")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="fraction of queries held out as the test split (default: 0.1)")
    p.add_argument("--validation-fraction", type=float, default=0.0,
                   help="fraction of queries held out for choosing settings (default: 0, no validation split)")
    p.add_argument("--folds", metavar="FOLDS.json", help="split by a committed folds file instead of the fractions: "
                   "with --fold K, fold K is the test split and fold K+1 the validation split (data/folds/dl21.json)")
    p.add_argument("--fold", type=_number("fold"), metavar="K", help="the fold to hold out (with --folds)")
    p.add_argument("--min-room", type=_number("min_room", float), default=0.0,
                   help="drop sets whose best nDCG@10 exceeds the initial by less than this (default: 0, "
                        "off as in the paper; the normalised reward explodes on such sets)")
    _common.add_top_k(p, 100, "draw from the first-stage top k candidates", old=("--pool",))
    p.add_argument("--overwrite", action="store_true", help="replace an earlier augment output in --out (a folder "
                   "holding anything else is refused, never deleted)")
    _common.add_progress(p)
    _common.add_json(p)


def _print_summary(s: dict, out) -> None:
    print(f"{s['data']}: {s['sets_kept']} sets kept of {s['sets_drawn']} drawn from {s['queries_used']} "
          f"of {s['queries']} queries -> {out}")
    skipped = s["queries_skipped"]
    print(f"  queries skipped: {skipped['no_judgments']} without judgments, "
          f"{skipped['too_few_candidates']} with fewer candidates than the window")
    d = s["sets_dropped"]
    print(f"  sets dropped: {d['no_relevant']} with no relevant passage, {d['below_min_ndcg']} with {s['filter']} "
          f"nDCG@10 < {s['min_ndcg']}, {d['duplicate']} duplicate draws"
          + (f", {d['below_min_room']} with best - initial nDCG@10 < {s['config']['min_room']}"
             if d.get("below_min_room") else ""))
    if s["queries_without_kept_sets"]:
        print(f"  queries with no set kept: {len(s['queries_without_kept_sets'])}")
    for split, c in s["splits"].items():
        print(f"  {split}: {c['queries']} queries, {c['sets']} sets")
    for key, label in (("init_ndcg", "initial"), ("best_ndcg", "best   ")):
        q = s[key]["quantiles"]
        print(f"  {label} nDCG@10: mean {s[key]['mean']:.3f}  min {q['0']:.3f}  median {q['0.5']:.3f}  "
              f"max {q['1']:.3f}")
    print(f"  sets already in their best order: {s['sets_already_best']}; template {s['template']}#{s['template_hash']}, "
          f"seed {s['seed']}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rearank_kit.core.errors import KitError
    from rearank_kit.train.augment import AugmentConfig, augment, check_out, write_augmented

    config = AugmentConfig(
        samples_per_query=args.samples_per_query, window=args.window, seed=args.seed, filter=args.filter,
        min_ndcg=args.min_ndcg, order=args.order, template=args.template, test_fraction=args.test_fraction,
        validation_fraction=args.validation_fraction, min_room=args.min_room, pool=args.top_k,
        folds=args.folds, fold=args.fold,
    )
    config.validate()
    out = Path(args.out)
    check_out(out, args.overwrite)  # before anything is read: empty, or an earlier augment output, and writable
    if args.run is not None and args.qrels is None:
        raise KitError("--run needs --qrels here: augmentation draws sets for judged queries only")
    bench, _ = _common.load_input(args, args.top_k)
    result = augment(bench, config, progress=not args.no_progress)
    write_augmented(result, out, overwrite=args.overwrite, bench=bench, config=config)
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        _print_summary(result.summary, args.out)
    return 0
