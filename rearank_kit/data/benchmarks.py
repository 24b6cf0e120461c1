"""Benchmarks by name or path: the folders of four files (``core/records.py``) the kit can find.

A name is looked up in the folders listed in ``$REARANK_KIT_DATA`` (``os.pathsep``-separated), then
in the checkout's ``data/``; a path is used as it is. Remote benchmarks (ir_datasets, BEIR, BRIGHT)
are built into such folders by ``data/remote.py``.

    from rearank_kit.data.benchmarks import load_benchmark, available_benchmarks
    bench = load_benchmark("dl19", top_k=100)
"""

from __future__ import annotations

import os
from pathlib import Path

from rearank_kit.core.env import SOURCE_ROOT
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import atomic_write_text
from rearank_kit.core.records import (
    BENCHMARK_FILES,
    Benchmark,
    Ranking,
    read_passages,
    read_qrels,
    read_queries,
    read_run,
    write_passages,
    write_qrels,
    write_queries,
)

# --- benchmarks by name or path -----------------------------------------------------------------


def data_dirs() -> list[Path]:
    """Where benchmark names are looked up: ``$REARANK_KIT_DATA`` entries, then the kit's ``data/``."""
    dirs = [Path(p) for p in os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep) if p.strip()]
    dirs.append(SOURCE_ROOT / "data")
    return dirs


def available_benchmarks() -> dict[str, Path]:
    """name -> folder, for every folder holding the four benchmark files (first found wins)."""
    found: dict[str, Path] = {}
    for root in data_dirs():
        if root.is_dir():
            for sub in sorted(root.iterdir()):
                if sub.is_dir() and sub.name not in found and all((sub / f).is_file() for f in BENCHMARK_FILES):
                    found[sub.name] = sub
    return found


def resolve_benchmark(name_or_path: str | os.PathLike) -> Path:
    """A benchmark folder from a path or a name; unknown names list what is available."""
    path = Path(name_or_path)
    if path.is_dir():
        missing = [f for f in BENCHMARK_FILES if not (path / f).is_file()]
        if missing:
            raise KitError(f"{path}: not a benchmark folder, missing {', '.join(missing)}")
        return path
    available = available_benchmarks()
    if str(name_or_path) in available:
        return available[str(name_or_path)]
    names = ", ".join(sorted(available)) or "none"
    where = ", ".join(str(d) for d in data_dirs())
    raise KitError(
        f"unknown benchmark {str(name_or_path)!r}: not a folder, and no such name in {where}. "
        f"Available: {names}. Set REARANK_KIT_DATA to folders holding benchmarks (os.pathsep-separated)."
    )


def load_benchmark(name_or_path: str | os.PathLike, top_k: int | None = 100) -> Benchmark:
    """Read a benchmark folder: each query with its first-stage top ``top_k`` and their texts.

    Queries without candidates are kept with an empty list (they score 0, as in trec_eval with
    ``-c``); a candidate whose passage text is missing is an error naming the docid.
    """
    folder = resolve_benchmark(name_or_path)
    queries = read_queries(folder / "queries.tsv")
    qrels = read_qrels(folder / "qrels.txt")
    run = read_run(folder / "candidates.trec")
    known = {q.qid for q in queries}
    unknown = sorted(set(run) - known)
    if unknown:
        raise DataError(f"{folder / 'candidates.trec'}: query ids not in queries.tsv: {', '.join(unknown[:5])}")
    if top_k is not None:
        run = {qid: cands[:top_k] for qid, cands in run.items()}
    needed = {c.docid for cands in run.values() for c in cands}
    texts = read_passages(folder / "passages.jsonl", needed)
    rankings = []
    for q in queries:
        cands = run.get(q.qid, [])
        for c in cands:
            if c.docid not in texts:
                raise DataError(
                    f"{folder / 'passages.jsonl'}: no text for docid {c.docid!r} (candidate of query {q.qid})"
                )
            c.text = texts[c.docid]
        rankings.append(Ranking(q, cands))
    return Benchmark(folder.name, folder, rankings, qrels)


def save_benchmark(bench: Benchmark, folder: str | os.PathLike, tag: str = "bm25") -> Path:
    """Write a benchmark in the four-file layout (e.g. after retrieval over a user's documents)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    passages = {c.docid: c.text for r in bench.rankings for c in r.candidates}
    write_queries(bench.queries, folder / "queries.tsv")
    write_qrels(bench.qrels, folder / "qrels.txt")
    write_passages(passages, folder / "passages.jsonl")
    lines = [
        f"{r.query.qid} Q0 {c.docid} {i + 1} {c.score:.4f} {tag}" for r in bench.rankings for i, c in enumerate(r.candidates)
    ]
    atomic_write_text(folder / "candidates.trec", "\n".join(lines) + "\n")
    return folder
