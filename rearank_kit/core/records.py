"""The kit's data model: a query, its candidate passages, and a ranking of them.

A benchmark is a folder of four files (the layout of ``../shared/data`` and ``data/sample``):

    queries.tsv      qid<TAB>query text
    qrels.txt        TREC qrels: qid 0 docid grade
    candidates.trec  TREC run: qid Q0 docid rank score tag (the first-stage ranking)
    passages.jsonl   {"docid": ..., "text": ...} per line

Every reader names the file and line of a malformed record; every writer writes to a
temporary file and renames it, so that a failure never leaves half a file behind.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rearank_kit.core.errors import DataError
from rearank_kit.core.files import atomic_write_text, write_jsonl

Qrels = dict[str, dict[str, int]]  # qid -> docid -> graded relevance
Run = dict[str, dict[str, float]]  # qid -> docid -> score (higher is better)

BENCHMARK_FILES = ("queries.tsv", "qrels.txt", "candidates.trec", "passages.jsonl")


# --- the data model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    qid: str
    text: str


@dataclass
class Candidate:
    """One passage to rank. ``rank`` (1-based) and ``score`` come from the first stage."""

    docid: str
    text: str = ""
    rank: int = 0
    score: float = 0.0


@dataclass
class Ranking:
    """A query and its candidates, best first."""

    query: Query
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def docids(self) -> list[str]:
        return [c.docid for c in self.candidates]

    def reordered(self, order: Iterable[int]) -> Ranking:
        """A new ranking with candidates taken in ``order`` (0-based indices, a permutation)."""
        order = list(order)
        if sorted(order) != list(range(len(self.candidates))):
            raise ValueError(f"not a permutation of range({len(self.candidates)}): {order}")
        return Ranking(self.query, [self.candidates[i] for i in order])

    def to_dict(self) -> dict:
        return {"query": asdict(self.query), "candidates": [asdict(c) for c in self.candidates]}

    @classmethod
    def from_dict(cls, d: Mapping) -> Ranking:
        return cls(Query(**d["query"]), [Candidate(**c) for c in d.get("candidates", [])])


@dataclass
class Benchmark:
    """A loaded benchmark: queries, judgments and the first-stage rankings with passage text."""

    name: str
    path: Path | None
    rankings: list[Ranking]
    qrels: Qrels

    @property
    def queries(self) -> list[Query]:
        return [r.query for r in self.rankings]

    def first_stage_run(self) -> Run:
        return rankings_to_run(self.rankings)

    def head(self, n: int | None) -> Benchmark:
        """The first ``n`` queries (all when ``n`` is None): the kit's smoke and demo knob."""
        rankings = self.rankings if n is None else self.rankings[:n]
        return Benchmark(self.name, self.path, rankings, self.qrels)


# --- readers ------------------------------------------------------------------------------------


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file with their 1-based line numbers; a line that is not
    UTF-8 (a Latin-1 byte, a binary file) is a DataError naming it."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                f"{exc.start + 1}); save the file as UTF-8") from None
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield number, line


def read_queries(path: str | os.PathLike) -> list[Query]:
    path = Path(path)
    queries, seen = [], set()
    for number, line in _lines(path):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(f"{path}:{number}: expected 'qid<TAB>query text', got {line[:80]!r}")
        qid = parts[0].strip()
        if qid in seen:
            raise DataError(f"{path}:{number}: query id {qid!r} appears twice")
        seen.add(qid)
        queries.append(Query(qid, parts[1].strip()))
    return queries


def read_qrels(path: str | os.PathLike) -> Qrels:
    path = Path(path)
    qrels: Qrels = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataError(f"{path}:{number}: expected 'qid 0 docid grade' (4 fields), got {line[:80]!r}")
        qid, _, docid, grade = parts
        try:
            value = int(grade)
        except ValueError:
            raise DataError(f"{path}:{number}: relevance grade {grade!r} is not an integer") from None
        if (qid, docid) in first_line:  # which grade counts would be a silent choice
            raise DataError(f"{path}:{number}: query {qid} judges docid {docid!r} again (first on line "
                            f"{first_line[qid, docid]}); keep one judgment per (query, docid)")
        first_line[qid, docid] = number
        qrels.setdefault(qid, {})[docid] = value
    return qrels


def read_run(path: str | os.PathLike) -> dict[str, list[Candidate]]:
    """A TREC run as qid -> candidates in rank order (by the rank column, as the file states it)."""
    path = Path(path)
    run: dict[str, list[Candidate]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 6:
            raise DataError(f"{path}:{number}: expected 'qid Q0 docid rank score tag' (6 fields), got {line[:80]!r}")
        qid, _, docid, rank, score, _tag = parts
        try:
            cand = Candidate(docid, rank=int(rank), score=float(score))
        except ValueError:
            raise DataError(f"{path}:{number}: rank {rank!r} must be an integer and score {score!r} a number") from None
        if not math.isfinite(cand.score):
            raise DataError(f"{path}:{number}: score {score!r} is not finite")
        if (qid, docid) in first_line:
            raise DataError(f"{path}:{number}: query {qid} lists docid {docid!r} twice (first on line "
                            f"{first_line[qid, docid]}); a run ranks each docid once per query")
        first_line[qid, docid] = number
        run.setdefault(qid, []).append(cand)
    for cands in run.values():
        cands.sort(key=lambda c: (c.rank, -c.score))
    return run


def read_passages(path: str | os.PathLike, docids: set[str] | None = None) -> dict[str, str]:
    """docid -> text; with ``docids`` only those are kept (the file is still checked line by line)."""
    path = Path(path)
    passages: dict[str, str] = {}
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("docid"), (str, int)):
            raise DataError(f"{path}:{number}: expected an object with a 'docid' field")
        if not isinstance(record.get("text"), str):
            raise DataError(f"{path}:{number}: field 'text' is missing or not a string")
        docid = str(record["docid"])
        if docids is None or docid in docids:
            passages[docid] = record["text"]
    return passages


def read_rankings_jsonl(path: str | os.PathLike) -> list[Ranking]:
    path = Path(path)
    rankings = []
    for number, line in _lines(path):
        try:
            rankings.append(Ranking.from_dict(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{number}: not a ranking record ({exc})") from None
    return rankings


# --- writers ------------------------------------------------------------------------------------


def rankings_to_run(rankings: Iterable[Ranking]) -> Run:
    """Scores that reproduce each ranking's order (n, n-1, ..., 1), whatever the first-stage scores."""
    run: Run = {}
    for r in rankings:
        n = len(r.candidates)
        run[r.query.qid] = {c.docid: float(n - i) for i, c in enumerate(r.candidates)}
    return run


def format_run(rankings: Iterable[Ranking], tag: str = "rearank-kit") -> str:
    lines = []
    for r in rankings:
        n = len(r.candidates)
        for i, c in enumerate(r.candidates):
            lines.append(f"{r.query.qid} Q0 {c.docid} {i + 1} {n - i} {tag}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_run(rankings: Iterable[Ranking], path: str | os.PathLike, tag: str = "rearank-kit") -> Path:
    """Write a TREC run (rank i gets score n-i+1 so that any evaluator keeps the order)."""
    return atomic_write_text(path, format_run(rankings, tag))


def write_rankings_jsonl(rankings: Iterable[Ranking], path: str | os.PathLike) -> Path:
    return write_jsonl(path, (r.to_dict() for r in rankings))


def write_queries(queries: Iterable[Query], path: str | os.PathLike) -> Path:
    return atomic_write_text(path, "".join(f"{q.qid}\t{q.text}\n" for q in queries))


def write_qrels(qrels: Qrels, path: str | os.PathLike) -> Path:
    text = "".join(f"{qid} 0 {docid} {g}\n" for qid, docs in qrels.items() for docid, g in docs.items())
    return atomic_write_text(path, text)


def write_passages(passages: Mapping[str, str], path: str | os.PathLike) -> Path:
    return write_jsonl(path, ({"docid": d, "text": t} for d, t in passages.items()))
