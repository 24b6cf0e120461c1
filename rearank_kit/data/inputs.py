"""What a command reranks or augments: one loader for every kind of input.

Four ways to say where the queries, candidates and passage texts come from, the same for
``rearank-kit rerank`` and ``rearank-kit augment`` (and ``convert --to rankllm``):

* a benchmark folder (``queries.tsv``, ``qrels.txt``, ``candidates.trec``, ``passages.jsonl``);
* a registered name (looked up in ``$REARANK_KIT_DATA``, then ``data/``: ``dl19``, ``sample``);
* with a network, an ir_datasets id or ``bright/<task>`` (``remote.load_any``; fails within
  seconds offline, downloaded once and cached);
* one's own first stage: a TREC run file, a passages JSONL holding the text of every docid it
  ranks, a ``qid<TAB>text`` queries file, and optionally TREC qrels.

    from rearank_kit.data.inputs import load_input
    bench, fields = load_input("dl19", top_k=100)
    bench, fields = load_input(run="my.trec", passages="my/passages.jsonl", queries="my/queries.tsv")

``fields`` are the manifest fields that say where one's own files came from (``data``, the
files, and a ``data_fingerprint`` of them), so that a resumed run can tell other data from the
same; they are empty for a benchmark folder, whose four files ``rerank_benchmark`` and
``augment.write_augmented`` fingerprint themselves (``Benchmark.path``).
A run whose docids have no passage text, or whose qids are not in the queries file, is a
DataError naming the file and line; nothing has been written when it is raised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.records import Benchmark, Ranking, read_passages, read_qrels, read_queries, read_run


def load_input(
    data: str | os.PathLike | None = None,
    *,
    run: str | os.PathLike | None = None,
    passages: str | os.PathLike | None = None,
    queries: str | os.PathLike | None = None,
    qrels: str | os.PathLike | None = None,
    top_k: int = 100,
) -> tuple[Benchmark, dict[str, Any]]:
    """(benchmark with each query's first-stage top ``top_k`` and their texts, manifest fields).

    Either ``data`` (a folder, a name, a remote id) or ``run`` with ``passages`` and ``queries``
    (``qrels`` optional). The argument names are those of the CLI flags (``--data``, ``--run``,
    ``--passages``, ``--queries-file``, ``--qrels``), which the errors name.
    """
    own = {"--run": run, "--passages": passages, "--queries-file": queries, "--qrels": qrels}
    if data is not None:
        given = [flag for flag, value in own.items() if value is not None]
        if given:
            raise KitError(f"--data and {', '.join(given)} cannot be combined: give a benchmark (--data) or your "
                           "own first stage (--run with --passages and --queries-file)")  # fmt: skip
        from rearank_kit.data.remote import load_any

        return load_any(data, top_k=top_k), {}  # a folder: its readers fingerprint its files themselves
    if run is None:
        raise KitError("no input: give --data (a benchmark folder, a name, or an ir_datasets id) or --run RUN.trec "
                       "with --passages PASSAGES.jsonl and --queries-file QUERIES.tsv")  # fmt: skip
    return load_run(run, passages, queries, qrels, top_k)


def load_run(
    run: str | os.PathLike,
    passages: str | os.PathLike | None,
    queries: str | os.PathLike | None,
    qrels: str | os.PathLike | None = None,
    top_k: int | None = 100,
) -> tuple[Benchmark, dict[str, Any]]:
    """One's own first stage: a TREC run, the passages it ranks, its queries (see ``load_input``)."""
    from rearank_kit.core.manifest import fingerprint_files

    missing = [flag for flag, value in (("--passages", passages), ("--queries-file", queries)) if value is None]
    if missing:
        raise KitError(f"--run {run} needs {' and '.join(missing)}: the run file holds docids only, the passage "
                       "texts and query texts come from those files")  # fmt: skip
    run, passages, queries = Path(run), Path(passages), Path(queries)
    ranked = read_run(run)
    if not ranked:
        raise DataError(f"{run}: no lines; a TREC run has one 'qid Q0 docid rank score tag' line per candidate")
    if top_k is not None:
        ranked = {qid: cands[:top_k] for qid, cands in ranked.items()}
    query_list = read_queries(queries)
    known = {q.qid for q in query_list}
    for qid in ranked:
        if qid not in known:
            raise DataError(f"{run}:{_line_of(run, qid)}: query {qid!r} is not in {queries} (--queries-file)")
    needed = {c.docid for cands in ranked.values() for c in cands}
    texts = read_passages(passages, needed)
    for qid, cands in ranked.items():
        for c in cands:
            if c.docid not in texts:
                raise DataError(f"{run}:{_line_of(run, qid, c.docid)}: docid {c.docid!r} (query {qid}) has no passage "
                                f"text in {passages} (--passages)")  # fmt: skip
            c.text = texts[c.docid]
    # The queries the run ranks, in the queries file's order; queries without candidates are left
    # out (the file may hold more queries than the run answers).
    rankings = [Ranking(q, ranked[q.qid]) for q in query_list if q.qid in ranked]
    judgments = read_qrels(qrels) if qrels is not None else {}
    files = [run, passages, queries] + ([Path(qrels)] if qrels is not None else [])
    fields = {"data": run.stem, "data_path": str(run), "data_files": [str(f) for f in files],
              "data_fingerprint": fingerprint_files(files)}  # fmt: skip
    return Benchmark(run.stem, None, rankings, judgments), fields


def _line_of(path: Path, qid: str, docid: str | None = None) -> int:
    """The first line of a TREC run naming ``qid`` (and ``docid``): only for error messages."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if len(parts) == 6 and parts[0] == qid and (docid is None or parts[2] == docid):
                return number
    return 0
