"""The ``rearank-kit`` command line: one subcommand per module in ``rearank_kit/commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``,
and imports its heavy dependencies inside ``run`` so that ``rearank-kit --help`` and
``rearank-kit eval`` stay fast. Errors the user can fix are printed on stderr without a
traceback (exit 2); ``--debug`` shows the traceback. Every message printed is scrubbed of
secrets first (``core/secrets.py``: URL credentials, tokens). vLLM and torch log at ERROR, on
stderr, unless ``--verbose`` or ``REARANK_KIT_VERBOSE=1`` (WARNING) or ``--debug`` (INFO)
(``env.quiet_engines``): standard output carries the command's own results (``--json``), and a
progress bar is not buried under the engines' start-up warnings. Flags shared by several
subcommands live in ``commands/_common.py``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from rearank_kit import __version__, commands
from rearank_kit.core.env import VERBOSE, quiet_engines
from rearank_kit.core.errors import KitError
from rearank_kit.core.secrets import scrub_text

VERBOSE_HELP = (f"show the engines' warnings (vLLM, torch: hidden below ERROR otherwise; the same as {VERBOSE}=1, "
                "which notebooks can set)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rearank-kit",
        description="REARANK: reasoning listwise reranking trained with GRPO. Retrieve, augment, "
        "train, rerank and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"rearank-kit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = getattr(module, "NAME", info.name)
        p = sub.add_parser(name, help=module.HELP, description=(module.__doc__ or module.HELP).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def quiet_libraries(debug: bool, verbose: bool = False) -> str:
    """Log levels of the libraries a command may load, set before they are imported (a value
    already in the environment wins): ``env.quiet_engines``; ``--verbose`` sets
    ``REARANK_KIT_VERBOSE=1`` (for the processes a command starts, too). Returns vLLM's level."""
    if verbose:
        os.environ[VERBOSE] = "1"
    return quiet_engines(debug)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        quiet_libraries(debug, getattr(args, "verbose", False))
        return int(args._run(args) or 0)
    except KitError as exc:
        if debug:
            raise
        print(f"rearank-kit {args.command}: error: {scrub_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rearank-kit {args.command}: interrupted; finished work is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: short message unless --debug
        if debug:
            raise
        print(f"rearank-kit {args.command}: error: {type(exc).__name__}: {scrub_text(str(exc))} (rerun with --debug "
              "for the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
