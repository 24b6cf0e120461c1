"""Trace statistics: loading, mentions, relevance claims, judged ranks, format, before/after, rendering."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rearank_kit.analysis import traces
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.records import read_qrels

FIXTURES = Path(__file__).parent / "fixtures"
TRACES = FIXTURES / "traces_small.jsonl"


@pytest.fixture
def df():
    return traces.load_traces(TRACES)


@pytest.fixture
def qrels():
    return read_qrels(FIXTURES / "qrels_small.txt")


def _records():
    return [json.loads(line) for line in TRACES.read_text().splitlines()]


# --- loading ------------------------------------------------------------------------------------


def test_load_traces_columns_and_derived_fields(df):
    assert len(df) == 4
    assert list(df["qid"]) == ["q1", "q2", "q3", "q3"]
    assert list(df["window_start"]) == [0, 0, 4, 0] and list(df["n"]) == [4, 4, 4, 4]
    # record 0 has diagnostics without think_text: the reasoning is re-parsed from the output
    assert df.loc[0, "think_text"].startswith("Passage [1] describes how dense fur")
    assert df.loc[0, "think_words"] == len(df.loc[0, "think_text"].split())
    assert list(df["think_answer_ok"]) == [True, False, True, False]
    assert list(df["repaired"]) == [False, True, False, True]
    assert bool(df.loc[1, "bare_numbers"]) and df.loc[1, "num_missing"] == 1
    # record 3 was cut inside <think>: the reasoning so far is kept and flagged
    assert not df.loc[3, "think_closed"] and df.loc[3, "think_text"].startswith("[1] seems relevant")
    assert df.loc[2, "think_closed"]


def test_load_from_folder_and_records(tmp_path):
    (tmp_path / "traces.jsonl").write_text(TRACES.read_text())
    assert len(traces.load_traces(tmp_path)) == 4
    assert list(traces.load_traces(_records())["qid"]) == ["q1", "q2", "q3", "q3"]


def test_torn_tail_and_bad_lines(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text(TRACES.read_text() + '{"qid": "q9", "docids": ["a"')
    assert len(traces.load_traces(path)) == 4
    lines = TRACES.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: invalid JSON"):
        traces.load_traces(path)
    bad = json.loads(lines[0])
    bad["order"] = [0, 0, 1, 2]
    path.write_text(json.dumps(bad) + "\n" + lines[1] + "\n")
    with pytest.raises(DataError, match=r":1: field 'order' is not a permutation"):
        traces.load_traces(path)
    path.write_text(json.dumps({"qid": "q1", "output": "x"}) + "\n" + lines[1] + "\n")
    with pytest.raises(DataError, match="no 'docids' field"):
        traces.load_traces(path)
    with pytest.raises(KitError, match="no such traces file"):
        traces.load_traces(tmp_path / "missing.jsonl")


# --- mentions and claims ------------------------------------------------------------------------


def test_mention_fraction_hand_computed(df):
    text = "Passage 2 mentions tides. [5] and passage [1] do too; [2] again; [9] is out of range; passage12."
    assert traces.mentioned_passages(text, 6) == [1, 2, 5]
    # fixture: q1 names all 4; q2 has no reasoning; q3 names all 4; the cut-off trace names [1] and [2]
    assert df["mention_frac"].tolist() == [1.0, 0.0, 1.0, 0.5]
    assert df.loc[3, "mentioned"] == [1, 2]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[1] directly answers the query.", {1: "relevant"}),
        ("[2] is not relevant to the query.", {2: "irrelevant"}),
        ("Passage 3 is irrelevant.", {3: "irrelevant"}),
        ("Passage [4] talks about cooking.", {4: "neutral"}),
        ("[1] is relevant, but [2] does not mention the cause.", {1: "relevant", 2: "irrelevant"}),
        ("[3] and [4] are unrelated to the question.", {3: "irrelevant", 4: "irrelevant"}),
        ("[5] is somewhat relevant.", {5: "neutral"}),
        ("[1] is relevant. [1] does not give numbers.", {1: "neutral"}),  # mixed statements cancel
        ("[2] explains the mechanism. [2] is useful. [2] lacks dates.", {2: "relevant"}),  # +2 -1
        ("[6] addresses the query while [1] is off-topic.", {1: "irrelevant", 6: "relevant"}),
        ("Nothing here names a passage.", {}),
        ("[7] is relevant.", {}),  # out of range for a window of 6
    ],
)
def test_classify_claims(text, expected):
    assert traces.classify_claims(text, 6) == expected


def test_claims_of_fixture(df):
    assert df.loc[0, "claims"] == {1: "relevant", 2: "irrelevant", 3: "neutral", 4: "relevant"}
    assert df.loc[2, "claims"] == {1: "irrelevant", 2: "irrelevant", 3: "relevant", 4: "irrelevant"}


def test_claims_summary_mean_ranks(df, qrels):
    summary = traces.claims_summary(df, qrels)
    # relevant: q1 [1]@1, q1 [4]@2, q3 [3]@1, cut-off q3 [1]@1; irrelevant: q1 [2]@4, q3 [1]@2 [2]@3 [4]@4;
    # neutral: q1 [3]@3, cut-off q3 [2]@2
    assert summary.loc["relevant", "count"] == 4 and summary.loc["relevant", "mean_rank"] == pytest.approx(1.25)
    assert summary.loc["irrelevant", "mean_rank"] == pytest.approx(3.25)
    assert summary.loc["neutral", "mean_rank"] == pytest.approx(2.5)
    # grades: relevant d11=3, d14=2, d33=3, d35=2; irrelevant d12=0, d31=1, d32 unjudged (NaN), d34=0
    assert summary.loc["relevant", "mean_grade"] == pytest.approx(2.5)
    assert summary.loc["irrelevant", "mean_grade"] == pytest.approx(1 / 3)
    ranks = traces.claim_ranks(df)
    assert ranks["grade"].isna().all() and len(ranks) == 10


# --- judged relevance ---------------------------------------------------------------------------


def test_window_ndcg_hand_computed():
    grades = {"a": 3, "b": 0, "c": 1, "d": 2}
    docids = ["a", "b", "c", "d"]
    assert traces.window_ndcg(docids, [0, 3, 2, 1], grades) == pytest.approx(1.0)
    got = traces.window_ndcg(docids, [3, 2, 1, 0], grades)  # grades in order 2, 1, 0, 3
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert got == pytest.approx((2 + 1 / math.log2(3) + 3 / math.log2(5)) / ideal)
    assert math.isnan(traces.window_ndcg(["x", "y"], [1, 0], {}))


def test_judged_summary(df, qrels):
    jr = traces.judged_ranks(df, qrels)
    assert len(jr) == 16
    assert jr.set_index(["trace", "docid"]).loc[(0, "d11"), "rank"] == 1
    assert not jr.set_index(["trace", "docid"]).loc[(1, "d22"), "judged"]
    summary = traces.judged_summary(df, qrels)
    # grade 3: d11 rank 1 (q1), d33 rank 1 (q3)
    assert summary.loc[3, "count"] == 2 and summary.loc[3, "mean_rank"] == 1.0


# --- format and length --------------------------------------------------------------------------


def test_format_stats(df):
    stats = traces.format_stats(df)
    assert stats["traces"] == 4
    assert stats["think_answer_ok"] == 0.5 and stats["answer_format_ok"] == 0.5
    assert stats["bare_numbers"] == 0.25 and stats["repaired"] == 0.5
    assert stats["complete"] == 0.5 and stats["mean_missing"] == pytest.approx((0 + 1 + 0 + 2) / 4)
    assert stats["think_cut"] == 0.25 and "length_limit" not in stats
    records = _records()
    for rec, reason in zip(records, ["stop", "stop", "stop", "length"], strict=True):
        rec["finish_reason"] = reason
    assert traces.format_stats(records)["length_limit"] == 0.25


def test_reasoning_lengths(df):
    words = traces.reasoning_lengths(df)
    assert words.tolist() == [len(t.split()) for t in df["think_text"]]

    class CharTokenizer:
        def encode(self, text, add_special_tokens=False):
            return list(text)

    assert traces.reasoning_lengths(df, CharTokenizer()).tolist() == [len(t) for t in df["think_text"]]
    assert traces.length_stats(df).loc["count", "think_words"] == 4


# --- before / after -----------------------------------------------------------------------------


def _before_run():
    before = []
    for rec in _records():
        rec = dict(rec, output="<answer>[4] > [3] > [2] > [1]</answer>", order=[3, 2, 1, 0])
        rec.pop("diagnostics", None)
        before.append(rec)
    return before


def test_compare_runs_per_window(df, qrels):
    cmp = traces.compare_runs(_before_run(), df, qrels)
    assert len(cmp) == 4 and cmp["same_docids"].all()
    assert cmp.attrs["unmatched"] == {"before": 0, "after": 0}
    q1 = cmp.iloc[0]
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    before = (2 + 1 / math.log2(3) + 3 / math.log2(5)) / ideal  # grades 2, 1, 0, 3
    assert q1["ndcg_before"] == pytest.approx(before)
    assert q1["ndcg_after"] == pytest.approx(1.0)
    assert q1["ndcg_delta"] == pytest.approx(1.0 - before)
    assert q1["think_words_before"] == 0 and q1["think_words_after"] == df.loc[0, "think_words"]
    assert cmp["think_answer_ok_before"].sum() == 0 and cmp["think_answer_ok_after"].sum() == 2
    assert cmp["ndcg_shown_before"].tolist() == pytest.approx(cmp["ndcg_shown_after"].tolist(), nan_ok=True)
    summary = traces.comparison_summary(cmp)
    assert list(summary.columns) == ["before", "after", "delta"]
    assert summary.loc["think_answer_ok", "after"] == 0.5
    assert summary.loc["ndcg", "delta"] == pytest.approx(cmp["ndcg_delta"].mean())


def test_compare_runs_by_query_and_unmatched(df):
    cmp = traces.compare_runs(_before_run()[:3], df, by="query")
    assert list(cmp["qid"]) == ["q1", "q2", "q3"]
    assert "ndcg_before" not in cmp.columns  # no qrels, no nDCG
    per_window = traces.compare_runs(_before_run()[:3], df)
    assert per_window.attrs["unmatched"] == {"before": 0, "after": 1}
    with pytest.raises(ValueError):
        traces.compare_runs(df, df, by="run")


# --- rendering ----------------------------------------------------------------------------------


def test_render_trace_shows_reasoning_ranking_and_grades(df, qrels):
    text = traces.render_trace(df.iloc[0], qrels)
    assert "query q1" in text and "window [0, 4)" in text
    assert "directly answers how sea otters stay warm" in text
    rows = {line.split()[2]: line.split() for line in text.splitlines() if line.strip().split()[:1]
            and line.strip().split()[0].isdigit()}  # fmt: skip
    assert rows["d11"][:4] == ["1", "[1]", "d11", "3"] and rows["d11"][4] == "relevant"
    assert rows["d12"][:4] == ["4", "[2]", "d12", "0"] and rows["d12"][4] == "irrelevant"
    unjudged = traces.render_trace(_records()[1], qrels)  # a raw record works too
    assert any(line.split()[2:4] == ["d22", "-"] for line in unjudged.splitlines() if line.strip()[:1].isdigit())
    assert "bare numbers" in unjudged and "1 missing" in unjudged
    no_grades = traces.render_trace(df.iloc[0])
    assert "grade" not in no_grades.splitlines()[-5]
    assert "cut off" in traces.render_trace(df.iloc[3])


def test_render_trace_html_escapes_and_has_grades(df, qrels):
    rec = df.iloc[0].to_dict()
    rec["think_text"] = "compare <b>bold</b> & [1]"
    out = traces.render_trace_html(rec, qrels)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in out and "<b>bold</b>" not in out
    assert "<code>d11</code></td><td style='color:#1a7f37;font-weight:bold'>3</td>" in out
