"""Shared-prefix GRPO computation equals TRL's repeated one: log-probs, entropies, gradients, samples.

The bundled SmolLM2-135M with TRL's fused LM head and a LoRA adapter whose B matrices are not zero
(so that the adapter changes the outputs), on a batch shaped like a GRPO round: two prompts of
different lengths (left-padded), three completions each of different lengths (right-padded).
TRL's own ``_get_per_token_logps_and_entropies`` is the reference, called on the same tensors.
"""

from __future__ import annotations

import contextlib
import types

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy():
    import torch
    from peft import LoraConfig, get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    from rearank_kit.rank.policy import load_hf_model

    torch.manual_seed(0)
    model, tok = load_hf_model("smollm2-135m")
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*\.layers\.(27|28|29)\.(self_attn|mlp)\.\w+_proj",
                        init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.train()
    return peft_model, tok


def _round(tok):
    """Input ids and mask of a GRPO round: 2 prompts x 3 completions, TRL's padding."""
    import torch

    prompts = [tok("Rank the passages: [1] cats purr. [2] dogs bark. Answer: <answer>[", add_special_tokens=False)
               ["input_ids"], tok("Query: cat. [1] a cat. Answer: <answer>[", add_special_tokens=False)["input_ids"]]
    completions = [[tok.convert_tokens_to_ids("2"), tok.convert_tokens_to_ids("]")], [tok.convert_tokens_to_ids("1")],
                   [tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("]"), tok.eos_token_id]]
    width_p = max(map(len, prompts))
    width_c = max(map(len, completions))
    ids, mask = [], []
    for p in prompts:
        for c in completions:
            ids.append([tok.pad_token_id] * (width_p - len(p)) + p + c + [tok.pad_token_id] * (width_c - len(c)))
            mask.append([0] * (width_p - len(p)) + [1] * len(p) + [1] * len(c) + [0] * (width_c - len(c)))
    return torch.tensor(ids), torch.tensor(mask), width_c


def _trl_reference(model, ids, mask, keep):
    from trl import GRPOTrainer

    fake = types.SimpleNamespace(accelerator=types.SimpleNamespace(autocast=contextlib.nullcontext, is_main_process=True))
    logps, entropies, _ = GRPOTrainer._get_per_token_logps_and_entropies(fake, model, ids, mask, keep,
                                                                         compute_entropy=True)
    return logps, entropies


def test_shared_log_probs_entropies_and_gradients_equal_trls(policy):
    import torch

    from rearank_kit.train.shared_prefix import per_token_logps, unique_rows

    model, tok = policy
    ids, mask, keep = _round(tok)
    first, inverse = unique_rows(ids[:, : ids.size(1) - keep], mask[:, : ids.size(1) - keep])
    assert sorted(first.tolist()) == [0, 3] and sorted(inverse.tolist().count(g) for g in (0, 1)) == [3, 3]

    def grads(logps):
        model.zero_grad()
        (logps * mask[:, -keep:]).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    ref_logps, ref_entropy = _trl_reference(model, ids, mask, keep)
    ref_grads = grads(ref_logps)
    logps, entropy = per_token_logps(model, ids, mask, keep, compute_entropy=True)
    new_grads = grads(logps)
    scored = mask[:, -keep:].bool()
    assert torch.allclose(logps[scored], ref_logps[scored], atol=1e-4)
    assert torch.allclose(entropy[scored], ref_entropy[scored], atol=1e-4)
    assert set(new_grads) == set(ref_grads) and any(g.abs().sum() > 0 for g in ref_grads.values())
    for name, g in ref_grads.items():
        assert torch.allclose(new_grads[name], g, atol=1e-4, rtol=1e-3), name


def test_shared_generation_continues_each_prompt_like_plain_generation(policy):
    import torch

    from rearank_kit.train.shared_prefix import shared_generate

    model, tok = policy
    ids, mask, keep = _round(tok)
    prompt_ids, prompt_mask = ids[:, :-keep], mask[:, :-keep]
    settings = dict(max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id, output_scores=True,
                    return_dict_in_generate=True)
    with torch.no_grad():
        plain = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, **settings)
        shared = shared_generate(model, model.generate, prompt_ids, prompt_mask, **settings)
    # The scores of every step agree (a cache continued at the wrong positions is off by whole logits).
    for step, (a, b) in enumerate(zip(plain.scores, shared.scores, strict=True)):
        assert torch.allclose(a, b, atol=1e-3), f"step {step}: max difference {(a - b).abs().max():.4f}"
    assert torch.equal(plain.sequences, shared.sequences)
