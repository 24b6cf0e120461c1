"""The ``rearank-kit`` command line: one subcommand per module in ``rearank_kit/commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``,
and imports its heavy dependencies inside ``run`` so that ``rearank-kit --help`` and
``rearank-kit eval`` stay fast. Errors the user can fix are printed on stderr without a
traceback (exit 2); ``--debug`` shows the traceback. vLLM and transformers log at WARNING, on
stderr, unless ``--debug`` (``quiet_libraries``): standard output carries the command's own
results (``--json``). Flags shared by several subcommands live in ``commands/_common.py``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from rearank_kit import __version__, commands
from rearank_kit.core.errors import KitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rearank-kit",
        description="REARANK: reasoning listwise reranking trained with GRPO. Retrieve, augment, "
        "train, rerank and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"rearank-kit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = getattr(module, "NAME", info.name)
        p = sub.add_parser(name, help=module.HELP, description=(module.__doc__ or module.HELP).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def quiet_libraries(debug: bool) -> None:
    """Log levels of the libraries a command may load, set before they are imported (a value
    already in the environment wins): WARNING, or INFO with ``--debug``; vLLM on stderr."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if debug else "WARNING")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if debug else "warning")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    quiet_libraries(debug)
    try:
        return int(args._run(args) or 0)
    except KitError as exc:
        if debug:
            raise
        print(f"rearank-kit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rearank-kit {args.command}: interrupted; finished work is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: short message unless --debug
        if debug:
            raise
        print(f"rearank-kit {args.command}: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
