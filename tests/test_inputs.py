"""One loader for every input: a benchmark (folder, name, remote id) or one's own TREC run with
its passages and queries; bad runs are refused with file and line, before anything is written."""

from __future__ import annotations

import json
import shutil

import pytest

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.data.inputs import load_input


@pytest.fixture
def own_run(tmp_path, sample_dir):
    """data/sample as one's own first stage: its run, passages and queries as three loose files."""
    for name in ("candidates.trec", "passages.jsonl", "queries.tsv", "qrels.txt"):
        shutil.copy(sample_dir / name, tmp_path / name)
    return tmp_path / "candidates.trec", tmp_path / "passages.jsonl", tmp_path / "queries.tsv", tmp_path / "qrels.txt"


def test_a_run_with_its_files_loads_like_the_benchmark_folder(own_run, sample_dir):
    run, passages, queries, qrels = own_run
    bench, fields = load_input(run=run, passages=passages, queries=queries, qrels=qrels, top_k=7)
    folder = load_benchmark(sample_dir, top_k=7)
    assert [r.query for r in bench.rankings] == [r.query for r in folder.rankings]
    assert [r.docids for r in bench.rankings] == [r.docids for r in folder.rankings]
    assert [[c.text for c in r.candidates] for r in bench.rankings] == [[c.text for c in r.candidates] for r in folder.rankings]
    assert bench.qrels == folder.qrels
    assert fields["data"] == "candidates" and len(fields["data_fingerprint"]) == 16
    assert fields["data_files"] == [str(run), str(passages), str(queries), str(qrels)]
    unjudged, _ = load_input(run=run, passages=passages, queries=queries)
    assert unjudged.qrels == {}


def test_a_folder_or_name_needs_no_fields(sample_dir):
    bench, fields = load_input("sample", top_k=3)
    assert fields == {} and bench.path == sample_dir and len(bench.rankings[0].candidates) == 3


def test_the_fingerprint_follows_the_files(own_run):
    run, passages, queries, _ = own_run
    before = load_input(run=run, passages=passages, queries=queries)[1]["data_fingerprint"]
    run.write_text(run.read_text().replace(" 1 4.5582 ", " 1 9.9 "))
    assert load_input(run=run, passages=passages, queries=queries)[1]["data_fingerprint"] != before


def test_a_docid_without_text_names_the_run_file_and_line(own_run):
    run, passages, queries, _ = own_run
    lines = run.read_text().splitlines(keepends=True)
    lines.insert(4, "s01 Q0 not-in-passages 5 3.0 mine\n")  # becomes line 5
    run.write_text("".join(lines))
    with pytest.raises(DataError) as err:
        load_input(run=run, passages=passages, queries=queries)
    message = str(err.value)
    assert message.startswith(f"{run}:5: docid 'not-in-passages' (query s01) has no passage text in {passages}")
    assert "--passages" in message


def test_a_query_missing_from_the_queries_file_names_the_line(own_run):
    run, passages, queries, _ = own_run
    queries.write_text("".join(line for line in queries.read_text().splitlines(keepends=True)
                               if not line.startswith("s03")))  # fmt: skip
    first_s03 = 1 + next(i for i, line in enumerate(run.read_text().splitlines()) if line.startswith("s03 "))
    with pytest.raises(DataError, match=rf"candidates.trec:{first_s03}: query 's03' is not in .*--queries-file"):
        load_input(run=run, passages=passages, queries=queries)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(data="sample", run="x.trec"), "--data and --run cannot be combined"),
        (dict(data="sample", qrels="q.txt"), "--data and --qrels cannot be combined"),
        (dict(run="x.trec"), "--run x.trec needs --passages and --queries-file"),
        (dict(run="x.trec", passages="p.jsonl"), "needs --queries-file"),
        (dict(), "no input: give --data"),
    ],
)
def test_incomplete_or_mixed_inputs_name_the_flags(kwargs, fragment):
    with pytest.raises(KitError, match=fragment):
        load_input(**kwargs)


def test_bad_run_lines_are_data_errors(own_run):
    run, passages, queries, _ = own_run
    run.write_text("s01 Q0 s01-p01 1 2.0 x\ns01 Q0 s01-p03 two 1.0 x\n")
    with pytest.raises(DataError, match=r"candidates.trec:2: "):
        load_input(run=run, passages=passages, queries=queries)
    run.write_text("\n")
    with pytest.raises(DataError, match="no lines"):
        load_input(run=run, passages=passages, queries=queries)


# --- the command line: nothing written on bad input ---------------------------------------------


@pytest.mark.parametrize("command", ["rerank", "augment"])
def test_cli_refuses_a_run_without_passage_text_and_writes_nothing(run_cli, own_run, tmp_path, command):
    run, passages, queries, qrels = own_run
    run.write_text(run.read_text() + "s02 Q0 ghost 99 0.1 mine\n")
    number = len(run.read_text().splitlines())
    out = tmp_path / "out"
    proc = run_cli(command, "--run", run, "--passages", passages, "--queries-file", queries, "--qrels", qrels,
                   "--out", out, "--top-k", "100", timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"{run}:{number}: docid 'ghost' (query s02) has no passage text" in proc.stderr and "--passages" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_cli_augment_from_a_run_needs_judgments(run_cli, own_run, tmp_path):
    run, passages, queries, _ = own_run
    proc = run_cli("augment", "--run", run, "--passages", passages, "--queries-file", queries,
                   "--out", tmp_path / "aug", timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "--run needs --qrels" in proc.stderr and not (tmp_path / "aug").exists()


def test_cli_augment_from_a_run(run_cli, own_run, tmp_path):
    run, passages, queries, qrels = own_run
    out = tmp_path / "aug"
    proc = run_cli("augment", "--run", run, "--passages", passages, "--queries-file", queries, "--qrels", qrels,
                   "--window", "5", "--samples-per-query", "3", "--top-k", "20", "--json", "--no-progress",
                   "--out", out, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["data"] == "candidates" and summary["queries"] == 10 and summary["sets_kept"] > 0
    assert (out / "sets.jsonl").is_file() and (out / "manifest.json").is_file()


def test_cli_ir_datasets_id_fails_fast_offline(run_cli, tmp_path):
    from rearank_kit.core import env

    if env.unreachable(["huggingface.co"]) is None:
        pytest.skip("a network is reachable; the offline path cannot be exercised here")
    out = tmp_path / "out"
    proc = run_cli("rerank", "--data", "msmarco-passage/trec-dl-2019/judged", "--out", out, timeout=300,
                   env={"REARANK_KIT_CACHE": str(tmp_path / "cache")})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "could not download msmarco-passage/trec-dl-2019/judged" in proc.stderr and "no network?" in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_cli_reranks_ones_own_run_and_guards_its_resume(run_cli, own_run, tmp_path):
    run, passages, queries, qrels = own_run
    out = tmp_path / "out"
    args = ["rerank", "--run", run, "--passages", passages, "--queries-file", queries, "--qrels", qrels,
            "--queries", "1", "--top-k", "3", "--max-new-tokens", "8", "--no-progress", "--json", "--out", out]
    proc = run_cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["data"] == "candidates" and summary["judged_queries"] == 1 and summary["model_calls"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_files"] == [str(run), str(passages), str(queries), str(qrels)]
    # Other first-stage data in the same folder is refused, not mixed in.
    run.write_text(run.read_text().replace("s01 Q0 s01-p01 1 ", "s01 Q0 s01-p01 9 "))
    refused = run_cli(*args, timeout=300)
    assert refused.returncode == 2 and "made differently" in refused.stderr and "data_fingerprint" in refused.stderr
