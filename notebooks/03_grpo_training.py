# %% [markdown]
# # 03 · GRPO training: the presets, a live run on the CPU, and the launch on GPUs
#
# REARANK is trained with **GRPO** (Group Relative Policy Optimization, Shao et al., 2024), a
# reinforcement-learning method without a value model. For every prompt (one augmented set, notebook
# 01) the policy samples a *group* of `G` completions; each gets the reward of notebook 02; a
# completion's *advantage* is its reward minus the group's mean, divided by the group's standard
# deviation; and the policy takes PPO-clipped gradient steps that make above-average completions more
# likely, with an optional KL penalty (`beta`) that keeps it near the starting model. No critic, no
# human preference data: the judged grades are the only supervision.
#
# The kit runs GRPO with TRL (the paper used verl); `rearank_kit/train_presets.py` maps the paper's
# settings onto TRL's and checks the batch arithmetic before any model is loaded.
#
# **What you will learn**
#
# - the three presets (`paper`, `gpu-small`, `cpu-tiny`) and the batch arithmetic behind them;
# - the pre-flight checks that refuse a run that would fail or silently learn nothing;
# - a real GRPO run of the bundled 135M model on the CPU, and what it writes (`metrics.jsonl`,
#   `completions.jsonl`, checkpoints, the LoRA adapter);
# - how to launch the same code on one GPU and on eight.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (1 step) |
# | full | CPU, 2 cores | 15-60 minutes (30 steps, 20 s to 2 min each depending on the machine's load) |
# | `gpu-small` (guarded cell) | one 80 GB GPU | hours (400 steps) |
# | `paper` | 8 x 80 GB GPUs | see `docs/TRAINING.md` |
#
# The CPU run trains the pipeline, not a good reranker: 30 steps of a 135M model will not rank
# better than BM25. Notebook 04 reads the curves it writes.

# %%
import dataclasses
import shutil

import pandas as pd
from IPython.display import display

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("03_grpo_training")  # the only folder this notebook writes to
DATA = benchmark_or_sample("dl21")
print(describe_hardware())
print("seed queries:", DATA, "| run folder:", RUN)

# %% [markdown]
# ## 1. Three presets
#
# A preset is a frozen `TrainConfig` dataclass; every field has a one-line reason in
# `train_presets.py`. The fields that matter most, side by side:
#
# - **`paper`**: Qwen2.5-7B-Instruct, full fine-tuning on 8 GPUs, the `rearank` prompt on sets of 20,
#   `G = 32` completions per prompt, 128 prompts per generation round, learning rate 1e-6, KL
#   coefficient 0.01, completions up to 2,048 tokens, generated with vLLM inside the trainer.
# - **`gpu-small`**: the same model and prompt on one 80 GB GPU, with LoRA (only small low-rank
#   adapters are trained, so a 10x learning rate) and smaller groups (`G = 8`).
# - **`cpu-tiny`**: the bundled SmolLM2-135M with LoRA on sets of 5, the answer-only `compact`
#   prompt, short completions and the lenient reward, so that a laptop can run every piece.

# %%
from rearank_kit.train_presets import PRESETS, plan

FIELDS = ["model", "template", "window", "lenient", "num_generations", "generation_batch_size",
          "per_device_train_batch_size", "gradient_accumulation_steps", "num_processes",
          "max_completion_length", "temperature", "max_steps", "learning_rate", "beta", "loss_type",
          "lora_r", "bf16", "use_vllm", "vllm_gpu_memory_utilization"]
display(pd.DataFrame({name: {f: getattr(cfg, f) for f in FIELDS} for name, cfg in PRESETS.items()}))
for name, cfg in PRESETS.items():
    print(f"{name:>9}: {plan(cfg).describe()}")

# %% [markdown]
# **The batch arithmetic.** verl (the paper) counts *prompts*, TRL counts *completions*. The paper's
# 128 prompts x 32 completions = 4,096 completions per generation round (TRL's
# `generation_batch_size`), cut into optimizer steps of 256 completions (8 prompts) =
# `per_device_train_batch_size` 4 x 8 GPUs x `gradient_accumulation_steps` 8: 16 optimizer steps per
# round, each completion used once. A group of `G` completions must never be split across
# generation batches, or its mean and standard deviation would be wrong: `plan()` refuses such
# settings with the numbers that would fit.

# %%
from rearank_kit.errors import KitError
from rearank_kit.train_presets import CPU_TINY, GPU_SMALL, PAPER, format_config

try:
    plan(dataclasses.replace(CPU_TINY, num_generations=3))
except KitError as err:
    print("refused:", err)
print("\nThe paper preset, every field:\n")
print(format_config(PAPER))

# %% [markdown]
# ## 2. Training data for the tiny preset
#
# `cpu-tiny` trains on sets of 5 passages rendered with the `compact` prompt, so we augment the seed
# queries again with `window=5` (notebook 01 explains the recipe). The trainer re-renders every
# prompt from the passage texts with the preset's template, so a set made for one prompt can train
# another.

# %%
from rearank_kit.augment import AugmentConfig, augment, write_augmented
from rearank_kit.data import load_benchmark

CONFIG = dataclasses.replace(
    CPU_TINY,
    max_steps=pick(30, 1),  # optimizer steps; each is one prompt x 4 completions
    save_steps=pick(10, 1000),  # smoke mode: no intermediate checkpoint
    max_completion_length=pick(64, 32),
    torch_threads=pick(None, 1),  # smoke mode runs in CI on busy shared cores: one thread is faster there
)
aug_config = AugmentConfig(samples_per_query=pick(20, 4), window=CONFIG.window, template=CONFIG.template, seed=0)
seed_bench = load_benchmark(DATA, top_k=aug_config.pool).head(pick(None, 6))
SETS = write_augmented(augment(seed_bench, aug_config), RUN / "sets-w5", overwrite=True,
                       bench=seed_bench, config=aug_config)
print(format_config(CONFIG))

# %% [markdown]
# ## 3. Pre-flight checks
#
# `prepare()` does everything but load the model: it checks the batch arithmetic, that the template
# suits the model, that every set has `window` passages, and that every prompt fits
# `max_prompt_length` (TRL 1.16 never truncates a prompt, so an over-long one would cost memory or
# crash vLLM). With a prefill (`compact` starts the reply with `<answer>[`) the prompt is rendered to
# text, chat template and prefill included; the rewards are told the prefill so that they score
# prefill + completion.

# %%
from rearank_kit.train import prepare

prepared = prepare(CONFIG, SETS)
print(prepared.summary())
print("\nthe end of one training prompt, as the model sees it:\n")
print("..." + prepared.dataset[0]["prompt"][-400:])

# %% [markdown]
# ## 4. Train
#
# `train()` runs TRL's `GRPOTrainer` with the kit's reward functions and a callback that appends one
# line per step to `metrics.jsonl` and warns when a run is learning nothing (every group with equal
# rewards, most completions cut at the length limit, the reward stuck at the format-only level). A
# run folder is never mixed with another run, so we start from an empty one each time.

# %%
from rearank_kit.train import train

OUT = RUN / "grpo"
shutil.rmtree(OUT, ignore_errors=True)  # a fresh run every time this notebook runs
result = train(CONFIG, SETS, OUT)
print(f"\n{result.steps} steps in {result.seconds:.0f} s, peak memory {result.peak_rss_mb / 1024:.1f} GiB")
print("run folder:", sorted(p.name for p in OUT.iterdir()))
for warning in result.warnings:
    print("warning:", warning)

# %%
COLUMNS = ["reward", "reward_std", "rewards/rank_reward/mean", "rewards/format_think_answer_reward/mean",
           "rewards/format_answer_reward/mean", "frac_reward_zero_std", "completions/mean_length",
           "completions/clipped_ratio", "kl", "loss", "grad_norm", "step_time"]
steps = pd.DataFrame([r for r in result.records if "reward" in r]).set_index("step")
steps[[c for c in COLUMNS if c in steps.columns]].round(3)

# %% [markdown]
# Every completion of the run is in `completions.jsonl` with its reward components and its advantage
# (prompts are left out: they hold passage text). Completions of one group share a `set_id`; their
# advantages sum to zero, and a group whose rewards are all equal has all-zero advantages, teaching
# nothing.

# %%
completions = pd.read_json(OUT / "completions.jsonl", lines=True)
completions = pd.concat([completions.drop(columns="rewards"),
                         pd.json_normalize(completions["rewards"].tolist()).add_prefix("r/")], axis=1)
completions[["step", "set_id", "completion", "reward", "advantage"]
            + [c for c in completions.columns if c.startswith("r/")]].head(8)

# %% [markdown]
# ## 5. On GPUs
#
# **One GPU (`gpu-small`).** The cell below builds window-20 sets with the `rearank` prompt and trains
# Qwen2.5-7B-Instruct with LoRA for a few steps, from the command line in a child process: vLLM and
# the training state then leave the GPU when it ends. Training *inside* the notebook with
# `train(GPU_SMALL, ...)` works too, but the kernel then holds the model, the optimizer and vLLM's
# memory: **restart the kernel between training and evaluation** (notebook 05), or the evaluation
# model will not fit.
#
# Memory on one 80 GB GPU (the comment above `GPU_SMALL` works it out): about 15 GB of bf16 weights,
# under 1 GB of LoRA weights and optimizer state, ~9 GB of activations with gradient checkpointing,
# and 24 GB for vLLM (`vllm_gpu_memory_utilization=0.3`: its own copy of the weights plus the KV
# cache): about 50 GB in all.

# %%
import subprocess
import sys

if has_cuda() and not smoke():
    gpu_aug = AugmentConfig(samples_per_query=50, window=GPU_SMALL.window, template=GPU_SMALL.template, seed=0)
    gpu_bench = load_benchmark(DATA, top_k=gpu_aug.pool)
    GPU_SETS = write_augmented(augment(gpu_bench, gpu_aug), RUN / "sets-w20", overwrite=True,
                               bench=gpu_bench, config=gpu_aug)
    GPU_OUT = RUN / "grpo-gpu-small"
    shutil.rmtree(GPU_OUT, ignore_errors=True)
    command = [sys.executable, "-m", "rearank_kit.cli", "train", "--preset", "gpu-small", "--data", str(GPU_SETS),
               "--steps", "8", "--out", str(GPU_OUT)]
    print(" ".join(command))
    subprocess.run(command, check=True)
else:
    print("No GPU (or smoke mode): the gpu-small run is skipped. On a machine with one 80 GB GPU:\n"
          f"  rearank-kit augment --data {DATA} --window 20 --template rearank --samples-per-query 50 --out runs/aug-w20\n"
          "  rearank-kit train --preset gpu-small --data runs/aug-w20 --dry-run      # checks and plan only\n"
          "  rearank-kit train --preset gpu-small --data runs/aug-w20 --out runs/gpu-small")

# %% [markdown]
# **Eight GPUs (`paper`).** Full fine-tuning of a 7B model does not fit one GPU: weights, gradients
# and Adam states (about 122 GB) are sharded across the 8 processes by DeepSpeed ZeRO-3 or FSDP2
# (`configs/accelerate/`), and each process runs its own vLLM engine for generation
# (`vllm_mode="colocate"`). `accelerate launch` starts the processes; each runs the same training
# code, and only the first writes files. With another GPU count, keep 256 completions per optimizer
# step by raising `gradient_accumulation_steps`. The alternative to colocating is a separate vLLM
# server on its own GPUs (`trl vllm-serve`, `--set vllm_mode=server`). All of it is in
# `docs/TRAINING.md`.

# %%
print("\n".join([
    "# 1. the training sets (window 20, the rearank prompt), once:",
    f"rearank-kit augment --data {DATA} --window 20 --template rearank --samples-per-query 50 --seed 0 --out runs/aug-w20",
    "# 2. the plan for 8 processes and every pre-flight check, without loading the model:",
    "rearank-kit train --preset paper --data runs/aug-w20 --dry-run",
    "# 3. 8 processes on one node, ZeRO-3 (or configs/accelerate/fsdp.yaml for FSDP2):",
    "accelerate launch --config_file configs/accelerate/zero3.yaml -m rearank_kit.commands.train \\",
    "    --preset paper --data runs/aug-w20 --out runs/paper",
    "# 4. 4 GPUs instead of 8: the same 256 completions per optimizer step",
    "accelerate launch --config_file configs/accelerate/zero3.yaml --num_processes 4 -m rearank_kit.commands.train \\",
    "    --preset paper --data runs/aug-w20 --out runs/paper-4gpu --set num_processes=4 --set gradient_accumulation_steps=16",
    "# 5. interrupted? the same command with --resume continues from the last checkpoint",
]))
print("\npaper on 4 GPUs:", plan(dataclasses.replace(PAPER, num_processes=4, gradient_accumulation_steps=16)).describe())

# %% [markdown]
# ## Exercises
#
# 1. Set `temperature=0.0` in `CONFIG` and train 3 steps. What happens to `frac_reward_zero_std`, and
#    why does GRPO then learn nothing?
# 2. Make the GRPO group smaller (`num_generations=2`). Which other settings must change for
#    `plan()` to accept it? Check your answer by running `plan()`.
# 3. Change `reward_mode` to `"raw"` and train the same number of steps with the same seed. Compare
#    the reward curves in notebook 04 (overlay the two runs).
# 4. How many prompts does the `paper` preset see in total? How many times is each augmented set
#    seen, if the paper's dataset holds about 7,000 sets?
# 5. (Teachers) Give the verl settings of the paper (128 prompts per rollout, 32 samples, mini-batch
#    8 prompts, 8 GPUs) and ask students to derive TRL's `generation_batch_size`,
#    `per_device_train_batch_size` and `gradient_accumulation_steps`.
