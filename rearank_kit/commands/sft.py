"""Direct SFT baseline (the paper's Table 3): fine-tune on the best ordering of each augmented set.

    rearank-kit sft --preset cpu-tiny --data runs/aug-w5 --steps 30 --out runs/sft-tiny
    rearank-kit sft --preset cpu-tiny --data runs/aug-w5 --set learning_rate=5e-5 --out runs/sft-lr
    rearank-kit sft --preset paper --data runs/aug-w20 --dry-run          # checks only
    accelerate launch --config_file configs/accelerate/zero3.yaml -m rearank_kit.commands.sft \\
        --preset paper --data runs/aug-w20 --out runs/sft-paper
    rearank-kit evaluate-sets --model runs/sft-tiny --sets runs/aug-w5 --split test --out runs/eval-sft

Presets: cpu-tiny (bundled SmolLM2-135M, compact prompt, LoRA, CPU) and paper (Qwen2.5-7B-Instruct,
rearank prompt, full fine-tuning; the paper states no SFT settings, so they are the kit's
assumptions). Every setting of rearank_kit/train/sft.py:SFTRunConfig can be changed with --set. Writes
OUT/manifest.json (kind "train", method "sft"), OUT/metrics.jsonl, OUT/checkpoint-N/ and, at the
end, the adapter (or model): the run folder works as --model wherever a GRPO run does.
"""

from __future__ import annotations

import argparse
import sys

from rearank_kit.commands import _common
from rearank_kit.commands._common import add_progress

HELP = "direct SFT baseline: fine-tune on the best ordering of each augmented set (Table 3)"


def steps(text: str) -> int:
    """argparse type of ``--steps``: at least 1, or -1 (one pass over the sets)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value != -1 and value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range; it must be at least 1, or -1 for one pass over the "
                                         "sets")  # fmt: skip
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="cpu-tiny", help="cpu-tiny (default) or paper")
    p.add_argument("--data", help="augmented sets folder (rearank-kit augment --out); its train split is used")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl, the adapter)")
    p.add_argument("--steps", type=steps, help="optimizer steps (default: the preset's; -1: one pass over the sets)")
    p.add_argument("--model", help="base model: preset name, folder or hub id (the preset's otherwise)")
    p.add_argument("--template", help="prompt template (the preset's otherwise)")
    p.add_argument("--seed", type=_common.in_range(_common.SEED), help="random seed (default: the preset's, 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change any SFTRunConfig field, e.g. --set learning_rate=5e-5 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--dry-run", action="store_true", help="load the data and tokenizer, run the checks, train nothing")
    p.add_argument("--show-config", action="store_true", help="print the resulting config, then exit")
    add_progress(p)


def build_config(args: argparse.Namespace):
    from rearank_kit.train.sft import apply_overrides, get_preset

    flags = {"steps": "max_steps", "model": "model", "template": "template", "seed": "seed"}
    return apply_overrides(get_preset(args.preset), _common.flag_overrides(args, args.overrides, flags))


def run(args: argparse.Namespace) -> int:
    from rearank_kit.core.errors import KitError

    config = build_config(args)
    if args.show_config:
        from rearank_kit.train.settings import format_config

        print(format_config(config))
        return 0
    if not args.data:
        raise KitError("--data is required (an augmented sets folder: rearank-kit augment --out DIR)")
    if args.dry_run:
        from rearank_kit.train.sft import prepare_sft

        print(f"{config.preset}: checks passed. {prepare_sft(config, args.data).summary()}")
        return 0
    if not args.out:
        raise KitError("--out is required (the run folder)")
    _common.check_out_folder(args.out, "train")

    from rearank_kit.train.sft import sft

    result = sft(config, args.data, args.out, resume=args.resume, echo=not args.no_progress)
    loss = f", last loss {result['last_loss']:.3f}" if isinstance(result.get("last_loss"), (int, float)) else ""
    print(f"fine-tuned {result['steps']} steps in {result['seconds']:.0f} s{loss} -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return _common.launch_main("sft", argv)


if __name__ == "__main__":
    sys.exit(main())
