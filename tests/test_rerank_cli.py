"""``rearank-kit rerank`` end to end, as a user runs it: a subprocess, real data, the bundled model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rearank_kit.core.prompts import load_template

REPO = Path(__file__).resolve().parent.parent


def shared_data() -> Path | None:
    """The folder holding dl19: $REARANK_KIT_DATA entries, then ../shared/data beside the checkout."""
    roots = [Path(p) for p in os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep) if p.strip()]
    roots.append(REPO.parent / "shared" / "data")
    return next((r for r in roots if (r / "dl19" / "candidates.trec").is_file()), None)


def cli(*args, timeout=1500):
    env = {**os.environ, "REARANK_KIT_DATA": str(shared_data() or "")}
    return subprocess.run([sys.executable, "-m", "rearank_kit.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


needs_dl19 = pytest.mark.skipif(shared_data() is None, reason="TREC DL data not found (../shared/data/dl19)")
SMALL = ["--data", "dl19", "--queries", "2", "--top-k", "20", "--max-new-tokens", "32", "--no-progress"]


@pytest.mark.slow
@needs_dl19
def test_rerank_cli_end_to_end_and_resume(tmp_path):
    out = tmp_path / "run"
    proc = cli("rerank", *SMALL, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "nDCG@10" in proc.stdout

    # run.trec: 6 columns, 20 candidates per query ranked 1..20 with decreasing scores.
    lines = [line.split() for line in (out / "run.trec").read_text().splitlines()]
    assert len(lines) == 40 and all(len(parts) == 6 and parts[1] == "Q0" for parts in lines)
    by_query: dict[str, list] = {}
    for qid, _, docid, rank, score, _tag in lines:
        by_query.setdefault(qid, []).append((int(rank), float(score), docid))
    assert len(by_query) == 2
    for rows in by_query.values():
        assert [r for r, _, _ in rows] == list(range(1, 21))
        assert [s for _, s, _ in rows] == sorted((s for _, s, _ in rows), reverse=True)
        assert len({d for _, _, d in rows}) == 20

    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 2 and {t["qid"] for t in traces} == set(by_query)  # one window of 20 per query
    assert all(t["window"] == [0, 20] and len(t["docids"]) == 20 and t["output_tokens"] <= 32 for t in traces)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["judged_queries"] == 2 and set(metrics["reranked"]) == {"nDCG@5", "nDCG@10", "nDCG@20"}
    assert 0 <= metrics["first_stage"]["nDCG@10"] <= 1 and 0 <= metrics["reranked"]["nDCG@10"] <= 1

    manifest = json.loads((out / "manifest.json").read_text())
    compact = load_template("compact")
    assert manifest["kind"] == "rerank" and manifest["status"] == "done"
    assert manifest["template"] == "compact" and manifest["template_hash"] == compact.hash
    assert manifest["model"] == "smollm2-135m" and manifest["backend"] == "hf"
    assert manifest["config"]["top_k"] == 20 and manifest["config"]["max_new_tokens"] == 32
    # no --mode: the default the library and the docs name (the CLI once always asked for lock-step)
    assert manifest["config"]["mode"] == "pipelined" and manifest["config"]["window"] == 20
    assert manifest["data"] == "dl19" and len(manifest["data_fingerprint"]) == 16
    assert manifest["queries"] == list(by_query) and "packages" in manifest and "git_commit" in manifest

    # The same command again resumes: nothing is redone and the run is unchanged.
    first_run = (out / "run.trec").read_text()
    again = cli("rerank", *SMALL, "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "run.trec").read_text() == first_run
    assert len((out / "traces.jsonl").read_text().splitlines()) == 2

    # A different setup into the same folder is refused before a model is loaded.
    refused = cli("rerank", *SMALL, "--window", "10", "--out", str(out), timeout=300)
    assert refused.returncode == 2 and "made differently" in refused.stderr and "window" in refused.stderr


def test_rerank_cli_warns_about_a_template_the_model_was_not_trained_for(tmp_path):
    """A named template the preset does not suit runs, with a warning (models.check_template);
    here the model cannot be fetched, so the run then stops before writing anything."""
    from rearank_kit.core.env import hub_host, unreachable

    if unreachable((hub_host(),)) is None:
        pytest.skip("the hub is reachable: this would download Rearank-7B")
    proc = cli("rerank", "--data", "sample", "--model", "rearank-7b", "--template", "compact",
               "--out", str(tmp_path / "x"), timeout=300)  # fmt: skip
    assert "TemplateMismatchWarning" in proc.stderr and "does not suit model le723z/Rearank-7B" in proc.stderr
    assert proc.returncode == 2 and "could not be found locally" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_out_naming_a_file_is_refused_before_anything_loads(tmp_path):
    """Fault injection: --out names an existing file. The answer is a KitError naming it, given
    before torch (let alone the model) is imported, and the file is left alone."""
    taken = tmp_path / "results.txt"
    taken.write_text("keep me")
    code = (
        "import sys\n"
        "from rearank_kit.cli import main\n"
        f"rc = main(['rerank', '--data', 'sample', '--out', {str(taken)!r}])\n"
        "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr
    assert f"{taken}: exists and is a file" in proc.stderr and "choose another output folder" in proc.stderr
    assert "Traceback" not in proc.stderr and "FileExistsError" not in proc.stderr
    assert taken.read_text() == "keep me"


def test_rerank_cli_unknown_benchmark_is_a_clear_error(tmp_path):
    proc = cli("rerank", "--data", "no-such-set", "--out", str(tmp_path / "x"), timeout=300)
    assert proc.returncode == 2 and "unknown benchmark 'no-such-set'" in proc.stderr


def test_openai_backend_needs_a_url(tmp_path):
    proc = cli("rerank", "--data", "dl19", "--backend", "openai", "--out", str(tmp_path / "x"), timeout=300)
    assert proc.returncode == 2
    assert "--base-url" in proc.stderr


@pytest.mark.slow
def test_demo_reranks_the_bundled_sample(tmp_path):
    if not (REPO / "data" / "sample" / "candidates.trec").is_file():
        pytest.skip("data/sample is not in this checkout")
    proc = cli("demo", "--queries", "2", "--out", str(tmp_path / "demo"), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BM25 (first stage)" in proc.stdout and "smollm2-135m, writing its ranking" in proc.stdout
    assert ("does not beat BM25" in proc.stdout) or ("beats BM25" in proc.stdout)
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["data"] == "sample" and manifest["template"] == "compact" and manifest["status"] == "done"
    # the committed scored policy ranks the same lists, beside them, in its own run folder
    assert "scored policy, GRPO on DL21" in proc.stdout
    scored = json.loads((tmp_path / "demo" / "scored" / "manifest.json").read_text())
    assert scored["policy"] == "scored" and scored["model"].endswith("data/runs/scored-grpo-dl21/final")
    assert scored["results"]["num_queries"] == 2 and "nDCG@10" in scored["results"]["reranked"]
