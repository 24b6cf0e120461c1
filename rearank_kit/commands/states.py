"""Compute (once) the hidden states a scored policy reads: one per (query, candidate) pair.

    rearank-kit states --data dl21 --top-k 100 --layers 15 --out runs/states-dl21
    rearank-kit states --data dl19 --top-k 100 --layers 15 --out runs/states-dl19

The bundled model reads each pair through a pair prompt (``--prompt``, core/templates/pairs/) and
the last token's state after each of ``--layers`` is kept (float16). The folder is a cache: run
the command again and finished pairs are kept (an interrupted run resumes; a larger --top-k adds
only the new pairs); a folder made for another model, prompt or layers is refused. See
rearank_kit/rank/states.py.
"""

from __future__ import annotations

import argparse

from rearank_kit.commands import _common

HELP = "compute and cache the hidden states a scored policy reads (resumable)"


def layer_list(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer numbers separated by commas, got {text!r}") from None
    if not layers or min(layers) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative layer numbers, got {text!r}")
    return layers


def add_arguments(p: argparse.ArgumentParser) -> None:
    _common.add_input(p)
    p.add_argument("--out", required=True, help="the cache folder (created, or resumed)")
    _common.add_model(p)
    p.add_argument("--prompt", default="relevance", help="pair prompt: a name in core/templates/pairs/ or a .toml "
                   "(default: relevance)")
    p.add_argument("--layers", type=layer_list, default=(15,), help="comma-separated layers to keep (default: 15)")
    _common.add_top_k(p, 100, "the candidates whose states are computed")
    _common.add_queries(p)
    p.add_argument("--batch-size", type=_common.in_range("batch_size"), default=16, help="pairs per forward pass "
                   "(default: 16)")
    p.add_argument("--device", type=_common.device_name, default="cpu", help="cpu (default), cuda or cuda:N")
    _common.add_progress(p)


def run(args: argparse.Namespace) -> int:
    from rearank_kit.core.prompts import load_pair_prompt
    from rearank_kit.rank.states import build_states

    _common.check_out_folder(args.out, "states")
    load_pair_prompt(args.prompt)  # a bad prompt fails before the data or the model is read
    if args.device != "cpu":
        _common.check_device(args.device)
    bench, _ = _common.load_input(args, args.top_k)
    cache = build_states(bench.head(args.queries), args.out, args.model, args.prompt, args.layers,
                         batch_size=args.batch_size, device=args.device, progress=not args.no_progress)  # fmt: skip
    print(f"{len(cache)} pairs of {bench.name} (layers {', '.join(map(str, cache.key.layers))}, prompt "
          f"{cache.key.prompt}#{cache.key.prompt_hash}) in {cache.folder}")
    return 0
