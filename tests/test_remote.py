"""Remote benchmarks, offline: BEIR passages as the authors build them, BEIR, BRIGHT and ir_datasets ids, the
authors' BRIGHT BM25 runs read from local files, and the offline failure messages."""

from __future__ import annotations

import json
import time

import pytest

from rearank_kit.core import env
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.data import benchmarks, remote
from rearank_kit.data.bright import bright_run_files, load_bright_run

# --- BEIR passages: "Title: {title} Content: {text}", the empty-title prefix removed -------------

BEIR_PASSAGES = [
    # title, text, what the authors' rank_gpt.py shows the model
    ("Mask study", "Masks  reduce\n the spread.", "Title: Mask study Content: Masks reduce the spread."),
    ("", "Body only.", "Body only."),  # empty title: "Title: Content: " removed
    ("   ", "Body only.", "Body only."),  # a blank title collapses to the same prefix
    (None, "Body only.", "Body only."),
    ("T", "", "Title: T Content:"),  # collapsing drops the trailing space
    ("", "", "Title: Content:"),  # no trailing space, so their replace does not match either
    ("", "See Title: Content: here", "See here"),  # their str.replace removes every occurrence
]


@pytest.mark.parametrize(("title", "text", "expected"), BEIR_PASSAGES)
def test_beir_passage_as_the_authors_build_it(title, text, expected):
    assert remote.beir_passage(title, text) == expected


RAW_DOCS = [
    # searcher.doc(docid).raw() of a pyserini prebuilt index -> passage text
    ('{"_id": "d1", "title": "Covid vaccines", "text": "mRNA  vaccines\\twork."}',
     "Title: Covid vaccines Content: mRNA vaccines work."),
    ('{"_id": "d2", "title": "", "text": "An untitled news story."}', "An untitled news story."),
    ('{"id": "7", "contents": "An MS MARCO passage."}', "An MS MARCO passage."),
    ("not json", "not json"),
]


@pytest.mark.parametrize(("raw", "expected"), RAW_DOCS)
def test_lucene_documents_become_passages(raw, expected):
    assert remote._doc_text(raw) == expected


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "short"),
    [("beir/signal", "signal"), ("beir/signal1m", "signal"), ("BEIR:trec-news", "news"), ("beir/covid", "covid"),
     ("beir/trec-covid", "covid"), ("beir/robust04", "robust04"), ("beir/webis-touche2020", "touche"),
     ("beir/scifact/test", None), ("beir/fiqa", None), ("signal", None)],
)  # fmt: skip
def test_beir_set_names(name, short):
    assert remote.beir_set(name) == short


def test_the_papers_seven_beir_sets_without_touche():
    assert remote.PAPER_BEIR == ("covid", "nfcorpus", "dbpedia", "scifact", "signal", "news", "robust04")
    assert "touche" in remote.BEIR_SETS and "touche" not in remote.PAPER_BEIR  # an extra, still loadable
    assert remote.is_remote_id("beir/signal") and remote.is_remote_id("beir/news")


def test_aliases_share_one_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path))
    assert remote.cache_folder("beir/trec-covid") == remote.cache_folder("beir/covid") == (
        tmp_path / "benchmarks" / "beir__covid-top100")
    assert remote.cache_folder("beir/signal1m", top_k=20).name == "beir__signal-top20"


def test_unknown_beir_set_needs_no_network():
    with pytest.raises(KitError, match="unknown BEIR set 'fiqa'; known: covid, nfcorpus"):
        remote.load_beir("fiqa")


# --- offline: fail fast, say what to download and where to put it -------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Skip where a network is reachable: these tests are about the machine without one."""
    if env.unreachable(["raw.githubusercontent.com", "huggingface.co"]) is None:
        pytest.skip("a network is reachable; the fail-fast path cannot be exercised here")
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REARANK_KIT_BRIGHT", str(tmp_path / "no-bright"))


# Every loader that needs a network, with what its message must name besides the common advice.
REMOTE_CALLS = [
    (remote.load_beir, ("signal",), ["could not download BEIR", "raw.githubusercontent.com",
                                     "through pyserini (topics and qrels beir-v1.0.0-", "-test, index beir-v1.0.0-"]),
    (remote.load_beir, ("beir/trec-news",), ["could not download BEIR"]),
    (remote.resolve_any, ("beir/robust04",), ["could not download BEIR"]),
    (remote.load_bright, ("biology",), ["could not download"]),
    (remote.load_ir_dataset, ("msmarco-passage/trec-dl-2019/judged",), ["could not download"]),
    (remote.load_ir_dataset, ("beir/trec-covid",), ["could not download"]),
    (remote.load_any, ("bright/pony",), ["could not download"]),
    (remote.resolve_any, ("beir/scifact/test",), ["could not download"]),
]  # fmt: skip


@pytest.mark.parametrize(("fn", "args", "words"), REMOTE_CALLS)
def test_remote_loaders_fail_fast_offline_with_local_advice(offline, fn, args, words):
    start = time.monotonic()
    with pytest.raises(KitError) as err:
        fn(*args)
    assert time.monotonic() - start < 30  # a guard against minutes of retries, not a benchmark
    message = str(err.value)
    assert all(w in message for w in words) and "no network?" in message
    assert "benchmark folder with the four files" in message and "REARANK_KIT_DATA" in message


def test_source_hints_say_what_and_where(offline, tmp_path):
    hint = remote.source_hint("beir/signal", local_name="signal")
    assert "beir-v1.0.0-signal1m-test" in hint and "beir-v1.0.0-signal1m.flat" in hint
    assert "`rearank-kit eval --data beir/signal`" in hint
    assert str(tmp_path / "cache" / "benchmarks" / "beir__signal-top100") in hint and "as signal into" in hint
    hint = remote.source_hint("bright/biology")
    assert str(tmp_path / "no-bright") in hint and "runs_bm25/bm25.biology.filtered.trec" in hint
    assert "local bm25s first stage (which can differ from the paper's)" in hint
    assert "msmarco-v1-passage" in remote.source_hint("msmarco-passage/trec-dl-2019/judged")


def test_eval_of_a_beir_id_offline_exits_2_without_traceback(offline, run_cli, tmp_path):
    proc = run_cli("eval", "--data", "beir/signal", env={"REARANK_KIT_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "could not download BEIR signal" in proc.stderr


# --- remote ids: what needs no network ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("bright/biology", True), ("bright:leetcode", True), ("bright/chemistry", False),
     ("beir/trec-covid", True), ("msmarco-passage/trec-dl-2019/judged", True), ("dl19", False),
     ("data/sample", False), ("no/such-dataset", False)],
)
def test_is_remote_id(name, expected):
    assert remote.is_remote_id(name) is expected


@pytest.mark.parametrize(
    ("dataset_id", "index"),
    [("msmarco-passage/trec-dl-2020/judged", "msmarco-v1-passage"),
     ("msmarco-passage-v2/trec-dl-2021/judged", "msmarco-v2-passage"),
     ("beir/trec-covid", "beir-v1.0.0-trec-covid.flat"), ("beir/scifact/test", "beir-v1.0.0-scifact.flat"),
     ("beir/cqadupstack/android", "beir-v1.0.0-cqadupstack-android.flat")],
)
def test_prebuilt_index_for(dataset_id, index):
    assert remote.prebuilt_index_for(dataset_id) == index


def test_remote_id_errors_need_no_network():
    with pytest.raises(KitError, match="no pyserini prebuilt index"):
        remote.prebuilt_index_for("antique/test")
    with pytest.raises(KitError, match="tasks: biology, earth_science"):
        remote.load_bright("chemistry")
    with pytest.raises(KitError, match="Remote ids .* look like bright/biology"):
        remote.load_any("no-such-benchmark")


def test_load_any_reads_local_benchmarks(sample_dir):
    assert len(remote.load_any("sample", top_k=4).rankings[0].candidates) == 4
    assert remote.resolve_any(sample_dir) == sample_dir


# --- BRIGHT: the authors' precomputed BM25 run, from local files --------------------------------

RUN_LINES = [  # pony: q1 ranks d3, d9 (not in the corpus: dropped), d1, d2; q2 ranks d2, d1
    "q1 Q0 d3 1 9.5 bm25", "q1 Q0 d9 2 9.0 bm25", "q1 Q0 d1 3 8.0 bm25", "q1 Q0 d2 4 7.0 bm25",
    "q2 Q0 d2 1 5.0 bm25", "q2 Q0 d1 2 4.0 bm25",
]  # fmt: skip


def write_bright_fixture(root, task="pony", corpus=None):
    """A made-up task in the authors' layout (bright.bright_run_files)."""
    files = bright_run_files(task, root)
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    files["queries"].write_text("q1\thow do I declare an actor\nq2\twhat is a capability\n")
    files["qrels"].write_text("q1 0 d1 1\nq2 0 d2 1\nq3 0 d3 1\n")  # q3: judged, never retrieved
    corpus = corpus or [{"id": f"d{i}", "contents": f"made-up document {i}"} for i in (1, 2, 3)]
    files["corpus"].write_text("".join(json.dumps(r) + "\n" for r in corpus))
    files["run"].write_text("\n".join(RUN_LINES) + "\n")
    return files


def test_load_bright_run_reads_the_authors_layout(tmp_path):
    write_bright_fixture(tmp_path)
    bench = load_bright_run("pony", top_k=2, root=tmp_path)
    assert [r.query.qid for r in bench.rankings] == ["q1", "q2"]
    q1 = bench.rankings[0]
    assert q1.query.text == "how do I declare an actor"
    assert q1.docids == ["d3", "d1"]  # d9 is not in the corpus: dropped, ranks renumbered, top 2 kept
    assert [c.rank for c in q1.candidates] == [1, 2] and q1.candidates[1].text == "made-up document 1"
    assert bench.qrels["q3"] == {"d3": 1}


def test_load_bright_run_names_what_is_wrong(tmp_path):
    with pytest.raises(KitError, match=r"BRIGHT pony: missing .*pyserini_queries/pony.tsv.*REARANK_KIT_BRIGHT"):
        load_bright_run("pony", root=tmp_path)
    files = write_bright_fixture(tmp_path, corpus=[{"id": "d1", "contents": "x"}, {"id": "d2", "text": "y"}])
    with pytest.raises(DataError, match=rf"{files['corpus']}:2: expected"):
        load_bright_run("pony", root=tmp_path)
    with pytest.raises(KitError, match="unknown BRIGHT task 'chemistry'"):
        load_bright_run("chemistry", root=tmp_path)


def test_bright_ids_prefer_the_authors_runs_offline(monkeypatch, tmp_path, run_cli):
    runs, cache = tmp_path / "bright", tmp_path / "cache"
    write_bright_fixture(runs)
    monkeypatch.setenv("REARANK_KIT_BRIGHT", str(runs))
    monkeypatch.setenv("REARANK_KIT_CACHE", str(cache))
    assert remote.hosts_for("bright/pony") == ()  # nothing to download
    folder = remote.resolve_any("bright/pony", top_k=3)
    assert folder == cache / "benchmarks" / "bright__pony__authors-bm25-top3"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"] == "the authors' BM25 run" and manifest["task"] == "pony"
    bench = benchmarks.load_benchmark(folder, top_k=3)
    assert bench.rankings[0].docids == ["d3", "d1", "d2"]
    assert not any(p.name.endswith(".tmp") for p in folder.parent.iterdir())  # built beside, published whole
    # The command line finds the same folder, offline; q3 (judged, not retrieved) counts as 0.
    proc = run_cli("eval", "--data", "bright/pony", "--json", "--measures", "RR@10",
                   env={"REARANK_KIT_BRIGHT": str(runs), "REARANK_KIT_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["missing"] == ["q3"] and out["measures"]["RR@10"] == pytest.approx((1 / 2 + 1 / 1 + 0) / 3)
