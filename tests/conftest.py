"""Shared fixtures: the real TREC DL data beside the checkout, the kit's sample, the CLI.

``../shared/data`` (dl19, dl20, dl21) is put on ``REARANK_KIT_DATA`` when it exists, so that
benchmark names resolve in-process and in CLI subprocesses alike; tests that need it take the
``shared_data`` fixture and are skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE = REPO / "data" / "sample"

if SHARED_DATA.is_dir():
    _current = [p for p in os.environ.get("REARANK_KIT_DATA", "").split(os.pathsep) if p]
    if str(SHARED_DATA) not in _current:
        os.environ["REARANK_KIT_DATA"] = os.pathsep.join([str(SHARED_DATA), *_current])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` with dl19, dl20 and dl21; skips the test when it is not there."""
    if not all((SHARED_DATA / name / "qrels.txt").is_file() for name in ("dl19", "dl20", "dl21")):
        pytest.skip(f"real TREC DL data not found at {SHARED_DATA} (see docs/DEVELOPING.md, 'Data')")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The kit's own benchmark folder ``data/sample`` (original text, shipped in the repository)."""
    assert (SAMPLE / "candidates.trec").is_file(), f"{SAMPLE} is missing; it is part of the repository"
    return SAMPLE


def _run_cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rearank_kit.cli", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture
def run_cli():
    """``run_cli("eval", "--data", "sample")``: the real command line in a subprocess."""
    return _run_cli


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs two workers with ``--dist loadgroup``) the notebooks
    run on one worker, one after another in their order, as a learner runs them: notebook 04
    plots notebook 03's fresh run when it finds one, and must not find it half written."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
