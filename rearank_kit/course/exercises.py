"""Checkers for the notebooks' implement-it-yourself exercises: the learner's function against the kit's.

Each ``check_*`` runs a learner's function on hand-picked edge cases, then on many generated
ones (hypothesis, derandomised, nothing written to disk), compares it with the kit's own
implementation, and returns a ``CheckResult`` that a notebook displays: *passed*, *not yet done*
(the stub still raises ``NotImplementedError`` or returns None), or *failed* with the smallest
failing case hypothesis found, what was expected, and a hint naming the likely mistake (each
common mistake is coded as a variant; when the learner's answer equals a variant's, its hint is
given). A failing or unfinished exercise never raises unless ``strict=True``: a notebook with
empty stubs still runs top to bottom in CI, and the solutions in ``notebooks/solutions/`` are
checked with ``strict=True`` by ``tests/test_exercises.py``.

| checker | the learner writes | the kit's reference |
| --- | --- | --- |
| ``check_ndcg`` | ``fn(ranked_docids, judgments, k=10) -> float`` | ``metrics.ndcg_at_k`` |
| ``check_reward`` | ``fn(order, grades, ideal_grades) -> float`` (normalised r_rank) | ``rewards.rank_value`` |
| ``check_window_positions`` | ``fn(k, window, step) -> [(start, end), ...]`` | ``windows.window_positions`` |
| ``check_advantages`` | ``fn(rewards, num_generations) -> tensor`` | ``grpo.group_advantages`` |
| ``check_grpo_loss`` | ``fn(logps, old_logps, ref_logps, advantages, mask, epsilon, beta) -> tensor`` | ``grpo.grpo_loss`` |
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable
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


def _call(fn: Callable, args: dict) -> Any:
    """The learner's answer; a stub (NotImplementedError, None or ...) raises _NotDone."""
    try:
        value = fn(**args)
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
    variants: dict[str, Callable[[dict], Any]],
    same: Callable[[Any, Any], bool],
    strict: bool,
    max_examples: int,
) -> CheckResult:
    """Hand-picked cases first, then hypothesis; ``judge(answer, case) -> (ok, expected)``."""
    hypothesis = require("hypothesis")
    from hypothesis import HealthCheck, Phase, settings

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
    hint = ""
    if "error" in failure:
        hint = _crash_hint(failure["error"])
    for text, variant in variants.items():
        try:
            guess = variant(case)
        except Exception:
            continue
        if not hint and same(answer, guess) and not same(guess, expected):
            hint = text
    result = CheckResult(exercise, "failed", count, "Your function disagrees with the kit's on this case (the "
                         "smallest one found):", hint or "Compare your code with the definition in the text above "
                         "the exercise, step by step, on this case.",
                         {**case, "your answer": answer, "expected": expected})  # fmt: skip
    return _finish(result, strict)


def _crash_hint(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return ("Your code divided by zero. Which case has nothing to divide by (no relevant passage, no room to "
                "improve, position 1 with a discount of log2(1))? The definition says what to return there.")
    return f"Your code raised {type(exc).__name__}; run it on this case yourself to see where."


def _finish(result: CheckResult, strict: bool) -> CheckResult:
    if strict and not result.passed:
        raise AssertionError(str(result))
    return result


def _close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    a = a.detach() if hasattr(a, "detach") else a
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def _close_seq(a: Any, b: Any, tol: float = 1e-5) -> bool:
    try:
        xs, ys = [float(x) for x in _flat(a)], [float(y) for y in _flat(b)]
    except (TypeError, ValueError):
        return False
    return len(xs) == len(ys) and all(_close(x, y, tol) for x, y in zip(xs, ys, strict=True))


def _flat(value: Any) -> list:
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --- nDCG@10 ------------------------------------------------------------------------------------


def _dcg(gains, k, discount=lambda i: math.log2(i + 2)):
    """DCG of the first k gains; ``discount(i)`` for the 0-based index i (the kit: log2(i + 2))."""
    return sum(g / discount(i) for i, g in enumerate(list(gains)[:k]))


def _ndcg_variant(ranked, judgments, k, *, ideal_from_ranked=False, gain=lambda g: g, cut=True, cut_ideal=True,
                  discount=lambda i: math.log2(i + 2)):
    """nDCG@k with one of the common mistakes switched on (for the hints)."""
    grades = [max(judgments.get(d, 0), 0) for d in ranked]
    pool = grades if ideal_from_ranked else [max(g, 0) for g in judgments.values()]
    ideal = _dcg(sorted((gain(g) for g in pool), reverse=True), k if cut_ideal else len(pool) + 1, discount)
    got = _dcg([gain(g) for g in grades], k if cut else len(grades) + 1, discount)
    return got / ideal if ideal > 0 else 0.0


def check_ndcg(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(ranked_docids, judgments, k=10)``: nDCG@k with linear gain, a log2(position + 1)
    discount and the ideal built from *all* judged passages (``metrics.ndcg_at_k``)."""
    from hypothesis import strategies as st

    from rearank_kit.core.metrics import ndcg_at_k

    fixed = [
        {"ranked_docids": ["a", "b", "c"], "judgments": {"a": 3, "b": 0, "c": 1}, "k": 10},
        {"ranked_docids": ["b", "c", "a"], "judgments": {"a": 3, "c": 1, "z": 2}, "k": 10},  # z judged, not retrieved
        {"ranked_docids": ["x", "y"], "judgments": {"x": 0}, "k": 10},  # nothing relevant
        {"ranked_docids": [f"d{i}" for i in range(12)], "judgments": {"d11": 3, "d0": 1}, "k": 10},  # beyond k
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

    def args(case):
        return case["ranked_docids"], case["judgments"], case["k"]

    variants = {
        "The ideal DCG comes from *all* judged passages of the query, also those the ranking does not contain "
        "(trec_eval's definition): sort every judged grade, highest first.":
            lambda c: _ndcg_variant(*args(c), ideal_from_ranked=True),
        "The kit (like trec_eval) uses the grade itself as the gain, not 2**grade - 1.":
            lambda c: _ndcg_variant(*args(c), gain=lambda g: 2**g - 1),
        "Only the first k positions count: cut the ranking at k before summing.":
            lambda c: _ndcg_variant(*args(c), cut=False),
        "The ideal DCG is cut at k too: the best k grades, not all of them.":
            lambda c: _ndcg_variant(*args(c), cut_ideal=False),
        "Position 1 is discounted by log2(2) = 1, position i by log2(i + 1): check how your index starts.":
            lambda c: _ndcg_variant(*args(c), discount=lambda i: math.log2(i + 3)),
    }  # fmt: skip
    return _run("nDCG@k", fn, fixed, strategy, judge, variants, _close, strict, max_examples)


# --- the normalised rank reward -----------------------------------------------------------------


def check_reward(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(order, grades, ideal_grades)``: REARANK's normalised rank reward
    (S_new - S_init) / (S_best - S_init), 0 when S_best == S_init, not clipped."""
    from hypothesis import strategies as st

    from rearank_kit.train.rewards import rank_scores, rank_value

    def reference(order, grades, ideal_grades, mode="normalized"):
        return rank_value(*rank_scores(order, grades, ideal_grades), mode=mode)

    fixed = [
        {"order": [1, 4, 3, 0, 2], "grades": [0, 3, 0, 1, 2], "ideal_grades": [3, 2, 2, 1, 1]},  # the best order: 1
        {"order": [0, 1, 2], "grades": [2, 1, 0], "ideal_grades": [2, 1]},  # already best: no room, 0
        {"order": [2, 1, 0], "grades": [0, 1, 3], "ideal_grades": [3, 2, 1]},
        {"order": [0, 2, 1], "grades": [0, 3, 0], "ideal_grades": [3, 3]},
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

    def inverse(order):
        out = [0] * len(order)
        for pos, idx in enumerate(order):
            out[idx] = pos
        return out

    variants = {
        "That is the raw nDCG of the new order (S_new); the reward is the share of the possible improvement: "
        "(S_new - S_init) / (S_best - S_init).": lambda c: reference(**c, mode="raw"),
        "That is the difference S_new - S_init; divide it by the room to improve, S_best - S_init.":
            lambda c: reference(**c, mode="difference"),
        "The reward is not clipped at 0: a ranking worse than the initial order earns a negative reward.":
            lambda c: max(reference(**c), 0.0),
        "`order` lists passage indices best first (order[0] is the passage ranked first), not each passage's rank.":
            lambda c: reference(inverse(c["order"]), c["grades"], c["ideal_grades"]),
        "nDCG@10 counts only the first 10 positions, also for sets of more than 10 passages.":
            lambda c: rank_value(*rank_scores(c["order"], c["grades"], c["ideal_grades"], k=100)),
    }  # fmt: skip
    return _run("normalised rank reward", fn, fixed, sets(), judge, variants, _close, strict, max_examples)


# --- sliding windows ----------------------------------------------------------------------------


def _windows_variant(k, window, step, *, top_down=False, rankgpt=False, inclusive=False):
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
            if start == 0:
                break
            end -= step
    out = [(s, e - 1) for s, e in out] if inclusive else out
    return out[::-1] if top_down else out


def check_window_positions(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(k, window, step)``: the [start, end) windows that rerank the top k, bottom first, the last
    one always starting at 0 (``windows.window_positions``)."""
    from hypothesis import strategies as st

    from rearank_kit.rank.windows import window_positions

    fixed = [{"k": 100, "window": 20, "step": 10}, {"k": 7, "window": 20, "step": 10},
             {"k": 25, "window": 20, "step": 10}, {"k": 0, "window": 5, "step": 5}]  # fmt: skip
    strategy = st.integers(2, 25).flatmap(
        lambda w: st.builds(lambda k, s: {"k": k, "window": w, "step": s}, st.integers(0, 120), st.integers(1, w)))

    def as_pairs(value):
        return [tuple(int(x) for x in pair) for pair in value]

    def same(a, b):
        try:
            return as_pairs(a) == as_pairs(b)
        except (TypeError, ValueError):
            return False

    def judge(answer, case):
        expected = window_positions(**case)
        return same(answer, expected), expected

    variants = {
        "Windows run from the *bottom* of the list up (the last window is the top one), so a good passage found "
        "low can climb to the top in one pass.": lambda c: _windows_variant(**c, top_down=True),
        "When k is not a multiple of the step, RankGPT's loop never gives the top passages a window of their own; "
        "the kit's last window always starts at 0.": lambda c: _windows_variant(**c, rankgpt=True),
        "Windows are [start, end) with `end` excluded, as Python slices: (80, 100) covers positions 80-99.":
            lambda c: _windows_variant(**c, inclusive=True),
    }  # fmt: skip
    return _run("sliding-window positions", fn, fixed, strategy, judge, variants, same, strict, max_examples)


# --- group advantages ---------------------------------------------------------------------------


def check_advantages(fn: Callable, *, strict: bool = False, max_examples: int = MAX_EXAMPLES) -> CheckResult:
    """``fn(rewards, num_generations)``: (r - group mean) / (group std + 1e-4) for a flat tensor
    of rewards, groups of ``num_generations`` in a row; std with Bessel's correction, as TRL's."""
    from hypothesis import strategies as st

    torch = require("torch")
    from rearank_kit.train.grpo import group_advantages

    def case(rewards, g):
        return {"rewards": torch.tensor(rewards, dtype=torch.float64), "num_generations": g}

    fixed = [case([1.0, 0.0, 0.5, 0.5], 4), case([0.2, 0.2, 1.0, -1.0], 2), case([0.2, 0.2, 0.2, 0.2], 4)]
    values = st.sampled_from([-2.0, -1.0, -0.3, 0.0, 0.2, 0.2, 0.5, 0.8, 1.0])
    strategy = st.integers(2, 6).flatmap(lambda g: st.integers(1, 4).flatmap(
        lambda n: st.lists(values, min_size=g * n, max_size=g * n).map(lambda r: case(r, g))))  # fmt: skip

    def judge(answer, c):
        expected = group_advantages(c["rewards"], c["num_generations"])
        return _close_seq(answer, expected), expected

    def grouped(c):
        return c["rewards"].view(-1, c["num_generations"])

    def centred(c):
        return (grouped(c) - grouped(c).mean(1, keepdim=True)).reshape(-1)

    variants = {
        "Use the sample standard deviation (Bessel's correction, ddof=1), as TRL does: torch's .std() does it by "
        "default, numpy's np.std needs ddof=1.":
            lambda c: centred(c) / (grouped(c).std(1, unbiased=False, keepdim=True).expand_as(grouped(c)).reshape(-1) + 1e-4),
        "Normalise within each group of num_generations completions of one prompt, not over the whole batch.":
            lambda c: (c["rewards"] - c["rewards"].mean()) / (c["rewards"].std() + 1e-4),
        "Subtract the group's mean, but scale by the group's own standard deviation, not the batch's.":
            lambda c: centred(c) / (c["rewards"].std() + 1e-4),
        "Add 1e-4 to the standard deviation: a group whose rewards are all equal must get advantages 0, not NaN.":
            lambda c: centred(c) / grouped(c).std(1, keepdim=True).expand_as(grouped(c)).reshape(-1),
    }  # fmt: skip
    return _run("group advantages", fn, fixed, strategy, judge, variants, _close_seq, strict, max_examples)


# --- the clipped GRPO loss ----------------------------------------------------------------------


def check_grpo_loss(fn: Callable, *, strict: bool = False, max_examples: int = 60) -> CheckResult:
    """``fn(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0)``: the clipped
    GRPO loss with the k3 KL term, each completion averaged over its own tokens, then the mean
    over completions (TRL's ``loss_type="grpo"``); the gradient must match as well."""
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

    def grad_of(loss_fn, c):
        x = c["logps"].clone().requires_grad_(True)
        loss = loss_fn({**c, "logps": x})
        if not torch.is_tensor(loss) or not loss.requires_grad:
            return None
        return torch.autograd.grad(loss, x)[0]

    def judge(answer, c):
        expected = float(ours(c))
        if not _close(answer, expected, 1e-6):
            return False, expected
        theirs = grad_of(lambda cc: fn(**cc), c)
        if theirs is None:
            return False, f"{expected:.6g}, as a torch tensor whose gradient flows back to logps (no .item(), no float)"
        return torch.allclose(theirs, grad_of(ours, c), atol=1e-8), expected

    def manual(c, *, clip=True, use_max=False, token_mean=False, use_mask=True, kl=None):
        ratio = torch.exp(c["logps"] - c["old_logps"])
        adv = c["advantages"].reshape(-1, 1)
        a, b = ratio * adv, (torch.clamp(ratio, 1 - c["epsilon"], 1 + c["epsilon"]) if clip else ratio) * adv
        per = -(torch.max(a, b) if use_max else torch.min(a, b))
        if c["beta"]:
            d = c["ref_logps"] - c["logps"]
            per = per + c["beta"] * (kl(c) if kl else torch.exp(d) - d - 1)
        m = c["mask"] if use_mask else torch.ones_like(c["mask"])
        return (per * m).sum() / m.sum() if token_mean else ((per * m).sum(-1) / m.sum(-1)).mean()

    variants = {
        "Clip the ratio to [1 - epsilon, 1 + epsilon] and take the *minimum* of the clipped and unclipped terms.":
            lambda c: manual(c, clip=False),
        "The objective takes the minimum of r*A and clip(r)*A; the loss is its negative (so -min, not -max).":
            lambda c: manual(c, use_max=True),
        "Average each completion over its own tokens first, then over completions (loss_type 'grpo'); a single "
        "token mean over the batch is 'bnpo'/'dapo'.": lambda c: manual(c, token_mean=True),
        "Padding tokens (mask 0) must count for nothing: multiply by the mask and divide by each completion's count.":
            lambda c: manual(c, use_mask=False),
        "The KL term is the k3 estimator exp(ref - logp) - (ref - logp) - 1, added with +beta.":
            lambda c: manual(c, kl=lambda cc: cc["logps"] - cc["ref_logps"]),
    }  # fmt: skip
    return _run("clipped GRPO loss", fn, fixed, strategy, judge, variants, lambda a, b: _close(a, b, 1e-6), strict,
                max_examples)


__all__ = ["CheckResult", "check_ndcg", "check_reward", "check_window_positions", "check_advantages",
           "check_grpo_loss"]  # fmt: skip
