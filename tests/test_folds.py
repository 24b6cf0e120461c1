"""Cross-validation folds by query: the committed DL21 assignment, reading a folds file, splitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.data.folds import draw_folds, load_folds, write_folds

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "folds" / "dl21.json"


def test_the_committed_dl21_folds_are_the_documented_draw(shared_data):
    """data/folds/dl21.json is what its "how" says: drawing it again gives the same assignment,
    so nobody can have redrawn it to flatter a method."""
    folds = load_folds(COMMITTED)
    qids = [line.split("\t")[0] for line in (shared_data / "dl21" / "queries.tsv").read_text().splitlines()]
    record = json.loads(COMMITTED.read_text())
    assert draw_folds(qids, record["num_folds"], record["seed"]).folds == folds.folds
    assert sorted(folds.folds) == sorted(qids) and folds.num_folds == 5
    assert sorted(list(folds.folds.values()).count(k) for k in range(5)) == [10, 10, 11, 11, 11]


def test_split_rotates_validation_and_never_overlaps():
    folds = draw_folds([f"q{i}" for i in range(20)], 5, seed=1)
    tests = set()
    for k in range(5):
        split = folds.split(k)
        test, val, train = (folds.queries(k, s) for s in ("test", "validation", "train"))
        assert len(test) == len(val) == 4 and len(train) == 12
        assert not set(test) & set(val) and not (set(test) | set(val)) & set(train)
        assert set(val) == set(folds.queries((k + 1) % 5, "test"))  # the next fold validates
        assert split.keys() == folds.folds.keys()
        tests |= set(test)
    assert tests == set(folds.folds)  # every query is tested exactly once
    assert folds.queries(0, "validation", validation=False) == []
    with pytest.raises(KitError, match="folds 0 to 4"):
        folds.split(5)


@pytest.mark.parametrize("record, message", [
    ({"kind": "run"}, "not a folds file"),
    ({"kind": "folds", "num_folds": 1, "folds": {"a": 0}}, "'num_folds' must be an integer of at least 2"),
    ({"kind": "folds", "num_folds": 2, "folds": []}, "'folds' must map"),
    ({"kind": "folds", "num_folds": 2, "folds": {"a": 0, "b": 2}}, "query 'b' has fold 2"),
    ({"kind": "folds", "num_folds": 2, "folds": {"a": 0, "b": "1"}}, "query 'b' has fold '1'"),
    ({"kind": "folds", "num_folds": 3, "folds": {"a": 0, "b": 1}}, "fold 2 has no query"),
])  # fmt: skip
def test_a_bad_folds_file_names_the_field(tmp_path, record, message):
    path = tmp_path / "folds.json"
    path.write_text(json.dumps(record))
    with pytest.raises(KitError, match=message) as info:
        load_folds(path)
    assert str(path) in str(info.value)


def test_folds_round_trip_and_cover(tmp_path):
    folds = draw_folds(["a", "b", "c", "d"], 2, seed=0)
    back = load_folds(write_folds(folds, tmp_path / "f.json", data="toy", seed=0))
    assert back.folds == folds.folds and back.num_folds == 2
    back.check_covers(["a", "b"], "toy")
    with pytest.raises(KitError, match="no fold for 1 query of toy"):
        back.check_covers(["a", "z"], "toy")
    with pytest.raises(KitError, match="cannot fill 5 folds"):
        draw_folds(["a", "b"], 5)
