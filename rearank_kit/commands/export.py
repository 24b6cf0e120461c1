"""Export a training run as a standalone Hugging Face model with a model card.

    rearank-kit export runs/grpo runs/grpo-merged
    rearank-kit export runs/grpo/checkpoint-40 runs/grpo-40 --heldout runs/eval-grpo-test

The LoRA adapter is merged into its base model; OUT_DIR gets the weights and tokenizer,
README.md (a model card: base model, template and hash, reward weights, training data
fingerprint, training settings, and the held-out results of each --heldout evaluation folder) and
rearank_kit.json (how the kit runs it: template, prefill, parsing mode, window). Any tool loads
OUT_DIR as an ordinary model; `rearank-kit rerank --model OUT_DIR` prompts it as it was trained.
"""

from __future__ import annotations

import argparse

HELP = "export a training run as a merged Hugging Face model with a model card"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_DIR", help="training run folder (rearank-kit train --out) or a checkpoint in it")
    p.add_argument("out", metavar="OUT_DIR", help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--heldout", action="append", default=[], metavar="EVAL_DIR",
                   help="an evaluate-sets output folder whose results go into the model card (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT_DIR (a folder holding "
                   "anything else is refused, never deleted)")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.core.files import read_json
    from rearank_kit.rank.policy import EXPORT_RECORD
    from rearank_kit.train.export import export_run

    out = export_run(args.run, args.out, heldout=args.heldout, overwrite=args.overwrite)
    files = read_json(out / EXPORT_RECORD).get("files", [])
    print(f"exported {args.run} -> {out} ({', '.join(files)})")
    return 0
