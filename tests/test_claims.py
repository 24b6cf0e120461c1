"""The relevance-claim classifier against hand-labelled sentences (tests/fixtures/claims.md)."""

from __future__ import annotations

import json

import pytest

from rearank_kit.analysis.claims import (
    FIXTURE,
    claim_evidence,
    classify_claims,
    evaluate_claims,
    load_claims_fixture,
    mentioned_passages,
)
from rearank_kit.core.errors import DataError

REL, IRR, NEU = "relevant", "irrelevant", "neutral"


@pytest.mark.parametrize(
    "text, expected",
    [
        # the three misreadings the course issue reported
        ("Passages [1], [2] and [3] are relevant, [4] is not.", {1: REL, 2: REL, 3: REL, 4: IRR}),
        ("[4] is not irrelevant.", {4: REL}),
        ("Passages 1, 2 and 3 all describe the symptoms, exactly what the query asks.", {1: REL, 2: REL, 3: REL}),
        # a negation inside the passage's content is not a verdict
        ("[3] explains that vitamin D is not produced in the liver, which answers the query.", {3: REL}),
        # a clause without a mention speaks of the passage before it
        ("Passage 13 lists cake ingredients; not useful here.", {13: IRR}),
        ("[16] is useful for the symptoms but does not mention treatment.", {16: NEU}),
        # ... and so does a sentence that starts with a pronoun, not any other
        ("[2] discusses the tax code. It does not answer the query.", {2: IRR}),
        ("[2] discusses the tax code. Nothing else matters.", {2: NEU}),
        ("Passages 6 to 8 are irrelevant; [3]-[4] are relevant.", {6: IRR, 7: IRR, 8: IRR, 3: REL, 4: REL}),
    ],
)
def test_known_phrasings(text, expected):
    assert classify_claims(text, 20) == expected


def test_mentions_of_lists_and_ranges_stay_in_the_window():
    assert mentioned_passages("Passages 1, 2 and 3; passages 4-6; [7]-[9]; passage 12", 10) == list(range(1, 10))
    assert mentioned_passages("Passage 3, then [5] and [5] again", 4) == [3]


def test_evidence_says_why():
    evidence = claim_evidence("Passages [1] and [2] are relevant, [4] is not.", 5)
    assert [(e["ids"], e["polarity"]) for e in evidence] == [([1, 2], 1), ([4], -1)]


def test_evaluation_counts_by_hand():
    rows = [
        {"num": 5, "text": "[1] is relevant, [2] is not.", "labels": {"1": REL, "2": IRR}},  # both right
        {"num": 5, "text": "[3] is relevant.", "labels": {"3": IRR, "4": NEU}},  # wrong; [4] never claimed
    ]
    table = evaluate_claims(rows)
    assert table.loc["relevant", ["predicted", "labelled", "correct"]].tolist() == [2, 1, 1]
    assert table.loc["irrelevant", ["predicted", "labelled", "correct"]].tolist() == [1, 2, 1]
    assert table.loc["mention", "recall"] == pytest.approx(3 / 4)
    assert table.loc["all", "recall"] == pytest.approx(2 / 4)


def test_the_fixture_holds_sixty_labelled_sentences_or_more():
    rows = load_claims_fixture()
    assert len(rows) >= 60 and {r["split"] for r in rows} == {"dev", "heldout"}
    assert any(r["text"] == "[4] is not irrelevant." for r in rows)


@pytest.mark.parametrize("split, floor", [("dev", 0.95), ("heldout", 0.85)])
def test_accuracy_does_not_fall(split, floor):
    # tests/fixtures/claims.md reports 0.96 (dev, the rules were written on it) and 0.86 (held out).
    table = evaluate_claims([r for r in load_claims_fixture() if r["split"] == split])
    assert table.loc["all", "recall"] >= floor
    assert table.loc["mention", "precision"] == 1.0


def test_a_bad_label_names_file_and_line(tmp_path):
    path = tmp_path / "claims.jsonl"
    path.write_text(json.dumps({"num": 3, "text": "[1] ok", "labels": {"1": "great"}}) + "\n")
    with pytest.raises(DataError, match=r"claims.jsonl:1: field 'labels'"):
        load_claims_fixture(path)
    assert FIXTURE.is_file()
