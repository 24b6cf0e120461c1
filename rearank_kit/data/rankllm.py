"""Share runs with RankLLM (castorini/rank_llm): its request and result files, both ways.

RankLLM describes a query and its candidates as one JSON object (``src/rank_llm/data.py``:
``Request`` and ``Result``; JSONL one per line, or a JSON array):

    {"query": {"text": "...", "qid": "19335"},
     "candidates": [{"docid": "7187158", "score": 18.2, "doc": {"contents": "..."}}, ...]}

A request lists the first-stage candidates in their order; a result has the same shape with the
candidates in reranked order (RankLLM writes ``score`` decreasing down the list, and may add
``invocations_history``, which is ignored here). The passage text is read from ``doc`` the way
RankLLM reads it: the first of ``text``, ``segment``, ``contents``, ``content``, ``body``,
``passage``, with a ``title`` put in front of it. The kit writes ``{"text": ...}``.

    rearank-kit convert --to rankllm --data dl19 --top-k 100 --out dl19.requests.jsonl
    rearank-kit convert --to rankllm --data runs/dl19-smol --out dl19-smol.results.jsonl   # a rerank run
    rearank-kit convert --from rankllm rankllm-results.jsonl --out runs/from-rankllm --qrels qrels.txt

``--from rankllm`` writes a benchmark folder whose ``candidates.trec`` is the file's order: rerank
it (``rearank-kit rerank --data``) or evaluate it (``rearank-kit eval --data``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import (
    MANIFEST,
    check_published_out,
    check_writable,
    publish_folder,
    read_jsonl,
    staged_folder,
    write_jsonl,
)
from rearank_kit.core.records import (
    BENCHMARK_FILES,
    Benchmark,
    Candidate,
    Query,
    Ranking,
    read_qrels,
    read_rankings_jsonl,
)
from rearank_kit.data.benchmarks import save_benchmark

TEXT_FIELDS = ("text", "segment", "contents", "content", "body", "passage")  # RankLLM's order of preference
SCORES = ("first_stage", "rank")


# --- kit -> RankLLM -----------------------------------------------------------------------------


def to_rankllm(ranking: Ranking, scores: str = "first_stage") -> dict[str, Any]:
    """One ranking as a RankLLM record. ``scores``: ``first_stage`` keeps each candidate's score
    (a request: RankLLM prompts may show BM25 scores); ``rank`` writes n, n-1, ..., 1 (a result:
    RankLLM's TREC writer and trec_eval order by score, so a reranked list needs decreasing ones)."""
    if scores not in SCORES:
        raise KitError(f"scores must be one of {', '.join(SCORES)}, got {scores!r}")
    n = len(ranking.candidates)
    return {
        "query": {"text": ranking.query.text, "qid": ranking.query.qid},
        "candidates": [
            {"docid": c.docid, "score": c.score if scores == "first_stage" else float(n - i), "doc": {"text": c.text}}
            for i, c in enumerate(ranking.candidates)
        ],
    }


def write_rankllm(rankings: Iterable[Ranking], path: str | os.PathLike, scores: str = "first_stage") -> Path:
    """Write RankLLM JSONL (whole or not at all)."""
    return write_jsonl(path, (to_rankllm(r, scores) for r in rankings))


def read_rerank_run(folder: str | os.PathLike) -> list[Ranking]:
    """The reranked rankings of a finished ``rearank-kit rerank`` folder, in the run's query order."""
    from rearank_kit.core.manifest import read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder) or {}
    if manifest.get("kind") != "rerank":
        raise KitError(f"{folder}: not a rerank run folder (its manifest.json has no kind 'rerank')")
    if manifest.get("status") != "done":
        raise KitError(f"{folder / 'manifest.json'}: status is {manifest.get('status')!r}, not 'done': the run has "
                       "not finished; run the same rerank command again to finish it")  # fmt: skip
    by_qid = {r.query.qid: r for r in read_rankings_jsonl(folder / "rankings.jsonl")}
    order = manifest.get("queries") or list(by_qid)
    missing = [q for q in order if q not in by_qid]
    if missing:
        raise KitError(f"{folder / 'rankings.jsonl'}: queries {', '.join(missing[:5])} of the manifest are missing")
    return [by_qid[q] for q in order]


def is_rerank_run(folder: str | os.PathLike) -> bool:
    return Path(folder).is_dir() and (Path(folder) / "rankings.jsonl").is_file() and (Path(folder) / "manifest.json").is_file()


# --- RankLLM -> kit -----------------------------------------------------------------------------


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record) for a JSONL file (``path:line``) or a JSON array (``path: record N``)."""
    if path.suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a JSON file ({exc})") from None
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON array of RankLLM records, got {type(records).__name__}")
        for i, record in enumerate(records, start=1):
            yield f"{path}: record {i}", record
        return
    jsonl = read_jsonl(path, skip_torn_tail=False)
    for number, record in jsonl.numbered():
        yield f"{path}:{number}", record


def doc_text(doc: Any, where: str) -> str:
    """A candidate's passage text from RankLLM's ``doc`` (see the module docstring)."""
    if not isinstance(doc, dict):
        raise DataError(f"{where}: field 'doc' must be an object, got {type(doc).__name__}")
    field = next((f for f in TEXT_FIELDS if isinstance(doc.get(f), str)), None)
    if field is None:
        raise DataError(f"{where}: field 'doc' has no text (none of {', '.join(TEXT_FIELDS)})")
    title = doc.get("title")
    return f"{title} {doc[field]}" if isinstance(title, str) and title.strip() else doc[field]


def from_rankllm(record: Any, where: str) -> Ranking:
    """A RankLLM record as a Ranking (ranks 1..n in the record's order); ``where`` names it in errors."""
    if not isinstance(record, dict) or not isinstance(record.get("query"), dict):
        raise DataError(f"{where}: expected a RankLLM record {{'query': {{...}}, 'candidates': [...]}}")
    query = record["query"]
    if not isinstance(query.get("qid"), str | int) or not isinstance(query.get("text"), str):
        raise DataError(f"{where}: field 'query' needs 'qid' (string or integer) and 'text' (string)")
    raw = record.get("candidates")
    if not isinstance(raw, list):
        raise DataError(f"{where}: field 'candidates' is missing or not a list")
    if not raw:  # nothing to rank: a request made with top-k 0, or a query its retriever found nothing for
        raise DataError(f"{where}: query {query['qid']!r} has no candidates (an empty 'candidates' list); a "
                        "RankLLM request lists the passages to rank: leave such a query out of the file")  # fmt: skip
    candidates, seen = [], set()
    for i, cand in enumerate(raw, start=1):
        if not isinstance(cand, dict) or not isinstance(cand.get("docid"), str | int):
            raise DataError(f"{where}: candidate {i} needs a 'docid' (string or integer)")
        docid = str(cand["docid"])
        if docid in seen:
            raise DataError(f"{where}: candidate {i}: docid {docid!r} appears twice for query {query['qid']}")
        seen.add(docid)
        score = cand.get("score", 0.0)
        if score is None:
            score = 0.0
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise DataError(f"{where}: candidate {i}: score {score!r} is not a finite number")
        candidates.append(Candidate(docid, doc_text(cand.get("doc"), f"{where}: candidate {i}"), i, float(score)))
    return Ranking(Query(str(query["qid"]), query["text"]), candidates)


def read_rankllm(path: str | os.PathLike) -> list[Ranking]:
    """The rankings of a RankLLM request or result file (``.jsonl``, or a ``.json`` array)."""
    path = Path(path)
    rankings, seen = [], set()
    for where, record in _records(path):
        ranking = from_rankllm(record, where)
        if ranking.query.qid in seen:
            raise DataError(f"{where}: query {ranking.query.qid!r} appears twice")
        seen.add(ranking.query.qid)
        rankings.append(ranking)
    if not rankings:
        raise DataError(f"{path}: no records")
    return rankings


def rankllm_to_benchmark(path: str | os.PathLike, out: str | os.PathLike, qrels: str | os.PathLike | None = None,
                         overwrite: bool = False) -> Benchmark:  # fmt: skip
    """Write a RankLLM file as a benchmark folder (its order as ``candidates.trec``), whole or not at all."""
    from rearank_kit.core.manifest import fingerprint_files, write_manifest

    out = Path(out)
    check_out_folder(out, overwrite)
    rankings = read_rankllm(path)
    judgments = read_qrels(qrels) if qrels is not None else {}
    bench = Benchmark(out.name, out, rankings, judgments)
    with staged_folder(out) as tmp:
        save_benchmark(bench, tmp, tag="rankllm")
        inputs = [Path(path)] + ([Path(qrels)] if qrels is not None else [])
        write_manifest(tmp, "convert", source="rankllm", input=str(path), qrels=str(qrels) if qrels else None,
                       input_fingerprint=fingerprint_files(inputs), num_queries=len(rankings),
                       num_candidates=sum(len(r.candidates) for r in rankings))  # fmt: skip
        publish_folder(tmp, out, kind="convert", names=OUTPUT_FILES, label="--out ")
    return bench


OUTPUT_FILES = (*BENCHMARK_FILES, MANIFEST)  # what --from rankllm writes into its folder


def check_out_folder(out: Path, overwrite: bool) -> None:
    """Before anything is read: ``out`` new or empty, or with ``overwrite`` an earlier output of
    ``convert --from rankllm`` (``files.check_published_out``), and writable."""
    check_published_out(out, "convert", OUTPUT_FILES, overwrite)


def check_out_file(out: Path, overwrite: bool) -> None:
    """Before anything is read: the JSONL file ``convert --to rankllm`` writes must be new, or with
    ``overwrite`` a RankLLM file (one a user wrote by hand, or anything else, is never replaced)."""
    if out.is_dir():
        raise KitError(f"--out {out}: is a folder; --to rankllm writes one JSONL file")
    if out.exists():
        if not overwrite:
            raise KitError(f"--out {out}: exists; choose another --out or pass --overwrite to replace it")
        try:
            read_rankllm(out)
        except KitError as exc:
            reason = str(exc).split(";")[0]
            raise KitError(f"--out {out}: exists and is not a RankLLM file the kit could have written ({reason}); it "
                           "is left as it is: choose another --out") from None
    check_writable(out.parent, label="--out ")
