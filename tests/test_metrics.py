"""nDCG by hand, agreement with ir-measures on real data, the reproduction numbers, t-tests."""

from __future__ import annotations

import math
import random

import pytest

from rearank_kit.core import metrics
from rearank_kit.core.metrics import dcg, ideal_dcg, ndcg_at_k
from rearank_kit.data import benchmarks

# --- the teaching nDCG, worked by hand ----------------------------------------------------------

JUDGED = {"d1": 3, "d2": 0, "d3": 2, "d4": 1}
IDEAL = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # d1, d3, d4: 4.7619

NDCG_CASES = [
    # ranking, k, expected nDCG
    (["d1", "d3", "d4"], 10, 1.0),  # the ideal order
    (["d1", "d2", "d3"], 10, (3 / 1 + 0 + 2 / math.log2(4)) / IDEAL),  # 4 / 4.7619 = 0.8400
    (["d4", "d3", "d1"], 10, (1 + 2 / math.log2(3) + 3 / math.log2(4)) / IDEAL),
    (["x", "y", "d1"], 10, (3 / math.log2(4)) / IDEAL),  # unjudged documents gain nothing
    (["d2"], 10, 0.0),
    ([], 10, 0.0),
    (["d3", "d1"], 1, 2 / 3),  # cut-off 1: ideal DCG@1 is the best grade, 3
    (["d3"], 10, 2 / IDEAL),  # the ideal counts judged documents that were not retrieved
]


@pytest.mark.parametrize(("ranking", "k", "expected"), NDCG_CASES)
def test_ndcg_hand_worked(ranking, k, expected):
    assert ndcg_at_k(ranking, JUDGED, k) == pytest.approx(expected, abs=1e-12)


def test_worked_example_in_numbers():
    assert dcg([3, 0, 2]) == pytest.approx(4.0)
    assert ideal_dcg([0, 2, 3, 1]) == pytest.approx(4.761859507142915)
    assert ndcg_at_k(["d1", "d2", "d3"], JUDGED) == pytest.approx(0.840008, abs=1e-6)


def test_nothing_relevant_scores_zero():
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": 0}) == 0.0
    assert ndcg_at_k(["a"], {}) == 0.0


def test_ranked_breaks_ties_by_docid_descending():
    assert metrics.ranked({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]


def test_mean_ndcg_skips_unjudged_queries():
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"x": 1.0}}
    assert metrics.mean_ndcg(run, {"q1": {"d1": 1}}) == 1.0


# --- ir-measures and the published BM25 numbers -------------------------------------------------

REPRODUCE = [("dl19", 43, 0.5058), ("dl20", 54, 0.4796), ("dl21", 53, 0.4458)]


def _bm25(name):
    bench = benchmarks.load_benchmark(name, top_k=None)
    return bench.first_stage_run(), bench.qrels


@pytest.mark.parametrize(("name", "num_queries", "expected"), REPRODUCE)
def test_reproduces_published_bm25(shared_data, name, num_queries, expected):
    run, qrels = _bm25(shared_data / name)
    result = metrics.evaluate(run, qrels, "nDCG@10")
    assert result.num_queries == num_queries
    assert round(result.mean["nDCG@10"], 4) == expected
    assert round(metrics.mean_ndcg(run, qrels), 4) == expected


@pytest.mark.parametrize("name", ["dl19", "dl20", "dl21"])
def test_teaching_ndcg_agrees_with_ir_measures_per_query(shared_data, name):
    run, qrels = _bm25(shared_data / name)
    table = metrics.evaluate(run, qrels, ["nDCG@10", "nDCG@5"]).per_query
    for qid, row in table.iterrows():
        order = metrics.ranked(run[qid])
        assert ndcg_at_k(order, qrels[qid], 10) == pytest.approx(row["nDCG@10"], abs=1e-9), qid
        assert ndcg_at_k(order, qrels[qid], 5) == pytest.approx(row["nDCG@5"], abs=1e-9), qid


def test_evaluate_several_measures_and_json(sample_dir):
    run, qrels = _bm25(sample_dir)
    result = metrics.evaluate(run, qrels, "nDCG@10,RR@10,R@20")
    assert list(result.mean) == ["nDCG@10", "RR@10", "R@20"]
    out = result.to_json()
    assert out["num_queries"] == 10 and set(out["per_query"]["nDCG@10"]) == set(qrels)


def test_unknown_measure_is_a_kit_error():
    from rearank_kit.core.errors import KitError

    with pytest.raises(KitError, match="unknown measure 'nDGC@10'"):
        metrics.evaluate({"q": {"d": 1.0}}, {"q": {"d": 1}}, "nDGC@10")


# --- significance and experiment tables ---------------------------------------------------------


def test_paired_ttest_matches_scipy():
    from scipy import stats

    rng = random.Random(7)
    a = {f"q{i}": rng.random() for i in range(30)}
    b = {q: v - 0.05 + rng.gauss(0, 0.1) for q, v in a.items()}
    t, p = metrics.paired_ttest(a, b)
    ref = stats.ttest_rel([a[q] for q in sorted(a)], [b[q] for q in sorted(a)])
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)


PAIRED_EDGE_CASES = [
    ({"q1": 0.5, "q2": 0.7}, {"q1": 0.5, "q2": 0.7}, (0.0, 1.0)),  # identical systems
    ({"q1": 0.6, "q2": 0.8}, {"q1": 0.5, "q2": 0.7}, (math.inf, 0.0)),  # a constant gain
]


@pytest.mark.parametrize(("a", "b", "expected"), PAIRED_EDGE_CASES)
def test_paired_ttest_without_variance(a, b, expected):
    assert metrics.paired_ttest(a, b) == pytest.approx(expected)


def test_paired_ttest_too_few_queries_is_nan():
    assert all(math.isnan(x) for x in metrics.paired_ttest({"q": 1.0}, {"q": 0.0}))


def test_experiment_table(sample_dir):
    run, qrels = _bm25(sample_dir)
    reversed_run = {q: {d: -s for d, s in docs.items()} for q, docs in run.items()}
    table, per_query = metrics.experiment({"bm25": run, "reversed": reversed_run}, qrels, "nDCG@10,RR@10")
    assert list(table.index) == ["bm25", "reversed"]
    assert {"nDCG@10", "RR@10", "nDCG@10 p", "RR@10 p"} <= set(table.columns)
    assert math.isnan(table.loc["bm25", "nDCG@10 p"])  # no test of the baseline against itself
    assert table.loc["bm25", "nDCG@10"] == pytest.approx(metrics.mean_ndcg(run, qrels))
    assert table.loc["reversed", "nDCG@10"] < table.loc["bm25", "nDCG@10"]
    assert 0.0 <= table.loc["reversed", "nDCG@10 p"] < 0.05
    assert set(per_query) == {"bm25", "reversed"}


# --- judged queries a run lacks: trec_eval -c ("zero", the default) or not ("skip") ---------------


def test_evaluate_a_run_that_covers_only_some_judged_queries():
    qrels = {"q1": {"a": 2, "b": 0}, "q2": {"c": 1}, "q3": {"d": 3}}
    run = {"q1": {"a": 2.0, "b": 1.0}, "q2": {}}  # e.g. `rerank --queries 1`; q2 ranked nothing
    zero = metrics.evaluate(run, qrels, ["nDCG@10", "RR@10", "R@100"])
    assert zero.missing_queries == "zero" and zero.missing == ("q2", "q3")
    assert list(zero.per_query.index) == ["q1", "q2", "q3"]
    assert zero.mean == {"nDCG@10": 1 / 3, "RR@10": 1 / 3, "R@100": 1 / 3}  # q1 perfect, q2 and q3 score 0
    assert "trec_eval -c" in zero.policy
    skip = metrics.evaluate(run, qrels, ["nDCG@10"], missing_queries="skip")
    assert list(skip.per_query.index) == ["q1"] and skip.missing == ("q2", "q3")
    assert skip.mean["nDCG@10"] == 1.0 and "without -c" in skip.policy
    assert skip.to_json()["missing_queries"] == "skip" and skip.to_json()["missing"] == ["q2", "q3"]


def test_a_missing_judged_query_costs_exactly_its_share(shared_data):
    """Drop one judged query from the real dl19 BM25 run: under -c the mean is the other 42
    queries' sum over 43, i.e. the skip mean minus exactly 1/43 of it."""
    run, qrels = _bm25(shared_data / "dl19")
    dropped = sorted(run)[0]
    partial = {q: docs for q, docs in run.items() if q != dropped}
    zero = metrics.evaluate(partial, qrels, "nDCG@10")
    skip = metrics.evaluate(partial, qrels, "nDCG@10", missing_queries="skip")
    n = len(qrels)
    assert zero.num_queries == n and skip.num_queries == n - 1 and zero.missing == (dropped,)
    assert zero.per_query.loc[dropped, "nDCG@10"] == 0.0
    assert zero.mean["nDCG@10"] == pytest.approx(skip.mean["nDCG@10"] * (n - 1) / n, abs=1e-12)
    full = metrics.evaluate(run, qrels, "nDCG@10")
    share = full.per_query.loc[dropped, "nDCG@10"] / n  # what the dropped query contributed to the full mean
    assert share > 0 and full.mean["nDCG@10"] - zero.mean["nDCG@10"] == pytest.approx(share, abs=1e-12)


def test_experiment_passes_the_policy_on():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    runs = {"x": {"q1": {"a": 1.0}}, "y": {"q1": {"a": 1.0}, "q2": {"b": 1.0}}}
    table, _ = metrics.experiment(runs, qrels, "nDCG@10")
    assert table.loc["x", "nDCG@10"] == 0.5 and table.loc["y", "nDCG@10"] == 1.0
    table, _ = metrics.experiment(runs, qrels, "nDCG@10", missing_queries="skip")
    assert table.loc["x", "nDCG@10"] == 1.0


def test_unknown_missing_policy_is_a_kit_error():
    from rearank_kit.core.errors import KitError

    with pytest.raises(KitError, match="missing_queries must be one of zero, skip"):
        metrics.evaluate({"q": {"d": 1.0}}, {"q": {"d": 1}}, "nDCG@10", missing_queries="drop")


def test_eval_command_states_and_applies_the_policy(run_cli, sample_dir, tmp_path):
    import json

    lines = (sample_dir / "candidates.trec").read_text().splitlines()
    partial = tmp_path / "run.trec"
    partial.write_text("\n".join(x for x in lines if not x.startswith("s01 ")) + "\n")
    table = run_cli("eval", "--data", "sample", "--run", partial)
    assert table.returncode == 0, table.stderr
    assert "count as 0 (trec_eval -c" in table.stdout and "missing: s01" in table.stdout
    out = {}
    for policy in ("zero", "skip"):
        proc = run_cli("eval", "--data", "sample", "--run", partial, "--json", "--missing-queries", policy)
        assert proc.returncode == 0, proc.stderr
        out[policy] = json.loads(proc.stdout)
        assert out[policy]["missing_queries"] == policy and out[policy]["missing"] == ["s01"]
    assert (out["zero"]["num_queries"], out["skip"]["num_queries"]) == (10, 9)
    assert out["zero"]["measures"]["nDCG@10"] == pytest.approx(out["skip"]["measures"]["nDCG@10"] * 9 / 10, abs=1e-12)
