"""Prompt templates as data: one TOML file per prompt in ``rearank_kit/templates``.

A template describes a listwise ranking conversation: an optional system message, an optional
intro exchange, the passages (one user/assistant exchange each, RankGPT style, or inline in the
final message), the final instruction, and an optional prefill that starts the assistant's reply.
The same template objects render prompts for augmentation, training and evaluation, and every
output records ``template.name`` and ``template.hash``, so that a number can never silently come
from the wrong prompt.

Placeholders: ``{query}``, ``{num}`` (passages in the window), ``{passages}`` (inline style),
``{index}`` (1-based) and ``{text}`` (passage text cleaned by ``clean_passage``). Any other braces
are literal text. A ``turns`` template with an empty ``passage_ack`` sends the passages as
consecutive user turns, with no assistant turn between them (the REARANK authors' RankGPT prompt).

Passage cleaning is the REARANK authors' (``rank_gpt.py``): whitespace collapsed, the
``"Title: Content: "`` that an empty BEIR title leaves removed, ends stripped, then the first
``max_passage_chars`` characters kept (so a cut passage may end in a space, as theirs does). The
bundled ``rearank`` and ``rankgpt`` templates reproduce the authors' messages exactly, whitespace
included (``tests/test_prompts.py`` against ``../shared/paper/official_prompts.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_PLACEHOLDER = re.compile(r"\{(query|num|passages|index|text)\}")
_FIELDS = {
    "name", "version", "description", "reasoning", "max_passage_chars", "passage_style", "system",
    "intro_user", "intro_assistant", "passage", "passage_ack", "final_user", "prefill",
}  # fmt: skip
_REQUIRED = {"name", "version", "passage", "final_user", "max_passage_chars", "passage_style"}


def _fill(template: str, /, **values) -> str:
    """Substitute the known placeholders only, so that literal braces in a prompt stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


EMPTY_TITLE = "Title: Content: "  # what "Title: {title} Content: {text}" leaves of an untitled BEIR document


def clean_passage(text: str, max_chars: int) -> str:
    """The passage text a prompt shows: whitespace collapsed, ``EMPTY_TITLE`` removed, the first
    ``max_chars`` characters (REARANK: 400, RankGPT: 300).

    The authors collapse whitespace when they read a document and remove the empty-title prefix
    when they build the prompt; collapsing first makes the prefix match whatever whitespace the
    raw text had around it.
    """
    return " ".join(text.split()).replace(EMPTY_TITLE, "").strip()[:max_chars]


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    passage: str
    final_user: str
    max_passage_chars: int
    passage_style: str  # "turns": one user/assistant exchange per passage; "inline": in final_user
    description: str = ""
    reasoning: bool = False  # does the prompt ask for <think> before <answer>?
    system: str = ""
    intro_user: str = ""
    intro_assistant: str = ""
    passage_ack: str = ""
    prefill: str = ""  # text the assistant's reply starts with (the model continues it)

    @property
    def hash(self) -> str:
        """sha256 (12 hex digits) of the template's fields: changes whenever the prompt does."""
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}#{self.hash}"

    def messages(self, query: str, passages: list[str]) -> list[dict[str, str]]:
        """The chat, as a list of ``{"role", "content"}``, without the prefill."""
        num = len(passages)
        texts = [clean_passage(p, self.max_passage_chars) for p in passages]
        chat: list[dict[str, str]] = []
        if self.system:
            chat.append({"role": "system", "content": _fill(self.system, query=query, num=num)})
        if self.intro_user:
            chat.append({"role": "user", "content": _fill(self.intro_user, query=query, num=num)})
            if self.intro_assistant:
                chat.append({"role": "assistant", "content": _fill(self.intro_assistant, query=query, num=num)})
        lines = [_fill(self.passage, index=i + 1, text=t) for i, t in enumerate(texts)]
        if self.passage_style == "turns":
            for i, line in enumerate(lines):
                chat.append({"role": "user", "content": line})
                if self.passage_ack:
                    chat.append({"role": "assistant", "content": _fill(self.passage_ack, index=i + 1)})
        final = _fill(self.final_user, query=query, num=num, passages="\n".join(lines))
        chat.append({"role": "user", "content": final})
        return chat

    def render(self, tokenizer, query: str, passages: list[str]) -> str:
        """The prompt string a model sees: the tokenizer's chat template, then the prefill
        (exactly what the backends send, ``render_chat``)."""
        return render_chat(tokenizer, self.messages(query, passages), self.prefill)


def _validate(raw: dict, source: str) -> PromptTemplate:
    unknown = set(raw) - _FIELDS
    if unknown:
        raise KitError(f"{source}: unknown template field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FIELDS))}")
    missing = _REQUIRED - set(raw)
    if missing:
        raise KitError(f"{source}: missing template field(s) {', '.join(sorted(missing))}")
    if raw["passage_style"] not in ("turns", "inline"):
        raise KitError(f"{source}: passage_style must be 'turns' or 'inline', got {raw['passage_style']!r}")
    if raw["passage_style"] == "inline" and "{passages}" not in raw["final_user"]:
        raise KitError(f"{source}: an inline template needs '{{passages}}' in final_user")
    if "{text}" not in raw["passage"]:
        raise KitError(f"{source}: field 'passage' needs a '{{text}}' placeholder")
    if not isinstance(raw["max_passage_chars"], int) or raw["max_passage_chars"] <= 0:
        raise KitError(f"{source}: max_passage_chars must be a positive integer")
    for key in _FIELDS - {"name", "version", "reasoning", "max_passage_chars", "passage_style"}:
        if key in raw and not isinstance(raw[key], str):
            raise KitError(f"{source}: field {key!r} must be a string")
    return PromptTemplate(**{**raw, "version": str(raw["version"])})


_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


def available_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml"))


def _read_toml(name_or_path: str | os.PathLike, folder: Path, what: str, bundled: list[str]) -> tuple[Path, dict]:
    """(path, parsed TOML) of a bundled file by name (never a path out of ``folder``) or of a .toml
    path; every failure a KitError naming the file."""
    path = Path(name_or_path)
    if not path.suffix:  # a name: one of the bundled files, never a path out of their folder
        if not _TEMPLATE_NAME.fullmatch(str(name_or_path)):
            raise KitError(f"{what} name {str(name_or_path)!r}: a bundled {what} is named by letters, digits, "
                           f"'-' and '_' ({', '.join(bundled)}); give a file as a path ending in .toml")
        path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        raise KitError(f"unknown {what} {str(name_or_path)!r}; bundled: {', '.join(bundled)}, or give a .toml path")
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KitError(f"{path}: invalid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise KitError(f"{path}: not a {what} (not UTF-8 text: a binary file?); a {what} is a TOML text file") from None
    except OSError as exc:
        raise KitError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_template(name_or_path: str | os.PathLike | PromptTemplate) -> PromptTemplate:
    """A bundled template by name (``rearank``, ``rankgpt``, ``compact``) or a TOML file path."""
    if isinstance(name_or_path, PromptTemplate):
        return name_or_path
    path, raw = _read_toml(name_or_path, TEMPLATE_DIR, "template", available_templates())
    template = _validate(raw, str(path))
    if path.parent == TEMPLATE_DIR and template.name != path.stem:
        raise KitError(f"{path}: name {template.name!r} does not match the file name")
    return template


# --- pair prompts: one (query, passage) at a time, for scored policies ---------------------------

PAIR_DIR = TEMPLATE_DIR / "pairs"
_PAIR_FIELDS = {"name", "version", "description", "passage_words", "chat", "text"}


@dataclass(frozen=True)
class PairPrompt:
    """A prompt that shows one query and one passage (``templates/pairs/*.toml``): the text a scored
    policy's states are read from. ``{query}`` and ``{passage}`` (its first ``passage_words`` words,
    whitespace collapsed) are filled in; ``chat`` renders it as one user turn of the chat template."""

    name: str
    version: str
    text: str
    passage_words: int
    chat: bool = False
    description: str = ""

    @property
    def hash(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def fill(self, query: str, passage: str) -> str:
        words = " ".join(" ".join(str(passage).split()).replace(EMPTY_TITLE, "").split()[: self.passage_words])
        return self.text.replace("{query}", " ".join(str(query).split())).replace("{passage}", words)

    def render(self, tokenizer: Any, query: str, passage: str) -> str:
        """The exact text the model reads (through the chat template when ``chat``)."""
        text = self.fill(query, passage)
        return render_chat(tokenizer, [{"role": "user", "content": text}]) if self.chat else text


def available_pair_prompts() -> list[str]:
    return sorted(p.stem for p in PAIR_DIR.glob("*.toml"))


def load_pair_prompt(name_or_path: str | os.PathLike | PairPrompt) -> PairPrompt:
    """A bundled pair prompt by name (``relevance``) or a TOML file path, every field checked."""
    if isinstance(name_or_path, PairPrompt):
        return name_or_path
    path, raw = _read_toml(name_or_path, PAIR_DIR, "pair prompt", available_pair_prompts())
    unknown, missing = set(raw) - _PAIR_FIELDS, {"name", "version", "text", "passage_words"} - set(raw)
    if unknown or missing:
        raise KitError(f"{path}: " + "; ".join(filter(None, [
            f"unknown field(s) {', '.join(sorted(unknown))}" if unknown else "",
            f"missing field(s) {', '.join(sorted(missing))}" if missing else ""])))
    if not isinstance(raw["passage_words"], int) or isinstance(raw["passage_words"], bool) or raw["passage_words"] < 1:
        raise KitError(f"{path}: field 'passage_words' must be a positive integer")
    for key in ("{query}", "{passage}"):
        if key not in str(raw["text"]):
            raise KitError(f"{path}: field 'text' needs a '{key}' placeholder")
    return PairPrompt(**{**raw, "version": str(raw["version"]), "chat": bool(raw.get("chat", False))})


def render_chat(tokenizer: Any, messages: list[dict[str, str]], prefill: str | None = None) -> str:
    """The exact prompt text a local model sees: chat template with generation prompt + prefill."""
    if not getattr(tokenizer, "chat_template", None):
        raise KitError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')} has no chat template; "
            "use an instruction-tuned (chat) model"
        )
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return text + (prefill or "")
