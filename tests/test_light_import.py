"""Importing the kit, its CLI and its light modules must not load the heavy stacks.

Measured in a fresh interpreter each time. How long the imports take is a benchmark
(``benchmarks/import_time.py``), not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "vllm", "pyserini", "jnius", "bm25s", "ir_datasets", "datasets", "openai")

LIGHT_IMPORTS = [
    "import rearank_kit, rearank_kit.cli, rearank_kit.core.records, rearank_kit.core.metrics",
    "import rearank_kit.commands.eval",
    "import rearank_kit.data.retrieval, rearank_kit.data.remote, rearank_kit.commands.retrieve",
    "import rearank_kit.cli; rearank_kit.cli.build_parser()",  # every subcommand's module
    "import rearank_kit.evaluation.reproduce, rearank_kit.data.bright, rearank_kit.rank.policy, rearank_kit.core.stats, rearank_kit.train.export",
    "import rearank_kit.evaluation.heldout, rearank_kit.train.shared_prefix, rearank_kit.train.settings",
]


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", LIGHT_IMPORTS)
def test_light_imports_load_no_heavy_module(statement):
    assert _loaded_after(statement) == []


def test_eval_command_runs_without_torch(sample_dir):
    code = (
        "import sys, io, contextlib\n"
        "from rearank_kit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['eval', '--data', 'sample']) == 0\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, 'pyserini' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "False"]
