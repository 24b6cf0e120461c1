"""The contract every backend keeps: chat conversations in, ``Generation`` records out.

``generate(conversations, config, prefill)`` takes a list of chat message lists
(``[{"role": "system"|"user"|"assistant", "content": str}, ...]``) and returns one
``Generation`` per conversation, in the same order. ``prefill`` is text that the assistant reply
starts with (e.g. ``"<answer>["``): the model continues it, and ``Generation.text`` holds the
prefill followed by the continuation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from rearank_kit.core.prompts import render_chat
from rearank_kit.rank.backends.pipeline import MicroBatchPipeline
from rearank_kit.rank.backends.requests import (  # noqa: F401  (the backends import the request types from here)
    Conversation,
    FinishReason,
    Generation,
    GenerationConfig,
    Message,
    cut_at_stop,
    validate_conversations,
)


class Backend(ABC):
    """A text generator for chat conversations; use it as a context manager to free memory."""

    name: str = "base"
    tokenizer: Any = None  # set by backends that tokenize locally (hf, vllm; openai with tokenizer=)
    no_tokenizer_hint: str = ""  # how to get one, for the error of encode()

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def generate(
        self,
        conversations: Sequence[Conversation],
        config: GenerationConfig | None = None,
        prefill: str | None = None,
    ) -> list[Generation]:
        """One Generation per conversation, in input order (``prefill`` starts every reply)."""
        conversations = validate_conversations(conversations)
        if not conversations:
            return []
        return self._generate(conversations, config or GenerationConfig(), prefill)

    @abstractmethod
    def _generate(
        self, conversations: list[Conversation], config: GenerationConfig, prefill: str | None
    ) -> list[Generation]:
        """The backend's own work, on validated, non-empty conversations."""

    def pipeline(self, config: GenerationConfig | None = None, prefill: str | None = None) -> Any:
        """Requests in flight, submitted one by one and collected as they finish
        (``backends.pipeline``). Here: micro-batches of ``generate``; vllm and openai keep
        requests running concurrently."""
        return MicroBatchPipeline(self.generate, config, prefill)

    def encode(self, conversation: Conversation, prefill: str | None = None) -> list[int]:
        """Token ids of the prompt a local model sees (``render_chat``; the chat template already
        holds the special tokens), for backends that hold a ``tokenizer``."""
        if self.tokenizer is None:
            raise NotImplementedError(f"the {self.name} backend has no tokenizer here{self.no_tokenizer_hint}")
        text = render_chat(self.tokenizer, conversation, prefill)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, conversation: Conversation, prefill: str | None = None) -> int:
        """Prompt length in tokens (see ``encode``)."""
        return len(self.encode(conversation, prefill))

    def close(self) -> None:  # noqa: B027 - a hook: backends without resources need not override it
        """Release the model and its memory (the backend cannot be used afterwards)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"
