# %% [markdown]
# # 06 · Reasoning traces: what the reranker wrote, and whether it meant it
#
# REARANK's claim is that reasoning makes a better reranker: the model discusses the passages in
# `<think>` before it ranks them. Every model call of a kit rerank run leaves a *trace* (the window
# shown, the raw reply, the parsed order, the parser's diagnostics, token counts), so the reasoning
# can be studied: how long it is, whether it discusses every passage, whether the passages it calls
# relevant are the ones it ranks high, and whether they are the ones the judges marked relevant.
#
# **What you will learn**
#
# - to load a run's `traces.jsonl` as a table with derived columns (`traces.load_traces`);
# - to measure reasoning length, the share of passages the reasoning mentions, the answer format and
#   the parser's repairs;
# - to check the reasoning against the ranking (claims vs ranks) and against the judgments;
# - to compare two runs on the same windows (before/after), and read one trace with the judged grade
#   of each passage beside it;
# - a trace lab: every trace with its query and passage text, filters, search, and how often the
#   reasoning's claims agree with the judges; a shareable HTML page of a run (`rearank-kit report`).
#
# **Prerequisites**: notebook 00 (prompt, reply, parsing, nDCG@10); notebook 05 helps (rerank runs
# and their folders).
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about 20 seconds (19 s measured: 2 queries, windows of 5, 32 tokens) |
# | full | CPU, 2 cores | about 2 minutes (116 s measured; 10 DL19 queries, top 20, windows of 5, 32 tokens) |
# | full | one GPU with 40 GB or more | 20-40 minutes (Qwen2.5-7B-Instruct vs Rearank-7B on 10 DL19 queries) |
#
# Both settings compare one model before and after GRPO. On a CPU: the bundled SmolLM2-135M and
# the same model with the kit's committed reference run (`data/runs/cpu-firstpick-dl21`, a LoRA
# adapter trained by the `cpu-firstpick` recipe), both with its answer-only `compact-short` prompt
# on windows of 5. Their traces hold answers, not reasoning: the sections on reasoning below read a
# hand-written illustration, and exercise 4 adds the bundled model with the reasoning prompt. With
# a GPU: the base model Qwen2.5-7B-Instruct and the trained Rearank-7B, both with the `rearank`
# prompt.

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

from rearank_kit.course.notebook import (
    REPO_ROOT,
    benchmark_or_sample,
    describe_hardware,
    has_cuda,
    pick,
    run_folder,
    smoke,
)

RUN = run_folder("06_reasoning_traces")  # the only folder this notebook writes to
GPU = has_cuda() and not smoke()
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. Two runs to compare
#
# Both runs rerank the same queries with the same windows, so their traces can be matched window by
# window. Each gets its own folder; running the cell again reuses finished work.

# %%
from rearank_kit.data.benchmarks import load_benchmark
from rearank_kit.rank.backends import load_backend
from rearank_kit.rank.run import rerank_benchmark
from rearank_kit.rank.settings import RerankConfig

DATA = benchmark_or_sample("dl19")
REFERENCE = REPO_ROOT / "data" / "runs" / "cpu-firstpick-dl21"  # a run folder is a model: base + adapter
SYSTEMS = {  # label -> (model, template)
    "base": ("Qwen/Qwen2.5-7B-Instruct", "rearank"),
    "trained": ("le723z/Rearank-7B", "rearank"),
} if GPU else {
    "base": ("smollm2-135m", "compact-short"),
    "trained": (str(REFERENCE), "compact-short"),
}
BASE = RerankConfig(top_k=pick(20, 5), window=20 if GPU else 5, step=10 if GPU else 4,
                    max_new_tokens=pick(None if GPU else 32, 32))
bench = load_benchmark(DATA, top_k=BASE.top_k).head(pick(10, 2))
folders = {}
for model in dict.fromkeys(m for m, _ in SYSTEMS.values()):  # load each model once
    with load_backend("vllm" if GPU else "hf", model=model) as backend:
        for label, (m, template) in SYSTEMS.items():
            if m == model:
                folders[label] = RUN / f"{label}{'-smoke' if smoke() else ''}"
                rerank_benchmark(bench, backend, dataclasses.replace(BASE, template=template), folders[label],
                                 manifest_fields={"data": bench.name})
A, B = SYSTEMS
print({label: str(folder) for label, folder in folders.items()})

# %% [markdown]
# ## 2. The traces as a table
#
# One row per model call. Besides the record's own fields, `load_traces` adds the reasoning text
# (`think_text`; for a reply cut inside `<think>`, the reasoning so far), its length in words, the
# parser's diagnostics as columns, whether the answer needed a repair, which passages the reasoning
# mentions (`[3]`, `passage 3`) and what it calls each of them (`claims`).

# %%
from rearank_kit.analysis.traces import load_traces

traces = {label: load_traces(folder) for label, folder in folders.items()}
COLUMNS = ["qid", "window_start", "window_end", "output_tokens", "finish_reason", "think_words",
           "mention_frac", "think_answer_ok", "answer_format_ok", "repaired"]
pd.concat({label: t[[c for c in COLUMNS if c in t.columns]] for label, t in traces.items()})

# %% [markdown]
# ## 3. Format and length
#
# The share of replies in each format, repaired by the parser, cut at the token limit; then the
# length of the reasoning and of the whole reply. REARANK's paper reports that its reasoning stays
# at a stable length through training rather than growing without bound.

# %%
from rearank_kit.analysis.traces import format_stats, length_stats

display(pd.DataFrame({label: format_stats(t) for label, t in traces.items()}).round(3))
pd.concat({label: length_stats(t) for label, t in traces.items()}, axis=1).round(2)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for label, t in traces.items():
    axes[0].hist(t["think_words"], bins=15, alpha=0.6, label=label)
    axes[1].hist(t["output_tokens"], bins=15, alpha=0.6, label=label)
    axes[2].hist(t["mention_frac"], bins=10, range=(0, 1), alpha=0.6, label=label)
for ax, title in zip(axes, ["reasoning length (words)", "reply length (tokens)", "share of the window mentioned"],
                     strict=True):
    ax.set(title=title, ylabel="model calls")
    ax.legend()
fig.tight_layout()

# %% [markdown]
# ## 4. Does the ranking follow the reasoning?
#
# `claims` classifies, clause by clause, whether the reasoning calls a passage relevant or not (a
# keyword heuristic made for teaching: readable, often right, never a judgment). If the model means
# what it says, passages it calls relevant should be ranked near the top (normalised rank near 0) and
# the ones it dismisses near the bottom. The same table says how the judges graded them.
#
# The bundled model's reasoning rarely makes such claims, so first a hand-written trace, *not* model
# output, for the sample query `s10` (which planet has the shortest day), to show what the analysis
# reads:

# %%
from rearank_kit.analysis.traces import claims_summary, render_trace

sample = load_benchmark("sample", top_k=5)
s10 = next(r for r in sample.rankings if r.query.qid == "s10")
illustration = {
    "qid": "s10", "window": [0, 5], "docids": s10.docids, "model": "hand-written illustration",
    "output": ("<think>The query asks which planet rotates fastest. [1] is about Mercury's year, not its day, so "
               "it is not relevant. [2] explains that Venus has the longest day, which is related but does not "
               "answer the question. [3] is about moons and is irrelevant. [4] is astrology and is off-topic. [5] "
               "describes the length of a day on Mars and is partly relevant.</think>"
               "<answer>[5] > [2] > [1] > [3] > [4]</answer>"),
}
print(render_trace(illustration, sample.qrels))
claims_summary(load_traces([illustration]), sample.qrels)

# %%
for label, t in traces.items():
    summary = claims_summary(t, bench.qrels)
    print(f"== {label}: {int(summary['count'].sum()) if len(summary) else 0} passages with a claim")
    if len(summary):
        display(summary.round(3))

# %% [markdown]
# ## 5. Are the judged relevant passages ranked high?
#
# Independently of what the reasoning says: by judged grade, the mean position at which passages were
# *shown* and the mean rank the model gave them. A reranker that helps moves the grade-3 passages up
# (mean rank below mean shown) and the grade-0 passages down.

# %%
from rearank_kit.analysis.traces import judged_summary

pd.concat({label: judged_summary(t, bench.qrels) for label, t in traces.items()}, axis=1).round(2)

# %% [markdown]
# ## 6. Before and after, window by window
#
# `compare_runs` matches the windows of two runs (same query, same positions) and gives each measure
# for both and the difference: reasoning length, mentions, format, repairs and the nDCG@10 of the
# window's order against the judgments (`ndcg`), next to the nDCG@10 of the order as shown
# (`ndcg_shown`). `same_docids` says whether both runs saw the same passages in the window: after the
# first window of a query the two runs' lists differ.
#
# **Which nDCG?** `ndcg` here is `traces.window_ndcg`, divided by the best order of *the window's
# own* passages: 1.0 means the model ordered what it was shown perfectly, a judgment of the ranking
# step alone. The `S` of notebooks 01 and 02 (the reward's nDCG) divides by the ideal of *all* the
# query's judgments instead, so a window missing the best passages cannot reach 1;
# `window_ndcg(..., ideal="query")` computes that one. The two differ whenever the first stage
# left relevant passages out of the window:

# %%
from rearank_kit.analysis.traces import compare_runs, comparison_summary, window_ndcg

first = traces[B].iloc[0]
grades = bench.qrels.get(first["qid"], {})
print(f"first window of {first['qid']}: window_ndcg {window_ndcg(first['docids'], first['order'], grades):.3f} "
      f"(window's ideal) vs {window_ndcg(first['docids'], first['order'], grades, ideal='query'):.3f} (query's ideal)")

cmp = compare_runs(traces[A], traces[B], bench.qrels, labels=(A, B))
display(comparison_summary(cmp).round(3))
cmp[["qid", "window_start", "window_end", "same_docids", f"think_words_{A}", f"think_words_{B}",
     f"ndcg_{A}", f"ndcg_{B}", "ndcg_delta"]].round(3)

# %% [markdown]
# ## 7. One trace, readable
#
# The model's own words, the answer, and the parsed ranking with each passage's docid, its judged
# grade (`-` when unjudged) and what the reasoning called it: the view to read before trusting any
# of the averages above. Below, the trace of run `B` with the longest reasoning, as text and as HTML.

# %%
from rearank_kit.analysis.traces import render_trace_html

longest = traces[B].sort_values("think_words", ascending=False).iloc[0]
print(render_trace(longest, bench.qrels))
HTML(render_trace_html(longest, bench.qrels))

# %% [markdown]
# Runs written by notebook 05, if it has run, can be read the same way (those of the scored policy
# hold scores, not replies: it writes no text, so there is no reasoning to read):

# %%
import json

for path in sorted((RUN.parent / "05_benchmark_evaluation").glob("*/traces.jsonl")):
    if json.loads((path.parent / "manifest.json").read_text()).get("policy") == "scored":
        continue
    print(path.parent.name)
    display(format_stats(path).round(3).to_frame().T)

# %% [markdown]
# ## 8. A trace lab: the text, filters and search
#
# Traces hold docids only: MS MARCO's licence forbids redistributing its text, and run folders get
# shared. `trace_lab.lab_table` joins the query and passage text from the benchmark *at display
# time* (nothing is written), and adds what a learner filters on: the window's `outcome` (did the
# model's order beat the order it was shown, by window nDCG@10?), the kinds of claim the reasoning
# makes, its length. `trace_browser` puts the filters and a search box on top (ipywidgets: it
# needs a running kernel; in a static view of the notebook the calls below it show the same).

# %%
from rearank_kit.analysis.trace_lab import filter_traces, lab_summary, lab_table, render_with_text, trace_browser

lab = lab_table(folders[B], bench)
display(lab_summary(lab))
trace_browser(lab, bench)

# %% [markdown]
# The browser's filters are plain function arguments too: here the windows the model made worse,
# then a search through the replies, queries and passages.

# %%
worse = filter_traces(lab, outcome="worse")
print(f"{len(worse)} of {len(lab)} windows made worse; search 'planet': "
      f"{len(filter_traces(lab, search='planet'))} matches")
HTML(render_with_text((worse if len(worse) else lab).iloc[0], bench.qrels))

# %% [markdown]
# ## 9. Do the claims agree with the judges?
#
# `claim_agreement` counts what the reasoning called each passage against its judged grade, and
# gives the share of judged passages of each claim that the judges call relevant (grade >= 1) and
# highly relevant (>= 2). A reasoner whose claims are both sincere and right calls grade-3 passages
# relevant and grade-0 ones irrelevant. The hand-written illustration of section 4 first, then the
# runs (the bundled model's reasoning rarely makes claims):

# %%
from rearank_kit.analysis.trace_lab import claim_agreement

display(claim_agreement(load_traces([illustration]), sample.qrels))
for label, t in traces.items():
    print(f"== {label}")
    display(claim_agreement(t, bench.qrels))

# %% [markdown]
# The claims come from a keyword classifier (`rearank_kit/analysis/claims.py`), so the table is only as good
# as it. Its precision and recall were measured on 120 hand-labelled sentences written in the style
# of Rearank-7B's reasoning (`tests/fixtures/claims.md`): 80 that the rules were written on (`dev`)
# and 40 held out. Read the held-out rows as the honest estimate.

# %%
from rearank_kit.analysis.claims import evaluate_claims, load_claims_fixture

labelled = load_claims_fixture()
pd.concat({split: evaluate_claims([r for r in labelled if r["split"] == split]).round(3)
           for split in ("dev", "heldout")})

# %% [markdown]
# ## 10. Longer reasoning, better ranking?
#
# The paper found no clear relation between reasoning length and nDCG@10 (BRIGHT biology). Each dot
# is one model call of run `B`: its reasoning length against the nDCG@10 of its window.

# %%
from rearank_kit.course.plots import plot_length_vs_quality

length_ax = plot_length_vs_quality(lab["think_words"], lab["ndcg"])

# %% [markdown]
# ## 11. A page to share: `rearank-kit report`
#
# The same lab without a kernel: one self-contained HTML page per run, with the metrics, the
# per-query table, every trace with its passages, and filters and search in plain JavaScript
# (`rearank-kit report RUN_DIR`). The text is joined when the page is written, and the page says
# so; `--no-text` writes docids only, for pages shared beyond what the collection's licence allows.

# %%
from rearank_kit.analysis.report import write_report

page = write_report(folders[B], RUN / f"{B}-report.html")
print(f"wrote {page} ({page.stat().st_size / 1024:.0f} KB); open it in a browser, or from a shell:")
print(f"  .venv/bin/rearank-kit report {folders[B]} --out {page}")

# %% [markdown]
# ## Exercises
#
# 1. In the table of section 2, find a reply the parser had to repair (or, if none, one whose first
#    passage differs between the two runs). Read it with `render_trace`:
#    what went wrong, and would the strict reward of notebook 02 have scored its ranking?
# 2. Edit the hand-written trace of section 4 so that the reasoning contradicts the answer (calls [5]
#    irrelevant but ranks it first). How does `claims_summary` show it?
# 3. With the `rearank` prompt (exercise 4 adds such a run), is the share of passages mentioned related to the window's nDCG@10?
#    Plot `mention_frac` against `ndcg` from `compare_runs`.
# 4. Add a third run, `"base, reasoning": ("smollm2-135m", "rearank")`, to `SYSTEMS` (on a CPU, with
#    `max_new_tokens=256`) and read its traces in sections 3-4 and 9: how often does the 135M
#    model's "reasoning" make a claim, and do its claims agree with the judges? Then swap in notebook
#    03's own run folder (`run_folder("03_grpo_training") / "grpo"`) as `"trained"`.
# 5. Write three sentences the claim classifier misreads (`claims.classify_claims(text, 20)`), in the
#    style of section 4's illustration. Which rule of `claims.py` fails on each?
# 6. (Teachers) Print three traces without the grades, ask students to judge the passages from the
#    reasoning alone, then reveal the judged grades.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. How many trace records does one query leave when the top 20 is reranked in windows of 5 moved by 4?
# 2. Which field of a trace record holds the model's parsed order, and is it 0-based or 1-based?
# 3. Why do trace files hold docids and no passage text?

# %% [markdown]
# ## Recap
#
# - Every model call of a rerank run leaves a trace: the window, the reply, the parsed order; the
#   kit derives reasoning length, mentions, format, repairs and claims from it.
# - Claims against ranks ask whether the model does what it says; claims against grades whether
#   what it says is right. The claim classifier is a heuristic with measured precision and recall.
# - Window nDCG is normalised by the window's own best order; the reward's `S` by the query's ideal.
# - Text is joined from the benchmark at display time, never stored in traces: the lab, the
#   browser and `rearank-kit report` all work that way.
# - Next: notebook 07 opens up GRPO itself; notebook 08 probes whether the reasoning is faithful.
