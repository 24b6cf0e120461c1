"""GRPO training settings for REARANK as one dataclass, its named presets, and pre-flight checks.

``TrainConfig`` holds every setting a run depends on and maps onto ``trl.GRPOConfig`` with
``to_grpo_config()``. Four presets:

* ``paper``     the paper's stated setting (Qwen2.5-7B-Instruct, full fine-tuning, 8 GPUs), the kit's
                assumptions where the paper states none (marked at ``PAPER``);
* ``gpu-small`` one 80 GB GPU, LoRA on the same 7B model;
* ``cpu-tiny``  the bundled SmolLM2-135M on a CPU, whole answers: it runs (under a minute a step), it does not rank;
* ``cpu-firstpick`` the kit's measured CPU recipe: the same model trained on its first pick only;

Any field can be changed: ``dataclasses.replace(config, beta=0.01)``, ``apply_overrides(config,
{"beta": "0.01"})`` or ``rearank-kit train --set beta=0.01``. ``plan()`` does the batch arithmetic
(prompts, completions and optimizer steps per generation round) without building a model, and
the ``check_*`` functions refuse a run that would fail or silently misbehave, before any model
is loaded. This module imports neither torch nor TRL.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.env import parse_bool
from rearank_kit.errors import KitError

# --- the config ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Everything a GRPO run depends on. Batch sizes count completions, not prompts."""

    preset: str = "custom"
    # Model and prompt
    model: str = "smollm2-135m"  # preset name, local folder or hub id (see models.py)
    template: str = "compact"  # prompt template; prompts are re-rendered with it from the set texts
    window: int = 5  # passages per set; the data must have been augmented with this --window
    # Reward (rewards.make_reward_funcs)
    reward_mode: str = "normalized"
    lenient: bool = False  # accept an answer-only reply as well formed (tiny models never <think>)
    # Lower bound of r_rank; None: unbounded, as in the paper. The normalised reward divides by the
    # set's room to improve, so on a set with little room one slip scores -5 or -17 and swamps the
    # group's advantages (see augment's min_room for the other remedy).
    rank_reward_floor: float | None = None
    # Rollouts. TRL's unit is the completion: a prompt group is num_generations completions.
    num_generations: int = 4  # completions per prompt (the GRPO group size G)
    generation_batch_size: int | None = None  # completions sampled per round, all processes; None: one step's worth
    per_device_train_batch_size: int = 4  # completions per forward/backward pass on one process
    gradient_accumulation_steps: int = 1
    num_processes: int | None = None  # the planned process count; None: whatever is launched
    num_iterations: int = 1  # optimisation passes over each round's completions (PPO epochs, mu)
    max_prompt_length: int = 1024  # tokens; TRL 1.16 never truncates prompts, so the kit checks it
    long_prompts: str = "error"  # prompts over max_prompt_length: "error" or "drop" them
    max_completion_length: int = 64  # new tokens per completion
    temperature: float = 0.7
    top_p: float = 1.0
    # Optimisation
    max_steps: int = 30  # optimizer steps
    learning_rate: float = 1e-4
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    beta: float = 0.0  # KL coefficient (k3 estimator, in the loss); 0 loads no reference model
    epsilon: float = 0.2  # PPO clip range
    # Entropy bonus (TRL's entropy_coef): a small model's groups collapse to identical completions
    # within a few steps at high learning rates; a bonus keeps sampling varied. 0 = off (the paper).
    entropy_coef: float = 0.0
    loss_type: str = "dapo"  # token-level average over the whole accumulated batch
    scale_rewards: str = "group"  # advantage = (r - group mean) / group std, as in GRPO
    mask_truncated_completions: bool = False
    # Compute each distinct prompt once per generation and scoring pass instead of once per
    # completion (shared_prefix.py): on a CPU, where 250 prompt tokens face 1-20 answer tokens, a
    # step of 8 prompts x 4 completions takes about a third of the time. transformers generation only.
    share_prompts: bool = False
    # Position-balanced batches: each training set in all ``window`` cyclic rotations of its passages,
    # side by side in one generation round (sets shuffled once with ``seed``, then kept in that order).
    # A choice that follows a position rather than a passage then earns the same on average within
    # every step, so no step pushes the policy towards a position; only reading the passages pays.
    # Small models drift onto one position otherwise (docs/TRAINING.md, "A CPU recipe").
    rotate_sets: bool = False
    # Two corrections TRL 1.16 switches on by default, beyond the GRPO objective (both TRL's
    # defaults here; the paper preset turns them off). Importance sampling reweights each token by
    # trainer / vLLM probability, for the drift between the sampler and the trained weights (vLLM
    # only); the bias-corrected KL multiplies the k3 term by that ratio (DeepSeek-V3.2), which
    # changes the KL gradient whenever beta > 0, even on-policy.
    vllm_importance_sampling_correction: bool = True
    use_bias_correction_kl: bool = True
    # Precision and memory
    bf16: bool = False
    gradient_checkpointing: bool = True
    use_cpu: bool = False
    # CPU threads for torch; None: torch's default (one per core). On a busy shared machine 1 can be
    # several times faster: idle-spinning OpenMP threads fight the other processes for the cores.
    torch_threads: int | None = None
    # LoRA (lora_r = 0: full fine-tuning)
    lora_r: int = 16
    lora_alpha: int = 32  # scale alpha / r = 2
    lora_dropout: float = 0.0
    lora_target: str = "all-linear"  # every linear layer but the output head
    # Adapt only the top N transformer layers (None: all). Backpropagation then stops at the lowest
    # adapted layer, which roughly halves a CPU step for N = a third of the layers.
    lora_top_layers: int | None = None
    # vLLM inside training (GPU only)
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # "colocate": one engine per training process; "server": `trl vllm-serve`
    vllm_gpu_memory_utilization: float = 0.3  # share of each GPU for vLLM's weights + KV cache
    vllm_tensor_parallel_size: int = 1
    vllm_max_model_length: int | None = None  # None: max_prompt_length + max_completion_length
    vllm_server_base_url: str | None = None
    # Trackers besides the kit's own metrics.jsonl (TRL's report_to): "none", "tensorboard" and
    # "trackio" (both work offline), "wandb" (when installed), or a comma-separated list.
    report_to: str = "none"
    run_name: str | None = None  # the run's name in the trackers; None: the output folder's name
    project: str | None = None  # trackio's (and the kit's label for wandb's) project; None: TRL's default
    # Any other GRPOConfig field, by TRL's own name and parsed by TRL's parser (from --config FILE):
    # passed to GRPOConfig as given. Fields of this dataclass are never set here.
    grpo_args: dict = dataclasses.field(default_factory=dict)
    # Logging and checkpoints
    logging_steps: int = 1
    save_steps: int = 10
    save_total_limit: int | None = 2  # checkpoints kept (each LoRA one is small, a full 7B one is ~90 GB)
    seed: int = 0
    log_completions_every: int = 1  # write every n-th generation round to completions.jsonl; 0: never
    # Silent-failure monitors (train_callbacks.RunMonitor): warn loudly when seen this many steps in a row
    zero_std_patience: int = 3  # every group had equal rewards: zero advantages, nothing learned
    clipped_ratio_max: float = 0.5  # share of completions cut at max_completion_length
    clipped_patience: int = 2
    format_floor: float | None = None  # reward a well-formatted but unranked reply earns; None: format weights
    floor_margin: float = 0.01
    floor_patience: int = 5

    # -- derived values --

    def processes(self, launched: int | None = None) -> int:
        return self.num_processes or launched or 1

    def to_grpo_config(self, output_dir: str, reward_weights: list[float] | None = None, **extra: Any):
        """The ``trl.GRPOConfig`` for this config (TRL's field names, kit defaults for the rest)."""
        from trl import GRPOConfig

        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir),
            num_generations=self.num_generations,
            generation_batch_size=self.generation_batch_size,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            num_iterations=self.num_iterations,
            max_completion_length=self.max_completion_length,
            temperature=self.temperature,
            shuffle_dataset=not self.rotate_sets,  # rotations must stay side by side in a round
            top_p=self.top_p,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            lr_scheduler_type=self.lr_scheduler_type,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            beta=self.beta,
            epsilon=self.epsilon,
            entropy_coef=self.entropy_coef,
            loss_type=self.loss_type,
            scale_rewards=self.scale_rewards,
            vllm_importance_sampling_correction=self.vllm_importance_sampling_correction,
            use_bias_correction_kl=self.use_bias_correction_kl,
            mask_truncated_completions=self.mask_truncated_completions,
            reward_weights=list(reward_weights) if reward_weights is not None else None,
            bf16=self.bf16,
            gradient_checkpointing=self.gradient_checkpointing,
            use_cpu=self.use_cpu,
            use_vllm=self.use_vllm,
            vllm_mode=self.vllm_mode,
            vllm_gpu_memory_utilization=self.vllm_gpu_memory_utilization,
            vllm_tensor_parallel_size=self.vllm_tensor_parallel_size,
            vllm_max_model_length=self.vllm_max_model_length or (self.max_prompt_length + self.max_completion_length),
            vllm_server_base_url=self.vllm_server_base_url,
            logging_steps=self.logging_steps,
            save_strategy="steps",
            save_steps=self.save_steps,
            save_total_limit=self.save_total_limit,
            seed=self.seed,
            data_seed=self.seed,
            # metrics.jsonl is written in any case (train_callbacks.MetricsLogger); trackers come on top.
            report_to=[t.strip() for t in self.report_to.split(",") if t.strip()] or "none",
            run_name=self.run_name or Path(output_dir).name,
            log_completions=False,  # TRL's: a rich table on stdout; the kit writes completions.jsonl
            remove_unused_columns=False,  # the rewards read the grades columns
            model_init_kwargs={"dtype": "bfloat16" if self.bf16 else "float32"},
        )
        if self.project:
            kwargs["project"] = self.project
        kwargs.update(self.grpo_args)
        kwargs.update(extra)
        return GRPOConfig(**kwargs)

    def lora_config(self, num_layers: int | None = None):
        """A ``peft.LoraConfig``, or None for full fine-tuning. ``num_layers``: the model's layer
        count, needed when ``lora_top_layers`` is set."""
        if self.lora_r <= 0:
            return None
        from peft import LoraConfig

        target: str | list[str] = [t.strip() for t in self.lora_target.split(",")] if "," in self.lora_target \
            else self.lora_target
        if self.lora_top_layers:
            if not num_layers:
                raise KitError("lora_top_layers needs the model's number of layers")
            if not 0 < self.lora_top_layers <= num_layers:
                raise KitError(f"lora_top_layers={self.lora_top_layers}: the model has {num_layers} layers")
            # PEFT's layers_to_transform needs module names; a pattern over the decoder blocks of
            # Llama-style models (SmolLM2, Qwen2.5: model.layers.N.{self_attn,mlp}.*_proj) does the same.
            layers = "|".join(str(i) for i in range(num_layers - self.lora_top_layers, num_layers))
            names = "|".join(target) if isinstance(target, list) else r"\w+_proj"
            if target == "all-linear":
                names = r"\w+_proj"
            target = rf".*\.layers\.({layers})\.(self_attn|mlp)\.({names})"
        return LoraConfig(
            r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
            target_modules=target, task_type="CAUSAL_LM",
        )


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


# --- overrides -----------------------------------------------------------------------------------



def _parse_value(name: str, text: str, hint: Any) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    for kind in (t for t in options if t is not type(None)):
        if kind is bool:
            value = parse_bool(text)
            if value is None:
                raise KitError(f"--set {name}={text}: expected true or false")
            return value
        try:
            return kind(text)
        except ValueError:
            raise KitError(f"--set {name}={text}: expected {kind.__name__}") from None
    raise KitError(f"--set {name}={text}: cannot parse")  # pragma: no cover


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``dataclasses.replace`` with values given as strings (from the CLI) or as Python values."""
    hints = typing.get_type_hints(TrainConfig)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    changes = {}
    for key, value in overrides.items():
        key = key.strip().replace("-", "_")
        if key not in names:
            close = [n for n in names if key in n or n in key]
            raise KitError(f"unknown training setting {key!r}" + (f" (did you mean {', '.join(sorted(close))}?)" if close else ""))
        changes[key] = _parse_value(key, value, hints[key]) if isinstance(value, str) else value
    return dataclasses.replace(config, **changes)


def parse_set_args(items: list[str]) -> dict[str, str]:
    """``["beta=0.01", "seed=3"]`` -> ``{"beta": "0.01", "seed": "3"}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise KitError(f"--set {item}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_config_file(path: str | Path, base: TrainConfig) -> TrainConfig:
    """``base`` changed by a YAML file: the kit's fields by name, any other ``GRPOConfig`` field too.

    The file is a mapping. ``preset: NAME`` replaces ``base`` by that preset; keys naming a
    ``TrainConfig`` field change it (as ``--set`` does); every other key must be a ``GRPOConfig``
    field and is parsed by transformers' ``HfArgumentParser`` (TRL's own parser), then kept in
    ``grpo_args``. An unknown key is an error naming the file and the key.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KitError(f"{path}: not a readable YAML file ({exc})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KitError(f"{path}: expected a mapping of setting: value, got {type(raw).__name__}")
    raw = {str(k).replace("-", "_"): v for k, v in raw.items()}
    if "preset" in raw:
        base = get_preset(str(raw.pop("preset")))
    ours = {f.name for f in dataclasses.fields(TrainConfig)} - {"grpo_args", "preset"}
    # YAML values become the strings --set takes, so that both are parsed and checked one way.
    kit = {k: "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
           for k, v in raw.items() if k in ours}
    rest = {k: v for k, v in raw.items() if k not in ours}
    grpo_args = {**base.grpo_args, **_parse_grpo_fields(rest, path)}
    config = apply_overrides(base, kit)
    return dataclasses.replace(config, grpo_args=grpo_args)


def _parse_grpo_fields(values: dict[str, Any], path: Path) -> dict[str, Any]:
    if not values:
        return {}
    from transformers import HfArgumentParser
    from trl import GRPOConfig

    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KitError(f"{path}: unknown setting(s) {', '.join(unknown)}: neither a rearank-kit TrainConfig field "
                       "nor a trl.GRPOConfig field")
    import contextlib
    import io
    import json

    # Handed to TRL's parser as command-line words, so that argparse converts and checks each value
    # exactly as `python train.py --top_entropy_quantile 0.2` would. The placeholders only keep
    # GRPOConfig's machine checks (bf16 needs a GPU) out of the way and are not kept.
    words = ["--output_dir", "unused", "--bf16", "false", "--use_cpu", "true"]
    for key, value in values.items():
        if isinstance(value, list):
            words += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            words += [f"--{key}", json.dumps(value)]
        else:
            words += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            (parsed,) = HfArgumentParser(GRPOConfig).parse_args_into_dataclasses(args=words)
    except SystemExit:
        message = errors.getvalue().strip().splitlines()
        raise KitError(f"{path}: {message[-1] if message else 'invalid value'}") from None
    except (ValueError, TypeError) as exc:
        raise KitError(f"{path}: {exc}") from None
    return {k: getattr(parsed, k) for k in values}


# --- the batch arithmetic ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How one generation round is cut into optimizer steps (all counts over all processes)."""

    processes: int
    completions_per_micro_batch: int  # per_device_train_batch_size x processes
    completions_per_step: int  # ... x gradient_accumulation_steps: one optimizer step
    completions_per_round: int  # generation_batch_size
    prompts_per_round: int
    prompts_per_step: float
    micro_batches_per_round: int  # TRL's steps_per_generation
    steps_per_round: float  # optimizer steps per generation round (x num_iterations)
    rounds: float  # generation rounds in max_steps

    def describe(self) -> str:
        return (
            f"{self.prompts_per_round} prompts x {self.completions_per_round // max(self.prompts_per_round, 1)} "
            f"completions = {self.completions_per_round} completions per round, {self.steps_per_round:g} optimizer "
            f"steps of {self.completions_per_step} completions each ({self.processes} process(es)), "
            f"{self.rounds:g} rounds"
        )


def plan(config: TrainConfig, launched: int | None = None) -> Plan:
    """The batch arithmetic of ``config`` (raises KitError where TRL would refuse it)."""
    check_batch(config, launched)
    procs = config.processes(launched)
    micro = config.per_device_train_batch_size * procs
    step = micro * config.gradient_accumulation_steps
    round_ = config.generation_batch_size or step
    steps_per_round = round_ / step * config.num_iterations
    prompts = round_ // config.num_generations
    if config.rotate_sets and prompts % config.window:
        raise KitError(f"rotate_sets=true puts the {config.window} rotations of a set in one generation round, but a "
                       f"round holds {prompts} prompts, not a multiple of {config.window} (window): make "
                       f"generation_batch_size (or the batch per step) {config.window * config.num_generations} x N")
    return Plan(
        processes=procs,
        completions_per_micro_batch=micro,
        completions_per_step=step,
        completions_per_round=round_,
        prompts_per_round=round_ // config.num_generations,
        prompts_per_step=step / config.num_generations,
        micro_batches_per_round=round_ // micro,
        steps_per_round=steps_per_round,
        rounds=config.max_steps / steps_per_round,
    )


# --- pre-flight checks ---------------------------------------------------------------------------


def check_batch(config: TrainConfig, launched: int | None = None) -> None:
    """Refuse batch sizes TRL cannot group into whole prompt groups, with the numbers that fit,
    and a sampling temperature that cannot sample."""
    if not config.temperature > 0:  # transformers raises a bare ValueError deep inside generate()
        raise KitError(
            f"temperature={config.temperature}: GRPO samples its completions, and sampling needs a temperature "
            "above 0 (transformers refuses 0.0 when sampling; greedy decoding would give every completion of a group "
            "the same text, so every advantage would be 0 and nothing would be learned). Use e.g. --set temperature=0.7"
        )
    if config.num_generations < 2:
        raise KitError(f"num_generations={config.num_generations}: GRPO needs at least 2 completions per prompt")
    if config.num_processes and launched and config.num_processes != launched:
        raise KitError(
            f"the {config.preset} config plans {config.num_processes} process(es) but {launched} were launched; "
            f"use --set num_processes={launched} and adjust gradient_accumulation_steps to keep the batch "
            f"(completions per optimizer step = per_device_train_batch_size x processes x gradient_accumulation_steps)"
        )
    procs = config.processes(launched)
    micro = config.per_device_train_batch_size * procs
    step = micro * config.gradient_accumulation_steps
    gen = config.generation_batch_size or step
    what = (
        f"generation_batch_size={gen}" if config.generation_batch_size else
        f"the global batch per_device_train_batch_size x gradient_accumulation_steps x processes = "
        f"{config.per_device_train_batch_size} x {config.gradient_accumulation_steps} x {procs} = {step}"
    )  # fmt: skip
    if gen % config.num_generations:
        fit = config.num_generations * max(1, round(gen / config.num_generations))
        raise KitError(
            f"{what} is not divisible by num_generations={config.num_generations}: every prompt's group of "
            f"{config.num_generations} completions must fall in one generation batch (e.g. make it {fit})"
        )
    if gen % micro:
        raise KitError(
            f"generation_batch_size={gen} must be a multiple of per_device_train_batch_size x processes = {micro}"
        )


def check_share_prompts(config: TrainConfig) -> None:
    """Shared prompts hand a key/value cache from the prompt pass to the completion pass; gradient
    checkpointing turns caches off, and vLLM generates on its own (with its own prefix cache)."""
    if config.share_prompts and config.gradient_checkpointing:
        raise KitError("share_prompts=true needs gradient_checkpointing=false (checkpointing disables the key/value "
                       "cache the completions reuse); with a small model on a CPU memory is not the constraint")


def check_set_size(found: set[int] | list[int], config: TrainConfig, data_dir: str = "AUG_DIR") -> None:
    """Every set must hold ``config.window`` passages: the prompt and the reward assume it."""
    found = sorted(set(found))
    if found != [config.window]:
        sizes = ", ".join(str(n) for n in found) or "none"
        raise KitError(
            f"{data_dir}: the {config.preset} config trains on sets of {config.window} passages, but the data has "
            f"sets of {sizes}. Make fitting data with: rearank-kit augment --data BENCHMARK --window "
            f"{config.window} --samples-per-query 50 --seed 0 --out DIR (or --set window=N to match the data)"
        )


def check_template(config: TrainConfig) -> None:
    """Refuse a known model paired with a prompt it was not trained or meant for."""
    from rearank_kit.models import check_template as _check

    _check(config.model, config.template)


def check_prompt_lengths(lengths: list[int], config: TrainConfig) -> list[int]:
    """Indices of the prompts to keep; raise (long_prompts="error") if any is too long.

    TRL 1.16's GRPOConfig has no max_prompt_length: it never truncates a prompt, so an over-long
    one costs memory or, with vLLM, fails at max_model_len. The paper's limit is 3,072 tokens.
    """
    if config.long_prompts not in ("error", "drop"):
        raise KitError(f"long_prompts={config.long_prompts!r}: use 'error' or 'drop'")
    too_long = [i for i, n in enumerate(lengths) if n > config.max_prompt_length]
    if too_long and config.long_prompts == "error":
        raise KitError(
            f"{len(too_long)} of {len(lengths)} prompts are longer than max_prompt_length="
            f"{config.max_prompt_length} tokens (longest {max(lengths)}) and would be truncated or fail. Use "
            f"--set max_prompt_length={max(lengths)}, or --set long_prompts=drop to leave them out"
        )
    keep = [i for i in range(len(lengths)) if i not in set(too_long)]
    if not keep:
        raise KitError(f"no prompt fits max_prompt_length={config.max_prompt_length}")
    return keep


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def format_config(config: TrainConfig) -> str:
    """One ``name = value`` line per field, for printing a config in a notebook or the CLI."""
    width = max(len(f.name) for f in dataclasses.fields(config))
    return "\n".join(f"{f.name:<{width}} = {getattr(config, f.name)!r}" for f in dataclasses.fields(config))


__all__ = [
    "TrainConfig", "PRESETS", "CPU_TINY", "GPU_SMALL", "PAPER", "Plan", "get_preset", "apply_overrides",
    "parse_set_args", "plan", "check_batch", "check_set_size", "check_template", "check_prompt_lengths",
    "config_dict", "format_config", "load_config_file", "check_share_prompts",
]  # fmt: skip
