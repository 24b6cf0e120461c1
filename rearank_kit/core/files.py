"""Every file and folder the kit writes goes through here: nothing is ever left half-written.

* ``atomic_write_text`` / ``write_json`` / ``write_jsonl``: a temporary file beside the target,
  renamed over it when complete;
* ``append_jsonl``: flushed, fsynced appends for resumable logs (``rankings.jsonl``,
  ``metrics.jsonl``...); ``read_jsonl`` / ``iter_jsonl`` read them back and skip a last line
  torn by an interrupt;
* ``staged_folder`` + ``publish_folder``: a whole output folder (a converted checkpoint, an
  augmented data set) is built beside its target and renamed into place at the end.

Outputs get ordinary permissions (``0666``/``0777`` minus the umask), although ``mkstemp`` and
``mkdtemp`` create them private.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import DataError

# --- permissions --------------------------------------------------------------------------------


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_ordinary(path: str | os.PathLike) -> None:
    """Give ``path`` (and, for a folder, everything in it) the permissions a plain write would."""
    path = Path(path)
    mask = current_umask()
    for p in [path, *(path.rglob("*") if path.is_dir() else ())]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


# --- whole files --------------------------------------------------------------------------------


@contextmanager
def _atomic_file(path: str | os.PathLike) -> Iterator[Any]:
    """A text file to write ``path`` through: a temporary file beside it, renamed over it when
    the block ends normally, deleted when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        make_ordinary(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    with _atomic_file(path) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


# --- JSONL --------------------------------------------------------------------------------------


def jsonl_line(record: Any) -> str:
    """One record as a JSONL line (UTF-8 text kept as is; values JSON cannot hold become strings)."""
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write ``records`` (any iterable, consumed line by line) atomically, replacing ``path``."""
    with _atomic_file(path) as fh:
        for record in records:
            fh.write(jsonl_line(record))
    return Path(path)


def append_jsonl(path: str | os.PathLike, *records: Any) -> None:
    """Append records and fsync them, so that finished work survives an interrupt."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(jsonl_line(r) for r in records))
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class JsonlRecords:
    """What ``read_jsonl`` found: the records, their 1-based line numbers, and whether a torn
    last line was skipped."""

    path: Path
    records: list[dict] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    torn_tail: bool = False

    def numbered(self) -> Iterator[tuple[int, dict]]:
        return zip(self.line_numbers, self.records, strict=True)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def read_jsonl(path: str | os.PathLike, *, skip_torn_tail: bool = True) -> JsonlRecords:
    """The JSON objects of a JSONL file, one per non-blank line.

    A last line that is not valid JSON is what an interrupt leaves in an append-only log: it is
    skipped (``torn_tail`` True) unless ``skip_torn_tail`` is False. Anything else wrong is a
    DataError naming ``path:line``. Lines are split on newlines only (``str.splitlines`` would
    also split inside a string holding U+2028).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [(n, line) for n, line in enumerate(fh, start=1) if line.strip()]
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    result = JsonlRecords(path)
    for position, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_torn_tail and position == len(lines) - 1:
                result.torn_tail = True
                break
            raise DataError(f"{path}:{number}: invalid JSON ({exc.msg}); only a torn last line is skipped") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        result.records.append(record)
        result.line_numbers.append(number)
    return result


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a DataError naming the file (and the line) when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def iter_jsonl(path: str | os.PathLike, *, skip_torn_tail: bool = True) -> Iterator[dict]:
    """Records of a log that may not exist yet (nothing then); see ``read_jsonl``."""
    if Path(path).exists():
        yield from read_jsonl(path, skip_torn_tail=skip_torn_tail)


# --- whole folders ------------------------------------------------------------------------------


@contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A new temporary folder beside ``target`` to build an output in; it is removed when the
    block fails or ends without ``publish_folder`` having moved it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename the finished folder ``tmp`` to ``target`` with ordinary permissions.

    Whatever was at ``target`` is moved aside first and deleted last, so that at every moment
    ``target`` is either the old output or the new one, never a mixture.
    """
    tmp, target = Path(tmp), Path(target)
    make_ordinary(tmp)
    old = None
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "previous")
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
