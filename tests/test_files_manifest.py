"""Atomic writes, resumable JSONL logs, manifests and the notebook helpers."""

import json
import os

import pytest

from rearank_kit import notebook
from rearank_kit.files import append_jsonl, atomic_write_text, iter_jsonl, write_json
from rearank_kit.manifest import build_manifest, fingerprint_files, write_manifest


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json(target, {"a": Unserialisable()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_jsonl_log_survives_a_torn_last_line(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"step": 1})
    append_jsonl(log, {"step": 2})
    with open(log, "a") as fh:
        fh.write('{"step": 3, "rew')  # an interrupt in the middle of a write
    assert [r["step"] for r in iter_jsonl(log)] == [1, 2]


def test_jsonl_log_corruption_in_the_middle_is_an_error(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(json.JSONDecodeError):
        list(iter_jsonl(log))


def test_manifest_has_provenance_fields(tmp_path):
    path = write_manifest(tmp_path, "test", model="m", template="rearank", template_hash="abc", seed=3)
    m = json.loads(path.read_text())
    for key in ("kind", "created", "git_commit", "python", "packages", "model", "template", "template_hash", "seed"):
        assert key in m
    assert m["seed"] == 3 and m["kind"] == "test"
    assert "rearank-kit" in m["packages"]
    assert build_manifest("x")["kind"] == "x"


def test_fingerprint_changes_with_content(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("one")
    before = fingerprint_files([a])
    a.write_text("two")
    assert fingerprint_files([a]) != before
    assert len(before) == 16


def test_notebook_smoke_switch_and_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("REARANK_KIT_SMOKE", "1")
    assert notebook.smoke() and notebook.pick(100, 2) == 2
    monkeypatch.setenv("REARANK_KIT_SMOKE", "0")
    assert not notebook.smoke() and notebook.pick(100, 2) == 100
    monkeypatch.setenv("REARANK_KIT_RUNS", str(tmp_path))
    folder = notebook.run_folder("nb01")
    assert folder == tmp_path / "nb01" and folder.is_dir()
    assert os.fspath(folder).startswith(os.fspath(tmp_path))


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "x.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
