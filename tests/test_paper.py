"""The paper's numbers as data: sources, no guessed cells, BM25 reproduced by the kit."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from rearank_kit import paper
from rearank_kit.errors import DataError, KitError

TABLE1 = ["dl19", "dl20", "covid", "nfcorpus", "touche", "dbpedia", "scifact", "signal", "news", "robust04"]
BRIGHT = ["biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
          "leetcode", "pony", "aops", "theoremqa_q", "theoremqa_t"]  # fmt: skip


def _shared_data(name: str) -> Path | None:
    roots = [Path(p) for p in os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep) if p.strip()]
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for root in roots:
        if all((root / name / f).is_file() for f in ("queries.tsv", "qrels.txt", "candidates.trec")):
            return root / name
    return None


def test_csv_loads_with_sources_and_no_duplicates():
    df = paper.paper_results()
    assert list(df.columns[:7]) == list(paper.COLUMNS)
    assert df["source"].str.match(r"arXiv:2505\.20046 Table [12]$").all()
    assert not df.duplicated(["table", "dataset", "system"]).any()
    assert set(df[df["table"] == "Table 1"]["dataset"]) == set(TABLE1)
    assert set(df[df["table"] == "Table 2"]["dataset"]) == set(BRIGHT)
    assert (df["metric"] == "nDCG@10").all()
    for table in ("Table 1", "Table 2"):
        part = df[df["table"] == table]
        assert (part["source"] == f"arXiv:2505.20046 {table}").all()


def test_only_verified_cells_have_values():
    df = paper.paper_results()
    assert df.loc[df["verified"], "value"].notna().all()
    assert df.loc[~df["verified"], "value"].isna().all()
    filled = paper.paper_results(verified_only=True)
    assert set(filled["system"]) == {"BM25"} and set(filled["dataset"]) == set(TABLE1)
    assert filled.set_index("dataset")["value"].to_dict() == {
        "dl19": 50.58, "dl20": 47.96, "covid": 59.47, "nfcorpus": 30.75, "touche": 44.22, "dbpedia": 31.80,
        "scifact": 67.89, "signal": 33.05, "news": 39.52, "robust04": 40.70,
    }  # fmt: skip


def test_table_filter_and_aliases():
    assert set(paper.paper_results(2)["table"]) == {"Table 2"}
    assert len(paper.paper_results("bright")) == len(paper.paper_results("Table 2"))
    assert set(paper.paper_results("table_1")["table"]) == {"Table 1"}
    with pytest.raises(KitError, match="unknown table"):
        paper.paper_results(3)
    assert paper.paper_value("DL19", "BM25") == 50.58
    assert paper.paper_value("trec-covid", "BM25", table=1) == 59.47
    assert math.isnan(paper.paper_value("dl19", "Rearank-7B"))
    with pytest.raises(KitError, match="no paper row"):
        paper.paper_value("dl19", "NoSuchSystem")


@pytest.mark.parametrize("name, expected", [("dl19", 50.58), ("dl20", 47.96)])
def test_bm25_matches_the_kits_reproduction(name, expected):
    folder = _shared_data(name)
    if folder is None:
        pytest.skip(f"{name} not found in $REARANK_KIT_DATA or ../shared/data")
    from rearank_kit.data import load_benchmark
    from rearank_kit.metrics import mean_ndcg

    bench = load_benchmark(folder, top_k=100)
    ours = 100 * mean_ndcg(bench.first_stage_run(), bench.qrels, 10)
    assert abs(ours - paper.paper_value(name, "BM25")) <= 0.01
    cmp = paper.compare_with_paper({name: ours / 100}, system="BM25", tolerance=0.01)
    assert bool(cmp.loc[0, "within"])


def test_compare_with_paper_side_by_side():
    cmp = paper.compare_with_paper({"dl19": 0.5058, "dl20": 0.49, "robust04": 0.41}, system="BM25")
    assert list(cmp.columns) == ["dataset", "system", "ours", "paper", "diff", "tolerance", "within", "verified",
                                 "source"]  # fmt: skip
    row = cmp.set_index("dataset")
    assert row.loc["dl19", "ours"] == pytest.approx(50.58) and row.loc["dl19", "diff"] == pytest.approx(0.0)
    assert row.loc["dl20", "diff"] == pytest.approx(49.0 - 47.96)
    assert bool(row.loc["dl19", "within"]) and not bool(row.loc["dl20", "within"])  # tolerance 1.0 point
    assert bool(row.loc["robust04", "within"])  # 41.0 vs 40.70
    points = paper.compare_with_paper({"dl19": 50.0}, system="BM25", tolerance=0.5)
    assert points.loc[0, "ours"] == 50.0 and not bool(points.loc[0, "within"])  # 50.0 vs 50.58 > 0.5


def test_compare_with_unfilled_cells_and_unknowns():
    cmp = paper.compare_with_paper({"dl19": 0.70, "covid": 0.80, "madeup": 0.5})
    assert cmp["system"].eq("Rearank-7B").all()
    assert cmp["paper"].isna().all() and cmp["within"].isna().all()
    assert list(cmp["source"])[:2] == ["arXiv:2505.20046 Table 1"] * 2 and cmp.loc[2, "source"] == ""
    with pytest.raises(KitError, match="unknown system"):
        paper.compare_with_paper({"dl19": 0.7}, system="Nope")
    with pytest.raises(ValueError):
        paper.compare_with_paper({"dl19": 0.7}, scale="percent")


@pytest.mark.parametrize(
    "row, message",
    [
        ("Table 1,dl19,X,nDCG@10,70.1,arXiv:2505.20046 Table 1,false,guess", "must leave its value empty"),
        ("Table 1,dl19,X,nDCG@10,,arXiv:2505.20046 Table 1,true,", "needs a value"),
        ("Table 1,dl19,X,nDCG@10,70.1,,true,", "no source"),
        ("Table 1,dl19,BM25,nDCG@10,50.58,arXiv:2505.20046 Table 1,true,", "more than once"),
        ("Table 1,dl19,X,nDCG@10,,arXiv:2505.20046 Table 1,maybe,", "'verified' must be true or false"),
    ],
)
def test_loader_rejects_bad_rows(tmp_path, row, message):
    text = paper.RESULTS_FILE.read_text().rstrip("\n") + "\n" + row + "\n"
    path = tmp_path / "paper_results.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        paper.paper_results(path=path)


def test_packaged_resource_is_declared():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"resources/*"' in pyproject
    assert isinstance(paper.paper_results(), pd.DataFrame)
