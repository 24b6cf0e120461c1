"""The backend contract (``generate`` and ``pipeline``) and the hf backend with the real bundled
model; the openai backend's pipeline against a real ``transformers serve``."""

from __future__ import annotations

import pytest
from test_openai_backend import server  # noqa: F401 - the fixture: transformers serve with the bundled model

from rearank_kit.core.errors import KitError
from rearank_kit.rank.backends import (
    Backend,
    Generation,
    GenerationConfig,
    MicroBatchPipeline,
    cut_at_stop,
    load_backend,
    open_pipeline,
    render_chat,
    validate_conversations,
)

PREFILL = "<answer>["

# Prompts of clearly different lengths, so that a batch needs left padding.
CONVERSATIONS = [
    [
        {"role": "system", "content": "You rank passages by relevance to a query."},
        {
            "role": "user",
            "content": "Query: capital of France\n[1] Bananas are yellow.\n[2] Paris is the capital of France.\n"
            "[3] Berlin is in Germany.\nAnswer with the identifiers in order, like [2] > [1] > [3].",
        },
    ],
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Query: cats\n[1] Dogs bark.\n[2] Cats meow.\nWhich passage is relevant?"}],
    [
        {
            "role": "user",
            "content": "Write one sentence about the fall of the Western Roman Empire in the fifth century, "
            "mentioning Romulus Augustulus and the year 476.",
        }
    ],
]


def test_generation_config_defaults_and_validation():
    cfg = GenerationConfig()
    assert (cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k, cfg.seed, cfg.batch_size, cfg.stop) == (
        2048, 0.0, 1.0, -1, 0, 8, None,
    )  # fmt: skip
    assert cfg.greedy and cfg.top_k_or_none is None
    assert GenerationConfig(top_k=20).top_k_or_none == 20
    assert GenerationConfig(stop="\n").stop == ["\n"]
    for bad in ({"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"top_k": 0}, {"batch_size": 0}):
        with pytest.raises(KitError):
            GenerationConfig(**bad)


def test_validate_conversations_messages():
    assert validate_conversations(CONVERSATIONS[:1]) == CONVERSATIONS[:1]
    with pytest.raises(KitError, match="not a single conversation"):
        validate_conversations(CONVERSATIONS[1])
    with pytest.raises(KitError, match="conversation 0"):
        validate_conversations([[]])
    with pytest.raises(KitError, match="unknown role"):
        validate_conversations([[{"role": "robot", "content": "x"}]])
    with pytest.raises(KitError, match="'role' and 'content'"):
        validate_conversations([[{"content": "x"}]])


def test_cut_at_stop():
    assert cut_at_stop("a > b\nc", ["\n"]) == ("a > b", True)
    assert cut_at_stop("abc", ["x", "b"]) == ("a", True)
    assert cut_at_stop("abc", None) == ("abc", False)


class _NoTokenizer(Backend):
    name = "remote-only"
    no_tokenizer_hint = ": give it one"

    def _generate(self, conversations, config, prefill):
        return []


def test_encode_needs_a_tokenizer():
    with pytest.raises(NotImplementedError, match="the remote-only backend has no tokenizer here: give it one"):
        _NoTokenizer("m").count_tokens(CONVERSATIONS[1])


def test_openai_backend_without_tokenizer_says_how_to_count_tokens():
    pytest.importorskip("openai")
    backend = load_backend("openai", model="m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(NotImplementedError, match="pass tokenizer="):
        backend.count_tokens(CONVERSATIONS[1])
    backend.close()


def test_unknown_backend():
    with pytest.raises(KitError, match="unknown backend"):
        load_backend("tgi")


# --- pipelines: requests submitted one by one, collected as they finish -------------------------


class _Echo:
    """A generate-only object (like the scripted backends of tests): replies with the user turn."""

    def __init__(self):
        self.calls = []

    def generate(self, conversations, config, prefill=None):
        self.calls.append([c[-1]["content"] for c in conversations])
        return [Generation(c[-1]["content"], 1, 1, "stop") for c in conversations]


def _turn(text):
    return [{"role": "user", "content": text}]


def test_micro_batch_pipeline_lets_a_late_request_join_the_next_batch():
    echo = _Echo()
    with open_pipeline(echo, GenerationConfig(batch_size=2), prefill=None) as pipe:
        assert isinstance(pipe, MicroBatchPipeline) and pipe.wait() == []  # nothing in flight: no call
        for key in "abc":
            pipe.submit(key, _turn(key))
        assert [(k, g.text) for k, g in pipe.wait()] == [("a", "a"), ("b", "b")]  # oldest first, 2 at most
        pipe.submit("a2", _turn("a2"))  # a's next request, submitted after a's reply
        assert pipe.in_flight == 2
        assert [k for k, _ in pipe.wait()] == ["c", "a2"]  # joined the next micro-batch
        pipe.submit("d", _turn("d"))
    assert pipe.in_flight == 0 and echo.calls == [["a", "b"], ["c", "a2"]]  # closed: d was never run
    with pytest.raises(KitError, match="expected a dict"):
        open_pipeline(echo, None, None).submit("x", ["not a message"])


class _Constant(Backend):
    name = "constant"

    def _generate(self, conversations, config, prefill):
        return [Generation((prefill or "") + "ok", 1, 1, "stop") for _ in conversations]


def test_every_backend_has_a_pipeline_over_generate():
    with _Constant("m").pipeline(GenerationConfig(batch_size=8), prefill="<answer>") as pipe:
        pipe.submit(0, _turn("hi"))
        assert [(k, g.text) for k, g in pipe.wait()] == [(0, "<answer>ok")]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread while this module's model runs, restored afterwards.

    The 2-core reference machine is often shared by parallel jobs; with 2 OpenMP threads every op
    waits for a descheduled thread (measured: 72 s instead of 8 s for the same generations).
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hf(one_torch_thread):
    with load_backend("hf", model="smollm2-135m", device="cpu") as backend:
        yield backend
    assert backend.model is None


@pytest.mark.slow
def test_render_chat_uses_template_and_prefill(hf):
    text = render_chat(hf.tokenizer, CONVERSATIONS[1], PREFILL)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" + PREFILL)
    ids = hf.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert hf.encode(CONVERSATIONS[1], PREFILL) == ids and hf.count_tokens(CONVERSATIONS[1], PREFILL) == len(ids)


@pytest.mark.slow
def test_a_template_renders_what_the_backends_send(hf):
    """PromptTemplate.render and the backends share one renderer: the same text, token for token."""
    from rearank_kit.core.prompts import load_template

    template = load_template("compact")
    messages = template.messages("what is a cat", ["Cars have wheels.", "A cat is a small feline."])
    assert template.render(hf.tokenizer, "what is a cat", ["Cars have wheels.", "A cat is a small feline."]) == (
        render_chat(hf.tokenizer, messages, template.prefill)
    )
    template_less = type("NoChatTemplate", (), {"chat_template": None, "name_or_path": "plain-lm"})()
    with pytest.raises(KitError, match="plain-lm has no chat template"):
        template.render(template_less, "q", ["p"])


@pytest.mark.slow
def test_batched_greedy_equals_unbatched(hf):
    """Left padding with attention mask and position ids: batching must not change greedy text."""
    cfg = GenerationConfig(max_new_tokens=32, batch_size=3)  # 4 prompts: micro-batches of 3 and 1
    batched = hf.generate(CONVERSATIONS, cfg, prefill=PREFILL)
    single = [hf.generate([conv], cfg, prefill=PREFILL)[0] for conv in CONVERSATIONS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert batched == single  # token counts and finish reasons too
    for gen, conv in zip(batched, CONVERSATIONS, strict=True):
        assert isinstance(gen, Generation)
        assert gen.text.startswith(PREFILL)
        assert gen.prompt_tokens == hf.count_tokens(conv, PREFILL)
        assert 0 < gen.output_tokens <= 32
        assert gen.finish_reason in ("stop", "length")
        if gen.finish_reason == "length":
            assert gen.output_tokens == 32
    assert {g.finish_reason for g in batched} == {"stop", "length"}  # both seen with these prompts


@pytest.mark.slow
def test_length_limit_and_stop_strings(hf):
    short = hf.generate(CONVERSATIONS[1:2], GenerationConfig(max_new_tokens=3))[0]
    assert short.finish_reason == "length" and short.output_tokens == 3
    full = hf.generate(CONVERSATIONS[:1], GenerationConfig(max_new_tokens=24), prefill=PREFILL)[0]
    cut = hf.generate(CONVERSATIONS[:1], GenerationConfig(max_new_tokens=24, stop=[">"]), prefill=PREFILL)[0]
    assert ">" in full.text[len(PREFILL) :]
    assert cut.finish_reason == "stop" and ">" not in cut.text[len(PREFILL) :]
    assert full.text.startswith(cut.text)


@pytest.mark.slow
def test_sampling_is_seeded_and_leaves_global_rng_alone(hf):
    import torch

    state = torch.random.get_rng_state()
    cfg = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    first = hf.generate(CONVERSATIONS[1:3], cfg)
    again = hf.generate(CONVERSATIONS[1:3], cfg)
    assert first == again
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.slow
def test_from_model_and_empty_input(hf):
    from rearank_kit.rank.backends.hf import HFBackend

    wrapped = HFBackend.from_model(hf.model, hf.tokenizer, model_id="policy")
    assert wrapped.generate([]) == []
    out = wrapped.generate(CONVERSATIONS[1:2], GenerationConfig(max_new_tokens=2))
    assert len(out) == 1 and out[0].output_tokens == 2
    wrapped.close()
    assert hf.model is not None  # the wrapped model belongs to its owner


@pytest.mark.slow
def test_hf_pipeline_equals_generate(hf):
    cfg = GenerationConfig(max_new_tokens=16, batch_size=3)
    expected = hf.generate(CONVERSATIONS, cfg, prefill=PREFILL)
    with hf.pipeline(cfg, prefill=PREFILL) as pipe:
        for i, conv in enumerate(CONVERSATIONS):
            pipe.submit(i, conv)
        got = dict(pipe.wait())
        assert sorted(got) == [0, 1, 2] and pipe.in_flight == 1  # one micro-batch of 3 per wait
        got.update(pipe.wait())
    assert [got[i] for i in range(len(CONVERSATIONS))] == expected


@pytest.mark.slow
def test_openai_pipeline_keeps_requests_in_flight_across_calls(server):  # noqa: F811
    """Requests run concurrently and come back as they finish, with the same greedy replies as
    generate(); sliding windows give the same rankings pipelined as sequentially."""
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.rank.settings import RerankConfig
    from rearank_kit.rank.windows import rerank

    base_url, model = server
    cfg = GenerationConfig(max_new_tokens=8)
    with load_backend("openai", model, base_url=base_url, tokenizer="smollm2-135m", max_concurrency=4) as backend:
        expected = backend.generate(CONVERSATIONS, cfg, prefill=PREFILL)
        with backend.pipeline(cfg, prefill=PREFILL) as pipe:
            for i, conv in enumerate(CONVERSATIONS):
                pipe.submit(i, conv)
            assert pipe.in_flight == len(CONVERSATIONS)
            got = {}
            while pipe.in_flight:
                got.update(pipe.wait())
        assert [got[i] for i in range(len(CONVERSATIONS))] == expected
        bench = load_benchmark("sample", top_k=6).head(2)
        runs = {mode: rerank(bench, backend, RerankConfig(top_k=6, window=4, step=2, template="compact",
                                                          max_new_tokens=12, mode=mode), progress=False)
                for mode in ("sequential", "pipelined")}  # fmt: skip
    assert [r.docids for r in runs["pipelined"]] == [r.docids for r in runs["sequential"]]
