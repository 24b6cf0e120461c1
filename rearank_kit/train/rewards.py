"""REARANK's reward: how much a completion's ranking improves a set, plus two format checks.

For one completion on one set of passages (``grades[i]`` is the judged grade of passage
``[i+1]`` in the set's initial order; ``ideal_grades`` are *all* the judged grades of the query):

    r_rank    = (S_new - S_init) / (S_best - S_init)        0 when S_best == S_init; not clipped
    r_format1 = 1 if the reply is exactly <think>...</think><answer>...</answer> else 0
    r_format2 = 1 if the answer content is exactly [a] > [b] > ... else 0
    r         = 0.8 * r_rank + 0.1 * r_format1 + 0.1 * r_format2

S is nDCG@10 of the set in some order, normalised by the ideal DCG@10 of the whole query
(trec_eval semantics): S_new under the parsed ranking, S_init in the initial order, S_best with
the set sorted by grade. r_rank is 1 for a best ordering, 0 for "no change" and negative when the
model makes the ranking worse (it can be far below -1 when the set leaves little room to improve).

Modes (the paper's ablations): ``normalized`` (above, default), ``difference`` (S_new - S_init)
and ``raw`` (S_new).

Strict and lenient. ``parsing.parse_ranking`` always returns a full permutation, repairing what
it can (duplicates dropped, missing passages appended in initial order), and the paper likewise
scores whatever ranking it can read. Strict mode (default) scores the ranking only when the reply
has a complete ``<answer>...</answer>`` block, and gives r_rank = 0 otherwise: without that, a
model could earn rank reward from passage numbers scattered through its reasoning while never
learning to answer. Lenient mode, for tiny models that rarely close their tags, scores the parsed
ranking whatever its source and lets a bare ``<answer>...</answer>`` (no think block) earn the
first format reward.

The TRL reward functions (``rank_reward``, ``format_think_answer_reward``,
``format_answer_reward``; ``make_reward_funcs`` builds configured ones) follow TRL's contract:
``fn(completions, grades, ideal_grades, **kwargs) -> list[float]``, the dataset columns arriving
as keyword arguments. They are picklable instances whose ``__name__`` TRL logs as
``rewards/<name>/mean``; the weights go to ``GRPOConfig(reward_weights=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rearank_kit.core.metrics import dcg, ideal_dcg
from rearank_kit.core.parsing import ParseResult, parse_ranking

MODES = ("normalized", "difference", "raw")
COMPONENTS = ("rank", "format_think_answer", "format_answer")
DEFAULT_WEIGHTS = (0.8, 0.1, 0.1)  # in the order of COMPONENTS
K = 10


# --- inputs -------------------------------------------------------------------------------------


def completion_text(completion) -> str:
    """The text of a completion: a string, or TRL's conversational ``[{"role", "content"}, ...]``.

    Anything else (None, numbers, malformed messages) becomes "" or its readable text, never an error.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            content = message.get("content") if isinstance(message, dict) else message
            if isinstance(content, list):  # multimodal content: [{"type": "text", "text": ...}]
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if isinstance(content, str):
                parts.append(content)
        return "".join(parts)
    return ""


def _grades(values, name: str) -> list[float]:
    """Grades as finite floats; bad *data* is a bug in the dataset, so it raises (a reply never does)."""
    if values is None:
        raise ValueError(f"{name} is missing: the reward needs the set's '{name}' column (see rearank_kit.train.augment)")
    try:
        grades = [float(g) for g in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r:.80}") from None
    if not all(math.isfinite(g) for g in grades):
        raise ValueError(f"{name} must be finite, got {grades!r:.80}")
    return grades


# --- the rank reward ----------------------------------------------------------------------------


def set_ndcg(ordered_grades: Sequence[float], ideal_grades: Sequence[float], k: int = K) -> float:
    """nDCG@k of a set's grades in some order, normalised by the query's ideal DCG@k."""
    ideal = ideal_dcg(ideal_grades, k)
    return dcg(ordered_grades, k) / ideal if ideal > 0 else 0.0


def rank_scores(order: Sequence[int], grades: Sequence[float], ideal_grades: Sequence[float],
                k: int = K) -> tuple[float, float, float]:
    """(S_new, S_init, S_best) for a 0-based permutation ``order`` of the set."""
    s_new = set_ndcg([grades[i] for i in order], ideal_grades, k)
    s_init = set_ndcg(grades, ideal_grades, k)
    s_best = set_ndcg(sorted(grades, reverse=True), ideal_grades, k)
    return s_new, s_init, s_best


def rank_value(s_new: float, s_init: float, s_best: float, mode: str = "normalized",
               floor: float | None = None) -> float:
    """r_rank from the three scores, in one of the paper's three variants, bounded below by ``floor``
    (None: unbounded, the paper's reward)."""
    value = _rank_value(s_new, s_init, s_best, mode)
    return value if floor is None else max(value, floor)


def _rank_value(s_new: float, s_init: float, s_best: float, mode: str) -> float:
    if mode == "normalized":
        room = s_best - s_init
        # An already-best set leaves nothing to improve: 0, not a division by zero.
        # min(.., 1): S_new <= S_best always holds; this only absorbs float rounding.
        return min((s_new - s_init) / room, 1.0) if room > 1e-12 else 0.0
    if mode == "difference":
        return s_new - s_init
    if mode == "raw":
        return s_new
    raise ValueError(f"unknown reward mode {mode!r}; choose one of {', '.join(MODES)}")


# --- the format rewards -------------------------------------------------------------------------


def format_think_answer_value(parsed: ParseResult, lenient: bool = False) -> float:
    """1 for exactly <think>..</think><answer>..</answer>; lenient: a bare <answer>..</answer> too."""
    return 1.0 if parsed.think_answer_ok or (lenient and parsed.answer_only_ok) else 0.0


def format_answer_value(parsed: ParseResult) -> float:
    """1 when the answer block holds exactly ``[a] > [b] > ...``."""
    return 1.0 if parsed.answer_format_ok else 0.0


# --- all together -------------------------------------------------------------------------------


def reward_breakdown(completion, grades: list[int], ideal_grades: list[int], mode: str = "normalized", *,
                     lenient: bool = False, weights: Sequence[float] = DEFAULT_WEIGHTS, prefill: str = "",
                     k: int = K, rank_floor: float | None = None) -> dict:
    """Every component of the reward of one completion on one set, and their weighted total.

    Keys: ``rank``, ``format_think_answer``, ``format_answer``, ``total`` and, for inspection,
    ``s_new``, ``s_init``, ``s_best``, ``ranked`` (whether the ranking was scored: strict mode
    needs a complete answer block) and ``order`` (the parsed 0-based permutation).
    ``prefill`` is text the prompt put at the start of the reply, prepended before parsing;
    ``rank_floor`` bounds r_rank below (a departure from the paper, off by default).
    """
    if mode not in MODES:
        raise ValueError(f"unknown reward mode {mode!r}; choose one of {', '.join(MODES)}")
    if len(weights) != len(COMPONENTS):
        raise ValueError(f"weights must have {len(COMPONENTS)} values ({', '.join(COMPONENTS)}), got {weights!r}")
    grades = _grades(grades, "grades")
    ideal_grades = _grades(ideal_grades, "ideal_grades")
    text = (prefill or "") + completion_text(completion)
    parsed = parse_ranking(text, len(grades))
    s_new, s_init, s_best = rank_scores(parsed.order, grades, ideal_grades, k)
    ranked = lenient or parsed.has_answer
    rank = rank_value(s_new, s_init, s_best, mode, rank_floor) if ranked else 0.0
    parts = {
        "rank": rank,
        "format_think_answer": format_think_answer_value(parsed, lenient),
        "format_answer": format_answer_value(parsed),
    }
    total = sum(w * parts[c] for w, c in zip(weights, COMPONENTS, strict=True))
    return {**parts, "total": total, "s_new": s_new, "s_init": s_init, "s_best": s_best,
            "ranked": ranked, "order": parsed.order}


# --- TRL reward functions -----------------------------------------------------------------------


class _TRLReward:
    """One component as a TRL reward function; picklable (a module-level class, plain attributes).

    TRL names a callable instance by its ``__name__`` attribute (``trl.trainer.utils.get_callable_name``),
    so each instance carries one: the name shown in the logs as ``rewards/<name>/mean``.
    """

    component = ""

    def __init__(self, mode: str = "normalized", lenient: bool = False, prefill: str = "",
                 rank_floor: float | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown reward mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode, self.lenient, self.prefill, self.rank_floor = mode, lenient, prefill or "", rank_floor
        self.__name__ = f"{self.component}_reward"

    def __call__(self, completions, grades=None, ideal_grades=None, **kwargs) -> list[float]:
        completions = list(completions or [])
        n = len(completions)
        if grades is None or ideal_grades is None:
            if self.component == "rank":
                raise ValueError(f"{self.__name__} needs the dataset columns 'grades' and 'ideal_grades' "
                                 "(write the training set with `rearank-kit augment`)")
            grades, ideal_grades = [[]] * n, [[]] * n  # the format checks need no grades
        out = []
        for completion, g, ideal in zip(completions, grades, ideal_grades, strict=True):
            parts = reward_breakdown(completion, g, ideal, self.mode, lenient=self.lenient, prefill=self.prefill,
                                     rank_floor=self.rank_floor)
            out.append(float(parts[self.component]))
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mode={self.mode!r}, lenient={self.lenient!r}, prefill={self.prefill!r}, "
                f"rank_floor={self.rank_floor!r})")


class RankReward(_TRLReward):
    """r_rank: how much the completion's ranking improves the set (see the module docstring)."""

    component = "rank"


class FormatThinkAnswerReward(_TRLReward):
    """r_format1: the reply is exactly a think block then an answer block."""

    component = "format_think_answer"


class FormatAnswerReward(_TRLReward):
    """r_format2: the answer block is exactly ``[a] > [b] > ...``."""

    component = "format_answer"


rank_reward = RankReward()
format_think_answer_reward = FormatThinkAnswerReward()
format_answer_reward = FormatAnswerReward()


def make_reward_funcs(mode: str = "normalized", lenient: bool = False, prefill: str = "",
                      weights: Sequence[float] = DEFAULT_WEIGHTS,
                      rank_floor: float | None = None) -> tuple[list[_TRLReward], list[float]]:
    """The three reward functions and their weights, for ``GRPOTrainer(reward_funcs=...)`` and
    ``GRPOConfig(reward_weights=...)``. TRL sums ``weight * reward`` over the functions, which
    is ``reward_breakdown(...)["total"]``.
    """
    funcs = [cls(mode=mode, lenient=lenient, prefill=prefill, rank_floor=rank_floor)
             for cls in (RankReward, FormatThinkAnswerReward, FormatAnswerReward)]
    if len(weights) != len(funcs):
        raise ValueError(f"weights must have {len(funcs)} values, got {weights!r}")
    return funcs, [float(w) for w in weights]
