"""REARANK's training-set augmentation: many random passage sets per annotated query.

REARANK trains on only 179 annotated queries. To get enough GRPO prompts out of them, the paper
draws, for every query, many random *sets* of passages from its BM25 top-100 and keeps each set
as one training prompt. Graded judgments (0-3) let the reward score any ordering of a set.

The algorithm, per query with judgments:

1. take its first-stage (BM25) top-``pool`` candidates (100);
2. draw ``samples_per_query`` sets (50) of ``window`` passages (20) without replacement;
3. the set's initial order is the BM25 order of the drawn passages (``order="random"``: shuffled);
4. score the set: ``init_ndcg`` = nDCG@10 of that initial order and ``best_ndcg`` = nDCG@10 of
   the set sorted by grade (the best any reranking of *this* set can do); both normalised by
   the ideal DCG@10 of *all* the query's judged grades (trec_eval semantics, ``metrics.py``);
5. drop sets with no relevant passage (grade > 0), then sets whose nDCG@10 is below
   ``min_ndcg`` (0.1). The paper states this filter twice, once on the *initial* and once on the
   *best possible* nDCG: ``filter="initial"`` (default) or ``"best"``; the summary records which.

Where this departs from the paper, and why:

- Queries are split by query into ``train``, ``validation`` and ``test`` (``validation_fraction``,
  ``test_fraction``, or the fixed folds of ``data/folds.py`` with ``folds`` and ``fold``), so that
  held-out sets measure generalisation to unseen queries rather than to unseen subsets of seen
  queries. The paper trains on all its seed queries; the held-out
  splits are the kit's, for teaching: choose settings on ``validation``, report ``test`` once.
- ``min_room`` (default 0, off) drops sets whose best nDCG@10 is barely above the initial one.
  The normalised reward divides by that room, so such a set turns a small slip into a reward of
  -5 or -17 and dominates its group's advantages. The paper has no such filter.
- A query with fewer candidates than ``window`` is skipped and counted: every draw would return
  the same subset, so its "many sets" would be copies of one prompt.
- Repeated draws of an identical set are dropped and counted (only likely for small pools).
- Each query has its own random stream derived from (seed, qid): adding or removing a query, or
  changing the filter, never changes the sets drawn for the others.

Output (``write_augmented``): ``DIR/dataset/`` (a ``datasets.DatasetDict``, splits ``train`` and
``test``), ``DIR/sets.jsonl`` (the same rows), ``DIR/summary.json`` and ``DIR/manifest.json``,
built in a temporary folder and renamed into place, so an interrupted run leaves nothing behind.

    rearank-kit augment --data dl21 --samples-per-query 50 --window 20 --seed 0 --out runs/aug
"""

from __future__ import annotations

import os
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rearank_kit.core.errors import KitError
from rearank_kit.core.metrics import ndcg_at_k
from rearank_kit.core.records import BENCHMARK_FILES, Benchmark, Ranking
from rearank_kit.data.benchmarks import load_benchmark

FILTERS = ("initial", "best")
ORDERS = ("bm25", "random")
SPLITS = ("train", "validation", "test")
SPLIT_STREAM = 0x5E7  # a fixed second seed word: the split's random stream differs from every query's
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
HIST_BINS = 10


# --- configuration ------------------------------------------------------------------------------


@dataclass
class AugmentConfig:
    samples_per_query: int = 50
    window: int = 20  # passages per set (the reranker's window); 5 for the CPU preset
    seed: int = 0
    filter: str = "initial"  # which nDCG the min_ndcg threshold applies to: "initial" or "best"
    min_ndcg: float = 0.1
    order: str = "bm25"  # initial order of a set: "bm25" (the paper) or "random"
    template: str = "rearank"
    test_fraction: float = 0.1
    # Held out for choosing settings; 0 keeps the two-way split (train/test) of older folders.
    validation_fraction: float = 0.0
    # Keep sets with best_ndcg - init_ndcg >= min_room; 0 keeps every set, as the paper does.
    min_room: float = 0.0
    pool: int = 100  # draw from the first-stage top-`pool`
    # A folds file (data/folds.py) and the fold to hold out: the queries of fold `fold` are the test
    # split, those of the next fold the validation split, the fractions above are then unused.
    folds: str | None = None
    fold: int | None = None

    def validate(self) -> None:
        """Raise KitError naming the bad option (before anything is read or written)."""
        if self.samples_per_query < 1:
            raise KitError(f"--samples-per-query must be at least 1, got {self.samples_per_query}")
        if self.window < 2:
            raise KitError(f"--window must be at least 2 (a set of one passage has nothing to rank), got {self.window}")
        if self.pool < self.window:
            raise KitError(f"--top-k ({self.pool}) must be at least --window ({self.window})")
        if self.seed < 0:
            raise KitError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.filter not in FILTERS:
            raise KitError(f"--filter must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if self.order not in ORDERS:
            raise KitError(f"--order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if not 0.0 <= self.min_ndcg <= 1.0:
            raise KitError(f"--min-ndcg must lie in [0, 1], got {self.min_ndcg}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise KitError(f"--test-fraction must lie in [0, 1), got {self.test_fraction}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise KitError(f"--validation-fraction must lie in [0, 1), got {self.validation_fraction}")
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise KitError(f"--test-fraction + --validation-fraction must leave queries to train on, got "
                           f"{self.test_fraction} + {self.validation_fraction}")
        if not 0.0 <= self.min_room <= 1.0:
            raise KitError(f"--min-room must lie in [0, 1], got {self.min_room}")
        if (self.folds is None) != (self.fold is None):
            raise KitError("--folds and --fold go together: the folds file and the fold to hold out")
        if self.fold is not None and self.fold < 0:
            raise KitError(f"--fold must be a fold number (0 or more), got {self.fold}")


# --- one set ------------------------------------------------------------------------------------


def set_scores(docids: list[str], judgments: dict[str, int], k: int = 10) -> tuple[float, float]:
    """(initial, best) nDCG@k of a set: as given, and sorted by grade (the best reordering)."""
    best_order = sorted(docids, key=lambda d: judgments.get(d, 0), reverse=True)
    return ndcg_at_k(docids, judgments, k), ndcg_at_k(best_order, judgments, k)


def query_rng(seed: int, qid: str):
    """The random stream of one query: numpy's generator seeded with (seed, crc32(qid))."""
    import numpy as np

    # crc32, not hash(): Python's str hash changes between processes (PYTHONHASHSEED).
    return np.random.default_rng([seed, zlib.crc32(qid.encode("utf-8"))])


def draw_positions(rng, num_candidates: int, window: int, order: str) -> list[int]:
    """Positions (0-based, into the first-stage list) of one random set, in its initial order."""
    drawn = rng.choice(num_candidates, size=window, replace=False)  # random order already
    return sorted(int(i) for i in drawn) if order == "bm25" else [int(i) for i in drawn]


# --- the held-out split -------------------------------------------------------------------------


def _held_out_count(fraction: float, n: int) -> int:
    """round(fraction * n), at least 1 whenever the fraction is positive (and n >= 2)."""
    if fraction <= 0 or n < 2:
        return 0
    return max(int(round(fraction * n)), 1)


def split_queries(qids: list[str], test_fraction: float, seed: int, validation_fraction: float = 0.0) -> dict[str, str]:
    """Each query's split (``train``, ``validation`` or ``test``): a seeded shuffle of the sorted
    ids, the first round(test_fraction * n) of it for test, the next round(validation_fraction * n)
    for validation. The test queries do not depend on ``validation_fraction``; a held-out split
    asked for gets at least one query while training keeps at least one.
    """
    import numpy as np

    qids = sorted(qids)
    n = len(qids)
    n_test = _held_out_count(test_fraction, n)
    n_val = _held_out_count(validation_fraction, n)
    # Training keeps at least one query: with too few queries, validation gives way first.
    n_val = max(min(n_val, n - 1 - n_test), 0)
    n_test = min(n_test, n - 1 - n_val) if n else 0
    shuffled = np.random.default_rng([seed, SPLIT_STREAM]).permutation(n)
    splits = {q: "train" for q in qids}
    for rank, i in enumerate(shuffled[: n_test + n_val]):
        splits[qids[i]] = "test" if rank < n_test else "validation"
    return splits


# --- the whole benchmark ------------------------------------------------------------------------


@dataclass
class AugmentResult:
    rows: list[dict]
    summary: dict
    template_hash: str = ""
    test_qids: set[str] = field(default_factory=set)
    validation_qids: set[str] = field(default_factory=set)


def _sample_query(ranking: Ranking, judgments: dict[str, int], config: AugmentConfig, split: str,
                  template, dropped: Counter) -> list[dict]:
    cands = ranking.candidates[: config.pool]
    ideal_grades = sorted(judgments.values(), reverse=True)
    rng = query_rng(config.seed, ranking.query.qid)
    rows, seen = [], set()
    for draw in range(config.samples_per_query):
        positions = draw_positions(rng, len(cands), config.window, config.order)
        if tuple(positions) in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(tuple(positions))
        docids = [cands[i].docid for i in positions]
        grades = [max(judgments.get(d, 0), 0) for d in docids]
        init, best = set_scores(docids, judgments)
        # Filters in a fixed order; each dropped set is counted under the first that drops it.
        if not any(g > 0 for g in grades):
            dropped["no_relevant"] += 1
            continue
        if (init if config.filter == "initial" else best) < config.min_ndcg:
            dropped["below_min_ndcg"] += 1
            continue
        if config.min_room > 0 and best - init < config.min_room:
            dropped["below_min_room"] += 1
            continue
        texts = [cands[i].text for i in positions]
        rows.append({
            "qid": ranking.query.qid, "query": ranking.query.text, "set_id": f"{ranking.query.qid}-{draw:03d}",
            "docids": docids, "texts": texts, "grades": grades, "ideal_grades": ideal_grades,
            "init_ndcg": init, "best_ndcg": best, "split": split, "template": template.name,
            "template_hash": template.hash, "prompt": template.messages(ranking.query.text, texts),
        })  # fmt: skip
    return rows


def augment(bench: Benchmark, config: AugmentConfig | None = None, progress: bool = False) -> AugmentResult:
    """Draw, score and filter the sets of every query of ``bench``; nothing is written."""
    from tqdm.auto import tqdm

    from rearank_kit.core.prompts import load_template

    config = config or AugmentConfig()
    config.validate()
    template = load_template(config.template)
    no_judgments = [r.query.qid for r in bench.rankings if not bench.qrels.get(r.query.qid)]
    too_few = [r.query.qid for r in bench.rankings
               if bench.qrels.get(r.query.qid) and len(r.candidates[: config.pool]) < config.window]
    skipped = set(no_judgments) | set(too_few)
    usable = [r for r in bench.rankings if r.query.qid not in skipped]
    if not usable:
        longest = max((len(r.candidates) for r in bench.rankings), default=0)
        raise KitError(
            f"{bench.name}: no query can be augmented: {len(no_judgments)} without judgments, {len(too_few)} with "
            f"fewer candidates than --window {config.window} (the most any query has is {longest})"
        )
    # The split depends only on the usable query ids and the seed (or the folds), not on the filter options.
    if config.folds is not None:
        from rearank_kit.data.folds import load_folds

        folds = load_folds(config.folds)
        folds.check_covers([r.query.qid for r in usable], bench.name)
        by_fold = folds.split(folds.check_fold(config.fold))
        splits = {r.query.qid: by_fold[r.query.qid] for r in usable}
    else:
        splits = split_queries([r.query.qid for r in usable], config.test_fraction, config.seed,
                               config.validation_fraction)
    test_qids = {q for q, s in splits.items() if s == "test"}
    rows: list[dict] = []
    dropped: Counter = Counter({"duplicate": 0, "no_relevant": 0, "below_min_ndcg": 0, "below_min_room": 0})
    for ranking in tqdm(usable, desc=f"augment {bench.name}", unit="query", disable=not progress):
        split = splits[ranking.query.qid]
        rows.extend(_sample_query(ranking, bench.qrels[ranking.query.qid], config, split, template, dropped))
    if not rows:
        raise KitError(f"{bench.name}: every set was dropped by the filters ({dict(dropped)}); "
                       f"try --filter best or a lower --min-ndcg")
    summary = build_summary(bench, config, rows, dropped, usable, no_judgments, too_few, splits, template)
    validation_qids = {q for q, s in splits.items() if s == "validation"}
    return AugmentResult(rows, summary, template.hash, test_qids, validation_qids)


# --- the summary --------------------------------------------------------------------------------


def distribution(values: list[float]) -> dict:
    """Mean, quantiles and a 10-bin histogram over [0, 1] of nDCG values."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    counts, edges = np.histogram(v, bins=HIST_BINS, range=(0.0, 1.0))
    return {
        "mean": float(v.mean()) if v.size else None,
        "quantiles": {f"{q:g}": float(np.quantile(v, q)) for q in QUANTILES} if v.size else {},
        "histogram": {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]},
    }


def build_summary(bench, config, rows, dropped, usable, no_judgments, too_few, splits, template) -> dict:
    per_query = Counter(r["qid"] for r in rows)
    by_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    drawn = len(usable) * config.samples_per_query
    return {
        "data": bench.name,
        "data_path": str(bench.path) if bench.path else None,
        "config": asdict(config),
        "filter": config.filter,
        "min_ndcg": config.min_ndcg,
        "seed": config.seed,
        "template": template.name,
        "template_hash": template.hash,
        "template_prefill": template.prefill,  # the trainer starts each reply with it (rewards: prefill=)
        "queries": len(bench.rankings),
        "queries_used": len(usable),
        "queries_skipped": {"no_judgments": len(no_judgments), "too_few_candidates": len(too_few)},
        "skipped_qids": {"no_judgments": no_judgments, "too_few_candidates": too_few},
        "queries_without_kept_sets": sorted(r.query.qid for r in usable if r.query.qid not in per_query),
        "sets_drawn": drawn,
        "sets_kept": len(rows),
        "sets_dropped": dict(dropped),
        # Sets already in their best order: they teach only "do not make it worse" (r_rank is 0).
        "sets_already_best": sum(1 for r in rows if r["best_ndcg"] - r["init_ndcg"] <= 1e-12),
        "sets_per_query": dict(sorted(per_query.items())),
        "splits": {s: {"queries": len({r["qid"] for r in rs}), "sets": len(rs)} for s, rs in by_split.items()
                   if rs or s != "validation"},
        "test_qids": sorted(q for q, s in splits.items() if s == "test"),
        "validation_qids": sorted(q for q, s in splits.items() if s == "validation"),
        "init_ndcg": distribution([r["init_ndcg"] for r in rows]),
        "best_ndcg": distribution([r["best_ndcg"] for r in rows]),
    }


# --- writing and reading ------------------------------------------------------------------------


def features():
    """The column types of the saved dataset (explicit, so that every split has the same schema)."""
    from datasets import Features, List, Value

    strings, ints = List(Value("string")), List(Value("int64"))
    return Features({
        "qid": Value("string"), "query": Value("string"), "set_id": Value("string"), "docids": strings,
        "texts": strings, "grades": ints, "ideal_grades": ints, "init_ndcg": Value("float64"),
        "best_ndcg": Value("float64"), "split": Value("string"), "template": Value("string"),
        "template_hash": Value("string"), "prompt": List({"role": Value("string"), "content": Value("string")}),
    })  # fmt: skip


# What write_augmented puts in its folder: all that --overwrite may replace there.
OUTPUT_FILES = ("dataset", "sets.jsonl", "summary.json", "manifest.json")


def check_out(out: Path, overwrite: bool) -> None:
    """``out`` must be new or empty, or with ``overwrite`` an earlier augment output holding only
    ``OUTPUT_FILES`` (anything else is refused, nothing touched), and writable: all checked before
    the work (``files.check_published_out``)."""
    from rearank_kit.core.files import check_published_out

    check_published_out(out, "augment", OUTPUT_FILES, overwrite)


def _dataset_dict(rows: list[dict]):
    from datasets import Dataset, DatasetDict

    # An empty split cannot be read back by load_from_disk, so a split without sets is left out.
    splits = {s: [r for r in rows if r["split"] == s] for s in SPLITS}
    return DatasetDict({s: Dataset.from_list(rs, features=features()) for s, rs in splits.items() if rs})


def write_augmented(result: AugmentResult, out: str | os.PathLike, overwrite: bool = False,
                    bench: Benchmark | None = None, config: AugmentConfig | None = None) -> Path:
    """Write the four outputs into a temporary folder beside ``out``, then rename it into place."""
    import datasets

    from rearank_kit.core.files import staged_folder, write_json, write_jsonl
    from rearank_kit.core.manifest import fingerprint_files, write_manifest

    out = Path(out)
    check_out(out, overwrite)
    bars_were_on = not datasets.are_progress_bars_disabled()
    try:
        datasets.disable_progress_bars()
        with staged_folder(out) as tmp:
            _dataset_dict(result.rows).save_to_disk(str(tmp / "dataset"))
            write_jsonl(tmp / "sets.jsonl", result.rows)
            write_json(tmp / "summary.json", result.summary)
            fingerprint = None
            if bench is not None and bench.path is not None:
                fingerprint = fingerprint_files(bench.path / f for f in BENCHMARK_FILES)
            write_manifest(tmp, "augment", data=result.summary["data"], data_path=result.summary["data_path"],
                           data_fingerprint=fingerprint, template=result.summary["template"],
                           template_hash=result.template_hash, prefill=result.summary["template_prefill"],
                           seed=result.summary["seed"],
                           config=asdict(config) if config else result.summary["config"],
                           sets=len(result.rows), filter=result.summary["filter"])
            _publish(tmp, out, overwrite)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return out


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``out`` (an old ``out`` is moved aside first, removed last)."""
    from rearank_kit.core.files import publish_folder

    check_out(out, overwrite)  # again: something may have appeared while we worked
    publish_folder(tmp, out, kind="augment", names=OUTPUT_FILES, label="--out ")


def run_augment(data: str | os.PathLike, out: str | os.PathLike, config: AugmentConfig | None = None,
                overwrite: bool = False, progress: bool = False) -> AugmentResult:
    """Load ``data``, augment it and write ``out``: what ``rearank-kit augment`` does."""
    config = config or AugmentConfig()
    config.validate()
    check_out(Path(out), overwrite)  # fail before the work, not after it
    bench = load_benchmark(data, top_k=config.pool)
    result = augment(bench, config, progress=progress)
    write_augmented(result, out, overwrite=overwrite, bench=bench, config=config)
    return result


def rotated(row: dict, k: int) -> dict:
    """Set ``row`` with its passages rotated left by ``k`` (passage k+1 shown first); ``set_id`` gets
    ``-r<k>``. ``TrainConfig.rotate_sets`` trains on every rotation of each set."""
    return {**row, "set_id": f"{row['set_id']}-r{k}",
            **{key: row[key][k:] + row[key][:k] for key in ("docids", "texts", "grades")}}


def load_sets(folder: str | os.PathLike):
    """The augmented sets of ``folder`` as a ``datasets.DatasetDict`` (splits ``train``, ``test``).

    Reads ``folder/dataset``; a folder holding only ``sets.jsonl`` works too.
    """
    import datasets
    from datasets import Dataset, DatasetDict

    folder = Path(folder)
    if (folder / "dataset").is_dir():
        return datasets.load_from_disk(str(folder / "dataset"))
    if (folder / "sets.jsonl").is_file():
        from rearank_kit.core.files import iter_jsonl

        rows = list(iter_jsonl(folder / "sets.jsonl", skip_torn_tail=False))
        return DatasetDict({s: Dataset.from_list([r for r in rows if r.get("split") == s], features=features())
                            for s in SPLITS if any(r.get("split") == s for r in rows)})
    raise KitError(f"{folder}: no augmented sets here (expected dataset/ or sets.jsonl); run `rearank-kit augment`")


def read_summary(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise KitError(f"{path}: missing; is {folder} an augment output folder?")
    from rearank_kit.core.files import read_json

    return read_json(path)
