"""Evaluation: nDCG written out for teaching, ir-measures for everything else.

``ndcg_at_k`` is the metric REARANK optimises and reports, in the semantics of trec_eval:
linear gain (the grade itself), log2 discount, and an ideal ranking built from *all* judged
documents of the query, not only the retrieved ones. ``evaluate`` computes any ir-measures
measure per query and returns a table; ``experiment`` compares several runs in one call, like
pyterrier's ``pt.Experiment``, with a paired t-test against a baseline.

Which queries a mean is over (``missing_queries``): ``"zero"`` (the default) averages over every
judged query, a judged query the run lacks (or leaves empty) scoring 0: trec_eval's ``-c``, what
pyserini's and RankLLM's reported numbers use. ``"skip"`` averages over the judged queries the
run ranks: trec_eval without ``-c``, and what the authors' pytrec_eval code computes (their runs
hold every judged query, so for them the two agree). The result records the choice and the
missing queries, and ``rearank-kit eval`` prints both.

    rearank-kit eval --data dl19                    # BM25 nDCG@10 = 0.5058
    rearank-kit eval --data dl19 --run runs/x/run.trec --measures nDCG@10,RR@10,R@100
    rearank-kit eval --data dl19 --run runs/x/run.trec --missing-queries skip
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rearank_kit.core.records import Qrels, Run

DEFAULT_MEASURES = ("nDCG@10",)
MISSING_QUERIES = {  # how a judged query absent from the run counts, and what the choice is called
    "zero": "judged queries missing from the run count as 0 (trec_eval -c, as pyserini and RankLLM report)",
    "skip": "judged queries missing from the run are left out of the mean (trec_eval without -c)",
}
DEFAULT_MISSING_QUERIES = "zero"


# --- nDCG for teaching --------------------------------------------------------------------------


def dcg(gains: Sequence[float], k: int = 10) -> float:
    """Discounted cumulative gain of the first ``k`` gains: sum of g_i / log2(i + 1), i from 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]) if g > 0)


def ideal_dcg(judged_grades: Sequence[float], k: int = 10) -> float:
    """The best DCG@k any ranking can reach: all judged grades, highest first."""
    return dcg(sorted(judged_grades, reverse=True), k)


def ndcg_at_k(ranked_docids: Sequence[str], judgments: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of one ranking; unjudged documents count as grade 0; 0.0 when nothing is relevant."""
    ideal = ideal_dcg(list(judgments.values()), k)
    if ideal == 0:
        return 0.0
    return dcg([max(judgments.get(d, 0), 0) for d in ranked_docids], k) / ideal


def ranked(run_for_query: Mapping[str, float]) -> list[str]:
    """Documents by score, high first; ties broken by docid descending, as trec_eval does."""
    return [d for d, _ in sorted(run_for_query.items(), key=lambda x: (x[1], x[0]), reverse=True)]


def mean_ndcg(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean nDCG@k over the queries that have both a ranking and judgments (trec_eval's default)."""
    scores = [ndcg_at_k(ranked(run[q]), qrels[q], k) for q in run if q in qrels]
    return sum(scores) / len(scores) if scores else 0.0


# --- ir-measures tables -------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Per-query scores (``per_query``: DataFrame, qid x measure) and their means."""

    per_query: object  # pandas.DataFrame, typed loosely so that importing this module stays light
    missing_queries: str = DEFAULT_MISSING_QUERIES  # the policy the means follow (MISSING_QUERIES)
    missing: tuple[str, ...] = ()  # judged queries the run lacks: 0 in per_query under "zero", absent under "skip"

    @property
    def policy(self) -> str:
        """One line saying which queries the means are over, for printing beside them."""
        return MISSING_QUERIES[self.missing_queries]

    @property
    def mean(self) -> dict[str, float]:
        return {m: float(self.per_query[m].mean()) for m in self.per_query.columns}

    @property
    def num_queries(self) -> int:
        return len(self.per_query)

    def to_json(self) -> dict:
        return {
            "measures": self.mean,
            "num_queries": self.num_queries,
            "missing_queries": self.missing_queries,
            "missing": list(self.missing),
            "per_query": {m: {q: float(v) for q, v in self.per_query[m].items()} for m in self.per_query.columns},
        }


def _parse_measures(measures):
    import ir_measures

    from rearank_kit.core.errors import KitError

    given = measures
    if isinstance(measures, str):
        measures = [m for m in measures.split(",") if m.strip()]
    if not measures:
        raise KitError(f"no measure in {given!r}: give one or more, comma-separated (--measures nDCG@10,RR@10); "
                       "examples: nDCG@10, RR@10, R@100, P@5, AP")  # fmt: skip
    parsed = []
    for m in measures:
        try:
            parsed.append(ir_measures.parse_measure(m.strip()) if isinstance(m, str) else m)
        except Exception as exc:
            raise KitError(f"unknown measure {m!r} ({exc}); examples: nDCG@10, RR@10, R@100, P@5, AP") from None
    return parsed


def evaluate(
    run: Run,
    qrels: Qrels,
    measures: Sequence[str] | str = DEFAULT_MEASURES,
    missing_queries: str = DEFAULT_MISSING_QUERIES,
) -> Evaluation:
    """Score ``run`` against ``qrels`` per query with ir-measures.

    ``missing_queries``: ``"zero"`` scores every judged query, those the run lacks or leaves
    empty as 0 (trec_eval ``-c``); ``"skip"`` scores only the judged queries the run ranks.
    Queries without judgments are never scored. Binary measures (RR, R, P, AP) count grade >= 1
    as relevant unless the measure says otherwise (e.g. ``RR(rel=2)@10``, the TREC DL convention
    for graded judgments).
    """
    import ir_measures
    import pandas as pd

    from rearank_kit.core.errors import KitError

    if missing_queries not in MISSING_QUERIES:
        raise KitError(f"missing_queries must be one of {', '.join(MISSING_QUERIES)}, got {missing_queries!r}")
    parsed = _parse_measures(measures)
    judged_run = {q: docs for q, docs in run.items() if q in qrels and docs}
    missing = tuple(sorted(q for q in qrels if q not in judged_run))
    scored = list(qrels) if missing_queries == "zero" else list(judged_run)
    rows: dict[str, dict[str, float]] = {q: {} for q in scored}
    for metric in ir_measures.iter_calc(parsed, {q: qrels[q] for q in scored}, judged_run):
        rows[metric.query_id][str(metric.measure)] = float(metric.value)
    # A query without a ranking has no value from ir-measures for some measures: it scores 0.
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[str(m) for m in parsed]).fillna(0.0)
    table.index.name = "qid"
    return Evaluation(table.sort_index(), missing_queries, missing)


def paired_ttest(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[float, float]:
    """Two-sided paired t-test over the queries both runs scored: (t statistic, p-value)."""
    from scipy import stats

    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return float("nan"), float("nan")
    diffs = [a[q] - b[q] for q in common]
    # No variance: identical (or uniformly shifted) systems. Compared with a tolerance, because
    # 0.6 - 0.5 and 0.8 - 0.7 differ in the last bit and scipy would report t ~ 1e15.
    if all(math.isclose(d, diffs[0], rel_tol=1e-9, abs_tol=1e-12) for d in diffs):
        if math.isclose(diffs[0], 0.0, abs_tol=1e-12):
            return 0.0, 1.0
        return math.copysign(math.inf, diffs[0]), 0.0
    t, p = stats.ttest_rel([a[q] for q in common], [b[q] for q in common])
    return float(t), float(p)


def experiment(
    runs: Mapping[str, Run],
    qrels: Qrels,
    measures: Sequence[str] | str = DEFAULT_MEASURES,
    baseline: str | None = None,
    missing_queries: str = DEFAULT_MISSING_QUERIES,
):
    """One row per system, one column per measure (means), plus ``<measure> p`` columns with the
    paired t-test p-value against ``baseline`` (the first system by default). ``missing_queries``
    as in ``evaluate``.

    Returns ``(table, per_query)`` where ``per_query[name]`` is that system's Evaluation.
    """
    import pandas as pd

    per_query = {name: evaluate(run, qrels, measures, missing_queries) for name, run in runs.items()}
    names = list(runs)
    baseline = baseline or names[0]
    rows = []
    for name in names:
        row = {"system": name, **per_query[name].mean}
        for m in per_query[name].per_query.columns:
            if name != baseline:
                _, p = paired_ttest(per_query[name].per_query[m].to_dict(), per_query[baseline].per_query[m].to_dict())
                row[f"{m} p"] = p
        rows.append(row)
    return pd.DataFrame(rows).set_index("system"), per_query
