"""Train a REARANK reranker with GRPO (Group Relative Policy Optimization), using TRL.

REARANK (Zhang et al., 2025) turns a chat LLM into a listwise reranker with reinforcement
learning alone. Each training prompt is one augmented *set* of passages for a query
(``augment.py``); the model writes ``<think>...</think><answer>[3] > [1] > ...</answer>``, and the
reward (``rewards.py``) scores how much its ranking improves the set's nDCG@10, plus two format
checks. GRPO samples a *group* of completions per prompt, uses each completion's reward minus
the group mean (divided by the group std) as its advantage, and takes PPO-clipped policy-gradient
steps, with no value model. Rearank-7B is Qwen2.5-7B-Instruct trained this way.

    rearank-kit augment --data sample --window 5 --template compact --out runs/aug-sample
    rearank-kit train --preset cpu-tiny --data runs/aug-sample --steps 5 --out runs/tiny
    rearank-kit train --preset cpu-tiny --data runs/aug-sample --steps 10 --out runs/tiny --resume

How this departs from the paper:

* TRL instead of verl: the batch arithmetic is mapped in ``presets.PAPER`` (verl counts
  prompts per rollout and per mini-batch; TRL counts completions per generation round and per
  optimizer step), and TRL 1.16 has no prompt truncation, so over-long prompts are refused (or
  dropped with ``long_prompts="drop"``) before training.
* Prompts are rendered here, with the preset's template, from each set's passage texts: the
  prompt stored by ``augment`` may have been made with another template.
* The ``cpu-tiny`` preset trains the bundled SmolLM2-135M with LoRA, an answer-only prompt whose
  reply is prefilled with ``<answer>[``, and the lenient reward. It exercises every piece of the
  pipeline on a laptop; it does not make a good reranker.

A run folder holds ``manifest.json``, ``metrics.jsonl`` (one record per step, TRL's key names,
see ``callbacks.py``), ``completions.jsonl`` (every completion with each reward component,
the weighted reward and the advantage; prompts are left out: they hold passage text),
``checkpoint-N/`` folders, and at the end the LoRA adapter (or full model) and its tokenizer.
Under ``accelerate launch`` the same code runs on every process; only the main one writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import append_jsonl, iter_jsonl, write_jsonl
from rearank_kit.core.manifest import check_resumable
from rearank_kit.core.optional import require
from rearank_kit.core.prompts import render_chat
from rearank_kit.train.callbacks import MetricsLogger, RunMonitor, peak_rss_mb
from rearank_kit.train.preflight import (
    check_prompt_lengths,
    check_set_size,
    check_share_prompts,
    check_template,
    plan,
)
from rearank_kit.train.settings import TrainConfig, config_dict

logger = logging.getLogger("rearank_kit.train.generative")

# Settings a resumed run may change: how long it runs and what it logs, never what it learns.
RESUMABLE_CHANGES = {
    "max_steps", "save_steps", "save_total_limit", "log_completions_every", "zero_std_patience",
    "clipped_ratio_max", "clipped_patience", "format_floor", "floor_margin", "floor_patience", "torch_threads",
}  # fmt: skip


def launched_processes() -> int:
    """Processes started by ``accelerate launch`` / torchrun (1 for a plain ``python``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --- data and prompts ----------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything checked before a model is loaded."""

    config: TrainConfig
    template: Any  # prompts.PromptTemplate
    tokenizer: Any
    model_source: str  # local folder or hub id
    dataset: Any  # datasets.Dataset: prompt, qid, set_id, grades, ideal_grades
    prompt_lengths: list[int]  # tokens, of the kept prompts
    dropped: int  # prompts left out for being longer than max_prompt_length
    data_dir: Path
    plan: Any  # preflight.Plan

    def summary(self) -> str:
        lengths = sorted(self.prompt_lengths)
        return (
            f"{len(lengths)} training sets ({self.dropped} dropped as too long); prompt tokens median "
            f"{lengths[len(lengths) // 2]}, max {lengths[-1]} (limit {self.config.max_prompt_length}); "
            f"{self.plan.describe()}"
        )


def load_tokenizer(source: str):
    """The model's tokenizer, padded on the left (generation appends on the right)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left", trust_remote_code=False)
    except OSError as exc:
        raise KitError(
            f"could not load the tokenizer of {source} ({exc}). Download the model first (huggingface-cli "
            f"download {source}) or pass a local folder with --set model=PATH"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def render_prompt(template, tokenizer, query: str, texts: list[str]) -> str | list[dict[str, str]]:
    """The prompt column TRL receives.

    Without a prefill: the chat itself (TRL's conversational format; TRL applies the chat
    template). With a prefill (``compact``: ``<answer>[``), a conversational prompt cannot carry
    the start of the assistant's reply, so the prompt is rendered to a plain string, chat
    template + prefill (TRL's standard text format); the reward functions are given the same
    prefill so that they score prefill + completion.
    """
    if template.prefill:
        return template.render(tokenizer, query, texts)
    return template.messages(query, texts)


def prompt_length(tokenizer, prompt) -> int:
    if not isinstance(prompt, str):
        prompt = render_chat(tokenizer, prompt)
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def rotate(sets, seed: int):
    """Each set in all its cyclic rotations, side by side (``TrainConfig.rotate_sets``): the sets are
    shuffled once with ``seed``, then set *i* becomes rows ``i*n .. i*n+n-1``, rotation *k* showing
    passage *k+1* first; ``set_id`` gets ``-r<k>``."""
    import random

    from datasets import Dataset

    from rearank_kit.train.augment import rotated

    rows = list(sets)
    random.Random(seed).shuffle(rows)
    out = [rotated(row, k) for row in rows for k in range(len(row["docids"]))]
    return Dataset.from_list(out, features=sets.features)


def check_run_folder(out: Path, resume: bool) -> Path | None:
    """The last checkpoint in ``out``; refuses a folder holding another run unless resuming it."""
    checkpoint = last_checkpoint(out)
    if checkpoint and not resume:
        raise KitError(f"{out} already holds a run ({checkpoint.name}); pass --resume to continue it or choose another --out")
    if not checkpoint and not resume and (out / "metrics.jsonl").is_file():
        raise KitError(f"{out} already holds metrics.jsonl from an earlier run; choose another --out")
    return checkpoint


def training_sets(config: Any, data_dir: str | os.PathLike, tokenizer=None):
    """(template, train split, model source, tokenizer): the set-up GRPO and direct SFT share.

    ``config`` is a ``TrainConfig`` or an ``SFTRunConfig`` (``model``, ``template``, ``window``,
    ``preset``). Refuses, before a model loads, a template the model does not suit, a folder
    without a train split and sets of another size than ``config.window``.
    """
    from rearank_kit.core.prompts import load_template
    from rearank_kit.rank.models import resolve_model
    from rearank_kit.train.augment import load_sets

    check_template(config)
    template = load_template(config.template)
    data_dir = Path(data_dir)
    splits = load_sets(data_dir)
    if "train" not in splits:
        raise KitError(f"{data_dir}: no train split (augment put every query in the held-out splits?)")
    sets = splits["train"]
    check_set_size({len(t) for t in sets["texts"]}, config, str(data_dir))
    _, source = resolve_model(config.model)
    return template, sets, source, tokenizer or load_tokenizer(source)


def prepare(config: TrainConfig, data_dir: str | os.PathLike, tokenizer=None, launched: int | None = None) -> Prepared:
    """Load the training sets, render the prompts and run every pre-flight check.

    Checks, each a KitError that says what to change: batch sizes (whole prompt groups per
    generation batch), template vs base model, set size vs ``config.window``, prompt length vs
    ``max_prompt_length``. ``launched``: the process count to plan for (default: this launch's).
    """
    from datasets import Dataset

    the_plan = plan(config, launched or launched_processes())  # check_batch inside
    check_share_prompts(config)
    template, sets, source, tokenizer = training_sets(config, data_dir, tokenizer)
    data_dir = Path(data_dir)
    if config.rotate_sets:
        sets = rotate(sets, config.seed)
    prompts = [render_prompt(template, tokenizer, q, t) for q, t in zip(sets["query"], sets["texts"], strict=True)]
    lengths = [prompt_length(tokenizer, p) for p in prompts]
    keep = check_prompt_lengths(lengths, config)
    columns = {"prompt": prompts} | {name: sets[name] for name in ("qid", "set_id", "grades", "ideal_grades")}
    columns = {name: [values[i] for i in keep] for name, values in columns.items()}
    return Prepared(
        config=config, template=template, tokenizer=tokenizer, model_source=source,
        dataset=Dataset.from_dict(columns), prompt_lengths=[lengths[i] for i in keep],
        dropped=len(lengths) - len(keep), data_dir=data_dir, plan=the_plan,
    )  # fmt: skip


# --- the trainer: TRL's, plus a completions log --------------------------------------------------


def _trainer_class():
    """``GRPOTrainer`` with two additions, written against TRL 1.16.0 and overriding private methods
    (``tests/test_train.py`` and ``tests/test_shared_prefix.py`` fail when a TRL release changes them):

    * every completion of a round goes to completions.jsonl. TRL keeps the last round's prompts,
      completions, per-function rewards and advantages in ``self._logs`` (gathered over
      processes) but writes them only to a rich table, wandb or parquet, and never with the
      dataset's other columns; ``_generate_and_score_completions`` is the one place that sees
      both the inputs (qid, set_id) and the scored completions, so the log is written there;
    * ``share_prompts``: each distinct prompt is computed once per generation and once per scoring
      pass instead of once per completion (``shared_prefix.py``), through ``generate`` and
      ``_get_per_token_logps_and_entropies``, TRL's single entry points for both;
    * ``training_args.bin`` (the pickled arguments transformers saves beside every checkpoint and
      the final weights, in ``_save``) is written again from ``scrubbed_args``: no hub token, no
      credentials in a URL, though the run in memory keeps them (a vLLM server may need them).

    Built in a function so that importing this module does not import TRL's trainer.
    """
    from accelerate.utils import gather_object
    from trl import GRPOTrainer

    from rearank_kit.train import shared_prefix
    from rearank_kit.train.rewards import completion_text

    class KitGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, completions_path=None, log_every=1, steps_per_round=1.0, prefill="",
                     share_prompts=False, **kwargs):
            super().__init__(*args, **kwargs)
            self.kit_completions_path = completions_path
            self.kit_log_every = log_every
            self.kit_steps_per_round = steps_per_round
            self.kit_prefill = prefill
            self.kit_share_prompts = share_prompts
            if share_prompts and not self.use_vllm and self.args.cache_implementation is None:
                model, original = self.model, self.model.generate

                def generate(*a, input_ids=None, attention_mask=None, **kw):
                    return shared_prefix.shared_generate(model, original, input_ids, attention_mask, **kw)

                model.generate = generate  # TRL calls the unwrapped model's generate (one process)

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **multimodal):
            if not self.kit_share_prompts or compute_aux_loss or any(v is not None for v in multimodal.values()):
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal)
            size = batch_size or input_ids.size(0)  # chunks bound the memory peak, as in TRL
            parts = [shared_prefix.per_token_logps(model, input_ids[i : i + size], attention_mask[i : i + size],
                                                   logits_to_keep, compute_entropy, self.accelerator.autocast())
                     for i in range(0, input_ids.size(0), size)]
            import torch

            logps = torch.cat([p[0] for p in parts])
            entropies = torch.cat([p[1] for p in parts]) if compute_entropy else None
            return logps, entropies, None

        def _save(self, output_dir=None, state_dict=None):
            super()._save(output_dir, state_dict=state_dict)
            import torch
            from transformers.trainer import TRAINING_ARGS_NAME

            torch.save(scrubbed_args(self.args), os.path.join(output_dir or self.args.output_dir, TRAINING_ARGS_NAME))

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.model.training and self.kit_completions_path and self.kit_log_every > 0:
                ids = gather_object([(x.get("qid"), x.get("set_id")) for x in inputs])  # every process must call
                round_index = int(self.state.global_step // self.kit_steps_per_round)
                if self.accelerator.is_main_process and round_index % self.kit_log_every == 0:
                    self._write_completions(ids, round_index)
            return output

        def _write_completions(self, ids, round_index):
            n = len(ids)  # this round's completions are the last n entries of each log deque
            completions = list(self._logs["completion"])[-n:]
            advantages = list(self._logs["advantages"])[-n:]
            rewards = {name: list(values)[-n:] for name, values in self._logs["rewards"].items()}
            weights = dict(zip(self.reward_func_names, self.reward_weights.tolist(), strict=True))
            lines = []
            for i, (qid, set_id) in enumerate(ids):
                parts = {name: _finite(rewards[name][i]) for name in self.reward_func_names}
                total = sum(weights[k] * v for k, v in parts.items() if v is not None)
                lines.append({
                    "step": self.state.global_step + 1,  # the optimizer step these completions train
                    "round": round_index, "qid": qid, "set_id": set_id, "group_index": i % self.num_generations,
                    "completion": self.kit_prefill + completion_text(completions[i]),
                    "rewards": parts, "reward": round(total, 6), "advantage": _finite(advantages[i]),
                })  # fmt: skip
            append_jsonl(self.kit_completions_path, *lines)

    return KitGRPOTrainer


def _finite(value):
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def _quiet_progress_callback():
    """TRL's progress bar without its per-step dump of every metric (MetricsLogger prints one line)."""
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            return None

    return ProgressCallback, QuietProgress


# --- resuming ------------------------------------------------------------------------------------


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(out: Path) -> Path | None:
    if not out.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    complete = [(s, p) for s, p in found if (p / "trainer_state.json").is_file()]  # saved to the end
    return max(complete)[1] if complete else None


def _truncate_log(path: Path, last_step: int) -> None:
    """Drop records after the checkpoint we resume from: those steps will be run again."""
    if path.is_file():
        write_jsonl(path, [r for r in iter_jsonl(path) if r.get("step", 0) <= last_step])


def _check_resume_config(out: Path, config: TrainConfig) -> None:
    check_resumable(out, config_dict(config), kind="train", section="config", ignore=RESUMABLE_CHANGES,
                    problem="--resume with different training settings", advice="use a new --out for a new run")


# --- the run -------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    out: Path
    steps: int
    seconds: float
    peak_rss_mb: float
    records: list[dict] = field(default_factory=list)  # the metrics.jsonl records of this invocation
    resumed_from: str | None = None

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.records for w in r.get("warnings", [])]


def train(config: TrainConfig, data: str | os.PathLike, out: str | os.PathLike, resume: bool = False,
          callbacks: list | None = None, echo: bool = True) -> TrainResult:
    """Run GRPO on the augmented sets in ``data``, writing the run folder ``out``.

    ``resume``: continue from the last ``checkpoint-N`` in ``out`` (a fresh start if there is
    none). Without it, a folder that already holds a run is refused rather than mixed into.
    """
    for module in ("trl", "peft", "datasets"):
        require(module)
    from trl import GRPOTrainer  # noqa: F401  (fail here, not half-way)

    out = Path(out)
    checkpoint = check_run_folder(out, resume)
    if resume and checkpoint:
        _check_resume_config(out, config)
    elif resume:
        logger.warning("no checkpoint in %s: starting from scratch", out)

    import torch

    threads_before = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    try:
        return _train(config, out, data, checkpoint, callbacks, echo)
    finally:
        torch.set_num_threads(threads_before)  # a notebook kernel keeps its own setting


def _train(config: TrainConfig, out: Path, data, checkpoint: Path | None, callbacks, echo: bool) -> TrainResult:
    from rearank_kit.core.manifest import fingerprint_files, write_manifest
    from rearank_kit.train import rewards

    prepared = prepare(config, data)
    template = prepared.template
    print(f"rearank-kit train: {config.preset}: {prepared.summary()}", file=sys.stderr)

    # Reward: weights [0.8, 0.1, 0.1]; the prefill is part of the reply the reward must parse.
    funcs, weights = rewards.make_reward_funcs(mode=config.reward_mode, lenient=config.lenient, prefill=template.prefill,
                                               rank_floor=config.rank_reward_floor)
    format_floor = config.format_floor
    if format_floor is None:  # a well-formatted reply that leaves the ranking as it was: r_rank = 0
        format_floor = sum(w for f, w in zip(funcs, weights, strict=True) if f.__name__ != "rank_reward")
    args = config.to_grpo_config(str(out), reward_weights=weights)
    main = args.process_index == 0

    if main:
        out.mkdir(parents=True, exist_ok=True)
        # Steps after the checkpoint (or all, without one) are run again: drop their records.
        step = int(_CHECKPOINT.match(checkpoint.name).group(1)) if checkpoint else 0
        _truncate_log(out / "metrics.jsonl", step)
        _truncate_log(out / "completions.jsonl", step)

    # --- the manifest: everything the numbers depend on ---
    data_files = [p for p in (prepared.data_dir / "sets.jsonl",) if p.is_file()] or sorted(
        p for p in (prepared.data_dir / "dataset").rglob("*") if p.is_file()
    )
    manifest_fields = {
        "preset": config.preset,
        "model": config.model,
        "model_source": prepared.model_source,
        "template": template.name,
        "template_hash": template.hash,
        "prefill": template.prefill,
        "seed": config.seed,
        "config": config_dict(config),
        "data": str(prepared.data_dir),
        "data_fingerprint": fingerprint_files(data_files),
        "data_manifest": _read_json(prepared.data_dir / "manifest.json"),
        "sets": len(prepared.dataset),
        "sets_dropped": prepared.dropped,
        "plan": dataclasses.asdict(prepared.plan),
        "reward": {"mode": config.reward_mode, "lenient": config.lenient, "functions": [f.__name__ for f in funcs],
                   "weights": weights, "format_floor": format_floor},
        "launched_processes": launched_processes(),
        "resumed_from": str(checkpoint) if checkpoint else None,
    }
    if main:
        write_manifest(out, "train", status="running", **manifest_fields)

    # --- the trainer ---
    monitor = RunMonitor(
        zero_std_patience=config.zero_std_patience, clipped_ratio_max=config.clipped_ratio_max,
        clipped_patience=config.clipped_patience, format_floor=format_floor, floor_margin=config.floor_margin,
        floor_patience=config.floor_patience,
    )  # fmt: skip
    metrics = MetricsLogger(out / "metrics.jsonl", monitor, echo=echo)
    trainer_cls = _trainer_class()
    trainer = trainer_cls(
        model=prepared.model_source,
        reward_funcs=funcs,
        args=args,
        train_dataset=prepared.dataset,
        processing_class=prepared.tokenizer,
        peft_config=config.lora_config(num_layers=_num_layers(prepared.model_source)),
        callbacks=[metrics, *(callbacks or [])],
        completions_path=out / "completions.jsonl" if main else None,
        log_every=config.log_completions_every,
        steps_per_round=prepared.plan.steps_per_round,
        prefill=template.prefill,
        share_prompts=config.share_prompts,
    )
    progress, quiet = _quiet_progress_callback()
    if trainer.pop_callback(progress) is not None:
        trainer.add_callback(quiet)

    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - start
    trainer.save_model(str(out))  # LoRA: adapter_model.safetensors + adapter_config.json; else the model
    result = TrainResult(out=out, steps=trainer.state.global_step, seconds=seconds, peak_rss_mb=peak_rss_mb(),
                         records=metrics.records, resumed_from=str(checkpoint) if checkpoint else None)
    if main:
        write_manifest(out, "train", status="finished", result={
            "steps": result.steps, "seconds": round(seconds, 1), "peak_rss_mb": result.peak_rss_mb,
            "train_metrics": {k: _json_number(v) for k, v in (output.metrics or {}).items()},
            "warnings": result.warnings,
        }, **manifest_fields)  # fmt: skip
    return result


def scrubbed_args(args: Any) -> Any:
    """A copy of the trainer's arguments fit to be pickled into ``training_args.bin``: a field
    naming a token, key, secret or password emptied, every other text field scrubbed
    (``secrets.scrub_text``: credentials of a URL such as ``vllm_server_base_url``)."""
    import copy

    from rearank_kit.core.secrets import is_secret_name, scrub_text

    clean = copy.copy(args)
    for name, value in vars(args).items():
        if isinstance(value, str) and value:
            if is_secret_name(name):
                setattr(clean, name, None)
            elif scrub_text(value) != value:
                setattr(clean, name, scrub_text(value))
    return clean


def _num_layers(source: str) -> int | None:
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(source), "num_hidden_layers", None)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return None if math.isnan(value) else value


__all__ = ["Prepared", "TrainResult", "prepare", "render_prompt", "train", "last_checkpoint"]
