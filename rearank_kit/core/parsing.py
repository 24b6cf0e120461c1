"""Turn a model's reply into a ranking of the window, leniently, and say what was wrong with it.

``parse_ranking(text, num)`` always returns a full permutation of ``range(num)`` and never raises.
Where the ranking is read from, in order of preference:

1. the content of the last complete ``<answer>...</answer>`` block;
2. if only an opening ``<answer>`` exists (reply cut at the token limit), the text after it;
3. the text after ``</think>``;
4. the whole text.

Identifiers are read in order as ``[i]`` (1-based); if none is bracketed, bare integers are read
instead (tiny models often write ``3 > 1 > 2``). Duplicates and identifiers outside ``1..num`` are
dropped; identifiers never mentioned are appended in their original (first-stage) order, the same
fallback as RankGPT and the REARANK code. The diagnostics count each repair, so that rewards and
trace analysis can tell a clean answer from a repaired one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BRACKETED = re.compile(r"\[\s*([0-9]{1,9})\s*\]")
_BARE = re.compile(r"(?<![0-9])([0-9]{1,9})(?![0-9])")
# The strict formats of the paper's two format rewards.
_THINK_ANSWER = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANSWER_ONLY = re.compile(r"\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANSWER_LIST = re.compile(r"\s*\[[0-9]{1,9}\](?:\s*>\s*\[[0-9]{1,9}\])*\s*")


@dataclass
class ParseResult:
    order: list[int]  # 0-based indices into the window, best first: a permutation of range(num)
    num: int
    source: str  # "answer", "open_answer", "after_think" or "whole": where the ids were read
    answer_text: str  # the text the identifiers were read from
    think_text: str = ""  # content of <think>...</think> ("" when absent)
    has_think: bool = False  # a complete <think>...</think> block exists
    has_answer: bool = False  # a complete <answer>...</answer> block exists
    think_answer_ok: bool = False  # whole reply is exactly <think>..</think><answer>..</answer>
    answer_only_ok: bool = False  # whole reply is exactly <answer>..</answer> (lenient format)
    answer_format_ok: bool = False  # answer content is exactly "[a] > [b] > ..."
    bare_numbers: bool = False  # no bracketed id was found; bare integers were read
    num_valid: int = 0  # distinct in-range identifiers, in the order given
    num_duplicate: int = 0
    num_out_of_range: int = 0
    num_missing: int = 0  # appended in original order
    mentioned: list[int] = field(default_factory=list)  # the valid ids as given (0-based)

    @property
    def complete(self) -> bool:
        """The model ranked every passage exactly once, with no repair needed."""
        return is_complete(self.diagnostics())

    def diagnostics(self) -> dict:
        d = asdict(self)
        d.pop("order")
        d.pop("mentioned")
        return d


def is_complete(diagnostics: Mapping) -> bool:
    """Whether a reply ranked every passage exactly once (no identifier missing, repeated or out
    of range), from ``ParseResult.diagnostics()`` or the ``diagnostics`` of a trace record."""
    return (
        diagnostics.get("num") is not None
        and diagnostics.get("num_valid") == diagnostics.get("num")
        and not diagnostics.get("num_duplicate")
        and not diagnostics.get("num_out_of_range")
    )


def _answer_region(text: str) -> tuple[str, str]:
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        return "answer", blocks[-1]
    if "<answer>" in text:
        return "open_answer", text.rsplit("<answer>", 1)[1]
    if "</think>" in text:
        return "after_think", text.rsplit("</think>", 1)[1]
    return "whole", text


def parse_ranking(text: str, num: int) -> ParseResult:
    """Parse ``text`` into a ranking of ``num`` passages; see the module docstring for the rules."""
    text = text if isinstance(text, str) else ""
    num = max(int(num), 0)
    source, region = _answer_region(text)
    ids = [int(m) for m in _BRACKETED.findall(region)]
    bare = False
    if not ids:
        ids = [int(m) for m in _BARE.findall(region)]
        bare = bool(ids)

    seen: set[int] = set()
    mentioned: list[int] = []
    duplicate = out_of_range = 0
    for i in ids:
        if not 1 <= i <= num:
            out_of_range += 1
        elif i - 1 in seen:
            duplicate += 1
        else:
            seen.add(i - 1)
            mentioned.append(i - 1)
    missing = [i for i in range(num) if i not in seen]

    think = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
    strict = _THINK_ANSWER.fullmatch(text)
    # Exactly one block each: a reply that nests or repeats the tags is not well formed.
    single_tags = text.count("<think>") == 1 and text.count("<answer>") == 1
    answer_only = _ANSWER_ONLY.fullmatch(text)
    answer_content = blocks[-1] if (blocks := _ANSWER_BLOCK.findall(text)) else None
    return ParseResult(
        order=mentioned + missing,
        num=num,
        source=source,
        answer_text=region,
        think_text=think.group(1) if think else "",
        has_think=think is not None,
        has_answer=answer_content is not None,
        think_answer_ok=bool(strict) and single_tags,
        answer_only_ok=bool(answer_only) and text.count("<answer>") == 1 and "<think>" not in text,
        answer_format_ok=answer_content is not None and _ANSWER_LIST.fullmatch(answer_content) is not None,
        bare_numbers=bare,
        num_valid=len(mentioned),
        num_duplicate=duplicate,
        num_out_of_range=out_of_range,
        num_missing=len(missing),
        mentioned=mentioned,
    )


def format_ranking(order: list[int]) -> str:
    """The answer string for a 0-based order: ``[3] > [1] > [2]``."""
    return " > ".join(f"[{i + 1}]" for i in order)
