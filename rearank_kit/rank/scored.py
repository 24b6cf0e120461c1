"""The scored listwise policy: a score per passage, and the Plackett-Luce rankings those scores define.

The generative policy (``windows.py``) ranks by writing ``[3] > [1] > ...``: the language model must
read and compare passages in its text output, which a 135M model cannot learn on a CPU
(``docs/TRAINING.md``). The scored policy asks the same model a smaller question. Each passage i of
a set gets a score

    s_i = a * prior_i + w . x_i

where ``prior_i`` is the first stage's own opinion (the BM25 score, z-scored within the query's
candidate list: ``first_stage_prior``), ``x_i`` the model's hidden state for the pair (query,
passage i), read at the last token of a pair prompt after ``layers`` (``states.py``) and
standardised, and ``w`` a learned head. A ranking is drawn from the Plackett-Luce distribution over
``s / T`` (``train/grpo.py``): the first passage with probability softmax(s / T), the next among
the rest, and so on. Its log-probability is exact, so GRPO's ratio and clipped loss are exact too.
The greedy ranking sorts by score.

With ``w = 0`` and ``a > 0`` the policy reproduces the first-stage order: training starts from
BM25 and learns a correction, rather than from a uniform policy that must first rediscover BM25.

How it departs from REARANK: no reasoning and no answer text (the reward is the paper's, on the
ranking alone), the language model is frozen (only ``w``, and ``a`` when learned, change), and one
score per passage means one model call per passage, not per window: a list of any length is
ranked at once, without sliding windows.

A trained policy is a folder: ``scored_policy.json`` (model, pair prompt and hash, layers, prior,
``a``, temperature) and ``head.npz`` (``w`` and the standardisation), small enough to commit.

    from rearank_kit.rank.scored import load_scored_policy
    policy = load_scored_policy("data/runs/scored-grpo-dl21/final")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import read_json, write_json

SCORED_RECORD = "scored_policy.json"
HEAD_FILE = "head.npz"
PRIORS = ("bm25", "rank")


# --- the first stage's opinion ----------------------------------------------------------------------


def first_stage_prior(scores: Sequence[float], kind: str = "bm25") -> np.ndarray:
    """Each candidate's prior, in list order: ``bm25`` the first-stage scores z-scored within the
    list; ``rank`` minus the rank, z-scored (for first stages whose scores mean nothing across
    queries). A list whose scores are all equal gives zeros."""
    if kind not in PRIORS:
        raise KitError(f"prior must be one of {', '.join(PRIORS)}, got {kind!r}")
    values = np.asarray(scores, dtype=np.float64) if kind == "bm25" else -np.arange(len(scores), dtype=np.float64)
    if len(values) == 0:
        return values
    std = values.std()
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


# --- the policy ---------------------------------------------------------------------------------


@dataclass
class ScoredPolicy:
    """``s = a * prior + w . (state - mean) / scale``; see the module docstring."""

    model: str  # the language model whose states are read (preset, folder or hub id)
    prompt: str  # pair prompt name (core/templates/pairs/) and its hash: a cache for another is refused
    prompt_hash: str
    layers: tuple[int, ...]
    prior: str = "bm25"
    prior_weight: float = 1.0  # a
    temperature: float = 1.0  # T of the sampling distribution (training); the greedy ranking ignores it
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per feature, from the training states
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    record: dict[str, Any] = field(default_factory=dict)  # how it was trained (run, steps, data), kept on save

    @property
    def dim(self) -> int:
        return len(self.w)

    def features(self, states: np.ndarray) -> np.ndarray:
        """``[n, layers, hidden]`` states -> ``[n, features]`` standardised inputs of the head."""
        flat = np.asarray(states, dtype=np.float64).reshape(len(states), -1)
        if flat.shape[1] != self.dim:
            raise KitError(f"states of {flat.shape[1]} numbers per pair, but the head reads {self.dim} "
                           f"(layers {list(self.layers)}): a cache of other layers?")
        return (flat - self.mean) / self.scale

    def scores(self, states: np.ndarray, prior: np.ndarray) -> np.ndarray:
        return self.prior_weight * np.asarray(prior, dtype=np.float64) + self.features(states) @ self.w

    def order(self, states: np.ndarray, prior: np.ndarray) -> list[int]:
        """The greedy ranking: positions in the given list, best first (ties keep the given order)."""
        s = self.scores(states, prior)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))

    # --- on disk ---------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (HEAD_FILE + ".tmp.npz")
        np.savez(tmp, w=self.w.astype(np.float32), mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32))
        os.replace(tmp, folder / HEAD_FILE)
        write_json(folder / SCORED_RECORD, {
            "kind": "scored-policy", "model": self.model, "prompt": self.prompt, "prompt_hash": self.prompt_hash,
            "layers": list(self.layers), "prior": self.prior, "prior_weight": float(self.prior_weight),
            "temperature": float(self.temperature), "features": self.dim, **self.record,
        })  # fmt: skip
        return folder


def start_policy(model: str, prompt: Any, layers: Sequence[int], train_states: np.ndarray, prior: str = "bm25",
                 prior_weight: float = 1.0, temperature: float = 1.0) -> ScoredPolicy:
    """The policy before training: ``w = 0`` (the first-stage order), standardised on ``train_states``
    (``[pairs, layers, hidden]`` of the training queries only)."""
    flat = np.asarray(train_states, dtype=np.float64).reshape(len(train_states), -1)
    scale = flat.std(axis=0)
    return ScoredPolicy(
        model=str(model), prompt=prompt.name, prompt_hash=prompt.hash, layers=tuple(layers), prior=prior,
        prior_weight=prior_weight, temperature=temperature, mean=flat.mean(axis=0),
        scale=np.where(scale > 1e-6, scale, 1.0), w=np.zeros(flat.shape[1]),
    )  # fmt: skip


def is_scored_policy(folder: str | os.PathLike) -> bool:
    return (Path(folder) / SCORED_RECORD).is_file()


def load_scored_policy(folder: str | os.PathLike) -> ScoredPolicy:
    """A trained scored policy from its folder (``scored_policy.json`` + ``head.npz``)."""
    folder = Path(folder)
    record = read_json(folder / SCORED_RECORD)
    missing = [k for k in ("model", "prompt", "prompt_hash", "layers", "prior", "prior_weight") if k not in record]
    if record.get("kind") != "scored-policy" or missing:
        raise KitError(f"{folder / SCORED_RECORD}: not a scored policy record"
                       + (f" (missing {', '.join(missing)})" if missing else ""))
    try:
        head = np.load(folder / HEAD_FILE)
        w, mean, scale = (head[k].astype(np.float64) for k in ("w", "mean", "scale"))
    except (OSError, KeyError, ValueError) as exc:
        raise KitError(f"{folder / HEAD_FILE}: not a readable head ({exc})") from None
    if not len(w) == len(mean) == len(scale):
        raise KitError(f"{folder / HEAD_FILE}: w, mean and scale differ in length")
    known = {"kind", "model", "prompt", "prompt_hash", "layers", "prior", "prior_weight", "temperature", "features"}
    return ScoredPolicy(
        model=str(record["model"]), prompt=str(record["prompt"]), prompt_hash=str(record["prompt_hash"]),
        layers=tuple(int(x) for x in record["layers"]), prior=str(record["prior"]),
        prior_weight=float(record["prior_weight"]), temperature=float(record.get("temperature", 1.0)),
        mean=mean, scale=scale, w=w, record={k: v for k, v in record.items() if k not in known},
    )  # fmt: skip


def trained_prompt(policy: ScoredPolicy, where: str | os.PathLike) -> Any:
    """The pair prompt ``policy`` was trained on, refused (naming ``where``) when its file has changed
    since: states of another prompt would feed the head features it never saw."""
    from rearank_kit.core.prompts import load_pair_prompt

    prompt = load_pair_prompt(policy.prompt)
    if prompt.hash != policy.prompt_hash:
        raise KitError(f"{where}: trained on prompt {policy.prompt}#{policy.prompt_hash}, which now hashes to "
                       f"{prompt.hash}: the prompt file changed since")
    return prompt


def rerank_scored(policy: ScoredPolicy, rankings: Sequence[Any], states: Any, top_k: int | None = None) -> list[Any]:
    """Each ranking's top ``top_k`` (all when None) reordered greedily by ``policy``'s scores, the
    rest below in first-stage order; candidates carry their score. ``states``: a ``StateCache``
    holding every (query, candidate) pair of the top k."""
    from rearank_kit.core.records import Candidate, Ranking

    out = []
    for r in rankings:
        head, tail = list(r.candidates[:top_k] if top_k else r.candidates), list(r.candidates[top_k:] if top_k else [])
        if not head:
            out.append(Ranking(r.query, tail))
            continue
        prior = first_stage_prior([c.score for c in r.candidates], policy.prior)[: len(head)]
        scores = policy.scores(states.matrix(r.query.qid, [c.docid for c in head], policy.layers), prior)
        order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
        ranked = [Candidate(head[i].docid, head[i].text, rank + 1, float(scores[i])) for rank, i in enumerate(order)]
        low = min(scores) if len(scores) else 0.0
        ranked += [Candidate(c.docid, c.text, len(ranked) + j + 1, float(low - 1 - j)) for j, c in enumerate(tail)]
        out.append(Ranking(r.query, ranked))
    return out


def with_weights(policy: ScoredPolicy, w: np.ndarray, prior_weight: float | None = None, **record: Any) -> ScoredPolicy:
    """A copy with a new head (and prior weight), the training record extended."""
    return replace(policy, w=np.asarray(w, dtype=np.float64),
                   prior_weight=policy.prior_weight if prior_weight is None else float(prior_weight),
                   record={**policy.record, **record})  # fmt: skip
