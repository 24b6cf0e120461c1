"""REARANK's reward: hand-worked values, properties, modes, strict/lenient, and TRL's contract."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rearank_kit.core.parsing import format_ranking
from rearank_kit.train.rewards import (
    DEFAULT_WEIGHTS,
    MODES,
    completion_text,
    format_answer_reward,
    format_think_answer_reward,
    make_reward_funcs,
    rank_reward,
    reward_breakdown,
)

# The set: passages [1]..[5] in their initial order have grades 0, 3, 1, 0, 2. The query has two
# more judged passages outside the set (grades 2 and 1) and two judged non-relevant ones, so the
# ideal DCG comes from all of them: [3, 2, 2, 1, 1, 0, 0].
#
# Discounts 1/log2(i+1) for positions 1..5: 1, 0.63093, 0.5, 0.43068, 0.38685.
# IDCG@10 = 3*1 + 2*0.63093 + 2*0.5 + 1*0.43068 + 1*0.38685     = 6.07939
# initial [0,3,1,0,2]: 3*0.63093 + 1*0.5 + 2*0.38685             = 3.16649 -> S_init = 0.52086
# best    [3,2,1,0,0]: 3*1 + 2*0.63093 + 1*0.5                   = 4.76186 -> S_best = 0.78328
# S_best - S_init = 0.26242
GRADES = [0, 3, 1, 0, 2]
IDEAL = [3, 2, 2, 1, 1, 0, 0]
S_INIT, S_BEST = 0.52086, 0.78328
BEST = "[2] > [5] > [3] > [1] > [4]"


def think(answer: str) -> str:
    return f"<think>[2] is on topic; [5] partly.</think>\n<answer>{answer}</answer>"


CASES = [
    # label, completion, rank, format_think_answer, format_answer, total
    ("perfect", think(BEST), 1.0, 1, 1, 0.8 + 0.1 + 0.1),
    # reversed [2,0,1,3,0]: 2*1 + 1*0.5 + 3*0.43068 = 3.79203 -> S = 0.62375;
    # r = (0.62375 - 0.52086) / 0.26242 = 0.39210; total = 0.8 * 0.39210 + 0.2 = 0.51368
    ("reversed", think("[5] > [4] > [3] > [2] > [1]"), 0.39210, 1, 1, 0.51368),
    ("initial order", think("[1] > [2] > [3] > [4] > [5]"), 0.0, 1, 1, 0.2),
    # worse [0,0,1,2,3]: 1*0.5 + 2*0.43068 + 3*0.38685 = 2.52191 -> S = 0.41483;
    # r = (0.41483 - 0.52086) / 0.26242 = -0.40404 (not clipped); total = 0.8 * -0.40404 + 0.2 = -0.12323
    ("worse than initial", think("[4] > [1] > [3] > [5] > [2]"), -0.40404, 1, 1, -0.12323),
    ("missing think", f"<answer>{BEST}</answer>", 1.0, 0, 1, 0.9),
    # strict: no answer block, no rank reward (the ids inside <think> are not an answer)
    ("missing answer", f"<think>{BEST}</think>", 0.0, 0, 0, 0.0),
    ("extra text around", f"Sure! {think(BEST)} Hope this helps.", 1.0, 0, 1, 0.9),
    # duplicates: [2] [5] read, [1] [3] [4] appended -> grades [3,2,0,1,0]:
    # 3*1 + 2*0.63093 + 1*0.43068 = 4.69254 -> S = 0.77188; r = (0.77188 - 0.52086) / 0.26242 = 0.95655
    # the answer still has the form [a] > [b] > ... (format2 checks form, not completeness)
    ("duplicates", think("[2] > [2] > [5]"), 0.95655, 1, 1, 0.8 * 0.95655 + 0.2),
    ("truncated", "<think>[2] first</think>\n<answer>[2] > [5] > [3", 0.0, 0, 0, 0.0),
    # bare numbers are read ("2", "5": same order as the duplicates case): r = 0.95655, but not the form
    ("prose answer", think("passage 2 then passage 5"), 0.95655, 1, 0, 0.8 * 0.95655 + 0.1),
    ("empty", "", 0.0, 0, 0, 0.0),
]


@pytest.mark.parametrize("label, completion, rank, fmt1, fmt2, total", CASES, ids=[c[0] for c in CASES])
def test_hand_worked_table(label, completion, rank, fmt1, fmt2, total):
    r = reward_breakdown(completion, GRADES, IDEAL)
    assert r["rank"] == pytest.approx(rank, abs=1e-4)
    assert r["format_think_answer"] == fmt1
    assert r["format_answer"] == fmt2
    assert r["total"] == pytest.approx(total, abs=1e-4)
    assert r["s_init"] == pytest.approx(S_INIT, abs=1e-4)
    assert r["s_best"] == pytest.approx(S_BEST, abs=1e-4)


def test_ideal_permutation_gives_exactly_one():
    assert reward_breakdown(think(BEST), GRADES, IDEAL)["rank"] == 1.0
    # passages [1] and [4] both have grade 0: swapping them is still a best ordering
    assert reward_breakdown(think("[2] > [5] > [3] > [4] > [1]"), GRADES, IDEAL)["rank"] == 1.0


def test_already_best_set_gives_zero_not_a_division_by_zero():
    r = reward_breakdown(think("[2] > [1]"), [3, 0], [3, 2])
    assert r["s_best"] == r["s_init"] and r["rank"] == 0.0
    assert reward_breakdown(think("[1] > [2]"), [0, 0], [])["rank"] == 0.0  # nothing judged relevant


def test_modes():
    reversed_ = think("[5] > [4] > [3] > [2] > [1]")
    got = {m: reward_breakdown(reversed_, GRADES, IDEAL, mode=m)["rank"] for m in MODES}
    assert got["normalized"] == pytest.approx(0.39210, abs=1e-4)
    assert got["difference"] == pytest.approx(0.62375 - 0.52086, abs=1e-4)  # S_new - S_init
    assert got["raw"] == pytest.approx(0.62375, abs=1e-4)  # S_new
    with pytest.raises(ValueError, match="unknown reward mode"):
        reward_breakdown(reversed_, GRADES, IDEAL, mode="clipped")


def test_lenient_scores_repaired_rankings_and_bare_answers():
    truncated = "<think>[2] first</think>\n<answer>[2] > [5] > [3"
    strict = reward_breakdown(truncated, GRADES, IDEAL)
    lenient = reward_breakdown(truncated, GRADES, IDEAL, lenient=True)
    assert strict["rank"] == 0.0 and not strict["ranked"]
    # "[3" lost its closing bracket: [2] > [5] are read, then [1] [3] [4] appended -> as for duplicates
    assert lenient["rank"] == pytest.approx(0.95655, abs=1e-4) and lenient["ranked"]
    bare = f"<answer>{BEST}</answer>"
    assert reward_breakdown(bare, GRADES, IDEAL)["format_think_answer"] == 0.0
    assert reward_breakdown(bare, GRADES, IDEAL, lenient=True)["format_think_answer"] == 1.0
    # lenient reads the ranking from anywhere, e.g. a reply with no tags at all
    assert reward_breakdown(BEST, GRADES, IDEAL, lenient=True)["rank"] == 1.0
    assert reward_breakdown(BEST, GRADES, IDEAL)["rank"] == 0.0


def test_prefill_is_prepended_before_parsing():
    continuation = "2] > [5] > [3] > [1] > [4]</answer>"  # the prompt ended with "<answer>["
    r = reward_breakdown(continuation, GRADES, IDEAL, prefill="<answer>[", lenient=True)
    assert (r["rank"], r["format_think_answer"], r["format_answer"]) == (1.0, 1.0, 1.0)
    assert reward_breakdown(continuation, GRADES, IDEAL)["format_answer"] == 0.0


def test_weights():
    r = reward_breakdown(think(BEST), GRADES, IDEAL, weights=(1.0, 0.0, 0.5))
    assert r["total"] == pytest.approx(1.5)
    with pytest.raises(ValueError):
        reward_breakdown(think(BEST), GRADES, IDEAL, weights=(1.0,))


# --- properties ---------------------------------------------------------------------------------

grade_lists = st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=25)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), grades=grade_lists, extra=grade_lists, mode=st.sampled_from(MODES),
       lenient=st.booleans())
def test_any_text_gives_a_finite_reward_and_rank_at_most_one(text, grades, extra, mode, lenient):
    r = reward_breakdown(text, grades, grades + extra, mode, lenient=lenient)
    assert all(math.isfinite(r[k]) for k in ("rank", "format_think_answer", "format_answer", "total"))
    assert r["rank"] <= 1.0


@settings(max_examples=200, deadline=None)
@given(data=st.data(), grades=st.lists(st.integers(0, 3), min_size=1, max_size=20), extra=grade_lists)
def test_any_permutation_scores_at_most_one_and_a_best_one_exactly_one(data, grades, extra):
    order = data.draw(st.permutations(range(len(grades))))
    r = reward_breakdown(think(format_ranking(order)), grades, grades + extra)
    assert r["rank"] <= 1.0 and r["format_answer"] == 1.0
    best = sorted(range(len(grades)), key=lambda i: -grades[i])
    r_best = reward_breakdown(think(format_ranking(best)), grades, grades + extra)
    assert r_best["rank"] == (1.0 if r_best["s_best"] > r_best["s_init"] else 0.0)


@pytest.mark.parametrize("garbage", [None, 42, 3.5, b"[1] > [2]", ["x"], [{"no": "content"}], {"content": None}, object()])
def test_garbage_completions_never_raise(garbage):
    r = reward_breakdown(garbage, GRADES, IDEAL)
    assert math.isfinite(r["total"])


def test_bad_grades_are_a_data_error():
    with pytest.raises(ValueError, match="grades"):
        reward_breakdown("x", None, IDEAL)
    with pytest.raises(ValueError, match="ideal_grades"):
        reward_breakdown("x", GRADES, ["high"])


# --- TRL's contract -----------------------------------------------------------------------------


def test_trl_functions_take_strings_and_conversations_with_extra_kwargs():
    completions = [think(BEST), [{"role": "assistant", "content": think(BEST)}], "garbage", None]
    n = len(completions)
    kwargs = dict(prompts=["p"] * n, completion_ids=[[1]] * n, grades=[GRADES] * n, ideal_grades=[IDEAL] * n,
                  qid=["q"] * n, trainer_state=None, log_extra=lambda *a: None, log_metric=lambda *a: None)
    assert rank_reward(completions=completions, **kwargs) == [1.0, 1.0, 0.0, 0.0]
    assert format_think_answer_reward(completions=completions, **kwargs) == [1.0, 1.0, 0.0, 0.0]
    assert format_answer_reward(completions=completions, **kwargs) == [1.0, 1.0, 0.0, 0.0]
    # the format rewards need no grades
    assert format_answer_reward([think(BEST)]) == [1.0]
    with pytest.raises(ValueError, match="grades"):
        rank_reward([think(BEST)])


def test_conversational_content_forms():
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    assert completion_text(None) == ""


def test_make_reward_funcs_names_weights_pickling_and_total():
    funcs, weights = make_reward_funcs(mode="difference", lenient=True, prefill="<answer>[")
    assert weights == list(DEFAULT_WEIGHTS) == [0.8, 0.1, 0.1]
    names = [f.__name__ for f in funcs]
    assert names == ["rank_reward", "format_think_answer_reward", "format_answer_reward"]
    from trl.trainer.utils import get_callable_name  # how GRPOTrainer names them in its logs

    assert [get_callable_name(f) for f in funcs] == names
    completions = ["2] > [5] > [3] > [1] > [4]</answer>", "5] > [4]</answer>"]
    kw = dict(grades=[GRADES] * 2, ideal_grades=[IDEAL] * 2)
    for f in funcs:
        clone = pickle.loads(pickle.dumps(f))
        assert clone.__name__ == f.__name__ and clone(completions, **kw) == f(completions, **kw)
    # TRL's weighted sum of the three functions is reward_breakdown's total
    per_func = [f(completions, **kw) for f in funcs]
    for i, c in enumerate(completions):
        trl_total = sum(w * r[i] for w, r in zip(weights, per_func, strict=True))
        ours = reward_breakdown(c, GRADES, IDEAL, "difference", lenient=True, prefill="<answer>[")["total"]
        assert trl_total == pytest.approx(ours)
    assert pickle.loads(pickle.dumps(rank_reward)).__name__ == "rank_reward"
