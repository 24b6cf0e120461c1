"""The rungs of the learning table: every way the kit turns the same frozen states into a ranking.

Each rung is a ``crossval.Method`` (a grid of settings to choose from on validation queries, and
how one setting is trained), run under the same protocol (``crossval.py``):

| rung | what the head learns from | grid |
| --- | --- | --- |
| ``yes-no`` | nothing: the model's own logit(" Yes") - logit(" No"), beside BM25 | none |
| ``probe`` | the grades, by ridge regression (a linear probe), beside BM25 | ridge strength |
| ``listnet`` | the grades, by ListNet on the augmented sets (the supervised warm-up alone) | steps |
| ``grpo`` | REARANK's reward alone, GRPO with sampled groups, from the first-stage order | ``GRPO_GRID`` |
| ``listnet+grpo`` | the warm-up, then GRPO | ``GRPO_GRID`` with a warm-up |

BM25 itself is the baseline every rung is compared with; the generative first-pick policy is
measured by its own commands (``docs/TRAINING.md``) because its training costs an hour a fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rearank_kit.evaluation.crossval import Method, QueryLists, Setting
from rearank_kit.rank.scored import ScoredPolicy
from rearank_kit.train.scored import ScoredConfig, set_batch, train_scored
from rearank_kit.train.supervised import fit_probe, within_query_spread, yes_no_policy

# The settings each fold chooses among on its validation queries. Fixed from validation scores only
# (DL21, each fold's model trained on its three training folds and scored on its validation fold,
# never on a test fold; docs/TRAINING.md "The scored policy"): sets of 20 passages (the paper's
# window) gave about +0.02 to +0.03 nDCG@10 over BM25 where sets of 5 gave about +0.01 to +0.02;
# Adam must move the 576 weights slowly (1e-4: 1e-2 fell 0.13 below BM25); layers 12 to 18 read
# about equally well.
GRPO_BASE = ScoredConfig(steps=300, sets_per_step=16, num_generations=8, temperature=1.0, learning_rate=1e-4,
                         eval_every=0)  # fmt: skip
GRPO_GRID = [replace(GRPO_BASE, learning_rate=lr, steps=steps) for lr, steps in ((1e-4, 300), (2e-4, 300), (1e-4, 600))]
PROBE_ALPHAS = [1e3, 1e4, 1e5]  # ridge strengths; 1e4 scored best on the validation folds, 10 and 100 hurt
LISTNET = [replace(GRPO_BASE, warmup_steps=300, steps=0, warmup_learning_rate=lr) for lr in (1e-4, 1e-3)]
LAYER_CHOICES = [(12,), (15,), (18,)]  # the layers a head may read: part of every grid, each fold chooses its own


def settings(layer_choices: Sequence[Sequence[int]], params: Sequence[Any]) -> list[Setting]:
    """Every (layers, parameters) pair: the grid a fold chooses from."""
    return [Setting(tuple(layers), p) for layers in layer_choices for p in params]


def _describe(config: ScoredConfig) -> dict[str, Any]:
    keys = ("steps", "learning_rate", "temperature", "num_generations", "sets_per_step", "beta", "weight_decay",
            "warmup_steps", "exact")
    return {k: getattr(config, k) for k in keys}


def grpo_method(rows_by_qid: Mapping[str, list[dict]], priors: Mapping[str, Mapping[str, float]], cache: Any,
                grid: Sequence[Setting] | None = None, name: str = "grpo") -> Method:
    """GRPO (or, with ``warmup_steps`` in the grid, a ListNet warm-up then GRPO) on the training
    queries' augmented sets (``rows_by_qid``)."""

    def train(start: ScoredPolicy, qids: Sequence[str], lists: QueryLists, config: ScoredConfig):
        rows = [r for q in qids for r in rows_by_qid.get(q, [])]
        run = train_scored(start, set_batch(rows, start, cache, priors), config)
        return run.policy, run.history

    return Method(name, list(grid or settings(LAYER_CHOICES, GRPO_GRID)), train, _describe)


def listnet_method(rows_by_qid: Mapping[str, list[dict]], priors: Mapping[str, Mapping[str, float]], cache: Any,
                   configs: Sequence[ScoredConfig] = tuple(LISTNET),
                   layer_choices: Sequence[Sequence[int]] = tuple(LAYER_CHOICES)) -> Method:
    """The supervised warm-up alone: ListNet steps on the sets' grades, no GRPO step after them."""
    grid = settings(layer_choices, configs)
    return replace(grpo_method(rows_by_qid, priors, cache, grid), name="listnet")


def probe_method(alphas: Sequence[float] = tuple(PROBE_ALPHAS),
                 layer_choices: Sequence[Sequence[int]] = tuple(LAYER_CHOICES)) -> Method:
    """A ridge probe on the grades of every pair of the training queries' lists, beside BM25."""

    def train(start: ScoredPolicy, qids: Sequence[str], lists: QueryLists, alpha: float):
        flat = lists.pairs(qids, start.layers)
        x = (flat.reshape(len(flat), -1) - start.mean) / start.scale
        y = np.concatenate([lists.grades[q] for q in qids])
        sizes = np.cumsum([0] + [len(lists.grades[q]) for q in qids])
        groups = [np.arange(sizes[i], sizes[i + 1]) for i in range(len(qids))]
        return fit_probe(start, x, y, groups, alpha), []

    return Method("probe", settings(layer_choices, alphas), train, lambda alpha: {"alpha": alpha})


def yes_no_method(direction: np.ndarray, last_layer: int, prior_weight: float = 1.0) -> Method:
    """The zero-shot Yes/No score (states of the model's ``last_layer``), scaled to the prior's spread
    on the training queries; ``prior_weight`` 1 beside BM25, 0 alone."""

    def train(start: ScoredPolicy, qids: Sequence[str], lists: QueryLists, _: Any):
        spread = within_query_spread([lists.features(q, (last_layer,)) @ direction for q in qids])
        return yes_no_policy(start, direction, spread, prior_weight), []

    name = "yes-no" if prior_weight else "yes-no-alone"
    return Method(name, [Setting((last_layer,))], train, lambda _: {"prior_weight": prior_weight})
