"""The named GRPO presets of the generative policy (``TrainConfig`` values, ``settings.py``).

* ``paper``     the paper's stated setting (Qwen2.5-7B-Instruct, full fine-tuning, 8 GPUs), the kit's
                assumptions where the paper states none (marked at ``PAPER``);
* ``gpu-small`` one 80 GB GPU, LoRA on the same 7B model;
* ``cpu-tiny``  the bundled SmolLM2-135M on a CPU, whole answers: it runs (under a minute a step), it does not rank;
* ``cpu-firstpick`` the kit's measured CPU recipe: the same model trained on its first pick only.

    from rearank_kit.train.presets import get_preset
    config = get_preset("cpu-firstpick")
"""

from __future__ import annotations

import dataclasses

from rearank_kit.core.errors import KitError
from rearank_kit.train.settings import TrainConfig

# --- presets -------------------------------------------------------------------------------------

# cpu-tiny: seen to work on 2 shared CPU cores: 30-115 s a step depending on the machine's load,
# 3.7-5.2 GB peak RSS (docs/TRAINING.md, run 0; benchmarks/train_step.py). One prompt per step
# (4 completions), short answer-only replies; LoRA so that the optimizer state stays small, and
# a learning rate 100x the paper's because LoRA updates few, zero-initialised weights.
CPU_TINY = TrainConfig(
    preset="cpu-tiny",
    model="smollm2-135m",
    template="compact",  # inline passages cut to 300 characters, reply prefilled with "<answer>["
    window=5,
    lenient=True,
    num_generations=4,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    num_processes=1,
    max_prompt_length=1024,  # 5 x 300 characters is about 450 tokens
    max_completion_length=64,  # "3] > [1] > [5] > [2] > [4]</answer>" is about 20 tokens
    temperature=0.7,  # 1.0 makes a 135M model ramble; 0.7 keeps replies parseable yet varied
    max_steps=30,
    learning_rate=1e-4,
    beta=0.0,  # no reference forward pass: a 30-step LoRA run stays close to the base model
    lora_r=16,
    bf16=False,  # fp32: CPUs without bf16 units are slower in bf16
    gradient_checkpointing=True,
    use_cpu=True,
    save_steps=10,
)

# cpu-firstpick: the kit's CPU recipe (docs/TRAINING.md, "A CPU recipe"; data/runs/cpu-firstpick-dl21):
# GRPO as a one-token bandit over "which passage goes first". The reply is prefilled up to the
# first identifier ("<answer>["), the model samples one token, and the reward scores the set with
# that passage moved to the top (lenient parsing keeps the others in their given order). Each
# choice departs from the paper for a measured reason:
# - the "difference" reward (nDCG@10 gain over the given order, in [-1, 1]) instead of the
#   normalised one: on random-order sets a choice that ignores the passages then earns 0 on
#   average at every position, so only reading the passages pays; the normalised reward divides
#   by the set's room and punishes moving anything on sets with little room, and runs collapsed
#   onto the position the model already preferred ("copy the input");
# - one new token: a 135M model names one identifier and then rambles, and generation and the
#   backward pass of 20 tokens cost more than the 250-token prompt they follow;
# - position-balanced steps (rotate_sets): 2 sets a step, each in its 5 rotations, 8 completions
#   each; without them a run drifted onto positions, away from content, within 50 steps;
# - shared prompts: each prompt computed once per pass (shared_prefix.py), about 20 s a step on 2
#   idle cores instead of about 4 times that;
# - LoRA on the top 8 of 30 layers: backpropagation stops there, half the step time of all layers.
CPU_FIRSTPICK = dataclasses.replace(
    CPU_TINY,
    preset="cpu-firstpick",
    template="compact-short",  # compact with 120-character passages: half the prompt tokens
    reward_mode="difference",
    num_generations=8,
    per_device_train_batch_size=80,  # 2 sets x 5 rotations x 8 completions, one optimizer step a round
    rotate_sets=True,
    max_prompt_length=512,  # 5 x 120 characters plus the query twice: about 250 tokens
    max_completion_length=1,  # the first identifier only
    temperature=1.0,  # sample the model's own first-pick distribution, unsharpened
    learning_rate=5e-5,  # 1e-4 and 2e-4 drifted onto one position within 10-25 steps (probes)
    max_steps=60,  # 120 sets (600 prompts), about 20 minutes on 2 idle cores
    lora_top_layers=8,
    share_prompts=True,
    gradient_checkpointing=False,  # needed by share_prompts; 135M parameters fit easily
    torch_threads=2,
    save_steps=20,
    save_total_limit=10,  # every checkpoint of the run, to pick one on the validation sets
    clipped_ratio_max=1.0,  # every completion is cut at its one token by design: no alarm
    format_floor=0.0,  # a one-token reply earns no format reward; a ranking that changes nothing earns 0
)

# paper: REARANK as the paper states it (Zhang et al., 2025), trained there with verl on one node
# of 8 GPUs. Stated by the paper: Qwen2.5-7B-Instruct, RL only (no SFT, full fine-tuning), the
# rearank prompt on sets of 20 passages, 128 prompts x 32 rollouts a step, about 160 steps, the
# GRPO objective of its Eq. 3 and the reward of rewards.py. The authors' released code holds no
# training configuration, so every other value is the kit's assumption, marked "assumed" below
# (learning rate and schedule, KL coefficient and estimator, clip range, sampling temperature,
# length limits): verl's GRPO defaults and examples, not "what the authors ran".
#
# One optimizer step per generation round: Eq. 3 is on-policy, one update per batch of 128
# prompts x 32 completions, about 160 updates. TRL counts completions:
#   generation_batch_size = 128 prompts x 32 = 4,096 completions per round
#   per_device_train_batch_size x processes x gradient_accumulation_steps = 4 x 8 x 128 = 4,096
#   completions per optimizer step (TRL's steps_per_generation = 128 micro-batches, derived)
#   max_steps = 160 (TRL's max_steps counts optimizer steps)
# The other reading: verl cuts each rollout batch into ppo_mini_batch_size mini-batches, one
# optimizer step each. The paper states no mini-batch; with 8 prompts (256 completions) a round is
# 16 steps, 2,560 in all:
#   --set gradient_accumulation_steps=8 --set max_steps=2560
# Loss: Eq. 3 averages each completion over its own tokens, then over the group: TRL's "grpo".
# verl's default loss_agg_mode (token-mean over the mini-batch) is TRL's "dapo": --set loss_type=dapo.
# TRL 1.16's two corrections are off: Eq. 3 has neither an importance weight between the vLLM
# sampler and the trainer nor a ratio-weighted KL; with them on, the run optimizes another objective.
PAPER = TrainConfig(
    preset="paper",
    model="Qwen/Qwen2.5-7B-Instruct",
    template="rearank",
    window=20,  # REARANK's sets: 20 passages, cut to 400 characters by the template
    lenient=False,
    num_generations=32,
    generation_batch_size=4096,  # 128 prompts x 32 completions per round
    per_device_train_batch_size=4,
    gradient_accumulation_steps=128,  # 4 x 8 GPUs x 128 = 4,096 completions: one optimizer step per round
    num_processes=8,
    num_iterations=1,  # each completion used once: on-policy
    max_prompt_length=3072,  # assumed: 20 passages of 400 characters and the instructions fit in ~2,000 tokens
    max_completion_length=2048,  # assumed; the paper's responses grow to ~850 tokens
    temperature=1.0,  # assumed: verl's rollout default
    top_p=1.0,  # assumed: verl's rollout default
    max_steps=160,  # about 160 rounds, one optimizer step each
    learning_rate=1e-6,  # assumed: verl's GRPO examples for 7B models
    lr_scheduler_type="constant",  # assumed: verl's default, no warm-up
    warmup_steps=0,
    max_grad_norm=1.0,  # assumed: verl's default
    beta=0.01,  # assumed: KL coefficient of verl's GRPO examples, the k3 estimator in the loss (low_var_kl)
    epsilon=0.2,  # assumed: verl's default clip ratio
    loss_type="grpo",  # Eq. 3: mean over each completion's tokens, then over the group
    scale_rewards="group",  # Eq. 3's advantage: (r - group mean) / group std
    vllm_importance_sampling_correction=False,  # not in Eq. 3 (TRL's default: on)
    use_bias_correction_kl=False,  # not in Eq. 3: the plain k3 KL (TRL's default: on)
    lora_r=0,  # full fine-tuning (ZeRO-3 or FSDP shards it, configs/accelerate/)
    bf16=True,
    gradient_checkpointing=True,
    use_vllm=True,
    vllm_mode="colocate",
    vllm_gpu_memory_utilization=0.3,  # 24 GB of 80: 15 GB of bf16 weights + ~9 GB KV cache per GPU
    save_steps=20,  # every 20 rounds
    save_total_limit=2,
    log_completions_every=10,  # 4,096 completions a round: keep one round in ten
)

# gpu-small: one 80 GB GPU, LoRA on the same 7B model and prompt. Memory, bf16:
#   policy weights 7.6e9 x 2 bytes                              ~15 GB
#   LoRA r=16 on all linear layers: ~40e6 params, fp32 weights + grads + Adam (16 bytes each) ~0.7 GB
#   reference model: none, the base with the adapter switched off                0 GB
#   activations, gradient checkpointing, 2 sequences of <= 5,120 tokens: layer inputs
#     28 x 2 x 5120 x 3584 x 2 bytes ~2 GB, one layer recomputed ~2 GB, fp32 logits of the
#     completion 2 x 2048 x 152,064 x 4 bytes ~2.5 GB (x2 for log-softmax)      ~9 GB
#   vLLM colocate: 0.3 x 80 GB = 24 GB = its own 15 GB weight copy + ~9 GB KV cache
#     (57 KB a token for Qwen2.5-7B: 28 layers x 2 x 4 KV heads x 128 x 2 bytes -> ~160k tokens)
#   total ~50 GB, leaving room for the allocator's fragmentation.
# It keeps the paper's objective (loss_type "grpo", TRL's two corrections off) and the paper
# preset's assumed values, but takes 4 optimizer steps a round (PPO's clip then matters from the
# second step on): with groups of 8, one step per round would use a round's 64 completions once,
# and no measurement here says which is better. Both are a --set away.
GPU_SMALL = dataclasses.replace(
    PAPER,
    preset="gpu-small",
    num_generations=8,
    generation_batch_size=64,  # 8 prompts x 8 completions per round
    per_device_train_batch_size=2,
    gradient_accumulation_steps=8,  # 16 completions (2 prompts) per optimizer step: 4 steps a round
    num_processes=1,
    max_steps=400,  # 100 rounds, 800 prompts
    learning_rate=1e-5,  # LoRA moves few, zero-initialised weights: 10x the full fine-tuning rate
    lora_r=16,
    lora_alpha=32,
    vllm_gpu_memory_utilization=0.3,
    save_steps=50,
    log_completions_every=1,
)

PRESETS: dict[str, TrainConfig] = {c.preset: c for c in (CPU_TINY, CPU_FIRSTPICK, GPU_SMALL, PAPER)}


def get_preset(name: str) -> TrainConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise KitError(f"unknown training preset {name!r}; presets: {', '.join(PRESETS)}") from None
