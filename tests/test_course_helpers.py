"""The notebooks' helpers: pictures (plots.py), the trace lab (trace_lab.py), window nDCG's two
normalisations, and the temperature pre-flight check."""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rearank_kit.analysis.traces import load_traces, window_ndcg  # noqa: E402
from rearank_kit.core.errors import KitError  # noqa: E402
from rearank_kit.course import plots  # noqa: E402
from rearank_kit.data.benchmarks import load_benchmark  # noqa: E402

QRELS = {"q1": {"d11": 3, "d12": 0, "d14": 2}, "q3": {"d31": 1, "d33": 3, "d34": 0, "d35": 2}}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --- pictures -----------------------------------------------------------------------------------


def test_rank_shift_draws_one_line_per_passage_coloured_by_grade():
    ax = plots.plot_rank_shift(["a", "b", "c"], ["c", "a", "b"], {"c": 3, "a": 0})
    lines = {tuple(line.get_ydata()): line.get_color() for line in ax.lines}
    assert lines[(3, 1)] == plots.GRADE_COLOURS[3] and lines[(1, 2)] == plots.GRADE_COLOURS[0]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # rank 1 at the top


def test_windows_figure_has_one_bar_per_model_call():
    ax = plots.plot_windows(100, 20, 10)
    assert len(ax.patches) == 9 and ax.patches[0].get_x() == 80 and ax.patches[-1].get_x() == 0


def test_reward_landscape_covers_every_ordering():
    land = plots.reward_landscape([0, 3, 0, 1, 2], [3, 2, 2, 1, 1])
    assert len(land) == 120 and land["initial"].sum() == 1
    best = land.loc[land["normalized"].idxmax()]
    assert best["normalized"] == pytest.approx(1.0) and best["tau"] == land["tau"].max()
    assert land.loc[land["initial"], "normalized"].item() == 0.0
    assert len(plots.plot_reward_landscape(land)) == 3
    with pytest.raises(ValueError, match="at most 8"):
        plots.reward_landscape(list(range(9)), [1])


def test_reward_spread_per_group():
    df = pd.DataFrame({"step": [1, 1, 1, 1, 2, 2], "set_id": ["a", "a", "b", "b", "c", "c"],
                       "reward": [0.0, 1.0, 0.5, 0.5, 0.2, 0.2]})  # fmt: skip
    groups = plots.reward_spread(df)
    assert groups["std"].round(4).tolist() == [0.7071, 0.0, 0.0]
    ax = plots.plot_reward_spread(df)
    assert len(ax.collections) == 3  # the group bars, the dots, the zero-spread crosses


def test_ceiling_is_the_candidates_sorted_by_grade(sample_dir):
    bench = load_benchmark("sample", top_k=20)
    ceiling = plots.rerank_ceiling(bench)
    # s10: the top 20 holds s10-p01 (3), s10-p03 (2), s10-p05 and s10-p06 (1); s10-p02 (3) and s10-p04 (2) missing
    assert ceiling.loc["s10", "ceiling"] == pytest.approx(0.6926, abs=1e-4)
    assert ceiling.loc["s10", "recall"] == pytest.approx(4 / 6)
    ax = plots.plot_query_scatter({"s10": 0.2}, {"s10": 0.4}, ceiling["ceiling"].to_dict())
    assert "1 up, 0 down of 1" in ax.get_title()


def test_length_vs_quality_reports_spearman():
    ax = plots.plot_length_vs_quality([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.5])
    assert "rho 1.00" in ax.get_title()


# --- window nDCG: two normalisations, named apart -----------------------------------------------


def test_window_ndcg_window_or_query_ideal():
    grades = {"a": 3, "b": 0, "c": 1, "z": 3}  # z: judged, not in the window
    docids = ["a", "b", "c"]
    assert window_ndcg(docids, [0, 2, 1], grades) == pytest.approx(1.0)
    by_query = window_ndcg(docids, [0, 2, 1], grades, ideal="query")
    assert by_query == pytest.approx((3 + 1 / math.log2(3)) / (3 + 3 / math.log2(3) + 1 / math.log2(4)))
    with pytest.raises(ValueError, match="'window' or 'query'"):
        window_ndcg(docids, [0, 1, 2], grades, ideal="set")


# --- the trace lab ------------------------------------------------------------------------------


@pytest.fixture
def sample_traces(sample_dir):
    bench = load_benchmark("sample", top_k=5)
    s10 = next(r for r in bench.rankings if r.query.qid == "s10")
    records = [{"qid": "s10", "window": [0, 5], "docids": s10.docids, "order": [1, 0, 2, 3, 4],
                "output": "<think>[2] answers it. [1] is not relevant.</think><answer>[2] > [1]</answer>"}]  # fmt: skip
    return bench, records


def test_text_is_joined_at_display_time(sample_traces):
    from rearank_kit.analysis.trace_lab import lab_table, with_text

    bench, records = sample_traces
    joined = with_text(records, bench)
    assert joined.loc[0, "query"] == "which planet has the shortest day"
    assert joined.loc[0, "passages"][1].startswith("Venus has the longest day")
    assert "passages" not in records[0] and "query" not in records[0]  # the records are left alone
    table = lab_table(records, bench)
    # window grades [0, 1, 0, 0, 0]: moving s10-p05 (grade 1) to the top beats the order shown
    assert table.loc[0, "outcome"] == "better" and table.loc[0, "claimed"] == ["relevant", "irrelevant"]


def test_filters(sample_traces):
    from rearank_kit.analysis.trace_lab import filter_traces, lab_table

    bench, records = sample_traces
    table = lab_table(records * 2, bench)
    assert len(filter_traces(table, search="VENUS")) == 2  # passage text, case-insensitive
    assert len(filter_traces(table, claim="neutral")) == 0
    assert len(filter_traces(table, outcome="better", words=(0, 3))) == 0  # the reasoning has 7 words
    assert len(filter_traces(table, query="s10", claim="relevant", words=(5, 10))) == 2


def test_claim_agreement_counts():
    from rearank_kit.analysis.trace_lab import claim_agreement

    table = claim_agreement(load_traces("tests/fixtures/traces_small.jsonl"), QRELS)
    # relevant claims: d11 (3), d14 (2), d33 (3), d35 (2); irrelevant: d12 (0), d31 (1), d32 (unjudged), d34 (0)
    assert table.loc["relevant", ["2", "3"]].tolist() == [2, 2] and table.loc["relevant", "share relevant"] == 1.0
    assert table.loc["irrelevant", ["unjudged", "0", "1"]].tolist() == [1, 2, 1]
    assert table.loc["irrelevant", "share relevant"] == pytest.approx(1 / 3, abs=1e-3)


def test_the_browser_builds_its_widgets(sample_traces):
    pytest.importorskip("ipywidgets")
    from rearank_kit.analysis.trace_lab import trace_browser

    bench, records = sample_traces
    box = trace_browser(records, bench)
    descriptions = [w.description for row in box.children[:2] for w in row.children] + [box.children[2].description]
    assert descriptions == ["query", "outcome", "claim", "words", "search"]


# --- pre-flight -----------------------------------------------------------------------------------


def test_a_temperature_of_zero_is_refused_before_any_model_loads():
    from rearank_kit.train.preflight import plan
    from rearank_kit.train.presets import CPU_TINY

    with pytest.raises(KitError, match=r"temperature=0.0: GRPO samples its completions"):
        plan(dataclasses.replace(CPU_TINY, temperature=0.0))
