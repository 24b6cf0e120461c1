"""The command line as a user runs it: a subprocess of ``python -m rearank_kit.cli``."""

from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
from pathlib import Path

import pytest

from rearank_kit import commands

REPO = Path(__file__).resolve().parents[1]


def _subcommands() -> list[str]:
    """Each command module's name on the command line (its NAME, else the module's name)."""
    modules = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    return sorted(getattr(importlib.import_module(f"{commands.__name__}.{m}"), "NAME", m) for m in modules)


def test_top_level_help_lists_every_subcommand(run_cli):
    proc = run_cli("--help")
    assert proc.returncode == 0 and "usage: rearank-kit" in proc.stdout
    for name in _subcommands():
        assert name in proc.stdout


def test_version(run_cli):
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("rearank-kit ")


@pytest.mark.parametrize("name", _subcommands())
def test_subcommand_help(run_cli, name):
    proc = run_cli(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: rearank-kit {name}" in proc.stdout and "--debug" in proc.stdout


def test_no_command_is_a_usage_error(run_cli):
    proc = run_cli()
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_eval_json_contract_on_sample(run_cli, sample_dir):
    proc = run_cli("eval", "--data", "sample", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["measures"]) == {"nDCG@10"} and out["num_queries"] == 10
    assert out["measures"]["nDCG@10"] == pytest.approx(0.5382, abs=5e-5)
    assert "per_query" not in out


def test_eval_json_per_query_and_measures(run_cli, sample_dir):
    proc = run_cli("eval", "--data", sample_dir, "--json", "--per-query", "--measures", "nDCG@10,RR@10")
    out = json.loads(proc.stdout)
    assert list(out["measures"]) == ["nDCG@10", "RR@10"]
    assert len(out["per_query"]["RR@10"]) == 10


@pytest.mark.parametrize(("name", "expected"), [("dl19", 0.5058), ("dl20", 0.4796), ("dl21", 0.4458)])
def test_eval_reproduces_bm25(run_cli, shared_data, name, expected):
    proc = run_cli("eval", "--data", name, "--json")
    assert proc.returncode == 0, proc.stderr
    assert round(json.loads(proc.stdout)["measures"]["nDCG@10"], 4) == expected


def test_eval_table_output(run_cli):
    proc = run_cli("eval", "--data", "sample", "--per-query")
    assert proc.returncode == 0
    assert "nDCG@10" in proc.stdout and "s01" in proc.stdout and "(10 queries)" in proc.stdout


def _bad_run(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("s01 Q0 s01-p01 1 2.0 x\ns01 Q0 s01-p02 two 1.0 x\n")
    return path


def _sample_copy(tmp_path, qrels=""):
    """data/sample with its qrels.txt replaced (a benchmark made by `retrieve` without --qrels)."""
    folder = tmp_path / "bench"
    folder.mkdir(exist_ok=True)
    for name in ("queries.tsv", "candidates.trec", "passages.jsonl"):
        shutil.copy(REPO / "data" / "sample" / name, folder / name)
    (folder / "qrels.txt").write_text(qrels)
    return folder


def _unjudged_run(tmp_path):
    path = tmp_path / "other.trec"
    path.write_text("zz1 Q0 s01-p01 1 2.0 x\nzz1 Q0 s01-p02 2 1.0 x\n")
    return path


BAD_INPUTS = [
    # arguments (callable on tmp_path), message fragment
    (lambda tmp: ["eval", "--data", "no-such-benchmark"], "unknown benchmark 'no-such-benchmark'"),
    (lambda tmp: ["eval", "--data", str(tmp)], "not a benchmark folder, missing"),
    (lambda tmp: ["eval", "--data", "sample", "--run", str(_bad_run(tmp))], "run.trec:2:"),
    (lambda tmp: ["eval", "--data", "sample", "--measures", "nDGC@10"], "unknown measure"),
    (lambda tmp: ["eval", "--data", "sample", "--run", str(tmp / "missing.trec")], "cannot read"),
    (lambda tmp: ["retrieve", "--passages", str(tmp / "none.jsonl"), "--queries", "data/sample/queries.tsv",
                  "--out", str(tmp / "o")], "none.jsonl: cannot read"),
    # fault injection: judgments that are empty (was: `nan`, exit 0) or that miss every query of the run
    (lambda tmp: ["eval", "--data", str(_sample_copy(tmp))], "no judgments in "),
    (lambda tmp: ["eval", "--data", str(_sample_copy(tmp, "\n\n"))], "bench/qrels.txt: there is nothing to evaluate"),
    (lambda tmp: ["eval", "--data", "sample", "--run", str(_unjudged_run(tmp))],
     "other.trec: none of its 1 queries has judgments in"),
]


@pytest.mark.parametrize(("make_args", "fragment"), BAD_INPUTS)
def test_bad_input_exits_nonzero_without_traceback(run_cli, tmp_path, make_args, fragment):
    proc = run_cli(*make_args(tmp_path))
    assert proc.returncode == 2
    assert fragment in proc.stderr and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_debug_shows_the_traceback(run_cli):
    proc = run_cli("--debug", "eval", "--data", "no-such-benchmark")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "KitError" in proc.stderr
    proc = run_cli("eval", "--debug", "--data", "no-such-benchmark")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
