"""The fault suite: one row per bad input a new user can give, on the real command line.

Each case is the command line, the bad input (built under the test's folder), the words the
message must hold, and the check that matters most: nothing was written and no file changed
(every file under the test's folder has the same bytes after the command as before it, and no
output appeared). Every case fails before a model loads, so the table runs in seconds per case.
Grouped as in issue 25: files the kit did not write, secrets, numbers, inputs accepted wrongly,
messages that did not help. Cases that succeed with a warning, and the read-only output folder
(which needs a folder even root cannot write), follow the table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
BENCHMARK_FILES = ("queries.tsv", "qrels.txt", "candidates.trec", "passages.jsonl")
SECRET = "PLANTEDs3cret"


@dataclass(frozen=True)
class Fault:
    name: str
    setup: Callable[[Path], list]  # builds the bad input under the folder given, returns the command line
    words: tuple[str, ...]  # all in the message (stderr)
    absent: tuple[str, ...] = ()  # none of these in stdout or stderr (a secret, a misleading name)
    code: int = 2


# --- inputs the cases build -----------------------------------------------------------------------


def bench(tmp: Path, name: str = "bench", **replace: str | bytes) -> Path:
    """A copy of the sample benchmark; ``replace`` maps a file name to its new content."""
    folder = tmp / name
    folder.mkdir()
    for f in BENCHMARK_FILES:
        shutil.copy(SAMPLE / f, folder / f)
    for f, content in replace.items():
        path = folder / f.replace("_", ".")
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


def with_line(path: Path, number: int, line: str | bytes) -> bytes:
    """The bytes of ``path`` with line ``number`` (1-based) replaced by ``line``."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = (line if isinstance(line, bytes) else line.encode()) + b"\n"
    return b"".join(lines)


def foreign(tmp: Path, name: str = "thesis") -> Path:
    """A user's folder: what --overwrite must never delete."""
    folder = tmp / name
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\chapter{Results}\n")
    return folder


def kit_output(tmp: Path, kind: str, *names: str, record: str = "manifest.json") -> Path:
    """A folder as a kit command leaves it (its record with ``kind``, and ``names``)."""
    folder = tmp / f"{kind}-out"
    folder.mkdir()
    (folder / record).write_text(json.dumps({"kind": kind}))
    for name in names:
        (folder / name).write_text("kit output\n")
    return folder


def yaml(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


def rankllm_file(tmp: Path, *records: dict) -> Path:
    path = tmp / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def one_request(qid: str = "q1", candidates: list | None = None) -> dict:
    cands = [{"docid": "d1", "score": 1.0, "doc": {"text": "a passage"}}] if candidates is None else candidates
    return {"query": {"qid": qid, "text": "a query"}, "candidates": cands}


def run_folder(tmp: Path, traces: list[dict], status: str = "done") -> Path:
    """A rerank run folder in rank/run.py's layout over data/sample, with the traces given."""
    folder = tmp / "run"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"kind": "rerank", "status": status, "data": "sample",
                                                      "data_path": str(SAMPLE), "config": {"top_k": 5}}))  # fmt: skip
    (folder / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    (folder / "rankings.jsonl").write_text("")
    return folder


S01 = ["s01-p01", "s01-p03", "s01-p15"]  # the first three candidates of sample query s01
GOOD_TRACE = {"qid": "s01", "window": [0, 3], "docids": S01, "output": "<answer>[2] > [1] > [3]</answer>",
              "order": [1, 0, 2], "output_tokens": 12, "finish_reason": "stop"}  # fmt: skip


def dead_url() -> str:
    """A URL where nothing listens (a port just freed), with credentials in it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://alice:{SECRET}@127.0.0.1:{port}/v1?api_key={SECRET}"


def out(tmp: Path) -> Path:
    return tmp / "out"  # never created by a failing case: the snapshot check sees it


# --- the table ------------------------------------------------------------------------------------

FAULTS = [
    # -- files the kit did not write: refused, named, left as they are --
    Fault("augment --overwrite over a user's folder",
          lambda t: ["augment", "--data", "sample", "--window", "5", "--out", foreign(t), "--overwrite"],
          ("thesis", "'thesis.tex'", "rearank-kit did not write", "left as it is")),
    Fault("augment over a non-empty folder without --overwrite",
          lambda t: ["augment", "--data", "sample", "--window", "5", "--out", foreign(t)],
          ("not an empty folder", "--overwrite")),
    Fault("augment --overwrite over its own output plus a user's file",
          lambda t: ["augment", "--data", "sample", "--window", "5", "--overwrite",
                     "--out", kit_output(t, "augment", "sets.jsonl", "summary.json", "notes.txt")],
          ("'notes.txt'", "does not write there")),
    Fault("augment --overwrite over a training run",
          lambda t: ["augment", "--data", "sample", "--window", "5", "--overwrite",
                     "--out", kit_output(t, "train", "metrics.jsonl")],
          ("output of rearank-kit train", "not of augment")),
    Fault("export --overwrite over a user's folder",
          lambda t: ["export", t / "no-run", foreign(t), "--overwrite"], ("OUT_DIR", "'thesis.tex'", "did not write")),
    Fault("export over a non-empty folder without --overwrite",
          lambda t: ["export", t / "no-run", foreign(t)], ("not an empty folder", "--overwrite")),
    Fault("export --overwrite over another command's output",
          lambda t: ["export", t / "no-run", kit_output(t, "augment", "sets.jsonl"), "--overwrite"],
          ("output of rearank-kit augment", "not of export")),
    Fault("convert --from rankllm --overwrite over a user's folder",
          lambda t: ["convert", "--from", "rankllm", rankllm_file(t, one_request()), "--out", foreign(t), "--overwrite"],
          ("--out", "'thesis.tex'", "did not write")),
    Fault("convert --to rankllm over an existing file",
          lambda t: ["convert", "--to", "rankllm", "--data", "sample", "--out", foreign(t) / "thesis.tex"],
          ("thesis.tex: exists", "--overwrite")),
    Fault("convert --to rankllm --overwrite over a file that is not RankLLM's",
          lambda t: ["convert", "--to", "rankllm", "--data", "sample", "--out", foreign(t) / "thesis.tex", "--overwrite"],
          ("not a RankLLM file", "left as it is")),
    Fault("retrieve into a user's folder",
          lambda t: ["retrieve", "--passages", SAMPLE / "passages.jsonl", "--queries-file", SAMPLE / "queries.tsv",
                     "--out", foreign(t)], ("'thesis.tex'", "did not write")),
    Fault("retrieve into the folder holding its own input collection",
          lambda t: ["retrieve", "--passages", bench(t) / "passages.jsonl", "--queries-file", SAMPLE / "queries.tsv",
                     "--out", t / "bench"], ("'candidates.trec'", "did not write")),
    Fault("train into a user's folder",
          lambda t: ["train", "--data", t / "aug", "--out", foreign(t)], ("'thesis.tex'", "nothing was written")),
    Fault("sft into a user's folder",
          lambda t: ["sft", "--data", t / "aug", "--out", foreign(t)], ("'thesis.tex'", "nothing was written")),
    Fault("evaluate-sets into a user's folder",
          lambda t: ["evaluate-sets", "--sets", t / "aug", "--out", foreign(t)], ("'thesis.tex'", "nothing was written")),
    Fault("reproduce into a user's folder",
          lambda t: ["reproduce", "--table", "1", "--model", "smollm2-135m", "--out", foreign(t)],
          ("'thesis.tex'", "nothing was written")),
    Fault("reproduce into another command's output",
          lambda t: ["reproduce", "--table", "1", "--model", "smollm2-135m", "--out", kit_output(t, "augment", "x")],
          ("output of rearank-kit augment", "not of reproduce")),
    Fault("report written inside the run folder",
          lambda t: ["report", run_folder(t, [GOOD_TRACE]), "--out", t / "run" / "page.html"],
          ("outside the run folder",)),
    # -- secrets: refused by name, never echoed --
    Fault("a hub token in a training config file",
          lambda t: ["train", "--config", yaml(t, f"hub_token: hf_{SECRET}abcdefghijklmnop\n"), "--data", t / "aug",
                     "--out", out(t)], ("config.yaml", "hub_token", "HF_TOKEN", "hf auth login"), (SECRET,)),
    Fault("a token nested in a config file's mapping",
          lambda t: ["train", "--config", yaml(t, f"model_init_kwargs:\n  token: {SECRET}\n"), "--show-config"],
          ("model_init_kwargs.token", "no place in a config file"), (SECRET,)),
    Fault("an API key in a config file",
          lambda t: ["train", "--config", yaml(t, f"api_key: {SECRET}\n"), "--show-config"],
          ("api_key", "OPENAI_API_KEY"), (SECRET,)),
    Fault("a dead server with credentials in --base-url (rerank)",
          lambda t: ["rerank", "--data", "sample", "--backend", "openai", "--base-url", dead_url(), "--out", out(t)],
          ("no server answers at http://***@127.0.0.1:", "api_key=***", "nothing was read or written"), (SECRET,)),
    Fault("a dead server with credentials in --base-url (reproduce)",
          lambda t: ["reproduce", "--table", "1", "--model", "m", "--backend", "openai", "--base-url", dead_url(),
                     "--out", out(t)], ("no server answers", "http://***@"), (SECRET,)),
    # -- numbers: checked when the command line is parsed, by the flag's name --
    Fault("rerank --window 0", lambda t: ["rerank", "--data", "sample", "--window", "0", "--out", out(t)],
          ("--window", "0 is out of range", "at least 2")),
    Fault("rerank --stride 0", lambda t: ["rerank", "--data", "sample", "--stride", "0", "--out", out(t)],
          ("--stride", "at least 1")),
    Fault("rerank --batch-size 0", lambda t: ["rerank", "--data", "sample", "--batch-size", "0", "--out", out(t)],
          ("--batch-size", "at least 1")),
    Fault("rerank --max-new-tokens 0", lambda t: ["rerank", "--data", "sample", "--max-new-tokens", "0", "--out", out(t)],
          ("--max-new-tokens", "at least 1")),
    Fault("rerank --temperature -1", lambda t: ["rerank", "--data", "sample", "--temperature", "-1", "--out", out(t)],
          ("--temperature", "at least 0")),
    Fault("rerank --top-k -1", lambda t: ["rerank", "--data", "sample", "--top-k", "-1", "--out", out(t)],
          ("argument --top-k", "at least 1"), ("top_k",)),
    Fault("rerank --group-size 0", lambda t: ["rerank", "--data", "sample", "--group-size", "0", "--out", out(t)],
          ("--group-size", "at least 1")),
    Fault("rerank --timeout 0", lambda t: ["rerank", "--data", "sample", "--backend", "openai", "--base-url",
                                           "http://127.0.0.1:9/v1", "--timeout", "0", "--out", out(t)],
          ("--timeout", "greater than 0")),
    Fault("--timeout for a backend that has no server",
          lambda t: ["rerank", "--data", "sample", "--timeout", "30", "--out", out(t)],
          ("--timeout is for the openai backend",)),
    Fault("convert --top-k -1", lambda t: ["convert", "--to", "rankllm", "--data", "sample", "--top-k", "-1",
                                           "--out", t / "r.jsonl"], ("--top-k", "at least 1")),
    Fault("convert --top-k 0", lambda t: ["convert", "--to", "rankllm", "--data", "sample", "--top-k", "0",
                                          "--out", t / "r.jsonl"], ("--top-k", "at least 1")),
    Fault("train --steps -3 --dry-run", lambda t: ["train", "--steps", "-3", "--dry-run", "--data", t / "aug"],
          ("--steps", "-3 is out of range", "at least 1")),
    Fault("train --save-steps 0", lambda t: ["train", "--save-steps", "0", "--data", t / "aug", "--out", out(t)],
          ("--save-steps", "at least 1")),
    Fault("train --set max_steps=0", lambda t: ["train", "--set", "max_steps=0", "--show-config"],
          ("--set max_steps=0", "at least 1")),
    Fault("a number out of range in a config file",
          lambda t: ["train", "--config", yaml(t, "max_steps: -3\n"), "--show-config"],
          ("config.yaml: max_steps", "at least 1"), ("--set",)),
    Fault("a value of the wrong type in a config file (beta: abc)",
          lambda t: ["train", "--config", yaml(t, "beta: abc\n"), "--show-config"],
          ("config.yaml: beta", "expected float", "'abc'"), ("--set",)),
    Fault("sft --steps 0", lambda t: ["sft", "--steps", "0", "--dry-run", "--data", t / "aug"],
          ("--steps", "-1 for one pass")),
    Fault("augment --window 1", lambda t: ["augment", "--data", "sample", "--window", "1", "--out", out(t)],
          ("--window", "at least 2")),
    Fault("augment --samples-per-query 0",
          lambda t: ["augment", "--data", "sample", "--samples-per-query", "0", "--out", out(t)],
          ("--samples-per-query", "at least 1")),
    Fault("augment --test-fraction 1.5",
          lambda t: ["augment", "--data", "sample", "--test-fraction", "1.5", "--out", out(t)], ("--test-fraction",)),
    Fault("reproduce --window 0", lambda t: ["reproduce", "--table", "1", "--model", "m", "--window", "0",
                                             "--out", out(t)], ("--window", "at least 2")),
    Fault("reproduce --queries 0", lambda t: ["reproduce", "--table", "1", "--model", "m", "--queries", "0",
                                              "--out", out(t)], ("--queries", "at least 1")),
    Fault("evaluate-sets --batch-size 0",
          lambda t: ["evaluate-sets", "--sets", t / "aug", "--batch-size", "0", "--out", out(t)],
          ("--batch-size", "at least 1")),
    Fault("retrieve --top-k 0",
          lambda t: ["retrieve", "--passages", SAMPLE / "passages.jsonl", "--queries-file", SAMPLE / "queries.tsv",
                     "--top-k", "0", "--out", out(t)], ("--top-k", "at least 1")),
    Fault("eval --measures ','", lambda t: ["eval", "--data", "sample", "--measures", ","],
          ("no measure", "--measures"), ("IndexError",)),
    # -- inputs that were wrong but accepted --
    Fault("a RankLLM request with no candidates",
          lambda t: ["convert", "--from", "rankllm", rankllm_file(t, one_request("q1"), one_request("q2", [])),
                     "--out", out(t)], ("requests.jsonl:2", "query 'q2' has no candidates")),
    Fault("duplicate (query, docid) lines in qrels",
          lambda t: ["eval", "--data", bench(t, **{"qrels_txt": with_line(SAMPLE / "qrels.txt", 5, "s01 0 s01-p01 3")})],
          ("qrels.txt:5", "judges docid 's01-p01' again", "first on line 1")),
    Fault("duplicate docids in a run",
          lambda t: ["eval", "--data", "sample", "--run",
                     bench(t, **{"candidates_trec": with_line(SAMPLE / "candidates.trec", 3,
                                                              "s01 Q0 s01-p01 3 3.4 bm25")}) / "candidates.trec"],
          ("candidates.trec:3", "docid 's01-p01' twice", "first on line 1")),
    Fault("report of hand-edited traces (order not a permutation)",
          lambda t: ["report", run_folder(t, [GOOD_TRACE, {**GOOD_TRACE, "order": [0, 0, 7]}]), "--out", t / "p.html"],
          ("traces.jsonl:2", "field 'order'", "edited by hand"), ("TypeError", "ValueError")),
    Fault("report of hand-edited traces (a window of text)",
          lambda t: ["report", run_folder(t, [{**GOOD_TRACE, "window": "0-3"}]), "--out", t / "p.html"],
          ("traces.jsonl:1", "field 'window'"), ("TypeError",)),
    Fault("report of hand-edited traces (no qid)",
          lambda t: ["report", run_folder(t, [{k: v for k, v in GOOD_TRACE.items() if k != "qid"}]), "--out", t / "p.html"],
          ("traces.jsonl:1", "field 'qid'")),
    Fault("report of a run with no model call yet",
          lambda t: ["report", run_folder(t, [], status="running"), "--out", t / "p.html"],
          ("no model call recorded yet", "status 'running'"), ("KeyError",)),
    # -- messages that did not help --
    Fault("a Latin-1 byte in passages.jsonl",
          lambda t: ["convert", "--to", "rankllm", "--data", bench(t, **{"passages_jsonl": with_line(
              SAMPLE / "passages.jsonl", 4, b'{"docid": "s01-p04", "text": "caf\xe9"}')}), "--out", t / "r.jsonl"],
          ("passages.jsonl:4", "not UTF-8", "0xe9")),
    Fault("a Latin-1 byte in queries.tsv",
          lambda t: ["convert", "--to", "rankllm", "--data", bench(t, **{"queries_tsv": with_line(
              SAMPLE / "queries.tsv", 2, b"s02\tcaf\xe9 au lait")}), "--out", t / "r.jsonl"],
          ("queries.tsv:2", "not UTF-8")),
    Fault("a binary template file",
          lambda t: ["rerank", "--data", "sample", "--template", _binary(t), "--out", out(t)],
          ("binary.toml", "not a template", "binary")),
    Fault("a template name reaching out of the templates folder",
          lambda t: ["rerank", "--data", "sample", "--template", "../x", "--out", out(t)],
          ("unknown template '../x'",)),
]


def _binary(tmp: Path) -> Path:
    path = tmp / "binary.toml"
    path.write_bytes(bytes(range(256)) * 4)
    return path


# --- the check --------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def test_the_table_covers_the_issue():
    assert len(FAULTS) >= 40 and len({f.name for f in FAULTS}) == len(FAULTS)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: re.sub(r"\W+", "-", f.name).strip("-"))
def test_fault(fault, tmp_path, run_cli):
    argv = fault.setup(tmp_path)
    before = snapshot(tmp_path)
    proc = run_cli(*argv, timeout=300)
    said = proc.stdout + proc.stderr
    assert proc.returncode == fault.code, said
    missing = [w for w in fault.words if w not in proc.stderr]
    assert not missing, f"{missing} not in: {proc.stderr}"
    assert not [w for w in fault.absent if w in said], said
    assert "Traceback" not in said
    assert snapshot(tmp_path) == before  # nothing written, nothing changed, nothing deleted


# --- cases beside the table ---------------------------------------------------------------------------


def test_report_of_an_unfinished_run_warns_and_says_so_on_the_page(tmp_path, run_cli):
    run = run_folder(tmp_path, [GOOD_TRACE], status="running")
    proc = run_cli("report", run, "--out", tmp_path / "page.html")
    assert proc.returncode == 0, proc.stderr
    assert "warning: this run has not finished" in proc.stderr and "'running'" in proc.stderr
    assert "this run has not finished" in (tmp_path / "page.html").read_text(encoding="utf-8")


@pytest.fixture
def unwritable(tmp_path):
    """A folder nobody may write in: a read-only one, or (for root, whom permissions do not stop)
    /sys, which refuses new files to everyone."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        probe.write_text("")
        probe.unlink()
    except OSError:
        yield folder
    else:
        if os.access("/sys", os.F_OK) and not _can_write("/sys"):
            yield Path("/sys")
        else:
            pytest.skip("no folder here refuses writes to this user")
    finally:
        folder.chmod(0o755)


def _can_write(folder: str) -> bool:
    try:
        fd, path = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(path)
    return True


@pytest.mark.parametrize(
    "command",
    [
        ["augment", "--data", "sample", "--window", "5"],
        ["convert", "--from", "rankllm", "{requests}"],
        ["retrieve", "--passages", str(SAMPLE / "passages.jsonl"), "--queries-file", str(SAMPLE / "queries.tsv")],
        ["train", "--data", "{tmp}/aug"],
        ["evaluate-sets", "--sets", "{tmp}/aug"],
    ],
    ids=["augment", "convert", "retrieve", "train", "evaluate-sets"],
)
def test_an_output_that_cannot_be_written_fails_before_the_work(command, unwritable, tmp_path, run_cli):
    requests = rankllm_file(tmp_path, one_request())
    target = unwritable / "rearank-kit-fault-test"
    argv = [a.format(requests=requests, tmp=tmp_path) for a in command]
    proc = run_cli(*argv, "--out", target, timeout=300)
    assert proc.returncode == 2 and "cannot write in" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not target.exists()
