"""The reward of each first pick: what the one-token ``cpu-firstpick`` policy earns for each choice."""

from __future__ import annotations

import pytest

from rearank_kit.analysis.first_pick import pick_rewards
from rearank_kit.train.rewards import rank_scores

# (grades in the given order, ideal grades of the query, the sign of naming each passage first)
CASES = [
    ([0, 0, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, +1, -1, -1]),  # only [3] is relevant; [2] shifts only an irrelevant [1]
    ([1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, -1, -1, -1, -1]),  # already best: every move loses
    ([0, 0, 0, 0, 2], [3, 2, 0, 0, 0], [0, 0, 0, 0, +1]),  # irrelevant picks above [5] only shift zeros
    ([2, 0, 3, 0, 0], [3, 2, 0, 0, 0], [0, -1, +1, -1, -1]),
]


@pytest.mark.parametrize(("grades", "ideal", "signs"), CASES)
def test_the_sign_of_each_pick(grades, ideal, signs):
    rewards = pick_rewards({"grades": grades, "ideal_grades": ideal})
    assert [0 if abs(r) < 1e-12 else (1 if r > 0 else -1) for r in rewards] == signs
    assert rewards[0] == 0.0  # naming the first passage first keeps the given order


def test_a_pick_earns_the_ndcg_gain_of_moving_that_passage_to_the_top():
    grades, ideal = [0, 1, 0, 2, 0], [3, 2, 1, 0, 0]
    for pick, reward in enumerate(pick_rewards({"grades": grades, "ideal_grades": ideal})):
        order = [pick] + [i for i in range(5) if i != pick]
        s_new, s_init, _ = rank_scores(order, grades, ideal)
        assert reward == pytest.approx(s_new - s_init)


def test_normalised_mode_divides_by_the_room_to_improve():
    grades, ideal = [0, 1, 0, 2, 0], [2, 1, 0, 0, 0]
    diff = pick_rewards({"grades": grades, "ideal_grades": ideal}, mode="difference")
    norm = pick_rewards({"grades": grades, "ideal_grades": ideal}, mode="normalized")
    _, s_init, s_best = rank_scores(list(range(5)), grades, ideal)
    assert norm == pytest.approx([d / (s_best - s_init) for d in diff])
