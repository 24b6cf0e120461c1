"""Atomic writes, resumable JSONL logs, staged folders, manifests and resume checks, the
environment helpers (flags, cache, network probe), optional extras and the notebook helpers."""

import json
import os
import socket
import tomllib
from pathlib import Path

import pytest

from rearank_kit.core import env
from rearank_kit.core import optional as _optional
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import (
    append_jsonl,
    atomic_write_text,
    iter_jsonl,
    publish_folder,
    read_json,
    read_jsonl,
    staged_folder,
    write_json,
    write_jsonl,
)
from rearank_kit.core.manifest import (
    build_manifest,
    check_resumable,
    fingerprint_files,
    read_manifest,
    setup_differences,
    write_manifest,
)
from rearank_kit.course import notebook

REPO = Path(__file__).resolve().parents[1]


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


JSONL_CASES = [
    # label, file content, records read, torn tail, DataError fragment (None: no error)
    ("two records", '{"a": 1}\n{"a": 2}\n', [{"a": 1}, {"a": 2}], False, None),
    ("no final newline", '{"a": 1}\n{"a": 2}', [{"a": 1}, {"a": 2}], False, None),
    ("blank lines skipped", '\n{"a": 1}\n   \n{"a": 2}\n\n', [{"a": 1}, {"a": 2}], False, None),
    ("torn last line", '{"a": 1}\n{"a": 2, "b', [{"a": 1}], True, None),
    ("torn line, blanks after", '{"a": 1}\n{"a": \n\n', [{"a": 1}], True, None),
    ("empty file", "", [], False, None),
    # json.dumps(ensure_ascii=False) leaves U+2028 raw: str.splitlines would cut the record there
    ("U+2028 inside a string", '{"t": "a\u2028b"}\n', [{"t": "a\u2028b"}], False, None),
    ("bad line in the middle", '{"a": 1}\nnot json\n{"a": 3}\n', None, None, ":2: invalid JSON"),
    ("not an object", '{"a": 1}\n[1, 2]\n{"a": 3}\n', None, None, ":2: expected a JSON object, got list"),
    ("not an object, last", '{"a": 1}\n7\n', None, None, ":2: expected a JSON object, got int"),
]


@pytest.mark.parametrize(("label", "content", "records", "torn", "error"), JSONL_CASES, ids=[c[0] for c in JSONL_CASES])
def test_read_jsonl(tmp_path, label, content, records, torn, error):
    path = tmp_path / "log.jsonl"
    path.write_text(content, encoding="utf-8")
    if error:
        with pytest.raises(DataError, match=error):
            read_jsonl(path)
        return
    log = read_jsonl(path)
    assert log.records == records and log.torn_tail is torn
    assert [r for _, r in log.numbered()] == records
    if torn:  # what the strict reader (for files that must be whole) says instead
        with pytest.raises(DataError, match="invalid JSON"):
            read_jsonl(path, skip_torn_tail=False)


def test_read_jsonl_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [n for n, _ in read_jsonl(path).numbered()] == [1, 3]


def test_unreadable_jsonl_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")
    assert list(iter_jsonl(tmp_path / "missing.jsonl")) == []  # a log not started yet
    (tmp_path / "latin1.jsonl").write_bytes(b'{"a": "\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        read_jsonl(tmp_path / "latin1.jsonl")


@pytest.mark.parametrize(
    "label, content, message",
    [
        ("missing", None, r"missing\.json: cannot read"),
        ("not utf-8", b'{"a": "\xe9"}', r"not utf-8\.json: not UTF-8"),
        ("broken on line 3", b'{\n  "a": 1,\n  "b": }\n', r"broken on line 3\.json:3: invalid JSON"),
    ],
)
def test_read_json_errors_name_the_file_and_line(tmp_path, label, content, message):
    path = tmp_path / f"{label}.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_json(path)


def test_read_json_round_trip(tmp_path):
    write_json(tmp_path / "m.json", {"caf\u00e9": [1, 2]})
    assert read_json(tmp_path / "m.json") == {"caf\u00e9": [1, 2]}


def test_write_jsonl_round_trip_and_atomic_failure(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    rows = [{"qid": "1", "text": "caf\u00e9 \u2028 line"}, {"qid": "2", "grades": [0, 3]}]
    write_jsonl(path, rows)
    assert read_jsonl(path).records == rows and "caf\u00e9" in path.read_text(encoding="utf-8")

    def failing():
        yield {"qid": "3"}
        raise RuntimeError("interrupted while writing")

    with pytest.raises(RuntimeError):
        write_jsonl(path, failing())
    assert read_jsonl(path).records == rows  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["rows.jsonl"]


def test_append_jsonl_appends_several_records_at_once(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"step": 1})
    append_jsonl(log, {"step": 2}, {"step": 3})
    assert [r["step"] for r in iter_jsonl(log)] == [1, 2, 3]


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
    monkeypatch.setenv("REARANK_KIT_SMOKE", "On")  # env_flag's values, like every other switch
    assert notebook.smoke()
    monkeypatch.setenv("REARANK_KIT_RUNS", str(tmp_path))
    folder = notebook.run_folder("nb01")
    assert folder == tmp_path / "nb01" and folder.is_dir()
    assert os.fspath(folder).startswith(os.fspath(tmp_path))


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    target = atomic_write_text(tmp_path / "x.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# --- staged folders -----------------------------------------------------------------------------


def test_publish_replaces_an_old_folder_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "manifest.json").write_text('{"kind": "demo", "files": ["old.txt"]}')  # an earlier output of the kit
    (target / "old.txt").write_text("old")
    with staged_folder(target) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
        (tmp / "manifest.json").write_text('{"kind": "demo"}')
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.")
        publish_folder(tmp, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["manifest.json", "sub",
                                                                                   "sub/new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # neither the stage nor the old folder left
    mask = os.umask(0)
    os.umask(mask)
    assert (target / "sub").stat().st_mode & 0o777 == 0o777 & ~mask  # mkdtemp made it 0700
    assert (target / "sub" / "new.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask


def test_a_failed_stage_leaves_nothing_and_keeps_the_old_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), staged_folder(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").read_text() == "old"
    with staged_folder(tmp_path / "new"):  # never published: removed, nothing created
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- resuming against a manifest ----------------------------------------------------------------

SETUP_CASES = [
    # label, recorded, now, ignore, differences
    ("same", {"model": "m", "config": {"window": 20}}, {"model": "m", "config": {"window": 20}}, (), []),
    ("top-level value", {"model": "m"}, {"model": "n"}, (), ["model: 'm' -> 'n'"]),
    ("nested value", {"config": {"window": 20, "step": 10}}, {"config": {"window": 10, "step": 10}}, (),
     ["config.window: 20 -> 10"]),
    ("ignored at any depth", {"config": {"batch_size": 8}}, {"config": {"batch_size": 1}}, ("batch_size",), []),
    ("not recorded: not compared", {"model": "m"}, {"model": "m", "data_fingerprint": "abc"}, (), []),
    ("a list from JSON", {"config": {"stop": ["x"]}}, {"config": {"stop": ["y"]}}, (), ["config.stop: ['x'] -> ['y']"]),
    ("int equals float", {"config": {"top_p": 1}}, {"config": {"top_p": 1.0}}, (), []),
]


@pytest.mark.parametrize(("label", "recorded", "now", "ignore", "diffs"), SETUP_CASES, ids=[c[0] for c in SETUP_CASES])
def test_setup_differences(label, recorded, now, ignore, diffs):
    assert setup_differences(recorded, now, ignore) == diffs


def test_check_resumable(tmp_path):
    assert check_resumable(tmp_path, {"model": "m"}) is None  # no manifest: nothing to compare
    write_manifest(tmp_path, "rerank", model="m", config={"window": 20, "batch_size": 8})
    assert check_resumable(tmp_path, {"model": "m", "config": {"window": 20, "batch_size": 1}}, kind="rerank",
                           ignore=("batch_size",))["kind"] == "rerank"  # fmt: skip
    with pytest.raises(KitError, match=r"made differently \(config.window: 20 -> 10\); use a new output folder"):
        check_resumable(tmp_path, {"config": {"window": 10}}, kind="rerank")
    with pytest.raises(KitError, match="holds a 'rerank' output, not a 'train' one"):
        check_resumable(tmp_path, {"model": "m"}, kind="train")
    # a section of the manifest, and the caller's own words (train.py's resume check)
    with pytest.raises(KitError, match=r"--resume with different training settings \(window: 20 -> 5\); new --out"):
        check_resumable(tmp_path, {"window": 5}, section="config", problem="--resume with different training settings",
                        advice="new --out")  # fmt: skip
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(KitError, match="unreadable manifest"):
        read_manifest(tmp_path)


# --- environment: flags, cache, network ---------------------------------------------------------

FLAG_CASES = [
    # value of the variable, what env_flag gives (default False); KitError for anything else
    (None, False), ("", False), ("  ", False),
    ("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("on", True), ("On", True),
    ("0", False), ("false", False), ("no", False), ("OFF", False),
    ("2", KitError), ("enabled", KitError), ("y", KitError),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), FLAG_CASES)
def test_env_flag(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("REARANK_KIT_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("REARANK_KIT_TEST_FLAG", value)
    if expected is KitError:
        with pytest.raises(KitError, match="REARANK_KIT_TEST_FLAG=.*1/true/yes/on or 0/false/no/off"):
            env.env_flag("REARANK_KIT_TEST_FLAG")
    else:
        assert env.env_flag("REARANK_KIT_TEST_FLAG") is expected
    if value in (None, "", "  "):
        assert env.env_flag("REARANK_KIT_TEST_FLAG", default=True) is True


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path))
    assert env.cache_dir() == tmp_path and env.cache_dir("benchmarks", "x") == tmp_path / "benchmarks" / "x"
    monkeypatch.setenv("REARANK_KIT_CACHE", "~/kit-cache")  # expanded, for models and benchmarks alike
    assert env.cache_dir("benchmarks") == Path.home() / "kit-cache" / "benchmarks"
    monkeypatch.delenv("REARANK_KIT_CACHE")
    assert env.cache_dir() == Path.home() / ".cache" / "rearank-kit"


def test_network_probe_against_local_sockets(monkeypatch):
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        open_port, closed_port = listening.getsockname()[1], closed.getsockname()[1]
        assert env.unreachable([("127.0.0.1", closed_port), ("127.0.0.1", open_port)], timeout=2) is None
        problem = env.unreachable([("127.0.0.1", closed_port)], timeout=2)
        assert problem.startswith(f"127.0.0.1:{closed_port} (ConnectionRefusedError")
        # With a proxy, only the proxy is tried (the hosts are reached through it).
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{open_port}")
        assert env.unreachable(["no-such-host.invalid"], timeout=2) is None


# --- optional extras ----------------------------------------------------------------------------


def test_every_extra_named_for_a_missing_module_exists():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = {e for names, _, _ in _optional.EXTRAS.values() for e in names}
    assert named and named <= set(extras), named - set(extras)


@pytest.mark.parametrize(
    ("module", "hint"),
    [("vllm", "pip install 'rearank-kit[gpu]' or pip install 'rearank-kit[cpu-vllm]'"),
     ("pyserini.search.lucene", "pip install 'rearank-kit[retrieval]'"),
     ("Stemmer", "pip install 'rearank-kit[retrieval]'"),
     ("openai", "pip install openai (a dependency of rearank-kit itself"),
     ("trl", "pip install trl (a dependency of rearank-kit itself"),
     ("somethingelse", "pip install somethingelse")],
)
def test_install_hints(module, hint):
    assert _optional.install_hint(module).startswith(hint)


def test_require_names_what_to_install():
    with pytest.raises(ImportError, match="Install it with: pip install no_such_module_here"):
        _optional.require("no_such_module_here")
