"""Where a GRPO step's time goes on this machine: generation, reward, forward/backward, optimizer.

The step time bounds how much learning fits into an hour on a CPU. This runs the real trainer
(``rearank_kit.train.generative.train``, TRL's GRPOTrainer) for a few steps of a preset and splits each step
into phases by timing the trainer's own methods:

* ``generate``: sampling the completions (``GRPOTrainer._generate``: transformers' ``generate``,
  or vLLM when ``use_vllm``), the weight sync to vLLM included;
* ``reward``: the reward functions (``_calculate_rewards``);
* ``forward_backward``: the policy-gradient passes (``training_step`` minus the above);
* ``optimizer_and_rest``: TRL's ``step_time`` minus all of the above (optimizer step, logging).

    .venv/bin/python benchmarks/train_step.py --steps 4                             # cpu-tiny as it is
    .venv/bin/python benchmarks/train_step.py --data runs/aug --set lora_top_layers=8 --json out.json

Results carry the load average: on a 2-core machine shared with other jobs the same step can
take twice as long. Compare settings side by side in one session.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PHASES = ("generate", "reward", "forward_backward", "optimizer_and_rest")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def timed_trainer_class(base_factory, timings: dict[str, list[float]]):
    """The kit's trainer class with its generation, reward and training passes timed per step."""
    base = base_factory()

    class TimedTrainer(base):
        def _generate(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._generate(*args, **kwargs)
            finally:
                timings["generate"].append(time.perf_counter() - start)

        def _calculate_rewards(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._calculate_rewards(*args, **kwargs)
            finally:
                timings["reward"].append(time.perf_counter() - start)

        def _generate_and_score_completions(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._generate_and_score_completions(*args, **kwargs)
            finally:
                timings["generate_and_score"].append(time.perf_counter() - start)

        def training_step(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super().training_step(*args, **kwargs)
            finally:
                timings["training_step"].append(time.perf_counter() - start)

    return lambda: TimedTrainer


def phase_breakdown(records: list[dict], timings: dict[str, list[float]], micro_batches: int) -> list[dict]:
    """Seconds per phase for each optimizer step (one generation round per step assumed)."""
    rows = []
    for i, record in enumerate(records):
        gen = timings["generate"][i] if i < len(timings["generate"]) else float("nan")
        reward = timings["reward"][i] if i < len(timings["reward"]) else float("nan")
        score = timings["generate_and_score"][i] if i < len(timings["generate_and_score"]) else float("nan")
        steps = timings["training_step"][i * micro_batches : (i + 1) * micro_batches]
        fb = sum(steps) - score
        total = record["step_time"]
        rows.append({"step": record["step"], "step_time": total, "generate": gen, "reward": reward,
                     "forward_backward": fb, "optimizer_and_rest": total - sum(steps)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu-tiny")
    ap.add_argument("--steps", type=int, default=4, help="GRPO steps to time (default 4; the first is reported apart)")
    ap.add_argument("--data", help="augmented sets (default: window-5 sets made from data/sample in a temp folder)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: the preset's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="any other TrainConfig change, as for rearank-kit train")
    ap.add_argument("--label", default="", help="a name for this configuration in the report")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args(argv)

    import rearank_kit.train.generative as train_module
    from rearank_kit.train.augment import AugmentConfig, run_augment
    from rearank_kit.train.overrides import apply_overrides, parse_set_args
    from rearank_kit.train.preflight import plan
    from rearank_kit.train.presets import get_preset

    overrides = {**parse_set_args(args.overrides), "max_steps": args.steps, "save_steps": 10_000}
    if args.threads:
        overrides["torch_threads"] = args.threads
    config = apply_overrides(get_preset(args.preset), overrides)
    the_plan = plan(config)
    timings: dict[str, list[float]] = defaultdict(list)
    train_module._trainer_class = timed_trainer_class(train_module._trainer_class, timings)
    with tempfile.TemporaryDirectory(prefix="train-step-") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "aug"
        if not args.data:
            run_augment(REPO / "data" / "sample", data, AugmentConfig(window=config.window, samples_per_query=8,
                                                                      seed=0, template=config.template))
        load_before = load_average()
        start = time.perf_counter()
        result = train_module.train(config, data, Path(tmp) / "run", echo=True)
        wall = time.perf_counter() - start
    records = [r for r in result.records if isinstance(r.get("step_time"), (int, float))]
    micro_per_step = max(int(round(the_plan.micro_batches_per_round / the_plan.steps_per_round)), 1)
    rows = phase_breakdown(records, timings, micro_per_step)
    later = rows[1:] or rows
    median = {p: round(statistics.median(r[p] for r in later), 1) for p in ("step_time", *PHASES)}
    report = {
        "benchmark": "train_step", "label": args.label, "preset": config.preset, "steps": result.steps,
        "overrides": args.overrides, "torch_threads": config.torch_threads, "cpu_count": os.cpu_count(),
        "completions_per_step": the_plan.completions_per_step, "prompts_per_step": the_plan.prompts_per_step,
        "first_step_s": round(rows[0]["step_time"], 1) if rows else None, "median_s": median,
        "per_step": [{k: round(v, 2) for k, v in r.items()} for r in rows],
        "wall_s": round(wall, 1), "peak_rss_gib": round(result.peak_rss_mb / 1024, 2),
        "mean_completion_tokens": round(statistics.mean(r["completions/mean_length"] for r in records), 1),
        "load_average_before": load_before, "load_average_after": load_average(),
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    share = ", ".join(f"{p} {median[p]} s" for p in PHASES)
    print(f"{args.label or config.preset}: {median['step_time']} s a step (median of steps 2-{result.steps}): {share}; "
          f"peak RSS {report['peak_rss_gib']} GiB, load {report['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
