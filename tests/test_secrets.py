"""The one scrubber (``core/secrets.py``) and every place a user can put a token.

Table-driven unit cases for the scrubber, then the writers that must use it: the manifest (its
fields and the recorded command line), the resume check (a scrubbed manifest still resumes), the
trainer's pickled arguments, and the CLI's printed errors. The slow test at the end plants a token
in each place a user can put one, runs the real commands, and greps every file they wrote and
everything they printed.
"""

import json
import pickle
import sys

import pytest

from rearank_kit.core.manifest import build_manifest, check_resumable, write_manifest
from rearank_kit.core.secrets import REDACTED, is_secret_name, scrub, scrub_argv, scrub_text, scrub_url, secret_keys

TOKEN = "hf_PLANTEDtokenABCDEFGHIJ0123456789"
PASSWORD = "PLANTEDpassw0rd"

# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("hub_token", True),
        ("HF_TOKEN", True),
        ("--api-key", True),
        ("OPENAI_API_KEY", True),
        ("apiKey", True),  # camelCase is split into words
        ("apikey", True),
        ("password", True),
        ("client_secret", True),
        ("push_to_hub_token", True),
        ("max_new_tokens", False),  # a count of tokens, not a token
        ("average_tokens_across_devices", False),
        ("tokenizer", False),
        ("monkey", False),  # "key" must be a word of its own
        ("vllm_server_base_url", False),  # a URL: scrubbed as a URL, not emptied
    ],
)
def test_secret_names_are_words(name, secret):
    assert is_secret_name(name) is secret


# --- text, URLs, command lines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://alice:pw@host:8000/v1", "http://***@host:8000/v1"),  # user info
        ("http://host/v1?api_key=abc&model=m", "http://host/v1?api_key=***&model=***"),  # every query value
        ("https://host/v1#token=abc", "https://host/v1#token=***"),
        ("http://localhost:8000/v1", "http://localhost:8000/v1"),  # nothing to hide
    ],
)
def test_scrub_url(text, expected):
    assert scrub_url(text) == expected


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("request to http://u:s3cret@127.0.0.1:9/v1 failed", "s3cret", "http://***@127.0.0.1:9/v1"),
        ("--set hub_token=abc123 given", "abc123", "hub_token=***"),
        ("{'api_key': 'abc123'}", "abc123", "'api_key': '***'"),
        ('{"password": "abc123"}', "abc123", '"password": "***"'),
        ("password: abc123", "abc123", "password: ***"),
        (f"loaded {TOKEN} from somewhere", TOKEN, "loaded *** from"),  # a Hugging Face token anywhere
        ("sk-PLANTEDabcdefghijklmnopqrstu in a message", "PLANTED", "*** in a message"),
        ("Authorization: Bearer abc.def-123", "abc.def-123", "Authorization"),
    ],
)
def test_scrub_text(text, hidden, kept):
    out = scrub_text(text)
    assert hidden not in out and kept in out


def test_scrub_text_leaves_ordinary_words_alone():
    text = "max_new_tokens=64 window=20 template: compact; the key idea"
    assert scrub_text(text) == text


def test_scrub_argv_hides_flag_values_assignments_and_urls():
    argv = ["rearank-kit", "train", "--hub-token", "A1", "--api-key=A2", "--set", "hub_token=A3", "--base-url",
            "http://bob:A4@h/v1?key=A5", "--engine-arg", "hf_token=A6", "--max-new-tokens", "64"]  # fmt: skip
    out = scrub_argv(argv)
    assert not any(f"A{i}" in " ".join(out) for i in range(1, 7))
    assert out[:4] == ["rearank-kit", "train", "--hub-token", REDACTED] and out[-2:] == ["--max-new-tokens", "64"]


def test_scrub_records_at_every_depth():
    record = {"config": {"hub_token": TOKEN, "max_new_tokens": 5, "grpo_args": {"api_key": "x1"}},
              "key": {"model": "m", "layers": [1, 2]},  # a state cache's key: a mapping, kept
              "urls": ["http://u:p@h/v1"], "seed": 0, "empty_token": None}  # fmt: skip
    out = scrub(record)
    assert out["config"] == {"hub_token": REDACTED, "max_new_tokens": 5, "grpo_args": {"api_key": REDACTED}}
    assert out["key"] == {"model": "m", "layers": [1, 2]} and out["urls"] == ["http://***@h/v1"]
    assert out["seed"] == 0 and out["empty_token"] is None
    assert secret_keys({"a": {"token": "x"}, "hub_token": "", "api_key": "y"}) == ["a.token", "api_key"]


# --- the writers ----------------------------------------------------------------------------------


def test_the_manifest_scrubs_its_fields_and_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["rearank-kit", "rerank", "--base-url", f"http://u:{PASSWORD}@h/v1",
                                      "--hub-token", TOKEN])  # fmt: skip
    manifest = build_manifest("rerank", config={"hub_token": TOKEN}, server=f"http://u:{PASSWORD}@h/v1")
    text = json.dumps(manifest)
    assert TOKEN not in text and PASSWORD not in text
    assert manifest["command"] == "rearank-kit rerank --base-url http://***@h/v1 --hub-token ***"
    write_manifest(tmp_path, "rerank", config={"hub_token": TOKEN})
    assert TOKEN not in (tmp_path / "manifest.json").read_text()


def test_a_scrubbed_manifest_still_resumes_the_same_setup(tmp_path):
    setup = {"config": {"vllm_server_base_url": f"http://u:{PASSWORD}@h/v1", "beta": 0.0}}
    write_manifest(tmp_path, "train", **setup)
    assert check_resumable(tmp_path, setup, kind="train")["kind"] == "train"  # compared scrubbed to scrubbed


def test_training_args_are_pickled_without_a_token():
    pytest.importorskip("trl")
    from trl import GRPOConfig

    from rearank_kit.train.generative import scrubbed_args

    args = GRPOConfig(output_dir="unused", use_cpu=True, bf16=False, hub_token=TOKEN,
                      vllm_server_base_url=f"http://u:{PASSWORD}@h:8000")  # fmt: skip
    blob = pickle.dumps(scrubbed_args(args))
    assert TOKEN.encode() not in blob and PASSWORD.encode() not in blob
    assert args.hub_token == TOKEN  # the run in memory keeps what it was given


def test_printed_errors_are_scrubbed(run_cli, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("rerank", "--data", "sample", "--out", out, "--backend", "openai",
                   "--base-url", f"http://alice:{PASSWORD}@127.0.0.1:9/v1?api_key={TOKEN}")  # fmt: skip
    assert proc.returncode == 2 and "no server answers at http://***@127.0.0.1:9/v1?api_key=***" in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout and TOKEN not in proc.stderr + proc.stdout
    assert not out.exists()


# --- a token planted in each place a user can put one ---------------------------------------------


def _files_holding(folder, secrets):
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets))


@pytest.mark.slow  # trains one step of the bundled model (about 40 s) and exports it (about 10 s)
def test_no_planted_token_reaches_a_file_or_the_terminal(run_cli, tmp_path):
    env = {"HF_TOKEN": TOKEN, "OPENAI_API_KEY": "sk-PLANTEDopenaiKEY0123456789"}
    planted = [TOKEN, PASSWORD, "PLANTEDopenai", "PLANTEDquery"]
    printed = []

    def cli(*args):
        proc = run_cli(*args, env=env)
        printed.append(proc.stdout + proc.stderr)
        return proc

    aug = tmp_path / "aug"
    assert cli("augment", "--data", "sample", "--window", "5", "--samples-per-query", "2", "--out", aug,
               "--no-progress").returncode == 0  # fmt: skip
    # 1. a token in a training config file: refused by name, nothing written
    config = tmp_path / "config.yaml"
    config.write_text(f"hub_token: {TOKEN}\nmodel_init_kwargs:\n  token: {TOKEN}\n")
    proc = cli("train", "--config", config, "--data", aug, "--steps", "1", "--out", tmp_path / "refused")
    assert proc.returncode == 2 and "hub_token" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert not (tmp_path / "refused").exists()
    # 2. credentials in a URL setting (--set) and in the environment: the run goes on, records nothing of them
    run = tmp_path / "run"
    proc = cli("train", "--preset", "cpu-tiny", "--data", aug, "--steps", "1", "--save-steps", "1", "--out", run,
               "--set", f"vllm_server_base_url=http://bob:{PASSWORD}@localhost:1/v1?key=PLANTEDquery",
               "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (run / "training_args.bin").is_file() and (run / "checkpoint-1" / "training_args.bin").is_file()
    # 3. a manifest written before the kit scrubbed (a hand-edited one): export must not carry it on
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["grpo_args"] = {"hub_token": TOKEN}
    (run / "manifest.json").write_text(json.dumps(manifest))
    export = tmp_path / "export"
    assert cli("export", run, export).returncode == 0
    record = json.loads((export / "rearank_kit.json").read_text())
    assert record["kind"] == "export" and record["manifest"]["config"]["grpo_args"]["hub_token"] == REDACTED
    # 4. credentials in --base-url of a dead server: a message without them, no folder
    proc = cli("rerank", "--data", "sample", "--backend", "openai", "--out", tmp_path / "dead",
               "--base-url", f"http://alice:{PASSWORD}@127.0.0.1:9/v1?api_key=PLANTEDquery")  # fmt: skip
    assert proc.returncode == 2 and not (tmp_path / "dead").exists()
    # Every file written (the user's own two plants taken back) and everything printed: no secret.
    config.unlink()
    (run / "manifest.json").write_text(json.dumps({**manifest, "config": {**manifest["config"], "grpo_args": {}}}))
    assert _files_holding(tmp_path, planted) == []
    assert not [s for s in planted if any(s in text for text in printed)]
