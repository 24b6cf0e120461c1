"""Watch one GRPO update of a real language model: a group's completions before and after one step.

``grpo_scratch`` shows the objective on a 4-weight policy; this module runs the same objective
on an LLM (the bundled SmolLM2-135M by default), for one prompt and one optimizer step, and
keeps everything a learner wants to look at:

1. render one augmented set as a prompt (the template's chat messages and prefill, ``render_chat``);
2. sample a group of G completions at ``temperature`` (``model.generate``, one seed);
3. score each with the kit's reward (``rewards.reward_breakdown``) and normalise within the group
   (``grpo.group_advantages``);
4. compute every completion token's log-probability under the current weights (logits divided by
   the temperature, as TRL does), take one plain SGD step on ``grpo.grpo_loss`` (old = current:
   the ratio is 1, the clip does not act, the gradient is -A grad log p; ``loss_type`` "dapo" by
   default, every token weighing the same; with "grpo" a short completion's tokens weigh more);
5. compute the log-probabilities again: completions with a positive advantage become more likely,
   those with a negative one less likely, by an amount that grows with |A| and the learning rate.

It departs from a training run (``train/generative.py``, TRL) in scale only: one prompt, the top layers only,
plain SGD instead of Adam, no LoRA, no KL, a learning rate chosen so that one step is visible.

    from rearank_kit.course.grpo_watch import watch_one_update
    result = watch_one_update(row)        # row: one augmented set (augment.augment(...).rows[0])
    result.table                          # completion, reward, advantage, logp before/after, change
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass
class WatchResult:
    table: pd.DataFrame  # one row per completion of the group
    prompt: str  # the prompt text as the model saw it (chat template and prefill included)
    loss: float  # before the step every ratio is 1: minus the token-weighted mean advantage ("dapo")
    loss_after: float  # the same loss on the same completions after the step: lower
    seconds: float
    settings: dict


def _per_token_logps(model, input_ids, attention_mask, prompt_len: int, temperature: float):
    """(G, T) log-probabilities of the completion tokens (positions prompt_len ...) under ``model``."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, prompt_len - 1 : -1]
    logps = torch.log_softmax(logits.float() / temperature, dim=-1)
    return torch.gather(logps, -1, input_ids[:, prompt_len:].unsqueeze(-1)).squeeze(-1)


def _trainable(lm, top_layers: int | None) -> set:
    """The weights one step updates: every one, or those of the top ``top_layers`` decoder layers."""
    if top_layers is None:
        return set(lm.parameters())
    layers = lm.get_decoder().layers
    return {p for layer in layers[len(layers) - top_layers :] for p in layer.parameters()}


def watch_one_update(
    row: Mapping[str, Any],
    *,
    model: str = "smollm2-135m",
    template: str = "compact",
    num_generations: int = 4,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    learning_rate: float = 0.005,
    train_layers: int | None = 4,
    reward_mode: str = "normalized",
    loss_type: str = "dapo",  # the cpu-tiny preset's: every token weighs the same
    lenient: bool = True,
    seed: int = 0,
    loaded: tuple[Any, Any] | None = None,
) -> WatchResult:
    """One GRPO step on one augmented set (``row``: ``query``, ``texts``, ``grades``,
    ``ideal_grades``); ``loaded``: an already loaded ``(model, tokenizer)``, whose weights the step
    changes (the default loads a fresh copy). ``train_layers``: only the top N transformer layers
    are updated (None: every weight); backpropagation then stops below them, which makes the step
    several times cheaper on a CPU."""
    import torch

    from rearank_kit.core.prompts import load_template, render_chat
    from rearank_kit.rank.policy import load_hf_model
    from rearank_kit.train.grpo import group_advantages, grpo_loss
    from rearank_kit.train.rewards import reward_breakdown

    started = time.perf_counter()
    lm, tokenizer = loaded or load_hf_model(model)
    tmpl = load_template(template)
    prompt = render_chat(tokenizer, tmpl.messages(row["query"], list(row["texts"])), prefill=tmpl.prefill or None)
    prompt_ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    prompt_len = prompt_ids.shape[1]

    # 2. a group of completions, sampled (eos ends a completion; the rest is padding, masked out)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = lm.generate(prompt_ids.repeat(num_generations, 1), attention_mask=torch.ones_like(
            prompt_ids).repeat(num_generations, 1), do_sample=True, temperature=temperature, top_p=1.0,
            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    completion_ids = out[:, prompt_len:]
    is_eos = completion_ids == tokenizer.eos_token_id
    first_eos = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full((num_generations,), completion_ids.shape[1]))
    positions = torch.arange(completion_ids.shape[1]).unsqueeze(0)
    mask = (positions <= first_eos.unsqueeze(1)).long()  # the eos token itself counts, as in TRL
    mask = mask[:, : completion_ids.shape[1]]
    texts = [tokenizer.decode(ids[m.bool()], skip_special_tokens=True) for ids, m in zip(completion_ids, mask, strict=True)]

    # 3. rewards and advantages
    parts = [reward_breakdown(t, row["grades"], row["ideal_grades"], reward_mode, lenient=lenient,
                              prefill=tmpl.prefill or "") for t in texts]  # fmt: skip
    rewards = torch.tensor([p["total"] for p in parts], dtype=torch.float32)
    advantages = group_advantages(rewards, num_generations)

    # 4. one step
    input_ids = torch.cat([prompt_ids.repeat(num_generations, 1), completion_ids], dim=1)
    attention = torch.cat([torch.ones(num_generations, prompt_len, dtype=torch.long), mask], dim=1)
    timings = {"generate": time.perf_counter() - started}
    trainable = _trainable(lm, train_layers)
    flags = {p: p.requires_grad for p in lm.parameters()}
    for p in lm.parameters():
        p.requires_grad_(p in trainable)
    # Plain SGD: the step is exactly -lr x gradient, so each completion's change follows its
    # advantage to first order (Adam's first step moves every weight by about lr, whatever its gradient).
    optimizer = torch.optim.SGD(trainable, lr=learning_rate)
    logps = _per_token_logps(lm, input_ids, attention, prompt_len, temperature)
    before = logps.detach()
    loss, stats = grpo_loss(logps, before, advantages, mask, loss_type=loss_type, max_completion_length=max_new_tokens)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for p, flag in flags.items():
        p.requires_grad_(flag)
    timings["step"] = time.perf_counter() - started - timings["generate"]

    # 5. the same completions after the step
    with torch.no_grad():
        after = _per_token_logps(lm, input_ids, attention, prompt_len, temperature)
        loss_after, _ = grpo_loss(after, before, advantages, mask, loss_type=loss_type,
                                  max_completion_length=max_new_tokens)
    m = mask.float()
    table = pd.DataFrame({
        "completion": texts,
        "tokens": mask.sum(1).tolist(),
        "reward": rewards.tolist(),
        "rank_reward": [p["rank"] for p in parts],
        "advantage": advantages.tolist(),
        "logp_before": (before * m).sum(1).tolist(),
        "logp_after": (after * m).sum(1).tolist(),
    })  # fmt: skip
    table["logp_change"] = table["logp_after"] - table["logp_before"]
    table["per_token_change"] = table["logp_change"] / table["tokens"]
    settings = {"model": model, "template": template, "num_generations": num_generations,
                "max_new_tokens": max_new_tokens, "temperature": temperature, "learning_rate": learning_rate,
                "train_layers": train_layers, "reward_mode": reward_mode, "loss_type": loss_type, "lenient": lenient, "seed": seed,
                "clip_fraction": stats["clip_fraction"], "seconds": timings}  # fmt: skip
    return WatchResult(table, prompt, float(loss.detach()), float(loss_after), time.perf_counter() - started, settings)
