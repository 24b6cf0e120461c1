"""GRPO from scratch: the loss equals TRL's on the same tensors; the tiny policy samples, and learns.

TRL's own code computes the reference loss: a real ``GRPOTrainer`` (a one-layer random Llama, so
that building it takes a second) whose per-token log-probabilities are replaced by the test's
tensors, then ``trainer._compute_loss`` — every line of TRL's clipping, KL and normalisation runs.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rearank_kit.course.grpo_scratch import PlackettLuce, ScratchConfig, scratch_sets, train_scratch
from rearank_kit.train.grpo import group_advantages, grpo_loss, kl_k3


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rearank_kit.rank.bundled import bundled_model_dir

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def trl_loss(model_dir, out_dir, tensors, *, loss_type, beta, bias_corrected_kl, max_len):
    """TRL's GRPOTrainer._compute_loss on the given per-token log-probabilities."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    logps, old, ref, adv, mask = tensors
    args = GRPOConfig(output_dir=str(out_dir), loss_type=loss_type, beta=beta, epsilon=0.2, num_generations=4,
                      per_device_train_batch_size=4, max_completion_length=max_len, use_cpu=True, report_to="none",
                      use_bias_correction_kl=bias_corrected_kl)  # fmt: skip
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                          args=args, train_dataset=Dataset.from_dict({"prompt": ["x"] * 4}))  # fmt: skip
    trainer._get_per_token_logps_and_entropies = lambda *a, **kw: (logps, torch.zeros_like(logps), None)
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    b, t = logps.shape
    inputs = {"prompt_ids": torch.zeros(b, 2, dtype=torch.long), "prompt_mask": torch.ones(b, 2, dtype=torch.long),
              "completion_ids": torch.zeros(b, t, dtype=torch.long), "completion_mask": mask.long(),
              "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
              "num_items_in_batch": mask.sum()}  # fmt: skip
    return trainer._compute_loss(trainer.model, inputs)


def tensors_from_the_tiny_policy(seed):
    """Per-pick log-probabilities of sampled permutations: the from-scratch policy's own tensors."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(1, 6, 4, generator=gen, dtype=torch.float64)
    policy = PlackettLuce()
    with torch.no_grad():
        policy.w.copy_(torch.randn(4, generator=gen, dtype=torch.float64))
    perms = policy.sample(features, 4, gen)
    with torch.no_grad():
        old = policy.log_probs(features, perms)
        policy.w.add_(0.5 * torch.randn(4, generator=gen, dtype=torch.float64))  # a few steps later: ratios != 1
    logps = policy.log_probs(features, perms).detach().requires_grad_(True)
    ref = old + 0.2 * torch.randn(old.shape, generator=gen, dtype=torch.float64)
    mask = (torch.rand(old.shape, generator=gen) > 0.2).to(torch.float64)
    mask[:, 0] = 1
    return logps, old, ref, group_advantages(torch.randn(4, generator=gen, dtype=torch.float64), 4), mask


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss_type, beta, bias_corrected_kl",
    [("grpo", 0.0, False), ("grpo", 0.04, False), ("grpo", 0.04, True), ("bnpo", 0.04, False),
     ("dapo", 0.0, False), ("dapo", 0.04, True), ("dr_grpo", 0.04, False)],
)  # fmt: skip
def test_the_loss_equals_trls(tiny_model_dir, tmp_path, loss_type, beta, bias_corrected_kl):
    tensors = tensors_from_the_tiny_policy(seed=len(loss_type) + int(beta * 100))
    logps, old, ref, adv, mask = tensors
    theirs = trl_loss(tiny_model_dir, tmp_path, tensors, loss_type=loss_type, beta=beta,
                      bias_corrected_kl=bias_corrected_kl, max_len=logps.shape[1])  # fmt: skip
    ours, stats = grpo_loss(logps, old, adv, mask, ref_logps=ref, beta=beta, loss_type=loss_type,
                            kl_ratio_weighted=bias_corrected_kl)  # fmt: skip
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12, abs=1e-12)
    (g_theirs,) = torch.autograd.grad(theirs, logps)
    (g_ours,) = torch.autograd.grad(ours, logps)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-10, atol=1e-12)
    assert 0 < stats["clip_fraction"] < 1  # the ratios were moved: some tokens are clipped, some not


def test_group_advantages_use_bessels_correction_like_trl():
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5, 0.2, 0.2, 0.2, 0.2], dtype=torch.float64)
    adv = group_advantages(rewards, 4)
    # group 1: mean 0.5, sample std sqrt(0.5 / 3) = 0.4082; group 2: all equal -> 0
    assert adv[:4].tolist() == pytest.approx([0.5 / (math.sqrt(0.5 / 3) + 1e-4), -0.5 / (math.sqrt(0.5 / 3) + 1e-4),
                                              0.0, 0.0])  # fmt: skip
    assert adv[4:].tolist() == [0.0] * 4
    assert nanstd(rewards.view(-1, 4), dim=1).tolist() == pytest.approx(rewards.view(-1, 4).std(1).tolist())
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(rewards, 3)


def test_kl_k3_is_zero_on_agreement_and_positive_elsewhere():
    x = torch.tensor([-1.0, -2.0])
    assert kl_k3(x, x).tolist() == [0.0, 0.0]
    assert (kl_k3(x, x + torch.tensor([0.3, -0.3])) > 0).all()


def test_plackett_luce_probabilities_sum_to_one_and_sampling_follows_them():
    features = torch.tensor([[[1.0], [0.0], [-1.0]]], dtype=torch.float64)
    policy = PlackettLuce(1)
    with torch.no_grad():
        policy.w.fill_(1.0)
    perms = torch.tensor([list(p) for p in itertools.permutations(range(3))]).unsqueeze(0)
    probs = policy.log_probs(features, perms).sum(-1).exp()
    assert float(probs.sum()) == pytest.approx(1.0)
    # by hand: P([0, 1, 2]) = e^1 / (e^1 + e^0 + e^-1) * e^0 / (e^0 + e^-1)
    e = math.e
    assert float(probs[0]) == pytest.approx(e / (e + 1 + 1 / e) * 1 / (1 + 1 / e))
    samples = policy.sample(features, 20000, torch.Generator().manual_seed(0))[0]
    freq = [(samples == p).all(-1).float().mean().item() for p in perms[0]]
    assert freq == pytest.approx(probs.tolist(), abs=0.015)


@pytest.fixture(scope="module")
def sample_sets():
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.train.augment import AugmentConfig, augment

    rows = augment(load_benchmark("sample", top_k=20), AugmentConfig(samples_per_query=20, window=5, seed=0)).rows
    return scratch_sets(rows)


def test_one_step_per_round_never_clips_several_do(sample_sets):
    one = train_scratch(sample_sets, ScratchConfig(rounds=20, steps_per_round=1, learning_rate=0.2)).history
    assert (one["clip_fraction"] == 0).all() and (one["ratio_min"] == 1).all() and (one["ratio_max"] == 1).all()
    four = train_scratch(sample_sets, ScratchConfig(rounds=20, steps_per_round=4, learning_rate=0.2)).history
    first, later = four[four["inner_step"] == 0], four[four["inner_step"] > 0]
    assert (first["clip_fraction"] == 0).all() and later["clip_fraction"].max() > 0


def test_the_reward_rises(sample_sets):
    run = train_scratch(sample_sets, ScratchConfig(rounds=80))
    reward = run.history["reward"]
    assert reward.iloc[-20:].mean() > reward.iloc[:20].mean() + 0.3
    assert run.evaluations["train"].iloc[-1] > run.evaluations["train"].iloc[0]
