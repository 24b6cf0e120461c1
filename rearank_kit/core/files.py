"""Every file and folder the kit writes goes through here: nothing is ever left half-written.

* ``atomic_write_text`` / ``write_json`` / ``write_jsonl``: a temporary file beside the target,
  renamed over it when complete;
* ``append_jsonl``: flushed, fsynced appends for resumable logs (``rankings.jsonl``,
  ``metrics.jsonl``...); ``read_jsonl`` / ``iter_jsonl`` read them back and skip a last line
  torn by an interrupt;
* ``staged_folder`` + ``publish_folder``: a whole output folder (a converted checkpoint, an
  augmented data set) is built beside its target and renamed into place at the end;
* ``foreign_entry`` / ``check_replaceable`` / ``check_run_folder``: the kit replaces only what
  it wrote. An existing folder may be replaced (``--overwrite``) when it is empty, or when its
  record (``manifest.json``; ``rearank_kit.json`` for an export) says the kit made it as the same
  kind of output and it holds nothing but the files the kit writes there; anything else is
  refused, naming the folder and the first file the kit did not write, and nothing is touched.
  Folders inside the kit's cache (``$REARANK_KIT_CACHE``) are the kit's own;
* ``check_writable``: an output that cannot be written fails before the work, not after it.

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

from rearank_kit.core.env import cache_dir
from rearank_kit.core.errors import DataError, KitError

MANIFEST = "manifest.json"
# The files that say a folder is the kit's output, and of which kind: a manifest, or the record an
# export writes beside merged weights (a manifest there would make it look like a training run).
RECORD_FILES = (MANIFEST, "rearank_kit.json")

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
        with open(path, "rb") as fh:
            raw_lines = list(enumerate(fh, start=1))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    lines: list[tuple[int, str | None]] = []  # None: a line that is not UTF-8
    for number, raw in raw_lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if skip_torn_tail and number == raw_lines[-1][0] and not raw.endswith(b"\n"):  # a character cut in two
                lines.append((number, None))
                continue
            raise DataError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                            "save the file as UTF-8") from None
        if line.strip():
            lines.append((number, line))
    result = JsonlRecords(path)
    for position, (number, line) in enumerate(lines):
        try:
            if line is None:
                raise json.JSONDecodeError("not UTF-8 text", "", 0)
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


def publish_folder(tmp: str | os.PathLike, target: str | os.PathLike, *, kind: str | None = None,
                   names: Iterable[str] = (), label: str = "") -> Path:
    """Rename the finished folder ``tmp`` to ``target`` with ordinary permissions.

    An existing ``target`` is replaced only when it is the kit's own (``check_replaceable``: the
    same ``kind`` of output, by default the kind ``tmp``'s record names, holding only ``names``
    and the entries of ``tmp``); anything else is a KitError and nothing is touched. What was at
    ``target`` is moved aside first and deleted last, so that at every moment ``target`` is either
    the old output or the new one, never a mixture.
    """
    tmp, target = Path(tmp), Path(target)
    record = folder_record(tmp)
    check_replaceable(target, kind or (record[1] if record else None), {*names, *(p.name for p in tmp.iterdir())},
                      label=label)  # fmt: skip
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


# --- what the kit may replace -------------------------------------------------------------------


def folder_record(folder: str | os.PathLike) -> tuple[str, str | None, dict] | None:
    """(record file name, kind, record) of the kit's record in ``folder`` (``RECORD_FILES``), or
    None when it has none that reads as a JSON object. An export record without a kind (written
    before it had one) is an ``export``."""
    for name in RECORD_FILES:
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            kind = record.get("kind")
            if kind is None and name != MANIFEST and "template" in record:
                kind = "export"
            return name, kind if isinstance(kind, str) else None, record
    return None


def _in_cache(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(cache_dir().resolve())
    except OSError:
        return False


def _kit_leftover(name: str, allowed: set[str]) -> bool:
    """A hidden temporary file or folder this module makes beside an allowed entry (``.NAME.*.tmp``)."""
    return name.startswith(".") and (name.endswith(".tmp") or ".old-" in name) and any(
        name.startswith(f".{a}.") for a in allowed)  # fmt: skip


def foreign_entry(folder: str | os.PathLike, kind: str | None, names: Iterable[str] = ()) -> str | None:
    """None when ``folder`` may be replaced by the kit's ``kind`` output, whose entries are ``names``;
    else why not, naming the first entry (in sorted order) the kit did not write.

    Replaceable: an absent or empty folder, a folder inside the kit's cache, or a folder whose
    record (``folder_record``) has this ``kind`` and that holds nothing but ``names``, the entries
    its record lists under ``files``, the record itself and this module's temporary leftovers.
    """
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink():
        return "is a symbolic link (the kit replaces a folder it wrote, never a link)"
    if not folder.is_dir():
        return "is not a folder"
    entries = sorted(p.name for p in folder.iterdir())
    if not entries or _in_cache(folder):
        return None
    record = folder_record(folder)
    if record is None or record[1] is None:
        return (f"holds {entries[0]!r}, which rearank-kit did not write (the folder has no {MANIFEST} of a "
                "rearank-kit output)")  # fmt: skip
    file, recorded, content = record
    if kind is not None and recorded != kind:
        return f"is the output of rearank-kit {recorded} (its {file} says so), not of {kind}"
    listed = content.get("files")
    allowed = {file, *names, *(listed if isinstance(listed, list) else ())}
    for name in entries:
        if name not in allowed and not _kit_leftover(name, allowed):
            return f"holds {name!r}, which rearank-kit does not write there"
    return None


def check_replaceable(target: str | os.PathLike, kind: str | None, names: Iterable[str] = (),
                      label: str = "") -> None:  # fmt: skip
    """Refuse (KitError, nothing touched) to replace ``target`` unless ``foreign_entry`` allows it.
    ``label`` is how the user named the folder (``"--out "``)."""
    problem = foreign_entry(target, kind, names)
    if problem is not None:
        what = f"an earlier {kind} output" if kind else "an earlier output"
        raise KitError(f"{label}{target}: {problem}; it is left as it is. Only an empty folder or {what} of "
                       "rearank-kit is replaced: choose another folder, or move what you keep out of it")


def check_run_folder(folder: str | os.PathLike, kind: str, label: str = "", parts: Iterable[str] = (),
                     names: Iterable[str] = ()) -> None:  # fmt: skip
    """A folder the kit writes into and resumes (a training run, an evaluation) must be absent,
    empty, or hold an earlier ``kind`` output (or, before that output's record is written at its
    end, only subfolders holding outputs of the ``parts`` kinds and the files ``names``, e.g. the
    rerank runs of an interrupted ``reproduce``); a folder of someone else's files is refused
    before anything is written into it (the kit would write beside, or over, them). The files
    beside an earlier output are left alone."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise KitError(f"{label}{folder}: exists and is not a folder")
    if not folder.is_dir() or not any(folder.iterdir()) or _in_cache(folder):
        return
    record = folder_record(folder)
    if record is not None and record[1] == kind:
        return
    parts, names = set(parts), set(names)
    if record is None and parts:
        strays = [p.name for p in sorted(folder.iterdir()) if p.name not in names
                  and not (p.is_dir() and (folder_record(p) or (None, None))[1] in parts)]  # fmt: skip
        if not strays:
            return
        problem = f"holds {strays[0]!r}, which rearank-kit did not write (it is not a {kind} output)"
    else:
        problem = foreign_entry(folder, kind)
    raise KitError(f"{label}{folder}: {problem}; nothing was written. Give a new or empty folder, or an "
                   f"earlier {kind} output to resume")


def existing_parent(path: str | os.PathLike) -> Path:
    """``path`` or its nearest existing ancestor (an output folder, a cache, may not exist yet)."""
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | os.PathLike, label: str = "") -> None:
    """Fail now, not after the work: the nearest existing folder of ``path`` (itself or a parent)
    must take a new file. A real probe, as permissions alone do not tell (read-only mounts, root)."""
    path = Path(path)
    existing = existing_parent(path)
    if not existing.is_dir():
        raise KitError(f"{label}{path}: {existing} exists and is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rearank-kit-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise KitError(f"{label}{path}: cannot write in {existing} ({exc.strerror or exc}); nothing was done. "
                       "Choose a folder you can write to") from None


def check_published_out(out: str | os.PathLike, kind: str, names, overwrite: bool, label: str = "--out ") -> None:
    """Before anything is read, for an output built aside and published whole (``publish_folder``):
    ``out`` must be new or empty, or with ``overwrite`` an earlier ``kind`` output holding only
    ``names`` (``check_replaceable``: anything else is refused, nothing touched), and both it and
    its parent (where the new folder is built) writable."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise KitError(f"{label}{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise KitError(f"{label}{out}: exists and is not an empty folder; choose another {label.strip()} or pass "
                           "--overwrite")
        check_replaceable(out, kind, names, label=label)
    check_writable(out, label=label)
    check_writable(out.parent, label=label)
