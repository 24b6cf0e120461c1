"""A quiet terminal: the engines (vLLM, torch) at ERROR unless the user asks (``env.quiet_engines``)."""

import os
import subprocess
import sys
import warnings

import pytest

from rearank_kit.cli import quiet_libraries
from rearank_kit.core.env import VERBOSE, quiet_engines

SET_BY_IT = ("VLLM_LOGGING_LEVEL", "VLLM_LOGGING_STREAM", "TRANSFORMERS_VERBOSITY", "TORCH_LOGS", "TORCH_CPP_LOG_LEVEL",
             VERBOSE)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch):
    for name in SET_BY_IT:  # set first, so that the end of the test restores each as it was
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("verbose_env", "verbose_flag", "debug", "level"),
    [(None, False, False, "ERROR"), ("1", False, False, "WARNING"), (None, True, False, "WARNING"),
     ("0", False, False, "ERROR"), (None, False, True, "INFO")],
)  # fmt: skip
def test_the_engines_log_level(clean_env, verbose_env, verbose_flag, debug, level):
    if verbose_env is not None:
        clean_env.setenv(VERBOSE, verbose_env)
    with warnings.catch_warnings():
        assert quiet_libraries(debug, verbose_flag) == level
    assert os.environ["VLLM_LOGGING_LEVEL"] == level and os.environ["VLLM_LOGGING_STREAM"] == "ext://sys.stderr"
    quiet_torch = level == "ERROR"  # torch's loggers and C++ warnings (NUMA binding) only when quiet
    assert (os.environ.get("TORCH_LOGS") == "-all") is quiet_torch
    assert (os.environ.get("TORCH_CPP_LOG_LEVEL") == "ERROR") is quiet_torch


def test_a_level_already_in_the_environment_wins(clean_env):
    clean_env.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    with warnings.catch_warnings():
        quiet_engines()
    assert os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"


def test_engine_warnings_are_hidden_and_the_kits_kept(clean_env):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_engines()
        for module in ("torch.jit._script", "vllm.platforms", "triton", "rearank_kit.rank.settings", "trl.trainer"):
            warnings.warn_explicit("said", DeprecationWarning, "f.py", 1, module=module)
    assert [str(w.message) for w in seen] == ["said", "said"]  # the kit's and TRL's (about the user's settings)


def test_verbose_on_the_command_line_and_a_bad_switch(clean_env, tmp_path):
    def cli(*args, **env):
        return subprocess.run([sys.executable, "-m", "rearank_kit.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=300)  # fmt: skip

    assert cli("--verbose", "eval", "--data", "sample").returncode == 0
    assert cli("eval", "--verbose", "--data", "sample").returncode == 0
    assert "--verbose" in cli("rerank", "--help").stdout
    proc = cli("eval", "--data", "sample", **{VERBOSE: "maybe"})
    assert proc.returncode == 2 and f"{VERBOSE}='maybe'" in proc.stderr and "Traceback" not in proc.stderr
