"""Reproduce the paper's Table 1 (TREC DL, BEIR) or Table 2 (BRIGHT): rerank, evaluate, compare.

    rearank-kit reproduce --table 1 --model le723z/Rearank-7B --backend vllm --out runs/table1
    rearank-kit reproduce --table 2 --model le723z/Rearank-7B --backend vllm --out runs/table2
    rearank-kit reproduce --table 1 --model Qwen/Qwen2.5-7B-Instruct --system RankQwen2.5-7B --backend vllm --out runs/t1-qwen

Every benchmark of the table is reranked (BM25 top 100, windows of 20 moved by 10, greedy) into
<out>/<dataset>/ and its nDCG@10 printed beside the paper's, with the difference in points;
<out>/comparison.csv and reproduce.json keep the table. Benchmarks are found locally first
(REARANK_KIT_DATA, the kit's cache) and downloaded otherwise; without a network the command lists
what is missing, with what to download and where to put it, and exits with status 2 before any
model loads (--skip-missing runs the rest). Interrupted? The same command again resumes.
"""

from __future__ import annotations

import argparse

from rearank_kit.commands import _common
from rearank_kit.rank.settings import Range

HELP = "rerank every benchmark of the paper's Table 1 or 2 and print the kit's numbers beside the paper's"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True, choices=("1", "2"), help="1: TREC DL19/DL20 + seven BEIR sets; 2: BRIGHT")
    p.add_argument("--model", required=True, help="model preset, local folder, hub id or training run folder "
                   "(the paper's: le723z/Rearank-7B)")
    p.add_argument("--out", required=True, help="output folder: one rerank run folder per benchmark, comparison.csv")
    _common.add_backend(p)
    _common.add_template(p, None, "prompt template (default: the model's own; another one is allowed with a warning)")
    p.add_argument("--system", default="REARANK-7B",
                   help="the paper row to compare the reranked numbers with (default: REARANK-7B; e.g. "
                        "RankQwen2.5-7B for Qwen/Qwen2.5-7B-Instruct)")
    _common.add_top_k(p, 100, "rerank the first-stage top k (the paper's: 100)")
    _common.add_windows(p, "passages per model call (default: 20, the paper's)")
    _common.add_queries(p, "only the first N queries of each benchmark (a smoke run; not comparable with the paper)")
    p.add_argument("--max-new-tokens", type=_common.in_range("max_new_tokens"),
                   help="generation limit (default: 2048 for reasoning templates)")
    p.add_argument("--batch-size", type=_common.in_range("batch_size"), help="conversations per forward pass "
                   "(default: the backend's)")
    p.add_argument("--missing-queries", choices=("zero", "skip"), default="zero",
                   help="judged queries missing from a run: zero = count as 0 (trec_eval -c, the default), "
                        "skip = leave them out of the mean")
    p.add_argument("--skip-missing", action="store_true",
                   help="run the benchmarks that are available and list the others, instead of stopping")
    p.add_argument("--tolerance", type=_common.in_range(Range("--tolerance", 0), float), default=1.0, help="points within which a number counts as "
                   "reproduced (default: 1.0)")
    _common.add_progress(p)


def run(args: argparse.Namespace) -> int:
    from rearank_kit.evaluation.reproduce import COMPARISON_FILE, REPORT_FILE, format_report, reproduce
    from rearank_kit.rank.settings import RerankConfig

    # Before anything is read or loaded: a folder of someone else's files is not written into.
    _common.check_out_folder(args.out, "reproduce", parts=("rerank",), names=(COMPARISON_FILE, REPORT_FILE))

    # None for what the user did not give: reproduce asks RerankConfig.for_model for the model's own.
    config = RerankConfig(top_k=args.top_k, window=args.window, step=args.stride, template=args.template,
                          max_new_tokens=args.max_new_tokens, batch_size=args.batch_size).check()  # fmt: skip
    result = reproduce(args.table, args.model, args.out, config=config, backend_name=args.backend,
                       backend_kwargs=_common.backend_kwargs(args), queries=args.queries, system=args.system,
                       missing_queries=args.missing_queries, skip_missing=args.skip_missing,
                       tolerance=args.tolerance, progress=not args.no_progress)  # fmt: skip
    print(format_report(result))
    return 0
