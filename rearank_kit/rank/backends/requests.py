"""What goes into a backend and what comes out: chat conversations, decoding settings and
``Generation`` records (``base.py`` holds the ``Backend`` contract, ``pipeline.py`` requests in
flight; both build on these).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rearank_kit.core.errors import KitError

Message = dict[str, str]
Conversation = list[Message]
FinishReason = Literal["stop", "length"]


@dataclass
class GenerationConfig:
    """Decoding settings shared by all backends.

    temperature 0 means greedy decoding; top_k -1 (or None) and top_p 1.0 mean no truncation.
    ``seed`` makes sampling repeatable; ``batch_size`` is the hf backend's micro-batch (vLLM and
    servers schedule their own batches). ``stop`` strings end a reply; like vLLM and OpenAI
    servers, the stop string itself is not part of the returned text.
    """

    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = -1
    seed: int = 0
    batch_size: int = 8
    stop: list[str] | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise KitError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise KitError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise KitError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k == 0:
            raise KitError("top_k must be -1 (or None) for no limit, or a positive number; got 0")
        if self.batch_size < 1:
            raise KitError(f"batch_size must be >= 1, got {self.batch_size}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.stop is not None and (not all(isinstance(s, str) and s for s in self.stop)):
            raise KitError(f"stop must be a list of non-empty strings, got {self.stop!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def top_k_or_none(self) -> int | None:
        """top_k as a positive number, or None when there is no limit."""
        return self.top_k if self.top_k is not None and self.top_k > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """One reply: ``text`` is the prefill followed by the model's continuation.

    ``output_tokens`` counts the generated tokens (an end-of-sequence token included, as vLLM
    counts it); ``finish_reason`` is "length" when ``max_new_tokens`` was reached without an
    end-of-sequence token or stop string, else "stop".
    """

    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: FinishReason

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_conversations(conversations: Sequence[Conversation]) -> list[Conversation]:
    """Check the shape of the input (a list of message lists) and fail with a clear KitError."""
    if isinstance(conversations, dict) or (
        isinstance(conversations, list) and conversations and isinstance(conversations[0], dict)
    ):
        raise KitError("generate() takes a list of conversations (lists of messages), not a single conversation")
    out = []
    for i, conv in enumerate(conversations):
        if not isinstance(conv, list | tuple) or not conv:
            raise KitError(f"conversation {i}: expected a non-empty list of messages, got {type(conv).__name__}")
        for j, msg in enumerate(conv):
            if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
                raise KitError(f"conversation {i}, message {j}: expected a dict with 'role' and 'content'")
            if msg["role"] not in ("system", "user", "assistant"):
                raise KitError(f"conversation {i}, message {j}: unknown role {msg['role']!r}")
            if not isinstance(msg["content"], str):
                raise KitError(f"conversation {i}, message {j}: content must be a string")
        out.append(list(conv))
    return out


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (excluded), and whether one was found."""
    if not stop:
        return text, False
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True
