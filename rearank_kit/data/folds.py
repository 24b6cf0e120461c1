"""Cross-validation folds by query, fixed once in a file that every step accepts.

A claim that training helps is a comparison on queries the model never saw. With 53 annotated
queries (DL21) one held-out split is too small and too lucky, so the kit cross-validates: each
query belongs to one of K folds; fold k's model trains on the other folds and reranks fold k. The
assignment is drawn once, before any experiment, and committed (``data/folds/dl21.json``): drawing
it again until a split flatters a method is tuning on the test queries.

Within the training folds, settings are chosen on *validation* queries: those of the next fold
(k + 1 mod K), so fold k trains on K - 2 folds, validates on one and is tested on one. The final
model of a setting trains on every fold (``all_folds``).

The file: ``{"kind": "folds", "num_folds": K, "folds": {qid: fold, ...}, ...}``; ``augment``,
``train-scored`` and ``crossval`` take it with ``--folds FILE --fold K``.

    from rearank_kit.data.folds import load_folds
    folds = load_folds("data/folds/dl21.json")
    folds.split(0)       # {qid: "train" | "validation" | "test"}
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import read_json, write_json

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Folds:
    """Each query's fold (0 .. num_folds - 1), and where the assignment was read from."""

    folds: dict[str, int]
    num_folds: int
    path: str | None = None

    def check_fold(self, fold: int) -> int:
        if not 0 <= fold < self.num_folds:
            raise KitError(f"--fold {fold}: {self.path or 'the folds'} has folds 0 to {self.num_folds - 1}")
        return fold

    def validation_fold(self, fold: int) -> int:
        """The fold whose queries choose the settings of fold ``fold``'s model: the next one."""
        return (self.check_fold(fold) + 1) % self.num_folds

    def split(self, fold: int, validation: bool = True) -> dict[str, str]:
        """qid -> ``test`` (fold ``fold``), ``validation`` (the next fold; ``train`` when not
        ``validation``) or ``train`` (the rest)."""
        val = self.validation_fold(fold) if validation else None
        return {q: "test" if f == fold else "validation" if f == val else "train" for q, f in self.folds.items()}

    def queries(self, fold: int, split: str, validation: bool = True) -> list[str]:
        """The sorted qids of one ``split`` of fold ``fold``."""
        if split not in SPLITS:
            raise KitError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return sorted(q for q, s in self.split(fold, validation).items() if s == split)

    def check_covers(self, qids: Iterable[str], what: str) -> None:
        """Every query of ``what`` (e.g. a benchmark) has a fold: none is silently left out."""
        missing = sorted(set(qids) - set(self.folds))
        if missing:
            raise KitError(f"{self.path or 'folds'}: no fold for {len(missing)} quer{'y' if len(missing) == 1 else 'ies'} "
                           f"of {what} (e.g. {', '.join(missing[:3])}); the folds were drawn for another set of queries")


def load_folds(path: str | os.PathLike) -> Folds:
    """Read a folds file, checking every field (a KitError names the file and the field)."""
    path = Path(path)
    record = read_json(path)
    if not isinstance(record, dict) or record.get("kind") != "folds":
        raise KitError(f"{path}: not a folds file (expected a JSON object with \"kind\": \"folds\")")
    folds, k = record.get("folds"), record.get("num_folds")
    if not isinstance(k, int) or k < 2:
        raise KitError(f"{path}: field 'num_folds' must be an integer of at least 2, got {k!r}")
    if not isinstance(folds, dict) or not folds:
        raise KitError(f"{path}: field 'folds' must map each query id to its fold")
    bad = [q for q, f in folds.items() if not isinstance(f, int) or isinstance(f, bool) or not 0 <= f < k]
    if bad:
        raise KitError(f"{path}: field 'folds': query {bad[0]!r} has fold {folds[bad[0]]!r}, not an integer 0 to {k - 1}")
    empty = sorted(set(range(k)) - set(folds.values()))
    if empty:
        raise KitError(f"{path}: fold {empty[0]} has no query")
    return Folds({str(q): f for q, f in folds.items()}, k, str(path))


def draw_folds(qids: Iterable[str], num_folds: int = 5, seed: int = 0) -> Folds:
    """A fresh assignment: the sorted qids shuffled with ``random.Random(seed)``, fold = position
    mod ``num_folds``. Draw once and commit it (``write_folds``); never draw again to look for a
    better split."""
    ordered = sorted(set(map(str, qids)))
    if len(ordered) < num_folds:
        raise KitError(f"{len(ordered)} queries cannot fill {num_folds} folds")
    random.Random(seed).shuffle(ordered)
    return Folds(dict(sorted((q, i % num_folds) for i, q in enumerate(ordered))), num_folds)


def write_folds(folds: Folds, path: str | os.PathLike, **fields) -> Path:
    """The folds file (``fields``: where they came from, e.g. ``data``, ``seed``, ``how``)."""
    return write_json(path, {"kind": "folds", **fields, "num_folds": folds.num_folds, "folds": folds.folds})
