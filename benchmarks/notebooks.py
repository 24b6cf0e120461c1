"""How long each tutorial notebook takes, executed top to bottom as CI executes it (nbmake).

The course's budget (issue "The notebooks as a course"): each notebook within 3 minutes in smoke
mode, all of them within 10 minutes on 2 CPU cores, and the GRPO-from-scratch training of
notebook 07 within a minute in full mode. This runs each notebook in its own pytest process
(``pytest --nbmake``), one at a time (smoke mode with ``OMP_NUM_THREADS=1`` as CI's busy cores want, full mode on every core as a learner's laptop runs it), and
records the wall time and the load average before and after each, since other jobs on a shared
machine move every number. ``--scratch`` also times the from-scratch training in full mode (the
``train_scratch`` call of notebook 07 on DL21 sets of 20, when the data is there).

    .venv/bin/python benchmarks/notebooks.py                      # every notebook, smoke mode
    .venv/bin/python benchmarks/notebooks.py 00_quickstart 07_grpo_from_scratch --scratch
    .venv/bin/python benchmarks/notebooks.py --json benchmarks/results/notebooks.json
    REARANK_KIT_DATA=../shared/data .venv/bin/python benchmarks/notebooks.py --full --json benchmarks/results/notebooks-full.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SMOKE_LIMIT_S = 180  # per notebook
TOTAL_LIMIT_S = 600  # all of them


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str | None:
    """The processor's name (``/proc/cpuinfo``), for the record beside every timing."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def run_notebook(name: str, timeout: int, full: bool = False, runs: Path | None = None) -> dict:
    path = REPO / "notebooks" / f"{name}.ipynb"
    # Smoke mode runs as CI runs it, one thread on busy shared cores; full mode as a learner runs it
    # on a laptop, torch using every core.
    env = {**os.environ, "REARANK_KIT_SMOKE": "0" if full else "1"}
    if not full:
        env["OMP_NUM_THREADS"] = "1"
    if runs is not None:  # where the notebooks write (and would find earlier work to resume)
        env["REARANK_KIT_RUNS"] = str(runs)
    before = load_average()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                           f"--nbmake-timeout={timeout}", str(path)], cwd=REPO, env=env, capture_output=True,
                          text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    return {"notebook": name, "mode": "full" if full else "smoke", "threads": env.get("OMP_NUM_THREADS", "all"), "seconds": round(seconds, 1), "passed": proc.returncode == 0,
            "load_before": before, "load_after": load_average(),
            "tail": "" if proc.returncode == 0 else proc.stdout[-1500:]}  # fmt: skip


def time_scratch() -> dict:
    """Notebook 07's from-scratch training in full mode (150 rounds), in this process."""
    import torch

    from rearank_kit.course.grpo_scratch import ScratchConfig, scratch_sets, train_scratch
    from rearank_kit.course.notebook import benchmark_or_sample
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.train.augment import AugmentConfig, augment

    torch.set_num_threads(1)
    data = benchmark_or_sample("dl21")
    window = 5 if data == "sample" else 20
    before = load_average()
    start = time.perf_counter()
    rows = augment(load_benchmark(data, top_k=100), AugmentConfig(samples_per_query=20, window=window, seed=0)).rows
    run = train_scratch(scratch_sets(rows), ScratchConfig(rounds=150))
    return {"data": data, "window": window, "sets": len(rows), "train_seconds": round(run.seconds, 1),
            "with_data_seconds": round(time.perf_counter() - start, 1),
            "reward_first_20": round(float(run.history["reward"].iloc[:20].mean()), 3),
            "reward_last_20": round(float(run.history["reward"].iloc[-20:].mean()), 3),
            "load_before": before, "load_after": load_average()}  # fmt: skip


def write_report(args: argparse.Namespace, results: list[dict], scratch: dict | None = None) -> None:
    if not args.json:
        return
    from rearank_kit.core.files import write_json
    from rearank_kit.core.manifest import build_manifest

    report = {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "date": time.strftime("%Y-%m-%d"),
              "mode": "full" if args.full else "smoke", "notebooks": results,
              "total_seconds": round(sum(r["seconds"] for r in results), 1)}  # fmt: skip
    if scratch:
        report["scratch"] = scratch
    write_json(args.json, {**build_manifest("benchmark", script="benchmarks/notebooks.py"), **report})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="NN_name stems (default: every notebook)")
    parser.add_argument("--timeout", type=int, default=900, help="nbmake's per-cell limit, seconds")
    parser.add_argument("--scratch", action="store_true", help="also time notebook 07's training in full mode")
    parser.add_argument("--full", action="store_true", help="run the notebooks in full mode (REARANK_KIT_SMOKE=0) "
                        "instead of smoke mode; with ../shared/data on REARANK_KIT_DATA they use TREC DL")
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument("--runs", metavar="DIR", help="the notebooks' run folder (REARANK_KIT_RUNS); default: a "
                        "fresh temporary one, so that nothing an earlier run cached (states, reranks) is timed as free")
    args = parser.parse_args(argv)
    names = args.notebooks or sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    runs = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="rearank-kit-notebooks-"))
    print("run folder:", runs, flush=True)
    results = []
    for name in names:
        result = run_notebook(name, args.timeout, args.full, runs)
        results.append(result)
        flag = "" if args.full or result["seconds"] <= SMOKE_LIMIT_S else f"  over {SMOKE_LIMIT_S} s"
        print(f"{name:<32} {result['seconds']:>7.1f} s  {'ok' if result['passed'] else 'FAILED'}  "
              f"load {result['load_before']} -> {result['load_after']}{flag}", flush=True)  # fmt: skip
        if result["tail"]:
            print(result["tail"])
        write_report(args, results)  # after each notebook: a long full-mode run keeps what it measured
    total = sum(r["seconds"] for r in results)
    print(f"{'all':<32} {total:>7.1f} s  ({'within' if total <= TOTAL_LIMIT_S else 'over'} {TOTAL_LIMIT_S} s)")
    if args.scratch:
        scratch = time_scratch()
        print("notebook 07, from-scratch training in full mode:", scratch)
        write_report(args, results, scratch)
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
