"""Convert runs to and from RankLLM's request/result JSONL, so that the two tools can share them.

    rearank-kit convert --to rankllm --data dl19 --top-k 100 --out dl19.requests.jsonl
    rearank-kit convert --to rankllm --run my.trec --passages p.jsonl --queries-file q.tsv --out my.requests.jsonl
    rearank-kit convert --to rankllm --data runs/dl19-smol --out dl19-smol.results.jsonl   # a rerank run folder
    rearank-kit convert --from rankllm rankllm.results.jsonl --out runs/rankllm-dl19 --qrels qrels.txt

--to rankllm writes a benchmark's first-stage candidates as RankLLM requests (scores kept), or a
finished rerank run's rankings as RankLLM results (scores n..1 in reranked order). --from rankllm
reads RankLLM requests or results (.jsonl, or a .json array) and writes a benchmark folder whose
candidates.trec is the file's order: `rearank-kit rerank --data` reranks it, `rearank-kit eval
--data` evaluates it. See rearank_kit/data/rankllm.py for the format.
"""

from __future__ import annotations

import argparse
import json
import sys

from rearank_kit.commands import _common

HELP = "convert runs to and from RankLLM's request/result JSONL"
FORMATS = ("rankllm",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    way = p.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", choices=FORMATS, help="write this format from --data / --run (or a rerank run folder)")
    way.add_argument("--from", dest="source", choices=FORMATS, help="read FILE in this format into a benchmark folder")
    p.add_argument("file", nargs="?", metavar="FILE", help="with --from: the RankLLM .jsonl (or .json) file to read")
    _common.add_input(p, qrels_help="TREC qrels (with --from too: copied into the benchmark folder)")
    _common.add_top_k(p, 100, "with --to: the first-stage top k of each query")
    p.add_argument("--out", required=True, help="--to: the JSONL file to write; --from: the benchmark folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out: with --from an earlier --from rankllm "
                   "folder, with --to a RankLLM file; anything else in the way is refused, never deleted")
    _common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rearank_kit.core.errors import KitError
    from rearank_kit.data import rankllm

    out = Path(args.out)
    if args.source:
        if not args.file:
            raise KitError("--from rankllm needs FILE: the RankLLM requests or results to read")
        given = [f for f, v in (("--data", args.data), ("--run", args.run), ("--passages", args.passages),
                                ("--queries-file", args.queries_file)) if v is not None]  # fmt: skip
        if given:
            raise KitError(f"--from rankllm reads FILE; {', '.join(given)} are for --to")
        bench = rankllm.rankllm_to_benchmark(args.file, out, qrels=args.qrels, overwrite=args.overwrite)
        what = {"out": str(out), "format": "benchmark folder", "num_queries": len(bench.rankings)}
    else:
        if args.file:
            raise KitError(f"FILE ({args.file}) is for --from; with --to give --data or --run")
        rankllm.check_out_file(out, args.overwrite)
        if args.data is not None and rankllm.is_rerank_run(args.data):
            rankings, scores = rankllm.read_rerank_run(args.data), "rank"
        else:
            rankings, scores = _common.load_input(args, args.top_k)[0].rankings, "first_stage"
        empty = [r.query.qid for r in rankings if not r.candidates]
        if empty:  # a RankLLM request lists passages to rank; an empty one is refused by --from
            print(f"note: {len(empty)} queries without candidates left out: {', '.join(empty[:10])}"
                  + (" ..." if len(empty) > 10 else ""), file=sys.stderr)  # fmt: skip
            rankings = [r for r in rankings if r.candidates]
        if not rankings:
            raise KitError("no query has candidates: there is nothing to write")
        rankllm.write_rankllm(rankings, out, scores=scores)
        kind = "results (reranked order)" if scores == "rank" else "requests (first-stage order)"
        what = {"out": str(out), "format": f"RankLLM {kind}", "num_queries": len(rankings)}
    if args.json:
        print(json.dumps(what, indent=2))
    else:
        print(f"wrote {what['out']}: {what['format']}, {what['num_queries']} queries")
    return 0
