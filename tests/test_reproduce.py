"""`rearank-kit reproduce`: the paper's tables as benchmark lists, the offline listing, and a real
run (bundled model, a tiny benchmark registered as a table entry) compared with the paper."""

from __future__ import annotations

import json

import pytest

from rearank_kit import cli
from rearank_kit.core import env, metrics
from rearank_kit.core import records as data
from rearank_kit.core.errors import KitError
from rearank_kit.data import benchmarks
from rearank_kit.evaluation import paper, reproduce
from rearank_kit.evaluation.reproduce import TableEntry

TABLE1 = ["dl19", "dl20", "covid", "nfcorpus", "dbpedia", "scifact", "signal", "news", "robust04"]


def test_the_tables_are_the_papers():
    assert [e.dataset for e in reproduce.TABLES["Table 1"]] == TABLE1  # Touché is not in the paper's Table 1
    assert len(reproduce.TABLES["Table 2"]) == 12
    for table, entries in reproduce.TABLES.items():
        for system in ("BM25", "REARANK-7B"):  # every benchmark has both paper cells to compare with
            cells = paper.compare_with_paper({e.dataset: 0.5 for e in entries}, system=system, table=table)
            assert cells["paper"].notna().all(), (table, system, list(cells[cells["paper"].isna()]["dataset"]))
    assert reproduce.table_name(1) == reproduce.table_name("Table 1") == "Table 1"
    with pytest.raises(KitError, match="unknown table 3"):
        reproduce.table_name(3)


@pytest.fixture
def tiny_table(monkeypatch, sample_dir):
    """Table 1 made of the kit's sample (registered as dl19) and a benchmark that is not here."""
    entries = (TableEntry("dl19", (str(sample_dir),)), TableEntry("covid", ("no-such-benchmark",)))
    monkeypatch.setitem(reproduce.TABLES, "Table 1", entries)


def test_missing_benchmarks_stop_it_before_a_model_loads(tiny_table, tmp_path):
    # "no/such-model" would fail to load: the missing benchmark is reported first.
    with pytest.raises(KitError) as err:
        reproduce.reproduce(1, "no/such-model", tmp_path / "out")
    message = str(err.value)
    assert "Table 1: 1 of 2 benchmarks are not on this machine" in message
    assert "covid: no benchmark folder named no-such-benchmark" in message
    assert "available: dl19" in message and "--skip-missing" in message
    assert not (tmp_path / "out").exists()


def test_an_unknown_paper_system_stops_it_first(tiny_table, tmp_path):
    with pytest.raises(KitError, match="unknown system 'GPT-9'"):
        reproduce.reproduce(1, "no/such-model", tmp_path / "out", system="GPT-9", skip_missing=True)


def test_offline_it_lists_what_to_download_and_exits_2(run_cli, shared_data, tmp_path):
    if env.unreachable(["raw.githubusercontent.com", "huggingface.co"]) is None:
        pytest.skip("a network is reachable; the offline listing cannot be exercised here")
    proc = run_cli("reproduce", "--table", "1", "--model", "smollm2-135m", "--out", tmp_path / "out",
                   env={"REARANK_KIT_CACHE": str(tmp_path / "cache")})  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr
    assert "Table 1: 7 of 9 benchmarks are not on this machine" in err and "available: dl19, dl20" in err
    for name in ("covid", "nfcorpus", "dbpedia", "scifact", "signal", "news", "robust04"):
        assert f"  {name}: needs pyserini's topics and qrels" in err
    assert "beir-v1.0.0-signal1m-test" in err and "beir-v1.0.0-robust04.flat" in err
    assert str(tmp_path / "cache" / "benchmarks" / "beir__news-top100") in err
    assert "cannot be downloaded here (no network?)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_reproduce_reranks_evaluates_and_compares(tiny_table, sample_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["reproduce", "--table", "1", "--model", "smollm2-135m", "--out", str(out), "--top-k", "5",
                     "--window", "5", "--stride", "5", "--queries", "2", "--skip-missing", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "reproduce.json").read_text())
    assert report["table"] == "Table 1" and report["missing_queries"] == "zero" and report["queries"] == 2
    assert list(report["not_run"]) == ["covid"]
    (row,) = report["rows"]  # no BEIR mean: no BEIR set ran

    # The kit's numbers, evaluated again here from the files: the sample's first 2 queries, top 5.
    bench = benchmarks.load_benchmark(sample_dir, top_k=5).head(2)
    qrels = {r.query.qid: bench.qrels[r.query.qid] for r in bench.rankings}
    first = metrics.evaluate(bench.first_stage_run(), qrels).mean["nDCG@10"] * 100
    run = {q: {c.docid: -c.rank for c in cands} for q, cands in data.read_run(out / "dl19" / "run.trec").items()}
    reranked = metrics.evaluate(run, qrels).mean["nDCG@10"] * 100
    assert row["dataset"] == "dl19" and row["queries"] == 2
    assert row["bm25"] == pytest.approx(first) and row["reranked"] == pytest.approx(reranked)
    # ... beside the paper's, with the difference.
    bm25_paper, rearank_paper = paper.paper_value("dl19", "BM25", 1), paper.paper_value("dl19", "REARANK-7B", 1)
    assert row["bm25_paper"] == bm25_paper and row["paper"] == rearank_paper
    assert row["bm25_diff"] == pytest.approx(first - bm25_paper) and row["diff"] == pytest.approx(reranked - rearank_paper)

    assert json.loads((out / "dl19" / "manifest.json").read_text())["status"] == "done"
    assert json.loads((out / "manifest.json").read_text())["kind"] == "reproduce"
    assert (out / "comparison.csv").read_text().startswith("dataset,queries,bm25,bm25_paper,bm25_diff,reranked")
    assert "judged queries missing from the run count as 0 (trec_eval -c" in printed
    assert "Only the first 2 queries" in printed and "not run: covid: no benchmark folder" in printed
    assert f"{bm25_paper:.2f}" in printed and f"{rearank_paper:.2f}" in printed and f"{reranked - rearank_paper:+.2f}" in printed
