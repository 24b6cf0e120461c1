"""One vocabulary across subcommands: the same flag for the same thing, old spellings kept for one
release with a note on stderr, choices from the code's registries, bad backend flags refused."""

from __future__ import annotations

import argparse
import json

import pytest

from rearank_kit.cli import build_parser
from rearank_kit.commands._common import parse_engine_args
from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import available_templates
from rearank_kit.rank.backends import BACKENDS
from rearank_kit.rank.models import PRESETS


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


RERANK = ("rerank", "--data", "sample", "--out", "o")


@pytest.mark.parametrize(
    ("new", "old", "dest", "value"),
    [
        (["retrieve", "--passages", "p", "--out", "o", "--top-k", "7"], ["--k", "7"], "top_k", 7),
        (["retrieve", "--passages", "p", "--out", "o", "--queries-file", "q.tsv"], ["--queries", "q.tsv"],
         "queries_file", "q.tsv"),
        (["augment", "--data", "sample", "--out", "o", "--top-k", "50"], ["--pool", "50"], "top_k", 50),
        ([*RERANK, "--stride", "5"], ["--step", "5"], "stride", 5),
        ([*RERANK, "--no-progress"], ["--quiet"], "no_progress", True),
        (["augment", "--data", "sample", "--out", "o", "--no-progress"], ["--quiet"], "no_progress", True),
    ],
)
def test_old_spellings_set_the_new_flag_with_a_note(capsys, new, old, dest, value):
    assert getattr(parse(*new), dest) == value
    assert capsys.readouterr().err == ""
    flag = next(a for a in new if a.startswith("--") and a not in ("--passages", "--out", "--data"))
    old_argv = [*[a for a in new if a != flag and a != str(value)], *old]
    assert getattr(parse(*old_argv), dest) == value
    err = capsys.readouterr().err
    assert f"{old[0]} is deprecated" in err and f"use {flag}" in err


def test_old_spellings_are_hidden_from_help(run_cli):
    proc = run_cli("retrieve", "--help")
    assert "--queries-file" in proc.stdout and "--top-k" in proc.stdout
    assert "--k " not in proc.stdout and "--queries " not in proc.stdout.replace("--queries-file", "")


def test_the_same_words_everywhere():
    """--top-k, --no-progress and --json mean one thing in every subcommand that has them."""
    for argv in (RERANK, ("augment", "--data", "sample", "--out", "o"), ("demo",),
                 ("retrieve", "--passages", "p", "--queries-file", "q", "--out", "o"),
                 ("convert", "--to", "rankllm", "--data", "sample", "--out", "o")):  # fmt: skip
        args = parse(*argv)
        assert args.json is False, argv
        if argv[0] != "convert":
            assert args.no_progress is False, argv
        if argv[0] != "demo":
            assert args.top_k == 100, argv
    assert parse(*RERANK, "--queries", "3").queries == 3  # a count; files are --queries-file


def test_choices_come_from_the_registries(capsys):
    with pytest.raises(SystemExit):
        parse(*RERANK, "--backend", "tgi")
    err = capsys.readouterr().err
    assert all(name in err for name in BACKENDS)
    with pytest.raises(SystemExit):
        parse(*RERANK, "--template", "fancy")
    err = capsys.readouterr().err
    assert "unknown template 'fancy'" in err and all(t in err for t in available_templates())
    assert parse(*RERANK, "--template", "rankgpt").template == "rankgpt"
    with pytest.raises(SystemExit):
        parse(*RERANK, "--device", "gpu")
    assert "not auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert parse(*RERANK, "--device", "cuda:1").device == "cuda:1"


def test_help_lists_the_presets(run_cli):
    out = run_cli("rerank", "--help").stdout
    assert all(name in out for name in PRESETS)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["max_model_len=8192"], {"max_model_len": 8192}),
        (["gpu-memory-utilization=0.8", "dtype=bfloat16"], {"gpu_memory_utilization": 0.8, "dtype": "bfloat16"}),
        (["enable_prefix_caching=true", "quantization=null"], {"enable_prefix_caching": True, "quantization": None}),
        (['hf_overrides={"rope_theta": 1e6}', "tokenizer_mode=auto"], {"hf_overrides": {"rope_theta": 1e6},
                                                                       "tokenizer_mode": "auto"}),
        (["served=a=b"], {"served": "a=b"}),  # only the first = splits
    ],
)
def test_engine_args_are_json_when_they_parse(items, expected):
    assert parse_engine_args(items) == expected


@pytest.mark.parametrize("item", ["max_model_len", "=3", "max model len=3"])
def test_malformed_engine_args_name_the_flag(item):
    with pytest.raises(KitError, match=r"--engine-arg .*expected KEY=VALUE"):
        parse_engine_args([item])


BAD_BACKEND_FLAGS = [
    (["--engine-arg", "max_model_len=512"], "--engine-arg is for the vllm backend, not hf"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--device", "cpu"], "--device is for the hf backend"),
    (["--base-url", "http://127.0.0.1:1/v1"], "--base-url is for the openai backend, not hf"),
    (["--backend", "openai"], "needs --base-url"),
]


@pytest.mark.parametrize(("extra", "fragment"), BAD_BACKEND_FLAGS)
def test_backend_flags_for_another_backend_are_refused_before_loading(run_cli, tmp_path, extra, fragment):
    out = tmp_path / "out"
    proc = run_cli("rerank", "--data", "sample", "--out", out, *extra, timeout=300)
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_a_device_that_is_not_there_is_a_clear_error(run_cli, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here; this checks the machine without one")
    out = tmp_path / "out"
    for command in (["rerank", "--data", "sample", "--out", out], ["demo", "--out", out]):
        proc = run_cli(*command, "--device", "cuda", timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert "--device cuda: " in proc.stderr and "no CUDA GPU is visible" in proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.slow
def test_rerank_json_and_stride_on_the_bundled_model(run_cli, tmp_path):
    out = tmp_path / "run"
    proc = run_cli("rerank", "--data", "sample", "--queries", "1", "--top-k", "6", "--window", "4", "--stride", "2",
                   "--max-new-tokens", "12", "--device", "cpu", "--json", "--no-progress", "--out", out,
                   env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # stdout holds the JSON object and nothing else
    # windows [2, 6] and [0, 4]: the stride moved the window by 2
    assert summary["out"] == str(out) and summary["model_calls"] == 2 and "per_query" not in summary
    assert set(summary["reranked"]) == {"nDCG@5", "nDCG@10", "nDCG@20"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["step"] == 2 and manifest["config"]["window"] == 4 and manifest["template"] == "compact"
