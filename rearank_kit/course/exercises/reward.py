"""Exercise: the normalised rank reward (notebook 02), (S_new - S_init) / (S_best - S_init), checked
against ``train.rewards.rank_value``. The mistakes its hints name: the raw nDCG or the plain difference,
dividing by 1 - S_init or by S_best, clipping at 0, ranks read as indices, nDCG cut at 9 or 11."""

from __future__ import annotations

import math
from collections.abc import Callable

from rearank_kit.course.exercises.checking import (
    MAX_EXAMPLES,
    CheckResult,
    close,
    describe,
    is_bool,
    run_checks,
    scalar_hint,
    size_of,
)
from rearank_kit.course.exercises.ndcg import DISCOUNT_HINT, LOG2_ZERO_HINT, dcg, log2_discount


def _normalised(s_new: float, s_init: float, s_best: float) -> float:
    room = s_best - s_init
    return (s_new - s_init) / room if room > 1e-12 else 0.0


def _reward_variant(order, grades, ideal_grades, *, k=10, discount=log2_discount, combine=_normalised):
    """The rank reward with one of the common mistakes switched on: ``combine(S_new, S_init, S_best)``."""
    ideal = dcg(sorted(ideal_grades, reverse=True), k, discount)

    def s(ordered):
        return dcg(ordered, k, discount) / ideal if ideal > 0 else 0.0

    return combine(s([grades[i] for i in order]), s(list(grades)), s(sorted(grades, reverse=True)))


def check_reward(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(order, grades, ideal_grades)``: REARANK's normalised rank reward
    (S_new - S_init) / (S_best - S_init), 0 when S_best == S_init, not clipped."""
    from hypothesis import strategies as st

    from rearank_kit.core.metrics import ideal_dcg
    from rearank_kit.train.rewards import rank_scores, rank_value

    def reference(order, grades, ideal_grades, mode="normalized"):
        return rank_value(*rank_scores(order, grades, ideal_grades), mode=mode)

    fixed = [
        {"order": [1, 4, 3, 0, 2], "grades": [0, 3, 0, 1, 2], "ideal_grades": [3, 2, 2, 1, 1]},  # the best order: 1
        {"order": [0, 1, 2], "grades": [2, 1, 0], "ideal_grades": [2, 1]},  # already best: no room, 0
        {"order": [2, 1, 0], "grades": [0, 1, 3], "ideal_grades": [3, 2, 1]},
        {"order": [0, 2, 1], "grades": [0, 3, 0], "ideal_grades": [3, 3]},
        # 12 passages, reversed: the new order has relevant passages at positions 10, 11 and 12
        {"order": list(range(11, -1, -1)), "grades": [1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3],
         "ideal_grades": [3, 2, 1, 1, 2]},
    ]
    probes = [  # a set of 14: what happens beyond position 10
        {"order": list(range(13, -1, -1)), "grades": [0, 1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 1, 0, 2],
         "ideal_grades": [1, 2, 3, 1, 2, 3]},
        {"order": [3, 0, 4, 1, 2], "grades": [1, 0, 2, 0, 3], "ideal_grades": [3, 2, 1, 1]},
    ]

    @st.composite
    def sets(draw):
        grades = draw(st.lists(st.integers(0, 3), min_size=2, max_size=14))
        extra = draw(st.lists(st.integers(1, 3), max_size=6))  # the query's judged passages outside the set
        order = draw(st.permutations(range(len(grades))))
        return {"order": list(order), "grades": grades, "ideal_grades": [g for g in grades if g > 0] + extra}

    def judge(answer, case):
        expected = reference(**case)
        return close(answer, expected), expected

    def crash(exc, case):
        if isinstance(exc, ZeroDivisionError):
            if ideal_dcg(case["ideal_grades"]) == 0:
                return ("No passage of this query is relevant, so the ideal DCG is 0: every S is 0.0 then (and so is "
                        "the reward), rather than a division by zero.")  # fmt: skip
            _, s_init, s_best = rank_scores(case["order"], case["grades"], case["ideal_grades"])
            if s_best - s_init <= 1e-12:
                return ("This set leaves no room to improve (S_best == S_init): the reward is 0 then, not a division "
                        "by zero.")  # fmt: skip
            return ("Your code divided by zero although this set can improve: is it the discount of position 1? "
                    "It is log2(2) = 1, so with enumerate's 0-based i use log2(i + 2).")  # fmt: skip
        if isinstance(exc, IndexError):
            return ("An index ran past the end of `grades`: `order` holds 0-based indices, 0 to len(grades) - 1, so "
                    "grades[i] for i in order needs no + 1.")  # fmt: skip
        if isinstance(exc, ValueError) and "math domain" in str(exc):
            return LOG2_ZERO_HINT
        return ""

    def inspect(answer, case, expected):
        if not is_bool(answer) and size_of(answer) == 3 != len(case["grades"]):
            return ("You returned three numbers, perhaps (S_new, S_init, S_best): the reward is one number made of "
                    "them, (S_new - S_init) / (S_best - S_init).")  # fmt: skip
        if not is_bool(answer) and size_of(answer) == len(case["grades"]) > 1:
            return (f"You returned {describe(answer, 'numbers')}, one per passage; the reward is one number for the "
                    "whole ordering.")  # fmt: skip
        return scalar_hint(answer, "the reward", ": (S_new - S_init) / (S_best - S_init)")

    def inverse(order):
        out = [0] * len(order)
        for pos, idx in enumerate(order):
            out[idx] = pos
        return out

    variants = [
        ("That is the raw nDCG of the new order (S_new); the reward is the share of the possible improvement: "
         "(S_new - S_init) / (S_best - S_init).", lambda c: reference(**c, mode="raw")),
        ("That is the difference S_new - S_init; divide it by the room to improve, S_best - S_init.",
         lambda c: reference(**c, mode="difference")),
        ("Divide by the room this set leaves, S_best - S_init, not by 1 - S_init: S_best (the set sorted by grade) "
         "stays below 1 when relevant passages of the query are outside the set.",
         lambda c: _reward_variant(**c, combine=lambda n, i, b: (n - i) / (1 - i) if 1 - i > 1e-12 else 0.0)),
        ("Divide by the room to improve, S_best - S_init, not by S_best alone: the best order must earn exactly 1.",
         lambda c: _reward_variant(**c, combine=lambda n, i, b: (n - i) / b if b > 1e-12 else 0.0)),
        ("The reward is not clipped at 0: a ranking worse than the initial order earns a negative reward.",
         lambda c: max(reference(**c), 0.0)),
        ("`order` lists passage indices best first (order[0] is the passage ranked first), not each passage's rank.",
         lambda c: reference(inverse(c["order"]), c["grades"], c["ideal_grades"])),
        ("`order` holds 0-based indices: order[0] == 2 means grades[2], so no - 1 is needed.",
         lambda c: reference([i - 1 for i in c["order"]], c["grades"], c["ideal_grades"])),
        ("nDCG@10 counts only the first 10 positions, also for sets of more than 10 passages.",
         lambda c: rank_value(*rank_scores(c["order"], c["grades"], c["ideal_grades"], k=100))),
        ("nDCG@10 counts positions 1 to 10: grades[:10] holds exactly ten (you counted eleven).",
         lambda c: _reward_variant(**c, k=11)),
        ("nDCG@10 counts positions 1 to 10: grades[:10] holds exactly ten (you counted nine).",
         lambda c: _reward_variant(**c, k=9)),
        (DISCOUNT_HINT, lambda c: _reward_variant(**c, discount=lambda i: math.log2(i + 3))),
    ]  # fmt: skip
    return run_checks("normalised rank reward", fn, fixed, sets(), judge, variants, close, strict, max_examples,
                      crash=crash, inspect=inspect, probes=probes)
