"""What a listwise policy prefers first: its probability of naming each passage at the top.

A greedy evaluation (``evaluate_sets``) shows what a model *does*; on a small model it hides what
the model *leans towards*: if passage [2] gets 42% of the probability everywhere, greedy decoding
answers [2] whatever the passages say, even when the rest of the distribution follows relevance.
For a prompt whose reply is prefilled up to the first identifier (``compact``: ``<answer>[``),
one forward pass gives the distribution over the first passage named, and three numbers say how
much of it follows the judged grades:

* ``lift``: the expected grade of the first pick under the distribution, minus the set's mean
  grade (0 for a pick that ignores the passages, positive when relevant passages get more mass);
* ``correlation``: Pearson's r between the probabilities and the grades, per set (sets whose
  passages share one grade are left out);
* ``argmax_is_best``: how often the most likely first pick has the set's highest grade;
* ``expected_gain``: the nDCG@10 gain over the given order that a sampled first pick earns on
  average (the ``cpu-firstpick`` training reward, exactly, without sampling noise);

and ``position_mass`` shows the position bias: the mean probability of each position.

The kit's CPU recipe search used these on validation sets to rank settings in minutes (one
forward pass a set, no generation), and to see a run drift towards one position long before its
greedy evaluation changed (``docs/TRAINING.md``).

    from rearank_kit.analysis.first_pick import first_pick_stats
    first_pick_stats("runs/grpo/checkpoint-20", "runs/aug", split="validation", per_query=20)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError


def first_pick_stats(model: Any, sets_dir: str | os.PathLike, split: str = "validation", per_query: int | None = 20,
                     template: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """The first-pick statistics of ``model`` (anything ``policy.resolve_policy`` takes) on a split."""
    import numpy as np

    from rearank_kit.evaluation.heldout import load_split

    rows = load_split(sets_dir, split, per_query)
    policy, tmpl, probabilities = _first_pick_probabilities(model, rows, template, device)
    width = len(rows[0]["docids"])
    lifts, correlations, hits, expected, mass = [], [], [], [], np.zeros(width)
    for row, p in zip(rows, probabilities, strict=True):
        grades = np.asarray(row["grades"], dtype=float)
        mass += p
        expected.append(float(p @ np.asarray(pick_rewards(row, "difference", tmpl.prefill))))
        lifts.append(float(p @ grades - grades.mean()))
        if grades.std() > 0:
            correlations.append(float(np.corrcoef(p, grades)[0, 1]))
        hits.append(float(grades[p.argmax()] == grades.max()))
    return {
        "model": policy.name, "template": tmpl.name, "split": split, "sets": len(rows),
        "lift": float(np.mean(lifts)), "lift_se": float(np.std(lifts) / np.sqrt(len(lifts))),
        "correlation": float(np.mean(correlations)) if correlations else None,
        "argmax_is_best": float(np.mean(hits)), "expected_gain": float(np.mean(expected)),
        "expected_gain_se": float(np.std(expected) / np.sqrt(len(expected))), "position_mass": [round(float(m), 3) for m in mass / len(rows)],
    }  # fmt: skip


def _first_pick_probabilities(model: Any, rows: list[dict], template: str | None, device: str = "cpu"):
    """(policy, template, [probabilities of naming each passage first, one array per row])."""
    import torch

    from rearank_kit.rank.policy import load_hf_model, resolve_policy
    from rearank_kit.rank.settings import model_template

    policy = resolve_policy(model, template, warn=False)
    tmpl = model_template(str(model), template)
    if not tmpl.prefill.endswith("["):
        raise KitError(f"template {tmpl.name!r}: its reply is not prefilled up to the first identifier (prefill "
                       f"{tmpl.prefill!r}); first-pick probabilities need one that ends with '['")
    width = len(rows[0]["docids"])
    model_obj, tokenizer = load_hf_model(policy.base, device=device, adapter=policy.adapter)
    ids = [tokenizer.convert_tokens_to_ids(str(i)) for i in range(1, width + 1)]
    if len(set(ids)) != width or tokenizer.unk_token_id in ids:
        raise KitError(f"the tokenizer of {policy.base} has no single token for each of 1..{width}")
    out = []
    for row in rows:
        text = tmpl.render(tokenizer, row["query"], row["texts"])
        encoded = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids.to(model_obj.device)
        with torch.inference_mode():
            logits = model_obj(encoded, logits_to_keep=1).logits[0, -1]
        out.append(torch.softmax(logits[ids].float(), -1).cpu().numpy())
    return policy, tmpl, out


def pick_rewards(row: dict, mode: str = "difference", prefill: str = "<answer>[") -> list[float]:
    """The rank reward of naming each passage first (the others keep their order, lenient parsing):
    what a one-token policy (the ``cpu-firstpick`` preset) earns for each choice on this set."""
    from rearank_kit.train.rewards import reward_breakdown

    return [reward_breakdown(str(i), row["grades"], row["ideal_grades"], mode, lenient=True, prefill=prefill)["rank"]
            for i in range(1, len(row["grades"]) + 1)]


def no_learning_band(model: Any, run_dir: str | os.PathLike, sets_dir: str | os.PathLike, mode: str = "difference",
                     draws: int = 2000, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95), seed: int = 0,
                     template: str | None = None) -> list[dict[str, Any]]:
    """What a one-token run's per-step mean rank reward looks like when nothing is learned.

    For every step of ``run_dir`` (its ``completions.jsonl`` names each step's sets and group
    size), ``model`` (the untrained base) samples the same number of first picks on the same sets
    ``draws`` times; each draw's mean reward is one "step without learning". Returns one record per
    step: ``{"step", "expected", "q05", "q50", "q95"}`` (for the default quantiles). A trained
    run's curve that leaves this band and stays out has learned something the base model lacked;
    one that stays inside shows noise. The draws are over the passage identifiers only: the rare
    sampled token that names none (a reply that keeps the given order, reward 0) is left out.
    """
    import numpy as np

    from rearank_kit.core.files import iter_jsonl
    from rearank_kit.evaluation.heldout import load_split
    from rearank_kit.train.augment import rotated

    run_dir = Path(run_dir)
    steps: dict[int, dict[str, int]] = {}
    for c in iter_jsonl(run_dir / "completions.jsonl"):
        group = steps.setdefault(int(c["step"]), {})
        group[c["set_id"]] = group.get(c["set_id"], 0) + 1
    if not steps:
        raise KitError(f"{run_dir / 'completions.jsonl'}: missing or empty; the band needs each step's sets")
    rows = {r["set_id"]: r for r in load_split(sets_dir, "train")}
    wanted = sorted({sid for group in steps.values() for sid in group})
    for sid in wanted:  # a rotate_sets run names rotation k of set S "S-r<k>" (augment.rotated)
        base, _, k = sid.rpartition("-r")
        if sid not in rows and base in rows and k.isdigit():
            rows[sid] = rotated(rows[base], int(k))
    missing = [sid for sid in wanted if sid not in rows]
    if missing:
        raise KitError(f"{sets_dir}: the train split lacks {len(missing)} sets of the run (e.g. {missing[0]}): "
                       "give the augment folder the run was trained on")
    _, tmpl, probabilities = _first_pick_probabilities(model, [rows[sid] for sid in wanted], template)
    prob = dict(zip(wanted, probabilities, strict=True))
    reward = {sid: np.asarray(pick_rewards(rows[sid], mode, tmpl.prefill)) for sid in wanted}
    rng = np.random.default_rng(seed)
    band = []
    for step in sorted(steps):
        totals, count = np.zeros(draws), 0
        for sid, n in steps[step].items():
            picks = rng.choice(len(prob[sid]), size=(draws, n), p=prob[sid] / prob[sid].sum())
            totals += reward[sid][picks].sum(axis=1)
            count += n
        means = totals / count
        expected = sum(n * float(prob[sid] @ reward[sid]) for sid, n in steps[step].items()) / count
        band.append({"step": step, "expected": expected,
                     **{f"q{round(q * 100):02d}": float(np.quantile(means, q)) for q in quantiles}})
    return band


__all__ = ["first_pick_stats", "no_learning_band", "pick_rewards"]
