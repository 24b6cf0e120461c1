"""Notebook helpers: set tables, reward tables, the nDCG histogram and the summary table."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere in this process: no display needed

import pytest  # noqa: E402

from rearank_kit.core.records import Benchmark, Candidate, Query, Ranking  # noqa: E402
from rearank_kit.course import explore  # noqa: E402
from rearank_kit.train.augment import AugmentConfig, augment  # noqa: E402
from rearank_kit.train.rewards import MODES  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:  # figures made on pyplot stay open until closed
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="module")
def result():
    grades = [3, 0, 2, 0, 1, 0, 0, 2, 0, 1]
    rankings, qrels = [], {}
    for q in range(4):
        qid = f"q{q}"
        cands = [Candidate(f"{qid}-d{i}", f"passage {i} " + "word " * 40, rank=i + 1) for i in range(10)]
        rankings.append(Ranking(Query(qid, f"topic {q}"), cands))
        qrels[qid] = {c.docid: grades[(i + q) % 10] for i, c in enumerate(cands)}
    return augment(Benchmark("toy", None, rankings, qrels),
                   AugmentConfig(samples_per_query=6, window=4, template="compact", test_fraction=0.25))


def test_show_set(result):
    row = result.rows[0]
    table = explore.show_set(row)
    assert list(table.columns) == ["position", "docid", "grade", "text"]
    assert list(table["position"]) == ["[1]", "[2]", "[3]", "[4]"]
    assert list(table["docid"]) == row["docids"] and list(table["grade"]) == row["grades"]
    assert all(len(t) <= 80 for t in table["text"]) and table["text"][0].startswith("passage")


def test_reward_table(result):
    row = result.rows[0]
    table = explore.reward_table("<think>x</think><answer>[4] > [3] > [2] > [1]</answer>", row)
    assert list(table.index) == list(MODES)
    assert {"rank", "format_think_answer", "format_answer", "total", "s_new", "s_init", "s_best"} <= set(table.columns)
    assert (table["format_think_answer"] == 1.0).all() and (table["format_answer"] == 1.0).all()
    assert table.loc["raw", "rank"] == pytest.approx(table.loc["raw", "s_new"])
    lenient = explore.reward_table("<answer>[1]</answer>", row, modes=["normalized"], lenient=True)
    assert lenient.loc["normalized", "format_think_answer"] == 1.0


def test_ndcg_histogram_on_new_and_given_axes(result):
    ax = explore.ndcg_histogram(result.rows, bins=10)
    assert len(ax.patches) == 2 * 10  # one bar per bin, for initial and for best
    assert [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()] == ["initial", "best possible"]
    assert ax.get_xlabel() == "nDCG@10 of the set"
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights[:10]) == sum(heights[10:]) == len(result.rows)

    import matplotlib.pyplot as plt

    fig, given = plt.subplots()
    try:
        assert explore.ndcg_histogram(result.rows, ax=given, bins=5) is given
        assert len(given.patches) == 10
    finally:
        plt.close(fig)


def test_ndcg_histogram_accepts_datasets_and_frames(result, tmp_path):
    import pandas as pd

    from rearank_kit.train.augment import load_sets, write_augmented

    sets = load_sets(write_augmented(result, tmp_path / "aug"))
    for source in (sets, sets["train"], pd.DataFrame(result.rows)):
        ax = explore.ndcg_histogram(source, bins=4)
        expected = len(result.rows) if source is not sets["train"] else len(sets["train"])
        assert sum(p.get_height() for p in ax.patches) == 2 * expected


def test_summary_table(result):
    table = explore.summary_table(result.summary)
    assert table.loc["sets kept", "value"] == str(result.summary["sets_kept"])
    assert table.loc["filter", "value"] == "initial nDCG@10 >= 0.1"
    assert "sets dropped: no_relevant" in table.index and "init_ndcg mean" in table.index
    assert explore.summary_table({}).shape[1] == 1  # a partial summary still renders
