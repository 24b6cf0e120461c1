"""Checkers for the notebooks' implement-it-yourself exercises: the learner's function against the kit's.

Each ``check_*`` runs a learner's function on hand-picked edge cases, then on many generated
ones (hypothesis, derandomised, nothing written to disk), compares it with the kit's own
implementation, and returns a ``CheckResult`` that a notebook displays: *passed*, *not yet done*
(the stub still raises ``NotImplementedError`` or returns None), or *failed* with the smallest
failing case hypothesis found, what was expected, and a hint naming the likely mistake. A failing
or unfinished exercise never raises unless ``strict=True``: a notebook with empty stubs still runs
top to bottom in CI, and the solutions in ``notebooks/solutions/`` are checked with ``strict=True``
by ``tests/test_exercises.py``.

Where the hint comes from, first found wins:
1. the learner's code raised: what that exception means in this exercise (``KeyError`` in nDCG:
   an unjudged passage; ``math.log2(0)``: positions counted from 0; a division by zero: which one);
2. the answer has the wrong type or shape (a float where a tensor with a gradient is needed, a
   list of numbers where one number is, a 2-D tensor where a flat one is, pairs that are not pairs);
3. the answer equals a *variant*, the kit's function with one common mistake switched on
   (off-by-ones included); when several variants explain this case, the one that agrees with the
   learner's function on most of the hand-picked and probe cases is named;
4. a last look at the answer (the windows: how many there were against how many there should be).
The learner's function is called on copies of the inputs, so changing them in place cannot
confuse the comparison.

| checker | the learner writes | the kit's reference |
| --- | --- | --- |
| ``check_ndcg`` | ``fn(ranked_docids, judgments, k=10) -> float`` | ``metrics.ndcg_at_k`` |
| ``check_reward`` | ``fn(order, grades, ideal_grades) -> float`` (normalised r_rank) | ``rewards.rank_value`` |
| ``check_window_positions`` | ``fn(k, window, step) -> [(start, end), ...]`` | ``windows.window_positions`` |
| ``check_advantages`` | ``fn(rewards, num_generations) -> tensor`` | ``grpo.group_advantages`` |
| ``check_grpo_loss`` | ``fn(logps, old_logps, ref_logps, advantages, mask, epsilon, beta) -> tensor`` | ``grpo.grpo_loss`` |
"""

from __future__ import annotations

import copy
import html
import math
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rearank_kit.core.optional import require

MAX_EXAMPLES = 150  # generated cases per checker (after the hand-picked ones)

# --- the result ---------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What a checker found: ``status`` is "passed", "failed" or "not done"; truthy only when passed."""

    exercise: str
    status: str
    cases: int = 0
    message: str = ""
    hint: str = ""
    example: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.status == "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        head = {"passed": "PASSED", "failed": "NOT YET RIGHT", "not done": "NOT YET DONE"}[self.status]
        lines = [f"{self.exercise}: {head}" + (f" ({self.cases} cases)" if self.cases else ""), self.message]
        lines += [f"  {k} = {_show(v)}" for k, v in self.example.items()]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(line for line in lines if line)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"passed": "#1a7f37", "failed": "#cf222e", "not done": "#9a6700"}[self.status]
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(_show(v))}</code></td></tr>"
                       for k, v in self.example.items())  # fmt: skip
        return (f"<div style='border-left:4px solid {colour};padding:4px 10px'>"
                f"<b style='color:{colour}'>{html.escape(str(self).splitlines()[0])}</b>"
                f"<p>{html.escape(self.message)}</p>" + (f"<table>{rows}</table>" if rows else "")
                + (f"<p><b>hint:</b> {html.escape(self.hint)}</p>" if self.hint else "") + "</div>")  # fmt: skip


def _show(value: Any) -> str:
    """A short readable form: numbers to 4 significant digits, tensors as nested lists, long text cut."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "tolist"):
        value = value.tolist()

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, tuple):
            return "(" + ", ".join(fmt(x) for x in v) + ")"
        return repr(v)

    text = fmt(value)
    return text if len(text) < 400 else text[:397] + "..."


class _NotDone(Exception):
    pass


# --- the engine ---------------------------------------------------------------------------------

Variants = list[tuple[str, Callable[[dict], Any]]]  # (hint, the kit's answer with that mistake)


def _call(fn: Callable, args: dict) -> Any:
    """The learner's answer on a copy of the inputs; a stub (NotImplementedError, None or ...) raises
    _NotDone; a generator is read into a list (it is as good as one)."""
    try:
        value = fn(**copy.deepcopy(args))
        value = list(value) if isinstance(value, Iterator) else value
    except NotImplementedError as exc:
        raise _NotDone from exc
    if value is None or value is Ellipsis:
        raise _NotDone
    return value


def _run(
    exercise: str,
    fn: Callable,
    fixed: Iterable[dict],
    strategy,
    judge: Callable[[Any, dict], tuple[bool, Any]],
    variants: Variants,
    same: Callable[[Any, Any], bool],
    strict: bool,
    max_examples: int,
    *,
    crash: Callable[[Exception, dict], str] | None = None,
    inspect: Callable[[Any, dict, Any], str] | None = None,
    last: Callable[[Any, dict, Any], str] | None = None,
    probes: Iterable[dict] = (),
) -> CheckResult:
    """Hand-picked cases first, then hypothesis; ``judge(answer, case) -> (ok, expected)``.

    On a failure the hint comes from ``crash(exc, case)`` (the learner's code raised), then
    ``inspect(answer, case, expected)`` (type and shape), then the closest variant, then
    ``last(answer, case, expected)``; each returns "" when it has nothing to say."""
    hypothesis = require("hypothesis")
    from hypothesis import HealthCheck, Phase, settings

    fixed = list(fixed)
    failure: dict[str, Any] = {}
    count = 0

    def check(case: dict) -> None:
        nonlocal count
        count += 1
        try:
            answer = _call(fn, case)
        except _NotDone:
            raise
        except Exception as exc:  # the learner's code crashed on this case: report it as a failure
            failure.clear()
            failure.update(case=case, answer=f"{type(exc).__name__}: {exc}", expected=judge(None, case)[1], error=exc)
            raise AssertionError from exc
        ok, expected = judge(answer, case)
        if not ok:
            failure.clear()
            failure.update(case=case, answer=answer, expected=expected)
            raise AssertionError

    try:
        for case in fixed:
            check(case)
        run = settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                       phases=[Phase.explicit, Phase.generate, Phase.shrink],
                       suppress_health_check=list(HealthCheck))(hypothesis.given(strategy)(check))  # fmt: skip
        if max_examples:
            run()
    except _NotDone:
        result = CheckResult(exercise, "not done", message="The function is still a stub (it raises NotImplementedError "
                             "or returns nothing): write its body, then run this cell again.")  # fmt: skip
        return _finish(result, strict)
    except Exception:  # AssertionError, or hypothesis's own wrapper of it
        if not failure:
            raise
    if not failure:
        return _finish(CheckResult(exercise, "passed", count, "Your function agrees with the kit's on every case."), strict)
    case, answer, expected = failure["case"], failure["answer"], failure["expected"]
    if "error" in failure:
        hint = (crash(failure["error"], case) if crash else "") or _crash_hint(failure["error"])
    else:
        hint = ((inspect(answer, case, expected) if inspect else "")
                or _closest_variant(fn, case, answer, expected, variants, same, fixed + list(probes))
                or (last(answer, case, expected) if last else ""))  # fmt: skip
    result = CheckResult(exercise, "failed", count, "Your function disagrees with the kit's on this case (the "
                         "smallest one found):", hint or "Compare your code with the definition in the text above "
                         "the exercise, step by step, on this case.",
                         {**case, "your answer": answer, "expected": expected})  # fmt: skip
    return _finish(result, strict)


def _closest_variant(fn, case, answer, expected, variants: Variants, same, probes: list[dict]) -> str:
    """The hint of the variant that gives the learner's answer on this case; when several do (a small
    case can hide a difference), the one that agrees with the learner on most probe cases."""
    candidates = []
    for text, variant in variants:
        try:
            guess = variant(case)
        except Exception:
            continue
        if same(answer, guess) and not same(guess, expected):
            candidates.append((text, variant))
    if len(candidates) < 2:
        return candidates[0][0] if candidates else ""
    theirs = []
    for probe in probes:
        try:
            theirs.append((probe, _call(fn, probe)))
        except Exception:  # a crash or a stub on a probe says nothing about which variant it is
            continue

    def agreement(variant) -> int:
        hits = 0
        for probe, their in theirs:
            try:
                hits += bool(same(their, variant(probe)))
            except Exception:
                pass
        return hits

    return max(candidates, key=lambda tv: agreement(tv[1]))[0]  # ties: the first listed


def _crash_hint(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return ("Your code divided by zero. Which case has nothing to divide by (no relevant passage, no room to "
                "improve, position 1 with a discount of log2(1))? The definition says what to return there.")
    return f"Your code raised {type(exc).__name__}; run it on this case yourself to see where."


def _finish(result: CheckResult, strict: bool) -> CheckResult:
    if strict and not result.passed:
        raise AssertionError(str(result))
    return result


# --- comparing answers --------------------------------------------------------------------------


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def _number(value: Any) -> float | None:
    """One number as a float; None for anything else (a bool, text, a list, a tensor of shape (1,))."""
    if _is_bool(value) or isinstance(value, (str, bytes)) or tuple(getattr(value, "shape", ())) != ():
        return None
    if hasattr(value, "detach"):
        value = value.detach()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    a, b = _number(a), _number(b)
    if a is None or b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def _close_seq(a: Any, b: Any, tol: float = 1e-5) -> bool:
    try:
        xs, ys = _flat(a), _flat(b)
    except (TypeError, ValueError):
        return False
    return len(xs) == len(ys) and all(_close(x, y, tol) for x, y in zip(xs, ys, strict=True))


def _flat(value: Any) -> list:
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _size(value: Any) -> int | None:
    """How many numbers a list, tuple, tensor or array holds; None for anything else."""
    if isinstance(value, (list, tuple)):
        return len(value)
    if hasattr(value, "numel"):
        return int(value.numel())
    size = getattr(value, "size", None)
    return size if isinstance(size, int) and hasattr(value, "shape") else None


def _describe(value: Any, items: str = "") -> str:
    """'a list of 3 numbers', 'a tensor of shape (4, 6)', 'a dict of 2': what the learner returned, in words."""
    name = type(value).__name__
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {name} of {len(value)}" + (f" {items}" if isinstance(value, (list, tuple)) and items else "")
    if hasattr(value, "shape"):
        kind = "tensor" if hasattr(value, "detach") else "array" if name == "ndarray" else name
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} of shape {tuple(value.shape)}"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _scalar_hint(answer: Any, what: str, detail: str = "") -> str:
    """The type or shape mistake of an answer that should be one number; "" when it is one."""
    if _is_bool(answer):
        return f"You returned {answer}, a truth value; {what} is a number: return the value itself, not a comparison."
    if isinstance(answer, (str, bytes)):
        return f"You returned text ({answer!r:.24}); return the number itself (a float), not a formatted string."
    if _number(answer) is not None:
        return ""
    size = _size(answer)
    if size == 1:
        held = f"a {type(answer).__name__}" if isinstance(answer, (list, tuple)) else _describe(answer)
        return f"You returned {held} holding one number; return the number itself (a float)."
    if size:
        return f"You returned {_describe(answer, 'numbers')}; {what} is one number{detail}."
    return f"You returned {_describe(answer)}; {what} is one number (a float)."


# --- nDCG@10 ------------------------------------------------------------------------------------

_DISCOUNT = ("Position 1 is discounted by log2(2) = 1, position i by log2(i + 1): check how your index starts "
             "(enumerate counts from 0, so its i is position i + 1).")  # fmt: skip
_LOG2_ZERO = ("math.log2(0) is undefined: positions count from 1, so enumerate's 0-based index i is position i + 1, "
              "discounted by log2(i + 2).")  # fmt: skip


def _log2_discount(i: int) -> float:
    return math.log2(i + 2)


def _dcg(gains, k, discount=_log2_discount):
    """DCG of the first k gains; ``discount(i)`` for the 0-based index i (the kit: log2(i + 2))."""
    return sum(g / discount(i) for i, g in enumerate(list(gains)[:k]))


def _ndcg_variant(ranked, judgments, k, *, ideal_from_ranked=False, gain=lambda g: g, depth=lambda k: k,
                  ideal_depth=lambda k: k, discount=_log2_discount, normalise=True):
    """nDCG@k with one of the common mistakes switched on (for the hints); ``depth(k)``: how many
    positions of the ranking are summed, ``ideal_depth(k)`` of the ideal."""
    grades = [max(judgments.get(d, 0), 0) for d in ranked]
    pool = grades if ideal_from_ranked else [max(g, 0) for g in judgments.values()]
    ideal = _dcg(sorted((gain(g) for g in pool), reverse=True), ideal_depth(k), discount)
    got = _dcg([gain(g) for g in grades], depth(k), discount)
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
        return _close(answer, expected), expected

    def crash(exc, case):
        if isinstance(exc, KeyError) and exc.args and exc.args[0] in case["ranked_docids"]:
            return (f"{exc} is in the ranking but not in `judgments`: nobody judged it, so it counts as grade 0. "
                    "Look grades up with judgments.get(docid, 0).")  # fmt: skip
        if isinstance(exc, ValueError) and "math domain" in str(exc):
            return _LOG2_ZERO
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
        return _scalar_hint(answer, "nDCG@k", ": sum the discounted gains of the first k passages, then divide by "
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
        (_DISCOUNT, lambda c: _ndcg_variant(*args(c), discount=lambda i: math.log2(i + 3))),
        ("That is the DCG; nDCG divides it by the ideal DCG, so that the best possible ranking scores 1.",
         lambda c: _ndcg_variant(*args(c), normalise=False)),
    ]  # fmt: skip
    return _run("nDCG@k", fn, fixed, strategy, judge, variants, _close, strict, max_examples, crash=crash,
                inspect=inspect, probes=probes)


# --- the normalised rank reward -----------------------------------------------------------------


def _normalised(s_new: float, s_init: float, s_best: float) -> float:
    room = s_best - s_init
    return (s_new - s_init) / room if room > 1e-12 else 0.0


def _reward_variant(order, grades, ideal_grades, *, k=10, discount=_log2_discount, combine=_normalised):
    """The rank reward with one of the common mistakes switched on: ``combine(S_new, S_init, S_best)``."""
    ideal = _dcg(sorted(ideal_grades, reverse=True), k, discount)

    def s(ordered):
        return _dcg(ordered, k, discount) / ideal if ideal > 0 else 0.0

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
        return _close(answer, expected), expected

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
            return _LOG2_ZERO
        return ""

    def inspect(answer, case, expected):
        if not _is_bool(answer) and _size(answer) == 3 != len(case["grades"]):
            return ("You returned three numbers, perhaps (S_new, S_init, S_best): the reward is one number made of "
                    "them, (S_new - S_init) / (S_best - S_init).")  # fmt: skip
        if not _is_bool(answer) and _size(answer) == len(case["grades"]) > 1:
            return (f"You returned {_describe(answer, 'numbers')}, one per passage; the reward is one number for the "
                    "whole ordering.")  # fmt: skip
        return _scalar_hint(answer, "the reward", ": (S_new - S_init) / (S_best - S_init)")

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
        (_DISCOUNT, lambda c: _reward_variant(**c, discount=lambda i: math.log2(i + 3))),
    ]  # fmt: skip
    return _run("normalised rank reward", fn, fixed, sets(), judge, variants, _close, strict, max_examples,
                crash=crash, inspect=inspect, probes=probes)


# --- sliding windows ----------------------------------------------------------------------------


def _windows_variant(k, window, step, *, top_down=False, rankgpt=False, inclusive=False, one_more=False):
    if k <= 0:
        return []
    if k <= window:
        out = [(0, k)]
    elif rankgpt:  # RankGPT's loop: stops when the window start would pass 0, skipping a short top window
        out, end = [], k
        while end - window >= 0:
            out.append((end - window, end))
            end -= step
    else:
        out, end = [], k
        while True:
            start = max(end - window, 0)
            out.append((start, end))
            if start == 0 and not (one_more and end - step > 0):  # one_more: `while end > 0` keeps going
                break
            end -= step
    out = [(s, e - 1) for s, e in out] if inclusive else out
    return out[::-1] if top_down else out


def _index(value: Any) -> int:
    """An int that can index a list (int, numpy's ints); a float or anything else raises TypeError."""
    if _is_bool(value):
        raise TypeError("a bool is not a position")
    return operator.index(value)


def _pairs(value: Any) -> list[tuple[int, int]]:
    """The windows as (start, end) int pairs; TypeError when they are not that."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(type(value).__name__)
    pairs = []
    for pair in value:
        if isinstance(pair, (range, slice, str, bytes, dict)) or len(pair) != 2:
            raise TypeError("not a pair")
        pairs.append((_index(pair[0]), _index(pair[1])))
    return pairs


def check_window_positions(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(k, window, step)``: the [start, end) windows that rerank the top k, bottom first, the last
    one always starting at 0 (``windows.window_positions``)."""
    from hypothesis import strategies as st

    from rearank_kit.rank.windows import window_positions

    fixed = [{"k": 100, "window": 20, "step": 10}, {"k": 7, "window": 20, "step": 10},
             {"k": 25, "window": 20, "step": 10}, {"k": 0, "window": 5, "step": 5},
             {"k": 50, "window": 20, "step": 15}]  # fmt: skip
    probes = [{"k": 45, "window": 10, "step": 10},
              {"k": 33, "window": 8, "step": 3}]  # fmt: skip
    strategy = st.integers(2, 25).flatmap(
        lambda w: st.builds(lambda k, s: {"k": k, "window": w, "step": s}, st.integers(0, 120), st.integers(1, w)))

    def same(a, b):
        try:
            return _pairs(a) == _pairs(b)
        except (TypeError, ValueError):
            return False

    def judge(answer, case):
        expected = window_positions(**case)
        return same(answer, expected), expected

    def crash(exc, case):
        if isinstance(exc, TypeError) and "float" in str(exc):
            return ("A float ended up where Python needs an int (range() or a slice): k / step is a float even when "
                    "it divides evenly; divide with // instead.")  # fmt: skip
        return ""

    def inspect(answer, case, expected):
        if not isinstance(answer, (list, tuple)):
            return f"You returned {_describe(answer)}; return a list of (start, end) pairs, one per window, bottom first."
        items = list(answer)
        if items and all(_number(x) is not None for x in items):
            if len(items) == len(expected):
                return ("You returned one number per window (their starts?); each window is a pair (start, end), "
                        "e.g. (80, 100) for the bottom window of the top 100.")  # fmt: skip
            return ("You returned a flat list of numbers; return one (start, end) pair per window: "
                    "[(80, 100), (70, 90), ...].")  # fmt: skip
        shaped = [x for x in items if isinstance(x, (range, slice))]
        if shaped:
            name = type(shaped[0]).__name__
            return (f"Each window of yours is a {name}(start, end); return the pair (start, end) itself, a tuple "
                    "(the kit slices ranking[start:end] with it).")  # fmt: skip
        for item in items:
            if isinstance(item, (str, bytes, dict)) or not hasattr(item, "__len__") or len(item) != 2:
                return f"Each window is a pair (start, end); one of yours is {_show(item)}."
        for item in items:
            for bound in item:
                try:
                    _index(bound)
                except TypeError:
                    return (f"One of your window bounds is {bound!r}, not an int; bounds index a list, so they must "
                            "be ints: use // rather than /, and 0 rather than 0.0.")  # fmt: skip
        return ""

    def last(answer, case, expected):
        if not expected:
            return "With k = 0 there is nothing to rerank: return an empty list."
        if len(answer) != len(expected):
            n, m = len(answer), len(expected)
            return (f"You returned {n} window{'s' * (n != 1)} where the kit runs {m}: check where your loop starts "
                    "and stops (the last window starts at 0, and nothing comes after it).")  # fmt: skip
        return ""

    def ref(c):
        return window_positions(**c)

    variants = [
        ("Windows run from the *bottom* of the list up (the last window is the top one), so a good passage found "
         "low can climb to the top in one pass.", lambda c: _windows_variant(**c, top_down=True)),
        ("When k is not a multiple of the step, RankGPT's loop never gives the top passages a window of their own; "
         "the kit's last window always starts at 0.", lambda c: _windows_variant(**c, rankgpt=True)),
        ("Windows are [start, end) with `end` excluded, as Python slices: (80, 100) covers positions 80-99.",
         lambda c: _windows_variant(**c, inclusive=True)),
        ("Positions count from 0, as Python's indices: the top window starts at 0, not at 1.",
         lambda c: [(s + 1, e + 1) for s, e in ref(c)]),
        ("Positions count from 0, as Python's indices: the top window starts at 0, not at 1.",
         lambda c: [(s + 1, e) for s, e in ref(c)]),
        ("One window too many: once a window starts at 0 the top has been ranked; stop there.",
         lambda c: _windows_variant(**c, one_more=True)),
        ("The top window is missing: the last window must start at 0 (range(start, stop, step) stops before `stop`).",
         lambda c: ref(c)[:-1] if len(ref(c)) > 1 else ref(c)),
        ("`step` is how far each window moves up ((80, 100), then (70, 90) for a step of 10), not the overlap of "
         "two windows.", lambda c: window_positions(c["k"], c["window"], c["window"] - c["step"])),
    ]  # fmt: skip
    return _run("sliding-window positions", fn, fixed, strategy, judge, variants, same, strict, max_examples,
                crash=crash, inspect=inspect, last=last, probes=probes)


# --- group advantages ---------------------------------------------------------------------------


def check_advantages(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(rewards, num_generations)``: (r - group mean) / (group std + 1e-4) for a flat tensor
    of rewards, groups of ``num_generations`` in a row; std with Bessel's correction, as TRL's.
    The answer is a torch tensor of the shape of ``rewards``."""
    from hypothesis import strategies as st

    torch = require("torch")
    from rearank_kit.train.grpo import group_advantages

    def case(rewards, g):
        return {"rewards": torch.tensor(rewards, dtype=torch.float64), "num_generations": g}

    # The first case has two groups of 3: a grouping that takes every n-th reward, or groups of the
    # wrong length, fails at once (one group alone would hide both).
    fixed = [case([1.0, 0.0, 0.5, 0.2, 0.2, 1.0], 3), case([1.0, 0.0, 0.5, 0.5], 4), case([0.2, 0.2, 1.0, -1.0], 2),
             case([0.2, 0.2, 0.2, 0.2], 4)]  # fmt: skip
    values = st.sampled_from([-2.0, -1.0, -0.3, 0.0, 0.2, 0.2, 0.5, 0.8, 1.0])
    strategy = st.integers(2, 6).flatmap(lambda g: st.integers(1, 4).flatmap(
        lambda n: st.lists(values, min_size=g * n, max_size=g * n).map(lambda r: case(r, g))))  # fmt: skip

    def judge(answer, c):
        expected = group_advantages(c["rewards"], c["num_generations"])
        ok = torch.is_tensor(answer) and answer.shape == c["rewards"].shape and _close_seq(answer, expected)
        return ok, expected

    def crash(exc, c):
        if isinstance(exc, RuntimeError) and "invalid for input of size" in str(exc):
            return ("The reshape does not fit: rewards holds (number of prompts) x num_generations values, so "
                    "rewards.view(-1, num_generations) makes one row per prompt.")  # fmt: skip
        return ""

    def inspect(answer, c, expected):
        rewards, g = c["rewards"], c["num_generations"]
        want = tuple(rewards.shape)
        if not torch.is_tensor(answer):
            if _number(answer) is not None:
                return (f"You returned one number; each completion gets its own advantage: a tensor of the shape "
                        f"of rewards, {want}.")  # fmt: skip
            if isinstance(answer, tuple) and 1 < len(answer) <= 3 and all(torch.is_tensor(a) and a.dim() for a in answer):
                return f"You returned {len(answer)} tensors (a tuple); return only the advantages, one tensor."
            how = ("torch.from_numpy(...) it" if type(answer).__name__ == "ndarray"
                   else "torch.stack / torch.tensor your list")  # fmt: skip
            return (f"You returned {_describe(answer, 'numbers')}; return a torch tensor of the shape of rewards, "
                    f"{want}: work on the tensor itself (view, mean, std), or {how}.")  # fmt: skip
        shape = tuple(answer.shape)
        if shape == want:
            return ""
        if answer.numel() == rewards.numel():
            return (f"Your advantages have shape {shape}, rewards {want}: flatten them back (.reshape(-1)) after "
                    "normalising each group.")  # fmt: skip
        if answer.numel() == rewards.numel() // g:
            return (f"You returned one number per group (shape {shape}); each completion gets its own advantage, "
                    "(r - group mean) / (group std + 1e-4).")  # fmt: skip
        return f"Your tensor has shape {shape}; the advantages have the shape of rewards, {want}: one per completion."

    def grouped(c):
        return c["rewards"].view(-1, c["num_generations"])

    def centred(c):
        return (grouped(c) - grouped(c).mean(1, keepdim=True)).reshape(-1)

    def group_std(c, **kw):
        return grouped(c).std(1, keepdim=True, **kw).expand_as(grouped(c)).reshape(-1)

    def columns(c):  # groups taken down the columns of view(num_generations, -1): every n-th reward
        x = c["rewards"].view(c["num_generations"], -1)
        return ((x - x.mean(0, keepdim=True)) / (x.std(0, keepdim=True) + 1e-4)).reshape(-1)

    def rows_of_wrong_length(c):
        x = c["rewards"].view(c["num_generations"], -1)
        return ((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-4)).reshape(-1)

    def mean_over_n_minus_1(c):
        x, n = grouped(c), c["num_generations"]
        mean = x.sum(1, keepdim=True) / (n - 1)
        std = ((x - mean) ** 2).sum(1, keepdim=True).div(n - 1).sqrt()
        return ((x - mean) / (std + 1e-4)).reshape(-1)

    variants = [
        ("Use the sample standard deviation (Bessel's correction, ddof=1), as TRL does: torch's .std() does it by "
         "default, numpy's np.std needs ddof=1.",
         lambda c: centred(c) / (group_std(c, unbiased=False) + 1e-4)),
        ("Normalise within each group of num_generations completions of one prompt, not over the whole batch.",
         lambda c: (c["rewards"] - c["rewards"].mean()) / (c["rewards"].std() + 1e-4)),
        ("Subtract the group's mean, but scale by the group's own standard deviation, not the batch's.",
         lambda c: centred(c) / (c["rewards"].std() + 1e-4)),
        ("Add 1e-4 to the standard deviation: a group whose rewards are all equal must get advantages 0, not NaN.",
         lambda c: centred(c) / group_std(c)),
        ("A prompt's completions are next to each other: rewards.view(-1, num_generations) gives one row per "
         "prompt; your groups take every n-th reward, mixing prompts.", columns),
        ("A group is num_generations rewards: view(-1, num_generations) has one row per prompt, while "
         "view(num_generations, -1) makes rows of the wrong length.", rows_of_wrong_length),
        ("The group mean divides by num_generations; the n - 1 of Bessel's correction belongs only in the standard "
         "deviation.", mean_over_n_minus_1),
        ("Add 1e-4 to the standard deviation itself, not to the variance under the square root.",
         lambda c: centred(c) / (grouped(c).var(1, keepdim=True) + 1e-4).sqrt().expand_as(grouped(c)).reshape(-1)),
    ]  # fmt: skip
    return _run("group advantages", fn, fixed, strategy, judge, variants, _close_seq, strict, max_examples,
                crash=crash, inspect=inspect)


# --- the clipped GRPO loss ----------------------------------------------------------------------


def check_grpo_loss(fn: Callable, *, strict: bool = False, max_examples: int = 60) -> CheckResult:
    """``fn(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0)``: the clipped
    GRPO loss with the k3 KL term, each completion averaged over its own tokens, then the mean
    over completions (TRL's ``loss_type="grpo"``), as a 0-d tensor; the gradient must match as well."""
    from hypothesis import strategies as st

    torch = require("torch")
    from rearank_kit.train.grpo import grpo_loss

    def case(seed, b, t, spread, beta):
        g = torch.Generator().manual_seed(seed)
        logps = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
        mask = (torch.rand(b, t, generator=g) > 0.25).to(torch.float64)
        mask[:, 0] = 1.0
        return {"logps": logps, "old_logps": logps + spread * torch.randn(b, t, generator=g, dtype=torch.float64),
                "ref_logps": logps + 0.3 * torch.randn(b, t, generator=g, dtype=torch.float64),
                "advantages": torch.randn(b, generator=g, dtype=torch.float64), "mask": mask, "epsilon": 0.2,
                "beta": beta}  # fmt: skip

    fixed = [case(0, 4, 6, 0.0, 0.0), case(1, 4, 6, 0.5, 0.0), case(2, 3, 5, 0.5, 0.04), case(3, 1, 1, 0.5, 0.0)]
    strategy = st.builds(case, st.integers(0, 10**6), st.integers(1, 6), st.integers(1, 8),
                         st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.sampled_from([0.0, 0.0, 0.04]))  # fmt: skip

    def ours(c, **over):
        kw = {"ref_logps": c["ref_logps"], "beta": c["beta"], "epsilon": c["epsilon"], "loss_type": "grpo", **over}
        return grpo_loss(c["logps"], c["old_logps"], c["advantages"], c["mask"], **kw)[0]

    def with_grad(loss_fn, c):
        """(logps that require a gradient, the loss computed from them)."""
        x = c["logps"].clone().requires_grad_(True)
        return x, loss_fn({**copy.deepcopy(c), "logps": x})

    def grad_of(loss_fn, c):
        try:
            x, loss = with_grad(loss_fn, c)
            if not torch.is_tensor(loss) or loss.dim() or not loss.requires_grad:
                return None
            return torch.autograd.grad(loss, x)[0]
        except Exception:  # e.g. an in-place change of logps, or .numpy(): the inspection below names it
            return None

    def judge(answer, c):
        expected = float(ours(c))
        if not (torch.is_tensor(answer) and answer.dim() == 0 and _close(answer, expected, 1e-6)):
            return False, expected
        theirs = grad_of(lambda cc: fn(**cc), c)
        return theirs is not None and bool(torch.allclose(theirs, grad_of(ours, c), atol=1e-8)), expected

    def crash(exc, c):
        if isinstance(exc, RuntimeError) and "must match the size of tensor" in str(exc):
            return ("`advantages` has one value per completion, shape (B,); give it a token axis to multiply the "
                    "(B, T) ratios: advantages.unsqueeze(1).")  # fmt: skip
        return ""

    def inspect(answer, c, expected):
        b, t = c["logps"].shape
        if not torch.is_tensor(answer):
            if isinstance(answer, (tuple, list)):
                return f"You returned {_describe(answer, 'things')}; return the loss tensor alone."
            if type(answer).__name__ == "ndarray":
                return "Your loss is a numpy array: .numpy() cuts the gradient's path; keep it a torch tensor."
            if _number(answer) is not None:
                return (f"Your loss is a plain number (a {type(answer).__name__}), so no gradient can flow back "
                        "to logps: drop the .item() or float(...) and return the tensor itself.")  # fmt: skip
            return f"You returned {_describe(answer)}; return the loss as a torch tensor."
        shape = tuple(answer.shape)
        if shape == (b, t):
            return (f"Your loss has shape {shape}, one per token: average each completion over its real tokens "
                    "(mask), then take the mean over completions.")  # fmt: skip
        if b > 1 and shape in ((b,), (b, 1)):
            return f"Your loss has shape {shape}, one per completion: the loss is their mean, one number."
        if answer.dim():
            return (f"Your loss has shape {shape}; return one number, a 0-d tensor (.mean() without keepdim, or "
                    ".squeeze()): backward() needs a scalar.")  # fmt: skip
        if not _close(answer, expected, 1e-6):
            return ""  # a mistake in the value: the variants name it
        try:
            _, loss = with_grad(lambda cc: fn(**cc), c)
        except Exception as exc:
            if "in-place" in str(exc):
                return ("Your code changes an input in place (x *= mask, x[...] = ...), which autograd cannot follow "
                        "through logps: write x = x * mask instead.")  # fmt: skip
            if "numpy" in str(exc):
                return "Your code calls .numpy(), which cuts the gradient's path back to logps: keep it all in torch."
            return f"With gradients switched on (logps.requires_grad), your code raised {type(exc).__name__}."
        if not torch.is_tensor(loss) or not loss.requires_grad:
            return ("The value is right, but the loss is cut off from logps (a .detach(), .item(), torch.tensor(...) "
                    "or numpy step on the way), so no gradient flows back: use torch operations throughout.")  # fmt: skip
        return ("The value is right but the gradient is not: part of your loss does not depend on logps the way the "
                "formula does (a .detach(), or old_logps where logps belongs?).")  # fmt: skip

    def manual(c, *, clip=True, use_max=False, token_mean=False, use_mask=True, kl=None, low=None, high=None,
               log_ratio=False, per_length=False):
        ratio = (c["logps"] - c["old_logps"]) if log_ratio else torch.exp(c["logps"] - c["old_logps"])
        adv = c["advantages"].reshape(-1, 1)
        low = 1 - c["epsilon"] if low is None else low
        high = 1 + c["epsilon"] if high is None else high
        a, b = ratio * adv, (torch.clamp(ratio, low, high) if clip else ratio) * adv
        per = -(torch.max(a, b) if use_max else torch.min(a, b))
        if c["beta"]:
            d = c["ref_logps"] - c["logps"]
            per = per + c["beta"] * (kl(c) if kl else torch.exp(d) - d - 1)
        m = c["mask"] if use_mask else torch.ones_like(c["mask"])
        if token_mean:
            return (per * m).sum() / m.sum()
        count = torch.full_like(m.sum(-1), m.shape[-1]) if per_length else m.sum(-1)
        return ((per * m).sum(-1) / count).mean()

    def k3_without_minus_one(cc):
        d = cc["ref_logps"] - cc["logps"]
        return torch.exp(d) - d

    variants = [
        ("Clip the ratio to [1 - epsilon, 1 + epsilon] and take the *minimum* of the clipped and unclipped terms.",
         lambda c: manual(c, clip=False)),
        ("The objective takes the minimum of r*A and clip(r)*A; the loss is its negative (so -min, not -max).",
         lambda c: manual(c, use_max=True)),
        ("Average each completion over its own tokens first, then over completions (loss_type 'grpo'); a single "
         "token mean over the batch is 'bnpo'/'dapo'.", lambda c: manual(c, token_mean=True)),
        ("Padding tokens (mask 0) must count for nothing: multiply by the mask and divide by each completion's count.",
         lambda c: manual(c, use_mask=False)),
        ("Divide each completion's masked sum by its own number of real tokens, mask.sum(1), not by the padded "
         "length T.", lambda c: manual(c, per_length=True)),
        ("The KL term is the k3 estimator exp(ref - logp) - (ref - logp) - 1, added with +beta.",
         lambda c: manual(c, kl=lambda cc: cc["logps"] - cc["ref_logps"])),
        ("The k3 term is exp(d) - d - 1 with d = ref - logp: without the - 1, every token pays beta even where "
         "the two policies agree.", lambda c: manual(c, kl=k3_without_minus_one)),
        ("Clip the ratio around 1, to [1 - epsilon, 1 + epsilon], not to [-epsilon, epsilon].",
         lambda c: manual(c, low=-c["epsilon"], high=c["epsilon"])),
        ("The ratio is exp(logps - old_logps), a ratio of probabilities, not the difference of the "
         "log-probabilities.", lambda c: manual(c, log_ratio=True)),
    ]  # fmt: skip
    return _run("clipped GRPO loss", fn, fixed, strategy, judge, variants, lambda a, b: _close(a, b, 1e-6), strict,
                max_examples, crash=crash, inspect=inspect)


__all__ = ["CheckResult", "check_ndcg", "check_reward", "check_window_positions", "check_advantages",
           "check_grpo_loss"]  # fmt: skip
