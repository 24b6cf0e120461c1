"""Before a GRPO run loads a model: the batch arithmetic (``plan``) and the checks that refuse a
run that would fail or silently misbehave. No torch, no TRL.
"""

from __future__ import annotations

from dataclasses import dataclass

from rearank_kit.core.errors import KitError
from rearank_kit.train.settings import TrainConfig

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
    from rearank_kit.rank.models import check_template as _check

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
