"""The engine under every exercise checker: run the learner's function on hand-picked cases, then on
cases hypothesis generates; on the first disagreement, find the hint (the code raised, the answer has the
wrong type or shape, the answer equals a known mistake). ``__init__.py`` tells the whole story."""

from __future__ import annotations

import copy
import html
import math
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
        lines += [f"  {k} = {show(v)}" for k, v in self.example.items()]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(line for line in lines if line)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"passed": "#1a7f37", "failed": "#cf222e", "not done": "#9a6700"}[self.status]
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(show(v))}</code></td></tr>"
                       for k, v in self.example.items())  # fmt: skip
        return (f"<div style='border-left:4px solid {colour};padding:4px 10px'>"
                f"<b style='color:{colour}'>{html.escape(str(self).splitlines()[0])}</b>"
                f"<p>{html.escape(self.message)}</p>" + (f"<table>{rows}</table>" if rows else "")
                + (f"<p><b>hint:</b> {html.escape(self.hint)}</p>" if self.hint else "") + "</div>")  # fmt: skip


def show(value: Any) -> str:
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


class NotDone(Exception):
    pass


# --- the engine ---------------------------------------------------------------------------------

Variants = list[tuple[str, Callable[[dict], Any]]]  # (hint, the kit's answer with that mistake)


def call(fn: Callable, args: dict) -> Any:
    """The learner's answer on a copy of the inputs; a stub (NotImplementedError, None or ...) raises
    NotDone; a generator is read into a list (it is as good as one)."""
    try:
        value = fn(**copy.deepcopy(args))
        value = list(value) if isinstance(value, Iterator) else value
    except NotImplementedError as exc:
        raise NotDone from exc
    if value is None or value is Ellipsis:
        raise NotDone
    return value


def run_checks(
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
            answer = call(fn, case)
        except NotDone:
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
    except NotDone:
        result = CheckResult(exercise, "not done", message="The function is still a stub (it raises NotImplementedError "
                             "or returns nothing): write its body, then run this cell again.")  # fmt: skip
        return finish(result, strict)
    except Exception:  # AssertionError, or hypothesis's own wrapper of it
        if not failure:
            raise
    if not failure:
        return finish(CheckResult(exercise, "passed", count, "Your function agrees with the kit's on every case."), strict)
    case, answer, expected = failure["case"], failure["answer"], failure["expected"]
    if "error" in failure:
        hint = (crash(failure["error"], case) if crash else "") or crash_hint(failure["error"])
    else:
        hint = ((inspect(answer, case, expected) if inspect else "")
                or closest_variant(fn, case, answer, expected, variants, same, fixed + list(probes))
                or (last(answer, case, expected) if last else ""))  # fmt: skip
    result = CheckResult(exercise, "failed", count, "Your function disagrees with the kit's on this case (the "
                         "smallest one found):", hint or "Compare your code with the definition in the text above "
                         "the exercise, step by step, on this case.",
                         {**case, "your answer": answer, "expected": expected})  # fmt: skip
    return finish(result, strict)


def closest_variant(fn, case, answer, expected, variants: Variants, same, probes: list[dict]) -> str:
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
            theirs.append((probe, call(fn, probe)))
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


def crash_hint(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return ("Your code divided by zero. Which case has nothing to divide by (no relevant passage, no room to "
                "improve, position 1 with a discount of log2(1))? The definition says what to return there.")
    return f"Your code raised {type(exc).__name__}; run it on this case yourself to see where."


def finish(result: CheckResult, strict: bool) -> CheckResult:
    if strict and not result.passed:
        raise AssertionError(str(result))
    return result


# --- comparing answers --------------------------------------------------------------------------


def is_bool(value: Any) -> bool:
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def as_number(value: Any) -> float | None:
    """One number as a float; None for anything else (a bool, text, a list, a tensor of shape (1,))."""
    if is_bool(value) or isinstance(value, (str, bytes)) or tuple(getattr(value, "shape", ())) != ():
        return None
    if hasattr(value, "detach"):
        value = value.detach()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    a, b = as_number(a), as_number(b)
    if a is None or b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def close_seq(a: Any, b: Any, tol: float = 1e-5) -> bool:
    try:
        xs, ys = flatten(a), flatten(b)
    except (TypeError, ValueError):
        return False
    return len(xs) == len(ys) and all(close(x, y, tol) for x, y in zip(xs, ys, strict=True))


def flatten(value: Any) -> list:
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


def size_of(value: Any) -> int | None:
    """How many numbers a list, tuple, tensor or array holds; None for anything else."""
    if isinstance(value, (list, tuple)):
        return len(value)
    if hasattr(value, "numel"):
        return int(value.numel())
    size = getattr(value, "size", None)
    return size if isinstance(size, int) and hasattr(value, "shape") else None


def describe(value: Any, items: str = "") -> str:
    """'a list of 3 numbers', 'a tensor of shape (4, 6)', 'a dict of 2': what the learner returned, in words."""
    name = type(value).__name__
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {name} of {len(value)}" + (f" {items}" if isinstance(value, (list, tuple)) and items else "")
    if hasattr(value, "shape"):
        kind = "tensor" if hasattr(value, "detach") else "array" if name == "ndarray" else name
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} of shape {tuple(value.shape)}"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def scalar_hint(answer: Any, what: str, detail: str = "") -> str:
    """The type or shape mistake of an answer that should be one number; "" when it is one."""
    if is_bool(answer):
        return f"You returned {answer}, a truth value; {what} is a number: return the value itself, not a comparison."
    if isinstance(answer, (str, bytes)):
        return f"You returned text ({answer!r:.24}); return the number itself (a float), not a formatted string."
    if as_number(answer) is not None:
        return ""
    size = size_of(answer)
    if size == 1:
        held = f"a {type(answer).__name__}" if isinstance(answer, (list, tuple)) else describe(answer)
        return f"You returned {held} holding one number; return the number itself (a float)."
    if size:
        return f"You returned {describe(answer, 'numbers')}; {what} is one number{detail}."
    return f"You returned {describe(answer)}; {what} is one number (a float)."
