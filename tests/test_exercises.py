"""The exercise checkers: the solutions pass, stubs are "not yet done", common mistakes get their hint.

The solutions in notebooks/solutions/ go through the same checkers the notebooks call, with
``strict=True``: a solution that stops passing fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from rearank_kit.course import exercises as ex

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def solution(name: str):
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", SOLUTIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "checker, module, function",
    [
        (ex.check_ndcg, "quickstart", "my_ndcg_at_k"),
        (ex.check_window_positions, "quickstart", "my_window_positions"),
        (ex.check_reward, "reward_design", "my_rank_reward"),
        (ex.check_advantages, "reward_design", "my_advantages"),
        (ex.check_grpo_loss, "grpo_from_scratch", "my_grpo_loss"),
    ],
)
def test_each_solution_passes_its_checker(checker, module, function):
    result = checker(getattr(solution(module), function), strict=True)
    assert result.passed and result.cases > 50 and "PASSED" in str(result)


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("checker", [ex.check_ndcg, ex.check_window_positions, ex.check_reward,
                                     ex.check_advantages, ex.check_grpo_loss])  # fmt: skip
def test_a_stub_is_not_yet_done_and_does_not_raise(checker):
    result = checker(_stub)
    assert result.status == "not done" and not result
    assert checker(lambda *a, **k: None).status == "not done"
    with pytest.raises(AssertionError, match="NOT YET DONE"):
        checker(_stub, strict=True)


# --- each common mistake gets its own hint ------------------------------------------------------

quick, reward = solution("quickstart"), solution("reward_design")


def ndcg_ideal_from_ranking(ranked_docids, judgments, k=10):
    return quick.my_ndcg_at_k(ranked_docids, {d: judgments.get(d, 0) for d in ranked_docids}, k)


def ndcg_exponential_gain(ranked_docids, judgments, k=10):
    return quick.my_ndcg_at_k(ranked_docids, {d: 2**g - 1 for d, g in judgments.items()}, k)


def advantages_ddof0(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1)


def advantages_without_eps(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).reshape(-1)


def reward_raw(order, grades, ideal_grades):
    return reward._ndcg10([grades[i] for i in order], ideal_grades)


def reward_no_guard(order, grades, ideal_grades):
    s = [reward._ndcg10(x, ideal_grades) for x in ([grades[i] for i in order], list(grades), sorted(grades)[::-1])]
    return (s[0] - s[1]) / (s[2] - s[1])


def windows_rankgpt(k, window, step):
    if k <= window:
        return [(0, k)] if k > 0 else []
    out, end = [], k
    while end - window >= 0:
        out.append((end - window, end))
        end -= step
    return out


def loss_token_mean(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
    per = -torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    if beta:
        d = ref_logps - logps
        per = per + beta * (torch.exp(d) - d - 1)
    return (per * mask).sum() / mask.sum()


def loss_as_float(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    loss = solution("grpo_from_scratch").my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta)
    return loss.item()  # a float: no gradient


@pytest.mark.parametrize(
    "checker, fn, hint",
    [
        (ex.check_ndcg, ndcg_ideal_from_ranking, "from *all* judged passages"),
        (ex.check_ndcg, ndcg_exponential_gain, "not 2**grade - 1"),
        (ex.check_ndcg, lambda ranked_docids, judgments, k=10: quick.my_ndcg_at_k(ranked_docids, judgments, 10 * k),
         "cut the ranking at k"),
        (ex.check_advantages, advantages_ddof0, "Bessel's correction"),
        (ex.check_advantages, advantages_without_eps, "not NaN"),
        (ex.check_reward, reward_raw, "raw nDCG"),
        (ex.check_reward, reward_no_guard, "divided by zero"),
        (ex.check_reward, lambda order, grades, ideal_grades: max(reward.my_rank_reward(order, grades, ideal_grades), 0),
         "not clipped at 0"),
        (ex.check_window_positions, windows_rankgpt, "RankGPT's loop"),
        (ex.check_window_positions, lambda k, window, step: quick.my_window_positions(k, window, step)[::-1],
         "from the *bottom*"),
        (ex.check_grpo_loss, loss_token_mean, "over its own tokens"),
        (ex.check_grpo_loss, loss_as_float, "gradient flows back"),
    ],
)
def test_a_mistake_fails_with_its_hint(checker, fn, hint):
    result = checker(fn)
    assert result.status == "failed" and not result
    assert hint in result.hint + str(result.example.get("expected")), str(result)
    assert "your answer" in result.example and "expected" in result.example
