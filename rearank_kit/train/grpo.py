"""The GRPO pieces every trainer and the course share: group advantages, the clipped objective with
its k3 KL term, and the Plackett-Luce distribution over rankings.

The objective (Shao et al., 2024; REARANK's Eq. 3; TRL's ``GRPOTrainer._compute_loss``). For a
prompt, sample a group of G completions o_1..o_G from the policy as it was when the round began
(pi_old), score each with the reward R_i, and for completion i, token t:

    A_i    = (R_i - mean(R)) / (std(R) + 1e-4)       std with Bessel's correction (ddof=1), as TRL's
    r_it   = pi_theta(o_it | ...) / pi_old(o_it | ...) = exp(logp_it - old_logp_it)
    L_it   = -min(r_it A_i, clip(r_it, 1 - eps, 1 + eps_high) A_i) + beta * KL_it
    KL_it  = exp(ref_it - logp_it) - (ref_it - logp_it) - 1    the "k3" estimator of KL(pi_theta || pi_ref)

``grpo_loss`` averages L over tokens in one of TRL's ways (``loss_type``; ``tests/test_grpo_scratch.py``
checks it against TRL's own loss on the same tensors).

**Plackett-Luce.** A ranking of n passages with scores s is drawn by picking the first passage with
probability softmax(s / T), the second among the rest, and so on. Each pick is a "token" with an
exact log-probability, s_pick / T - logsumexp(s / T of the passages left), so a (G, n) tensor of
picks has the shape of an LLM's per-token log-probabilities and goes through the same loss. The
generative policy (``generative.py``) gets its log-probabilities from TRL; the scored policy
(``scored.py``) and the course's toy policy (``course/grpo_scratch.py``) from here.
"""

from __future__ import annotations

import itertools
import math

import torch

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")

# --- the objective ------------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor, num_generations: int, scale: str = "group", eps: float = 1e-4):
    """(R - group mean) / (std + eps) for a flat tensor of rewards, groups of ``num_generations``
    consecutive completions; ``scale``: "group" (GRPO, TRL's default), "batch" (one std over all)
    or "none" (mean-centred only, Dr. GRPO). std uses Bessel's correction, as TRL's ``nanstd``."""
    rewards = rewards if torch.is_tensor(rewards) else torch.as_tensor(rewards, dtype=torch.float64)
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {num_generations}")
    grouped = rewards.view(-1, num_generations)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)
    if scale == "none":
        return centred
    if scale == "group":
        std = grouped.std(dim=1, keepdim=True).expand_as(grouped).reshape(-1)
    elif scale == "batch":
        std = rewards.std().expand_as(rewards)
    else:
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centred / (std + eps)


def kl_k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(d) - d - 1 with d = ref - logp;
    never negative, 0 where the two agree, unbiased for samples of pi_theta (Schulman, 2020)."""
    d = ref_logps - logps
    return torch.exp(d) - d - 1


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: str = "grpo",
    max_completion_length: int | None = None,
    kl_ratio_weighted: bool = False,
) -> tuple[torch.Tensor, dict]:
    """The GRPO loss of a batch and what it did: ``(loss, stats)``.

    Shapes: ``logps``, ``old_logps``, ``ref_logps``, ``mask``: (B, T) per-token log-probabilities
    of B completions (1 in ``mask`` for real tokens); ``advantages``: (B,). ``kl_ratio_weighted``
    multiplies the KL term by the ratio (TRL's ``use_bias_correction_kl``; off in Eq. 3).
    ``stats``: ``clip_fraction`` (share of real tokens whose clipped term was the one used),
    ``ratio_min``/``ratio_max``, ``kl`` (mean k3 over real tokens; 0 without a reference).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
    mask = mask.to(logps.dtype)
    adv = advantages.to(logps.dtype).reshape(-1, 1)
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + (epsilon if epsilon_high is None else epsilon_high))
    per_token = -torch.min(ratio * adv, clipped * adv)
    kl = torch.zeros_like(logps)
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta > 0 needs ref_logps, the reference policy's log-probabilities")
        kl = kl_k3(logps, ref_logps) * (ratio if kl_ratio_weighted else 1.0)
        per_token = per_token + beta * kl
    tokens = mask.sum().clamp(min=1.0)
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type in ("bnpo", "dapo"):
        loss = (per_token * mask).sum() / tokens
    else:
        length = max_completion_length or logps.shape[1]
        loss = (per_token * mask).sum() / (logps.shape[0] * length)
    with torch.no_grad():
        used_clip = ((clipped * adv) < (ratio * adv)) & (mask > 0)
        real = ratio[mask > 0]
        stats = {
            "clip_fraction": float(used_clip.sum() / tokens),
            "ratio_min": float(real.min()) if real.numel() else math.nan,
            "ratio_max": float(real.max()) if real.numel() else math.nan,
            "kl": float((kl * mask).sum() / tokens),
        }
    return loss, stats


# --- Plackett-Luce ------------------------------------------------------------------------------


def _scaled(scores: torch.Tensor, temperature: float, mask: torch.Tensor | None) -> torch.Tensor:
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    s = scores / temperature
    return s if mask is None else s.masked_fill(~mask, -math.inf)


@torch.no_grad()
def pl_sample(scores: torch.Tensor, num: int, temperature: float = 1.0, mask: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """``num`` rankings per set, exactly Plackett-Luce: sort s / T + Gumbel noise (the Gumbel-max
    trick at every position at once). ``scores``: (B, n); ``mask``: (B, n), False for padding,
    which is always ranked last. Returns (B, num, n) passage indices, best first."""
    s = _scaled(scores, temperature, mask).unsqueeze(1).expand(-1, num, -1)
    u = torch.rand(s.shape, dtype=s.dtype, generator=generator).clamp(1e-12, 1 - 1e-12)
    return torch.argsort(s - torch.log(-torch.log(u)), dim=-1, descending=True)


def pl_log_probs(scores: torch.Tensor, perms: torch.Tensor, temperature: float = 1.0,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pick log-probabilities (B, G, n) of rankings ``perms`` (B, G, n) under scores (B, n):
    s_pick / T - logsumexp(s / T of the passages not yet picked); 0 at padded picks."""
    s = _scaled(scores, temperature, mask).unsqueeze(1).expand(-1, perms.shape[1], -1)
    picked = torch.gather(s, -1, perms)  # scores in the order picked
    rest = torch.flip(torch.logcumsumexp(torch.flip(picked, [-1]), dim=-1), [-1])
    logp = picked - rest
    if mask is not None:
        real = torch.gather(mask.unsqueeze(1).expand(-1, perms.shape[1], -1), -1, perms)
        logp = torch.where(real, logp, torch.zeros_like(logp))
    return logp


def pl_entropy(scores: torch.Tensor, temperature: float = 1.0, mask: torch.Tensor | None = None,
               samples: int = 64, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Monte-Carlo estimate of each set's ranking entropy in nats, (B,): -mean log p(ranking)."""
    with torch.no_grad():
        perms = pl_sample(scores, samples, temperature, mask, generator)
        return -pl_log_probs(scores, perms, temperature, mask).sum(-1).mean(-1)


def all_rankings(n: int) -> torch.Tensor:
    """Every ranking of n passages, (n!, n): the exact expectation's support (120 for n = 5)."""
    if n > 8:
        raise ValueError(f"{n}! rankings are too many to enumerate; use sampled groups")
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)
