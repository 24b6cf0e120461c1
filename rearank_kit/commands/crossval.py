"""Cross-validate a scored policy by query, then train it on every query: the learning run.

    rearank-kit states --data dl21 --top-k 100 --layers 15 --out runs/states-dl21
    rearank-kit crossval --data dl21 --folds data/folds/dl21.json --states runs/states-dl21 --out runs/cv-grpo
    rearank-kit rerank --model runs/cv-grpo/final --data dl19 --out runs/cv-grpo/dl19

For each fold K of --folds: the settings of --method are compared on the next fold's queries,
the best is trained on the other folds and reranks fold K's first-stage top k; the held-out
rankings make one TREC run, compared with the first stage with a bootstrap interval over queries
(metrics.json). --method: grpo (the reward alone), listnet+grpo, listnet (the supervised warm-up
alone), probe (ridge on the grades), yes-no / yes-no-alone (the model's zero-shot answer; states
of its last layer). Interrupted? The same command again keeps the finished folds. See
rearank_kit/evaluation/learning_run.py and docs/TRAINING.md.
"""

from __future__ import annotations

import argparse

from rearank_kit.commands import _common

HELP = "cross-validate a scored policy by query (fixed folds), then train it on every query"


def layer_choices(text: str) -> tuple[tuple[int, ...], ...]:
    try:
        choices = tuple(tuple(int(x) for x in part.split("+")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer choices like 12,15 or 8+15, got {text!r}") from None
    if not choices or min(min(c) for c in choices) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative layer numbers, got {text!r}")
    return choices


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rearank_kit.evaluation.learning_run import METHODS

    _common.add_input(p)
    p.add_argument("--folds", metavar="FOLDS.json", help="the fold of each query (data/folds/dl21.json; required)")
    p.add_argument("--states", metavar="DIR", help="the state cache of --data (rearank-kit states; required)")
    p.add_argument("--out", required=True, help="the learning run's folder (an unfinished one is resumed)")
    p.add_argument("--method", choices=METHODS, default="grpo", help="the rung to train (default: grpo)")
    p.add_argument("--layers", type=layer_choices, default=((12,), (15,), (18,)), help="the layers a head may read, "
                   "each fold choosing on its validation queries: choices separated by commas, layers read together "
                   "joined by + (e.g. 15 or 15,8+15+22; default: 12,15,18)")
    p.add_argument("--window", type=_common.in_range("window"), default=20, help="passages per augmented set (default: 20, the paper's)")
    p.add_argument("--samples-per-query", type=_common.in_range(_common.SAMPLES_PER_QUERY), default=50, help="augmented sets per query (default: 50)")
    _common.add_top_k(p, 100, "the first-stage depth reranked, and the pool sets are drawn from")
    p.add_argument("--prior", choices=("bm25", "rank"), default="bm25", help="the first stage's voice: z-scored "
                   "scores (bm25, default) or ranks")
    p.add_argument("--seed", type=_common.in_range(_common.SEED), default=0)
    p.add_argument("--no-final", action="store_true", help="skip training on every query")
    p.add_argument("--add-test", nargs="+", metavar="RUN_DIR", help="only add the test sets to a finished --out: "
                   "rerank run folders of OUT/final (rearank-kit rerank --model OUT/final --data dl19 ...); "
                   "metrics.json gets the held-out comparison per benchmark and over every held-out query")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.data.folds import load_folds
    from rearank_kit.evaluation.learning_run import LearningSetup, add_test_runs, learning_run
    from rearank_kit.rank.states import load_states

    if args.add_test:
        for name, m in add_test_runs(args.out, args.add_test).items():
            print(f"{name:>10}: {m['queries']} queries, nDCG@10 {m['system']:.4f} vs {m['baseline']:.4f}, "
                  f"{m['delta']:+.4f} (95% CI {m['ci95'][0]:+.4f} to {m['ci95'][1]:+.4f}), {m['up']} up, {m['down']} down")
        return 0
    from rearank_kit.core.errors import KitError

    missing = [flag for flag, value in (("--folds", args.folds), ("--states", args.states)) if not value]
    if missing:
        raise KitError(f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} required (except with --add-test)")

    setup = LearningSetup(method=args.method, layer_choices=tuple(args.layers), window=args.window,
                          samples_per_query=args.samples_per_query, top_k=args.top_k, prior=args.prior,
                          seed=args.seed, final=not args.no_final).check()  # fmt: skip
    _common.check_out_folder(args.out, "crossval")
    folds = load_folds(args.folds)
    cache = load_states(args.states)
    bench, _ = _common.load_input(args, args.top_k)
    metrics = learning_run(bench, folds, cache, setup, args.out)
    m = metrics["ndcg@10"]
    print(f"{metrics['method']} on {metrics['data']} (top {metrics['top_k']}), {m['queries']} held-out queries: "
          f"nDCG@10 {m['system']:.4f} vs first stage {m['baseline']:.4f}, {m['delta']:+.4f} "
          f"(95% CI {m['ci95'][0]:+.4f} to {m['ci95'][1]:+.4f}), {m['up']} up, {m['down']} down -> {args.out}")
    return 0
