"""How long the light entry points take to import, each in a fresh interpreter (median of N).

    .venv/bin/python benchmarks/import_time.py [--repeat 7]

The target on the reference machine (2 CPU cores) is 0.5 s for `import rearank_kit` and for the
eval command's module, so that `rearank-kit --help` and `rearank-kit eval` feel instant. The
bare interpreter's start-up is shown for comparison; the numbers include it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_S = 0.5
CASES = [
    ("python -c pass (interpreter start-up)", ["-c", "pass"]),
    ("import rearank_kit", ["-c", "import rearank_kit"]),
    ("import rearank_kit.commands.eval", ["-c", "import rearank_kit.commands.eval"]),
    ("import rearank_kit.cli + build_parser()", ["-c", "import rearank_kit.cli as c; c.build_parser()"]),
    ("rearank-kit --help", ["-m", "rearank_kit.cli", "--help"]),
    ("rearank-kit eval --data sample", ["-m", "rearank_kit.cli", "eval", "--data", "sample"]),
]


def measure(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"median wall time of {args.repeat} runs each, fresh interpreter ({sys.executable})")
    for label, argv in CASES:
        seconds = measure(argv, args.repeat)
        flag = "" if seconds <= TARGET_S or "eval --data" in label else f"  (over the {TARGET_S} s target)"
        print(f"  {label:<42} {seconds:6.3f} s{flag}")


if __name__ == "__main__":
    main()
