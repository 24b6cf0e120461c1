"""Exercise: nDCG@k (notebook 00), checked against ``core.metrics.ndcg_at_k``. The mistakes its hints
name: positions counted from 0, the ideal taken from the ranking instead of all judgments, exponential
gains, no cut at k (or one too many or too few), the DCG left unnormalised."""

from __future__ import annotations

import math
from collections.abc import Callable

from rearank_kit.course.exercises.checking import MAX_EXAMPLES, CheckResult, close, run_checks, scalar_hint

DISCOUNT_HINT = ("Position 1 is discounted by log2(2) = 1, position i by log2(i + 1): check how your index starts "
                 "(enumerate counts from 0, so its i is position i + 1).")  # fmt: skip
LOG2_ZERO_HINT = ("math.log2(0) is undefined: positions count from 1, so enumerate's 0-based index i is position i + 1, "
                  "discounted by log2(i + 2).")  # fmt: skip


def log2_discount(i: int) -> float:
    return math.log2(i + 2)


def dcg(gains, k, discount=log2_discount):
    """DCG of the first k gains; ``discount(i)`` for the 0-based index i (the kit: log2(i + 2))."""
    return sum(g / discount(i) for i, g in enumerate(list(gains)[:k]))


def _ndcg_variant(ranked, judgments, k, *, ideal_from_ranked=False, gain=lambda g: g, depth=lambda k: k,
                  ideal_depth=lambda k: k, discount=log2_discount, normalise=True):
    """nDCG@k with one of the common mistakes switched on (for the hints); ``depth(k)``: how many
    positions of the ranking are summed, ``ideal_depth(k)`` of the ideal."""
    grades = [max(judgments.get(d, 0), 0) for d in ranked]
    pool = grades if ideal_from_ranked else [max(g, 0) for g in judgments.values()]
    ideal = dcg(sorted((gain(g) for g in pool), reverse=True), ideal_depth(k), discount)
    got = dcg([gain(g) for g in grades], depth(k), discount)
    if not normalise:
        return got
    return got / ideal if ideal > 0 else 0.0


def check_ndcg(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(ranked_docids, judgments, k=10)``: nDCG@k with linear gain, a log2(position + 1)
    discount and the ideal built from *all* judged passages (``metrics.ndcg_at_k``)."""
    from hypothesis import strategies as st

    from rearank_kit.core.metrics import ideal_dcg, ndcg_at_k

    fixed = [
        {"ranked_docids": ["a", "b", "c"], "judgments": {"a": 3, "b": 0, "c": 1}, "k": 10},
        {"ranked_docids": ["b", "c", "a"], "judgments": {"a": 3, "c": 1, "z": 2}, "k": 10},  # b unjudged, z not retrieved
        {"ranked_docids": ["x", "y"], "judgments": {"x": 0}, "k": 10},  # nothing relevant
        {"ranked_docids": [f"d{i}" for i in range(12)], "judgments": {"d10": 2, "d11": 3, "d0": 1}, "k": 10},  # beyond k
    ]
    probes = [  # for telling apart mistakes that agree on a small case: cut-offs one off, the ideal's depth
        {"ranked_docids": [f"d{i}" for i in range(14)], "judgments": {f"d{i}": i % 4 for i in range(16)}, "k": 5},
        {"ranked_docids": [f"d{i}" for i in range(6)], "judgments": {"d2": 1, "d5": 2, "d9": 3}, "k": 3},
    ]
    docs = st.lists(st.sampled_from([f"d{i}" for i in range(15)]), unique=True, max_size=15)
    strategy = st.builds(
        lambda ranked, judged, grades, k: {
            "ranked_docids": ranked, "judgments": dict(zip(judged, grades, strict=False)), "k": k},
        docs, docs, st.lists(st.integers(0, 3), max_size=15), st.sampled_from([10, 10, 10, 5, 3, 1, 20]),
    )  # fmt: skip

    def judge(answer, case):
        expected = ndcg_at_k(case["ranked_docids"], case["judgments"], case["k"])
        return close(answer, expected), expected

    def crash(exc, case):
        if isinstance(exc, KeyError) and exc.args and exc.args[0] in case["ranked_docids"]:
            return (f"{exc} is in the ranking but not in `judgments`: nobody judged it, so it counts as grade 0. "
                    "Look grades up with judgments.get(docid, 0).")  # fmt: skip
        if isinstance(exc, ValueError) and "math domain" in str(exc):
            return LOG2_ZERO_HINT
        if isinstance(exc, ZeroDivisionError):
            if ideal_dcg(list(case["judgments"].values()), case["k"]) == 0:
                return "Nothing in this query is relevant, so the ideal DCG is 0: return 0.0 then, rather than dividing."
            return ("Your code divided by zero on a query with a relevant passage: position 1 is discounted by "
                    "log2(2) = 1, so with enumerate's 0-based i the discount is log2(i + 2), not log2(i + 1).")  # fmt: skip
        if isinstance(exc, IndexError):
            return ("The ranking can be shorter than k: take ranked_docids[:k], which stops at the end of the list, "
                    "rather than indexing positions 0 to k - 1.")  # fmt: skip
        return ""

    def inspect(answer, case, expected):
        return scalar_hint(answer, "nDCG@k", ": sum the discounted gains of the first k passages, then divide by "
                           "the ideal DCG")  # fmt: skip

    def args(case):
        return case["ranked_docids"], case["judgments"], case["k"]

    everything = 10**6  # deeper than any ranking: no cut at all
    too_many = "Only the first k positions count: ranked_docids[:k] holds positions 1 to k (you summed one more)."
    too_few = "Position k counts too: ranked_docids[:k] holds positions 1 to k (you stopped one early)."
    variants = [
        ("The ideal DCG comes from *all* judged passages of the query, also those the ranking does not contain "
         "(trec_eval's definition): sort every judged grade, highest first.",
         lambda c: _ndcg_variant(*args(c), ideal_from_ranked=True)),
        ("The kit (like trec_eval) uses the grade itself as the gain, not 2**grade - 1.",
         lambda c: _ndcg_variant(*args(c), gain=lambda g: 2**g - 1)),
        ("Only the first k positions count: cut the ranking at k before summing.",
         lambda c: _ndcg_variant(*args(c), depth=lambda k: everything)),
        ("The ideal DCG is cut at k too: the best k grades, not all of them.",
         lambda c: _ndcg_variant(*args(c), ideal_depth=lambda k: everything)),
        (too_many, lambda c: _ndcg_variant(*args(c), depth=lambda k: k + 1)),
        (too_many, lambda c: _ndcg_variant(*args(c), depth=lambda k: k + 1, ideal_depth=lambda k: k + 1)),
        (too_few, lambda c: _ndcg_variant(*args(c), depth=lambda k: k - 1)),
        (too_few, lambda c: _ndcg_variant(*args(c), depth=lambda k: k - 1, ideal_depth=lambda k: k - 1)),
        (DISCOUNT_HINT, lambda c: _ndcg_variant(*args(c), discount=lambda i: math.log2(i + 3))),
        ("That is the DCG; nDCG divides it by the ideal DCG, so that the best possible ranking scores 1.",
         lambda c: _ndcg_variant(*args(c), normalise=False)),
    ]  # fmt: skip
    return run_checks("nDCG@k", fn, fixed, strategy, judge, variants, close, strict, max_examples, crash=crash,
                      inspect=inspect, probes=probes)
