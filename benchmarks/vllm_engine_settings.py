"""vLLM engine settings on this CPU: the same windows' prefill under each setting, a fresh engine each.

    python benchmarks/vllm_engine_settings.py                     # the settings below, in turn
    python benchmarks/vllm_engine_settings.py --only '{"max_num_batched_tokens": 2048}'

Reranking on a CPU is prefill: a window of the ``rearank`` template is about 2,170 prompt tokens
for a handful generated. This asks whether any engine setting the kit could choose makes that
prefill faster than vLLM's defaults (the question of the speed issue, where the kit's loop and
the authors' do the same work and so take the same time).

The workload: 8 dl19 queries, the windows at ranks 1-20 and 41-60 of each (16 windows, 35,218
prompt tokens), the ``rearank`` template, the bundled model, greedy, 8 new tokens, all 16 in one
``generate`` call. Each setting runs in a fresh process (environment variables are read when vLLM
starts): load the engine, one short warm-up call on two windows, empty the prefix cache, then
time the call. Reported: wall and CPU seconds of the call, the load average before and after.
One run per setting: differences under about 8% are within what one run resolves on shared cores.

Results: ``benchmarks/results/vllm_engine_settings.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _shared_data import use_shared_data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "vllm_engine_settings.json"
# (engine keyword arguments, environment variables); 4096 is vLLM's CPU default budget.
SETTINGS = [
    ({"max_num_batched_tokens": 4096}, {}),
    ({"max_num_batched_tokens": 1024}, {}),
    ({"max_num_batched_tokens": 2048}, {}),
    ({"max_num_batched_tokens": 16384}, {}),
    ({"max_num_batched_tokens": 32768}, {}),
    ({}, {"VLLM_CPU_ATTN_SPLIT_KV": "0"}),
]


def one(engine_kwargs: dict) -> dict:
    """Time the workload on one engine built here (called in a fresh process by ``main``)."""
    from rearank_kit.core.prompts import load_template
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.rank.backends import GenerationConfig, load_backend

    template = load_template("rearank")
    bench = load_benchmark("dl19", top_k=100).head(8)
    windows = [template.messages(r.query.text, [c.text for c in r.candidates[s : s + 20]])
               for r in bench.rankings for s in (0, 40)]  # fmt: skip
    with load_backend("vllm", model="smollm2-135m", **engine_kwargs) as backend:
        backend.generate(windows[:2], GenerationConfig(max_new_tokens=2))  # the first prefill's one-off cost
        backend.llm.reset_prefix_cache()  # else the warm-up's two windows would be free
        before, cpu0, t0 = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
        outs = backend.generate(windows, GenerationConfig(max_new_tokens=8))
        wall, cpu = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "prompt_tokens": sum(o.prompt_tokens for o in outs),
            "load_before_after": [round(before, 2), round(os.getloadavg()[0], 2)]}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=None, help="one setting's engine arguments as JSON (run in this process)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    use_shared_data()
    if args.only is not None:
        print("RESULT " + json.dumps(one(json.loads(args.only))), flush=True)
        return 0
    from rearank_kit.core.files import write_json
    from rearank_kit.core.manifest import build_manifest
    from rearank_kit.core.prompts import load_template

    rows = []
    for kwargs, env in SETTINGS:
        proc = subprocess.run([sys.executable, __file__, "--only", json.dumps(kwargs)], env={**os.environ, **env},
                              capture_output=True, text=True)  # fmt: skip
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"error: {kwargs} {env} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append({"engine_args": kwargs, "env": env, **json.loads(lines[-1].removeprefix("RESULT "))})
        print(json.dumps(rows[-1]), flush=True)
    manifest = build_manifest("benchmark", model="smollm2-135m", template="rearank",
                              template_hash=load_template("rearank").hash, data="dl19", seed=0)  # fmt: skip
    write_json(Path(args.out), {"rows": rows, "manifest": manifest})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
