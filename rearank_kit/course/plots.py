"""The pictures the notebooks draw: ranks before and after, sliding windows, the reward over every
ordering, one group's advantages, the reward spread per step, per-query scatter, length vs quality.

Every ``plot_*`` takes an optional ``ax`` (a new figure otherwise) and returns the Axes; the data
behind a picture comes from a plain function next to it (``reward_landscape``,
``reward_spread``, ``rerank_ceiling``) so that a notebook can print the numbers too. Grades are
coloured alike everywhere (``GRADE_COLOURS``: grey 0, ochre 1, light green 2, dark green 3).
matplotlib, pandas and scipy are imported inside the functions.

    from rearank_kit.course import plots
    plots.plot_rank_shift(bm25_docids, reranked_docids, judgments)
    plots.plot_windows(100, 20, 10)
    plots.plot_reward_landscape(plots.reward_landscape([0, 3, 0, 1, 2], [3, 2, 2, 1, 1]))
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence

GRADE_COLOURS = {0: "#b0b0b0", 1: "#d4a017", 2: "#6cc24a", 3: "#1a7f37"}


def _ax(ax, size=(7, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)[1]


def _grade_legend(ax, grades: Sequence[int]) -> None:
    from matplotlib.lines import Line2D

    shown = sorted(set(int(g) for g in grades))
    ax.legend([Line2D([0], [0], color=GRADE_COLOURS.get(g, "black"), lw=3) for g in shown],
              [f"grade {g}" for g in shown], fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # fmt: skip


# --- one query: ranks before and after ----------------------------------------------------------


def plot_rank_shift(before: Sequence[str], after: Sequence[str], judgments: Mapping[str, int], ax=None,
                    labels=("BM25", "reranked"), top: int | None = None):
    """A line per passage from its rank in ``before`` to its rank in ``after`` (1 at the top),
    coloured by its judged grade: good reranking makes the green lines climb. ``top``: only
    passages within the top ``top`` of either list."""
    ax = _ax(ax, (5, 6))
    rank_a = {d: i + 1 for i, d in enumerate(before)}
    rank_b = {d: i + 1 for i, d in enumerate(after)}
    docs = [d for d in before if d in rank_b and (top is None or min(rank_a[d], rank_b[d]) <= top)]
    for d in sorted(docs, key=lambda d: judgments.get(d, 0)):  # relevant lines drawn last, on top
        g = max(int(judgments.get(d, 0)), 0)
        ax.plot([0, 1], [rank_a[d], rank_b[d]], color=GRADE_COLOURS.get(g, "black"), lw=1 + g, marker="o", ms=3 + g)
    n = max([rank_a[d] for d in docs] + [rank_b[d] for d in docs] + [1])
    ax.set(xlim=(-0.15, 1.15), ylim=(n + 0.5, 0.5), xticks=[0, 1], xticklabels=list(labels), ylabel="rank")
    ax.set_title("Each passage's rank before and after")
    _grade_legend(ax, [judgments.get(d, 0) for d in docs])
    return ax


# --- sliding windows ----------------------------------------------------------------------------


def plot_windows(k: int = 100, window: int = 20, step: int = 10, judgments_in_order: Sequence[int] | None = None,
                 ax=None):
    """The windows that rerank the top ``k`` (``windows.window_positions``) as bars, one row per
    model call in the order they run (bottom window first); ``judgments_in_order``: the grade of
    each candidate in first-stage order, drawn as a strip under the bars."""
    from rearank_kit.rank.windows import window_positions

    positions = window_positions(k, window, step)
    ax = _ax(ax, (9, 0.45 * len(positions) + 1.5))
    for call, (start, end) in enumerate(positions, start=1):
        ax.barh(call, end - start, left=start, height=0.6, color="tab:blue", alpha=0.35 + 0.6 * call / len(positions))
        ax.text(end + 0.5, call, f"{start}-{end - 1}", va="center", fontsize="x-small")
    if judgments_in_order is not None:
        for pos, g in enumerate(judgments_in_order[:k]):
            if g and g > 0:
                ax.bar(pos + 0.5, 0.6, bottom=-0.2, width=0.9, color=GRADE_COLOURS.get(int(g), "black"))
    ax.set(xlim=(0, k + 6), ylim=(len(positions) + 0.8, -0.5), xlabel="position in the first-stage list",
           ylabel="model call", title=f"Sliding windows: top {k}, window {window}, step {step} ({len(positions)} calls)")  # fmt: skip
    ax.set_yticks(range(1, len(positions) + 1))
    return ax


# --- the reward over every ordering -------------------------------------------------------------


def reward_landscape(grades: Sequence[int], ideal_grades: Sequence[int], modes: Sequence[str] | None = None):
    """Every ordering of a small set (at most 8 passages): Kendall's tau between its order and
    the grades (1: sorted by grade, -1: reversed), and its rank reward in each mode."""
    import pandas as pd
    from scipy.stats import kendalltau

    from rearank_kit.train.rewards import MODES, rank_scores, rank_value

    if len(grades) > 8:
        raise ValueError(f"{len(grades)} passages have {math.factorial(len(grades)):,} orderings: use at most 8")
    rows = []
    for order in itertools.permutations(range(len(grades))):
        ordered = [grades[i] for i in order]
        tau = kendalltau(range(len(order), 0, -1), ordered).statistic if len(set(grades)) > 1 else math.nan
        scores = rank_scores(list(order), grades, ideal_grades)
        rows.append({"order": order, "tau": tau, "initial": list(order) == sorted(order),
                     **{mode: rank_value(*scores, mode=mode) for mode in (modes or MODES)}})  # fmt: skip
    return pd.DataFrame(rows)


def plot_reward_landscape(landscape, axes=None, modes: Sequence[str] | None = None):
    """One panel per reward mode: each ordering's reward against its Kendall's tau, the shown
    (initial) order marked. Returns the axes."""
    import matplotlib.pyplot as plt

    from rearank_kit.train.rewards import MODES

    modes = list(modes or [m for m in MODES if m in landscape.columns])
    if axes is None:
        axes = plt.subplots(1, len(modes), figsize=(4.5 * len(modes), 3.6), sharex=True)[1]
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    init = landscape[landscape["initial"]]
    for ax, mode in zip(axes, modes, strict=False):
        ax.scatter(landscape["tau"], landscape[mode], s=12, alpha=0.5, label="an ordering")
        ax.scatter(init["tau"], init[mode], s=80, marker="*", color="tab:red", label="as shown")
        ax.axhline(0, color="black", lw=0.6)
        ax.set(title=f"{mode} reward", xlabel="Kendall's tau with the grades", ylabel="r_rank")
    axes[0].legend(fontsize="small")
    return axes


# --- one group, and the spread per step ---------------------------------------------------------


def plot_group_advantages(rewards: Sequence[float], advantages: Sequence[float], labels=None, ax=None):
    """One GRPO group: each completion's reward (bars) and advantage (dots, right axis). Above the
    group's mean reward the advantage is positive: those completions are made more likely."""
    import numpy as np

    ax = _ax(ax, (7, 3.5))
    x = np.arange(len(rewards))
    colours = ["tab:green" if a > 0 else "tab:red" if a < 0 else "tab:gray" for a in advantages]
    ax.bar(x, rewards, color=colours, alpha=0.6)
    ax.axhline(float(np.mean(rewards)), color="black", ls="--", lw=1, label="group mean")
    twin = ax.twinx()
    twin.plot(x, advantages, "o", color="black")
    twin.axhline(0, color="grey", lw=0.5)
    twin.set_ylabel("advantage")
    ax.set(xticks=x, xticklabels=labels if labels is not None else [f"#{i + 1}" for i in x], ylabel="reward",
           title="One group: reward (bars) and advantage (dots)")  # fmt: skip
    ax.legend(fontsize="small", loc="lower left")
    return ax


def reward_spread(completions):
    """Per step, from completions (``completions.jsonl``, its path, or a DataFrame with ``step``,
    ``set_id``, ``reward``): each group's mean and std, the step's min and max."""
    import pandas as pd

    from rearank_kit.core.files import read_jsonl

    if isinstance(completions, (str, os.PathLike)):
        completions = pd.DataFrame(read_jsonl(completions).records)
    df = completions if isinstance(completions, pd.DataFrame) else pd.DataFrame(list(completions))
    groups = df.groupby(["step", "set_id"])["reward"].agg(["mean", "std", "min", "max", "size"]).reset_index()
    groups["std"] = groups["std"].fillna(0.0)
    return groups


def plot_reward_spread(completions, ax=None):
    """Every completion's reward per step (dots) and each group's range (a vertical line): a
    step whose groups are single points teaches nothing (zero spread)."""
    import pandas as pd

    from rearank_kit.core.files import read_jsonl

    if isinstance(completions, (str, os.PathLike)):
        completions = pd.DataFrame(read_jsonl(completions).records)
    groups = reward_spread(completions)
    ax = _ax(ax, (9, 3.5))
    ax.vlines(groups["step"], groups["min"], groups["max"], color="tab:blue", alpha=0.5, lw=3)
    ax.scatter(completions["step"], completions["reward"], s=10, color="black", zorder=3)
    zero = groups[groups["max"] - groups["min"] < 1e-9]
    ax.scatter(zero["step"], zero["mean"], marker="x", s=60, color="tab:red", zorder=4, label="zero spread")
    ax.set(xlabel="step", ylabel="reward", title="Reward per completion; a group's range as a bar")
    if len(zero):
        ax.legend(fontsize="small")
    return ax


# --- a benchmark: per query ---------------------------------------------------------------------


def rerank_ceiling(bench, k: int = 10):
    """Per query, the best nDCG@k any reordering of the first-stage candidates can reach (the
    candidates sorted by grade): what the recall of the first stage leaves a reranker, and the
    recall itself (share of the judged relevant passages among the candidates)."""
    import pandas as pd

    from rearank_kit.core.metrics import ndcg_at_k

    rows = {}
    for r in bench.rankings:
        judged = bench.qrels.get(r.query.qid)
        if not judged:
            continue
        best = sorted(r.docids, key=lambda d: -judged.get(d, 0))
        relevant = {d for d, g in judged.items() if g > 0}
        rows[r.query.qid] = {"ceiling": ndcg_at_k(best, judged, k),
                             "recall": len(relevant & set(r.docids)) / len(relevant) if relevant else math.nan}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_query_scatter(first_stage: Mapping[str, float], reranked: Mapping[str, float],
                       ceiling: Mapping[str, float] | None = None, ax=None, labels=("BM25", "reranked")):
    """Per query nDCG@10: first stage (x) against reranked (y); above the diagonal the reranker
    helped. With ``ceiling`` (``rerank_ceiling(...)["ceiling"]``) each query also gets a grey
    tick at the best a reranker could do with its candidates."""
    ax = _ax(ax, (5, 5))
    qids = [q for q in first_stage if q in reranked]
    xs, ys = [first_stage[q] for q in qids], [reranked[q] for q in qids]
    if ceiling is not None:
        cs = [ceiling.get(q, math.nan) for q in qids]
        ax.vlines(xs, xs, cs, color="lightgrey", lw=1, zorder=1)
        ax.scatter(xs, cs, marker="_", s=80, color="grey", zorder=2, label="ceiling (best order of the candidates)")
    colours = ["tab:green" if y > x else "tab:red" if y < x else "tab:gray" for x, y in zip(xs, ys, strict=True)]
    ax.scatter(xs, ys, c=colours, s=25, zorder=3)
    ax.plot([0, 1], [0, 1], color="black", lw=0.7)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=f"{labels[0]} nDCG@10", ylabel=f"{labels[1]} nDCG@10",
           title=f"Per query ({sum(y > x for x, y in zip(xs, ys, strict=True))} up, "
                 f"{sum(y < x for x, y in zip(xs, ys, strict=True))} down of {len(qids)})")  # fmt: skip
    if ceiling is not None:
        ax.legend(fontsize="x-small", loc="lower right")
    return ax


def plot_length_vs_quality(lengths: Sequence[float], quality: Sequence[float], ax=None, xlabel="reasoning (words)",
                           ylabel="nDCG@10 of the window"):
    """One dot per model call: reasoning length against the quality of its ranking, with
    Spearman's rho in the title (the paper found no clear relation on BRIGHT)."""
    import numpy as np
    from scipy.stats import spearmanr

    ax = _ax(ax, (6, 4))
    x, y = np.asarray(lengths, dtype=float), np.asarray(quality, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[keep], y[keep], s=18, alpha=0.7)
    rho = spearmanr(x[keep], y[keep]).statistic if keep.sum() > 2 and len(set(x[keep])) > 1 else math.nan
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"Length vs quality ({keep.sum()} calls, Spearman rho {rho:.2f})")
    return ax
