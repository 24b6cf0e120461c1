"""`rearank-kit report`: one HTML page per rerank run, checked in a real browser (headless Chromium).

Chromium comes from Debian's package (``apt-get install -y chromium chromium-driver``), which
``.ci/run`` installs before the tests; elsewhere the browser tests skip and say how to install it.
The page's filters are driven through the URL hash and read back with ``--dump-dom``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rearank_kit.analysis.report import build_report, write_report
from rearank_kit.core.errors import KitError
from rearank_kit.core.files import write_json, write_jsonl
from rearank_kit.core.records import Candidate, Query, Ranking, write_rankings_jsonl
from rearank_kit.data.benchmarks import load_benchmark

BROWSER = next((b for b in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if b), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="headless Chromium not found; install it with: apt-get install -y chromium chromium-driver "
    "(Debian/Ubuntu; CI's .ci/run does this before the tests)",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # fmt: skip

REASONING = {  # hand-written traces (not model output) on sample queries, so that claims exist
    "s10": "<think>[1] says Venus has the longest day and is not relevant. [2] directly answers: Jupiter spins "
           "fastest. [3] lists rotation periods, which is useful. [4] is off-topic. [5] is partially relevant."
           "</think><answer>[2] > [3] > [5] > [1] > [4]</answer>",
    "s01": "<think>Passages [1] and [2] explain Rayleigh scattering and are relevant. [3] is unrelated.</think>"
           "<answer>[1] > [2] > [3] > [4] > [5]</answer>",
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, sample_dir):
    """A rerank run folder in the layout rank/run.py writes, with hand-written traces."""
    folder = tmp_path_factory.mktemp("runs") / "sample-handwritten"
    folder.mkdir()
    bench = load_benchmark("sample", top_k=5)
    traces, rankings = [], []
    for qid, output in REASONING.items():
        ranking = next(r for r in bench.rankings if r.query.qid == qid)
        order = [int(i) - 1 for i in re.findall(r"\[(\d)\]", output.split("<answer>")[1])]
        traces.append({"qid": qid, "window": [0, 5], "docids": ranking.docids, "output": output, "order": order,
                       "output_tokens": 60, "finish_reason": "stop", "model": "hand-written"})  # fmt: skip
        docids = [ranking.docids[i] for i in order]
        rankings.append(Ranking(Query(qid, ranking.query.text),
                                [Candidate(d, 5 - i, float(5 - i), "") for i, d in enumerate(docids)]))  # fmt: skip
    write_jsonl(folder / "traces.jsonl", traces)
    write_rankings_jsonl(rankings, folder / "rankings.jsonl")
    write_json(folder / "manifest.json", {"kind": "rerank", "data": "sample", "data_path": str(sample_dir),
                                          "model": "hand-written", "template": "rearank", "config": {"top_k": 5}})  # fmt: skip
    return folder


def browse(page: Path, tmp_path: Path, fragment: str = "", screenshot: Path | None = None) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    what = [f"--screenshot={screenshot}", "--window-size=1200,1600"] if screenshot else ["--dump-dom"]
    proc = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *what, f"{page.as_uri()}{fragment}"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def shown(dom: str) -> list[tuple[str, bool]]:
    """(qid, visible) for each trace section of a dumped DOM."""
    return [(m.group(1), "hidden" not in m.group(0)) for m in re.finditer(r"<section class=\"trace\" data-qid=\"(\w+)\"[^>]*>", dom)]


def test_the_page_joins_text_at_report_time_and_says_so(run_dir, run_cli, tmp_path):
    proc = run_cli("report", run_dir, "--out", tmp_path / "page.html", "--json")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert json.loads(proc.stdout)["out"] == str(tmp_path / "page.html")
    assert "joined from the benchmark" in page and "243 Earth days" in page  # passage text, from data/sample
    assert "which planet has the shortest day" in page
    assert "243 Earth days" not in (run_dir / "traces.jsonl").read_text()  # the traces themselves hold no text
    bare = build_report(run_dir, text=False)
    assert "243 Earth days" not in bare and "docids only" in bare


def test_the_page_goes_beside_the_run_folder_never_inside(run_dir):
    default = write_report(run_dir)
    assert default == run_dir.parent / "sample-handwritten-report.html" and default.is_file()
    with pytest.raises(KitError, match="outside the run folder"):
        write_report(run_dir, run_dir / "report.html")


def test_a_folder_without_traces_is_refused(tmp_path):
    with pytest.raises(KitError, match="no traces.jsonl"):
        build_report(tmp_path)


@needs_browser
@pytest.mark.parametrize(
    "fragment, visible",
    [
        ("", ["s10", "s01"]),
        ("#qid=s10", ["s10"]),
        ("#claim=irrelevant", ["s10", "s01"]),
        ("#claim=neutral", ["s10"]),  # "[5] is partially relevant"
        ("#search=rayleigh", ["s01"]),  # in the reasoning
        ("#search=243%20earth%20days", ["s10"]),  # in a passage's text, joined at report time
        ("#outcome=worse", []),
        ("#min=20&max=1000", ["s10"]),  # s10's reasoning is the longer one
    ],
)
def test_filters_work_in_a_real_browser(run_dir, tmp_path, fragment, visible):
    page = write_report(run_dir, tmp_path / "report.html")
    dom = browse(page, tmp_path, fragment)
    assert [q for q, ok in shown(dom) if ok] == visible
    assert re.search(r'<span id="count">(\d+)</span>', dom).group(1) == str(len(visible))


@needs_browser
def test_a_screenshot_is_taken(run_dir, tmp_path):
    page = write_report(run_dir, tmp_path / "report.html")
    png = tmp_path / "report.png"
    browse(page, tmp_path, "#qid=s10", screenshot=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@needs_browser
@pytest.mark.slow
def test_a_real_run_of_the_bundled_model(run_cli, tmp_path):
    out = tmp_path / "smol"
    proc = run_cli("rerank", "--data", "sample", "--queries", "2", "--top-k", "5", "--window", "5", "--stride", "5",
                   "--template", "compact", "--max-new-tokens", "16", "--no-progress", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = write_report(out)
    dom = browse(page, tmp_path)
    sections = shown(dom)
    assert len(sections) == 2 and all(ok for _, ok in sections)
    assert "nDCG@10" in dom and "joined from the benchmark" in dom
