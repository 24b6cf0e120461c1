"""Exercise: the clipped GRPO loss with the k3 KL term (notebook 07), value and gradient, checked against
``train.grpo.grpo_loss``. The mistakes its hints name: a plain number instead of a tensor with a gradient,
no clip, -max for -min, averaging over all tokens, padding counted, the k3 term wrong, the ratio
clipped around 0 or taken as a difference."""

from __future__ import annotations

import copy
from collections.abc import Callable

from rearank_kit.core.optional import require
from rearank_kit.course.exercises.checking import CheckResult, as_number, close, describe, run_checks


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
        if not (torch.is_tensor(answer) and answer.dim() == 0 and close(answer, expected, 1e-6)):
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
                return f"You returned {describe(answer, 'things')}; return the loss tensor alone."
            if type(answer).__name__ == "ndarray":
                return "Your loss is a numpy array: .numpy() cuts the gradient's path; keep it a torch tensor."
            if as_number(answer) is not None:
                return (f"Your loss is a plain number (a {type(answer).__name__}), so no gradient can flow back "
                        "to logps: drop the .item() or float(...) and return the tensor itself.")  # fmt: skip
            return f"You returned {describe(answer)}; return the loss as a torch tensor."
        shape = tuple(answer.shape)
        if shape == (b, t):
            return (f"Your loss has shape {shape}, one per token: average each completion over its real tokens "
                    "(mask), then take the mean over completions.")  # fmt: skip
        if b > 1 and shape in ((b,), (b, 1)):
            return f"Your loss has shape {shape}, one per completion: the loss is their mean, one number."
        if answer.dim():
            return (f"Your loss has shape {shape}; return one number, a 0-d tensor (.mean() without keepdim, or "
                    ".squeeze()): backward() needs a scalar.")  # fmt: skip
        if not close(answer, expected, 1e-6):
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
    return run_checks("clipped GRPO loss", fn, fixed, strategy, judge, variants, lambda a, b: close(a, b, 1e-6), strict,
                      max_examples, crash=crash, inspect=inspect)
