# %% [markdown]
# # 02 · Reward design: why REARANK normalises its nDCG reward
#
# In GRPO the reward is the only thing the model is told about what it did. REARANK's reward for one
# completion on one set has three parts:
#
# - `r_rank = (S_new - S_init) / (S_best - S_init)`: how much of the achievable improvement the
#   completion's ranking reaches, where `S` is nDCG@10 of the set in an order (`S_init` as given,
#   `S_new` as ranked by the model, `S_best` sorted by grade). 1 is a best ordering, 0 "no change",
#   negative "made it worse";
# - `r_format1`: 1 if the reply is exactly `<think>...</think><answer>...</answer>`;
# - `r_format2`: 1 if the answer is exactly `[a] > [b] > ...`;
#
# combined as `0.8 r_rank + 0.1 r_format1 + 0.1 r_format2`. The paper compares this *normalised*
# rank reward with two simpler ones: the *raw* nDCG (`S_new`) and the *difference* (`S_new - S_init`).
#
# **What you will learn**
#
# - to compute every component by hand on a toy set, for well-formed and broken replies;
# - what raw, difference and normalised rewards reward, on sets easy and hard to improve;
# - what GRPO actually uses (advantages within a group), and where the three variants differ there;
# - strict vs lenient scoring, and the prefill of the `compact` prompt;
# - the reward functions TRL calls during training;
# - to write the normalised reward and GRPO's group advantages yourself, checked against the kit's.
#
# **Prerequisites**: notebooks 00 (nDCG@10) and 01 (augmented sets: grades, initial and best
# nDCG@10). GRPO is introduced here only as far as its advantages; notebooks 03 and 07 do the rest.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU | seconds (6 s measured) |
# | full | CPU | seconds (7 s measured) |
# | GPU | not needed | |
#
# No model is loaded; the rewards are pure functions (`rearank_kit/train/rewards.py`).

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from rearank_kit.course.notebook import describe_hardware, pick, run_folder

RUN = run_folder("02_reward_design")  # the only folder this notebook writes to
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. A toy set
#
# Five passages, shown to the model in this order, with judged grades `[0, 3, 0, 1, 2]`: passage `[2]`
# is perfect, `[5]` highly relevant, `[4]` related. The query has other judged passages outside the
# set (two more of grade 2 and 1, and unjudged ones), so even the best order of this set cannot
# reach nDCG@10 = 1: `ideal_grades` holds *all* the query's grades, as in trec_eval.

# %%
from rearank_kit.core.parsing import format_ranking
from rearank_kit.train.rewards import rank_scores

TOY = {"grades": [0, 3, 0, 1, 2], "ideal_grades": [3, 2, 2, 1, 1, 0, 0]}
best_order = sorted(range(5), key=lambda i: -TOY["grades"][i])
s_new, s_init, s_best = rank_scores(best_order, TOY["grades"], TOY["ideal_grades"])
print("best order of the set:", format_ranking(best_order))
print(f"S_init = {s_init:.4f}  (as shown)\nS_best = {s_best:.4f}  (sorted by grade; < 1: relevant passages are missing)")
print(f"room to improve: S_best - S_init = {s_best - s_init:.4f}")

# %% [markdown]
# ## 2. Worked examples
#
# `reward_breakdown(completion, grades, ideal_grades)` returns every component, the weighted total,
# and the three scores it used. By default scoring is *strict*: the ranking is scored only when the
# reply has a complete `<answer>...</answer>` block (otherwise a model could earn rank reward from
# passage numbers scattered through its reasoning without ever learning to answer).

# %%
from rearank_kit.train.rewards import reward_breakdown

completions = {
    "best order, well formed": "<think>[2] answers the query, [5] helps, [4] is related.</think><answer>[2] > [5] > [4] > [1] > [3]</answer>",
    "unchanged order": "<think>They all look similar.</think><answer>[1] > [2] > [3] > [4] > [5]</answer>",
    "worse than shown": "<think>[1] and [3] look best.</think><answer>[1] > [3] > [4] > [5] > [2]</answer>",
    "swaps the top two": "<think>[5] seems best.</think><answer>[5] > [2] > [4] > [1] > [3]</answer>",
    "best order, no think": "<answer>[2] > [5] > [4] > [1] > [3]</answer>",
    "words in the answer": "<think>ok</think><answer>The ranking is [2] > [5] > [4] > [1] > [3].</answer>",
    "partial ranking": "<think>[2] and [5] matter.</think><answer>[2] > [5]</answer>",
    "cut off while thinking": "<think>Passage [2] answers the query and [5]",
}
worked = pd.DataFrame({
    name: reward_breakdown(text, TOY["grades"], TOY["ideal_grades"]) for name, text in completions.items()
}).T.drop(columns="order")
worked.to_csv(RUN / "worked_examples.csv")
worked

# %% [markdown]
# Check a few rows by hand:
#
# - *best order*: `r_rank = (S_best - S_init) / (S_best - S_init) = 1`, both formats 1, total 1.0.
# - *unchanged*: `S_new = S_init`, so `r_rank = 0`; the total is the format reward alone, 0.2. This
#   "format floor" is what a model earns for answering well without improving anything: a training
#   run whose reward sits at 0.2 learns nothing about ranking (notebook 04).
# - *partial ranking*: the three passages it leaves out are appended in their shown order, so the
#   ranking still scores; the answer is in the `[a] > [b]` format, so it earns the format rewards.
# - *cut off*: no answer block, so strict mode scores no ranking (`ranked` False) and no format.
#
# ## 3. The paper's ablation: raw, difference, normalised
#
# Why divide by the room to improve? Consider three sets of the same kind, all ranked perfectly by
# the model:
#
# - **easy**: already almost in the best order;
# - **hard**: the relevant passages of the query are mostly *not* in the set, so even the best
#   order scores low;
# - **roomy**: the best passages are shown last.

# %%
from rearank_kit.train.rewards import MODES

SETS = {
    "easy": {"grades": [3, 2, 0, 1, 0], "ideal_grades": [3, 2, 1]},
    "hard": {"grades": [0, 0, 1, 0, 0], "ideal_grades": [3, 3, 2, 2, 1]},
    "roomy": {"grades": [0, 0, 1, 2, 3], "ideal_grades": [3, 2, 1]},
}
perfect = {  # the best order of each set, as a well-formed reply
    name: "<think>.</think><answer>" + format_ranking(sorted(range(5), key=lambda i: -s["grades"][i])) + "</answer>"
    for name, s in SETS.items()
}
ablation = pd.concat([
    pd.DataFrame({name: reward_breakdown(perfect[name], **s) for name, s in SETS.items()}).T[["s_init", "s_best"]],
    pd.DataFrame({mode: {name: reward_breakdown(perfect[name], **s, mode=mode)["rank"] for name, s in SETS.items()}
                  for mode in MODES}).add_prefix("r_rank "),
], axis=1)
ablation

# %% [markdown]
# Each model did the best possible job, yet:
#
# - the **raw** reward (`S_new`) pays 1.0 on the easy and the roomy set but 0.14 on the hard one: it
#   rewards the *set*, not the ranking. Within a GRPO group this offset cancels (the advantage subtracts the group mean),
#   but the spread of rewards still depends on how good the set happens to be;
# - the **difference** reward (`S_new - S_init`) pays according to how much room the set left: the
#   easy set earns almost nothing for a perfect answer;
# - the **normalised** reward gives 1 to every perfect ranking: the reward measures the model's job,
#   on a scale shared by all sets. The paper found it the best of the three.
#
# ### Every ordering of the toy set
#
# The toy set has 5 passages, so 120 orderings. Below, each ordering's rank reward under the three
# variants against Kendall's tau between its order and the grades (1: sorted by grade, -1:
# reversed); the star is the order as shown. All three rise with tau, but only the normalised
# reward puts the shown order at 0 and the best order at 1; note its scale below 0.

# %%
from rearank_kit.course.plots import plot_reward_landscape, reward_landscape

landscape = reward_landscape(TOY["grades"], TOY["ideal_grades"])
landscape_axes = plot_reward_landscape(landscape)
landscape[list(MODES)].describe().round(3)

# %% [markdown]
# ## 4. What GRPO sees: advantages within a group
#
# GRPO samples a *group* of completions per prompt and uses `(r - mean(group)) / std(group)` as each
# completion's advantage. Within one group `S_init` and `S_best` are constants, so for the rank part
# alone the three variants give the *same* advantages: the offset cancels and the scale divides out.
# They differ through the fixed weights of the format rewards, whose share of the total depends on
# the scale of `r_rank`, and when advantages are scaled across the whole batch rather than the group
# (TRL's `scale_rewards="batch"`). Here one group of four completions on the toy set.
#
# The standard deviation is the *sample* one, with Bessel's correction (ddof=1), as in TRL
# (`trl.trainer.utils.nanstd`); pandas' `.std()` does the same by default, numpy's `np.std` does not.

# %%
import torch

from rearank_kit.train.grpo import group_advantages

group = ["best order, well formed", "swaps the top two", "unchanged order", "best order, no think"]
totals = pd.DataFrame({
    mode: [reward_breakdown(completions[c], **TOY, mode=mode)["total"] for c in group] for mode in MODES
}, index=group)
advantages = totals.apply(lambda col: pd.Series(group_advantages(torch.tensor(col.values), len(group)).numpy(),
                                                index=col.index))
pd.concat({"reward (total)": totals, "advantage": advantages}, axis=1).round(3)

# %%
from rearank_kit.course.plots import plot_group_advantages

group_ax = plot_group_advantages(totals["normalized"].tolist(), advantages["normalized"].tolist(),
                                 labels=["best", "swap", "unchanged", "no think"])

# %% [markdown]
# Raw and difference give *identical* advantages: `S_init` is the same for the whole group and
# cancels. The normalised reward differs because this set leaves little room (about 0.27 of nDCG):
# under raw or difference the rank part of the rewards spans only 0.8 x 0.27, about 0.2, so a 0.1
# format bonus weighs as much as a good ranking. The perfect ranking without `<think>` then gets a
# *negative* advantage, below a worse ranking in the right format. Normalising pins two points on
# every set, 0 for the order as shown and 1 for a best order, so improvements weigh the same
# whatever the set and the ranking dominates, as the 0.8 / 0.1 / 0.1 weights intend. It does not
# give every set the same *range*: below 0 the normalised reward has no bound, and on a set with
# little room to improve a bad ranking scores far below -1 (section 7).
#
# ## 5. Strict and lenient; the prefill
#
# Tiny models rarely close their tags, and the `compact` prompt asks for no reasoning at all. The
# **lenient** mode (used by the `cpu-tiny` training preset) scores whatever ranking the parser can
# read and lets a bare `<answer>...</answer>` earn the first format reward. With a **prefill** (the
# `compact` prompt starts the reply with `<answer>[`) the model's completion is only the rest of the
# answer; the reward prepends the prefill before parsing.

# %%
from rearank_kit.course.explore import reward_table

cases = {
    "strict, answer only": dict(completion="<answer>[2] > [5] > [4] > [1] > [3]</answer>", lenient=False),
    "lenient, answer only": dict(completion="<answer>[2] > [5] > [4] > [1] > [3]</answer>", lenient=True),
    "strict, cut off": dict(completion="<think>[2] > [5] > [4]", lenient=False),
    "lenient, cut off": dict(completion="<think>[2] > [5] > [4]", lenient=True),
    "compact prefill + completion": dict(completion="2] > [5] > [4] > [1] > [3]</answer>", lenient=True,
                                         prefill="<answer>["),
}
pd.concat({name: reward_table(row=TOY, modes=["normalized"], **kw) for name, kw in cases.items()}).droplevel(1)

# %% [markdown]
# Look at *lenient, cut off*: the ranking was read from passage numbers inside an unfinished
# `<think>`, and it earned the full rank reward. That is the loophole strict mode closes; lenient
# mode is for tiny models that would otherwise get no signal at all.

# %% [markdown]
# ## 6. Your turn
#
# Edit `my_ranking` (and the reasoning if you like), then run the cell again. The set is the toy set
# of section 1: passage `[2]` has grade 3, `[5]` grade 2, `[4]` grade 1, `[1]` and `[3]` grade 0.

# %%
my_ranking = "[2] > [1] > [3] > [5] > [4]"  # edit me
my_reasoning = "Passage [2] answers the question directly."
my_completion = f"<think>{my_reasoning}</think><answer>{my_ranking}</answer>"
print(my_completion)
reward_table(my_completion, TOY)

# %% [markdown]
# ## 7. Real sets, and what random rankings earn
#
# Sets drawn by the augmentation of notebook 01 from the kit's sample (drawn here again; nothing is
# read from another notebook's folder): the one with the most room to improve and the one with the
# least. How do random permutations of them score? This is roughly what the first GRPO groups of an
# untrained model sample. On the set with little room, the normalised reward of a bad ranking falls
# far below -1: the reward divides by a small number, and GRPO's per-group standardisation later
# brings such groups back to the common scale.

# %%
from rearank_kit.course.explore import show_set
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.train.augment import AugmentConfig, augment
from rearank_kit.train.rewards import rank_value

real_sets = augment(load_benchmark("sample", top_k=20).head(3), AugmentConfig(samples_per_query=5, window=5)).rows
improvable = [r for r in real_sets if r["best_ndcg"] - r["init_ndcg"] > 1e-9]
picked = {
    "most room": max(improvable, key=lambda r: r["best_ndcg"] - r["init_ndcg"]),
    "least room": min(improvable, key=lambda r: r["best_ndcg"] - r["init_ndcg"]),
}
for label, row in picked.items():
    print(f"{label}: set {row['set_id']}, query {row['query']!r}, "
          f"initial nDCG@10 {row['init_ndcg']:.3f}, best {row['best_ndcg']:.3f}")
    display(show_set(row))

# %%
rng = np.random.default_rng(0)
random_rewards = {}
for label, row in picked.items():
    scores = [rank_scores(rng.permutation(len(row["grades"])), row["grades"], row["ideal_grades"])
              for _ in range(pick(2000, 300))]
    random_rewards[label] = pd.DataFrame({mode: [rank_value(*s, mode=mode) for s in scores] for mode in MODES})
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
for ax, (label, table) in zip(axes, random_rewards.items(), strict=True):
    ax.hist(table["normalized"], bins=30)
    ax.set(title=f"{label}: normalised rank reward of random rankings", xlabel="r_rank", ylabel="rankings")
fig.tight_layout()
pd.concat({label: table.describe().round(3) for label, table in random_rewards.items()}, axis=1)

# %% [markdown]
# ## 8. The reward functions TRL calls
#
# During training TRL calls each reward function with the batch of completions and the dataset's
# columns as keyword arguments (`grades=`, `ideal_grades=`), and logs each one as
# `rewards/<name>/mean`. `make_reward_funcs` returns the three functions (picklable, for
# multi-process training) and their weights, `[0.8, 0.1, 0.1]`.

# %%
from rearank_kit.train.rewards import make_reward_funcs

funcs, weights = make_reward_funcs(mode="normalized")
batch = list(completions.values())
columns = {"grades": [TOY["grades"]] * len(batch), "ideal_grades": [TOY["ideal_grades"]] * len(batch)}
print("functions:", [f.__name__ for f in funcs], "weights:", weights)
pd.DataFrame({f.__name__: f(batch, **columns) for f in funcs}, index=list(completions))

# %% [markdown]
# ## Exercises
#
# **A. Write the normalised rank reward (checked).** `order` lists passage indices best first
# (`order[0]` is the index of the passage ranked first), `grades[i]` is the grade of passage `i`,
# `ideal_grades` all judged grades of the query. Return `(S_new - S_init) / (S_best - S_init)` with
# nDCG@10 as `S` (section 1), and 0 when the set leaves no room to improve. Do not clip it.

# %%
from rearank_kit.course.exercises import check_advantages, check_reward


def my_rank_reward(order, grades, ideal_grades):
    """REARANK's normalised rank reward of one ordering of a set."""
    raise NotImplementedError  # your code here


check_reward(my_rank_reward)


# %% [markdown]
# **B. Write GRPO's group advantages (checked).** `rewards` is a flat torch tensor of
# `num_generations` completions per prompt, prompt after prompt. Return each completion's
# `(reward - its group's mean) / (its group's standard deviation + 1e-4)`, as TRL does (section 4).

# %%
def my_advantages(rewards, num_generations):
    """Group-normalised advantages, one per completion (a tensor of the shape of rewards)."""
    raise NotImplementedError  # your code here


check_advantages(my_advantages)

# %% [markdown]
# **Open questions**
#
# 1. In section 6, find a ranking of the toy set whose normalised reward is exactly 0 but that is
#    *not* the shown order. Why is it 0?
# 2. Find the worst ranking of the toy set. What are its raw, difference and normalised rewards?
#    Why can the normalised reward go far below -1 on some sets and not on others?
# 3. Change the weights: `reward_breakdown(..., weights=(1.0, 0.0, 0.0))`. Which rows of the
#    section 2 table change rank? What could go wrong in training without format rewards?
# 4. Recompute the advantages of section 4 with the raw reward for a group whose four completions
#    all give the *same* ranking. What does GRPO learn from that group?
# 5. (Teachers) Have students write completions that "hack" the reward (high reward, bad ranking)
#    and check which ones strict mode stops.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. A group's rewards are 1, 0, 0, 0. What are their advantages (standard deviation with Bessel's correction)?
# 2. A set is already in its best order. What normalised rank reward does any ranking of it get?
# 3. Between which two values does the difference reward (nDCG@10 gain) always lie?

# %% [markdown]
# ## Recap
#
# - REARANK's reward: `0.8 r_rank + 0.1 r_format1 + 0.1 r_format2`, with `r_rank` the share of the
#   possible nDCG@10 improvement a ranking achieves (0 unchanged, 1 best, unbounded below).
# - Raw and difference rewards pay for the set, not for the job; within a GRPO group the offset
#   cancels, but the scale against the format rewards does not.
# - GRPO learns from advantages: reward minus the group mean, over the group's sample standard
#   deviation (ddof=1, as TRL); a group whose rewards are all equal teaches nothing.
# - Strict scoring needs a complete `<answer>`; lenient scoring is for tiny models.
# - Next: notebook 03 trains with these rewards; notebook 07 writes GRPO's loss from scratch.
