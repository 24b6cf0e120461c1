"""How fast the scored policy learns on a CPU: the state cache against the machine's arithmetic, and
the minutes of a cross-validated learning run.

    .venv/bin/python benchmarks/scored_learning.py --pairs 320            # states only (dl21 or the sample)
    .venv/bin/python benchmarks/scored_learning.py --pairs 320 --crossval runs/cv   # plus a finished run's minutes

1. **State cache.** The first ``--pairs`` (query, passage) pairs of DL21's top 100 (the sample's
   without ``../shared/data``) through the bundled model up to layer 15 (and one more, see
   ``rank/states.py``), at each ``--batch-sizes``, into a fresh cache each time. Reported: pairs per
   second, prompt tokens per second, and the arithmetic they imply: about 2 x (non-embedding
   parameters of the layers run) x tokens floating-point operations, against what this machine's
   torch does in a float32 matrix product of the same width (measured here, same threads).
2. **Learning.** With ``--crossval RUN``: the minutes per fold and in all that ``rearank-kit
   crossval`` recorded in RUN/metrics.json.

Timings move with the load of a shared machine: the load average is recorded beside each figure.
Results go to ``benchmarks/results/scored_learning.json`` (BENCHMARKS.md, "The scored policy").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _shared_data import use_shared_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scored_learning.json"


def matmul_gflops(width: int, seconds: float = 3.0) -> float:
    """float32 GFLOP/s of torch on this machine for (512 x width) @ (width x width) products."""
    import torch

    a, b = torch.randn(512, width), torch.randn(width, width)
    for _ in range(3):
        a @ b
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        n += 1
    return 2 * 512 * width * width * n / (time.perf_counter() - started) / 1e9


def layer_parameters(model) -> int:
    """Parameters of one decoder layer (attention and MLP projections, norms)."""
    return sum(p.numel() for p in model.model.layers[0].parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=320)
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--crossval", help="a finished `rearank-kit crossval` folder to read the minutes from")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rearank_kit.core.records import Benchmark
    from rearank_kit.data.benchmarks import available_benchmarks, load_benchmark
    from rearank_kit.rank.policy import load_hf_model
    from rearank_kit.rank.states import build_states

    use_shared_data()
    data = "dl21" if "dl21" in available_benchmarks() else "sample"
    bench = load_benchmark(data, top_k=100)
    rankings, left = [], args.pairs
    for r in bench.rankings:  # the first --pairs pairs, query by query
        if left <= 0:
            break
        rankings.append(type(r)(r.query, r.candidates[:left]))
        left -= len(rankings[-1].candidates)
    subset = Benchmark(bench.name, bench.path, rankings, bench.qrels)
    model, _ = load_hf_model("smollm2-135m")
    per_layer, width = layer_parameters(model), model.config.hidden_size
    layers_run = min(args.layer + 1, model.config.num_hidden_layers)
    del model
    peak = matmul_gflops(width)
    result = {"data": data, "pairs": sum(len(r.candidates) for r in rankings), "layer": args.layer,
              "layers_run": layers_run, "parameters_per_layer": per_layer, "threads": args.threads,
              "matmul_gflops": round(peak, 1), "load_before": os.getloadavg(), "runs": []}  # fmt: skip
    for batch in (int(x) for x in args.batch_sizes.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="states-bench-")) / "cache"
        started = time.perf_counter()
        build_states(subset, folder, layers=(args.layer,), batch_size=batch, progress=False)
        seconds = time.perf_counter() - started
        build = json.loads((folder / "manifest.json").read_text())["last_build"]
        flops = 2 * per_layer * layers_run * build["prompt_tokens"]
        result["runs"].append({
            "batch_size": batch, "seconds_with_model_load": round(seconds, 1), "extract_seconds": build["seconds"],
            "pairs_per_second": build["pairs_per_second"], "mean_tokens": build["mean_tokens"],
            "tokens_per_second": round(build["prompt_tokens"] / build["seconds"], 1),
            "achieved_gflops": round(flops / build["seconds"] / 1e9, 1),
            "share_of_matmul_peak": round(flops / build["seconds"] / 1e9 / peak, 3), "load_after": os.getloadavg(),
        })  # fmt: skip
        shutil.rmtree(folder.parent, ignore_errors=True)
        print(json.dumps(result["runs"][-1]))
    if args.crossval:
        metrics = json.loads((Path(args.crossval) / "metrics.json").read_text())
        result["crossval"] = {"run": args.crossval, "minutes_of_folds": metrics["minutes_of_folds"],
                              "minutes_per_fold": [f["minutes"] for f in metrics["folds"]]}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
