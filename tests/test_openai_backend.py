"""The openai backend against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1,
serving the bundled model offline from its converted folder."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.rank.backends import GenerationConfig, load_backend

pytestmark = pytest.mark.slow

PREFILL = "<answer>["
CONVERSATIONS = [
    [
        {
            "role": "user",
            "content": "Query: capital of France\n[1] Bananas are yellow.\n[2] Paris is the capital of France.\nWhich is relevant?",
        }
    ],
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You rank passages."},
        {"role": "user", "content": "Query: cats\n[1] Dogs bark.\n[2] Cats meow."},
    ],
    [{"role": "user", "content": "Name a colour."}],
]
CONFIG = GenerationConfig(max_new_tokens=8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``transformers serve <bundled folder>`` on a free port; yields (base_url, model name)."""
    from rearank_kit.rank.bundled import prepare_bundled_model

    cli = Path(sys.executable).with_name("transformers")
    if not cli.exists():
        pytest.skip(f"the transformers CLI is not installed beside {sys.executable}")
    model_dir = str(prepare_bundled_model(quiet=True))
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "serve.log"
    # One OpenMP thread: the 2-core reference machine is shared (see tests/test_backends.py).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    cmd = [
        str(cli),
        "serve",
        model_dir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"{base}/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def test_requests_return_text_and_usage(server):
    base_url, model = server
    with load_backend("openai", model, base_url=base_url, max_concurrency=1) as backend:
        outs = backend.generate(CONVERSATIONS[:2], CONFIG)
    assert len(outs) == 2
    for gen in outs:
        assert gen.text.strip()
        assert gen.prompt_tokens > 0 and 0 < gen.output_tokens <= 8
        assert gen.finish_reason in ("stop", "length")


def test_concurrent_requests_keep_order(server):
    base_url, model = server
    with load_backend("openai", model, base_url=base_url, max_concurrency=1) as backend:
        sequential = backend.generate(CONVERSATIONS, CONFIG)
    with load_backend("openai", model, base_url=base_url, max_concurrency=4) as backend:
        concurrent = backend.generate(CONVERSATIONS, CONFIG)
    assert [g.text for g in concurrent] == [g.text for g in sequential]  # greedy: same replies, same order


def test_completions_mode_matches_hf_backend(server):
    """With a local tokenizer the exact hf prompt (template + prefill) goes to /v1/completions."""
    import torch

    base_url, model = server
    with load_backend("openai", model, base_url=base_url, tokenizer="smollm2-135m", max_concurrency=2) as backend:
        assert backend.prefill_mode == "completions"
        remote = backend.generate(CONVERSATIONS[:2], CONFIG, prefill=PREFILL)
        assert backend.count_tokens(CONVERSATIONS[0], PREFILL) == remote[0].prompt_tokens
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with load_backend("hf", model="smollm2-135m") as hf:
            local = hf.generate(CONVERSATIONS[:2], CONFIG, prefill=PREFILL)
    finally:
        torch.set_num_threads(before)
    assert [g.text for g in remote] == [g.text for g in local]
    assert [g.output_tokens for g in remote] == [g.output_tokens for g in local]


def test_prefill_falls_back_when_server_lacks_continue_final_message(server):
    base_url, model = server
    with load_backend("openai", model, base_url=base_url, max_concurrency=2) as backend:
        with pytest.warns(UserWarning, match="continue_final_message"):
            outs = backend.generate(CONVERSATIONS[:2], CONFIG, prefill=PREFILL)
        assert backend.prefill_mode == "append"
    assert all(g.text.startswith(PREFILL) and len(g.text) > len(PREFILL) for g in outs)


def test_client_error_is_not_retried(server):
    base_url, _ = server
    with load_backend("openai", "not-the-served-model", base_url=base_url, max_retries=5) as backend:
        with pytest.raises(KitError, match="rejected the request|answered 4"):
            backend.generate(CONVERSATIONS[:1], CONFIG)  # a 4xx answer is final: the SDK does not retry it


def test_safe_inside_a_running_event_loop(server):
    """As in Jupyter: generate() is called while an asyncio loop runs."""
    base_url, model = server

    async def inside_loop():
        with load_backend("openai", model, base_url=base_url) as backend:
            return backend.generate(CONVERSATIONS[1:2], GenerationConfig(max_new_tokens=4))

    assert asyncio.run(inside_loop())[0].text


def test_unreachable_server_fails_after_bounded_retries():
    port = _free_port()  # nothing listens there
    with load_backend("openai", "m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2) as backend:
        with pytest.raises(KitError, match=r"failed after 3 attempt\(s\).*Connection"):
            backend.generate(CONVERSATIONS[:2], CONFIG)


def test_retries_and_timeout_are_the_sdks():
    """The backend keeps no backoff of its own: max_retries and timeout configure the openai client."""
    with load_backend("openai", "m", base_url="http://127.0.0.1:1/v1", max_retries=3, timeout=7.5) as backend:
        assert backend.client.max_retries == 3 and backend.client.timeout == 7.5


def test_bad_arguments():
    with pytest.raises(KitError, match="prefill_mode"):
        load_backend("openai", "m", base_url="http://127.0.0.1:1/v1", prefill_mode="magic")
    with pytest.raises(KitError, match="tokenizer"):
        load_backend("openai", "m", base_url="http://127.0.0.1:1/v1", prefill_mode="completions")


def test_the_library_refuses_a_dead_server_before_any_folder_and_hides_its_password(tmp_path):
    from rearank_kit.rank.run import rerank_benchmark

    with pytest.raises(KitError) as info:
        rerank_benchmark("sample", "some-model", None, tmp_path / "run", backend_name="openai",
                         backend_kwargs={"base_url": "http://user:hunter2@127.0.0.1:9/v1"})  # fmt: skip
    assert "no server answers" in str(info.value) and "hunter2" not in str(info.value)
    assert not (tmp_path / "run").exists()
