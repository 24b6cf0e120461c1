"""The kit replaces only what it wrote (``files.foreign_entry`` and the checks built on it).

The rule, table-driven, then each command with an output folder: an earlier output of its own is
replaced (``--overwrite``, or by ``retrieve`` itself), a file the kit did not write is refused and
survives, byte for byte. The refusals of every command are also rows of ``tests/test_faults.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import (
    check_replaceable,
    check_run_folder,
    check_writable,
    foreign_entry,
    publish_folder,
    staged_folder,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
THESIS = "\\chapter{Results}\n"


def make(folder: Path, files: dict[str, str | dict | None]) -> Path:
    """``folder`` with ``files``: name -> text, a JSON record (dict), or None for a subfolder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is None:
            (folder / name).mkdir()
        else:
            (folder / name).write_text(json.dumps(content) if isinstance(content, dict) else content)
    return folder


# --- the rule -----------------------------------------------------------------------------------------

AUGMENT = ("dataset", "sets.jsonl", "summary.json", "manifest.json")
RULE = [
    # files in the folder, the kind about to be written, None (replaceable) or a word of the refusal
    ({}, "augment", None),  # empty
    ({"manifest.json": {"kind": "augment"}, "sets.jsonl": "", "dataset": None}, "augment", None),
    ({"manifest.json": {"kind": "augment"}, ".sets.jsonl.x1.tmp": ""}, "augment", None),  # a kit write cut short
    ({"thesis.tex": THESIS}, "augment", "'thesis.tex', which rearank-kit did not write"),
    ({"manifest.json": {"kind": "augment"}, "sets.jsonl": "", "thesis.tex": THESIS}, "augment", "'thesis.tex'"),
    ({"manifest.json": {"kind": "train"}, "checkpoint-1": None}, "augment", "output of rearank-kit train"),
    ({"manifest.json": {"no": "kind"}, "sets.jsonl": ""}, "augment", "'manifest.json', which rearank-kit did not"),
    ({"manifest.json": "not json", "sets.jsonl": ""}, "augment", "did not write"),  # not a record
    ({"rearank_kit.json": {"kind": "export", "files": ["model.safetensors"]}, "model.safetensors": ""}, "export", None),
    ({"rearank_kit.json": {"template": "compact"}, "config.json": ""}, "export", "'config.json'"),  # old, no list
    ({"rearank_kit.json": {"kind": "export", "files": []}, "notes.txt": ""}, "export", "'notes.txt'"),
]


@pytest.mark.parametrize(("files", "kind", "refusal"), RULE)
def test_what_may_be_replaced(tmp_path, files, kind, refusal):
    folder = make(tmp_path / "out", files)
    names = AUGMENT if kind == "augment" else ()
    problem = foreign_entry(folder, kind, names)
    assert (problem is None) if refusal is None else (refusal in problem), problem
    assert foreign_entry(tmp_path / "absent", kind) is None


def test_the_kits_cache_is_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path / "cache"))
    folder = make(tmp_path / "cache" / "models" / "bundled", {"config.json": "{}"})  # a checkpoint: no record
    assert foreign_entry(folder, None) is None


def test_publish_refuses_a_foreign_folder_and_touches_nothing(tmp_path):
    target = make(tmp_path / "out", {"thesis.tex": THESIS})
    with staged_folder(target) as tmp:
        make(tmp, {"manifest.json": {"kind": "augment"}, "sets.jsonl": ""})
        with pytest.raises(KitError, match=r"out: holds 'thesis.tex'.*left as it is"):
            publish_folder(tmp, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the stage is gone, nothing else appeared
    assert [p.name for p in target.iterdir()] == ["thesis.tex"] and (target / "thesis.tex").read_text() == THESIS


def test_publish_replaces_an_earlier_output_of_the_same_kind(tmp_path):
    target = make(tmp_path / "out", {"manifest.json": {"kind": "augment"}, "sets.jsonl": "old"})
    with staged_folder(target) as tmp:
        make(tmp, {"manifest.json": {"kind": "augment"}, "sets.jsonl": "new", "summary.json": "{}"})
        publish_folder(tmp, target)
    assert (target / "sets.jsonl").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(KitError, match="--out .*out: is the output of rearank-kit augment"):
        check_replaceable(target, "convert", label="--out ")


def test_a_run_folder_is_new_empty_or_its_own(tmp_path):
    check_run_folder(tmp_path / "absent", "train")
    check_run_folder(make(tmp_path / "empty", {}), "train")
    own = make(tmp_path / "own", {"manifest.json": {"kind": "train"}, "notes.txt": "mine"})
    check_run_folder(own, "train")  # resumed; the files beside it are left alone
    with pytest.raises(KitError, match="'thesis.tex', which rearank-kit did not write.*nothing was written"):
        check_run_folder(make(tmp_path / "thesis", {"thesis.tex": THESIS}), "train", label="--out ")
    with pytest.raises(KitError, match="exists and is not a folder"):
        check_run_folder(own / "notes.txt", "train")
    # reproduce writes its record at the end: before that its folder holds only rerank run folders
    started = make(tmp_path / "table", {"dl19": None})
    make(started / "dl19", {"manifest.json": {"kind": "rerank"}})
    check_run_folder(started, "reproduce", parts=("rerank",))
    (started / "comparison.csv").write_text("")  # killed between its last two writes
    check_run_folder(started, "reproduce", parts=("rerank",), names=("comparison.csv",))
    (started / "thesis.tex").write_text(THESIS)
    with pytest.raises(KitError, match="'thesis.tex'.*not a reproduce output"):
        check_run_folder(started, "reproduce", parts=("rerank",), names=("comparison.csv",))


def test_check_writable_probes_the_nearest_existing_folder(tmp_path):
    check_writable(tmp_path / "not" / "yet" / "there")  # tmp_path takes a file: fine
    assert [p.name for p in tmp_path.iterdir()] == []  # the probe leaves nothing
    (tmp_path / "file").write_text("x")
    with pytest.raises(KitError, match="exists and is not a folder"):
        check_writable(tmp_path / "file" / "out")


# --- each command: its own output replaced, a foreign file kept ------------------------------------------


def test_augment_replaces_its_own_output_only(run_cli, tmp_path):
    out = tmp_path / "aug"
    args = ("augment", "--data", "sample", "--window", "5", "--samples-per-query", "2", "--no-progress", "--out", out)
    assert run_cli(*args).returncode == 0
    proc = run_cli(*args, "--overwrite", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1  # replaced
    (out / "notes.txt").write_text("mine")
    proc = run_cli(*args, "--overwrite")
    assert proc.returncode == 2 and "'notes.txt'" in proc.stderr
    assert (out / "notes.txt").read_text() == "mine" and json.loads((out / "manifest.json").read_text())["seed"] == 1


def test_convert_replaces_its_own_outputs_only(run_cli, tmp_path):
    requests = tmp_path / "requests.jsonl"
    to = ("convert", "--to", "rankllm", "--data", "sample", "--top-k", "3", "--out", requests)
    assert run_cli(*to).returncode == 0
    assert run_cli(*to).returncode == 2  # exists: --overwrite needed
    assert run_cli(*to, "--overwrite").returncode == 0  # a RankLLM file is replaced
    folder = tmp_path / "bench"
    back = ("convert", "--from", "rankllm", requests, "--out", folder)
    assert run_cli(*back).returncode == 0
    assert run_cli(*back, "--overwrite").returncode == 0
    (folder / "thesis.tex").write_text(THESIS)
    proc = run_cli(*back, "--overwrite")
    assert proc.returncode == 2 and "'thesis.tex'" in proc.stderr and (folder / "thesis.tex").read_text() == THESIS
    assert sorted(p.name for p in folder.iterdir()) == ["candidates.trec", "manifest.json", "passages.jsonl",
                                                        "qrels.txt", "queries.tsv", "thesis.tex"]  # fmt: skip


def test_retrieve_replaces_its_own_output_only(run_cli, tmp_path):
    out = tmp_path / "bench"
    args = ("retrieve", "--passages", SAMPLE / "passages.jsonl", "--queries-file", SAMPLE / "queries.tsv",
            "--no-progress", "--out", out)  # fmt: skip
    assert run_cli(*args, "--top-k", "3").returncode == 0
    proc = run_cli(*args, "--top-k", "4")  # an earlier retrieve output is replaced, as documented
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["k"] == 4
    (out / "thesis.tex").write_text(THESIS)
    proc = run_cli(*args, "--top-k", "5")
    assert proc.returncode == 2 and "'thesis.tex'" in proc.stderr
    assert (out / "thesis.tex").read_text() == THESIS and json.loads((out / "manifest.json").read_text())["k"] == 4


def test_rerank_overwrite_deletes_only_its_own_files(tmp_path):
    from rearank_kit.core.records import Candidate, Query, Ranking
    from rearank_kit.rank.backends import Generation
    from rearank_kit.rank.run import rerank_benchmark
    from rearank_kit.rank.settings import RerankConfig

    class Reverse:
        name, model_id = "scripted", "scripted-reverse"

        def generate(self, conversations, config, prefill=None):
            return [Generation((prefill or "") + "3] > [2] > [1]</answer>", 10, 5, "stop") for _ in conversations]

    rankings = [Ranking(Query("q", "query"), [Candidate(f"d{i}", f"passage {i}", i + 1) for i in range(3)])]
    config = RerankConfig(top_k=3, window=3, template="compact", max_new_tokens=8)
    out = make(tmp_path / "run", {"thesis.tex": THESIS})
    rerank_benchmark(rankings, Reverse(), config, out, progress=False)
    rerank_benchmark(rankings, Reverse(), config, out, overwrite=True, progress=False)
    assert (out / "thesis.tex").read_text() == THESIS and (out / "run.trec").is_file()


@pytest.mark.parametrize(
    ("command", "kind"),
    [(["train", "--data", "{tmp}/aug"], "train"), (["sft", "--data", "{tmp}/aug"], "train"),
     (["evaluate-sets", "--sets", "{tmp}/aug"], "evaluate-sets"),
     (["reproduce", "--table", "1", "--model", "m"], "reproduce")],
    ids=["train", "sft", "evaluate-sets", "reproduce"],
)
def test_run_folders_are_refused_when_foreign_and_kept_beside_their_own(command, kind, run_cli, tmp_path):
    out = make(tmp_path / "thesis", {"thesis.tex": THESIS})
    argv = [a.format(tmp=tmp_path) for a in command]
    proc = run_cli(*argv, "--out", out)
    assert proc.returncode == 2 and "'thesis.tex'" in proc.stderr and "nothing was written" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["thesis.tex"] and (out / "thesis.tex").read_text() == THESIS
    (out / "manifest.json").write_text(json.dumps({"kind": kind}))  # now an earlier output of the command
    proc = run_cli(*argv, "--out", out)  # passes the folder check, fails later on the missing data
    assert "nothing was written" not in proc.stderr and (out / "thesis.tex").read_text() == THESIS
