"""Solution to notebook 07's exercise: the clipped GRPO loss with the k3 KL term."""

import torch


def my_grpo_loss(logps, old_logps, ref_logps, advantages, mask, epsilon=0.2, beta=0.0):
    ratio = torch.exp(logps - old_logps)  # pi_theta / pi_old, per token
    adv = advantages.unsqueeze(1)  # one advantage per completion, for each of its tokens
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    if beta:
        d = ref_logps - logps
        per_token = per_token + beta * (torch.exp(d) - d - 1)  # k3: >= 0, unbiased under pi_theta
    per_completion = (per_token * mask).sum(dim=1) / mask.sum(dim=1)  # each completion over its own tokens
    return per_completion.mean()
