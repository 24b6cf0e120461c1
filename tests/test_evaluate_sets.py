"""Held-out set evaluation without a model: scoring one reply, the summary, paired comparisons."""

from __future__ import annotations

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.evaluation.heldout import compare_runs, ids_only, score_set, summarize

# grades of passages [1]..[5] in the set's initial order; the query has more judged passages.
ROW = {"set_id": "q1-000", "qid": "q1", "docids": ["a", "b", "c", "d", "e"], "grades": [0, 3, 0, 1, 0],
       "ideal_grades": [3, 3, 2, 1, 1, 0]}


@pytest.mark.parametrize("completion, order, copied, complete, sign", [
    ("<answer>[2] > [4] > [1] > [3] > [5]</answer>", [1, 3, 0, 2, 4], False, True, 1),  # the best order: reward 1
    ("<answer>[1] > [2] > [3] > [4] > [5]</answer>", [0, 1, 2, 3, 4], True, True, 0),  # a copy: reward 0
    ("<answer>[2] the second one is about it", [1, 0, 2, 3, 4], False, False, 1),  # one id, the rest repaired
    ("<answer>[5] > [3]</answer>", [4, 2, 0, 1, 3], False, False, -1),  # worse than the initial order
])
def test_score_set(completion, order, copied, complete, sign):
    record = score_set(ROW, completion, lenient=True)
    assert record["order"] == order and record["copied"] is copied and record["complete"] is complete
    gain = record["ndcg10_reranked"] - record["ndcg10_initial"]
    assert (gain > 1e-12) - (gain < -1e-12) == sign
    assert (record["rank_reward"] > 0) - (record["rank_reward"] < 0) == sign
    assert "query" not in record and "texts" not in record


def test_strict_parsing_scores_no_answer_block_as_zero():
    assert score_set(ROW, "<answer>[2] the second one", lenient=False)["rank_reward"] == 0.0
    assert score_set(ROW, "<answer>[2] the second one", lenient=True)["rank_reward"] > 0


@pytest.mark.parametrize("text, kept", [
    ("<answer>[3] > [1] > [2]</answer>", "<answer>[3] > [1] > [2]</answer>"),
    ("<answer>[2] The supreme court decides", "<answer>[2] [+26 characters of free text not kept]"),
    ("No ranking at all", " [+17 characters of free text not kept]"),
    # a one-token reply after the "<answer>[" prefill: the pick the reward scored is kept
    ("<answer>[2", "<answer>[2"),
    ("<answer>[3] > [1", "<answer>[3] > [1"),
    ("<answer>[12 and then", "<answer>[12 [+9 characters of free text not kept]"),
])
def test_ids_only_keeps_the_ranking_syntax(text, kept):
    assert ids_only(text) == kept
    # what is kept still parses to the same first pick as the whole reply
    from rearank_kit.core.parsing import parse_ranking

    if kept.startswith("<answer>["):
        assert parse_ranking(kept, 20).order[0] == parse_ranking(text, 20).order[0]


def _records(gains):
    return [{**ROW, "set_id": f"q{i % 4}-{i:03d}", "qid": f"q{i % 4}", "rank_reward": g, "ndcg10_initial": 0.2,
             "ndcg10_reranked": 0.2 + g / 10, "ndcg10_best": 0.4, "complete": True, "copied": g == 0}
            for i, g in enumerate(gains)]


def test_summary_and_comparison():
    better, base = _records([0.5, 0.4, 0.6, 0.5] * 5), _records([0.0] * 20)
    summary = summarize(better, resamples=500)
    assert summary["sets"] == 20 and summary["queries"] == 4
    assert summary["vs_initial_order"]["ci95"][0] > 0 and summary["copied_input_order"] == 0
    cmp = compare_runs(better, base, "base", resamples=500)
    assert cmp["rank_reward"]["mean"] == pytest.approx(0.5) and cmp["rank_reward"]["ci95"][0] > 0
    with pytest.raises(KitError, match="lacks 1 of this evaluation's sets"):
        compare_runs(better, base[:-1], "base", resamples=10)
    other = [dict(r, docids=list(reversed(r["docids"]))) for r in base]
    with pytest.raises(KitError, match="other passages \\(field docids\\)"):
        compare_runs(better, other, "base", resamples=10)
