"""Requests in flight: submit a conversation the moment it is ready, collect replies as they finish.

``Backend.generate`` takes a list and returns when every reply is done, so its caller waits for
the slowest one. A *pipeline* takes conversations one at a time (``submit``) and hands back
whichever replies have finished (``wait``). A caller whose next request depends on a reply (the
next window of a query needs the ranking of the previous one) submits it at once, while the
other requests are still running: no request waits for another's straggler.

    with backend.pipeline(GenerationConfig(max_new_tokens=128), prefill=None) as pipe:
        pipe.submit("q1", conversation)
        for key, generation in pipe.wait():     # blocks until at least one reply is finished
            ...

How each backend keeps requests in flight:

- ``vllm``: requests go into the engine's own queue (``LLMEngine.add_request``) and the engine is
  stepped here (``LLMEngine.step``); continuous batching lets a request submitted between two
  steps join the next one.
- ``openai``: each request runs in a thread of a pool of ``max_concurrency``.
- ``hf`` (and any object with only ``generate``): ``MicroBatchPipeline``; each ``wait`` runs one
  ``generate`` call on up to ``batch_size`` of the waiting conversations, oldest first, and a
  conversation submitted meanwhile joins the next micro-batch.

Everything is synchronous (no event loop: safe inside Jupyter). ``close`` (or leaving the
``with`` block, an exception included) cancels what is still in flight, so an interrupted run
leaves nothing queued in the engine for the next call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any

from rearank_kit.rank.backends.requests import Conversation, Generation, GenerationConfig, validate_conversations


class Pipeline(ABC):
    """Conversations submitted one by one, replies collected as they finish (see the module)."""

    def __init__(self, config: GenerationConfig | None, prefill: str | None) -> None:
        self.config = config or GenerationConfig()
        self.prefill = prefill
        self.submitted = 0  # every request gets its own index (the sampling seed offset)

    def submit(self, key: Hashable, conversation: Conversation) -> None:
        """Start generating a reply to ``conversation``; ``wait`` returns it with ``key``."""
        (conversation,) = validate_conversations([conversation])
        self._submit(key, conversation, self.submitted)
        self.submitted += 1

    @abstractmethod
    def _submit(self, key: Hashable, conversation: Conversation, index: int) -> None: ...

    @abstractmethod
    def wait(self) -> list[tuple[Hashable, Generation]]:
        """The replies finished since the last call, at least one; ``[]`` when nothing is in flight."""

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Requests submitted and not yet returned by ``wait``."""

    def close(self) -> None:  # noqa: B027 - a hook: pipelines with nothing to cancel need not override it
        """Cancel what is still in flight."""

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MicroBatchPipeline(Pipeline):
    """A pipeline over a ``generate`` function: each ``wait`` is one call on up to
    ``config.batch_size`` waiting conversations, oldest first."""

    def __init__(self, generate: Callable[..., list[Generation]], config: GenerationConfig | None,
                 prefill: str | None) -> None:  # fmt: skip
        super().__init__(config, prefill)
        self._generate = generate
        self._waiting: list[tuple[Hashable, Conversation]] = []

    def _submit(self, key: Hashable, conversation: Conversation, index: int) -> None:
        self._waiting.append((key, conversation))

    def wait(self) -> list[tuple[Hashable, Generation]]:
        batch, self._waiting = self._waiting[: self.config.batch_size], self._waiting[self.config.batch_size :]
        if not batch:
            return []
        outs = self._generate([conv for _, conv in batch], self.config, prefill=self.prefill)
        if len(outs) != len(batch):
            raise RuntimeError(f"backend returned {len(outs)} generations for {len(batch)} conversations")
        return [(key, out) for (key, _), out in zip(batch, outs, strict=True)]

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        self._waiting = []


def open_pipeline(backend: Any, config: GenerationConfig | None, prefill: str | None) -> Pipeline:
    """``backend.pipeline(config, prefill)``, or a ``MicroBatchPipeline`` over its ``generate``
    for objects that only have that (scripted backends in tests, user wrappers)."""
    make = getattr(backend, "pipeline", None)
    if make is not None:
        return make(config, prefill)
    return MicroBatchPipeline(backend.generate, config, prefill)
