"""Seconds per GRPO step and peak memory of the ``cpu-tiny`` preset on this machine.

Runs the real preset (bundled SmolLM2-135M, LoRA r=16, 4 completions of up to 64 tokens, one
prompt of 5 passages a step) for a few steps on window-5 sets augmented from ``data/sample``
(or ``--data``), in this process, and reports:

* seconds per step: median and range of TRL's ``step_time`` (generation + scoring + backward),
  the first step reported apart (it pays one-off costs);
* peak resident memory (RSS) of the process, in GiB: the model, LoRA, optimizer and activations.

    .venv/bin/python benchmarks/train_step.py                      # 6 steps, torch's default threads
    .venv/bin/python benchmarks/train_step.py --threads 1 --steps 6 --json /tmp/train_step.json

On a machine shared with other jobs, step times vary several-fold with the load (``uptime`` is
recorded beside the numbers); compare runs made under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="GRPO steps to time (default 6)")
    ap.add_argument("--data", help="augmented window-5 sets (default: made from data/sample in a temp folder)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="any other TrainConfig change, as for rearank-kit train")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args(argv)

    from rearank_kit.augment import AugmentConfig, run_augment
    from rearank_kit.train import train
    from rearank_kit.train_presets import CPU_TINY, apply_overrides, parse_set_args

    overrides = {**parse_set_args(args.overrides), "max_steps": args.steps, "save_steps": 10_000}
    if args.threads:
        overrides["torch_threads"] = args.threads
    config = apply_overrides(CPU_TINY, overrides)
    with tempfile.TemporaryDirectory(prefix="train-step-") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "aug"
        if not args.data:
            run_augment(REPO / "data" / "sample", data, AugmentConfig(window=5, samples_per_query=8, seed=0,
                                                                      template="compact"))
        load_before = load_average()
        start = time.perf_counter()
        result = train(config, data, Path(tmp) / "run", echo=True)
        wall = time.perf_counter() - start
    times = [r["step_time"] for r in result.records if isinstance(r.get("step_time"), (int, float))]
    later = times[1:] or times
    report = {
        "benchmark": "train_step", "preset": "cpu-tiny", "steps": result.steps,
        "torch_threads": config.torch_threads, "cpu_count": os.cpu_count(),
        "first_step_s": round(times[0], 1) if times else None,
        "median_step_s": round(statistics.median(later), 1) if later else None,
        "min_step_s": round(min(later), 1) if later else None, "max_step_s": round(max(later), 1) if later else None,
        "wall_s": round(wall, 1), "peak_rss_gib": round(result.peak_rss_mb / 1024, 2),
        "mean_completion_tokens": round(statistics.mean(r["completions/mean_length"] for r in result.records), 1),
        "load_average_before": load_before, "load_average_after": load_average(),
        "max_completion_length": config.max_completion_length, "config_overrides": args.overrides,
    }  # fmt: skip
    print(json.dumps(report, indent=2))
    print(f"cpu-tiny: {report['median_step_s']} s a step (median of steps 2-{result.steps}; first "
          f"{report['first_step_s']} s), peak RSS {report['peak_rss_gib']} GiB, load {report['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
