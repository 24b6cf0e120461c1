"""Solutions to notebook 02's exercises: the normalised rank reward and GRPO's group advantages."""

import math

import torch


def _ndcg10(ordered_grades, ideal_grades):
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(ordered_grades[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(ideal_grades, reverse=True)[:10]))
    return dcg / ideal if ideal > 0 else 0.0


def my_rank_reward(order, grades, ideal_grades):
    # order[0] is the index of the passage ranked first: the grades in the model's order.
    s_new = _ndcg10([grades[i] for i in order], ideal_grades)
    s_init = _ndcg10(list(grades), ideal_grades)  # as shown
    s_best = _ndcg10(sorted(grades, reverse=True), ideal_grades)  # sorted by grade
    room = s_best - s_init
    # No room to improve: the reward is 0 rather than a division by zero. Never clipped below.
    return (s_new - s_init) / room if room > 1e-12 else 0.0


def my_advantages(rewards, num_generations):
    groups = rewards.view(-1, num_generations)  # one row per prompt
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)  # torch's default: Bessel's correction, like TRL
    return ((groups - mean) / (std + 1e-4)).reshape(-1)


_ = torch  # the notebook's stub receives torch tensors
