"""One GRPO update of the bundled model, watched: the loss the step minimised went down, and the
model's weights outside the trained layers did not move."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.slow
def test_one_update_lowers_the_loss_on_its_own_completions(sample_dir):
    from rearank_kit.course.grpo_watch import watch_one_update
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.rank.policy import load_hf_model
    from rearank_kit.train.augment import AugmentConfig, augment

    rows = augment(load_benchmark("sample", top_k=20), AugmentConfig(samples_per_query=5, window=5, seed=0)).rows
    row = max(rows, key=lambda r: r["best_ndcg"] - r["init_ndcg"])
    model, tokenizer = load_hf_model("smollm2-135m")
    embeddings = model.get_input_embeddings().weight.detach().clone()
    top = next(model.get_decoder().layers[-1].parameters()).detach().clone()
    result = watch_one_update(row, num_generations=4, max_new_tokens=8, loaded=(model, tokenizer))
    table = result.table
    assert len(table) == 4 and set(table.columns) >= {"completion", "reward", "advantage", "logp_before", "logp_after"}
    # Before the step every ratio is 1, so the "dapo" loss is minus the token-weighted mean advantage:
    # 0 only when the completions have equal lengths (the advantages sum to 0 per completion).
    expected = -(table["advantage"] * table["tokens"]).sum() / table["tokens"].sum()
    assert result.loss == pytest.approx(expected, abs=1e-5)
    if table["reward"].nunique() > 1:  # a group with spread: the step had a gradient to follow
        assert result.loss_after < result.loss
        assert not torch.equal(next(model.get_decoder().layers[-1].parameters()), top)
    assert torch.equal(model.get_input_embeddings().weight, embeddings)  # below the trained layers: untouched
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert result.prompt.endswith("<answer>[")  # the compact template's prefill
