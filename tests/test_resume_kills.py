"""Kill a rerank anywhere, run it again: the same ``run.trec``, byte for byte, and no finished query redone.

Every mode logs each query to ``rankings.jsonl`` the moment its last window is answered
(``rank/windows.py``), so a kill loses at most the windows of the queries in flight. A scripted
backend (it ranks by a score hidden in each passage, as in ``tests/test_rerank.py``) is stopped
at several calls of every mode, the run resumed with a fresh one, and the result compared with an
uninterrupted run; a torn last line, what a kill during a write leaves, is added before one of the
resumes. The last test kills the real command line with the bundled model (extended: the scripted
runs check the same bookkeeping in seconds).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from rearank_kit.core.files import iter_jsonl
from rearank_kit.core.records import Candidate, Query, Ranking
from rearank_kit.rank.backends import Generation
from rearank_kit.rank.run import rerank_benchmark
from rearank_kit.rank.settings import RerankConfig
from rearank_kit.rank.windows import window_positions

REPO = Path(__file__).resolve().parents[1]
TOP_K, WINDOW, STRIDE = 25, 10, 5
WINDOWS_PER_QUERY = len(window_positions(TOP_K, WINDOW, STRIDE))  # 4


class Scripted:
    """Ranks a window by the ``score=N`` in its passages; raises KeyboardInterrupt (a kill, as
    Ctrl-C or SIGTERM handled by Python) instead of answering call number ``kill_at`` (1-based)."""

    name = "scripted"
    model_id = "scripted-by-score"

    def __init__(self, kill_at: int | None = None):
        self.kill_at = kill_at
        self.calls = 0
        self.answered: Counter[str] = Counter()  # windows answered, per query

    def generate(self, conversations, config, prefill=None):
        self.calls += 1
        if self.kill_at is not None and self.calls >= self.kill_at:
            raise KeyboardInterrupt
        outs = []
        for conv in conversations:
            text = conv[-1]["content"]
            self.answered[re.search(r"q=(\S+)", text).group(1)] += 1
            scores = [int(s) for s in re.findall(r"^\[\d+\] \S+ score=(\d+)", text, re.M)]
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
            outs.append(Generation((prefill or "") + " > ".join(f"[{i + 1}]" for i in order)[1:] + "</answer>", 50,
                                   len(order) * 4, "stop"))  # fmt: skip
        return outs

    def finished(self) -> set[str]:
        return {q for q, n in self.answered.items() if n == WINDOWS_PER_QUERY}


def rankings() -> list[Ranking]:
    return [Ranking(Query(f"q{i}", f"query {i}"),
                    [Candidate(f"q{i}-d{j}", f"p{j} score={(7 * i + 3 * j) % 11} q=q{i}", j + 1) for j in range(TOP_K)])
            for i in range(6)]  # fmt: skip


def logged(folder: Path) -> list[str]:
    return [r["query"]["qid"] for r in iter_jsonl(folder / "rankings.jsonl")]


@pytest.mark.parametrize("group_size", [1, 4, 32])
@pytest.mark.parametrize("mode", ["pipelined", "batched", "sequential"])
def test_a_kill_anywhere_resumes_to_the_same_run_trec(mode, group_size, tmp_path):
    config = RerankConfig(top_k=TOP_K, window=WINDOW, step=STRIDE, template="compact", max_new_tokens=16, mode=mode,
                          group_size=group_size, batch_size=2)  # fmt: skip
    whole = Scripted()
    rerank_benchmark(rankings(), whole, config, tmp_path / "whole", progress=False)
    expected = (tmp_path / "whole" / "run.trec").read_bytes()
    for kill_at in sorted({1, 2, whole.calls // 3, whole.calls // 2, whole.calls - 1, whole.calls}):
        folder = tmp_path / f"killed-at-{kill_at}"
        killed = Scripted(kill_at)
        with pytest.raises(KeyboardInterrupt):
            rerank_benchmark(rankings(), killed, config, folder, progress=False)
        # each query whose windows were all answered was logged at once, and only those
        assert sorted(logged(folder)) == sorted(killed.finished()), (kill_at, dict(killed.answered))
        assert not (folder / "run.trec").exists()
        if kill_at % 2:  # a kill during a write leaves a torn last line in both logs
            for log in ("rankings.jsonl", "traces.jsonl"):
                with open(folder / log, "a", encoding="utf-8") as fh:
                    fh.write('{"query": {"qid": "q')
        again = Scripted()
        rerank_benchmark(rankings(), again, config, folder, progress=False)
        assert (folder / "run.trec").read_bytes() == expected, kill_at
        assert not set(again.answered) & killed.finished()  # no finished query asked again
        assert sum(again.answered.values()) == WINDOWS_PER_QUERY * (6 - len(killed.finished()))


@pytest.mark.extended  # loads the bundled model three times (about a minute); the scripted kills cover make test
def test_killing_the_command_and_running_it_again_gives_the_same_run_trec(tmp_path):
    args = [sys.executable, "-m", "rearank_kit.cli", "rerank", "--data", "sample", "--model", "smollm2-135m",
            "--template", "compact", "--top-k", "6", "--window", "3", "--stride", "2", "--queries", "4",
            "--max-new-tokens", "12", "--group-size", "1", "--no-progress", "--out"]  # fmt: skip
    whole = subprocess.run([*args, tmp_path / "whole"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    folder = tmp_path / "killed"
    proc = subprocess.Popen([*args, folder], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not logged_any(folder):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler runs: whatever the logs hold is all there is
    proc.wait(timeout=60)
    assert 1 <= len(logged(folder)) < 4 and not (folder / "run.trec").exists()
    again = subprocess.run([*args, folder], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (folder / "run.trec").read_bytes() == (tmp_path / "whole" / "run.trec").read_bytes()


def logged_any(folder: Path) -> bool:
    path = folder / "rankings.jsonl"
    return path.is_file() and path.read_bytes().count(b"\n") >= 1
