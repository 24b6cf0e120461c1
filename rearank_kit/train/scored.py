"""GRPO for the scored listwise policy: REARANK's reward and objective on a frozen language model.

The policy (``rank/scored.py``) scores each passage of a set, s = a * prior + w . x, and ranks by
drawing from the Plackett-Luce distribution over s / T. One step of GRPO here is the paper's
(Eq. 3) with rankings in place of completions:

1. draw ``sets_per_step`` augmented sets of the training queries (``augment.py``'s rows);
2. score their passages with the current policy (the states x come from the cache: ``states.py``);
3. sample a group of ``num_generations`` rankings per set (the policy as it was when the round
   began is pi_old);
4. reward each ranking with REARANK's rank reward: the nDCG@10 gain of the sampled order over the
   set's given order (``rewards.rank_value``, mode ``difference``; with advantages normalised
   within groups the paper's ``normalized`` mode gives the same update, see ``ScoredConfig``; no
   format reward, a ranking is always well formed);
5. advantages normalised within each group; the clipped-ratio loss over the per-pick
   log-probabilities with an optional k3 KL term to the start policy (``grpo.grpo_loss``); one
   Adam step (``steps_per_round`` reuse a round's samples, where the clip starts to act).

Logged per step (``metrics.jsonl``, TRL's names): ``reward``, ``reward_std``,
``frac_reward_zero_std``, ``kl``, ``entropy`` (of the sampled rankings, nats), ``loss``,
``grad_norm``, ``clip_fraction``, ``prior_weight``, and every ``eval_every`` steps the nDCG@10 of
the validation queries' first-stage lists reranked greedily (``validation_ndcg``).

Two contrasts for teaching, both off by default: ``exact=True`` replaces the sampled groups by the
exact expectation over all n! rankings of a small set (GRPO in the limit of infinitely many
samples; 120 rankings for n = 5), and ``warmup_steps`` runs a supervised ListNet warm-up on the
sets' grades before GRPO (then the signal is no longer the reward alone).

How it departs from the paper: the language model is frozen and read once (states cached), only
the head (and the prior weight) learn; sets are drawn anew each step from the augmented rows
rather than visited once in order; there is no reasoning text to reward.

    rearank-kit train-scored --data dl21 --sets runs/aug-dl21-w5 --states runs/states-dl21 --out runs/scored
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from rearank_kit.core.errors import KitError
from rearank_kit.rank.scored import ScoredPolicy, first_stage_prior, with_weights
from rearank_kit.train.grpo import all_rankings, group_advantages, grpo_loss, kl_k3, pl_log_probs, pl_sample
from rearank_kit.train.rewards import MODES

K = 10  # the reward's nDCG@10

# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredConfig:
    """Everything a scored GRPO run depends on, besides its data."""

    steps: int = 300
    sets_per_step: int = 16
    num_generations: int = 8  # G rankings per set
    temperature: float = 1.0  # T: the rankings are drawn from PL(s / T)
    # Adam moves every coordinate of w by about the learning rate each step, whatever its gradient: over
    # 576 standardised features, 0.01 for 300 steps swamps the prior with noise (held-out nDCG@10
    # falls well below BM25's on DL21's validation folds); 1e-4 keeps the head a correction.
    learning_rate: float = 1e-4
    optimizer: str = "adam"  # "adam" (AdamW) or "sgd" (plain gradient steps: they follow the gradient's size)
    weight_decay: float = 0.0  # decoupled decay on w
    # Average w over the last fraction of the steps (0: the last step's w): the noise of sampled
    # groups averages out, the drift does not.
    average_tail: float = 0.0
    learn_prior_weight: bool = False  # True: a is learned too; False keeps the first stage's voice fixed
    prior_weight: float = 1.0  # a at the start: 1 reproduces the first-stage order when w = 0
    beta: float = 0.0  # k3 KL to the start policy, per pick
    epsilon: float = 0.2  # PPO clip range
    steps_per_round: int = 1  # optimizer steps on one round's samples (the clip acts from the second on)
    # rewards.MODES. Within a group every ranking shares its set's given order and best order, so with
    # advantages normalised within the group the normalised and the difference reward give the same
    # advantages (up to the 1e-4 in the denominator): the same update. The logged step reward differs:
    # the normalised one divides by each set's room to improve, and a few sets with little room put
    # its per-step mean at the mercy of outliers (on DL21 its rise over a run was 0.4 standard errors,
    # the difference reward's 8 to 16, same runs). So the kit logs the nDCG@10 gain.
    reward_mode: str = "difference"
    scale_rewards: str = "group"  # "group" (GRPO), "batch" or "none" (Dr. GRPO)
    exact: bool = False  # the exact expectation over all rankings (sets of at most 6 passages)
    warmup_steps: int = 0  # supervised ListNet steps on the grades before GRPO (0: the reward alone)
    warmup_learning_rate: float = 1e-4  # Adam, as learning_rate: larger steps swamp the prior
    eval_every: int = 25  # validation nDCG@10 every N steps (0: never)
    select: str = "last"  # "last" step's head, or the "best" validation step's
    seed: int = 0

    def check(self) -> ScoredConfig:
        for name in ("sets_per_step", "num_generations", "steps_per_round"):
            if getattr(self, name) < 1:
                raise KitError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps < (0 if self.warmup_steps else 1):
            raise KitError(f"steps must be at least 1 (0 only after a warm-up), got {self.steps}")
        if self.num_generations < 2 and not self.exact:
            raise KitError("num_generations must be at least 2: a group of one has no advantage")
        if not self.temperature > 0 or not self.learning_rate > 0:
            raise KitError("temperature and learning_rate must be above 0")
        for name in ("weight_decay", "beta", "warmup_steps", "eval_every"):
            if getattr(self, name) < 0:
                raise KitError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.reward_mode not in MODES:
            raise KitError(f"reward_mode must be one of {', '.join(MODES)}, got {self.reward_mode!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise KitError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not 0.0 <= self.average_tail < 1.0:
            raise KitError(f"average_tail must lie in [0, 1), got {self.average_tail}")
        if self.select not in ("last", "best"):
            raise KitError(f"select must be 'last' or 'best', got {self.select!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the sets as tensors -----------------------------------------------------------------------


@dataclass
class SetBatch:
    """Augmented sets ready for the policy: features ``x`` (B, n, D), ``prior`` (B, n), ``grades``
    (B, n) in the set's given order, each query's ideal DCG@10 ``idcg`` (B,), the given order's and
    the best order's nDCG@10 ``init`` and ``best`` (B,), and each set's ``qid``."""

    x: torch.Tensor
    prior: torch.Tensor
    grades: torch.Tensor
    idcg: torch.Tensor
    init: torch.Tensor
    best: torch.Tensor
    qid: list[str]

    def __len__(self) -> int:
        return len(self.qid)

    def take(self, idx: Sequence[int]) -> SetBatch:
        i = torch.as_tensor(list(idx), dtype=torch.long)
        return SetBatch(self.x[i], self.prior[i], self.grades[i], self.idcg[i], self.init[i], self.best[i],
                        [self.qid[j] for j in idx])  # fmt: skip


def _discount(n: int) -> torch.Tensor:
    ranks = torch.arange(n, dtype=torch.float64)
    return torch.where(ranks < K, 1.0 / torch.log2(ranks + 2.0), torch.zeros(n, dtype=torch.float64))


def _ideal_dcg(grades: Sequence[float]) -> float:
    top = sorted((float(g) for g in grades), reverse=True)[:K]
    return sum(g / math.log2(r + 2) for r, g in enumerate(top))


def set_batch(rows: Sequence[Mapping], policy: ScoredPolicy, states: Any, priors: Mapping[str, Mapping[str, float]]) -> SetBatch:
    """Tensors for ``rows`` (augmented sets: ``qid``, ``docids``, ``grades``, ``ideal_grades``), the
    states of their pairs from the cache ``states`` and each passage's prior (``priors[qid][docid]``)."""
    if not rows:
        raise KitError("no sets to train or evaluate on")
    sizes = {len(r["docids"]) for r in rows}
    if len(sizes) != 1:
        raise KitError(f"sets of different sizes {sorted(sizes)}: augment with one --window")
    n = sizes.pop()
    disc = _discount(n)
    x = np.stack([policy.features(states.matrix(r["qid"], r["docids"], policy.layers)) for r in rows])
    prior = np.array([[priors[str(r["qid"])][str(d)] for d in r["docids"]] for r in rows])
    grades = torch.tensor([[float(g) for g in r["grades"]] for r in rows], dtype=torch.float64)
    idcg = torch.tensor([_ideal_dcg(r["ideal_grades"]) for r in rows], dtype=torch.float64)
    safe = torch.where(idcg > 0, idcg, torch.ones_like(idcg))
    init = (grades * disc).sum(-1) / safe * (idcg > 0)
    best = (torch.sort(grades, dim=-1, descending=True).values * disc).sum(-1) / safe * (idcg > 0)
    return SetBatch(torch.tensor(x, dtype=torch.float32), torch.tensor(prior, dtype=torch.float32), grades, idcg,
                    init, best, [str(r["qid"]) for r in rows])  # fmt: skip


def query_priors(bench: Any, kind: str = "bm25") -> dict[str, dict[str, float]]:
    """qid -> docid -> prior over each query's whole candidate list (``first_stage_prior``)."""
    return {r.query.qid: dict(zip(r.docids, first_stage_prior([c.score for c in r.candidates], kind).tolist(), strict=True))
            for r in bench.rankings}  # fmt: skip


# --- the reward, vectorised ------------------------------------------------------------------------


def ranking_rewards(batch: SetBatch, perms: torch.Tensor, mode: str = "normalized") -> torch.Tensor:
    """REARANK's rank reward of each ranking ``perms`` (B, G, n) of each set: ``rewards.rank_value``
    of (nDCG@10 of the ranking, of the given order, of the best order), (B, G)."""
    disc = _discount(perms.shape[-1])
    ordered = torch.gather(batch.grades.unsqueeze(1).expand(-1, perms.shape[1], -1), -1, perms)
    safe = torch.where(batch.idcg > 0, batch.idcg, torch.ones_like(batch.idcg)).unsqueeze(1)
    new = (ordered * disc).sum(-1) / safe * (batch.idcg > 0).unsqueeze(1)
    init, best = batch.init.unsqueeze(1), batch.best.unsqueeze(1)
    if mode == "raw":
        return new
    if mode == "difference":
        return new - init
    room = best - init
    value = torch.where(room > 1e-12, (new - init) / torch.where(room > 1e-12, room, torch.ones_like(room)),
                        torch.zeros_like(new))  # fmt: skip
    return torch.clamp(value, max=1.0)


# --- the trainable head ----------------------------------------------------------------------------


class Head(torch.nn.Module):
    """w (and a) as torch parameters: s = a * prior + x @ w, for (B, n) sets."""

    def __init__(self, dim: int, prior_weight: float, learn_prior_weight: bool) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(dim))
        self.a = torch.nn.Parameter(torch.tensor(float(prior_weight)), requires_grad=learn_prior_weight)

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.a * prior + x @ self.w


def _listnet_loss(scores: torch.Tensor, grades: torch.Tensor) -> torch.Tensor:
    target = torch.softmax(grades.to(scores.dtype), dim=-1)
    return -(target * torch.log_softmax(scores, dim=-1)).sum(-1).mean()


def _exact_loss(scores: torch.Tensor, batch: SetBatch, config: ScoredConfig) -> tuple[torch.Tensor, dict]:
    """-E[A] over every ranking: the gradient GRPO's sampled groups estimate (advantages normalised
    by the reward's mean and std under the policy itself)."""
    n = scores.shape[-1]
    perms = all_rankings(n).unsqueeze(0).expand(len(batch), -1, -1)
    logp = pl_log_probs(scores, perms, config.temperature).sum(-1)  # (B, n!)
    p = torch.exp(logp)
    rewards = ranking_rewards(batch, perms, config.reward_mode).to(p.dtype)
    mean = (p * rewards).sum(-1, keepdim=True).detach()
    std = torch.sqrt((p * (rewards - mean) ** 2).sum(-1, keepdim=True)).detach()
    adv = (rewards - mean) / (std + 1e-4) if config.scale_rewards == "group" else rewards - mean
    loss = -(p * adv).sum(-1).mean()
    stats = {"reward": float(mean.mean()), "reward_std": float(std.mean()),
             "frac_reward_zero_std": float((std < 1e-9).float().mean()), "entropy": float(-(p * logp).sum(-1).mean().detach()),
             "kl": 0.0, "clip_fraction": 0.0}  # fmt: skip
    return loss, stats


# --- training ------------------------------------------------------------------------------------


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(B, G, n) -> (B*G, n): one sampled ranking a row, as a completion is one row in TRL."""
    return t.reshape(-1, t.shape[-1])


@dataclass
class ScoredRun:
    """A finished run: the trained policy, one record per step, and the validation curve."""

    policy: ScoredPolicy
    history: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    seconds: float


def train_scored(
    policy: ScoredPolicy,
    train: SetBatch,
    config: ScoredConfig,
    *,
    validate: Callable[[ScoredPolicy], float] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
) -> ScoredRun:
    """Train ``policy`` (its ``w`` and, with ``learn_prior_weight``, its ``a``) on the sets ``train``;
    ``validate(policy) -> nDCG@10`` is called every ``eval_every`` steps and at the end; ``on_step``
    receives each step's record as it is made (a log file, a live plot)."""
    from tqdm.auto import tqdm

    config.check()
    if config.exact and train.x.shape[1] > 6:
        raise KitError(f"exact=True enumerates every ranking: sets of {train.x.shape[1]} passages have too many")
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    head = Head(train.x.shape[-1], policy.prior_weight, config.learn_prior_weight)
    head.w.data = torch.as_tensor(policy.w, dtype=torch.float32).clone()
    params = [p for p in head.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        optim: torch.optim.Optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    else:
        optim = torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    tail_from = config.steps - int(config.average_tail * config.steps) + 1 if config.average_tail else None
    tail_w, tail_a, tail_n = torch.zeros_like(head.w), 0.0, 0
    start_a = float(policy.prior_weight)
    history: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    best: tuple[float, int, np.ndarray, float] | None = None

    def current() -> ScoredPolicy:
        return with_weights(policy, head.w.detach().double().numpy(), float(head.a.detach()))

    def check_validation(step: int) -> None:
        nonlocal best
        if validate is None:
            return
        score = float(validate(current()))
        curve.append({"step": step, "validation_ndcg": score})
        if best is None or score > best[0] + 1e-12:
            best = (score, step, head.w.detach().clone().numpy(), float(head.a.detach()))
        if history:
            history[-1]["validation_ndcg"] = score

    started = time.perf_counter()
    if config.eval_every:
        check_validation(0)
    # --- optional supervised warm-up: ListNet on the sets' grades --------------------------------
    warm = torch.optim.Adam([p for p in head.parameters() if p.requires_grad], lr=config.warmup_learning_rate)
    for _ in range(config.warmup_steps):
        batch = train.take(rng.choice(len(train), size=min(config.sets_per_step, len(train)), replace=False).tolist())
        loss = _listnet_loss(head(batch.x, batch.prior), batch.grades)
        warm.zero_grad()
        loss.backward()
        warm.step()
    bar = tqdm(range(1, config.steps + 1), desc="scored GRPO", unit="step", disable=not progress, dynamic_ncols=True)
    for step in bar:
        t0 = time.perf_counter()
        batch = train.take(rng.choice(len(train), size=min(config.sets_per_step, len(train)), replace=False).tolist())
        if config.exact:
            loss, stats = _exact_loss(head(batch.x, batch.prior), batch, config)
            optim.zero_grad()
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(head.parameters(), 1e9))
            optim.step()
        else:
            # --- a round: sample groups under pi_old, reward them --------------------------------
            with torch.no_grad():
                old_scores = head(batch.x, batch.prior)
                perms = pl_sample(old_scores, config.num_generations, config.temperature, generator=gen)
                old_logps = pl_log_probs(old_scores, perms, config.temperature)
                ref_scores = start_a * batch.prior  # the start policy: w = 0
                ref_logps = pl_log_probs(ref_scores, perms, config.temperature)
                rewards = ranking_rewards(batch, perms, config.reward_mode)  # (B, G)
                adv = group_advantages(rewards.reshape(-1), config.num_generations, config.scale_rewards)
            for _ in range(config.steps_per_round):
                logps = pl_log_probs(head(batch.x, batch.prior), perms, config.temperature)
                loss, loss_stats = grpo_loss(_rows(logps), _rows(old_logps), adv.to(logps.dtype),
                                             torch.ones_like(_rows(logps)), ref_logps=_rows(ref_logps), beta=config.beta,
                                             epsilon=config.epsilon, loss_type="grpo")  # fmt: skip
                optim.zero_grad()
                loss.backward()
                grad_norm = float(torch.nn.utils.clip_grad_norm_(head.parameters(), 1e9))
                optim.step()
            spread = rewards.std(dim=1)
            stats = {
                "reward": float(rewards.mean()), "reward_std": float(spread.mean()),
                "frac_reward_zero_std": float((spread < 1e-9).float().mean()),
                "entropy": float(-old_logps.sum(-1).mean()),
                "kl": float(kl_k3(_rows(old_logps), _rows(ref_logps)).sum(-1).mean()),
                "clip_fraction": loss_stats["clip_fraction"],
            }  # fmt: skip
            # every mode of the rank reward, logged beside the one trained on (rewards.MODES)
            for mode in ("normalized", "difference"):
                values = rewards if mode == config.reward_mode else ranking_rewards(batch, perms, mode)
                stats[f"rewards/{mode}/mean"] = float(values.mean())
        record = {"step": step, **stats, "loss": float(loss.detach()), "grad_norm": grad_norm,
                  "learning_rate": config.learning_rate, "prior_weight": float(head.a.detach()),
                  "step_time": round(time.perf_counter() - t0, 4)}  # fmt: skip
        history.append(record)
        if tail_from is not None and step >= tail_from:
            tail_w += head.w.detach()
            tail_a += float(head.a.detach())
            tail_n += 1
        if config.eval_every and (step % config.eval_every == 0 or step == config.steps):
            check_validation(step)
        if on_step is not None:
            on_step(record)
        bar.set_postfix(reward=f"{record['reward']:+.3f}")
    bar.close()
    w, a, chosen = head.w.detach().double().numpy(), float(head.a.detach()), config.steps
    if tail_n:
        w, a = (tail_w / tail_n).double().numpy(), tail_a / tail_n
    if config.select == "best" and best is not None:
        _, chosen, w, a = best[0], best[1], best[2].astype(np.float64), best[3]
    method = "listnet" if not config.steps else "scored-grpo+listnet" if config.warmup_steps else "scored-grpo"
    trained = with_weights(policy, w, a, method=method,
                           steps=config.steps, chosen_step=chosen)  # fmt: skip
    return ScoredRun(trained, history, curve, time.perf_counter() - started)


def rising_beyond_noise(rewards: Sequence[float]) -> dict[str, float | bool]:
    """The issue's test of a curve that learns: the last quarter's mean step reward above the first
    quarter's by more than two standard errors of the difference."""
    values = np.asarray(rewards, dtype=float)
    q = len(values) // 4
    if q < 2:
        raise KitError(f"{len(values)} steps are too few to compare quarters")
    first, last = values[:q], values[-q:]
    se = math.sqrt(first.var(ddof=1) / q + last.var(ddof=1) / q)
    diff = float(last.mean() - first.mean())
    return {"first_quarter": float(first.mean()), "last_quarter": float(last.mean()), "difference": diff,
            "standard_error": se, "rises": bool(diff > 2 * se)}  # fmt: skip


def no_learning_band(policy: ScoredPolicy, train: SetBatch, config: ScoredConfig, replicates: int = 200) -> list[dict[str, float]]:
    """What the step reward of ``train_scored(policy, train, config)`` looks like if nothing is learned:
    each step's sets (the same draws as the run), ranked by ``policy`` as it starts; per step the
    expected batch reward and the 5/50/95% quantiles of the batch mean over ``replicates`` groups
    (``curves.add_no_learning_band`` draws it)."""
    config.check()
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed + 1)
    w = torch.as_tensor(policy.w, dtype=torch.float32)
    band = []
    for _ in range(config.warmup_steps):  # the warm-up's draws come first in a run
        rng.choice(len(train), size=min(config.sets_per_step, len(train)), replace=False)
    for step in range(1, config.steps + 1):
        batch = train.take(rng.choice(len(train), size=min(config.sets_per_step, len(train)), replace=False).tolist())
        with torch.no_grad():
            scores = policy.prior_weight * batch.prior + batch.x @ w
            perms = pl_sample(scores, config.num_generations * replicates, config.temperature, generator=gen)
            rewards = ranking_rewards(batch, perms, config.reward_mode)  # (B, G x replicates)
        means = rewards.reshape(len(batch), replicates, config.num_generations).mean(dim=(0, 2)).numpy()
        q05, q50, q95 = np.quantile(means, [0.05, 0.5, 0.95])
        band.append({"step": step, "expected": float(rewards.mean()), "q05": float(q05), "q50": float(q50),
                     "q95": float(q95)})  # fmt: skip
    return band
