"""Checkers for the notebooks' implement-it-yourself exercises: the learner's function against the kit's.

Each ``check_*`` runs a learner's function on hand-picked edge cases, then on many generated
ones (hypothesis, derandomised, nothing written to disk), compares it with the kit's own
implementation, and returns a ``CheckResult`` that a notebook displays: *passed*, *not yet done*
(the stub still raises ``NotImplementedError`` or returns None), or *failed* with the smallest
failing case hypothesis found, what was expected, and a hint naming the likely mistake. A failing
or unfinished exercise never raises unless ``strict=True``: a notebook with empty stubs still runs
top to bottom in CI, and the solutions in ``notebooks/solutions/`` are checked with ``strict=True``
by ``tests/test_exercises.py``.

Where the hint comes from, first found wins:
1. the learner's code raised: what that exception means in this exercise (``KeyError`` in nDCG:
   an unjudged passage; ``math.log2(0)``: positions counted from 0; a division by zero: which one);
2. the answer has the wrong type or shape (a float where a tensor with a gradient is needed, a
   list of numbers where one number is, a 2-D tensor where a flat one is, pairs that are not pairs);
3. the answer equals a *variant*, the kit's function with one common mistake switched on
   (off-by-ones included); when several variants explain this case, the one that agrees with the
   learner's function on most of the hand-picked and probe cases is named;
4. a last look at the answer (the windows: how many there were against how many there should be).
The learner's function is called on copies of the inputs, so changing them in place cannot
confuse the comparison.

| checker | the learner writes | the kit's reference |
| --- | --- | --- |
| ``check_ndcg`` | ``fn(ranked_docids, judgments, k=10) -> float`` | ``metrics.ndcg_at_k`` |
| ``check_reward`` | ``fn(order, grades, ideal_grades) -> float`` (normalised r_rank) | ``rewards.rank_value`` |
| ``check_window_positions`` | ``fn(k, window, step) -> [(start, end), ...]`` | ``windows.window_positions`` |
| ``check_advantages`` | ``fn(rewards, num_generations) -> tensor`` | ``grpo.group_advantages`` |
| ``check_grpo_loss`` | ``fn(logps, old_logps, ref_logps, advantages, mask, epsilon, beta) -> tensor`` | ``grpo.grpo_loss`` |

One file per checker (``ndcg``, ``reward``, ``windows``, ``advantages``, ``loss``), each holding its
cases and its mistakes; ``checking`` is the engine they share (the result, the run, the comparisons).
"""

from rearank_kit.course.exercises.advantages import check_advantages
from rearank_kit.course.exercises.checking import MAX_EXAMPLES, CheckResult
from rearank_kit.course.exercises.loss import check_grpo_loss
from rearank_kit.course.exercises.ndcg import check_ndcg
from rearank_kit.course.exercises.reward import check_reward
from rearank_kit.course.exercises.windows import check_window_positions

__all__ = ["MAX_EXAMPLES", "CheckResult", "check_advantages", "check_grpo_loss", "check_ndcg", "check_reward",
           "check_window_positions"]
