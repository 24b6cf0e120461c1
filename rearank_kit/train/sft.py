"""Direct SFT: the supervised baseline of the REARANK paper's Table 3 ("w/ direct SFT").

The paper asks whether its RL is needed: instead of rewarding sampled rankings, train the model
to write the answer directly. For every augmented set (``augment.py``) the target is the set's
*best ordering*: its passages sorted by judged grade, highest first (ties keep the set's initial
order, so the target is one fixed string), written in the answer format of the prompt template.
The model is fine-tuned on (prompt, target) pairs with TRL's ``SFTTrainer``, the loss on the
target tokens only. The paper reports it well below REARANK (TREC DL 66.7 against 72.0).

How this departs from the paper, and why:

- The paper states no SFT settings (learning rate, epochs, batch); the presets' values are the
  kit's assumptions, marked so.
- The target is answer-only, ``<answer>[3] > [1] > ...</answer>``, even for the ``rearank``
  prompt that asks for reasoning first: an augmented set has a best ordering but no reasoning to
  imitate. A run therefore records lenient parsing (``reward.lenient``), under which a bare answer
  block is a well-formed reply; a template that never asks for ``<answer>`` tags (``rankgpt``)
  gets the bare ranking ``[3] > [1] > ...``.
- Only the ``train`` split is used: the held-out queries stay unseen, as for GRPO.

The run folder has the shape of a GRPO run's (``manifest.json`` of kind ``train`` with ``model``,
``model_source``, ``template``, ``template_hash``, ``config`` and ``reward``; ``metrics.jsonl``;
``checkpoint-N/``; the adapter or model at the end), so ``policy.resolve_policy`` and
``rearank-kit evaluate-sets --model RUN`` take it like any trained model.

    rearank-kit augment --data dl21 --window 5 --template compact --out runs/aug-w5
    rearank-kit sft --preset cpu-tiny --data runs/aug-w5 --steps 30 --out runs/sft-tiny
    rearank-kit evaluate-sets --model runs/sft-tiny --sets runs/aug-w5 --split test --out runs/eval-sft
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.parsing import format_ranking

# --- the config ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SFTRunConfig:
    """Everything a direct-SFT run depends on (TRL's names where TRL has the setting)."""

    preset: str = "custom"
    model: str = "smollm2-135m"  # preset name, local folder or hub id (models.py)
    template: str = "compact"  # prompts are rendered with it from the set texts, as for GRPO
    window: int = 5  # passages per set; the data must have been augmented with this --window
    lenient: bool = True  # recorded for evaluation: the target is a bare answer block, no <think>
    max_length: int = 1024  # tokens of prompt + target; longer examples are refused, never cut
    per_device_train_batch_size: int = 4  # sets per forward/backward pass on one process
    gradient_accumulation_steps: int = 1
    num_train_epochs: float = 1.0
    max_steps: int = -1  # optimizer steps; -1: num_train_epochs over the train split
    learning_rate: float = 1e-4
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 16  # 0: full fine-tuning
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target: str = "all-linear"
    bf16: bool = False
    gradient_checkpointing: bool = True
    use_cpu: bool = False
    torch_threads: int | None = None  # see TrainConfig.torch_threads: 1 is often faster on a busy CPU
    logging_steps: int = 1
    save_steps: int = 10
    save_total_limit: int | None = 2
    seed: int = 0

    def to_sft_config(self, output_dir: str, **extra: Any):
        """The ``trl.SFTConfig`` for this run."""
        from trl import SFTConfig

        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir), max_length=self.max_length,
            completion_only_loss=True,  # learn the answer, not to reproduce the prompt's passages
            packing=False, per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps, learning_rate=self.learning_rate, lr_scheduler_type=self.lr_scheduler_type,
            warmup_steps=self.warmup_steps, weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm,
            bf16=self.bf16, gradient_checkpointing=self.gradient_checkpointing, use_cpu=self.use_cpu,
            logging_steps=self.logging_steps, save_strategy="steps", save_steps=self.save_steps,
            save_total_limit=self.save_total_limit, seed=self.seed, data_seed=self.seed,
            report_to="none",  # the kit writes metrics.jsonl itself
            model_init_kwargs={"dtype": "bfloat16" if self.bf16 else "float32"},
        )  # fmt: skip
        kwargs.update(extra)
        return SFTConfig(**kwargs)

    def lora_config(self):
        """The ``peft.LoraConfig`` (None for full fine-tuning), built as GRPO runs build theirs."""
        from rearank_kit.train.settings import TrainConfig

        return TrainConfig(lora_r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                           lora_target=self.lora_target).lora_config()


# cpu-tiny: the GRPO cpu-tiny setting (bundled SmolLM2-135M, compact prompt, window 5, LoRA), so
# that the two can be compared on the same held-out sets: 30 steps of 4 sets take minutes.
CPU_TINY = SFTRunConfig(preset="cpu-tiny", max_steps=30, use_cpu=True, save_steps=10)

# paper: the Table 3 baseline at the paper's scale: Qwen2.5-7B-Instruct, full fine-tuning on the
# rearank prompt, window 20. The paper states none of the SFT settings; all below are assumed:
# one epoch over the ~12k sets, 128 sets a step (2 x 8 GPUs x 8), learning rate 1e-5 (a common
# full fine-tuning rate for a 7B model), prompts of ~2,000 tokens plus an answer of ~100.
PAPER = dataclasses.replace(
    CPU_TINY, preset="paper", model="Qwen/Qwen2.5-7B-Instruct", template="rearank", window=20,
    max_length=4096,  # assumed
    per_device_train_batch_size=2, gradient_accumulation_steps=8,  # assumed: 128 sets a step on 8 GPUs
    num_train_epochs=1.0, max_steps=-1,  # assumed
    learning_rate=1e-5, lr_scheduler_type="cosine", warmup_steps=10,  # assumed
    lora_r=0, bf16=True, use_cpu=False, save_steps=50,
)  # fmt: skip

PRESETS: dict[str, SFTRunConfig] = {c.preset: c for c in (CPU_TINY, PAPER)}


def get_preset(name: str) -> SFTRunConfig:
    if name not in PRESETS:
        raise KitError(f"unknown SFT preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def apply_overrides(config: SFTRunConfig, overrides: dict[str, Any]) -> SFTRunConfig:
    """``--set key=value`` changes, parsed as the GRPO settings are (``overrides.apply_overrides``)."""
    from rearank_kit.train.overrides import apply_overrides as apply

    return apply(config, overrides, what="SFT")


# --- the target ----------------------------------------------------------------------------------


def best_order(grades: list[int]) -> list[int]:
    """0-based indices of a set sorted by grade, highest first; ties keep the initial order."""
    return sorted(range(len(grades)), key=lambda i: -grades[i])


def asks_for_answer_tags(template) -> bool:
    return any("<answer>" in part for part in (template.system, template.intro_user, template.final_user,
                                               template.prefill))  # fmt: skip


def sft_target(template, grades: list[int]) -> str:
    """The reply to learn for a set with these grades, after the template's prefill."""
    ranking = format_ranking(best_order(grades))
    full = f"<answer>{ranking}</answer>" if asks_for_answer_tags(template) else ranking
    if not full.startswith(template.prefill):
        raise KitError(f"template {template.name!r}: its prefill {template.prefill!r} does not start the answer "
                       f"{full[:20]!r}...; direct SFT needs a prefill that starts the answer")
    return full[len(template.prefill):]


# --- data ----------------------------------------------------------------------------------------


@dataclass
class PreparedSFT:
    config: SFTRunConfig
    template: Any
    tokenizer: Any
    model_source: str
    dataset: Any  # datasets.Dataset: prompt (chat template + prefill), completion (target + end of turn)
    lengths: list[int]  # tokens of prompt + completion
    data_dir: Path

    def summary(self) -> str:
        ordered = sorted(self.lengths)
        return (f"{len(ordered)} training sets; prompt + target tokens median {ordered[len(ordered) // 2]}, "
                f"max {ordered[-1]} (limit {self.config.max_length})")


def prepare_sft(config: SFTRunConfig, data_dir: str | os.PathLike, tokenizer=None) -> PreparedSFT:
    """Load the train split, render prompts and targets, run the checks: nothing loads a model."""
    from datasets import Dataset

    from rearank_kit.train.generative import training_sets

    template, sets, source, tokenizer = training_sets(config, data_dir, tokenizer)
    data_dir = Path(data_dir)
    if not asks_for_answer_tags(template) and not config.lenient:
        raise KitError(f"template {template.name!r} asks for a bare ranking, which strict parsing never scores; "
                       "use --set lenient=true")
    end = tokenizer.eos_token or ""  # TRL appends it to a completion that lacks it: the model learns to stop
    prompts = [template.render(tokenizer, q, t) for q, t in zip(sets["query"], sets["texts"], strict=True)]
    targets = [sft_target(template, g) + end for g in sets["grades"]]
    lengths = [len(tokenizer(p + c, add_special_tokens=False)["input_ids"]) for p, c in zip(prompts, targets, strict=True)]
    too_long = sum(n > config.max_length for n in lengths)
    if too_long:
        raise KitError(f"{too_long} of {len(lengths)} examples are longer than max_length={config.max_length} tokens "
                       f"(longest {max(lengths)}); TRL would cut the target off. Use --set max_length={max(lengths)}")
    dataset = Dataset.from_dict({"prompt": prompts, "completion": targets})
    return PreparedSFT(config, template, tokenizer, source, dataset, lengths, data_dir)


# --- the run -------------------------------------------------------------------------------------


def sft(config: SFTRunConfig, data: str | os.PathLike, out: str | os.PathLike, resume: bool = False,
        echo: bool = True) -> dict:
    """Fine-tune on the best orderings of the sets in ``data``, writing the run folder ``out``.
    Returns the finished manifest's ``result``."""
    from rearank_kit.core.optional import require

    for module in ("trl", "peft", "datasets"):
        require(module)
    from trl import SFTTrainer

    from rearank_kit.core.manifest import check_resumable, fingerprint_files, write_manifest
    from rearank_kit.train.callbacks import MetricsLogger, peak_rss_mb
    from rearank_kit.train.generative import _read_json, check_run_folder, is_main_process

    out = Path(out)
    checkpoint = check_run_folder(out, resume)
    if checkpoint:
        check_resumable(out, dataclasses.asdict(config), kind="train", section="config",
                        ignore={"max_steps", "save_steps", "save_total_limit", "torch_threads"},
                        problem="--resume with different SFT settings", advice="use a new --out for a new run")
    prepared = prepare_sft(config, data)
    print(f"rearank-kit sft: {config.preset}: {prepared.summary()}", file=sys.stderr)
    template = prepared.template
    data_files = [p for p in (prepared.data_dir / "sets.jsonl",) if p.is_file()]
    fields = {
        "preset": config.preset, "method": "sft", "model": config.model, "model_source": prepared.model_source,
        "template": template.name, "template_hash": template.hash, "prefill": template.prefill, "seed": config.seed,
        "config": dataclasses.asdict(config), "data": str(prepared.data_dir),
        "data_fingerprint": fingerprint_files(data_files) if data_files else None,
        "data_manifest": _read_json(prepared.data_dir / "manifest.json"), "sets": len(prepared.dataset),
        # No reward is trained on; evaluation reads the parsing mode here, as for a GRPO run.
        "reward": {"lenient": config.lenient, "mode": None, "functions": []},
        "resumed_from": str(checkpoint) if checkpoint else None,
    }  # fmt: skip
    main = is_main_process()  # under accelerate launch every process runs this; one writes the files
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, "train", status="running", **fields)

    import torch

    threads = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    try:
        metrics = MetricsLogger(out / "metrics.jsonl", echo=echo)  # writes on the main process only
        trainer = SFTTrainer(model=prepared.model_source, args=config.to_sft_config(str(out)),
                             train_dataset=prepared.dataset, processing_class=prepared.tokenizer,
                             peft_config=config.lora_config(), callbacks=[metrics])
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        seconds = time.perf_counter() - started
        trainer.save_model(str(out))  # LoRA: adapter_model.safetensors + adapter_config.json; else the model
    finally:
        torch.set_num_threads(threads)
    result = {"steps": trainer.state.global_step, "seconds": round(seconds, 1), "peak_rss_mb": peak_rss_mb(),
              "last_loss": next((r["loss"] for r in reversed(metrics.records) if "loss" in r), None)}
    if main:
        write_manifest(out, "train", status="finished", result=result, **fields)
    return result


__all__ = ["SFTRunConfig", "PRESETS", "CPU_TINY", "PAPER", "get_preset", "apply_overrides", "best_order",
           "sft_target", "prepare_sft", "sft", "PreparedSFT"]  # fmt: skip
