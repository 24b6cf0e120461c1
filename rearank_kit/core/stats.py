"""Paired comparisons with intervals, for per-set scores grouped by query.

A held-out evaluation scores many augmented *sets*, but the sets of one query are not independent:
they share the query and draw from the same 100 passages. An interval that resamples sets alone
would be too narrow, so both functions here treat the query as the unit:

* ``cluster_bootstrap``: a two-level bootstrap. Draw queries with replacement, then, within each
  drawn query, its sets with replacement; the statistic is the mean over all drawn sets. The 95%
  interval is the 2.5th and 97.5th percentiles of that statistic.
* ``cluster_sign_flip``: a randomisation test of "the mean paired difference is 0": under that
  hypothesis the sign of each query's differences is arbitrary, so the p-value is the share of
  random sign flips (one per query) whose mean is at least as far from 0 as the observed one.

    from rearank_kit.core.stats import compare_paired
    compare_paired(diffs, groups)  # {"mean", "ci95", "p_value", "sets", "queries", ...}
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_RESAMPLES = 10_000


def _grouped(values: Sequence[float], groups: Sequence[str]):
    import numpy as np

    if len(values) != len(groups):
        raise ValueError(f"{len(values)} values but {len(groups)} group labels")
    if not len(values):
        raise ValueError("no values to compare")
    by_group: dict[str, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        by_group.setdefault(str(g), []).append(float(v))
    return [np.asarray(v, dtype=float) for _, v in sorted(by_group.items())]


def cluster_bootstrap(values: Sequence[float], groups: Sequence[str], resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of the mean of ``values``, resampling groups, then members."""
    import numpy as np

    clusters = _grouped(values, groups)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for b in range(resamples):
        picked = rng.integers(0, len(clusters), size=len(clusters))
        total, count = 0.0, 0
        for i in picked:
            c = clusters[i]
            draw = c[rng.integers(0, len(c), size=len(c))]
            total += draw.sum()
            count += len(c)
        means[b] = total / count
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def cluster_sign_flip(values: Sequence[float], groups: Sequence[str], resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> float:
    """Two-sided p-value of "mean difference = 0", flipping the sign of whole groups at random."""
    import numpy as np

    clusters = _grouped(values, groups)
    sums = np.array([c.sum() for c in clusters])
    n = sum(len(c) for c in clusters)
    observed = abs(sums.sum() / n)
    if observed == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(resamples, len(clusters)))
    flipped = np.abs(signs @ sums / n)
    # +1 on both sides: the observed labelling is one of the possible ones (never p = 0).
    return float((np.sum(flipped >= observed - 1e-12) + 1) / (resamples + 1))


def compare_paired(diffs: Sequence[float], groups: Sequence[str], resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0) -> dict:
    """Mean of paired differences, its query-level bootstrap 95% interval and sign-flip p-value."""
    import numpy as np

    low, high = cluster_bootstrap(diffs, groups, resamples, seed)
    return {
        "mean": float(np.mean(diffs)),
        "ci95": [low, high],
        "p_value": cluster_sign_flip(diffs, groups, resamples, seed),
        "sets": len(diffs),
        "queries": len(set(map(str, groups))),
        "method": f"two-level bootstrap over queries then sets ({resamples} resamples); sign-flip test by query",
    }


def format_interval(stat: dict, digits: int = 4) -> str:
    """One ``compare_paired`` result as text: ``+0.0123 (95% CI -0.0040 to +0.0290, p = 0.14)``."""
    low, high = stat["ci95"]
    return f"{stat['mean']:+.{digits}f} (95% CI {low:+.{digits}f} to {high:+.{digits}f}, p = {stat['p_value']:.3g})"


__all__ = ["cluster_bootstrap", "cluster_sign_flip", "compare_paired", "format_interval", "DEFAULT_RESAMPLES"]
