"""MS MARCO v2 passages (TREC DL21-23) as the authors read them: the ``passage`` field of the
documents in pyserini's ``msmarco-v2-passage`` index. A fixture of stored documents in that
shape (the kit's own text), no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rearank_kit.data.remote import _doc_text

FIXTURE = Path(__file__).parent / "fixtures" / "msmarco_v2_passage.jsonl"


def _records() -> list[str]:
    return [line for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("raw", _records())
def test_v2_documents_give_their_passage_field(raw):
    record = json.loads(raw)
    assert set(record) == {"pid", "passage", "spans", "docid"}  # the v2 shape: no contents, no title/text
    assert _doc_text(raw) == record["passage"]  # as stored; prompts.clean_passage collapses whitespace later


def test_passage_is_read_in_the_authors_order():
    """rank_gpt.py: a title first (BEIR), then "passage", then "contents"."""
    assert _doc_text(json.dumps({"passage": "from passage", "contents": "from contents"})) == "from passage"
    assert _doc_text(json.dumps({"id": "7", "contents": "a v1 passage"})) == "a v1 passage"
    beir = _doc_text(json.dumps({"title": "T", "text": "body", "passage": "not this"}))
    assert "not this" not in beir and "body" in beir
