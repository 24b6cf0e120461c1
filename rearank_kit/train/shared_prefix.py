"""Compute each GRPO prompt once, not once per completion: shared-prefix generation and scoring.

GRPO samples a *group* of G completions per prompt. TRL repeats the prompt G times and runs the
model over every copy, twice per step: once to sample the completions and once to score them
(log-probabilities for the policy gradient). For REARANK on a CPU the prompt is the expensive part:
about 250 tokens of passages against 1 to 20 tokens of answer, so with G = 4 three quarters of
the step's compute repeats work already done.

Here the distinct prompts of a batch are run once, their key/value cache is copied to every
completion of their group, and only the completion tokens are run per completion:

* ``generate``: the cache of the prompt (all but its last token) is computed once per distinct
  prompt without gradients, indexed out to the group, and handed to transformers' ``generate``,
  which continues from it (sampling each row independently, as before);
* ``per_token_logps``: the same with gradients: the indexing is differentiable, so the gradient of
  every completion flows back into its one prompt computation and the LoRA (or full) weights get
  exactly the gradient of the repeated computation.

Both give what the repeated computation gives, up to float rounding (``tests/test_shared_prefix.py``).
Rows are grouped by their exact prompt token ids and mask. Positions follow each caller: TRL
scores with the padded batch's positions (0..T-1), ``generate`` counts real tokens from 0; the
two only differ in an offset that rotary attention does not see, but a cache must continue the
convention it was made with. Only text models with a ``DynamicCache`` (Llama, Qwen, SmolLM...)
are supported.
"""

from __future__ import annotations

from typing import Any


def unique_rows(ids, mask):
    """(indices of one representative row per distinct (ids, mask) row, each row's group index)."""
    import torch

    key = torch.cat([ids, mask.to(ids.dtype)], dim=1)
    uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
    first = torch.full((uniq.size(0),), ids.size(0), dtype=torch.long, device=ids.device)
    first = first.scatter_reduce(0, inverse, torch.arange(ids.size(0), device=ids.device), reduce="amin")
    return first, inverse


def prompt_cache(model, ids, mask, with_grad: bool, position_ids=None):
    """The key/value cache of ``ids`` (distinct prompts, all but their last token)."""
    import torch

    context = torch.enable_grad() if with_grad else torch.no_grad()
    with context:
        out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True, logits_to_keep=1)
    return out.past_key_values


def generation_positions(mask):
    """Position ids as transformers' ``generate`` derives them from a left-padded mask (real tokens
    count from 0), so that a cache made here continues where ``generate`` expects it to."""
    positions = mask.long().cumsum(-1) - 1
    return positions.masked_fill(mask == 0, 1)


def shared_generate(model, generate, input_ids, attention_mask, **kwargs):
    """``generate(input_ids, attention_mask, **kwargs)`` with each distinct prompt prefilled once."""
    import torch

    if input_ids.size(1) < 2 or "past_key_values" in kwargs:
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    first, inverse = unique_rows(input_ids, attention_mask)
    if first.numel() == input_ids.size(0):  # nothing shared
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    with torch.no_grad():
        head = attention_mask[first, :-1]
        cache = prompt_cache(model, input_ids[first, :-1], head, with_grad=False, position_ids=generation_positions(head))
    cache.batch_select_indices(inverse)
    return generate(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, **kwargs)


def per_token_logps(model, input_ids, attention_mask, logits_to_keep: int, compute_entropy: bool,
                    autocast: Any = None) -> tuple[Any, Any]:
    """TRL's per-token log-probabilities (and entropies) of the last ``logits_to_keep`` tokens.

    ``model`` carries TRL's fused LM head (``model(..., labels=, fused_lm_head=True)``); the prompt
    part, ``input_ids[:, :-logits_to_keep-1]``, is computed once per distinct prompt.
    """
    import contextlib

    split = input_ids.size(1) - logits_to_keep - 1  # the last prompt token predicts the first completion token
    first, inverse = unique_rows(input_ids[:, :split], attention_mask[:, :split])
    autocast = autocast or contextlib.nullcontext()
    with autocast:
        cache = prompt_cache(model, input_ids[first, :split], attention_mask[first, :split], with_grad=True)
        cache.batch_select_indices(inverse)
        tail = input_ids[:, split:]
        labels = tail.masked_fill(attention_mask[:, split:] == 0, -100)
        labels[:, 0] = -100  # the last prompt token is context, not scored
        out = model(input_ids=tail, attention_mask=attention_mask, past_key_values=cache, labels=labels,
                    fused_lm_head=True, use_cache=False)
    logps = out.log_probs[:, -logits_to_keep:]
    entropies = out.entropy[:, -logits_to_keep:] if compute_entropy else None
    return logps, entropies


__all__ = ["unique_rows", "shared_generate", "per_token_logps", "prompt_cache"]
