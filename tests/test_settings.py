"""The one owner of rerank settings: RerankConfig.for_model resolves window, stride, template and
generation limit the same way for every entry point, and refuses numbers out of range by flag."""

from __future__ import annotations

import argparse
import json

import pytest

from rearank_kit.commands._common import in_range
from rearank_kit.core.errors import KitError, TemplateMismatchWarning
from rearank_kit.core.prompts import load_template
from rearank_kit.rank.settings import RANGES, RerankConfig


def _trained_run(folder, window: int, template: str = "compact"):
    """A training run folder as `rearank-kit train` leaves it (manifest + adapter config)."""
    folder.mkdir()
    tmpl = load_template(template)
    (folder / "manifest.json").write_text(json.dumps({
        "kind": "train", "model": "smollm2-135m", "template": template, "template_hash": tmpl.hash,
        "config": {"template": template, "window": window}, "reward": {"lenient": True},
    }))  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    return folder


# model, what the user gave -> (window, stride, template, max_new_tokens)
CASES = [
    ("smollm2-135m", {}, (20, 10, "compact", 128)),
    ("smollm2-135m", {"window": 8}, (8, 4, "compact", 128)),
    ("smollm2-135m", {"window": 8, "step": 8}, (8, 8, "compact", 128)),
    ("smollm2-135m", {"window": 3}, (3, 1, "compact", 128)),
    ("smollm2-135m", {"template": "rearank"}, (20, 10, "rearank", 2048)),
    ("smollm2-135m", {"max_new_tokens": 7}, (20, 10, "compact", 7)),
    ("le723z/Rearank-7B", {}, (20, 10, "rearank", 2048)),
    ("TRAINED", {}, (5, 2, "compact", 128)),  # the window a training run recorded
    ("TRAINED", {"window": 10}, (10, 5, "compact", 128)),  # asked for: wins over the recorded one
]


@pytest.mark.parametrize("model, given, expected", CASES)
def test_for_model_resolves_every_default_in_one_place(tmp_path, model, given, expected):
    if model == "TRAINED":
        model = str(_trained_run(tmp_path / "run", window=5))
    config, template = RerankConfig(**given).for_model(model)
    assert (config.window, config.step, config.template, config.max_new_tokens) == expected
    assert template.name == config.template


def test_a_named_template_another_than_the_trained_one_warns(tmp_path):
    run = str(_trained_run(tmp_path / "run", window=5))
    with pytest.warns(TemplateMismatchWarning, match="trained with the 'compact' template"):
        _, template = RerankConfig(template="rankgpt").for_model(run)
    assert template.name == "rankgpt"


@pytest.mark.parametrize("field, value, words", [
    ("window", 0, "--window (window): 0 is out of range; it must be at least 2"),
    ("window", 1, "--window (window): 1 is out of range"),
    ("step", 0, "--stride (step): 0 is out of range; it must be at least 1"),
    ("top_k", 0, "--top-k (top_k): 0 is out of range"),
    ("top_k", -1, "--top-k (top_k): -1 is out of range"),
    ("batch_size", 0, "--batch-size (batch_size): 0 is out of range"),
    ("max_new_tokens", 0, "--max-new-tokens (max_new_tokens): 0 is out of range"),
    ("temperature", -1.0, "--temperature (temperature): -1.0 is out of range; it must be at least 0"),
    ("top_p", 0.0, "--top-p (top_p): 0.0 is out of range; it must be greater than 0 and at most 1"),
    ("top_p", 1.5, "--top-p (top_p): 1.5 is out of range"),
    ("group_size", 0, "--group-size (group_size): 0 is out of range"),
])  # fmt: skip
def test_zero_is_never_a_default(field, value, words):
    """0 used to be replaced silently by a default (`window or 20`); now it is an error by flag."""
    with pytest.raises(KitError) as info:
        RerankConfig(**{field: value}).for_model("smollm2-135m")
    assert words in str(info.value)


def test_a_stride_longer_than_the_window_is_refused():
    with pytest.raises(KitError, match="--stride \\(9\\) must not exceed --window \\(5\\)"):
        RerankConfig(window=5, step=9).check()


@pytest.mark.parametrize("field, text, ok", [
    ("window", "20", 20), ("window", "1", None), ("window", "abc", None), ("step", "0", None),
    ("temperature", "0", 0.0), ("temperature", "-0.5", None), ("top_k", "100", 100),
])  # fmt: skip
def test_the_command_line_checks_the_same_ranges(field, text, ok):
    kind = float if field == "temperature" else int
    parse = in_range(field, kind)
    if ok is None:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    else:
        assert parse(text) == ok


def test_every_numeric_field_has_a_range():
    numeric = {name for name, kind in RerankConfig.__annotations__.items() if "int" in str(kind) or "float" in str(kind)}
    assert numeric - {"seed"} == set(RANGES)
