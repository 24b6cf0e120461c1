"""Generation backends: ``hf`` (transformers), ``vllm`` (offline engine) and ``openai`` (any
OpenAI-compatible chat server). All share ``generate(conversations, config, prefill)``, and
``pipeline(config, prefill)`` for requests submitted one by one and collected as they finish.

    from rearank_kit.rank.backends import load_backend, GenerationConfig
    with load_backend("hf", model="smollm2-135m") as backend:
        outs = backend.generate(conversations, GenerationConfig(max_new_tokens=64), prefill="<answer>[")

Importing this package is cheap: each backend imports torch, vllm or openai when it is loaded.
"""

from __future__ import annotations

from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.rank.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationConfig,
    Message,
    cut_at_stop,
    render_chat,
    validate_conversations,
)
from rearank_kit.rank.backends.pipeline import MicroBatchPipeline, Pipeline, open_pipeline

BACKENDS = ("hf", "vllm", "openai")

__all__ = [
    "BACKENDS",
    "Backend",
    "Conversation",
    "Generation",
    "GenerationConfig",
    "Message",
    "MicroBatchPipeline",
    "Pipeline",
    "cut_at_stop",
    "load_backend",
    "open_pipeline",
    "render_chat",
    "validate_conversations",
]


def load_backend(name: str, model: Any = "smollm2-135m", **kwargs: Any) -> Backend:
    """Create a backend by name; ``kwargs`` go to its constructor.

    ``model``: a preset, folder or hub id, or a kit training run folder (or a checkpoint inside
    one, or a ``policy.Policy``): hf merges its LoRA adapter into the base, vllm applies it per
    request (``enable_lora``).

    - ``hf``: device ("auto", the default: the GPU when one is visible; "cpu", "cuda", "cuda:N"),
      dtype, attn_implementation
    - ``vllm``: dtype, seed, enforce_eager, max_model_len, gpu_memory_utilization,
      tensor_parallel_size and any other ``vllm.LLM`` argument
    - ``openai``: base_url, api_key, max_concurrency, max_retries, timeout, prefill_mode, tokenizer
    """
    from rearank_kit.rank.policy import as_policy

    key = name.strip().lower()
    policy = as_policy(model)
    if key in ("hf", "transformers"):
        from rearank_kit.rank.backends.hf import HFBackend

        if policy.adapter is None:
            return HFBackend(policy.base, **kwargs)
        from rearank_kit.rank.policy import load_hf_model

        loaded = load_hf_model(policy.base, adapter=policy.adapter, **{"device": "auto", **kwargs})
        return HFBackend(policy.name, _loaded=loaded)
    if key == "vllm":
        from rearank_kit.rank.backends.vllm import VLLMBackend

        return VLLMBackend(policy.base, lora_adapter=policy.adapter, **kwargs)
    if policy.adapter is not None:
        raise KitError(f"the {name} backend cannot apply the LoRA adapter of {policy.name}; export it first "
                       f"(rearank-kit export {policy.name} OUT_DIR) and serve the merged model")
    if key == "openai":
        from rearank_kit.rank.backends.openai import OpenAIBackend

        return OpenAIBackend(model, **kwargs)
    raise KitError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
