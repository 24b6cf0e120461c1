"""Supervised baselines of the scored policy: what the grades alone teach a head on the same states.

The scored policy is trained by GRPO from the reward alone. To know what that is worth, the kit
measures the same head trained with the grades directly, and the model's own zero-shot answer:

* ``fit_probe``: a ridge regression of each passage's grade on its standardised state (a *linear
  probe*), added to the first stage's z-scored score: s = prior + c * (w . x), with c chosen so
  that the probe's scores spread within a query as much as the prior's (one, by construction of a
  z-score). The ridge strength is chosen on validation queries by the caller.
* ``yes_no_policy``: the language model's own next-token preference, logit(" Yes") - logit(" No"),
  after the pair prompt's "Answer:". That difference is linear in the last layer's (normed) state,
  so it is a head too: w = E[" Yes"] - E[" No"] of the output embedding, read from layer L = the
  model's depth. Zero-shot: nothing is fitted but its scale.

The supervised ListNet warm-up of GRPO runs is ``scored.ScoredConfig.warmup_steps``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rearank_kit.core.errors import KitError
from rearank_kit.rank.scored import ScoredPolicy, with_weights


def within_query_spread(scores_by_query: Sequence[np.ndarray]) -> float:
    """The mean standard deviation of scores within a query's list: the scale that makes a head's
    scores comparable with a z-scored prior."""
    spreads = [float(np.std(s)) for s in scores_by_query if len(s) > 1]
    mean = float(np.mean(spreads)) if spreads else 0.0
    return mean if mean > 1e-12 else 1.0


def fit_probe(policy: ScoredPolicy, features: np.ndarray, grades: np.ndarray, groups: Sequence[np.ndarray],
              alpha: float) -> ScoredPolicy:
    """Ridge regression of ``grades`` on ``features`` (standardised states, one row per pair of the
    training queries), scaled by ``within_query_spread`` over ``groups`` (each query's row indices)
    and added to the prior with weight 1. Closed form: w = (X'X + alpha I)^-1 X'(y - mean y)."""
    if alpha <= 0:
        raise KitError(f"the ridge strength alpha must be above 0, got {alpha}")
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(grades, dtype=np.float64)
    w = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y - y.mean()))
    spread = within_query_spread([x[g] @ w for g in groups])
    return with_weights(policy, w / spread, 1.0, method="ridge-probe", alpha=float(alpha))


def yes_no_policy(policy: ScoredPolicy, yes_minus_no: np.ndarray, spread: float, prior_weight: float = 1.0) -> ScoredPolicy:
    """The zero-shot Yes/No score as a head on the last layer's states: w = (E_yes - E_no) * scale
    / spread, so that ``features`` (which standardise) give back the raw logit difference / spread."""
    if policy.layers != (policy.layers[-1],):
        raise KitError(f"the Yes/No head reads one layer (the model's last), not {list(policy.layers)}")
    w = np.asarray(yes_minus_no, dtype=np.float64) * policy.scale / spread
    return with_weights(policy, w, prior_weight, method="yes-no-zero-shot")


def yes_no_direction(model: str) -> np.ndarray:
    """E[" Yes"] - E[" No"] of the model's output embedding (its LM head): the logit difference of
    the two answers is this vector dotted with the last layer's state."""
    from rearank_kit.rank.policy import load_hf_model

    lm, tokenizer = load_hf_model(model)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (" Yes", " No")]
    if any(len(i) != 1 for i in ids):
        raise KitError(f"{model}: ' Yes' or ' No' is not one token; the zero-shot head needs single tokens")
    weight = lm.get_output_embeddings().weight.detach().double().numpy()
    return weight[ids[0][0]] - weight[ids[1][0]]
