"""The exercise checkers: the solutions pass, stubs are "not yet done", common mistakes get their hint.

The solutions in notebooks/solutions/ and the kit's own functions go through the same checkers the
notebooks call, with ``strict=True``: a correct answer that stops passing fails here. Then one table
per checker of wrong solutions, each a small function below, with words its hint must contain: for
every checker at least a wrong type, a wrong shape and an off-by-one, besides its own common mistakes.
"""

from __future__ import annotations

import importlib.util
import math
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


def test_the_kits_own_functions_pass():
    from rearank_kit.core.metrics import ndcg_at_k
    from rearank_kit.rank.windows import window_positions
    from rearank_kit.train.grpo import group_advantages, grpo_loss
    from rearank_kit.train.rewards import rank_scores, rank_value

    def kit_reward(order, grades, ideal_grades):
        return rank_value(*rank_scores(order, grades, ideal_grades))

    def kit_loss(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
        return grpo_loss(logps, old_logps, advantages, mask, ref_logps=ref_logps, beta=beta, epsilon=epsilon)[0]

    for checker, fn in [(ex.check_ndcg, ndcg_at_k), (ex.check_reward, kit_reward),
                        (ex.check_window_positions, window_positions), (ex.check_advantages, group_advantages),
                        (ex.check_grpo_loss, kit_loss)]:  # fmt: skip
        assert checker(fn, strict=True).passed


def test_correct_answers_in_other_forms_pass():
    """What the exercises ask for, written another way, is not a mistake: a numpy float, a generator of
    [start, end] lists, numpy ints, float32 advantages."""
    import numpy as np

    def ndcg_numpy(ranked_docids, judgments, k=10):
        return np.float64(quick.my_ndcg_at_k(ranked_docids, judgments, k))

    def windows_generator(k, window, step):
        yield from (list(pair) for pair in quick.my_window_positions(k, window, step))

    def windows_numpy(k, window, step):
        return [tuple(np.int64(x) for x in pair) for pair in quick.my_window_positions(k, window, step)]

    def advantages_float32(rewards, num_generations):
        return reward.my_advantages(rewards, num_generations).float()

    for checker, fn in [(ex.check_ndcg, ndcg_numpy), (ex.check_window_positions, windows_generator),
                        (ex.check_window_positions, windows_numpy), (ex.check_advantages, advantages_float32)]:  # fmt: skip
        assert checker(fn, strict=True).passed


def test_the_learner_gets_copies_of_the_inputs():
    def sorts_in_place(ranked_docids, judgments, k=10):
        value = quick.my_ndcg_at_k(ranked_docids, judgments, k)
        ranked_docids.sort()  # would change the case the kit compares with, were it not a copy
        judgments.clear()
        return value

    assert ex.check_ndcg(sorts_in_place, strict=True)


# --- each common mistake gets its own hint ------------------------------------------------------

quick, reward, scratch = solution("quickstart"), solution("reward_design"), solution("grpo_from_scratch")


# nDCG@k: fn(ranked_docids, judgments, k=10) -> float


def _dcg(grades, discount=lambda i: math.log2(i + 2)):
    return sum(g / discount(i) for i, g in enumerate(grades))


def _ndcg(ranked_docids, judgments, k, *, depth=None, discount=lambda i: math.log2(i + 2), normalise=True):
    dcg = _dcg([judgments.get(d, 0) for d in ranked_docids[: k if depth is None else depth]], discount)
    ideal = _dcg(sorted(judgments.values(), reverse=True)[:k], discount)
    return dcg / ideal if normalise else dcg


def ndcg_ideal_from_ranking(ranked_docids, judgments, k=10):
    return quick.my_ndcg_at_k(ranked_docids, {d: judgments.get(d, 0) for d in ranked_docids}, k)


def ndcg_exponential_gain(ranked_docids, judgments, k=10):
    return quick.my_ndcg_at_k(ranked_docids, {d: 2**g - 1 for d, g in judgments.items()}, k)


def ndcg_no_cut(ranked_docids, judgments, k=10):
    return quick.my_ndcg_at_k(ranked_docids, judgments, 10 * k)


def ndcg_per_position(ranked_docids, judgments, k=10):  # shape: the terms of the sum, not the sum
    ideal = _dcg(sorted(judgments.values(), reverse=True)[:k]) or 1.0
    return [judgments.get(d, 0) / math.log2(i + 2) / ideal for i, d in enumerate(ranked_docids[:k])]


def ndcg_in_a_list(ranked_docids, judgments, k=10):  # shape: the number wrapped in a list
    return [quick.my_ndcg_at_k(ranked_docids, judgments, k)]


def ndcg_as_text(ranked_docids, judgments, k=10):  # type: the number printed, not returned
    return str(quick.my_ndcg_at_k(ranked_docids, judgments, k))


def ndcg_log2_of_i_plus_1(ranked_docids, judgments, k=10):  # off by one: position 1 gets log2(1) = 0
    return _ndcg(ranked_docids, judgments, k, discount=lambda i: math.log2(i + 1))


def ndcg_log2_of_i(ranked_docids, judgments, k=10):  # off by one, twice: log2(0)
    return _ndcg(ranked_docids, judgments, k, discount=lambda i: math.log2(i))


def ndcg_one_based_and_plus_one(ranked_docids, judgments, k=10):  # off by one: i from 1, then + 1 again
    return _ndcg(ranked_docids, judgments, k, discount=lambda i: math.log2(i + 3))


def ndcg_cut_at_k_plus_1(ranked_docids, judgments, k=10):  # off by one: k + 1 positions
    return _ndcg(ranked_docids, judgments, k, depth=k + 1) if any(judgments.values()) else 0.0


def ndcg_unjudged_keyerror(ranked_docids, judgments, k=10):
    dcg = _dcg([judgments[d] for d in ranked_docids[:k]])
    ideal = _dcg(sorted(judgments.values(), reverse=True)[:k])
    return dcg / ideal if ideal > 0 else 0.0


def ndcg_unguarded(ranked_docids, judgments, k=10):  # nothing relevant: 0 / 0
    return _ndcg(ranked_docids, judgments, k)


def ndcg_without_ideal(ranked_docids, judgments, k=10):
    return _ndcg(ranked_docids, judgments, k, normalise=False)


def ndcg_range_k(ranked_docids, judgments, k=10):  # assumes at least k passages
    dcg = sum(judgments.get(ranked_docids[i], 0) / math.log2(i + 2) for i in range(k))
    ideal = _dcg(sorted(judgments.values(), reverse=True)[:k])
    return dcg / ideal if ideal > 0 else 0.0


NDCG = [
    (ndcg_ideal_from_ranking, "from *all* judged passages"),
    (ndcg_exponential_gain, "not 2**grade - 1"),
    (ndcg_no_cut, "cut the ranking at k"),
    (ndcg_per_position, "You returned a list of 3 numbers; nDCG@k is one number"),
    (ndcg_in_a_list, "holding one number; return the number itself"),
    (ndcg_as_text, "not a formatted string"),
    (ndcg_log2_of_i_plus_1, "log2(i + 2), not log2(i + 1)"),
    (ndcg_log2_of_i, "math.log2(0) is undefined"),
    (ndcg_one_based_and_plus_one, "check how your index starts"),
    (ndcg_cut_at_k_plus_1, "you summed one more"),
    (ndcg_unjudged_keyerror, "judgments.get(docid, 0)"),
    (ndcg_unguarded, "return 0.0 then"),
    (ndcg_without_ideal, "That is the DCG"),
    (ndcg_range_k, "shorter than k"),
]


# The normalised rank reward: fn(order, grades, ideal_grades) -> float


def _scores(order, grades, ideal_grades, k=10):
    def ndcg(ordered):
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(ordered[:k]))
        ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(ideal_grades, reverse=True)[:k]))
        return dcg / ideal if ideal > 0 else 0.0

    return ndcg([grades[i] for i in order]), ndcg(list(grades)), ndcg(sorted(grades, reverse=True))


def reward_raw(order, grades, ideal_grades):
    return reward._ndcg10([grades[i] for i in order], ideal_grades)


def reward_no_guard(order, grades, ideal_grades):
    s_new, s_init, s_best = _scores(order, grades, ideal_grades)
    return (s_new - s_init) / (s_best - s_init)


def reward_clipped(order, grades, ideal_grades):
    return max(reward.my_rank_reward(order, grades, ideal_grades), 0)


def reward_difference(order, grades, ideal_grades):
    s_new, s_init, _ = _scores(order, grades, ideal_grades)
    return s_new - s_init


def reward_over_one_minus_init(order, grades, ideal_grades):
    s_new, s_init, _ = _scores(order, grades, ideal_grades)
    return (s_new - s_init) / (1 - s_init)


def reward_over_best(order, grades, ideal_grades):
    s_new, s_init, s_best = _scores(order, grades, ideal_grades)
    return (s_new - s_init) / s_best


def reward_three_scores(order, grades, ideal_grades):  # shape: the parts, not the reward
    return _scores(order, grades, ideal_grades)


def reward_per_passage(order, grades, ideal_grades):  # shape: one value per passage
    return [g / math.log2(i + 2) for i, g in enumerate(grades[i] for i in order)]


def reward_improved(order, grades, ideal_grades):  # type: a truth value
    s_new, s_init, _ = _scores(order, grades, ideal_grades)
    return s_new > s_init


def reward_as_text(order, grades, ideal_grades):  # type: text
    return f"{reward.my_rank_reward(order, grades, ideal_grades):.3f}"


def reward_one_based_order(order, grades, ideal_grades):  # off by one: grades[i - 1]
    return reward.my_rank_reward([i - 1 for i in order], grades, ideal_grades)


def reward_plus_one_index(order, grades, ideal_grades):  # off by one: grades[i + 1]
    return reward.my_rank_reward([i + 1 for i in order], grades, ideal_grades)


def reward_eleven_positions(order, grades, ideal_grades):  # off by one: [:11]
    s_new, s_init, s_best = _scores(order, grades, ideal_grades, k=11)
    return (s_new - s_init) / (s_best - s_init) if s_best - s_init > 1e-12 else 0.0


def reward_no_cut(order, grades, ideal_grades):  # every position counts
    s_new, s_init, s_best = _scores(order, grades, ideal_grades, k=len(grades))
    return (s_new - s_init) / (s_best - s_init) if s_best - s_init > 1e-12 else 0.0


def reward_ranks_not_indices(order, grades, ideal_grades):
    ranks = [0] * len(order)
    for position, index in enumerate(order):
        ranks[index] = position
    return reward.my_rank_reward(ranks, grades, ideal_grades)


REWARD = [
    (reward_raw, "raw nDCG"),
    (reward_no_guard, "no room to improve"),
    (reward_clipped, "not clipped at 0"),
    (reward_difference, "divide it by the room to improve"),
    (reward_over_one_minus_init, "not by 1 - S_init"),
    (reward_over_best, "not by S_best alone"),
    (reward_three_scores, "perhaps (S_new, S_init, S_best)"),
    (reward_per_passage, "one per passage"),
    (reward_improved, "a truth value"),
    (reward_as_text, "not a formatted string"),
    (reward_one_based_order, "no - 1 is needed"),
    (reward_plus_one_index, "needs no + 1"),
    (reward_eleven_positions, "you counted eleven"),
    (reward_no_cut, "also for sets of more than 10"),
    (reward_ranks_not_indices, "not each passage's rank"),
]


# Sliding windows: fn(k, window, step) -> [(start, end), ...]


def windows_rankgpt(k, window, step):
    if k <= window:
        return [(0, k)] if k > 0 else []
    out, end = [], k
    while end - window >= 0:
        out.append((end - window, end))
        end -= step
    return out


def windows_top_down(k, window, step):
    return quick.my_window_positions(k, window, step)[::-1]


def windows_flat(k, window, step):  # shape: numbers, not pairs
    return [x for pair in quick.my_window_positions(k, window, step) for x in pair]


def windows_starts(k, window, step):  # shape: one number per window
    return [start for start, _ in quick.my_window_positions(k, window, step)]


def windows_as_ranges(k, window, step):  # type: range objects
    return [range(start, end) for start, end in quick.my_window_positions(k, window, step)]


def windows_float_start(k, window, step):  # type: max(..., 0.0) makes the top start a float
    return [(max(0.0, start), end) for start, end in quick.my_window_positions(k, window, step)]


def windows_true_division(k, window, step):  # type: / where // is needed
    if k <= window:
        return [(0, k)] if k > 0 else []
    count = -(-(k - window) / step) + 1
    return [(max(k - window - i * step, 0), k - i * step) for i in range(count)]


def windows_inclusive_end(k, window, step):  # off by one: end included
    return [(start, end - 1) for start, end in quick.my_window_positions(k, window, step)]


def windows_one_based(k, window, step):  # off by one: positions from 1
    return [(start + 1, end) for start, end in quick.my_window_positions(k, window, step)]


def windows_while_end_positive(k, window, step):  # off by one: a window after the top one
    out, end = [], k
    while end > 0:
        out.append((max(end - window, 0), end))
        end -= step
    return out


def windows_range_stop_zero(k, window, step):  # off by one: range's stop is excluded
    if k <= window:
        return [(0, k)] if k > 0 else []
    return [(start, start + window) for start in range(k - window, 0, -step)]


def windows_step_as_overlap(k, window, step):
    return quick.my_window_positions(k, window, window - step) if window > step else quick.my_window_positions(k, window, step)


def windows_only_the_first(k, window, step):
    return quick.my_window_positions(k, window, step)[:1]


def windows_zero_k(k, window, step):
    return quick.my_window_positions(k, window, step) or [(0, 0)]


WINDOWS = [
    (windows_rankgpt, "RankGPT's loop"),
    (windows_top_down, "from the *bottom*"),
    (windows_flat, "a flat list of numbers"),
    (windows_starts, "one number per window"),
    (windows_as_ranges, "is a range(start, end)"),
    (windows_float_start, "must be ints"),
    (windows_true_division, "divide with // instead"),
    (windows_inclusive_end, "`end` excluded"),
    (windows_one_based, "count from 0"),
    (windows_while_end_positive, "One window too many"),
    (windows_range_stop_zero, "The top window is missing"),
    (windows_step_as_overlap, "not the overlap"),
    (windows_only_the_first, "You returned 1 window where the kit runs 9"),
    (windows_zero_k, "nothing to rerank"),
]


# Group advantages: fn(rewards, num_generations) -> tensor of the shape of rewards


def advantages_ddof0(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1)


def advantages_without_eps(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).reshape(-1)


def advantages_whole_batch(rewards, num_generations):
    return (rewards - rewards.mean()) / (rewards.std() + 1e-4)


def advantages_not_flattened(rewards, num_generations):  # shape: (prompts, num_generations)
    g = rewards.view(-1, num_generations)
    return (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)


def advantages_per_group(rewards, num_generations):  # shape: one number per group
    return rewards.view(-1, num_generations).mean(1)


def advantages_as_list(rewards, num_generations):  # type: a Python list
    return reward.my_advantages(rewards, num_generations).tolist()


def advantages_as_numpy(rewards, num_generations):  # type: a numpy array
    return reward.my_advantages(rewards, num_generations).numpy()


def advantages_mean_over_n_minus_1(rewards, num_generations):  # off by one: Bessel's n - 1 in the mean too
    g = rewards.view(-1, num_generations)
    mean = g.sum(1, keepdim=True) / (num_generations - 1)
    std = (((g - mean) ** 2).sum(1, keepdim=True) / (num_generations - 1)).sqrt()
    return ((g - mean) / (std + 1e-4)).reshape(-1)


def advantages_view_plus_one(rewards, num_generations):  # off by one: groups of num_generations + 1
    return reward.my_advantages(rewards, num_generations + 1)


def advantages_transposed(rewards, num_generations):  # groups down the columns
    g = rewards.view(num_generations, -1)
    return ((g - g.mean(0)) / (g.std(0) + 1e-4)).reshape(-1)


def advantages_rows_of_wrong_length(rewards, num_generations):
    g = rewards.view(num_generations, -1)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).reshape(-1)


def advantages_eps_in_variance(rewards, num_generations):
    g = rewards.view(-1, num_generations)
    return ((g - g.mean(1, keepdim=True)) / (g.var(1, keepdim=True) + 1e-4).sqrt()).reshape(-1)


ADVANTAGES = [
    (advantages_ddof0, "Bessel's correction"),
    (advantages_without_eps, "not NaN"),
    (advantages_whole_batch, "not over the whole batch"),
    (advantages_not_flattened, "flatten them back (.reshape(-1))"),
    (advantages_per_group, "one number per group"),
    (advantages_as_list, "You returned a list of 6 numbers; return a torch tensor"),
    (advantages_as_numpy, "an array of shape (6,); return a torch tensor"),
    (advantages_mean_over_n_minus_1, "belongs only in the standard deviation"),
    (advantages_view_plus_one, "The reshape does not fit"),
    (advantages_transposed, "mixing prompts"),
    (advantages_rows_of_wrong_length, "rows of the wrong length"),
    (advantages_eps_in_variance, "not to the variance"),
]


# The clipped GRPO loss: fn(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0) -> 0-d tensor


def _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, *, low=None, high=None, k3=True,
          per_token=False, per_completion=False, denominator=None):  # fmt: skip
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
    clipped = torch.clamp(ratio, 1 - epsilon if low is None else low, 1 + epsilon if high is None else high)
    loss = -torch.min(ratio * adv, clipped * adv)
    if beta:
        d = ref_logps - logps
        loss = loss + beta * (torch.exp(d) - d - (1 if k3 else 0))
    if per_token:
        return loss * mask
    loss = (loss * mask).sum(1) / (mask.sum(1) if denominator is None else denominator)
    return loss if per_completion else loss.mean()


def loss_token_mean(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
    per = -torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    if beta:
        d = ref_logps - logps
        per = per + beta * (torch.exp(d) - d - 1)
    return (per * mask).sum() / mask.sum()


def loss_as_float(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # type: .item()
    return scratch.my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta).item()


def loss_rebuilt_tensor(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # type: no graph
    return torch.tensor(scratch.my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta).item())


def loss_with_stats(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # type: a tuple
    return scratch.my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta), {"clip": 0.0}


def loss_per_completion(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # shape: (B,)
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, per_completion=True)


def loss_per_token(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # shape: (B, T)
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, per_token=True)


def loss_keepdim(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # shape: (1,)
    return scratch.my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta).reshape(1)


def loss_k3_without_minus_one(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # off by one
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, k3=False)


def loss_clip_around_zero(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):  # off by one
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, low=-epsilon, high=epsilon)


def loss_over_padded_length(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, denominator=mask.shape[1])


def loss_no_clip(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    return _loss(logps, old_logps, ref_logps, advantages, mask, epsilon, beta, low=-math.inf, high=math.inf)


def loss_advantages_without_token_axis(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    ratio = torch.exp(logps - old_logps)
    per = -torch.min(ratio * advantages, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * advantages)
    return ((per * mask).sum(1) / mask.sum(1)).mean()


def loss_detached_ratio(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    return scratch.my_grpo_loss(logps.detach(), old_logps, ref_logps, advantages, mask, epsilon, beta) + 0 * logps.sum()


LOSS = [
    (loss_token_mean, "over its own tokens"),
    (loss_as_float, "drop the .item() or float(...)"),
    (loss_rebuilt_tensor, "the loss is cut off from logps"),
    (loss_with_stats, "You returned a tuple of 2 things; return the loss tensor alone"),
    (loss_per_completion, "one per completion"),
    (loss_per_token, "one per token"),
    (loss_keepdim, "a 0-d tensor"),
    (loss_k3_without_minus_one, "without the - 1"),
    (loss_clip_around_zero, "not to [-epsilon, epsilon]"),
    (loss_over_padded_length, "not by the padded length T"),
    (loss_no_clip, "take the *minimum*"),
    (loss_advantages_without_token_axis, "advantages.unsqueeze(1)"),
    (loss_detached_ratio, "the gradient is not"),
]

TABLE = ([(ex.check_ndcg, *row) for row in NDCG] + [(ex.check_reward, *row) for row in REWARD]
         + [(ex.check_window_positions, *row) for row in WINDOWS]
         + [(ex.check_advantages, *row) for row in ADVANTAGES] + [(ex.check_grpo_loss, *row) for row in LOSS])  # fmt: skip


@pytest.mark.parametrize("checker, fn, hint", TABLE, ids=[row[1].__name__ for row in TABLE])
def test_a_mistake_fails_with_its_hint(checker, fn, hint):
    result = checker(fn)
    assert result.status == "failed" and not result
    assert hint in result.hint, str(result)
    assert len(result.hint) <= 240, result.hint  # short enough to read under the cell
    assert "your answer" in result.example and "expected" in result.example
    with pytest.raises(AssertionError, match="NOT YET RIGHT"):
        checker(fn, strict=True, max_examples=20)
