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
#   of each passage beside it.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (2 queries, windows of 5, 32 tokens) |
# | full | CPU, 2 cores | 15-30 minutes (10 sample queries, top 20, 256 tokens) |
# | full | one GPU with 40 GB or more | 20-40 minutes (Qwen2.5-7B-Instruct vs Rearank-7B on 10 DL19 queries) |
#
# On a CPU the two runs compared are the bundled model with the answer-only `compact` prompt and with
# the paper's reasoning prompt `rearank`: the 135M model's "reasoning" is mostly noise, which the
# measures below make visible. With a GPU they are the real before/after: the base model
# Qwen2.5-7B-Instruct and the trained Rearank-7B, both with the `rearank` prompt.

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, display

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

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
from rearank_kit.backends import load_backend
from rearank_kit.data import load_benchmark
from rearank_kit.rerank import RerankConfig, rerank

DATA = benchmark_or_sample("dl19") if GPU else "sample"
SYSTEMS = {  # label -> (model, template)
    "base": ("Qwen/Qwen2.5-7B-Instruct", "rearank"),
    "trained": ("le723z/Rearank-7B", "rearank"),
} if GPU else {
    "compact": ("smollm2-135m", "compact"),
    "rearank": ("smollm2-135m", "rearank"),
}
BASE = RerankConfig(top_k=pick(20, 5), window=pick(20, 5), step=pick(10, 5),
                    max_new_tokens=pick(None if GPU else 256, 32))
bench = load_benchmark(DATA, top_k=BASE.top_k).head(pick(10, 2))
folders = {}
for model in dict.fromkeys(m for m, _ in SYSTEMS.values()):  # load each model once
    with load_backend("vllm" if GPU else "hf", model=model) as backend:
        for label, (m, template) in SYSTEMS.items():
            if m == model:
                folders[label] = RUN / f"{label}{'-smoke' if smoke() else ''}"
                rerank(bench, backend, dataclasses.replace(BASE, template=template), out_dir=folders[label],
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
from rearank_kit.traces import load_traces

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
from rearank_kit.traces import format_stats, length_stats

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
from rearank_kit.traces import claims_summary, render_trace

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
from rearank_kit.traces import judged_summary

pd.concat({label: judged_summary(t, bench.qrels) for label, t in traces.items()}, axis=1).round(2)

# %% [markdown]
# ## 6. Before and after, window by window
#
# `compare_runs` matches the windows of two runs (same query, same positions) and gives each measure
# for both and the difference: reasoning length, mentions, format, repairs and the nDCG@10 of the
# window's order against the judgments (`ndcg`), next to the nDCG@10 of the order as shown
# (`ndcg_shown`). `same_docids` says whether both runs saw the same passages in the window: after the
# first window of a query the two runs' lists differ.

# %%
from rearank_kit.traces import compare_runs, comparison_summary

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
from rearank_kit.traces import render_trace_html

longest = traces[B].sort_values("think_words", ascending=False).iloc[0]
print(render_trace(longest, bench.qrels))
HTML(render_trace_html(longest, bench.qrels))

# %% [markdown]
# Runs written by notebook 05, if it has run, can be read the same way:

# %%
for path in sorted((RUN.parent / "05_benchmark_evaluation").glob("*/traces.jsonl")):
    print(path.parent.name)
    display(format_stats(path).round(3).to_frame().T)

# %% [markdown]
# ## Exercises
#
# 1. In the table of section 2, find a reply the parser had to repair. Read it with `render_trace`:
#    what went wrong, and would the strict reward of notebook 02 have scored its ranking?
# 2. Edit the hand-written trace of section 4 so that the reasoning contradicts the answer (calls [5]
#    irrelevant but ranks it first). How does `claims_summary` show it?
# 3. With the `rearank` prompt, is the share of passages mentioned related to the window's nDCG@10?
#    Plot `mention_frac` against `ndcg` from `compare_runs`.
# 4. Compare a trained LoRA adapter from notebook 03 with the base model: load it with
#    `peft.PeftModel.from_pretrained(model, adapter_folder)` on the bundled model, wrap it with
#    `HFBackend.from_model(model, tokenizer)` and rerank the same queries into a third folder.
# 5. (Teachers) Print three traces without the grades, ask students to judge the passages from the
#    reasoning alone, then reveal the judged grades.
