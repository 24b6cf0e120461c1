"""Direct SFT (the paper's Table 3 baseline): targets, data preparation, and a real 2-step run with
the bundled model whose folder then serves as a policy for evaluate-sets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import load_template
from rearank_kit.train.sft import CPU_TINY, PAPER, PRESETS, apply_overrides, best_order, prepare_sft, sft_target

# --- the target ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("grades", "order"), [
    ([0, 3, 1, 0, 2], [1, 4, 2, 0, 3]),  # by grade, highest first
    ([1, 0, 1, 2, 1], [3, 0, 2, 4, 1]),  # ties keep the initial order: [1], [3], [5] among the 1s
    ([0, 0, 0], [0, 1, 2]),  # nothing to improve: the initial order
])  # fmt: skip
def test_best_order(grades, order):
    assert best_order(grades) == order


def test_targets_follow_each_templates_answer_format():
    grades = [0, 3, 1]  # best: [2] > [3] > [1]
    assert sft_target(load_template("rearank"), grades) == "<answer>[2] > [3] > [1]</answer>"  # no <think>: none to imitate
    assert sft_target(load_template("compact"), grades) == "2] > [3] > [1]</answer>"  # after the prefill "<answer>["
    assert sft_target(load_template("rankgpt"), grades) == "[2] > [3] > [1]"  # asks for the bare ranking


def test_presets_and_overrides():
    assert set(PRESETS) == {"cpu-tiny", "paper"}
    assert (CPU_TINY.model, CPU_TINY.template, CPU_TINY.window, CPU_TINY.lenient) == ("smollm2-135m", "compact", 5, True)
    assert (PAPER.model, PAPER.template, PAPER.window, PAPER.lora_r) == ("Qwen/Qwen2.5-7B-Instruct", "rearank", 20, 0)
    c = apply_overrides(CPU_TINY, {"max_steps": "2", "lenient": "false", "torch_threads": "none"})
    assert (c.max_steps, c.lenient, c.torch_threads) == (2, False, None)
    with pytest.raises(KitError, match="unknown SFT setting 'beta'"):
        apply_overrides(CPU_TINY, {"beta": "0.1"})


def test_sft_config_learns_the_target_only(tmp_path):
    args = CPU_TINY.to_sft_config(str(tmp_path))
    assert args.completion_only_loss is True and args.packing is False and args.max_length == 1024
    assert (args.max_steps, args.learning_rate, args.per_device_train_batch_size) == (30, 1e-4, 4)


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_sets(tmp_path_factory, sample_dir):
    from rearank_kit.train.augment import AugmentConfig, run_augment

    out = tmp_path_factory.mktemp("aug") / "w5"
    run_augment(sample_dir, out, AugmentConfig(window=5, samples_per_query=3, seed=0, template="compact",
                                               test_fraction=0.2))  # fmt: skip
    return out


def test_prepare_renders_the_inference_prompt_and_the_target(sample_sets):
    p = prepare_sft(CPU_TINY, sample_sets)
    rows = [json.loads(line) for line in (sample_sets / "sets.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert len(p.dataset) == len(train) > 0  # the train split only
    first = p.dataset[0]
    # The prompt is exactly what the model sees at evaluation: chat template + prefill.
    assert first["prompt"] == p.template.render(p.tokenizer, train[0]["query"], train[0]["texts"])
    assert first["prompt"].endswith("<|im_start|>assistant\n<answer>[")
    expected = "] > [".join(str(i + 1) for i in best_order(train[0]["grades"])) + "]</answer><|im_end|>"
    assert first["completion"] == expected  # ends with the end-of-turn token: the model learns to stop
    assert "training sets" in p.summary()


def test_prepare_refuses_what_would_train_wrong(sample_sets):
    with pytest.raises(KitError, match="sets of 20 passages, but the data has sets of 5"):
        prepare_sft(dataclasses.replace(CPU_TINY, window=20), sample_sets)
    with pytest.raises(KitError, match=r"longer than max_length=50 tokens .*cut the target"):
        prepare_sft(dataclasses.replace(CPU_TINY, max_length=50), sample_sets)
    with pytest.raises(KitError, match="strict parsing never scores"):
        prepare_sft(dataclasses.replace(CPU_TINY, template="rankgpt", lenient=False), sample_sets)


# --- a real run ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_steps_then_the_run_is_a_policy_for_evaluate_sets(tmp_path, sample_sets, run_cli):
    from safetensors.torch import load_file

    from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets
    from rearank_kit.rank.policy import resolve_policy

    run = tmp_path / "sft"
    proc = run_cli("sft", "--preset", "cpu-tiny", "--data", sample_sets, "--steps", "2", "--out", run,
                   "--set", "per_device_train_batch_size=2", "--set", "torch_threads=1", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fine-tuned 2 steps" in proc.stdout

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kind"] == "train" and manifest["method"] == "sft" and manifest["status"] == "finished"
    assert manifest["template"] == "compact" and manifest["template_hash"] == load_template("compact").hash
    assert manifest["config"]["template"] == "compact" and manifest["config"]["window"] == 5
    assert manifest["reward"]["lenient"] is True and manifest["result"]["steps"] == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all(r["loss"] > 0 for r in records)
    # LoRA's B matrices start at zero: any non-zero one shows the optimizer moved the weights.
    weights = load_file(str(run / "adapter_model.safetensors"))
    assert any(float(t.abs().sum()) > 0 for name, t in weights.items() if "lora_B" in name)

    policy = resolve_policy(run)
    assert (policy.template, policy.lenient, policy.window, policy.trained) == ("compact", True, 5, True)
    assert policy.adapter == str(run) and policy.base == "smollm2-135m"

    metrics = evaluate_sets(run, sample_sets, tmp_path / "eval", SetEvalConfig(split="test", per_query=1),
                            progress=False)  # fmt: skip
    assert metrics["model"] == str(run) and metrics["template"] == "compact" and metrics["lenient"] is True
    assert (tmp_path / "eval" / "sets.jsonl").is_file()
