"""The paper's numbers as data: every cell of Tables 1-5, equal to the shared transcription, the
BM25 rows reproduced by the kit, the averages consistent with the cells, and the figure-only
results as reference lines."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.evaluation import paper

SHARED_TABLES = Path(__file__).resolve().parents[2] / "shared" / "paper" / "rearank_paper_tables.csv"
BEIR = ["covid", "nfcorpus", "dbpedia", "scifact", "signal", "news", "robust04"]  # the paper's seven
BRIGHT = ["biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow", "sustainable_living",
          "pony", "leetcode", "aops", "theoremqa_theorems", "theoremqa_questions"]  # fmt: skip
TABLE1_SYSTEMS = ["BM25", "RankQwen2.5-7B", "RankGPT3.5", "RankGPT4", "RankZephyr-7B", "RankQwen3-32B",
                  "RankQwen3-235B", "Rank-R1-7B", "REARANK-7B"]  # fmt: skip


def _shared_data(name: str) -> Path | None:
    roots = [Path(p) for p in os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep) if p.strip()]
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for root in roots:
        if all((root / name / f).is_file() for f in ("queries.tsv", "qrels.txt", "candidates.trec")):
            return root / name
    return None


# --- the kit's copy is the shared transcription, cell by cell -----------------------------------


def test_every_cell_matches_the_shared_transcription():
    if not SHARED_TABLES.is_file():
        pytest.skip(f"{SHARED_TABLES} not found (the paper's tables are kept beside the checkout, in ../shared/paper)")
    key = ("table", "benchmark", "system", "training", "metric")
    with SHARED_TABLES.open(encoding="utf-8", newline="") as f:
        shared = {tuple(r[k] for k in key): r["value"] for r in csv.DictReader(f)}
    with paper.RESULTS_FILE.open(encoding="utf-8", newline="") as f:
        ours = {tuple(r[k] for k in key): r["value"] for r in csv.DictReader(f)}
    assert len(shared) == 231
    assert sorted(set(shared) - set(ours)) == []  # nothing of the paper's left out
    assert sorted(set(ours) - set(shared)) == []  # nothing added
    for cell, value in shared.items():
        assert ours[cell] == value, cell  # as printed: "67.89", "6.0"


def test_tables_hold_the_papers_systems_and_benchmarks():
    df = paper.paper_results()
    assert list(dict.fromkeys(df["table"])) == list(paper.TABLES)
    t1 = paper.paper_results(1)
    assert list(dict.fromkeys(t1["system"])) == TABLE1_SYSTEMS
    assert list(dict.fromkeys(t1["dataset"])) == ["dl19", "dl20", *BEIR, "beir_avg"]  # no Touché
    assert len(t1) == 9 * 10
    t2 = paper.paper_results(2)
    assert list(dict.fromkeys(t2["dataset"])) == [*BRIGHT, "bright_avg"]
    assert set(t2["system"]) == set(TABLE1_SYSTEMS) - {"RankGPT3.5"} and len(t2) == 8 * 13
    t3 = paper.paper_results(3)
    assert "w/ direct SFT" in set(t3["system"]) and len(t3) == 7 * 3
    assert set(t3["dataset"]) == {"trec_dl_avg", "beir_avg", "bright_avg"}
    t4 = paper.paper_results(4)
    assert paper.paper_value("trec-dl", "REARANK-7B (reasoning off)", table=4) == 68.2 and len(t4) == 4 * 3
    t5 = paper.paper_results(5)
    assert set(t5["metric"]) == {"pass@1"} and len(t5) == 4
    assert set(df.loc[df["table"] != "Table 5", "metric"]) == {"nDCG@10"}
    assert (df["source"] == "arXiv:2505.20046 " + df["table"]).all()
    assert "verified" not in df.columns  # every cell is the paper's; none is left empty or guessed


def test_rankgpt4_carries_its_top_30_note():
    t1 = paper.paper_results(1)
    notes = t1.loc[t1["system"] == "RankGPT4", "note"]
    assert len(notes) == 10 and notes.str.contains("top 30 of RankGPT3.5").all()
    assert not t1.loc[t1["system"] != "RankGPT4", "note"].str.contains("top 30").any()


@pytest.mark.parametrize(("table", "average", "parts", "rounding"), [
    (1, "beir_avg", BEIR, 0.005),  # printed with 2 decimals
    (2, "bright_avg", BRIGHT, 0.05),  # printed with 1 decimal
])  # fmt: skip
def test_averages_agree_with_their_cells(table, average, parts, rounding):
    """A transcription slip in one cell shows as an average that no longer fits."""
    df = paper.paper_results(table)
    for system, rows in df.groupby("system"):
        values = rows.set_index("dataset")["value"]
        assert abs(values[parts].mean() - values[average]) <= rounding + 1e-9, system


@pytest.mark.parametrize("name, expected", [("dl19", 50.58), ("dl20", 47.96)])
def test_bm25_matches_the_kits_reproduction(name, expected):
    folder = _shared_data(name)
    if folder is None:
        pytest.skip(f"{name} not found in $REARANK_KIT_DATA or ../shared/data")
    from rearank_kit.core.metrics import mean_ndcg
    from rearank_kit.data.benchmarks import load_benchmark

    bench = load_benchmark(folder, top_k=100)
    ours = 100 * mean_ndcg(bench.first_stage_run(), bench.qrels, 10)
    assert paper.paper_value(name, "BM25") == expected
    assert abs(ours - expected) <= 0.01
    cmp = paper.compare_with_paper({name: ours / 100}, system="BM25", tolerance=0.01)
    assert bool(cmp.loc[0, "within"])


# --- names ---------------------------------------------------------------------------------------


def test_table_and_dataset_names():
    assert len(paper.paper_results("bright")) == len(paper.paper_results("Table 2")) == len(paper.paper_results(2))
    assert set(paper.paper_results("table_1")["table"]) == {"Table 1"}
    with pytest.raises(KitError, match="unknown table"):
        paper.paper_results(6)
    for name, key in [("DL19", "dl19"), ("trec-covid", "covid"), ("beir/trec-covid", "covid"), ("nfc", "nfcorpus"),
                      ("beir/dbpedia-entity/test", "dbpedia"), ("bright/biology", "biology"), ("Bio.", "biology"),
                      ("TheoT.", "theoremqa_theorems"), ("theoremqa_q", "theoremqa_questions"),
                      ("BEIR (Avg)", "beir_avg"), ("AIME 2024", "aime2024")]:  # fmt: skip
        assert paper.dataset_name(name) == key, name


def test_system_names_resolve_table_by_table():
    assert paper.paper_value("dl19", "Rearank-7B") == 74.16  # older kit name
    assert paper.paper_value("dl19", "le723z/Rearank-7B") == 74.16  # the checkpoint's hub id
    assert paper.paper_value("aime2024", "REARANK-7B", table=5) == 12.92  # printed "(Ours) Rearank-7B"
    assert paper.paper_value("dl19", "Qwen/Qwen2.5-7B-Instruct") == 68.25  # RankQwen2.5-7B in Table 1 ...
    assert paper.paper_value("aime2024", "Qwen2.5-7B-Instruct") == 11.87  # ... its own name in Table 5
    assert paper.paper_value("Bio.", "GPT-4") == 33.8
    with pytest.raises(KitError, match="no paper row"):
        paper.paper_value("dl19", "NoSuchSystem")


# --- side by side --------------------------------------------------------------------------------


def test_compare_with_paper_side_by_side():
    cmp = paper.compare_with_paper({"dl19": 0.5058, "dl20": 0.49, "robust04": 0.41, "touche": 0.3}, system="BM25")
    assert list(cmp.columns) == ["dataset", "system", "ours", "paper", "diff", "tolerance", "within", "source", "note"]
    row = cmp.set_index("dataset")
    assert row.loc["dl19", "ours"] == pytest.approx(50.58) and row.loc["dl19", "diff"] == pytest.approx(0.0)
    assert row.loc["dl20", "diff"] == pytest.approx(49.0 - 47.96)
    assert bool(row.loc["dl19", "within"]) and not bool(row.loc["dl20", "within"])  # tolerance 1.0 point
    assert bool(row.loc["robust04", "within"])  # 41.0 vs 40.70
    assert pd.isna(row.loc["touche", "paper"]) and pd.isna(row.loc["touche", "within"])  # not in the paper
    points = paper.compare_with_paper({"dl19": 50.0}, system="BM25", tolerance=0.5)
    assert points.loc[0, "ours"] == 50.0 and not bool(points.loc[0, "within"])  # 50.0 vs 50.58 > 0.5
    with pytest.raises(KitError, match="unknown system"):
        paper.compare_with_paper({"dl19": 0.7}, system="Nope")
    with pytest.raises(ValueError):
        paper.compare_with_paper({"dl19": 0.7}, scale="percent")


def test_paper_table_in_the_papers_layout_with_the_kits_rows():
    t1 = paper.paper_table(1, ours={"kit: BM25": {"dl19": 0.5058, "beir/trec-covid": 0.6}})
    assert list(t1.columns) == ["training", "DL19", "DL20", "Covid", "NFCorpus", "DBPedia", "SciFact", "Signal",
                                "News", "Robust04", "BEIR (Avg)"]  # fmt: skip
    assert list(t1.index) == [*TABLE1_SYSTEMS, "kit: BM25"]
    assert t1.loc["REARANK-7B", "DL19"] == 74.16 and t1.loc["RankZephyr-7B", "training"] == "105K SFT"
    assert t1.loc["kit: BM25", "DL19"] == pytest.approx(50.58) and t1.loc["kit: BM25", "Covid"] == pytest.approx(60.0)
    assert pd.isna(t1.loc["kit: BM25", "DL20"])
    t4 = paper.paper_table(4)
    assert "training" not in t4.columns and t4.loc["Qwen3-32B (reasoning off)", "BEIR"] == 54.3


# --- figure-only results -------------------------------------------------------------------------


def test_reference_lines_for_the_training_curves():
    lines = paper.reference_lines("normalized")
    assert {(ln.axis, ln.at) for ln in lines["reward"]} == {("y", 0.8), ("x", 100)}
    assert [(ln.axis, ln.at) for ln in lines["completions/mean_length"]] == [("y", 850)]
    assert [(ln.axis, ln.at) for ln in paper.reference_lines("difference")["reward"]] == [("y", 0.15)]
    assert [(ln.axis, ln.at) for ln in paper.reference_lines("raw")["reward"]] == [("x", 50)]
    assert all(ln.label.startswith("paper (figure)") for group in lines.values() for ln in group)
    # The keys are the ones the kit's training log writes, so the lines land on its panels.
    fixture = Path(__file__).parent / "fixtures" / "metrics_small.jsonl"
    logged = set(json.loads(fixture.read_text().splitlines()[0]))
    assert set(lines) <= logged
    with pytest.raises(KitError, match="unknown reward mode"):
        paper.reference_lines("normalised-ish")


# --- the loader refuses a damaged file -----------------------------------------------------------


@pytest.mark.parametrize(("row", "message"), [
    ("Table 1,DL19,dl19,X,,nDCG@10,,arXiv:2505.20046 Table 1,", "'value' must be a number"),
    ("Table 1,DL19,dl19,X,,nDCG@10,70.1,,", "field 'source' is empty"),
    ("Table 1,DL19,dl19,BM25,,nDCG@10,50.58,arXiv:2505.20046 Table 1,", "more than once"),
    ("Table 9,DL19,dl19,X,,nDCG@10,70.1,arXiv:2505.20046 Table 9,", "field 'table' is 'Table 9'"),
])  # fmt: skip
def test_loader_rejects_bad_rows(tmp_path, row, message):
    text = paper.RESULTS_FILE.read_text().rstrip("\n") + "\n" + row + "\n"
    path = tmp_path / "paper_results.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        paper.paper_results(path=path)
    assert str(path) in str(info.value)


def test_packaged_resource_is_declared():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"evaluation/resources/*"' in pyproject
