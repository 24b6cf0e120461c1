"""The openai backend: any OpenAI-compatible server (vLLM ``vllm serve``, ``transformers serve``,
SGLang, a hosted API), through the synchronous ``openai`` client.

Requests run concurrently in a thread pool (``max_concurrency``), within one ``generate`` call or
across calls through ``pipeline()`` (requests submitted one by one, collected as they finish); no
event loop is created, so the backend is safe inside Jupyter. Retries are the ``openai`` SDK's own (``max_retries``, ``timeout``
are handed to ``openai.OpenAI``): connection errors, timeouts, 408/409/429 and 5xx answers are
retried with its exponential backoff (honouring ``Retry-After``); what is still failing after that,
and every other error, is a KitError naming the server. What the SDK lacks is kept here: the
concurrency limit and the prefill modes below. ``check_server`` says within seconds whether
anything listens at the URL (``rearank-kit`` asks before it reads data or writes a folder).
Messages name the server by its URL without credentials (``secrets.scrub_url``): a key belongs in
``OPENAI_API_KEY`` or ``api_key=``, and a URL with ``user:password@`` or ``?key=`` still works but
is never printed or recorded as given.

Prefill (text the assistant reply must start with) depends on what the server can do:

- ``"continue"``: the prefill is sent as a final assistant message with
  ``continue_final_message=True, add_generation_prompt=False`` (vLLM's extension). The model
  continues the prefill exactly as the hf and vllm backends do.
- ``"completions"``: the prompt is rendered here with a local copy of the model's tokenizer
  (``tokenizer=``, a preset, folder or hub id) and sent to the legacy ``/v1/completions``
  endpoint, which ``transformers serve`` and vLLM both offer. Same prompt text as the hf backend;
  the server tokenizes it (with its default special-token handling: fine for SmolLM2 and Qwen,
  whose tokenizers add no BOS).
- ``"append"``: the conversation is sent without the prefill and the prefill is put in front of
  the returned text. CAVEAT: the model never saw the prefill, so its reply may repeat it or not
  follow it; parsing is then less reliable. ``transformers serve`` 5.17 rejects the
  ``continue_final_message`` fields (HTTP 422) and always adds the generation prompt, so without
  a tokenizer this is the only way it can take a prefill.
- ``"auto"`` (default): ``completions`` when a tokenizer is given, else ``continue``; if the server
  rejects the extension (HTTP 400/422) the backend warns once and falls back to ``append``.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from rearank_kit.core.env import unreachable
from rearank_kit.core.errors import KitError
from rearank_kit.core.optional import require
from rearank_kit.core.secrets import scrub_text, scrub_url
from rearank_kit.rank.backends.base import (
    Backend,
    Conversation,
    Generation,
    GenerationConfig,
    cut_at_stop,
    render_chat,
)
from rearank_kit.rank.backends.pipeline import Pipeline

PREFILL_MODES = ("auto", "continue", "completions", "append")
CONTINUE_EXTRA = {"continue_final_message": True, "add_generation_prompt": False}
PROBE_TIMEOUT_S = 3.0


def check_server(base_url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """KitError, within ``timeout`` seconds, when nothing accepts a connection at ``base_url``'s
    host and port (a TCP probe, ``env.unreachable``); the message names the URL without credentials."""
    from urllib.parse import urlsplit

    shown = scrub_url(base_url)
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise KitError(f"--base-url {shown}: not a URL ({exc}); e.g. http://localhost:8000/v1") from None
    if not host or parts.scheme not in ("http", "https"):
        raise KitError(f"--base-url {shown}: expected http://HOST:PORT/... or https://..., e.g. http://localhost:8000/v1")
    problem = unreachable([(host, port)], timeout=timeout)
    if problem is not None:
        raise KitError(f"openai backend: no server answers at {shown} ({scrub_text(problem)}). Start it first "
                       "(e.g. `vllm serve MODEL` or `transformers serve`), or correct --base-url; nothing was "
                       "read or written")  # fmt: skip


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible server.

    ``model`` is the model name the server knows (for ``transformers serve`` and ``vllm serve``:
    the path or id it was started with). ``api_key`` defaults to ``$OPENAI_API_KEY``, or a dummy
    key for a server given by ``base_url``. ``timeout`` is per request, in seconds.
    """

    name = "openai"
    no_tokenizer_hint = " to count tokens with: pass tokenizer= (the model's preset, folder or hub id)"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 4,
        timeout: float = 600.0,
        prefill_mode: str = "auto",
        tokenizer: Any = None,
    ) -> None:
        super().__init__(str(model))
        openai = require("openai")
        if prefill_mode not in PREFILL_MODES:
            raise KitError(f"prefill_mode must be one of {', '.join(PREFILL_MODES)}, got {prefill_mode!r}")
        if max_concurrency < 1 or max_retries < 0:
            raise KitError("max_concurrency must be >= 1 and max_retries >= 0")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if base_url is None:
                raise KitError("the openai backend needs an API key: pass api_key= or set OPENAI_API_KEY")
            api_key = "EMPTY"  # local servers do not check it, the client insists on one
        self.base_url = base_url or "https://api.openai.com/v1"
        self.shown_url = scrub_url(self.base_url)  # what messages say: no credentials
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.tokenizer = _load_tokenizer(tokenizer) if isinstance(tokenizer, str | os.PathLike) else tokenizer
        if prefill_mode == "completions" and self.tokenizer is None:
            raise KitError("prefill_mode='completions' needs tokenizer= (the model's preset, folder or hub id)")
        if prefill_mode == "auto" and self.tokenizer is not None:
            prefill_mode = "completions"
        self.prefill_mode = prefill_mode
        self._lock = threading.Lock()
        self._warned = False
        self._errors = openai
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    # ----- requests -----

    def _sampling(self, config: GenerationConfig, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(standard arguments, extra_body) for one request."""
        args: dict[str, Any] = {"max_tokens": config.max_new_tokens, "temperature": config.temperature}
        if not config.greedy:
            args["top_p"] = config.top_p
            args["seed"] = config.seed + index
        if config.stop:
            args["stop"] = list(config.stop)
        extra: dict[str, Any] = {}
        if not config.greedy and config.top_k_or_none:
            extra["top_k"] = config.top_k_or_none  # not OpenAI's API; vLLM and SGLang accept it
        return args, extra

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        """One request; the SDK has already retried what is worth retrying when this fails."""
        e = self._errors
        try:
            return fn(**kwargs)
        except (e.APIConnectionError, e.RateLimitError, e.InternalServerError) as exc:
            raise KitError(
                f"openai backend: request to {self.shown_url} (model {self.model_id!r}) failed after "
                f"{self.max_retries + 1} attempt(s): {type(exc).__name__}: {scrub_text(str(exc))}. Is the server "
                "running and is base_url right (it usually ends in /v1)?"
            ) from exc

    def _one(self, conversation: Conversation, config: GenerationConfig, prefill: str | None, index: int) -> Generation:
        args, extra = self._sampling(config, index)
        mode = self.prefill_mode if prefill else ("completions" if self.prefill_mode == "completions" else "plain")
        e = self._errors
        try:
            if mode == "completions":
                prompt = render_chat(self.tokenizer, conversation, prefill)
                resp = self._call(
                    self.client.completions.create, model=self.model_id, prompt=prompt, extra_body=extra or None, **args
                )
                choice = resp.choices[0]
                text = choice.text or ""
            else:
                messages = list(conversation)
                body = dict(extra)
                if mode in ("continue", "auto"):
                    messages = messages + [{"role": "assistant", "content": prefill}]
                    body.update(CONTINUE_EXTRA)
                resp = self._call(
                    self.client.chat.completions.create,
                    model=self.model_id,
                    messages=messages,
                    extra_body=body or None,
                    **args,
                )
                choice = resp.choices[0]
                text = choice.message.content or ""
                if mode == "auto":
                    with self._lock:
                        self.prefill_mode = "continue"
        except (e.BadRequestError, e.UnprocessableEntityError) as exc:
            if mode == "auto":
                self._fall_back(exc)
                return self._one(conversation, config, prefill, index)
            raise KitError(f"openai backend: the server at {self.shown_url} rejected the request: "
                           f"{scrub_text(str(exc))}") from exc
        except e.APIStatusError as exc:
            raise KitError(f"openai backend: the server at {self.shown_url} answered {exc.status_code}: "
                           f"{scrub_text(str(exc))}") from exc
        text, hit_stop = cut_at_stop(text, config.stop)
        usage = getattr(resp, "usage", None)
        finish = "length" if choice.finish_reason == "length" and not hit_stop else "stop"
        return Generation(
            text=(prefill or "") + text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=finish,
        )

    def _fall_back(self, exc: Exception) -> None:
        with self._lock:
            self.prefill_mode = "append"
            if self._warned:
                return
            self._warned = True
        warnings.warn(
            f"the server at {self.shown_url} does not accept continue_final_message ({scrub_text(str(exc))}); the prefill "
            "is now put in front of the reply without the model seeing it (prefill_mode='append'). "
            "Pass tokenizer= to use the /v1/completions endpoint with the exact prompt instead.",
            stacklevel=3,
        )

    def _generate(
        self, conversations: list[Conversation], config: GenerationConfig, prefill: str | None
    ) -> list[Generation]:
        if prefill and self.prefill_mode == "auto" and len(conversations) > 1:
            # Settle the prefill mode on one request before sending the others concurrently.
            first = [self._one(conversations[0], config, prefill, 0)]
            return first + self._run(conversations[1:], config, prefill, offset=1)
        return self._run(conversations, config, prefill, offset=0)

    def _run(
        self, conversations: list[Conversation], config: GenerationConfig, prefill: str | None, offset: int
    ) -> list[Generation]:
        if not conversations:
            return []
        if len(conversations) == 1 or self.max_concurrency == 1:
            return [self._one(c, config, prefill, offset + i) for i, c in enumerate(conversations)]
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations)))
        try:
            futures = [pool.submit(self._one, c, config, prefill, offset + i) for i, c in enumerate(conversations)]
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def pipeline(self, config: GenerationConfig | None = None, prefill: str | None = None) -> ThreadPipeline:
        """Up to ``max_concurrency`` requests in flight, collected as they finish."""
        return ThreadPipeline(self, config, prefill)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None


def _load_tokenizer(name_or_path: str | os.PathLike) -> Any:
    from transformers import AutoTokenizer

    from rearank_kit.rank.models import resolve_model

    _, source = resolve_model(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
    except OSError as exc:
        raise KitError(f"the tokenizer of {source} could not be found locally ({exc})") from exc


class ThreadPipeline(Pipeline):
    """Each submitted request runs in a thread of a pool of ``max_concurrency``; ``wait`` returns
    those that have finished. With ``prefill_mode="auto"`` the first request with a prefill runs
    alone, as in ``generate``, to settle the mode before others are sent."""

    def __init__(self, backend: OpenAIBackend, config: GenerationConfig | None, prefill: str | None) -> None:
        super().__init__(config, prefill)
        self._backend = backend
        self._pool = ThreadPoolExecutor(max_workers=backend.max_concurrency, thread_name_prefix="rearank-openai")
        self._running: dict[Future, Any] = {}  # future -> key
        self._settled: list[tuple[Any, Generation]] = []

    def _submit(self, key: Any, conversation: Conversation, index: int) -> None:
        if self.prefill and self._backend.prefill_mode == "auto":
            self._settled.append((key, self._backend._one(conversation, self.config, self.prefill, index)))
            return
        self._running[self._pool.submit(self._backend._one, conversation, self.config, self.prefill, index)] = key

    def wait(self) -> list[tuple[Any, Generation]]:
        if self._settled:
            done, self._settled = self._settled, []
            return done
        if not self._running:
            return []
        finished, _ = wait_futures(list(self._running), return_when=FIRST_COMPLETED)
        return [(self._running.pop(future), future.result()) for future in finished]

    @property
    def in_flight(self) -> int:
        return len(self._running) + len(self._settled)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._running.clear()
        self._settled.clear()
