"""RankLLM's request/result files, both ways: round trips, RankLLM's own variants, bad records."""

from __future__ import annotations

import json
import re

import pytest

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import iter_jsonl
from rearank_kit.core.records import Candidate, Query, Ranking
from rearank_kit.data import rankllm
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank.backends import Generation
from rearank_kit.rank.run import rerank_benchmark
from rearank_kit.rank.settings import RerankConfig


class ReverseBackend:
    """Answers every window with its passages in reverse order (a scripted model)."""

    name, model_id = "scripted", "scripted-reverse"

    def generate(self, conversations, config, prefill=None):
        outs = []
        for conv in conversations:
            n = len(re.findall(r"^\[\d+\] ", conv[-1]["content"], re.M))  # compact lists "[i] text" per line
            outs.append(Generation((prefill or "") + " > ".join(f"[{i}]" for i in range(n, 0, -1))[1:] + "</answer>",
                                   10, 10, "stop"))  # fmt: skip
        return outs


def test_requests_round_trip_every_field(tmp_path, sample_dir):
    bench = load_benchmark(sample_dir, top_k=20)
    path = rankllm.write_rankllm(bench.rankings, tmp_path / "requests.jsonl")
    records = list(iter_jsonl(path))
    first = records[0]
    assert set(first) == {"query", "candidates"} and first["query"] == {"text": "why is the sky blue", "qid": "s01"}
    assert set(first["candidates"][0]) == {"docid", "score", "doc"} and first["candidates"][0]["score"] == 4.5582
    back = rankllm.read_rankllm(path)
    assert [r.query for r in back] == [r.query for r in bench.rankings]
    for got, want in zip(back, bench.rankings, strict=True):
        # docid, text, first-stage rank and score: every Candidate field survives
        assert [c.__dict__ for c in got.candidates] == [c.__dict__ for c in want.candidates]


def test_from_rankllm_to_a_benchmark_folder_and_back(tmp_path, sample_dir):
    bench = load_benchmark(sample_dir, top_k=20)
    path = rankllm.write_rankllm(bench.rankings, tmp_path / "requests.jsonl")
    folder = tmp_path / "bench"
    rankllm.rankllm_to_benchmark(path, folder, qrels=sample_dir / "qrels.txt")
    again = load_benchmark(folder, top_k=20)
    assert [r.query for r in again.rankings] == [r.query for r in bench.rankings]
    assert [[(c.docid, c.text, c.rank) for c in r.candidates] for r in again.rankings] == \
        [[(c.docid, c.text, c.rank) for c in r.candidates] for r in bench.rankings]  # fmt: skip
    assert again.qrels == bench.qrels
    assert json.loads((folder / "manifest.json").read_text())["source"] == "rankllm"
    with pytest.raises(KitError, match="not an empty folder"):
        rankllm.rankllm_to_benchmark(path, folder)


def test_rankllms_own_variants_are_read(tmp_path):
    """Integer ids, the doc fields RankLLM reads (segment, contents, title), a .json array,
    invocations_history and a null score."""
    records = [
        {"query": {"text": "cats", "qid": 7}, "candidates": [
            {"docid": 11, "score": 2.5, "doc": {"segment": "Cats purr.", "title": "Cats"}},
            {"docid": "d2", "score": None, "doc": {"contents": "Dogs bark."}},
        ], "invocations_history": [{"prompt": "...", "response": "[2] > [1]"}]},
        {"query": {"text": "tea", "qid": "q2"}, "candidates": [{"docid": "t1", "doc": {"body": "Tea."}}]},
    ]  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    first, second = rankllm.read_rankllm(path)
    assert first.query.qid == "7" and first.docids == ["11", "d2"]
    assert [c.text for c in first.candidates] == ["Cats Cats purr.", "Dogs bark."]
    assert [(c.rank, c.score) for c in first.candidates] == [(1, 2.5), (2, 0.0)]
    assert second.docids == ["t1"] and second.candidates[0].text == "Tea."


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"query": {"qid": "1"}, "candidates": []}', "needs 'qid' (string or integer) and 'text'"),
        ('{"query": {"qid": "1", "text": "x"}, "candidates": [{"score": 1}]}', "candidate 1 needs a 'docid'"),
        ('{"query": {"qid": "1", "text": "x"}, "candidates": [{"docid": "a", "doc": {"url": "u"}}]}',
         "candidate 1: field 'doc' has no text"),
        ('{"query": {"qid": "1", "text": "x"}, "candidates": [{"docid": "a", "doc": {"text": "t"}}, '
         '{"docid": "a", "doc": {"text": "t"}}]}', "docid 'a' appears twice"),
        ('{"query": {"qid": "1", "text": "x"}, "candidates": [{"docid": "a", "score": "high", "doc": {"text": "t"}}]}',
         "score 'high' is not a finite number"),
        ('["not", "a", "record"]', "expected a JSON object"),
        ('{"query": {"qid": "1", "text": "x"}, "candidates": []}', "query '1' has no candidates"),
        ('{"query": {"qid": "1", "text": "x"}}', "field 'candidates' is missing"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, line, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": {"qid": "0", "text": "fine"}, "candidates": [{"docid": "z", "doc": {"text": "t"}}]}\n'
                    + line + "\n")
    with pytest.raises(DataError) as err:
        rankllm.read_rankllm(path)
    assert f"{path}:2" in str(err.value) and fragment in str(err.value)


def test_a_repeated_query_is_refused(tmp_path):
    path = tmp_path / "twice.jsonl"
    one = '"candidates": [{"docid": "a", "doc": {"text": "t"}}]'
    path.write_text(f'{{"query": {{"qid": "1", "text": "x"}}, {one}}}\n{{"query": {{"qid": 1, "text": "x"}}, {one}}}\n')
    with pytest.raises(DataError, match=r"twice.jsonl:2: query '1' appears twice"):
        rankllm.read_rankllm(path)


def test_a_rerank_run_becomes_rankllm_results(tmp_path):
    rankings = [Ranking(Query(q, f"query {q}"), [Candidate(f"{q}-d{i}", f"passage {i}", i + 1) for i in range(n)])
                for q, n in (("a", 3), ("b", 2))]  # fmt: skip
    config = RerankConfig(top_k=10, window=5, step=3, template="compact", max_new_tokens=16)
    run = rerank_benchmark(rankings, ReverseBackend(), config, tmp_path / "run", progress=False)
    results = rankllm.read_rerank_run(tmp_path / "run")
    assert [r.docids for r in results] == [r.docids for r in run.rankings] == [["a-d2", "a-d1", "a-d0"], ["b-d1", "b-d0"]]
    path = rankllm.write_rankllm(results, tmp_path / "results.jsonl", scores="rank")
    scores = [[c["score"] for c in rec["candidates"]] for rec in iter_jsonl(path)]
    assert scores == [[3.0, 2.0, 1.0], [2.0, 1.0]]  # decreasing: trec_eval keeps the reranked order
    with pytest.raises(KitError, match="not a rerank run folder"):
        rankllm.read_rerank_run(tmp_path)


# --- rearank-kit convert ------------------------------------------------------------------------


def test_convert_cli_both_ways(run_cli, tmp_path, sample_dir):
    requests = tmp_path / "sample.requests.jsonl"
    proc = run_cli("convert", "--to", "rankllm", "--data", "sample", "--top-k", "5", "--out", requests, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"out": str(requests), "format": "RankLLM requests (first-stage order)",
                                       "num_queries": 10}  # fmt: skip
    assert all(len(rec["candidates"]) == 5 for rec in iter_jsonl(requests))
    folder = tmp_path / "from-rankllm"
    proc = run_cli("convert", "--from", "rankllm", requests, "--out", folder, "--qrels", sample_dir / "qrels.txt")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "10 queries" in proc.stdout
    # The folder is a benchmark: its first stage evaluates like the sample's own top 5.
    ours = run_cli("eval", "--data", folder, "--json", "--measures", "nDCG@5")
    theirs = run_cli("eval", "--data", "sample", "--json", "--measures", "nDCG@5")
    assert json.loads(ours.stdout)["measures"] == json.loads(theirs.stdout)["measures"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from", "rankllm", "--out", "x"], "--from rankllm needs FILE"),
        (["--from", "rankllm", "f.jsonl", "--data", "sample", "--out", "x"], "--data are for --to"),
        (["--to", "rankllm", "f.jsonl", "--data", "sample", "--out", "x"], "FILE (f.jsonl) is for --from"),
        (["--to", "rankllm", "--out", "x.jsonl"], "no input: give --data"),
        (["--from", "rankllm", "missing.jsonl", "--out", "x"], "missing.jsonl: cannot read"),
    ],
)
def test_convert_cli_bad_input(run_cli, tmp_path, args, fragment):
    proc = run_cli("convert", *[a.replace("x", str(tmp_path / "x")) if a.startswith("x") else a for a in args])
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.jsonl").exists()
