"""Is this machine ready for the course? One line per check: OK, WARN or FAIL, and what to do.

    rearank-kit doctor            # Python 3.11, the packages (imported in a child process), Java,
                                  # the bundled model, the data, disk, memory, CPU cores
    rearank-kit doctor --json     # the same as a JSON list of {check, status, detail, fix}
    rearank-kit doctor --quick    # look the packages up without importing them (instant)

Exit code 1 when any check FAILs, else 0. Nothing is changed and no model is loaded; the checks
take seconds (the package imports most of them). docs/BEFORE_CLASS.md explains each line. The
checks are rearank_kit/course/doctor.py.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "check that this machine is ready for the course (exit 1 when something is missing)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list of checks instead of lines")
    p.add_argument("--quick", action="store_true",
                   help="only look the packages up, without importing them (instant; misses broken installs)")


def run(args: argparse.Namespace) -> int:
    from rearank_kit.course.doctor import as_records, exit_code, format_report, run_checks

    if not args.quick:
        print("importing the course's packages in a child process (seconds; --quick skips it) ...", file=sys.stderr)
    checks = run_checks(imports=not args.quick)
    print(json.dumps(as_records(checks), indent=2) if args.json else format_report(checks))
    return exit_code(checks)
