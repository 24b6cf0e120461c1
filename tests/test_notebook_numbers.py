"""Numbers a notebook (or the teacher's key) states in its text must be what the code makes: preset
sizes, counts of datasets and windows, what the committed runs hold. Each row: the file, a pattern
whose group is the stated number, and the code that computes it. A text that drifts from the code
fails here instead of misleading a class."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _presets() -> int:
    from rearank_kit.train.presets import PRESETS

    return len(PRESETS)


def _firstpick(field: str):
    from rearank_kit.train.presets import CPU_FIRSTPICK

    return getattr(CPU_FIRSTPICK, field)


def _prompts_per_step() -> int:
    from rearank_kit.train.presets import CPU_FIRSTPICK as c

    # the preset's micro-batch of completions / completions per prompt = prompts a step
    return c.per_device_train_batch_size * c.gradient_accumulation_steps // c.num_generations


def _sets_per_step() -> int:
    from rearank_kit.train.presets import CPU_FIRSTPICK as c

    return _prompts_per_step() // (c.window if c.rotate_sets else 1)


def _beir() -> int:
    from rearank_kit.data.remote import PAPER_BEIR

    return len(PAPER_BEIR)


def _windows(k: int, window: int, step: int) -> int:
    from rearank_kit.rank.windows import window_positions

    return len(window_positions(k, window, step))


def _reference_max_zero_std() -> float:
    path = ROOT / "data" / "runs" / "cpu-firstpick-dl21" / "metrics.jsonl"
    return round(max(json.loads(line).get("frac_reward_zero_std", 0) for line in path.read_text().splitlines()), 2)


def _paper_length() -> int:
    from rearank_kit.evaluation.paper import reference_lines

    return int(reference_lines("normalized")["completions/mean_length"][0].at)


def _uniform_entropy() -> float:
    return round(math.lgamma(21), 1)  # log 20!


WORDS = {"four": 4, "five": 5, "seven": 7, "eight": 8, "ten": 10}

CLAIMS = [
    ("notebooks/03_grpo_training.py", r"the (\w+) presets of the generative policy", _presets),
    ("notebooks/03_grpo_training.py", r"every group's (\w+) completions \(`num_generations` of `cpu-firstpick`\)",
     lambda: _firstpick("num_generations")),
    ("docs/TEACHING.md", r"greedy decoding gives\nthe (\w+) completions of a group", lambda: _firstpick("num_generations")),
    ("notebooks/04_reward_and_length_curves.py", r"and (\d+) prompts\n# a step", _prompts_per_step),
    ("notebooks/04_reward_and_length_curves.py", r"the preset draws (\d+) sets, each shown in its", _sets_per_step),
    ("notebooks/04_reward_and_length_curves.py", r"in its (\d+) rotations", lambda: _firstpick("window")),
    ("notebooks/04_reward_and_length_curves.py", r"growing longer \(to about (\d+) tokens", _paper_length),
    ("docs/TEACHING.md", r"highest `frac_reward_zero_std` is\n([0-9.]+) \(never 1\)", _reference_max_zero_std),
    ("notebooks/05_benchmark_evaluation.py", r"on (\w+) BEIR datasets", _beir),
    ("README.md", r"DL19/DL20 and (\w+) BEIR sets", _beir),
    ("notebooks/05_benchmark_evaluation.py", r"gives (\d+) windows per query, against", lambda: _windows(40, 5, 4)),
    ("notebooks/05_benchmark_evaluation.py", r"against (\d+) for the top 20", lambda: _windows(20, 5, 4)),
    ("docs/TEACHING.md", r"The top 40 takes (\d+) windows per query", lambda: _windows(40, 5, 4)),
    ("docs/TEACHING.md", r"against (\d+) for the top 20", lambda: _windows(20, 5, 4)),
    ("notebooks/04_reward_and_length_curves.py", r"would be log 20! = ([0-9.]+) nats", _uniform_entropy),
]


@pytest.mark.parametrize("path, pattern, compute", CLAIMS, ids=[f"{c[0]}:{c[1][:30]}" for c in CLAIMS])
def test_the_text_states_what_the_code_makes(path, pattern, compute):
    text = (ROOT / path).read_text(encoding="utf-8")
    found = re.findall(pattern, text)
    assert found, f"{path}: the sentence this row checks is gone ({pattern!r}); update the row with the text"
    expected = compute()
    for value in found:
        stated = WORDS.get(value.lower(), value)
        assert float(stated) == pytest.approx(float(expected)), f"{path}: the text says {value}, the code makes {expected}"


def test_no_stale_numbers_the_course_issue_found():
    """The drifted sentences the course review found stay gone."""
    stale = {
        "notebooks/03_grpo_training.py": ["Three presets", "four completions", "about 7,000 sets"],
        "notebooks/04_reward_and_length_curves.py": ["eight sets\n# a step", "length stays stable",
                                                     "`frac_reward_zero_std` 1?"],
        "notebooks/05_benchmark_evaluation.py": ["eight BEIR", "(two windows per query)"],
        "notebooks/06_reasoning_traces.py": ["exercise 1 adds the bundled model"],
        "docs/TEACHING.md": ["its spread within groups is smaller", "the second window"],
    }  # fmt: skip
    for path, phrases in stale.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        for phrase in phrases:
            assert phrase not in text, f"{path}: still says {phrase!r}"


# --- the self-check key (docs/TEACHING.md): every number recomputed --------------------------------


def _key_row(notebook: str) -> str:
    text = (ROOT / "docs" / "TEACHING.md").read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line.startswith(f"| {notebook} | (1)"))


def _scored_metrics() -> dict:
    return json.loads((ROOT / "data" / "runs" / "scored-grpo-dl21" / "metrics.json").read_text())


def _share_above_band(run: str, reward: str) -> int:
    band_file = {"scored": ROOT / "data" / "runs" / "scored-grpo-dl21" / "final" / "no_learning_band.jsonl",
                 "generative": ROOT / "data" / "runs" / "cpu-firstpick-dl21" / "no_learning_band.jsonl"}[run]
    steps_file = {"scored": ROOT / "data" / "runs" / "scored-grpo-dl21" / "final" / "metrics.jsonl",
                  "generative": ROOT / "data" / "runs" / "cpu-firstpick-dl21" / "metrics.jsonl"}[run]
    band = [json.loads(x) for x in band_file.read_text().splitlines()]
    steps = [json.loads(x) for x in steps_file.read_text().splitlines() if reward in x]
    return round(100 * sum(s[reward] > b["q95"] for s, b in zip(steps, band, strict=False)) / len(steps))


def _advantages() -> list[str]:
    import torch

    from rearank_kit.train.grpo import group_advantages

    return [f"{v:.1f}" for v in group_advantages(torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), 4).tolist()]


def _ndcg_rank2() -> str:
    from rearank_kit.core.metrics import ndcg_at_k

    return f"{ndcg_at_k(['other', 'relevant'], {'relevant': 3}, 10):.4f}"


def _augment_default(field: str):
    from rearank_kit.train.augment import AugmentConfig

    return getattr(AugmentConfig(), field)


def _probes() -> int:
    from rearank_kit.analysis.faithfulness import PROBES

    return len(PROBES)


def _rankings_of_five() -> int:
    from rearank_kit.train.grpo import all_rankings

    return len(all_rankings(5))


KEY = [
    ("00", lambda: f"(1) {_windows(20, 20, 10)} call for the top 20; {_windows(100, 20, 10)} for the top 100"),
    ("00", lambda: f"= {_ndcg_rank2()}"),
    ("01", lambda: f"(1) {_augment_default('samples_per_query')}."),
    ("01", lambda: f"C(100, 5) = {math.comb(100, 5):,}"),
    ("01", lambda: f"(3) {_augment_default('min_ndcg')};"),
    ("02", lambda: "(1) " + ", ".join(f"{float(v):.1f}" for v in _advantages())),
    ("03", lambda: f"log 20! = {_uniform_entropy()} nats"),
    ("03", lambda: "+{:.4f} nDCG@10, 95% CI +{:.4f} to +{:.4f}".format(_scored_metrics()["ndcg@10"]["delta"],
                                                                    *_scored_metrics()["ndcg@10"]["ci95"])),
    ("04", lambda: f"(1) {_reference_max_zero_std():.1f} (never 1)"),
    ("04", lambda: f"(2) {_share_above_band('scored', 'reward')}% of its 300 steps"),
    ("04", lambda: f"(the generative run: {_share_above_band('generative', 'rewards/rank_reward/mean')}%)"),
    ("04", lambda: "(3) {:.1f} standard errors".format(
        _scored_metrics()["final"]["step_reward"]["difference"] / _scored_metrics()["final"]["step_reward"]["standard_error"])),
    ("05", lambda: f"(2) {_windows(100, 20, 10)} windows"),
    ("05", lambda: "+{:.4f}, 95% CI {:+.4f} to {:+.4f}".format(_scored_metrics()["heldout"]["all"]["delta"],
                                                          *_scored_metrics()["heldout"]["all"]["ci95"])),
    ("06", lambda: f"(1) {_windows(20, 5, 4)} (windows"),
    ("07", lambda: f"(2) 5! = {_rankings_of_five()}"),
    ("08", lambda: f"(1) {_probes()}: original"),
]


@pytest.mark.parametrize("notebook, expected", KEY, ids=[f"{k[0]}-{i}" for i, k in enumerate(KEY)])
def test_the_self_check_key_states_what_the_kit_makes(notebook, expected):
    assert expected() in _key_row(notebook)


def test_every_notebook_ends_with_a_self_check_of_three_to_five_questions():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        text = path.read_text(encoding="utf-8")
        assert "## Self-check" in text, path.name
        section = text.split("## Self-check", 1)[1].split("# %%", 1)[0]
        questions = re.findall(r"^# (\d)\. ", section, flags=re.M)
        assert 3 <= len(questions) <= 5, path.name
        assert _key_row(path.name[:2])  # its answers are in the key
