# %% [markdown]
# # 03 · GRPO training: a policy that learns on a CPU, one that does not, and the launch on GPUs
#
# REARANK is trained with **GRPO** (Group Relative Policy Optimization, Shao et al., 2024), a
# reinforcement-learning method without a value model. For every prompt (one augmented set, notebook
# 01) the policy samples a *group* of `G` rankings; each gets the reward of notebook 02; a ranking's
# *advantage* is its reward minus the group's mean, divided by the group's standard deviation; and
# the policy takes PPO-clipped gradient steps that make above-average rankings more likely, with an
# optional KL penalty (`beta`) that keeps it near where it started. No critic, no human preference
# data: the judged grades are the only supervision.
#
# The kit trains two **policy families** with that same reward and objective (`train/grpo.py`):
#
# - the **generative** policy, the paper's: the language model *writes* `<answer>[3] > [1] > ...`
#   and TRL runs GRPO on its tokens. At 7B on GPUs this is REARANK. With the bundled 135M model on a
#   CPU it does **not** learn to rank: every configuration the kit tried stayed within noise on
#   held-out queries, and the model copies the order it is given (`docs/TRAINING.md`, "A CPU recipe");
# - the **scored** policy: the same model reads each (query, passage) pair once, a small head turns
#   its hidden state into a score, `s = a * BM25 + w . h`, and a ranking is sampled from the
#   Plackett-Luce distribution over the scores (`rank/scored.py`). GRPO trains the head from the
#   reward alone. On a CPU this one **does** learn, a little, and the cross-validated comparison below
#   says how much, with an interval.
#
# **What you will learn**
#
# - the hidden states a scored policy reads, computed once and cached;
# - GRPO on the scored policy, and the held-out protocol that tells learning from noise:
#   cross-validation by query, settings chosen on validation queries, an interval over queries;
# - the four presets of the generative policy (`paper`, `gpu-small`, `cpu-tiny`, `cpu-firstpick`),
#   their batch arithmetic and pre-flight checks, and a few steps of it on the CPU: same reward, no
#   learning;
# - how to launch the generative policy on one GPU and on eight.
#
# **Prerequisites**: notebooks 01 (augmented sets) and 02 (the reward, group advantages). The GRPO
# loss itself (ratio, clipping, KL) is written out and trained from scratch in notebook 07.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about a minute (55 s measured: 15 queries, top 10, a few steps) |
# | full | CPU, 2 cores | about 7 minutes (433 s measured from an empty run folder): the DL21 states, the scored cross-validation, 8 generative steps |
# | `gpu-small` (guarded cell) | one 80 GB GPU | hours (400 steps) |
# | `paper` | 8 x 80 GB GPUs | see `docs/TRAINING.md` |

# %%
import dataclasses
import shutil
import time

import pandas as pd
from IPython.display import display

from rearank_kit.course.notebook import (
    benchmark_or_sample,
    describe_hardware,
    folds_for,
    has_cuda,
    pick,
    run_folder,
    smoke,
)

RUN = run_folder("03_grpo_training")  # the only folder this notebook writes to
DATA = benchmark_or_sample("dl21")
print(describe_hardware())
print("seed queries:", DATA, "| run folder:", RUN)

# %% [markdown]
# ## 1. The scored policy: what the model makes of each pair
#
# The scored policy never asks the model to write a ranking. It shows the model one pair at a time,
# through a *pair prompt* (a versioned file, `core/templates/pairs/relevance.toml`):
#
# ```
# Query: {query}
# Passage: {the passage's first 60 words}
# Is the passage relevant to the query? Answer:
# ```
#
# and keeps the model's hidden state at the last token after layer 15 of its 30 (576 numbers). The
# model is frozen, so the states of every (query, candidate) pair are computed once and cached
# (`rank/states.py`): training then reads megabytes instead of running the model. The cache is keyed
# by model, prompt and layer; a cache built for another one is refused. On 2 cores the BM25 top 100
# of DL21's 53 queries (5,300 pairs) takes about 5 minutes; run the cell again and it is instant.

# %%
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank.states import build_states

LAYER = 15
bench = load_benchmark(DATA, top_k=pick(100, 10)).head(pick(None, 15))  # smoke mode: 15 queries, top 10
started = time.perf_counter()
states = build_states(bench, RUN / f"states-{bench.name}-top{pick(100, 10)}", layers=(LAYER,), progress=True)
print(f"{len(states)} pairs of {bench.name}, layer {LAYER}: {states.states.shape} float16, "
      f"{time.perf_counter() - started:.0f} s (cached pairs are not computed again)")

# %% [markdown]
# ## 2. GRPO on the scored policy, cross-validated by query
#
# Each passage of a set gets the score `s = a * prior + w . x`: `prior` is its BM25 score z-scored
# within the query's list, `x` its standardised state, `w` the head (576 weights). At the start `w =
# 0`: the policy *is* BM25, and training learns a correction. A ranking is drawn by picking the
# first passage with probability softmax(s / T), the next among the rest, and so on (Plackett-Luce);
# its log-probability is exact, so GRPO's ratio and clipped loss are exact too. One step: 16 sets of
# 20 passages from the training queries' top 100 (augmentation, notebook 01), 8 rankings sampled
# per set, the normalised nDCG@10 reward of notebook 02, advantages within each group, one Adam step.
#
# **The protocol.** A training curve cannot tell learning from noise; a comparison on queries the
# model never saw can. The 53 DL21 queries are split once into 5 fixed folds (`data/folds/dl21.json`,
# never redrawn). For fold k: the settings are compared on fold k+1's queries (validation), the best
# is trained on the other folds, and fold k's top 100 is reranked by it. Every query is then ranked
# by a model that never saw it, and its nDCG@10 is compared with BM25's, query by query, with a
# bootstrap 95% interval. DL19 and DL20 (notebook 05) are never used to choose anything.

# %%
from rearank_kit.evaluation.learning_run import LearningSetup, learning_run

folds = folds_for(bench.name)
SETUP = LearningSetup(
    layer_choices=((LAYER,),),  # the reference run lets each fold choose among layers 12, 15 and 18
    window=pick(20, 5), top_k=pick(100, 10), samples_per_query=pick(50, 8),
    grpo_grid=pick(((1e-4, 300), (2e-4, 300)), ((1e-4, 30),)),  # learning rates and steps to choose from
)
CV = RUN / "scored-cv"
shutil.rmtree(CV, ignore_errors=True)  # a fresh run each time: a folder is never mixed with another setup
started = time.perf_counter()
cv = learning_run(bench, folds, states, SETUP, CV)
m = cv["ndcg@10"]
print(f"\n{m['queries']} held-out queries, nDCG@10: BM25 {m['baseline']:.4f}, scored policy {m['system']:.4f}, "
      f"{m['delta']:+.4f} (95% CI {m['ci95'][0]:+.4f} to {m['ci95'][1]:+.4f}); {m['up']} queries up, {m['down']} down")
gain = cv["set_reward"]["ndcg10_gain"]
print(f"set level ({cv['set_reward']['sets']} held-out sets): nDCG@10 gain over the given order {gain['mean']:+.4f} "
      f"(95% CI {gain['ci95'][0]:+.4f} to {gain['ci95'][1]:+.4f}); {time.perf_counter() - started:.0f} s in all")

# %% [markdown]
# Each fold's choice, and the step reward of the model trained on every query (`final/`): the last
# quarter of its steps against the first, in standard errors. Notebook 04 draws these curves beside
# a band of what a policy that learns nothing would show; notebook 05 reranks DL19 and DL20 with the
# committed reference run.

# %%
display(pd.DataFrame([{"fold": f["fold"], "test queries": f["test_queries"], "minutes": f["minutes"],
                       **{k: v for k, v in f["chosen"].items() if k in ("layers", "learning_rate", "steps", "validation_ndcg")}}
                      for f in cv["folds"]]).set_index("fold"))
print("final model:", cv["final"]["setting"])
print("step reward, first vs last quarter:", cv["final"].get("step_reward"))

# %% [markdown]
# ## 3. The generative policy: the presets
#
# The paper's policy writes its ranking. Its settings are a frozen `TrainConfig` per preset; every
# field has a one-line reason in `train/presets.py`. The fields that matter most, side by side:
#
# - **`paper`**: Qwen2.5-7B-Instruct, full fine-tuning on 8 GPUs, the `rearank` prompt on sets of 20,
#   `G = 32` completions per prompt, 128 prompts per generation round, learning rate 1e-6, KL
#   coefficient 0.01, completions up to 2,048 tokens, generated with vLLM inside the trainer.
# - **`gpu-small`**: the same model and prompt on one 80 GB GPU, with LoRA (only small low-rank
#   adapters are trained, so a 10x learning rate) and smaller groups (`G = 8`).
# - **`cpu-tiny`**: the bundled SmolLM2-135M with LoRA on sets of 5, the answer-only `compact`
#   prompt, short completions and the lenient reward, so that a laptop can run every piece. It runs;
#   it does not learn to rank (its reference run's rank reward stayed negative and noisy).
# - **`cpu-firstpick`**: the same model as a one-token bandit: the reply is prefilled up to the first
#   identifier (`<answer>[`), the model samples one token, and the reward is the nDCG@10 gain of
#   moving that passage to the top (the paper's `difference` reward mode, not the normalised one).
#   On sets in random order a choice that ignores the passages then earns 0 on average wherever it
#   points, so only reading the passages pays; the comment above `CPU_FIRSTPICK` lists each
#   departure from the paper and the probe that motivated it.

# %%
from rearank_kit.train.preflight import plan
from rearank_kit.train.presets import PRESETS

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
# `generation_batch_size`), and the `paper` preset takes **one optimizer step per round** on all of
# them: `per_device_train_batch_size` 4 x 8 GPUs x `gradient_accumulation_steps` 128 = 4,096, each
# completion used once, about 160 steps in all. That is the on-policy reading of the paper's Eq. 3;
# with one step per round the PPO clip never acts (notebook 07 shows why). The other reading, verl's
# mini-batches of 8 prompts, gives 16 steps per round and is one `--set` away (the comment above
# `PAPER` in `train/presets.py`). A group of `G` completions must never be split across generation
# batches, or its mean and standard deviation would be wrong: `plan()` refuses such settings with the
# numbers that would fit, and it refuses a temperature of 0, which cannot sample a group.

# %%
from rearank_kit.core.errors import KitError
from rearank_kit.train.presets import CPU_FIRSTPICK, CPU_TINY, GPU_SMALL, PAPER
from rearank_kit.train.settings import format_config

for change in ({"num_generations": 3}, {"temperature": 0.0}):
    try:
        plan(dataclasses.replace(CPU_TINY, **change))
    except KitError as err:
        print(f"{change} refused: {err}\n")
print("\nThe paper preset, every field:\n")
print(format_config(PAPER))

# %% [markdown]
# ## 4. Training data for the CPU recipe
#
# `cpu-firstpick` trains on sets of 5 passages, so we augment the seed queries again with `window=5`
# (notebook 01 explains the recipe), with three differences from the paper's sets:
#
# - **random initial order** (`order="random"`): the paper's sets keep BM25's order, which a 135M
#   model cannot beat; a random order leaves room for the lexical cues a small model can learn;
# - **a three-way query split**: training, validation (where settings are chosen) and test (queries
#   the model never sees, evaluated at the end); the paper trains on every seed query;
# - **a minimum room** (`min_room=0.02`): sets whose best nDCG@10 is barely above their initial one
#   are dropped from training, where any change scores only a loss.
#
# The trainer re-renders every prompt from the passage texts with the preset's template, and with
# `rotate_sets` it shows each set in all 5 rotations within one step (`[1]` first, then `[2]`
# first, ...): a preference for a *position* then earns the same in every step, and only a
# preference for a *passage* pays.

# %%
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.train.augment import AugmentConfig, augment, write_augmented

CONFIG = dataclasses.replace(
    CPU_FIRSTPICK,
    max_steps=pick(8, 2),  # a few optimizer steps (the reference run took 60); each: 2 sets x 5 rotations x 8 completions
    per_device_train_batch_size=pick(80, 40),  # smoke mode: 1 set x 5 rotations x 8 a step
    save_steps=pick(20, 1000),  # smoke mode: no intermediate checkpoint
    torch_threads=pick(None, 1),  # smoke mode runs in CI on busy shared cores: one thread is faster there
)
aug_config = AugmentConfig(samples_per_query=pick(50, 12), window=CONFIG.window, template=CONFIG.template, seed=0,
                           order="random", min_room=0.02, validation_fraction=0.19, test_fraction=0.19)
seed_bench = load_benchmark(DATA, top_k=aug_config.pool).head(pick(None, 6))
SETS = write_augmented(augment(seed_bench, aug_config), RUN / "sets-w5", overwrite=True,
                       bench=seed_bench, config=aug_config)
print(format_config(CONFIG))

# %% [markdown]
# ## 5. Pre-flight checks
#
# `prepare()` does everything but load the model: it checks the batch arithmetic, that the template
# suits the model, that every set has `window` passages, and that every prompt fits
# `max_prompt_length` (TRL 1.16 never truncates a prompt, so an over-long one would cost memory or
# crash vLLM). With a prefill (`compact` starts the reply with `<answer>[`) the prompt is rendered to
# text, chat template and prefill included; the rewards are told the prefill so that they score
# prefill + completion.

# %%
from rearank_kit.train.generative import prepare

prepared = prepare(CONFIG, SETS)
print(prepared.summary())
print("\nthe end of one training prompt, as the model sees it:\n")
print("..." + prepared.dataset[0]["prompt"][-400:])

# %% [markdown]
# ## 6. Train a few steps: same reward, no learning
#
# `train()` runs TRL's `GRPOTrainer` with the kit's reward functions and a callback that appends one
# line per step to `metrics.jsonl` and warns when a run is learning nothing (every group with equal
# rewards, most completions cut at the length limit, the reward stuck at the format-only level). A
# run folder is never mixed with another run, so we start from an empty one each time.
#
# A step here costs 20-45 s (the scored policy's cost about 30 ms), so full mode runs only 8. The
# kit's reference run of this recipe ran 60 steps (`data/runs/cpu-firstpick-dl21`): its step reward
# stayed inside the band of a model that learns nothing, and on held-out sets it changed nDCG@10 by
# +0.0005 (95% CI across 0), copying the order it was given in 80% of them. Same reward, same
# objective: what differs is what the model must do to earn it. Writing `[3] > [1] > ...` asks a
# 135M model to compare passages in its output, which it cannot; the scored policy only asks it to
# *read* one pair, and a head learns which of its hidden states go with relevance.

# %%
from rearank_kit.train.generative import train

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
# ## 7. Did it learn? The adapter against its base model on held-out queries
#
# A training curve is measured on the sets being trained on, at temperature 1; it cannot tell
# learning from noise. The question is whether the trained model ranks the *test* queries' sets
# better than the same model before training. `evaluate_sets` reranks each test set greedily with
# the prompt the run was trained with (it reads the template and parsing mode from the run folder)
# and scores it with the training reward; `against=` pairs the two evaluations set by set and gives
# a 95% interval that resamples *queries*. Both are judged on their first pick, as trained
# (`max_new_tokens=1`: the other passages stay in their given order). Two numbers matter:
#
# - `comparison.ndcg10_reranked`: trained minus base, nDCG@10 of their orders;
# - `vs_initial_order`: the trained order minus the order it was given. A model that copies its
#   input scores 0 here; "beats the base model" alone is not learning.
#
# After 8 steps (or 2, in smoke mode) the intervals are wide and straddle 0: that is the honest
# answer, and the committed 60-step run's comparison (notebook 05) says the same.

# %%
from rearank_kit.core.stats import format_interval
from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets

EVAL = SetEvalConfig(split="test", per_query=pick(10, 2), max_new_tokens=1, ids_only=True, resamples=pick(10_000, 500))
for folder in ("eval-base", "eval-trained"):
    shutil.rmtree(RUN / folder, ignore_errors=True)  # a fresh run is a new model: never resume an old evaluation
before = evaluate_sets(CONFIG.model, SETS, RUN / "eval-base", dataclasses.replace(EVAL, lenient=True),
                       template=CONFIG.template, progress=False)
after = evaluate_sets(OUT, SETS, RUN / "eval-trained", EVAL, against=RUN / "eval-base", progress=False)

display(pd.DataFrame({
    "base": {"rank reward": before["rank_reward"]["mean"], "nDCG@10": before["ndcg10_reranked"],
             "vs given order": format_interval(before["vs_initial_order"]), "copied": before["copied_input_order"]},
    "trained": {"rank reward": after["rank_reward"]["mean"], "nDCG@10": after["ndcg10_reranked"],
                "vs given order": format_interval(after["vs_initial_order"]), "copied": after["copied_input_order"]},
}))
print(f"{after['sets']} test sets of {after['queries']} queries; trained minus base:")
print("  nDCG@10     ", format_interval(after["comparison"]["ndcg10_reranked"]))
print("  rank reward ", format_interval(after["comparison"]["rank_reward"]))

# %% [markdown]
# ## 8. On GPUs
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
# 1. Set `temperature=0.0` in `CONFIG` and run section 3. What does the kit say? Suppose it let the
#    run start with greedy decoding: what would every group's eight completions (`num_generations` of `cpu-firstpick`) look like, what
#    would `frac_reward_zero_std` be, and why would GRPO learn nothing (notebook 02, section 4)?
# 2. Make the GRPO group smaller (`num_generations=2`). Which other settings must change for
#    `plan()` to accept it? Check your answer by running `plan()`.
# 3. Change `reward_mode` to `"raw"` and train the same number of steps with the same seed. Before
#    running it, predict: under `cpu-firstpick` (no format reward) what is constant within a group,
#    and what does that make of the two runs' advantages and updates? Then overlay the two reward
#    curves in notebook 04: by how much are they apart, and where does that amount come from?
# 4. How many prompts does the `paper` preset see in total? How many times is each augmented set
#    seen, if the paper's dataset holds about 12,000 sets?
# 5. (Teachers) Give the verl settings of the paper (128 prompts per rollout, 32 samples, 8 GPUs)
#    and ask students to derive TRL's `generation_batch_size`, `per_device_train_batch_size` and
#    `gradient_accumulation_steps` for one optimizer step per round, then for verl's mini-batches
#    of 8 prompts (16 steps per round). Check both with `plan()`.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. Before any training step the scored policy's head is 0. By how much does it change BM25's nDCG@10 on a held-out query?
# 2. What is the entropy, in nats, of a uniformly random ranking of 20 passages (the most a Plackett-Luce policy can have)?
# 3. By how much did the reference scored policy beat BM25 on DL21's cross-validated queries, and does its interval include 0?

# %% [markdown]
# ## Recap
#
# - GRPO samples a group of completions per prompt, rewards them, and makes the above-average ones
#   more likely; TRL runs it, `train/presets.py` maps the paper's verl settings onto TRL's.
# - Batch sizes count completions in TRL: a round of 128 prompts x 32 completions is 4,096, one
#   optimizer step in the `paper` preset; `plan()` checks the arithmetic before any model loads.
# - Pre-flight checks refuse runs that would fail or learn nothing (split groups, temperature 0,
#   prompts over the limit, a template the model was not meant for).
# - A run folder holds `metrics.jsonl` (notebook 04 reads it), `completions.jsonl`, checkpoints and
#   the LoRA adapter (a model for `rerank` and `evaluate-sets`).
# - Next: notebook 04 reads the curves; notebook 07 opens up the loss TRL computed here.
