"""Train a REARANK reranker with GRPO (TRL) on augmented sets, from a named preset.

    rearank-kit train --preset cpu-tiny --data runs/aug-sample --steps 5 --out runs/tiny
    rearank-kit train --preset cpu-tiny --data runs/aug-sample --steps 10 --out runs/tiny --resume
    rearank-kit train --preset cpu-tiny --data runs/aug-sample --set beta=0.01 --set temperature=1.0 --out runs/b
    rearank-kit train --preset paper --data runs/aug-dl-w20 --dry-run        # checks and batch plan only
    accelerate launch --config_file configs/accelerate/zero3.yaml -m rearank_kit.commands.train \\
        --preset paper --data runs/aug-w20 --out runs/paper

Presets: cpu-tiny (bundled SmolLM2-135M, LoRA, CPU), gpu-small (Qwen2.5-7B-Instruct, LoRA, one
80 GB GPU), paper (the REARANK settings: full fine-tuning on 8 GPUs). Every setting of
rearank_kit/train/settings.py:TrainConfig can be changed with --set key=value (--show-config
lists them). Writes OUT/manifest.json, OUT/metrics.jsonl (one record per step), OUT/completions.jsonl,
OUT/checkpoint-N/ and, at the end, the LoRA adapter (or the model) in OUT. See docs/TRAINING.md.
"""

from __future__ import annotations

import argparse
import sys

from rearank_kit.commands import _common
from rearank_kit.commands._common import deprecated

HELP = "train a reranker with GRPO (presets cpu-tiny, gpu-small, paper)"


def _number(field: str):
    """argparse type of a flag that sets a TrainConfig field: checked against ``TRAIN_RANGES`` at parse time."""
    from rearank_kit.train.settings import TRAIN_RANGES

    return _common.in_range(field, int, TRAIN_RANGES)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rearank_kit.train.presets import PRESETS

    p.add_argument("--preset", default="cpu-tiny", choices=list(PRESETS), help="training preset (default: cpu-tiny)")
    p.add_argument("--data", help="augmented sets folder (rearank-kit augment --out)")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl, the adapter)")
    p.add_argument("--steps", type=_number("max_steps"), help="optimizer steps (the preset's max_steps otherwise)")
    p.add_argument("--model", help="base model: preset name, folder or hub id (the preset's otherwise)")
    p.add_argument("--seed", type=_number("seed"), help="random seed (default: the preset's, 0)")
    p.add_argument("--save-steps", type=_number("save_steps"), help="save a checkpoint every N steps")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML settings on top of the preset: TrainConfig fields and any trl.GRPOConfig field "
                        "(parsed by TRL's parser); --set and the flags above win over it. No tokens: the hub token "
                        "comes from HF_TOKEN or `hf auth login`")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change any TrainConfig field, e.g. --set beta=0.01 (repeatable)")
    p.add_argument("--report-to", help="trackers: tensorboard, trackio (both offline), wandb, or a comma list "
                                       "(default: none; metrics.jsonl is always written)")
    p.add_argument("--run-name", help="the run's name in the trackers (default: the --out folder's name)")
    p.add_argument("--project", help="the trackers' project name")
    p.add_argument("--push-to-hub", metavar="OWNER/NAME",
                   help="after training, export the merged model with its model card and upload it to this "
                        "Hugging Face repository (needs a network and a token)")
    p.add_argument("--hub-private", action="store_true", help="create the --push-to-hub repository private")
    p.add_argument("--heldout", action="append", default=[], metavar="EVAL_DIR",
                   help="evaluate-sets folders whose results go into the pushed model card (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--dry-run", action="store_true",
                   help="load the data and tokenizer, run the pre-flight checks, print the plan, train nothing")
    p.add_argument("--show-config", action="store_true", help="print the resulting config and batch plan, then exit")
    p.add_argument("--no-progress", action="store_true", help="no per-step line on stderr")
    deprecated(p, "--quiet", "--no-progress", dest="no_progress", flag=True)


def build_config(args: argparse.Namespace):
    from rearank_kit.train.overrides import apply_overrides, load_config_file
    from rearank_kit.train.presets import get_preset

    base = get_preset(args.preset)
    if getattr(args, "config", None):
        base = load_config_file(args.config, base)
    flags = {"steps": "max_steps", "model": "model", "seed": "seed", "save_steps": "save_steps",
             "report_to": "report_to", "run_name": "run_name", "project": "project"}
    return apply_overrides(base, _common.flag_overrides(args, args.overrides, flags))


def run(args: argparse.Namespace) -> int:
    from rearank_kit.core.errors import KitError
    from rearank_kit.train.preflight import plan
    from rearank_kit.train.settings import format_config

    config = build_config(args)
    if args.show_config:
        print(format_config(config))
        print(f"\nplan: {plan(config).describe()}")
        return 0
    if not args.data:
        raise KitError("--data is required (an augmented sets folder: rearank-kit augment --out DIR)")
    if args.dry_run:
        from rearank_kit.train.generative import prepare

        prepared = prepare(config, args.data, launched=config.processes())
        print(f"{config.preset}: pre-flight checks passed. {prepared.summary()}")
        return 0
    if not args.out:
        raise KitError("--out is required (the run folder)")
    _common.check_out_folder(args.out, "train")
    if args.push_to_hub:
        from rearank_kit.train.export import check_repo_id

        check_repo_id(args.push_to_hub)  # before hours of training, not after

    from rearank_kit.train.generative import train

    result = train(config, args.data, args.out, resume=args.resume, echo=not args.no_progress)
    last = result.records[-1] if result.records else {}
    reward = f", last reward {last['reward']:.3f}" if isinstance(last.get("reward"), (int, float)) else ""
    print(f"trained {result.steps} steps in {result.seconds:.0f} s (peak memory {result.peak_rss_mb / 1024:.1f} GiB)"
          f"{reward} -> {result.out}")
    if result.warnings:
        print(f"{len(result.warnings)} warning(s): see 'warnings' in {result.out}/metrics.jsonl", file=sys.stderr)
    if args.push_to_hub:
        from rearank_kit.train.export import push_to_hub

        url = push_to_hub(result.out, args.push_to_hub, heldout=args.heldout, private=args.hub_private)
        print(f"pushed the merged model and its model card to {url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return _common.launch_main("train", argv)


if __name__ == "__main__":
    sys.exit(main())
