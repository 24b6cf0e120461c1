"""The lenient ranking parser: one labelled model output per failure mode, and a property test."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rearank_kit.core.parsing import format_ranking, is_complete, parse_ranking

# (label, output, num, expected 0-based order, expected diagnostics (a subset of ParseResult's fields))
CASES = [
    ("clean think+answer", "<think>[1] is about cats, [2] too.</think>\n<answer>[2] > [1] > [4] > [3]</answer>", 4,
     [1, 0, 3, 2], dict(source="answer", has_think=True, has_answer=True, think_answer_ok=True, answer_only_ok=False,
                        answer_format_ok=True, num_valid=4, num_missing=0, think_text="[1] is about cats, [2] too.")),
    ("answer only", "<answer>[3] > [1] > [2] > [4]</answer>", 4,
     [2, 0, 1, 3], dict(source="answer", has_think=False, think_answer_ok=False, answer_only_ok=True,
                        answer_format_ok=True, num_valid=4)),
    ("truncated list", "<think>ok</think><answer>[3] > [1] > [", 4,
     [2, 0, 1, 3], dict(source="open_answer", has_answer=False, think_answer_ok=False, num_valid=2, num_missing=2)),
    ("repeated list", "<answer>[2] > [1] > [2] > [1] > [2]</answer>", 4,
     [1, 0, 2, 3], dict(source="answer", num_valid=2, num_duplicate=3, num_missing=2, answer_format_ok=True)),
    ("bare numbers without brackets", "<answer>3 > 1 > 4 > 2</answer>", 4,
     [2, 0, 3, 1], dict(source="answer", bare_numbers=True, answer_format_ok=False, num_valid=4)),
    ("text around the answer", "Sure! Ranking: <answer>[4] > [3] > [2] > [1]</answer> Hope this helps [1].", 4,
     [3, 2, 1, 0], dict(source="answer", answer_only_ok=False, answer_format_ok=True, num_valid=4)),
    ("empty output", "", 4,
     [0, 1, 2, 3], dict(source="whole", answer_text="", has_answer=False, num_valid=0, num_missing=4)),
    ("out-of-range ids", "<answer>[5] > [2] > [0] > [1]</answer>", 4,
     [1, 0, 2, 3], dict(num_valid=2, num_out_of_range=2, num_missing=2)),
    ("duplicates", "[1] > [1] > [3] > [3] > [2]", 4,
     [0, 2, 1, 3], dict(source="whole", num_valid=3, num_duplicate=2, num_missing=1, has_answer=False)),
    ("unclosed <answer>", "<think>ok</think>\n<answer>[4] > [2] > [1] > [3]", 4,
     [3, 1, 0, 2], dict(source="open_answer", has_think=True, has_answer=False, think_answer_ok=False, num_valid=4)),
    ("answer after </think> without tags", "<think>[1] mentions cats</think>\n[3] > [4] > [1] > [2]", 4,
     [2, 3, 0, 1], dict(source="after_think", has_answer=False, num_valid=4, answer_text="\n[3] > [4] > [1] > [2]")),
    ("nested tags", "<answer><answer>[2] > [1]</answer></answer>", 4,
     [1, 0, 2, 3], dict(source="answer", answer_only_ok=False, answer_format_ok=False, num_valid=2)),
    ("repeated blocks: the last answer counts",
     "<think>a</think><answer>[1] > [2] > [3] > [4]</answer><think>b</think><answer>[4] > [3] > [2] > [1]</answer>", 4,
     [3, 2, 1, 0], dict(source="answer", think_answer_ok=False, think_text="a", num_valid=4)),
    ("cut inside <think>: ids read from the whole text", "<think>passage [3] looks best, then", 4,
     [2, 0, 1, 3], dict(source="whole", has_think=False, num_valid=1, num_missing=3)),
    ("compact prefill continued", "<answer>[2] > [1]</answer>", 3,
     [1, 0, 2], dict(source="answer", answer_only_ok=True, answer_format_ok=True, num_valid=2, num_missing=1)),
    ("spaces inside brackets and tags", "<answer> [ 2 ] > [1] </answer>", 2,
     [1, 0], dict(source="answer", answer_format_ok=False, num_valid=2)),
    ("no passages", "<answer>[1]</answer>", 0, [], dict(num_valid=0, num_out_of_range=1, num_missing=0)),
]


@pytest.mark.parametrize(("label", "text", "num", "order", "diagnostics"), CASES, ids=[c[0] for c in CASES])
def test_labelled_outputs(label, text, num, order, diagnostics):
    result = parse_ranking(text, num)
    assert result.order == order, label
    got = result.diagnostics()
    assert {k: got[k] for k in diagnostics} == diagnostics, label
    assert result.num == num
    assert result.num_valid + result.num_missing == num
    assert result.mentioned == order[: result.num_valid]


def test_complete_means_no_repair():
    assert parse_ranking("<answer>[2] > [1]</answer>", 2).complete
    assert not parse_ranking("<answer>[2] > [2] > [1]</answer>", 2).complete
    assert not parse_ranking("<answer>[2]</answer>", 2).complete
    assert not parse_ranking("<answer>[2] > [1] > [9]</answer>", 2).complete


@pytest.mark.parametrize(
    ("diagnostics", "complete"),
    [
        (dict(num=3, num_valid=3, num_duplicate=0, num_out_of_range=0), True),
        (dict(num=3, num_valid=3, num_duplicate=1, num_out_of_range=0), False),  # all ranked, one repeated
        (dict(num=3, num_valid=3, num_duplicate=0, num_out_of_range=2), False),  # [7] in a window of 3
        (dict(num=3, num_valid=2, num_duplicate=0, num_out_of_range=0), False),  # one appended by the parser
        (dict(num=0, num_valid=0), True),  # nothing to rank
        ({}, False),  # a trace record without diagnostics is not counted as complete
    ],
)
def test_is_complete_on_diagnostics(diagnostics, complete):
    """The one check the rerank summary, the traces notebook and ParseResult.complete share."""
    assert is_complete(diagnostics) is complete


def test_diagnostics_are_json_ready():
    import json

    d = parse_ranking("<think>x</think><answer>[1]</answer>", 2).diagnostics()
    assert "order" not in d and "mentioned" not in d
    assert json.loads(json.dumps(d)) == d


def test_format_ranking_round_trips():
    assert format_ranking([2, 0, 1]) == "[3] > [1] > [2]"
    assert parse_ranking(f"<answer>{format_ranking([2, 0, 1])}</answer>", 3).order == [2, 0, 1]


def test_non_string_output_is_treated_as_empty():
    assert parse_ranking(None, 3).order == [0, 1, 2]


# Text that looks like model output: tags, bracketed and bare numbers, separators and noise.
_pieces = st.one_of(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " > ", ">", "[", "]", "\n", " "]),
    st.integers(-5, 40).map(lambda i: f"[{i}]"),
    st.integers(0, 10**12).map(str),
    st.text(max_size=8),
)
model_like = st.lists(_pieces, max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), model_like), num=st.integers(0, 30))
def test_parse_never_raises_and_returns_a_permutation(text, num):
    result = parse_ranking(text, num)
    assert sorted(result.order) == list(range(num))
    assert result.num_valid + result.num_missing == num
    assert result.source in ("answer", "open_answer", "after_think", "whole")
