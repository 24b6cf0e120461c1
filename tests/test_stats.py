"""Paired comparisons grouped by query: intervals and p-values that know sets of a query are alike."""

from __future__ import annotations

import numpy as np
import pytest

from rearank_kit.core.stats import cluster_bootstrap, cluster_sign_flip, compare_paired


def test_a_clear_gain_has_an_interval_above_zero_and_a_small_p():
    rng = np.random.default_rng(0)
    groups = [f"q{i}" for i in range(12) for _ in range(8)]
    diffs = 0.3 + rng.normal(0, 0.2, size=len(groups))
    result = compare_paired(diffs, groups, resamples=2000)
    assert result["ci95"][0] > 0 and result["p_value"] < 0.01
    assert result["sets"] == 96 and result["queries"] == 12
    assert result["ci95"][0] <= result["mean"] <= result["ci95"][1]


def test_no_difference_is_not_significant():
    rng = np.random.default_rng(1)
    groups = [f"q{i}" for i in range(12) for _ in range(8)]
    diffs = rng.normal(0, 0.2, size=len(groups))
    result = compare_paired(diffs, groups, resamples=2000)
    assert result["ci95"][0] < 0 < result["ci95"][1] and result["p_value"] > 0.05


def test_one_query_with_many_sets_is_one_unit_not_many():
    # 40 sets of one query gain a lot, four other queries lose a little: a set-level test would call
    # this a clear gain; resampling queries says we cannot tell (only five independent units).
    groups = ["big"] * 40 + [f"q{i}" for i in range(4) for _ in range(2)]
    diffs = [0.5] * 40 + [-0.05] * 8
    low, high = cluster_bootstrap(diffs, groups, resamples=4000)
    assert low < 0.1 < high
    # Flipping the one big query flips the whole mean: every sign pattern is as extreme as the one seen.
    assert cluster_sign_flip(diffs, groups, resamples=4000) > 0.05


def test_all_zero_differences_give_p_one():
    assert cluster_sign_flip([0.0] * 6, ["a", "a", "b", "b", "c", "c"]) == 1.0
    assert cluster_bootstrap([0.0] * 6, ["a", "a", "b", "b", "c", "c"], resamples=100) == (0.0, 0.0)


@pytest.mark.parametrize("values, groups", [([], []), ([1.0, 2.0], ["a"])])
def test_bad_input_is_refused(values, groups):
    with pytest.raises(ValueError):
        compare_paired(values, groups, resamples=10)
