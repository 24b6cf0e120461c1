"""GRPO training settings of the generative policy as one dataclass: ``TrainConfig``.

``TrainConfig`` holds every setting a run depends on and maps onto ``trl.GRPOConfig`` with
``to_grpo_config()`` (and ``peft.LoraConfig`` with ``lora_config()``). The named presets are in
``presets.py``, changes by name (``--set``, ``--config``) in ``overrides.py``, the batch arithmetic
and the checks before a model loads in ``preflight.py``. This module imports neither torch nor TRL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.rank.settings import Range

# --- the ranges of its numbers --------------------------------------------------------------------

# One row per numeric TrainConfig field with a bound, with the flag that sets it (``--set NAME`` for
# the fields without a flag of their own): the CLI checks --steps, --save-steps and --seed with
# these rows when it parses them, ``overrides.apply_overrides`` every field --set or --config
# changes, ``TrainConfig.check`` all of them. The sampling temperature and the group size are
# checked by ``preflight.check_batch``, which explains what GRPO needs of them.
TRAIN_RANGES: dict[str, Range] = {
    "max_steps": Range("--steps", 1),
    "save_steps": Range("--save-steps", 1),
    "seed": Range("--seed", 0),
    "window": Range("--set window", 2),  # a set of one passage has nothing to rank
    "generation_batch_size": Range("--set generation_batch_size", 1),
    "per_device_train_batch_size": Range("--set per_device_train_batch_size", 1),
    "gradient_accumulation_steps": Range("--set gradient_accumulation_steps", 1),
    "num_processes": Range("--set num_processes", 1),
    "num_iterations": Range("--set num_iterations", 1),
    "max_prompt_length": Range("--set max_prompt_length", 1),
    "max_completion_length": Range("--set max_completion_length", 1),
    "top_p": Range("--set top_p", 0, 1, low_open=True),
    "learning_rate": Range("--set learning_rate", 0, low_open=True),
    "warmup_steps": Range("--set warmup_steps", 0),
    "weight_decay": Range("--set weight_decay", 0),
    "max_grad_norm": Range("--set max_grad_norm", 0),
    "beta": Range("--set beta", 0),
    "epsilon": Range("--set epsilon", 0, low_open=True),
    "entropy_coef": Range("--set entropy_coef", 0),
    "torch_threads": Range("--set torch_threads", 1),
    "lora_r": Range("--set lora_r", 0),  # 0: full fine-tuning
    "lora_alpha": Range("--set lora_alpha", 0, low_open=True),
    "lora_dropout": Range("--set lora_dropout", 0, 1),
    "lora_top_layers": Range("--set lora_top_layers", 1),
    "vllm_gpu_memory_utilization": Range("--set vllm_gpu_memory_utilization", 0, 1, low_open=True),
    "vllm_tensor_parallel_size": Range("--set vllm_tensor_parallel_size", 1),
    "vllm_max_model_length": Range("--set vllm_max_model_length", 1),
    "logging_steps": Range("--set logging_steps", 1),
    "save_total_limit": Range("--set save_total_limit", 1),
    "log_completions_every": Range("--set log_completions_every", 0),  # 0: never
    "zero_std_patience": Range("--set zero_std_patience", 1),
    "clipped_ratio_max": Range("--set clipped_ratio_max", 0, 1),
    "clipped_patience": Range("--set clipped_patience", 1),
    "floor_margin": Range("--set floor_margin", 0),
    "floor_patience": Range("--set floor_patience", 1),
}

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
    # Silent-failure monitors (callbacks.RunMonitor): warn loudly when seen this many steps in a row
    zero_std_patience: int = 3  # every group had equal rewards: zero advantages, nothing learned
    clipped_ratio_max: float = 0.5  # share of completions cut at max_completion_length
    clipped_patience: int = 2
    format_floor: float | None = None  # reward a well-formatted but unranked reply earns; None: format weights
    floor_margin: float = 0.01
    floor_patience: int = 5

    RANGES = TRAIN_RANGES  # what overrides.apply_overrides checks (not a field)

    def check(self) -> TrainConfig:
        """Every number in its range (``TRAIN_RANGES``; errors name the flag); self."""
        for name, allowed in TRAIN_RANGES.items():
            where = allowed.flag if allowed.flag.startswith("--set") else f"{allowed.flag} ({name})"
            allowed.check(getattr(self, name), where)
        return self

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
            # metrics.jsonl is written in any case (callbacks.MetricsLogger); trackers come on top.
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


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def format_config(config: TrainConfig) -> str:
    """One ``name = value`` line per field, for printing a config in a notebook or the CLI."""
    width = max(len(f.name) for f in dataclasses.fields(config))
    return "\n".join(f"{f.name:<{width}} = {getattr(config, f.name)!r}" for f in dataclasses.fields(config))


