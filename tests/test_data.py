"""The data model and the four benchmark files: round trips, and every kind of bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rearank_kit.core import records as data
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.records import Benchmark, Candidate, Query, Ranking
from rearank_kit.data import benchmarks

# --- the data model -----------------------------------------------------------------------------


def test_defaults():
    c = Candidate("d1")
    assert (c.docid, c.text, c.rank, c.score) == ("d1", "", 0, 0.0)
    r = Ranking(Query("q1", "what"))
    assert r.candidates == [] and r.docids == []


def test_ranking_dict_round_trip_and_reordered():
    r = Ranking(Query("q1", "why is the sky blue"), [Candidate("a", "A", 1, 9.5), Candidate("b", "B", 2, 3.0)])
    back = Ranking.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert r.reordered([1, 0]).docids == ["b", "a"]
    assert r.docids == ["a", "b"]  # the original is untouched
    with pytest.raises(ValueError, match="permutation"):
        r.reordered([0, 0])


def test_from_dict_fills_candidate_defaults():
    r = Ranking.from_dict({"query": {"qid": "q", "text": "t"}, "candidates": [{"docid": "d"}]})
    assert r.candidates == [Candidate("d")]


_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1).filter(str.strip)
_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)


@given(st.lists(st.tuples(_ids, _text), min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_queries_round_trip(tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("q") / "queries.tsv"
    queries = [Query(qid, text.strip()) for qid, text in pairs]
    data.write_queries(queries, path)
    assert data.read_queries(path) == queries


@given(st.dictionaries(_ids, st.text(min_size=0, max_size=40), min_size=1, max_size=8))
def test_passages_round_trip(tmp_path_factory, passages):
    path = tmp_path_factory.mktemp("p") / "passages.jsonl"
    data.write_passages(passages, path)
    assert data.read_passages(path) == passages
    some = set(list(passages)[:1])
    assert data.read_passages(path, some) == {d: passages[d] for d in some}


def test_qrels_round_trip(tmp_path):
    qrels = {"q1": {"d1": 3, "d2": 0}, "q2": {"d9": 1}}
    data.write_qrels(qrels, tmp_path / "qrels.txt")
    assert data.read_qrels(tmp_path / "qrels.txt") == qrels


def test_trec_run_round_trip_keeps_order(tmp_path):
    rankings = [
        Ranking(Query("q1", "x"), [Candidate("c"), Candidate("a"), Candidate("b")]),
        Ranking(Query("q2", "y"), [Candidate("z")]),
    ]
    data.write_run(rankings, tmp_path / "run.trec", tag="t")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 c 1 3 t"
    back = data.read_run(tmp_path / "run.trec")
    assert {q: [c.docid for c in cs] for q, cs in back.items()} == {"q1": ["c", "a", "b"], "q2": ["z"]}
    assert [c.rank for c in back["q1"]] == [1, 2, 3]
    assert data.rankings_to_run(rankings)["q1"] == {"c": 3.0, "a": 2.0, "b": 1.0}


def test_read_run_orders_by_rank_column_not_file_order(tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 b 2 5.0 x\nq1 Q0 a 1 5.0 x\n")
    assert [c.docid for c in data.read_run(tmp_path / "run.trec")["q1"]] == ["a", "b"]


def test_rankings_jsonl_round_trip(tmp_path):
    rankings = [Ranking(Query("q1", "t"), [Candidate("d1", "text", 1, 2.5)])]
    data.write_rankings_jsonl(rankings, tmp_path / "r.jsonl")
    assert data.read_rankings_jsonl(tmp_path / "r.jsonl") == rankings


def test_save_and_load_benchmark_round_trip(sample_dir, tmp_path):
    bench = benchmarks.load_benchmark(sample_dir, top_k=5)
    benchmarks.save_benchmark(bench, tmp_path / "copy")
    back = benchmarks.load_benchmark(tmp_path / "copy", top_k=None)
    assert [r.docids for r in back.rankings] == [r.docids for r in bench.rankings]
    assert [c.text for c in back.rankings[0].candidates] == [c.text for c in bench.rankings[0].candidates]
    assert back.qrels == bench.qrels


def test_head_and_first_stage_run(sample_dir):
    bench = benchmarks.load_benchmark("sample", top_k=3)
    assert bench.path == sample_dir and len(bench.head(2).rankings) == 2
    assert all(len(scores) == 3 for scores in bench.first_stage_run().values())


# --- the sample benchmark is fit for purpose ----------------------------------------------------


def test_sample_benchmark_shape(sample_dir):
    bench = benchmarks.load_benchmark(sample_dir, top_k=None)
    assert len(bench.rankings) == 10
    for r in bench.rankings:
        assert len(r.candidates) == 20 and all(c.text for c in r.candidates)
        grades = bench.qrels[r.query.qid]
        assert sum(g >= 2 for g in grades.values()) >= 3, r.query.qid
        assert sum(g == 0 for g in grades.values()) >= 5, r.query.qid


# --- bad input: file and line named, nothing half written ---------------------------------------

BAD_LINES = [
    # file, line 2 replaced by, message fragment
    ("queries.tsv", "s02 no tab here", "expected 'qid<TAB>query text'"),
    ("queries.tsv", "s01\tduplicate id", "appears twice"),
    ("qrels.txt", "s01 0 s01-p01", "4 fields"),
    ("qrels.txt", "s01 0 s01-p01 high", "not an integer"),
    ("candidates.trec", "s01 Q0 s01-p01 1 4.5", "6 fields"),
    ("candidates.trec", "s01 Q0 s01-p01 first 4.5 bm25", "must be an integer"),
    ("candidates.trec", "s01 Q0 s01-p01 1 nan bm25", "not finite"),
    ("passages.jsonl", '{"docid": "x", "text": ', "invalid JSON"),
    ("passages.jsonl", '{"docid": "x"}', "'text' is missing"),
    ("passages.jsonl", '["x", "text"]', "'docid' field"),
]


@pytest.fixture
def sample_copy(sample_dir, tmp_path):
    dest = tmp_path / "bench"
    shutil.copytree(sample_dir, dest, ignore=shutil.ignore_patterns("source", "manifest.json"))
    return dest


@pytest.mark.parametrize(("filename", "bad", "fragment"), BAD_LINES)
def test_malformed_line_names_file_and_line(sample_copy, filename, bad, fragment):
    path = sample_copy / filename
    lines = path.read_text().splitlines()
    lines[1] = bad
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        benchmarks.load_benchmark(sample_copy)
    assert f"{path}:2:" in str(err.value) and fragment in str(err.value)


def test_not_utf8_names_file(sample_copy):
    (sample_copy / "queries.tsv").write_bytes(b"s01\t\xff\xfe bad bytes\n")
    with pytest.raises(DataError, match="queries.tsv:1: not UTF-8"):
        benchmarks.load_benchmark(sample_copy)


def test_candidate_without_text_names_docid(sample_copy):
    path = sample_copy / "passages.jsonl"
    kept = [line for line in path.read_text().splitlines() if '"s03-p01"' not in line]
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(DataError, match=r"no text for docid 's03-p01' \(candidate of query s03\)"):
        benchmarks.load_benchmark(sample_copy)


def test_run_query_not_in_queries(sample_copy):
    with open(sample_copy / "candidates.trec", "a") as fh:
        fh.write("zz9 Q0 s01-p01 1 1.0 x\n")
    with pytest.raises(DataError, match="not in queries.tsv: zz9"):
        benchmarks.load_benchmark(sample_copy)


def test_unknown_benchmark_lists_available(shared_data):
    with pytest.raises(KitError) as err:
        benchmarks.load_benchmark("dl99")
    message = str(err.value)
    assert "unknown benchmark 'dl99'" in message
    for name in ("dl19", "dl20", "dl21", "sample"):
        assert name in message


def test_folder_missing_files_names_them(tmp_path):
    (tmp_path / "queries.tsv").write_text("q\tx\n")
    with pytest.raises(KitError, match="missing qrels.txt, candidates.trec, passages.jsonl"):
        benchmarks.load_benchmark(tmp_path)


def test_retrieve_with_bad_queries_writes_nothing(run_cli, sample_dir, tmp_path):
    bad = tmp_path / "queries.tsv"
    bad.write_text("q1\tfine\nq2 missing the tab\n")
    out = tmp_path / "out"
    proc = run_cli("retrieve", "--passages", sample_dir / "source" / "collection.jsonl", "--queries", bad,
                   "--out", out, "--k", "5")
    assert proc.returncode == 2
    assert f"{bad}:2:" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_retrieve_with_bad_passages_writes_nothing(run_cli, sample_dir, tmp_path):
    bad = tmp_path / "collection.jsonl"
    bad.write_text('{"docid": "a", "text": "ok"}\n{"docid": "b"}\n')
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("retrieve", "--passages", bad, "--queries", sample_dir / "queries.tsv", "--out", out)
    assert proc.returncode == 2 and f"{bad}:2:" in proc.stderr
    assert list(out.iterdir()) == []


def test_benchmark_queries_property():
    bench = Benchmark("b", None, [Ranking(Query("q", "t"))], {})
    assert bench.queries == [Query("q", "t")] and bench.first_stage_run() == {"q": {}}
