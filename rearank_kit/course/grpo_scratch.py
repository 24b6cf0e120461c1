"""GRPO from scratch: the objective in plain torch, and a tiny listwise policy that learns with it.

The objective is ``train/grpo.py``'s (group advantages, the clipped ratio, the k3 KL term, TRL's
four ways to average over tokens; read its docstring first): the same functions train the kit's
scored policy, and ``tests/test_grpo_scratch.py`` checks ``grpo_loss`` against TRL's own loss.

**When the clip acts.** At the first optimizer step of a round, pi_theta *is* pi_old, so every
ratio is exactly 1, nothing is clipped, and the gradient is the policy gradient with the group
mean as baseline: -A_i grad logp_it (the ratio's gradient at 1 is grad logp). With one optimizer
step per round (the kit's ``paper`` preset) the clip therefore never acts; it matters only when a
round's completions are used for several steps (``steps_per_round`` here, TRL's
``num_iterations`` or ``steps_per_generation``), which is what PPO's clip was made for.

**The tiny policy.** A listwise reranker's "completion" is a permutation of the window. Here the
policy is a Plackett-Luce distribution: each passage has a score s_j = w . x_j from a few
features x_j (``FEATURES``: its BM25 position in the set, query-term overlap, IDF-weighted
overlap, length), and a permutation is drawn by picking the first passage with probability
softmax(s), the second among the rest, and so on. Each pick is a "token": its log-probability
is s_pick - logsumexp(s of the passages left), so the (G, n) tensor of picks has exactly the
shape of an LLM's per-token log-probabilities and goes through the same ``grpo_loss``. The
reward is the kit's rank reward (``rewards.rank_value``, normalised by default; no format
reward, a permutation is always well formed). It departs from REARANK in everything but the
objective and the reward: 4 weights instead of 7B, features instead of reading, no prompt.

    from rearank_kit.course.grpo_scratch import ScratchConfig, scratch_sets, train_scratch
    run = train_scratch(scratch_sets(rows), ScratchConfig(rounds=150))   # a few seconds on a CPU
    run.history[["reward", "clip_fraction"]]

``tests/test_grpo_scratch.py`` checks that ``grpo_loss`` equals the loss TRL's ``GRPOTrainer``
computes on the same tensors, for each ``loss_type``, with and without KL.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from rearank_kit.train.grpo import LOSS_TYPES, group_advantages, grpo_loss, kl_k3, pl_log_probs, pl_sample  # noqa: F401  (the objective, re-exported for notebook 07)
from rearank_kit.train.rewards import rank_scores, rank_value

FEATURES = ("bm25_position", "term_overlap", "idf_overlap", "log_length")

# --- the tiny listwise policy -------------------------------------------------------------------


class PlackettLuce(torch.nn.Module):
    """The toy policy: a Plackett-Luce distribution (``train/grpo.py``) whose scores are
    s = features @ w. ``features``: (B, n, F); permutations: (B, G, n) of passage indices."""

    def __init__(self, num_features: int = len(FEATURES)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(num_features, dtype=torch.float64))  # 0: every order equally likely

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.w

    @torch.no_grad()
    def sample(self, features: torch.Tensor, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return pl_sample(self.scores(features), num, generator=generator)

    def log_probs(self, features: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
        """Per-pick log-probabilities (B x G, n), the shape of an LLM's per-token log-probabilities."""
        return pl_log_probs(self.scores(features), perms).reshape(-1, perms.shape[-1])

    def greedy(self, features: torch.Tensor) -> torch.Tensor:
        """The most likely permutation of each set: passages by score."""
        return torch.argsort(self.scores(features), dim=-1, descending=True)


_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("the a an of to in on for and or is are was what how why when who which does do with by from "
                  "as at be it its this that".split())  # fmt: skip


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(str(text).lower()) if w not in _STOP and len(w) > 1]


def passage_features(query: str, texts: Sequence[str]) -> np.ndarray:
    """(n, 4) features of a set's passages in their shown order (``FEATURES``), each standardised
    within the set (a feature that does not vary is 0): what the policy's 4 weights read."""
    n = len(texts)
    q = set(_terms(query))
    docs = [set(_terms(t)) for t in texts]
    df = {w: sum(w in d for d in docs) for w in q}
    idf = {w: math.log((n + 1) / (df[w] + 0.5)) for w in q}
    raw = np.array([
        [1 - i / max(n - 1, 1), len(q & d) / max(len(q), 1), sum(idf[w] for w in q & d),
         math.log1p(len(str(t).split()))]
        for i, (t, d) in enumerate(zip(texts, docs, strict=True))
    ])  # fmt: skip
    std = raw.std(axis=0)
    return np.where(std > 0, (raw - raw.mean(axis=0)) / np.where(std > 0, std, 1), 0.0)


@dataclass
class ScratchSets:
    """Augmented sets as tensors: ``features`` (B, n, F), and each set's grades, ideal grades, split."""

    features: torch.Tensor
    grades: list[list[float]]
    ideal_grades: list[list[float]]
    split: list[str]
    qid: list[str]

    def select(self, split: str) -> ScratchSets:
        idx = [i for i, s in enumerate(self.split) if s == split]
        return ScratchSets(self.features[idx], [self.grades[i] for i in idx], [self.ideal_grades[i] for i in idx],
                           [split] * len(idx), [self.qid[i] for i in idx])  # fmt: skip

    def __len__(self) -> int:
        return len(self.grades)


def scratch_sets(rows: Sequence[Mapping]) -> ScratchSets:
    """Tensors for ``train_scratch`` from augmented rows (``augment.augment(...).rows`` or a
    loaded split): every set must have the same number of passages."""
    sizes = {len(r["texts"]) for r in rows}
    if len(sizes) != 1:
        raise ValueError(f"sets of different sizes {sorted(sizes)}: augment with one --window")
    feats = np.stack([passage_features(r["query"], r["texts"]) for r in rows])
    return ScratchSets(torch.tensor(feats, dtype=torch.float64), [list(map(float, r["grades"])) for r in rows],
                       [list(map(float, r["ideal_grades"])) for r in rows],
                       [r.get("split", "train") for r in rows], [str(r["qid"]) for r in rows])  # fmt: skip


# --- training -----------------------------------------------------------------------------------


@dataclass
class ScratchConfig:
    num_generations: int = 8  # G: permutations sampled per set
    prompts_per_round: int = 16  # sets per round
    rounds: int = 150
    steps_per_round: int = 1  # optimizer steps on each round's samples; 1: on-policy, the clip never acts
    learning_rate: float = 0.05  # Adam on 4 weights: large steps are fine
    epsilon: float = 0.2  # PPO clip range
    beta: float = 0.0  # KL coefficient (k3 against the starting policy); 0: no reference
    loss_type: str = "grpo"
    reward_mode: str = "normalized"
    scale: str = "group"  # advantages: "group", "batch" or "none"
    eval_every: int = 10  # rounds between greedy evaluations on the test sets
    seed: int = 0


@dataclass
class ScratchRun:
    history: pd.DataFrame  # one row per optimizer step
    evaluations: pd.DataFrame  # one row per evaluation: mean greedy reward on train and test sets
    policy: PlackettLuce
    config: ScratchConfig
    seconds: float = 0.0
    last_group: dict = field(default_factory=dict)  # the first group of the last round, for pictures


def sample_rewards(sets: ScratchSets, idx: Sequence[int], perms: torch.Tensor, mode: str) -> torch.Tensor:
    """The kit's rank reward of each sampled permutation: (len(idx) x G,)."""
    out = [rank_value(*rank_scores(p.tolist(), sets.grades[i], sets.ideal_grades[i]), mode=mode)
           for row, i in enumerate(idx) for p in perms[row]]  # fmt: skip
    return torch.tensor(out, dtype=torch.float64)


def greedy_reward(policy: PlackettLuce, sets: ScratchSets, mode: str = "normalized") -> float:
    """Mean reward of the policy's most likely ordering of each set (NaN for no sets)."""
    if not len(sets):
        return math.nan
    with torch.no_grad():
        orders = policy.greedy(sets.features)
    return float(np.mean([rank_value(*rank_scores(o.tolist(), g, ig), mode=mode)
                          for o, g, ig in zip(orders, sets.grades, sets.ideal_grades, strict=True)]))  # fmt: skip


def train_scratch(sets: ScratchSets, config: ScratchConfig | None = None) -> ScratchRun:
    """GRPO on the Plackett-Luce policy: per round, sample G permutations of each of a few sets,
    reward them, normalise within groups, then take ``steps_per_round`` Adam steps on ``grpo_loss``."""
    import time

    config = config or ScratchConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train, test = sets.select("train"), sets.select("test")
    if not len(train):
        raise ValueError("no training sets (split 'train')")
    policy = PlackettLuce(sets.features.shape[-1])
    reference = copy.deepcopy(policy).requires_grad_(False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    rows, evals, step, last_group = [], [], 0, {}
    G = config.num_generations
    for rnd in range(config.rounds):
        if rnd % config.eval_every == 0:
            evals.append({"round": rnd, "step": step, "train": greedy_reward(policy, train, config.reward_mode),
                          "test": greedy_reward(policy, test, config.reward_mode)})  # fmt: skip
        idx = rng.choice(len(train), size=min(config.prompts_per_round, len(train)), replace=False).tolist()
        feats = train.features[idx]
        perms = policy.sample(feats, G, gen)  # (B, G, n), from pi_old: the policy as the round begins
        with torch.no_grad():
            old = policy.log_probs(feats, perms)
            ref = reference.log_probs(feats, perms)
        rewards = sample_rewards(train, idx, perms, config.reward_mode)
        adv = group_advantages(rewards, G, config.scale)
        mask = torch.ones_like(old)
        group_std = rewards.view(-1, G).std(dim=1)
        last_group = {"perms": perms[0].tolist(), "rewards": rewards[:G].tolist(), "advantages": adv[:G].tolist(),
                      "grades": train.grades[idx[0]]}  # fmt: skip
        for inner in range(config.steps_per_round):
            logps = policy.log_probs(feats, perms)
            loss, stats = grpo_loss(logps, old, adv, mask, ref_logps=ref, beta=config.beta, epsilon=config.epsilon,
                                    loss_type=config.loss_type)  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            grad_norm = float(policy.w.grad.norm())
            optimizer.step()
            step += 1
            rows.append({
                "step": step, "round": rnd, "inner_step": inner, "reward": float(rewards.mean()),
                "reward_std": float(group_std.mean()), "frac_reward_zero_std": float((group_std < 1e-9).float().mean()),
                "loss": float(loss.detach()), "grad_norm": grad_norm, **stats,
                **{f"w/{name}": float(v) for name, v in zip(FEATURES, policy.w.detach(), strict=False)},
            })  # fmt: skip
    evals.append({"round": config.rounds, "step": step, "train": greedy_reward(policy, train, config.reward_mode),
                  "test": greedy_reward(policy, test, config.reward_mode)})  # fmt: skip
    return ScratchRun(pd.DataFrame(rows).set_index("step"), pd.DataFrame(evals), policy, config,
                      time.perf_counter() - started, last_group)  # fmt: skip


def bm25_reward(sets: ScratchSets, mode: str = "normalized") -> float:
    """Mean reward of keeping each set in its shown (BM25) order: 0 under the normalised reward."""
    n = sets.features.shape[1]
    return float(np.mean([rank_value(*rank_scores(list(range(n)), g, ig), mode=mode)
                          for g, ig in zip(sets.grades, sets.ideal_grades, strict=True)]))  # fmt: skip
