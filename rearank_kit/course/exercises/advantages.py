"""Exercise: GRPO's group advantages (notebook 02), (r - group mean) / (group std + 1e-4), checked against
``train.grpo.group_advantages``. The mistakes its hints name: the std without Bessel's correction,
normalising over the batch, groups transposed, no 1e-4 or 1e-4 under the root, the mean over n - 1."""

from __future__ import annotations

from collections.abc import Callable

from rearank_kit.core.optional import require
from rearank_kit.course.exercises.checking import (
    MAX_EXAMPLES,
    CheckResult,
    as_number,
    close_seq,
    describe,
    run_checks,
)


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
        ok = torch.is_tensor(answer) and answer.shape == c["rewards"].shape and close_seq(answer, expected)
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
            if as_number(answer) is not None:
                return (f"You returned one number; each completion gets its own advantage: a tensor of the shape "
                        f"of rewards, {want}.")  # fmt: skip
            if isinstance(answer, tuple) and 1 < len(answer) <= 3 and all(torch.is_tensor(a) and a.dim() for a in answer):
                return f"You returned {len(answer)} tensors (a tuple); return only the advantages, one tensor."
            how = ("torch.from_numpy(...) it" if type(answer).__name__ == "ndarray"
                   else "torch.stack / torch.tensor your list")  # fmt: skip
            return (f"You returned {describe(answer, 'numbers')}; return a torch tensor of the shape of rewards, "
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
    return run_checks("group advantages", fn, fixed, strategy, judge, variants, close_seq, strict, max_examples,
                      crash=crash, inspect=inspect)
