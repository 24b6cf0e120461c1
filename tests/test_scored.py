"""The scored listwise policy and its GRPO trainer: Plackett-Luce, the vectorised reward, the start
policy, saving, and learning a planted signal from the reward alone."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import load_pair_prompt
from rearank_kit.rank.scored import first_stage_prior, load_scored_policy, start_policy, with_weights
from rearank_kit.train.grpo import all_rankings, pl_entropy, pl_log_probs, pl_sample
from rearank_kit.train.rewards import rank_scores, rank_value
from rearank_kit.train.scored import (
    ScoredConfig,
    SetBatch,
    _discount,
    _ideal_dcg,
    ranking_rewards,
    rising_beyond_noise,
    train_scored,
)

PROMPT = load_pair_prompt("relevance")

# --- Plackett-Luce -------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_plackett_luce_is_a_distribution_over_rankings(temperature):
    scores = torch.tensor([[1.5, -0.3, 0.2, 0.9]], dtype=torch.float64)
    perms = all_rankings(4).unsqueeze(0)
    probs = torch.exp(pl_log_probs(scores, perms, temperature).sum(-1))
    assert float(probs.sum()) == pytest.approx(1.0)
    # the first pick is softmax(s / T): its marginal over the 24 rankings
    first = torch.zeros(4, dtype=torch.float64).index_add(0, perms[0, :, 0], probs[0])
    assert torch.allclose(first, torch.softmax(scores[0] / temperature, 0))


def test_sampling_follows_the_probabilities():
    scores = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    perms = pl_sample(scores, 20000, generator=gen)[0]
    counts = {tuple(p.tolist()): 0 for p in all_rankings(3)}
    for p in perms.tolist():
        counts[tuple(p)] += 1
    exact = torch.exp(pl_log_probs(scores, all_rankings(3).unsqueeze(0)).sum(-1))[0]
    for i, p in enumerate(all_rankings(3).tolist()):
        assert counts[tuple(p)] / 20000 == pytest.approx(float(exact[i]), abs=0.015)


def test_padding_is_ranked_last_and_costs_nothing():
    scores = torch.tensor([[0.3, 1.0, 5.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])
    perms = pl_sample(scores, 50, mask=mask, generator=torch.Generator().manual_seed(1))
    assert (perms[0, :, -1] == 2).all()
    logp = pl_log_probs(scores, perms, mask=mask)
    assert (logp[0, :, -1] == 0).all() and torch.isfinite(logp).all()
    assert float(pl_entropy(scores, mask=mask, samples=4000).item()) == pytest.approx(
        float(-(torch.softmax(scores[0, :2], 0) * torch.log_softmax(scores[0, :2], 0)).sum()), abs=0.03)


# --- the reward, vectorised ------------------------------------------------------------------------

# grades of a set in its given order, the query's judged grades, one ranking: the kit's
# rewards.rank_value of rank_scores is the reference
REWARD_CASES = [
    ([0, 3, 1, 0, 2], [3, 2, 1, 1], [1, 4, 2, 0, 3]),  # the best order: reward 1
    ([0, 3, 1, 0, 2], [3, 2, 1, 1], [0, 1, 2, 3, 4]),  # the given order: reward 0
    ([0, 3, 1, 0, 2], [3, 2, 1, 1], [3, 0, 2, 4, 1]),  # worse than given: negative
    ([2, 2, 0, 0, 0], [2, 2], [4, 3, 2, 1, 0]),  # the given order is already best: room 0, reward 0
    ([0, 0, 0, 0, 0], [3, 1], [2, 1, 0, 4, 3]),  # nothing relevant in the set
    ([1, 0, 0, 0, 0], [], [1, 0, 2, 3, 4]),  # no judged grade at all: ideal DCG 0
]


def _batch(rows):
    n = len(rows[0][0])
    disc = _discount(n)
    grades = torch.tensor([[float(g) for g in r[0]] for r in rows], dtype=torch.float64)
    idcg = torch.tensor([_ideal_dcg(r[1]) for r in rows], dtype=torch.float64)
    safe = torch.where(idcg > 0, idcg, torch.ones_like(idcg))
    init = (grades * disc).sum(-1) / safe * (idcg > 0)
    best = (torch.sort(grades, descending=True).values * disc).sum(-1) / safe * (idcg > 0)
    zeros = torch.zeros(len(rows), n)
    return SetBatch(zeros.unsqueeze(-1), zeros, grades, idcg, init, best, [str(i) for i in range(len(rows))])


@pytest.mark.parametrize("mode", ["normalized", "difference", "raw"])
def test_vectorised_reward_equals_the_kits_rank_reward(mode):
    batch = _batch(REWARD_CASES)
    perms = torch.tensor([[r[2]] for r in REWARD_CASES])
    got = ranking_rewards(batch, perms, mode)[:, 0]
    for i, (grades, ideal, order) in enumerate(REWARD_CASES):
        assert float(got[i]) == pytest.approx(rank_value(*rank_scores(order, grades, ideal), mode=mode))
    if mode == "normalized":
        assert got.tolist()[:2] == pytest.approx([1.0, 0.0]) and float(got[2]) < 0


# --- the policy ----------------------------------------------------------------------------------


def test_first_stage_prior():
    assert first_stage_prior([3.0, 2.0, 1.0]).tolist() == pytest.approx([1.2247, 0.0, -1.2247], abs=1e-4)
    assert first_stage_prior([5.0, 5.0]).tolist() == [0.0, 0.0]
    assert first_stage_prior([9.0, 1.0, 0.5], "rank").tolist() == pytest.approx([1.2247, 0.0, -1.2247], abs=1e-4)
    with pytest.raises(KitError, match="prior must be one of"):
        first_stage_prior([1.0], "tfidf")


def test_the_start_policy_keeps_the_first_stage_order_and_saves_whole(tmp_path):
    rng = np.random.default_rng(0)
    states = rng.normal(size=(30, 2, 4))
    policy = start_policy("smollm2-135m", PROMPT, (8, 15), states)
    prior = first_stage_prior([9.0, 7.5, 7.5, 3.0, 1.0])
    assert policy.order(states[:5], prior) == [0, 1, 2, 3, 4]
    trained = with_weights(policy, rng.normal(size=8), 0.5, steps=3)
    back = load_scored_policy(trained.save(tmp_path / "p"))
    assert back.layers == (8, 15) and back.prior_weight == 0.5 and back.record["steps"] == 3
    assert np.allclose(back.scores(states[:5], prior), trained.scores(states[:5], prior), atol=1e-4)
    with pytest.raises(KitError, match="reads 8"):
        back.features(states[:, :1])


# --- learning --------------------------------------------------------------------------------------


def _planted(num_sets: int, n: int = 5, dim: int = 6, seed: int = 0):
    """Sets whose grades a state coordinate reveals (with noise) and BM25 does not: the reward alone
    must find it."""
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 4, size=(num_sets, n)).astype(float)
    x = rng.normal(size=(num_sets, n, dim))
    x[:, :, 2] = grades + rng.normal(scale=0.7, size=(num_sets, n))
    prior = rng.normal(size=(num_sets, n))
    rows = []
    for g in grades:
        rows.append((g.tolist(), sorted(g.tolist(), reverse=True) + [1.0, 2.0], list(range(n))))
    batch = _batch(rows)
    batch.x = torch.tensor(x, dtype=torch.float32)
    batch.prior = torch.tensor(prior, dtype=torch.float32)
    return batch


def _greedy_reward(policy_w: np.ndarray, a: float, batch: SetBatch) -> float:
    scores = a * batch.prior + batch.x @ torch.tensor(policy_w, dtype=torch.float32)
    order = torch.argsort(scores, dim=-1, descending=True).unsqueeze(1)
    return float(ranking_rewards(batch, order).mean())


@pytest.mark.parametrize("exact", [False, True])
def test_grpo_learns_a_planted_signal_from_the_reward_alone(exact):
    train, test = _planted(400, seed=0), _planted(200, seed=1)
    policy = start_policy("smollm2-135m", PROMPT, (15,), np.ones((2, 1, 6)))  # mean 1, scale 1: features = x - 1
    policy = with_weights(policy, np.zeros(6))
    policy.mean, policy.scale = np.zeros(6), np.ones(6)
    run = train_scored(policy, train, ScoredConfig(steps=150, sets_per_step=32, learning_rate=0.05, exact=exact,
                                                    eval_every=0, seed=3))  # fmt: skip
    before, after = _greedy_reward(np.zeros(6), 1.0, test), _greedy_reward(run.policy.w, run.policy.prior_weight, test)
    assert after > before + 0.3  # held-out sets, not the ones it trained on
    assert int(np.argmax(np.abs(run.policy.w))) == 2  # it found the coordinate that carries the grades
    if not exact:
        assert rising_beyond_noise([h["reward"] for h in run.history])["rises"]
        assert {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "loss", "grad_norm"} <= set(run.history[0])


def test_a_reward_that_carries_no_signal_is_not_learned():
    """Grades independent of every state coordinate: the held-out reward must stay near the start."""
    train, test = _planted(300, seed=0), _planted(200, seed=1)
    for b in (train, test):
        b.x[:, :, 2] = torch.randn(b.x.shape[:2], generator=torch.Generator().manual_seed(5))
    policy = start_policy("smollm2-135m", PROMPT, (15,), np.zeros((2, 1, 6)))
    policy.mean, policy.scale = np.zeros(6), np.ones(6)
    run = train_scored(policy, train, ScoredConfig(steps=100, sets_per_step=32, learning_rate=0.05, eval_every=0))
    assert abs(_greedy_reward(run.policy.w, 1.0, test) - _greedy_reward(np.zeros(6), 1.0, test)) < 0.15


@pytest.mark.parametrize("change, message", [
    (dict(steps=0), "steps must be at least 1"), (dict(num_generations=1), "a group of one"),
    (dict(temperature=0.0), "above 0"), (dict(reward_mode="best"), "reward_mode"), (dict(select="first"), "select"),
    (dict(beta=-1.0), "beta must not be negative"),
])  # fmt: skip
def test_bad_settings_are_refused(change, message):
    with pytest.raises(KitError, match=message):
        ScoredConfig(**change).check()


@pytest.mark.parametrize("rewards, rises", [
    ([0.0] * 20 + [0.5] * 20, True),
    ([0.1, -0.1] * 20, False),
    (list(np.linspace(0.5, 0.0, 40)), False),
])  # fmt: skip
def test_rising_beyond_noise(rewards, rises):
    rng = np.random.default_rng(0)
    noisy = np.asarray(rewards) + rng.normal(scale=0.01, size=len(rewards))
    assert rising_beyond_noise(noisy)["rises"] is rises


def test_all_rankings():
    assert all_rankings(3).tolist() == [list(p) for p in itertools.permutations(range(3))]
    assert len(all_rankings(5)) == math.factorial(5)
    with pytest.raises(ValueError, match="too many"):
        all_rankings(9)
