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
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rearank_kit.errors import KitError

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


def render_chat(tokenizer: Any, messages: Conversation, prefill: str | None = None) -> str:
    """The exact prompt text a local model sees: chat template with generation prompt + prefill."""
    if not getattr(tokenizer, "chat_template", None):
        raise KitError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')} has no chat template; "
            "use an instruction-tuned (chat) model"
        )
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return text + (prefill or "")


def cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (excluded), and whether one was found."""
    if not stop:
        return text, False
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


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
        from rearank_kit.backends.pipeline import MicroBatchPipeline

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
