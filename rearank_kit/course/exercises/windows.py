"""Exercise: sliding-window positions (notebook 00), checked against ``rank.windows.window_positions``.
The mistakes its hints name: top-down order, RankGPT's loop that skips the top, inclusive ends,
positions from 1, one window too many or the top one missing, the step read as the overlap."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from rearank_kit.course.exercises.checking import (
    MAX_EXAMPLES,
    CheckResult,
    as_number,
    describe,
    is_bool,
    run_checks,
    show,
)


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
    if is_bool(value):
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
            return f"You returned {describe(answer)}; return a list of (start, end) pairs, one per window, bottom first."
        items = list(answer)
        if items and all(as_number(x) is not None for x in items):
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
                return f"Each window is a pair (start, end); one of yours is {show(item)}."
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
    return run_checks("sliding-window positions", fn, fixed, strategy, judge, variants, same, strict, max_examples,
                      crash=crash, inspect=inspect, last=last, probes=probes)
