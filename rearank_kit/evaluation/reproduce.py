"""Reproduce the paper's Table 1 or Table 2: rerank every benchmark of the table, evaluate, compare.

    rearank-kit reproduce --table 1 --model le723z/Rearank-7B --backend vllm --out runs/table1
    rearank-kit reproduce --table 2 --model le723z/Rearank-7B --backend vllm --out runs/table2

    from rearank_kit.evaluation.reproduce import reproduce, format_report
    result = reproduce(1, "le723z/Rearank-7B", "runs/table1", backend_name="vllm")
    print(format_report(result)); result.comparison          # a DataFrame, one row per benchmark

Table 1 (arXiv:2505.20046) is TREC DL19 and DL20 and the paper's seven BEIR sets (Covid,
NFCorpus, DBPedia, SciFact, Signal, News, Robust04; not Touché); Table 2 the twelve BRIGHT tasks.
Each benchmark is its BM25 top 100, reranked with windows of 20 moved by 10 under greedy decoding
(the paper's setting) by ``run.rerank_benchmark`` into ``<out>/<dataset>/`` (resumable:
the same command again continues), then evaluated with nDCG@10. The kit's first stage and
reranked numbers are printed beside the paper's BM25 row and the paper's row for ``system``
(REARANK-7B by default; e.g. RankQwen2.5-7B for the base model), with the difference in points.

Where each benchmark comes from (``TableEntry.sources``, first found wins): a local benchmark
folder of that name (``$REARANK_KIT_DATA``, ``data/``), then the kit's cache of a remote id, then
a download (``remote.resolve_any``: ir_datasets + pyserini for DL, pyserini for BEIR as the
authors load it, the authors' BM25 run files or the hub for BRIGHT). Everything is located before
a model loads; offline, what is missing is listed with what to download and where to put it, and
nothing runs (``skip_missing`` runs the rest).

How this departs from the authors' ``run_evaluation.py``: the evaluation policy is explicit
(``missing_queries``: judged queries missing from a run count as 0 by default, trec_eval ``-c``;
the authors' pytrec_eval averages over the queries a run holds, which for their runs, holding
every judged query, is the same); BRIGHT without their run files gets a local bm25s first stage,
which can differ from theirs (``data/bright.py``); the sliding windows are ``rank/windows.py``'s (its
docstring says how they differ from the authors' loop).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rearank_kit.core.env import unreachable
from rearank_kit.core.errors import KitError
from rearank_kit.core.metrics import DEFAULT_MISSING_QUERIES, MISSING_QUERIES, evaluate
from rearank_kit.core.records import rankings_to_run
from rearank_kit.data.benchmarks import load_benchmark, resolve_benchmark
from rearank_kit.data.remote import (
    PAPER_BEIR,
    cache_folder,
    hosts_for,
    is_remote_id,
    resolve_any,
    source_hint,
)

MEASURE = "nDCG@10"  # the paper's one measure
DEFAULT_SYSTEM = "REARANK-7B"  # the paper row compared with; matched without regard to case
COMPARISON_FILE, REPORT_FILE = "comparison.csv", "reproduce.json"


@dataclass(frozen=True)
class TableEntry:
    dataset: str  # the paper's name for the benchmark (paper.dataset_name maps aliases)
    sources: tuple[str, ...]  # local names or folders, then a remote id: the first one found is used


def _bright(task: str) -> TableEntry:
    return TableEntry(task, (f"bright-{task}", f"bright/{task}"))


TABLES: dict[str, tuple[TableEntry, ...]] = {
    "Table 1": (
        TableEntry("dl19", ("dl19", "msmarco-passage/trec-dl-2019/judged")),
        TableEntry("dl20", ("dl20", "msmarco-passage/trec-dl-2020/judged")),
        *(TableEntry(name, (name, f"beir-{name}", f"beir/{name}")) for name in PAPER_BEIR),
    ),
    "Table 2": tuple(_bright(task) for task in (  # the paper's column order
        "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
        "pony", "leetcode", "aops", "theoremqa_theorems", "theoremqa_questions")),
}  # fmt: skip
# The paper's average columns: BEIR (Avg) over the seven BEIR sets, BRIGHT's Avg. over the twelve tasks.
AVERAGES = {"Table 1": ("BEIR", PAPER_BEIR), "Table 2": ("BRIGHT", tuple(e.dataset for e in TABLES["Table 2"]))}


def table_name(table: int | str) -> str:
    """``1``, ``"2"``, ``"Table 1"`` -> the key of ``TABLES``."""
    key = str(table).strip().lower().replace("table", "").strip()
    name = f"Table {key}"
    if name not in TABLES:
        raise KitError(f"unknown table {table!r}: reproduce knows {', '.join(TABLES)} (use 1 or 2)")
    return name


# --- where each benchmark comes from ------------------------------------------------------------


@dataclass
class Located:
    entry: TableEntry
    folder: Path | None  # a complete benchmark folder on this machine
    remote: str | None = None  # else the remote id to download
    problem: str | None = None  # why it cannot be had here, and how to get it: then it is missing
    offline: str | None = None  # the failed network probe behind ``problem``, if any


def locate(entry: TableEntry, top_k: int, probe: Callable[[tuple[str, ...]], str | None]) -> Located:
    """Find ``entry`` locally (a folder, a name, the cache of its remote id) or say how to get it."""
    remote = None
    for source in entry.sources:
        try:
            return Located(entry, resolve_benchmark(source))
        except KitError:
            pass
        if is_remote_id(source):
            try:
                return Located(entry, resolve_benchmark(cache_folder(source, top_k)))
            except KitError:
                remote = remote or source
    if remote is None:
        return Located(entry, None, None, f"no benchmark folder named {' or '.join(entry.sources)} in "
                                          f"REARANK_KIT_DATA or data/")  # fmt: skip
    for hosts in hosts_for(remote):
        offline = probe(hosts)
        if offline:
            return Located(entry, None, remote, source_hint(remote, top_k, local_name=entry.sources[0]), offline)
    return Located(entry, None, remote)


def locate_all(entries: tuple[TableEntry, ...], top_k: int) -> list[Located]:
    """Every entry located; each group of hosts is probed once (offline, each probe fails fast)."""
    probed: dict[tuple[str, ...], str | None] = {}

    def probe(hosts: tuple[str, ...]) -> str | None:
        if hosts not in probed:
            probed[hosts] = unreachable(hosts)
        return probed[hosts]

    return [locate(e, top_k, probe) for e in entries]


def missing_message(table: str, located: list[Located]) -> str:
    missing = [x for x in located if x.problem]
    here = [x.entry.dataset for x in located if not x.problem]
    lines = [f"{table}: {len(missing)} of {len(located)} benchmarks are not on this machine:"]
    lines += [f"  {x.entry.dataset}: {x.problem}" for x in missing]
    offline = sorted({x.offline for x in missing if x.offline})
    if offline:
        lines.append(f"and they cannot be downloaded here (no network?): tried {'; '.join(offline)}")
    lines.append(f"available: {', '.join(here) or 'none'}. Put the missing ones in place (above), or run the "
                 f"available ones only (--skip-missing).")  # fmt: skip
    return "\n".join(lines)


# --- the reproduction ---------------------------------------------------------------------------


@dataclass
class Reproduction:
    table: str
    model: str
    system: str  # the paper row the reranked numbers are compared with
    out: Path
    comparison: Any  # pandas.DataFrame: one row per benchmark run, plus the mean
    missing: dict[str, str] = field(default_factory=dict)  # dataset -> why it was not run
    missing_queries: str = DEFAULT_MISSING_QUERIES
    queries: int | None = None  # only the first N queries of each benchmark (not comparable then)
    tolerance: float = 1.0  # points within which a reranked number counts as reproduced


def reproduce(
    table: int | str,
    model: Any,
    out: str | os.PathLike,
    *,
    config=None,
    backend_name: str = "hf",
    backend_kwargs: dict[str, Any] | None = None,
    queries: int | None = None,
    system: str = DEFAULT_SYSTEM,
    missing_queries: str = DEFAULT_MISSING_QUERIES,
    skip_missing: bool = False,
    tolerance: float = 1.0,
    progress: bool = True,
) -> Reproduction:
    """Rerank and evaluate every benchmark of ``table`` with ``model`` (a name, or a loaded backend,
    left open); write ``<out>/<dataset>/`` run folders, ``comparison.csv``, ``reproduce.json`` and
    a manifest. ``config``: a RerankConfig (default: the paper's top 100, window 20, step 10,
    greedy, the model's own template). KitError, before any model loads, when a benchmark is
    missing (unless ``skip_missing``), the template does not suit the model, or the paper has no
    ``system`` row."""
    from rearank_kit.core.files import atomic_write_text, write_json
    from rearank_kit.core.manifest import write_manifest
    from rearank_kit.evaluation.paper import compare_with_paper
    from rearank_kit.rank.run import rerank_benchmark
    from rearank_kit.rank.settings import RerankConfig

    name = table_name(table)
    if missing_queries not in MISSING_QUERIES:
        raise KitError(f"missing_queries must be one of {', '.join(MISSING_QUERIES)}, got {missing_queries!r}")
    compare_with_paper({}, system=system, table=name)  # a KitError now, not after hours, when the paper lacks it
    loaded = not isinstance(model, str | os.PathLike)
    model_id = str(getattr(model, "model_id", model))
    # The template (checked against the model), window and stride every benchmark runs with.
    config, _ = (config or RerankConfig()).for_model(model_id)

    located = locate_all(TABLES[name], config.top_k)
    if all(x.problem for x in located) or (any(x.problem for x in located) and not skip_missing):
        raise KitError(missing_message(name, located))
    ready = [x for x in located if not x.problem]
    for x in ready:
        if x.folder is None:
            x.folder = resolve_any(x.remote, config.top_k)

    out = Path(out)
    scores: dict[str, dict[str, float]] = {}
    if loaded:
        from contextlib import nullcontext

        context: Any = nullcontext(model)
    else:
        from rearank_kit.rank.backends import load_backend

        context = load_backend(backend_name, model=model_id, **(backend_kwargs or {}))
    with context as backend:
        for x in ready:
            bench = load_benchmark(x.folder, top_k=config.top_k).head(queries)
            run = rerank_benchmark(bench, backend, config, out / x.entry.dataset, progress=progress)
            # Judgments of the queries run: all of them, or the first N in a smoke run.
            wanted = {r.query.qid for r in bench.rankings}
            qrels = bench.qrels if queries is None else {q: j for q, j in bench.qrels.items() if q in wanted}
            first = evaluate(bench.first_stage_run(), qrels, MEASURE, missing_queries)
            reranked = evaluate(rankings_to_run(run.rankings), qrels, MEASURE, missing_queries)
            scores[x.entry.dataset] = {"queries": reranked.num_queries, "first": first.mean[MEASURE],
                                       "reranked": reranked.mean[MEASURE]}  # fmt: skip

    comparison = compare(name, scores, system, tolerance)
    result = Reproduction(name, model_id, system, out, comparison, {x.entry.dataset: x.problem for x in located
                          if x.problem}, missing_queries, queries, tolerance)  # fmt: skip
    atomic_write_text(out / COMPARISON_FILE, comparison.to_csv(index=False))
    report = {"table": name, "model": model_id, "system": system, "measure": MEASURE,
              "missing_queries": missing_queries, "policy": MISSING_QUERIES[missing_queries], "queries": queries,
              "not_run": result.missing}  # fmt: skip
    report["rows"] = json.loads(comparison.to_json(orient="records"))  # NaN and NA as null
    write_json(out / REPORT_FILE, report)
    write_manifest(out, "reproduce", **{k: v for k, v in report.items() if k != "rows"},
                   config=config.to_dict(), runs=[x.entry.dataset for x in ready])  # fmt: skip
    return result


def compare(table: str, scores: dict[str, dict[str, float]], system: str, tolerance: float = 1.0):
    """One row per dataset: the kit's first stage and reranked nDCG@10 beside the paper's BM25 and
    ``system`` rows (points; diff = kit - paper), and the paper's average column (BEIR, BRIGHT) over
    the sets that ran, beside the mean of the same paper cells (all of them: the paper's Avg.)."""
    import pandas as pd

    from rearank_kit.evaluation.paper import compare_with_paper

    firsts = {d: s["first"] for d, s in scores.items()}
    bm25 = compare_with_paper(firsts, system="BM25", table=table, tolerance=tolerance, scale="fraction")
    ours = compare_with_paper({d: s["reranked"] for d, s in scores.items()}, system=system, table=table,
                              tolerance=tolerance, scale="fraction")  # fmt: skip
    rows = pd.DataFrame({
        "dataset": list(scores), "queries": [int(s["queries"]) for s in scores.values()],
        "bm25": bm25["ours"].to_numpy(), "bm25_paper": bm25["paper"].to_numpy(), "bm25_diff": bm25["diff"].to_numpy(),
        "reranked": ours["ours"].to_numpy(), "paper": ours["paper"].to_numpy(), "diff": ours["diff"].to_numpy(),
        "within": ours["within"].to_numpy(),
    })  # fmt: skip
    label, group = AVERAGES.get(table, ("", ()))
    ran = rows[rows["dataset"].isin(group)]
    if len(ran) > 1:  # the paper's average column: the mean of the same cells, over the sets that ran
        mean = {c: ran[c].mean(skipna=False) for c in ("bm25", "bm25_paper", "reranked", "paper")}
        mean.update(dataset=f"{label} mean ({len(ran)}/{len(group)})", queries=int(ran["queries"].sum()),
                    bm25_diff=mean["bm25"] - mean["bm25_paper"], diff=mean["reranked"] - mean["paper"])
        mean["within"] = pd.NA if math.isnan(mean["diff"]) else bool(abs(mean["diff"]) <= tolerance)
        rows = pd.concat([rows, pd.DataFrame([mean])], ignore_index=True)
    rows["within"] = rows["within"].astype("boolean")
    return rows


def format_report(result: Reproduction) -> str:
    """The comparison as text: the kit's numbers beside the paper's, and what was not run."""
    import pandas as pd

    lines = [f"{result.table} of arXiv:2505.20046, {MEASURE} in points: model {result.model} vs the paper's "
             f"{result.system}; {MISSING_QUERIES[result.missing_queries]}."]  # fmt: skip
    if result.queries is not None:
        lines.append(f"Only the first {result.queries} queries of each benchmark: not comparable with the paper.")
    head = (f"{'dataset':<20} {'queries':>7}  {'BM25 kit':>8} {'paper':>6} {'diff':>6}  {'rerank kit':>10} "
            f"{'paper':>6} {'diff':>6}  within {result.tolerance:g}")  # fmt: skip
    lines += [head, "-" * len(head)]

    def num(v: float, sign: bool = False) -> str:
        return "n/a" if pd.isna(v) else f"{v:+.2f}" if sign else f"{v:.2f}"

    for r in result.comparison.to_dict(orient="records"):
        lines.append(f"{r['dataset']:<20} {r['queries']:>7}  {num(r['bm25']):>8} {num(r['bm25_paper']):>6} "
                     f"{num(r['bm25_diff'], True):>6}  {num(r['reranked']):>10} {num(r['paper']):>6} "
                     f"{num(r['diff'], True):>6}  {'' if pd.isna(r['within']) else 'yes' if r['within'] else 'no'}")  # fmt: skip
    for dataset, why in result.missing.items():
        lines.append(f"not run: {dataset}: {why}")
    lines.append(f"wrote {result.out}/{COMPARISON_FILE}, {REPORT_FILE} and one rerank run folder per benchmark")
    return "\n".join(lines)
