"""BRIGHT as the REARANK authors reranked it: precomputed pyserini BM25 runs, read from local files.

The paper's Table 2 reranks BM25 top-100 runs made with pyserini (Lucene) over BRIGHT, with each
query's excluded documents filtered out; its BM25 row (biology 18.2, ...) is those runs'
nDCG@10. The authors' ``utils.get_hits_from_run_bright`` reads four files per task, in the layout
of Rank-R1's pyserini conversion of BRIGHT (their code's ``data/bright`` folder):

    <root>/data/pyserini_queries/<task>.tsv          qid<TAB>query
    <root>/data/pyserini_qrels/<task>.tsv            qid 0 docid grade
    <root>/data/pyserini_corpus/<task>/<task>.jsonl  {"id": ..., "contents": ...}
    <root>/runs_bm25/bm25.<task>.filtered.trec       TREC run

``<root>`` is ``$REARANK_KIT_BRIGHT``, else ``$REARANK_KIT_CACHE/bright``. With those files,
``remote.resolve_any("bright/<task>")`` (and so ``--data bright/<task>`` and ``rearank-kit
reproduce --table 2``) builds the benchmark from them, offline. Without them it falls back to
``remote.load_bright``: BRIGHT from the Hugging Face hub with a local bm25s first stage, whose
tokenizer and stemmer differ from Lucene's, so its BM25 numbers (and the reranked numbers built
on them) can differ from the paper's. pyserini's own BRIGHT regressions (``--index
bright-<task> --topics bright-<task> --bm25 --remove-query``) give the same BM25 figures.

    from rearank_kit.data.bright import load_bright_run
    bench = load_bright_run("biology", top_k=100)
"""

from __future__ import annotations

import os
from pathlib import Path

from rearank_kit.core.env import cache_dir
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import read_jsonl
from rearank_kit.core.records import Benchmark, Ranking, read_qrels, read_queries, read_run

BRIGHT_RUNS_ENV = "REARANK_KIT_BRIGHT"
BRIGHT_RUNS_HINT = (
    f"the authors' BRIGHT BM25 runs (data/pyserini_queries/<task>.tsv, data/pyserini_qrels/<task>.tsv, "
    f"data/pyserini_corpus/<task>/<task>.jsonl, runs_bm25/bm25.<task>.filtered.trec) are read from "
    f"${BRIGHT_RUNS_ENV} (default $REARANK_KIT_CACHE/bright); see docs/DEVELOPING.md, 'Data'"
)


# The twelve BRIGHT tasks of the paper's Table 2, in its order.
BRIGHT_TASKS = (
    "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow",
    "sustainable_living", "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems",
)  # fmt: skip


def bright_runs_dir() -> Path:
    """``$REARANK_KIT_BRIGHT``, else ``$REARANK_KIT_CACHE/bright``."""
    env = os.environ.get(BRIGHT_RUNS_ENV, "").strip()
    return Path(env).expanduser() if env else cache_dir("bright")


def bright_run_files(task: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The four files of ``task`` under ``root`` (default ``bright_runs_dir()``)."""
    root = Path(root) if root else bright_runs_dir()
    return {
        "queries": root / "data" / "pyserini_queries" / f"{task}.tsv",
        "qrels": root / "data" / "pyserini_qrels" / f"{task}.tsv",
        "corpus": root / "data" / "pyserini_corpus" / task / f"{task}.jsonl",
        "run": root / "runs_bm25" / f"bm25.{task}.filtered.trec",
    }


def runs_ready(task: str, root: str | os.PathLike | None = None) -> bool:
    return all(p.is_file() for p in bright_run_files(task, root).values())


def load_bright_run(task: str, top_k: int = 100, root: str | os.PathLike | None = None) -> Benchmark:
    """The benchmark of ``task`` from its four files: the run's top ``top_k`` with their texts.

    As the authors' code does, run documents missing from the corpus are dropped (ranks
    renumbered) and the queries are those of the run, in its order.
    """
    if task not in BRIGHT_TASKS:
        raise KitError(f"unknown BRIGHT task {task!r}; tasks: {', '.join(BRIGHT_TASKS)}")
    files = bright_run_files(task, root)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise KitError(f"BRIGHT {task}: missing {', '.join(missing)}; {BRIGHT_RUNS_HINT}")
    queries = {q.qid: q for q in read_queries(files["queries"])}
    run = read_run(files["run"])
    wanted = {c.docid for cands in run.values() for c in cands}
    corpus = read_jsonl(files["corpus"], skip_torn_tail=False)
    texts: dict[str, str] = {}
    for number, rec in zip(corpus.line_numbers, corpus.records, strict=True):
        if not isinstance(rec.get("id"), (str, int)) or not isinstance(rec.get("contents"), str):
            raise DataError(f'{files["corpus"]}:{number}: expected {{"id": ..., "contents": "..."}}')
        if str(rec["id"]) in wanted:
            texts[str(rec["id"])] = rec["contents"]
    rankings = []
    for qid, cands in run.items():
        if qid not in queries:
            raise DataError(f"{files['run']}: query {qid} is not in {files['queries']}")
        kept = [c for c in cands if c.docid in texts][:top_k]
        for i, c in enumerate(kept):
            c.rank, c.text = i + 1, texts[c.docid]
        rankings.append(Ranking(queries[qid], kept))
    return Benchmark(f"bright-{task}", None, rankings, read_qrels(files["qrels"]))
