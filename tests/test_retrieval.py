"""BM25 retrieval (bm25s and real Lucene through pyserini) and the retrieve command; remote benchmarks are tests/test_remote.py's."""

from __future__ import annotations

import json

import pytest

from rearank_kit.core import records as data
from rearank_kit.core.errors import KitError
from rearank_kit.core.records import Query
from rearank_kit.data import benchmarks, retrieval


@pytest.fixture(scope="module")
def collection(sample_dir):
    src = sample_dir / "source"
    return data.read_passages(src / "collection.jsonl"), data.read_queries(src / "queries.tsv")


@pytest.fixture(scope="module")
def both_backends(collection):
    passages, queries = collection
    return {b: retrieval.bm25_search(passages, queries, k=20, backend=b, progress=False) for b in retrieval.BACKENDS}


# --- the analyzer -------------------------------------------------------------------------------

ANALYZER_CASES = [
    ("The dog's bones", ["dog", "bone"]),  # possessive and stopword removed, stemmed
    ("US citizens", ["us", "citizen"]),  # words of two letters are not stemmed (Lucene)
    ("4,000 metres and 3.14", ["4,000", "metr", "3.14"]),  # numbers keep their separators
    ("well-known", ["well", "known"]),  # hyphens split
    ("biology astrology", ["biologi", "astrolog"]),  # Porter's 'logi' rule needs m > 0
    ("assembly incredibly", ["assembl", "incred"]),  # Porter's 'bli' rule
    ("a:b intercourse.3", ["a:b", "intercours", "3"]),  # ':' joins letters, '.' needs the same kind
    ("To be or not to be", []),  # only stopwords
    ("", []),
]


@pytest.mark.parametrize(("text", "terms"), ANALYZER_CASES)
def test_analyze(text, terms):
    assert retrieval.analyze(text) == terms


def test_analyzer_matches_lucene_on_sample(collection):
    """The bm25s backend's terms are Anserini's default English analyzer's terms."""
    passages, queries = collection
    retrieval.start_jvm()
    from pyserini.analysis import Analyzer, get_lucene_analyzer

    lucene = Analyzer(get_lucene_analyzer())
    texts = [q.text for q in queries] + list(passages.values())
    assert [retrieval.analyze(t) for t in texts] == [lucene.analyze(t) for t in texts]


def test_pyserini_import_leaves_no_dummy_openai_key(tmp_path):
    """pyserini's import needs an OPENAI_API_KEY; the dummy one set for it must not stay behind,
    or the openai backend's missing-key check would pass with a fake key (a fresh interpreter,
    so that pyserini is really imported here)."""
    import os
    import subprocess
    import sys

    code = (
        "import os\n"
        "from rearank_kit.data import retrieval\n"
        "from rearank_kit.rank.backends import load_backend\n"
        "from rearank_kit.core.errors import KitError\n"
        "searcher_class = retrieval.import_pyserini().LuceneSearcher\n"
        "print('key left:', 'OPENAI_API_KEY' in os.environ)\n"
        "try:\n"
        "    load_backend('openai', model='gpt-x')\n"
        "except KitError as exc:\n"
        "    print('backend:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "key left: False" in proc.stdout
    assert "backend: the openai backend needs an API key" in proc.stdout
    # A key the user set is left as it was.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**env, "OPENAI_API_KEY": "sk-mine"})  # fmt: skip
    assert "key left: True" in proc.stdout and "backend:" not in proc.stdout


# --- the two backends ---------------------------------------------------------------------------


def test_bm25s_and_pyserini_agree_on_sample(both_backends):
    a, b = both_backends["bm25s"], both_backends["pyserini"]
    for ra, rb in zip(a, b, strict=True):
        assert ra.docids == rb.docids, ra.query.qid
        for ca, cb in zip(ra.candidates, rb.candidates, strict=True):
            # Lucene stores document lengths in one byte: scores agree to about 0.1%.
            assert ca.score == pytest.approx(cb.score, rel=5e-3)
            assert ca.text == cb.text and ca.rank == cb.rank


def test_sample_candidates_are_the_kits_bm25(both_backends, sample_dir):
    """data/sample/candidates.trec is what `rearank-kit retrieve --k 20` produces (see its README)."""
    shipped = data.read_run(sample_dir / "candidates.trec")
    for r in both_backends["bm25s"]:
        assert [c.docid for c in shipped[r.query.qid]] == r.docids
        assert [c.score for c in shipped[r.query.qid]] == pytest.approx([c.score for c in r.candidates], abs=1e-4)


def test_search_edge_cases():
    passages = {"a": "red apples and green pears", "b": "green tea", "c": "the of and"}
    queries = [Query("q1", "green"), Query("q2", "zebra crossing"), Query("q3", "the")]
    r1, r2, r3 = retrieval.bm25_search(passages, queries, k=5, progress=False)
    assert r1.docids == ["b", "a"]  # shorter document first; unmatched documents are not returned
    assert r2.candidates == [] and r3.candidates == []
    assert [c.rank for c in r1.candidates] == [1, 2] and r1.candidates[0].text == "green tea"
    tied = retrieval.bm25_search({"x": "same words", "y": "same words"}, [Query("q", "words")], progress=False)
    assert tied[0].docids == ["x", "y"]  # ties keep collection order, like Lucene


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"backend": "elastic"}, "unknown retrieval backend"), ({"k": 0}, "k must be at least 1")],
)
def test_search_bad_arguments(kwargs, fragment):
    with pytest.raises(KitError, match=fragment):
        retrieval.bm25_search({"a": "x"}, [Query("q", "x")], **kwargs)


def test_empty_collection_is_an_error():
    with pytest.raises(KitError, match="collection is empty"):
        retrieval.bm25_search({}, [Query("q", "x")])


# --- the retrieve command, end to end -----------------------------------------------------------


@pytest.mark.parametrize("backend", retrieval.BACKENDS)
def test_retrieve_cli_end_to_end(run_cli, sample_dir, tmp_path, backend):
    src = sample_dir / "source"
    out = tmp_path / "bench"
    proc = run_cli("retrieve", "--passages", src / "collection.jsonl", "--queries", src / "queries.tsv",
                   "--qrels", src / "qrels.txt", "--out", out, "--k", "7", "--backend", backend, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    bench = benchmarks.load_benchmark(out, top_k=None)
    assert [len(r.candidates) for r in bench.rankings] == [7] * 10
    retrieved = {d for r in bench.rankings for d in r.docids}
    assert set(data.read_passages(out / "passages.jsonl")) == retrieved  # only the candidates
    assert bench.qrels == data.read_qrels(src / "qrels.txt")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "retrieve" and manifest["backend"] == backend and manifest["k"] == 7
    evaluated = run_cli("eval", "--data", out, "--json")
    assert json.loads(evaluated.stdout)["num_queries"] == 10


def test_retrieve_cli_without_qrels_writes_empty_qrels(run_cli, sample_dir, tmp_path):
    out = tmp_path / "bench"
    proc = run_cli("retrieve", "--passages", sample_dir / "passages.jsonl", "--queries", sample_dir / "queries.tsv",
                   "--out", out, "--k", "3", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (out / "qrels.txt").read_text().strip() == ""
    assert len(data.read_run(out / "candidates.trec")) == 10
