# %% [markdown]
# # 01 · Data augmentation: from a few annotated queries to thousands of training prompts
#
# Reinforcement learning needs many prompts, and judged queries are expensive: REARANK has only 179
# annotated queries. The paper's trick is that a query with graded judgments can score *any* ordering
# of *any* subset of its candidates. So each query yields many training prompts: draw random *sets*
# of 20 passages from its BM25 top-100, and every set is a new ranking problem whose best answer is
# known. From a few hundred queries come thousands of distinct prompts.
#
# **What you will learn**
#
# - what a training set is: the passages, their grades, the initial and the best possible nDCG@10;
# - how `AugmentConfig` encodes the recipe (sets per query, window, filters, seed), and why each
#   default is what it is;
# - what the two filters drop, and how the paper's two descriptions of the filter differ;
# - how much room for improvement the sets leave a reranker (initial vs best nDCG@10);
# - how to write a training set to disk for GRPO (notebook 03) and read it back;
# - why training sees random subsets while inference slides windows, and what that changes.
#
# **Prerequisites**: notebook 00 (nDCG@10, windows of passages). No model is loaded here.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU | seconds (6 s measured) |
# | full | CPU | seconds (11 s measured) |
# | GPU | not needed | |
#
# No model is loaded: augmentation is sampling and arithmetic. The seed queries are TREC DL21 (graded
# 0-3) when `REARANK_KIT_DATA` points at it, else the kit's `sample` collection.
#
# **Which seed queries?** The paper reports 179 annotated seed queries with graded (0-3)
# judgments; neither the paper's tables nor the authors' released code include the list, so it
# cannot be rebuilt here. The kit uses TREC DL21 instead: 53 judged queries on MS MARCO passages,
# the same kind of graded judgments, and *disjoint* from DL19 and DL20, the paper's in-domain test
# sets (training on their judgments would mean training on the answers). Fewer seed queries than
# the paper's 179, but the trick below multiplies them just the same.

# %%
import dataclasses
import math

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rearank_kit.course.notebook import benchmark_or_sample, describe_hardware, pick, run_folder

RUN = run_folder("01_data_augmentation")  # the only folder this notebook writes to
DATA = benchmark_or_sample("dl21")
print(describe_hardware())
print("seed queries:", DATA, "| run folder:", RUN)

# %% [markdown]
# ## 1. The seed queries
#
# Every query comes with its BM25 top-100 and graded judgments. Only judged passages carry signal:
# unjudged ones count as grade 0, as in trec_eval.

# %%
from rearank_kit.data.benchmarks import load_benchmark

bench = load_benchmark(DATA, top_k=100)
judged = [r for r in bench.rankings if bench.qrels.get(r.query.qid)]
per_query = pd.DataFrame([{
    "qid": r.query.qid,
    "candidates": len(r.candidates),
    "judged passages": len(bench.qrels[r.query.qid]),
    "relevant (grade > 0) among candidates": sum(bench.qrels[r.query.qid].get(d, 0) > 0 for d in r.docids),
} for r in judged]).set_index("qid")
print(f"{DATA}: {len(bench.rankings)} queries, {len(judged)} with judgments")
grades = pd.Series([g for q in bench.qrels.values() for g in q.values()], name="judged passages")
display(grades.value_counts().sort_index().rename_axis("grade").to_frame())
per_query.describe().round(1)

# %% [markdown]
# ## 2. The recipe
#
# For every judged query (module docstring of `rearank_kit/train/augment.py`):
#
# 1. take its BM25 top-`pool` (100);
# 2. draw `samples_per_query` sets (50) of `window` passages (20, the reranker's window) without
#    replacement, each from the query's own seeded random stream;
# 3. keep the set in BM25 order (the order a reranker would receive it in);
# 4. score it: `init_ndcg`, nDCG@10 as given, and `best_ndcg`, nDCG@10 sorted by grade, both against
#    the ideal of *all* the query's judgments, so a set missing the best passages cannot reach 1;
# 5. drop sets with no relevant passage, then sets below `min_ndcg` (0.1).
#
# Queries are split into train and test *by query* (`test_fraction`), so the test sets measure
# generalisation to unseen queries. The sample has only 20 candidates per query, so on it we draw
# sets of 5 (a window of 20 would draw the same 20 passages every time).

# %%
from rearank_kit.train.augment import AugmentConfig

WINDOW = 5 if DATA == "sample" else 20
config = AugmentConfig(samples_per_query=pick(50, 10), window=WINDOW, seed=0)
config

# %%
from rearank_kit.course.explore import summary_table
from rearank_kit.train.augment import augment, write_augmented

result = augment(bench, config)
SETS_DIR = write_augmented(result, RUN / "sets", overwrite=True, bench=bench, config=config)
print("written to", SETS_DIR, ":", sorted(p.name for p in SETS_DIR.iterdir()))
summary_table(result.summary)

# %% [markdown]
# The same on the command line (it writes the same four outputs: `dataset/`, `sets.jsonl`,
# `summary.json`, `manifest.json`):

# %%
print(f".venv/bin/rearank-kit augment --data {DATA} --samples-per-query {config.samples_per_query} "
      f"--window {config.window} --seed {config.seed} --out {RUN / 'sets-cli'}")

# %% [markdown]
# ## 3. A few sets
#
# Each row of the dataset is one prompt for GRPO: the query, the passages in their initial order,
# their grades, the grades of all the query's judgments (for the ideal DCG) and the chat messages of
# the prompt. Two sets of the same query share some passages and differ in others.

# %%
from rearank_kit.course.explore import show_set
from rearank_kit.train.augment import load_sets

sets = load_sets(SETS_DIR)
print(sets)
train = sets["train"]
first_qid = train[0]["qid"]
same_query = [row for row in train if row["qid"] == first_qid][:2]
for row in same_query:
    print(f"\nset {row['set_id']}   query {row['query']!r}")
    print(f"initial nDCG@10 {row['init_ndcg']:.3f}, best possible {row['best_ndcg']:.3f}")
    display(show_set(row))

# %% [markdown]
# ## 4. The filters
#
# A set with no relevant passage gives every completion the same reward, so GRPO learns nothing from
# it; a set whose nDCG@10 is tiny is mostly noise. The paper states its threshold twice, once on the
# *initial* nDCG and once on the *best possible* one; the kit implements both (`filter="initial"`,
# the default, or `"best"`) and records which one a dataset used. Here the same draws under other
# settings (nothing is written):

# %%
variants = {
    "initial >= 0.1 (default)": config,
    "best >= 0.1": dataclasses.replace(config, filter="best"),
    "initial >= 0.3": dataclasses.replace(config, min_ndcg=0.3),
    "no nDCG threshold": dataclasses.replace(config, min_ndcg=0.0),
    "random initial order": dataclasses.replace(config, order="random"),
}
outcomes = {name: augment(bench, cfg).summary for name, cfg in variants.items()}
pd.DataFrame({
    name: {
        "sets kept": s["sets_kept"],
        **{f"dropped: {k}": v for k, v in s["sets_dropped"].items()},
        "already in best order": s["sets_already_best"],
        "mean initial nDCG@10": round(s["init_ndcg"]["mean"], 3),
        "mean best nDCG@10": round(s["best_ndcg"]["mean"], 3),
    }
    for name, s in outcomes.items()
}).T

# %% [markdown]
# Read the table: the "initial" filter drops sets that start badly, which are exactly the sets with
# the most room to improve; the "best" filter keeps them and drops only sets that even a perfect
# reranker could not make good. A random initial order lowers the initial nDCG (BM25 order is
# informative) and so gives the reranker more to do.
#
# ## 5. How much room is there?
#
# The reward of notebook 02 measures how much of the gap between the initial and the best nDCG@10 a
# completion closes. The two histograms show that gap over all kept sets.

# %%
from rearank_kit.course.explore import ndcg_histogram

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
ndcg_histogram(sets, ax=axes[0])
gap = [row["best_ndcg"] - row["init_ndcg"] for row in sets["train"]]
axes[1].hist(gap, bins=20, color="tab:green")
axes[1].set(title="room to improve per set", xlabel="best - initial nDCG@10", ylabel="sets")
fig.tight_layout()
fig.savefig(RUN / "ndcg_histograms.png", dpi=100)
print(f"{sum(g <= 1e-12 for g in gap)} of {len(gap)} training sets are already in their best order")

# %% [markdown]
# ## 6. From a few queries to thousands of prompts
#
# The arithmetic of the paper's trick: a query's top-100 holds C(100, 20), about 5 x 10^20,
# different sets of 20, so repeats are practically impossible and the number of prompts is set by
# `samples_per_query`, not by the data.

# %%
s = result.summary
kept_per_query = s["sets_kept"] / s["queries_used"]
print(f"distinct sets of 20 in a top-100: {math.comb(100, 20):.2e}")
print(f"{s['queries_used']} queries x {config.samples_per_query} draws = {s['sets_drawn']} sets drawn, "
      f"{s['sets_kept']} kept ({kept_per_query:.1f} per query)")
print(f"at this keep rate, 179 annotated queries x 50 draws -> about {179 * 50 * s['sets_kept'] / s['sets_drawn']:,.0f} prompts")
print("split by query:", s["splits"], "| test queries:", s["test_qids"])

# %% [markdown]
# ## 7. Training sees random sets, inference slides windows
#
# At inference (notebooks 00 and 05) the model sees the BM25 top 100 through nine overlapping
# windows of 20, in BM25 order, and each window's input depends on what the windows below it did.
# In training it sees *random* subsets of the top 100, each on its own. Two consequences:
#
# - **different inputs**: a window at inference holds neighbours in BM25 rank (positions 80-99 are
#   all weak candidates; 0-19 all strong), while a random set mixes ranks from the whole top 100.
#   The model learns to rank mixtures and is then asked to rank runs of similar passages, where the
#   differences are finer. The share of relevant passages differs too (below).
# - **no credit assignment across windows**: the reward scores one set against its own best order;
#   nothing in training rewards carrying a good passage *up* into the next window, which is what
#   sliding windows rely on at inference.
#
# The paper trains this way and still gains at inference; the kit keeps its recipe. The numbers for
# these seed queries:

# %%
top = [r for r in judged if len(r.candidates) >= config.window]
by_position = pd.DataFrame({
    "first window (BM25 top)": [sum(bench.qrels[r.query.qid].get(d, 0) > 0 for d in r.docids[:config.window])
                                / config.window for r in top],
    "last window (bottom)": [sum(bench.qrels[r.query.qid].get(d, 0) > 0 for d in r.docids[-config.window:])
                             / config.window for r in top],
})
random_sets = pd.Series([sum(g > 0 for g in row["grades"]) / len(row["grades"]) for row in sets["train"]])
print("share of relevant passages (grade > 0) per window / set, mean over queries:")
pd.concat([by_position.mean(), pd.Series({"random training set": random_sets.mean()})]).round(3).to_frame("share")

# %% [markdown]
# ## Exercises
#
# 1. Section 4's table counts the sets each filter keeps, but not *which queries* lose theirs. Run
#    `augment` with `min_ndcg=0.3` and compare `summary["sets_per_query"]` with the default's:
#    which queries lose every set, and what do they have in common in section 1's table?
# 2. How many sets does a query with a single relevant passage keep, compared with a query with
#    ten? Use `result.summary["sets_per_query"]` and the table of section 1.
# 3. Change `seed` and check that the sets of one query change while the split (`test_qids`)
#    depends only on the seed and the usable query ids.
# 4. `window=10` halves the prompt length. What happens to `best_ndcg` and to the share of sets
#    already in their best order? What would that do to the reward signal?
# 5. Section 7 compares relevant shares. Draw sets of 20 from the top 20 only (`AugmentConfig(pool=20)`)
#    and train-versus-inference look alike again: what would such training sets lose?
# 6. (Teachers) Ask students to predict the share of sets dropped as `no_relevant` from the table
#    of section 1 before running section 4.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. How many sets per query does the augmentation draw by default (`samples_per_query`)?
# 2. How many distinct sets of 5 passages can be drawn from a pool of 100?
# 3. Below which nDCG@10 is a set dropped by default (`min_ndcg`), and why keep sets with some relevant passage at all?

# %% [markdown]
# ## Recap
#
# - A judged query can score any ordering of any subset of its candidates, so a few queries give
#   thousands of training prompts: random sets of `window` passages from the BM25 top 100.
# - Two filters drop sets that teach nothing (no relevant passage) or little (a low nDCG@10); the
#   paper states its threshold both on the initial and on the best nDCG, and the kit has both.
# - The gap between a set's initial and best nDCG@10 is the room the reward of notebook 02 measures.
# - The kit trains on DL21 (53 queries), never on DL19/DL20, the test sets; the paper's 179 seed
#   queries are not published.
# - Training sees random mixtures, inference sees BM25-ordered windows: a mismatch to keep in mind.
# - Next: notebook 02, how a ranking of a set is turned into a reward.
