"""What a GRPO run writes as it goes, and the alarms for runs that silently learn nothing.

``MetricsLogger`` (a ``transformers.TrainerCallback``) appends every log entry of the trainer to
``OUT/metrics.jsonl`` the moment it is made, flushed, with TRL's key names (``reward``,
``reward_std``, ``rewards/<fn>/mean``, ``frac_reward_zero_std``, ``completions/mean_length``,
``completions/clipped_ratio``, ``kl`` (only when beta > 0), ``entropy``, ``loss``, ``grad_norm``,
``learning_rate``, ``step_time`` in seconds) plus ``step`` and ``peak_rss_mb``.

``RunMonitor`` reads the same records and warns loudly (``warnings.warn``, the logger, and a
``warnings`` list in the record) about the three failures GRPO users meet most:

* zero spread: every group's completions got the same reward (``frac_reward_zero_std == 1``),
  so every advantage is 0 and the step changes nothing;
* clipped: most completions hit ``max_completion_length`` (``completions/clipped_ratio`` above
  ``clipped_ratio_max``): the reasoning is cut before the answer;
* format floor: the mean reward is no higher than what formatting alone earns, i.e. the
  rankings improve nothing.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from transformers.trainer_callback import TrainerCallback

from rearank_kit.core.files import append_jsonl

logger = logging.getLogger("rearank_kit.train.generative")


class TrainingWarning(UserWarning):
    """A GRPO run is probably learning nothing (see ``RunMonitor``)."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


# --- the monitor ---------------------------------------------------------------------------------


@dataclass
class RunMonitor:
    """Counts consecutive bad steps; ``check(record)`` returns the warnings due at this step.

    A warning fires when a streak reaches its patience and again at every further multiple of
    it, so a run that stays broken keeps saying so without repeating itself every step.
    """

    zero_std_patience: int = 3
    clipped_ratio_max: float = 0.5
    clipped_patience: int = 2
    format_floor: float | None = 0.2  # reward of a well-formatted reply whose ranking changes nothing
    floor_margin: float = 0.01
    floor_patience: int = 5
    streaks: dict[str, int] = field(default_factory=lambda: {"zero_std": 0, "clipped": 0, "floor": 0})

    def _streak(self, name: str, bad: bool, patience: int) -> bool:
        self.streaks[name] = self.streaks[name] + 1 if bad else 0
        n = self.streaks[name]
        return patience > 0 and n >= patience and n % patience == 0

    def check(self, record: dict) -> list[str]:
        if "reward" not in record:  # the end-of-training summary, not a step
            return []
        found = []
        zero = record.get("frac_reward_zero_std")
        if self._streak("zero_std", zero is not None and zero >= 1.0, self.zero_std_patience):
            found.append(
                f"frac_reward_zero_std = 1 for {self.streaks['zero_std']} steps in a row: every group of completions "
                "got identical rewards, so all advantages are 0 and nothing is learned. Raise temperature or "
                "num_generations, or use sets whose ranking can be improved (augment's best_ndcg > init_ndcg)."
            )
        clipped = record.get("completions/clipped_ratio")
        if self._streak("clipped", clipped is not None and clipped > self.clipped_ratio_max, self.clipped_patience):
            found.append(
                f"completions/clipped_ratio = {clipped:.2f} (> {self.clipped_ratio_max}) for "
                f"{self.streaks['clipped']} steps: most completions are cut at max_completion_length before "
                "they answer. Raise max_completion_length or ask for shorter reasoning."
            )
        reward = record.get("reward")
        at_floor = self.format_floor is not None and reward is not None and reward <= self.format_floor + self.floor_margin
        if self._streak("floor", at_floor, self.floor_patience):
            found.append(
                f"reward {reward:.3f} has stayed at or below the format-only level {self.format_floor:.3f} for "
                f"{self.streaks['floor']} steps: the rankings improve nothing over the initial order; the model is "
                "learning the format at most."
            )
        return found


# --- the callback --------------------------------------------------------------------------------


class MetricsLogger(TrainerCallback):
    """Append each trainer log entry to ``metrics.jsonl`` (main process only), then check it."""

    def __init__(self, path: str | os.PathLike, monitor: RunMonitor | None = None, echo: bool = True):
        self.path = Path(path)
        self.monitor = monitor or RunMonitor()
        self.echo = echo
        self.records: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # Trainer's end-of-run summary: kept by train.train, not a step
            return
        record = {"step": state.global_step, **{k: _plain(v) for k, v in logs.items()}}
        record["peak_rss_mb"] = peak_rss_mb()
        found = self.monitor.check(record)
        if found:
            record["warnings"] = found
            for message in found:
                logger.warning("step %d: %s", state.global_step, message)
                warnings.warn(f"step {state.global_step}: {message}", TrainingWarning, stacklevel=2)
        append_jsonl(self.path, record)
        self.records.append(record)
        if self.echo:
            print(_one_line(record), file=sys.stderr, flush=True)


def _plain(value):
    """JSON-ready: tensors and numpy scalars become Python numbers."""
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            return str(value)
    return value


def _one_line(record: dict) -> str:
    keys = [("reward", "reward"), ("reward_std", "std"), ("frac_reward_zero_std", "zero_std"),
            ("completions/mean_length", "len"), ("completions/clipped_ratio", "clipped"), ("kl", "kl"),
            ("loss", "loss"), ("step_time", "s")]  # fmt: skip
    parts = [f"{short} {record[k]:.3g}" for k, short in keys if isinstance(record.get(k), (int, float))]
    return f"step {record['step']}: " + "  ".join(parts)
