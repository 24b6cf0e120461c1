"""Build the tutorial notebooks ``notebooks/NN_*.ipynb`` from the cell texts in this file.

    .venv/bin/python notebooks/_build.py          # rewrite the notebooks whose cells changed
    .venv/bin/python notebooks/_build.py --check  # exit 1 when a notebook differs from its cells

Each notebook is one string below, cut into cells by marker lines: ``# %% [markdown]`` starts a
markdown cell, ``# %%`` a code cell (the "percent" convention of Jupytext, VS Code and Spyder).
Notebooks are written without outputs or execution counts, with stable cell ids and the
``python3`` kernel, so that a rebuild changes nothing unless a cell did. Edit the cells here and
rebuild; ``tests/test_notebooks.py`` fails when a notebook and this file disagree.

Rules every notebook keeps (see ``notebooks/README.md``): it opens with what you will learn, the
runtime and the hardware; it imports from ``rearank_kit`` and defines nothing reusable; it writes
only under ``RUN = run_folder(...)``; ``REARANK_KIT_SMOKE=1`` shrinks it to minutes on a CPU; GPU
cells are guarded by ``has_cuda()``; it ends with exercises.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CELL_TIMEOUT_S = 1800
_MARKER = re.compile(r"^# %%(?: \[(markdown)\])?\s*$")

NOTEBOOKS: dict[str, str] = {}

# ================================================================================================
NOTEBOOKS["00_quickstart"] = r"""
# %% [markdown]
# 00 · Quickstart: rerank one query with a reasoning reranker

REARANK (Zhang et al., 2025, [arXiv:2505.20046](https://arxiv.org/abs/2505.20046)) is a *listwise*
reranker: a language model reads a query and a numbered window of passages at once, reasons about
them inside `<think>...</think>`, and answers with a ranking such as
`<answer>[3] > [1] > [2]</answer>`. It reranks the top-100 passages of a cheap first-stage
retriever (BM25). Rearank-7B is Qwen2.5-7B-Instruct trained for this with reinforcement learning
(GRPO) from only 179 annotated queries; notebooks 01-04 show how.

This notebook runs the whole loop once, on one query, with the small model bundled with the kit.

**What you will learn**

- what a listwise reranker is shown (the prompt) and what it answers (the raw output);
- how the kit turns a reply into a ranking, and how it repairs a broken one;
- how to score a ranking against human judgments with nDCG@10: BM25 before, the reranker after;
- why a long candidate list is reranked with *sliding windows*;
- how to run the real Rearank-7B instead, on a GPU.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about 1 minute |
| full | CPU, 2 cores | 1-3 minutes |
| Rearank-7B (last section) | one GPU with 24 GB or more | a minute, plus the 15 GB download |

The bundled model is SmolLM2-135M-Instruct, 50 times smaller than Rearank-7B: it shows every step
working, it does not rank well. Everything this notebook writes goes into its run folder, printed below.

# %%
from rearank_kit.notebook import describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("00_quickstart")  # the only folder this notebook writes to
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
## 1. A query and its first-stage candidates

A reranker never searches the whole collection: a first-stage retriever (here BM25, word overlap)
returns the top candidates, and the reranker reorders them. A benchmark in the kit is a folder of
four files: the queries, the human judgments (`qrels`: grade 0 = not relevant ... 3 = perfectly
relevant), the BM25 candidates and the passage texts.

We use the kit's own `sample` collection and its query `s10`, *which planet has the shortest day*:
the best passages never say "shortest" ("Jupiter spins faster than any other planet ..."), so BM25
ranks them low. Telling them apart needs understanding, which is what a reasoning reranker is for.

# %%
import pandas as pd

from rearank_kit.data import load_benchmark

DATA = "sample"  # the kit's 10 queries; with TREC DL data: benchmark_or_sample("dl19")
TOP = pick(20, 10)  # passages shown to the model in one window (smoke mode: 10)

bench = load_benchmark(DATA, top_k=TOP)
QID = "s10" if DATA == "sample" else bench.rankings[0].query.qid
ranking = next(r for r in bench.rankings if r.query.qid == QID)
judgments = bench.qrels[QID]  # docid -> grade, for every judged passage of the query
print(f"query {QID}: {ranking.query.text!r}   ({len(ranking.candidates)} BM25 candidates)")
pd.DataFrame({
    "BM25 rank": [c.rank for c in ranking.candidates],
    "docid": ranking.docids,
    "grade": [judgments.get(d, 0) for d in ranking.docids],
    "text": [c.text[:100] for c in ranking.candidates],
})

# %% [markdown]
## 2. The prompt

Prompts are data in the kit: one TOML template per prompt (`rearank_kit/templates/`), and every
output records the template's name and hash. Three come with the kit:

- `rearank`: the paper's prompt, the one Rearank-7B was trained with. RankGPT-style (one chat turn
  per passage, each cut to 400 characters), then "first, within `<think>` tags, analyze EACH
  passage; then, within `<answer>` tags, the ranking".
- `rankgpt`: the zero-shot RankGPT baseline, ranking only, no reasoning.
- `compact`: for tiny models. All passages inline in one message, and the reply *prefilled* with
  `<answer>[` so that the model only has to continue a ranking. A 135M model ignores the long
  `rearank` prompt; with `compact` it produces a parseable answer most of the time.

# %%
from rearank_kit.prompts import available_templates, load_template

TEMPLATE = "compact"
template = load_template(TEMPLATE)
print("bundled templates:", available_templates())
print("using", template.label, "-", template.description)
messages = template.messages(ranking.query.text, [c.text for c in ranking.candidates])
for m in messages:
    print(f"\n--- {m['role']} ---\n{m['content'][:700]}{' ...' if len(m['content']) > 700 else ''}")
print(f"\n--- assistant (prefilled) ---\n{template.prefill}")

# %%
paper_prompt = load_template("rearank").messages(ranking.query.text, [c.text for c in ranking.candidates])
print(f"The paper's prompt for the same window is {len(paper_prompt)} messages:",
      " ".join(m["role"][0].upper() for m in paper_prompt), "(S system, U user, A assistant)")
print("\nIts last message:\n" + paper_prompt[-1]["content"])

# %% [markdown]
## 3. Ask the model

`load_backend("hf", model="smollm2-135m")` loads the bundled model with transformers on the CPU
(the kit also has `vllm` and `openai` backends with the same interface). `rerank_one` makes one
model call on one window, greedily (temperature 0, the paper's evaluation setting), and returns the
raw reply and its parse. `max_new_tokens` caps the reply: an answer-only prompt needs about 5 tokens
per passage, a reasoning prompt up to 2,048.

# %%
from rearank_kit.backends import load_backend
from rearank_kit.rerank import rerank_one

with load_backend("hf", model="smollm2-135m") as backend:  # leaving the block frees the model
    result = rerank_one(ranking.query.text, [c.text for c in ranking.candidates], backend,
                        template=TEMPLATE, max_new_tokens=pick(128, 48))
print("raw model output (the prefill included):\n")
print(result.output)
print(f"\n{result.generation.prompt_tokens} prompt tokens, {result.generation.output_tokens} new tokens, "
      f"finish reason: {result.generation.finish_reason}")

# %% [markdown]
## 4. From text to a ranking

`parse_ranking(text, num)` never fails: it reads the identifiers `[i]` from the last complete
`<answer>` block (or an unclosed one, or the text after `</think>`, or the whole reply), drops
duplicates and numbers out of range, and appends the passages never mentioned in their BM25 order,
the same fallback as RankGPT and the REARANK code. It also says what it had to repair: the reward
(notebook 02) and the trace analysis (notebook 06) need to tell a clean answer from a repaired one.

# %%
from rearank_kit.parsing import format_ranking, parse_ranking

parsed = result.parse
print("read from:", parsed.source)
print("identifiers the model gave, in order:", format_ranking(parsed.mentioned) or "(none)")
print(f"repairs: {parsed.num_duplicate} duplicate(s), {parsed.num_out_of_range} out of range, "
      f"{parsed.num_missing} missing (appended in BM25 order)")
print("final ranking:", format_ranking(parsed.order))

# %% [markdown]
The same rules on a few hand-written replies for a window of 3 passages:

# %%
replies = {
    "clean": "<think>[2] answers it, [1] only mentions it.</think><answer>[2] > [1] > [3]</answer>",
    "bare numbers": "<answer>2 > 3</answer>",
    "cut off in the answer": "<think>Passage [3] is the best.</think><answer>[3] >",
    "duplicates and a 7": "<answer>[1] > [1] > [7] > [3]</answer>",
    "no answer at all": "I think passage 3 is the most relevant one.",
}
pd.DataFrame([
    {"reply": name, "ranking": format_ranking(p.order), "read from": p.source, "complete": p.complete,
     "missing": p.num_missing, "think/answer format": p.think_answer_ok}
    for name, p in ((name, parse_ranking(text, 3)) for name, text in replies.items())
]).set_index("reply")

# %% [markdown]
## 5. Did it help? nDCG@10 before and after

nDCG@10 is the measure REARANK optimises and reports. Each of the first 10 passages adds its grade,
discounted by its position (`grade / log2(position + 1)`); the sum is divided by the best sum any
ranking could reach, built from *all* judged passages of the query (trec_eval's definition), so 1.0
is a perfect top 10 and passages the first stage missed keep the score below 1.

# %%
from rearank_kit.metrics import ndcg_at_k

reranked = ranking.reordered(result.order)
bm25_ndcg = ndcg_at_k(ranking.docids, judgments, k=10)
new_ndcg = ndcg_at_k(reranked.docids, judgments, k=10)
print(f"nDCG@10   BM25 {bm25_ndcg:.4f}   reranked {new_ndcg:.4f}   ({new_ndcg - bm25_ndcg:+.4f})")
pd.DataFrame({
    "BM25": ranking.docids, "grade": [judgments.get(d, 0) for d in ranking.docids],
    "reranked": reranked.docids, "grade ": [judgments.get(d, 0) for d in reranked.docids],
}, index=pd.RangeIndex(1, len(ranking.docids) + 1, name="position")).head(10)

# %% [markdown]
For whole benchmarks the kit evaluates with `ir-measures` (`metrics.evaluate`), which gives the same
nDCG@10 and any other measure. A run is a `qid -> docid -> score` mapping; `rankings_to_run`
makes one from rankings. `RR(rel=2)@10` is the reciprocal rank of the first passage of grade 2 or
more, the TREC DL convention for binary measures.

# %%
from rearank_kit.data import rankings_to_run
from rearank_kit.files import write_json
from rearank_kit.metrics import evaluate

scores = pd.DataFrame({
    name: evaluate(rankings_to_run([r]), {QID: judgments}, ["nDCG@10", "RR(rel=2)@10"]).mean
    for name, r in (("BM25", ranking), ("reranked", reranked))
}).T
write_json(RUN / "quickstart.json", {
    "data": DATA, "qid": QID, "template": template.label, "model": "smollm2-135m",
    "output": result.output, "order": result.order, "scores": scores.to_dict(orient="index"),
})
scores

# %% [markdown]
## 6. Longer lists: sliding windows

REARANK reranks the BM25 top **100**, but a model sees at most 20 passages at a time. The list is
reranked from the bottom up by a window of 20 that moves 10 positions at a time (RankGPT's
*sliding windows*): positions 80-99, then 70-89, ..., then 0-19, nine calls. Each window sees the
list as the previous one left it, so a strong passage found near the bottom can climb to the top
in one pass. `rerank()` does this for many queries at once and writes a trace of every call
(notebooks 05 and 06).

# %%
from rearank_kit.rerank import window_positions

print("top 100, window 20, step 10:", window_positions(100, 20, 10))
print(f"top {TOP} (what this notebook used):", window_positions(TOP, 20, 10))
print("\nThe same on the command line, for the whole sample, written to a run folder:")
print(f"  .venv/bin/rearank-kit rerank --data sample --top-k 20 --template compact --out {RUN / 'sample-top20'}")

# %% [markdown]
## 7. The real model: Rearank-7B on a GPU

With a GPU, swap three things: the model (`le723z/Rearank-7B`), the prompt (`rearank`, the only one
the checkpoint was trained with: the kit refuses other templates for it, since a wrong prompt costs
points silently) and the backend (`vllm`, much faster than transformers for long reasoning). Leave
room for the reasoning: `max_new_tokens=2048`. The cell runs only when CUDA is present (and not in
smoke mode); on a CPU it prints what to do.

# %%
if has_cuda() and not smoke():
    with load_backend("vllm", model="le723z/Rearank-7B", max_model_len=8192) as big:
        big_result = rerank_one(ranking.query.text, [c.text for c in ranking.candidates], big,
                                template="rearank", max_new_tokens=2048)
    print(big_result.output)
    big_ndcg = ndcg_at_k(ranking.reordered(big_result.order).docids, judgments)
    print(f"\nnDCG@10   BM25 {bm25_ndcg:.4f}   Rearank-7B {big_ndcg:.4f}")
else:
    print("No GPU here (or smoke mode), so Rearank-7B is not run. On a machine with a GPU:\n"
          "  pip install -e '.[gpu,retrieval,notebooks]'      # CUDA vLLM\n"
          "  huggingface-cli download le723z/Rearank-7B      # ~15 GB, once\n"
          "then run this cell again, or from the command line:\n"
          "  rearank-kit rerank --data dl19 --model le723z/Rearank-7B --template rearank "
          "--backend vllm --out runs/dl19-rearank7b")

# %% [markdown]
## Exercises

1. Change `QID` to another sample query (`s01` ... `s09`) and compare BM25 and the reranker. On
   which queries does the tiny model help, on which does it hurt?
2. Set `TEMPLATE = "rearank"` and run sections 2-5 again. What does the 135M model do with the
   paper's reasoning prompt? Does `parse_ranking` still find a ranking, and from where?
3. Lower `max_new_tokens` to 10. What happens to `finish_reason`, to the repairs and to nDCG@10?
4. Work out by hand the nDCG@10 of a ranking that puts the two grade-3 passages of `s10` first
   and nothing else relevant in the top 10; check it with `ndcg_at_k`.
5. (Teachers) Give students the table of section 1 without the grades and ask them to rank the
   passages; score their rankings with `ndcg_at_k` and compare with BM25 and the model.
"""

# ================================================================================================
NOTEBOOKS["01_data_augmentation"] = r"""
# %% [markdown]
# 01 · Data augmentation: from a few annotated queries to thousands of training prompts

Reinforcement learning needs many prompts, and judged queries are expensive: REARANK has only 179
annotated queries. The paper's trick is that a query with graded judgments can score *any* ordering
of *any* subset of its candidates. So each query yields many training prompts: draw random *sets*
of 20 passages from its BM25 top-100, and every set is a new ranking problem whose best answer is
known. From a few hundred queries come thousands of distinct prompts.

**What you will learn**

- what a training set is: the passages, their grades, the initial and the best possible nDCG@10;
- how `AugmentConfig` encodes the recipe (sets per query, window, filters, seed), and why each
  default is what it is;
- what the two filters drop, and how the paper's two descriptions of the filter differ;
- how much room for improvement the sets leave a reranker (initial vs best nDCG@10);
- how to write a training set to disk for GRPO (notebook 03) and read it back.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU | under a minute |
| full | CPU | about a minute |
| GPU | not needed | |

No model is loaded: augmentation is sampling and arithmetic. The seed queries are TREC DL21 (graded
0-3) when `REARANK_KIT_DATA` points at it, else the kit's `sample` collection.

# %%
import dataclasses
import math

import matplotlib.pyplot as plt
import pandas as pd

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, pick, run_folder

RUN = run_folder("01_data_augmentation")  # the only folder this notebook writes to
DATA = benchmark_or_sample("dl21")
print(describe_hardware())
print("seed queries:", DATA, "| run folder:", RUN)

# %% [markdown]
## 1. The seed queries

Every query comes with its BM25 top-100 and graded judgments. Only judged passages carry signal:
unjudged ones count as grade 0, as in trec_eval.

# %%
from rearank_kit.data import load_benchmark

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
## 2. The recipe

For every judged query (module docstring of `rearank_kit/augment.py`):

1. take its BM25 top-`pool` (100);
2. draw `samples_per_query` sets (50) of `window` passages (20, the reranker's window) without
   replacement, each from the query's own seeded random stream;
3. keep the set in BM25 order (the order a reranker would receive it in);
4. score it: `init_ndcg`, nDCG@10 as given, and `best_ndcg`, nDCG@10 sorted by grade, both against
   the ideal of *all* the query's judgments, so a set missing the best passages cannot reach 1;
5. drop sets with no relevant passage, then sets below `min_ndcg` (0.1).

Queries are split into train and test *by query* (`test_fraction`), so the test sets measure
generalisation to unseen queries. The sample has only 20 candidates per query, so on it we draw
sets of 5 (a window of 20 would draw the same 20 passages every time).

# %%
from rearank_kit.augment import AugmentConfig

WINDOW = 5 if DATA == "sample" else 20
config = AugmentConfig(samples_per_query=pick(50, 10), window=WINDOW, seed=0)
config

# %%
from rearank_kit.augment import augment, write_augmented
from rearank_kit.explore import summary_table

result = augment(bench, config)
SETS_DIR = write_augmented(result, RUN / "sets", overwrite=True, bench=bench, config=config)
print("written to", SETS_DIR, ":", sorted(p.name for p in SETS_DIR.iterdir()))
summary_table(result.summary)

# %% [markdown]
The same on the command line (it writes the same four outputs: `dataset/`, `sets.jsonl`,
`summary.json`, `manifest.json`):

# %%
print(f".venv/bin/rearank-kit augment --data {DATA} --samples-per-query {config.samples_per_query} "
      f"--window {config.window} --seed {config.seed} --out {RUN / 'sets-cli'}")

# %% [markdown]
## 3. A few sets

Each row of the dataset is one prompt for GRPO: the query, the passages in their initial order,
their grades, the grades of all the query's judgments (for the ideal DCG) and the chat messages of
the prompt. Two sets of the same query share some passages and differ in others.

# %%
from rearank_kit.augment import load_sets
from rearank_kit.explore import show_set

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
## 4. The filters

A set with no relevant passage gives every completion the same reward, so GRPO learns nothing from
it; a set whose nDCG@10 is tiny is mostly noise. The paper states its threshold twice, once on the
*initial* nDCG and once on the *best possible* one; the kit implements both (`filter="initial"`,
the default, or `"best"`) and records which one a dataset used. Here the same draws under other
settings (nothing is written):

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
Read the table: the "initial" filter drops sets that start badly, which are exactly the sets with
the most room to improve; the "best" filter keeps them and drops only sets that even a perfect
reranker could not make good. A random initial order lowers the initial nDCG (BM25 order is
informative) and so gives the reranker more to do.

## 5. How much room is there?

The reward of notebook 02 measures how much of the gap between the initial and the best nDCG@10 a
completion closes. The two histograms show that gap over all kept sets.

# %%
from rearank_kit.explore import ndcg_histogram

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
ndcg_histogram(sets, ax=axes[0])
gap = [row["best_ndcg"] - row["init_ndcg"] for row in sets["train"]]
axes[1].hist(gap, bins=20, color="tab:green")
axes[1].set(title="room to improve per set", xlabel="best - initial nDCG@10", ylabel="sets")
fig.tight_layout()
fig.savefig(RUN / "ndcg_histograms.png", dpi=100)
print(f"{sum(g <= 1e-12 for g in gap)} of {len(gap)} training sets are already in their best order")

# %% [markdown]
## 6. From a few queries to thousands of prompts

The arithmetic of the paper's trick: a query's top-100 holds C(100, 20), about 5 x 10^20,
different sets of 20, so repeats are practically impossible and the number of prompts is set by
`samples_per_query`, not by the data.

# %%
s = result.summary
kept_per_query = s["sets_kept"] / s["queries_used"]
print(f"distinct sets of 20 in a top-100: {math.comb(100, 20):.2e}")
print(f"{s['queries_used']} queries x {config.samples_per_query} draws = {s['sets_drawn']} sets drawn, "
      f"{s['sets_kept']} kept ({kept_per_query:.1f} per query)")
print(f"at this keep rate, 179 annotated queries x 50 draws -> about {179 * 50 * s['sets_kept'] / s['sets_drawn']:,.0f} prompts")
print("split by query:", s["splits"], "| test queries:", s["test_qids"])

# %% [markdown]
## Exercises

1. Set `config = AugmentConfig(..., filter="best")` in section 2 and rerun. How do the number of
   sets and the histograms change, and which filter would you train with? Why?
2. How many sets does a query with a single relevant passage keep, compared with a query with
   ten? Use `result.summary["sets_per_query"]` and the table of section 1.
3. Change `seed` and check that the sets of one query change while the split (`test_qids`)
   depends only on the seed and the usable query ids.
4. `window=10` halves the prompt length. What happens to `best_ndcg` and to the share of sets
   already in their best order? What would that do to the reward signal?
5. (Teachers) Ask students to predict the share of sets dropped as `no_relevant` from the table
   of section 1 before running section 4.
"""

# ================================================================================================
NOTEBOOKS["02_reward_design"] = r"""
# %% [markdown]
# 02 · Reward design: why REARANK normalises its nDCG reward

In GRPO the reward is the only thing the model is told about what it did. REARANK's reward for one
completion on one set has three parts:

- `r_rank = (S_new - S_init) / (S_best - S_init)`: how much of the achievable improvement the
  completion's ranking reaches, where `S` is nDCG@10 of the set in an order (`S_init` as given,
  `S_new` as ranked by the model, `S_best` sorted by grade). 1 is a best ordering, 0 "no change",
  negative "made it worse";
- `r_format1`: 1 if the reply is exactly `<think>...</think><answer>...</answer>`;
- `r_format2`: 1 if the answer is exactly `[a] > [b] > ...`;

combined as `0.8 r_rank + 0.1 r_format1 + 0.1 r_format2`. The paper compares this *normalised*
rank reward with two simpler ones: the *raw* nDCG (`S_new`) and the *difference* (`S_new - S_init`).

**What you will learn**

- to compute every component by hand on a toy set, for well-formed and broken replies;
- what raw, difference and normalised rewards reward, on sets easy and hard to improve;
- what GRPO actually uses (advantages within a group), and where the three variants differ there;
- strict vs lenient scoring, and the prefill of the `compact` prompt;
- the reward functions TRL calls during training.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU | seconds |
| full | CPU | seconds |
| GPU | not needed | |

No model is loaded; the rewards are pure functions (`rearank_kit/rewards.py`).

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rearank_kit.notebook import describe_hardware, pick, run_folder

RUN = run_folder("02_reward_design")  # the only folder this notebook writes to
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
## 1. A toy set

Five passages, shown to the model in this order, with judged grades `[0, 3, 0, 1, 2]`: passage `[2]`
is perfect, `[5]` highly relevant, `[4]` related. The query has other judged passages outside the
set (two more of grade 2 and 1, and unjudged ones), so even the best order of this set cannot
reach nDCG@10 = 1: `ideal_grades` holds *all* the query's grades, as in trec_eval.

# %%
from rearank_kit.parsing import format_ranking
from rearank_kit.rewards import rank_scores

TOY = {"grades": [0, 3, 0, 1, 2], "ideal_grades": [3, 2, 2, 1, 1, 0, 0]}
best_order = sorted(range(5), key=lambda i: -TOY["grades"][i])
s_new, s_init, s_best = rank_scores(best_order, TOY["grades"], TOY["ideal_grades"])
print("best order of the set:", format_ranking(best_order))
print(f"S_init = {s_init:.4f}  (as shown)\nS_best = {s_best:.4f}  (sorted by grade; < 1: relevant passages are missing)")
print(f"room to improve: S_best - S_init = {s_best - s_init:.4f}")

# %% [markdown]
## 2. Worked examples

`reward_breakdown(completion, grades, ideal_grades)` returns every component, the weighted total,
and the three scores it used. By default scoring is *strict*: the ranking is scored only when the
reply has a complete `<answer>...</answer>` block (otherwise a model could earn rank reward from
passage numbers scattered through its reasoning without ever learning to answer).

# %%
from rearank_kit.rewards import reward_breakdown

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
Check a few rows by hand:

- *best order*: `r_rank = (S_best - S_init) / (S_best - S_init) = 1`, both formats 1, total 1.0.
- *unchanged*: `S_new = S_init`, so `r_rank = 0`; the total is the format reward alone, 0.2. This
  "format floor" is what a model earns for answering well without improving anything: a training
  run whose reward sits at 0.2 learns nothing about ranking (notebook 04).
- *partial ranking*: the three passages it leaves out are appended in their shown order, so the
  ranking still scores; the answer is in the `[a] > [b]` format, so it earns the format rewards.
- *cut off*: no answer block, so strict mode scores no ranking (`ranked` False) and no format.

## 3. The paper's ablation: raw, difference, normalised

Why divide by the room to improve? Consider three sets of the same kind, all ranked perfectly by
the model:

- **easy**: already almost in the best order;
- **hard**: the relevant passages of the query are mostly *not* in the set, so even the best
  order scores low;
- **roomy**: the best passages are shown last.

# %%
from rearank_kit.rewards import MODES

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
Each model did the best possible job, yet:

- the **raw** reward (`S_new`) pays 1.0 on the easy and the roomy set but 0.14 on the hard one: it
  rewards the *set*, not the ranking. Within a GRPO group this offset cancels (the advantage subtracts the group mean),
  but the spread of rewards still depends on how good the set happens to be;
- the **difference** reward (`S_new - S_init`) pays according to how much room the set left: the
  easy set earns almost nothing for a perfect answer;
- the **normalised** reward gives 1 to every perfect ranking: the reward measures the model's job,
  on a scale shared by all sets. The paper found it the best of the three.

## 4. What GRPO sees: advantages within a group

GRPO samples a *group* of completions per prompt and uses `(r - mean(group)) / std(group)` as each
completion's advantage. Within one group `S_init` and `S_best` are constants, so for the rank part
alone the three variants give the *same* advantages: the offset cancels and the scale divides out.
They differ through the fixed weights of the format rewards, whose share of the total depends on
the scale of `r_rank`, and when advantages are scaled across the whole batch rather than the group
(TRL's `scale_rewards="batch"`). Here one group of four completions on the toy set:

# %%
group = ["best order, well formed", "swaps the top two", "unchanged order", "best order, no think"]
totals = pd.DataFrame({
    mode: [reward_breakdown(completions[c], **TOY, mode=mode)["total"] for c in group] for mode in MODES
}, index=group)
advantages = (totals - totals.mean()) / (totals.std(ddof=0) + 1e-4)
pd.concat({"reward (total)": totals, "advantage": advantages}, axis=1).round(3)

# %% [markdown]
Raw and difference give *identical* advantages: `S_init` is the same for the whole group and
cancels. The normalised reward differs because this set leaves little room (about 0.27 of nDCG):
under raw or difference the rank part of the rewards spans only 0.8 x 0.27, about 0.2, so a 0.1
format bonus weighs as much as a good ranking. The perfect ranking without `<think>` then gets a
*negative* advantage, below a worse ranking in the right format. Normalising stretches the rank
part to the same range on every set, so the ranking dominates, as the 0.8 / 0.1 / 0.1 weights
intend, whatever the set.

## 5. Strict and lenient; the prefill

Tiny models rarely close their tags, and the `compact` prompt asks for no reasoning at all. The
**lenient** mode (used by the `cpu-tiny` training preset) scores whatever ranking the parser can
read and lets a bare `<answer>...</answer>` earn the first format reward. With a **prefill** (the
`compact` prompt starts the reply with `<answer>[`) the model's completion is only the rest of the
answer; the reward prepends the prefill before parsing.

# %%
from rearank_kit.explore import reward_table

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
Look at *lenient, cut off*: the ranking was read from passage numbers inside an unfinished
`<think>`, and it earned the full rank reward. That is the loophole strict mode closes; lenient
mode is for tiny models that would otherwise get no signal at all.

# %% [markdown]
## 6. Your turn

Edit `my_ranking` (and the reasoning if you like), then run the cell again. The set is the toy set
of section 1: passage `[2]` has grade 3, `[5]` grade 2, `[4]` grade 1, `[1]` and `[3]` grade 0.

# %%
my_ranking = "[2] > [1] > [3] > [5] > [4]"  # edit me
my_reasoning = "Passage [2] answers the question directly."
my_completion = f"<think>{my_reasoning}</think><answer>{my_ranking}</answer>"
print(my_completion)
reward_table(my_completion, TOY)

# %% [markdown]
## 7. Real sets, and what random rankings earn

Sets drawn by the augmentation of notebook 01 from the kit's sample (drawn here again; nothing is
read from another notebook's folder): the one with the most room to improve and the one with the
least. How do random permutations of them score? This is roughly what the first GRPO groups of an
untrained model sample. On the set with little room, the normalised reward of a bad ranking falls
far below -1: the reward divides by a small number, and GRPO's per-group standardisation later
brings such groups back to the common scale.

# %%
from rearank_kit.augment import AugmentConfig, augment
from rearank_kit.data import load_benchmark
from rearank_kit.explore import show_set
from rearank_kit.rewards import rank_value

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
for ax, (label, table) in zip(axes, random_rewards.items()):
    ax.hist(table["normalized"], bins=30)
    ax.set(title=f"{label}: normalised rank reward of random rankings", xlabel="r_rank", ylabel="rankings")
fig.tight_layout()
pd.concat({label: table.describe().round(3) for label, table in random_rewards.items()}, axis=1)

# %% [markdown]
## 8. The reward functions TRL calls

During training TRL calls each reward function with the batch of completions and the dataset's
columns as keyword arguments (`grades=`, `ideal_grades=`), and logs each one as
`rewards/<name>/mean`. `make_reward_funcs` returns the three functions (picklable, for
multi-process training) and their weights, `[0.8, 0.1, 0.1]`.

# %%
from rearank_kit.rewards import make_reward_funcs

funcs, weights = make_reward_funcs(mode="normalized")
batch = list(completions.values())
columns = {"grades": [TOY["grades"]] * len(batch), "ideal_grades": [TOY["ideal_grades"]] * len(batch)}
print("functions:", [f.__name__ for f in funcs], "weights:", weights)
pd.DataFrame({f.__name__: f(batch, **columns) for f in funcs}, index=list(completions))

# %% [markdown]
## Exercises

1. In section 6, find a ranking of the toy set whose normalised reward is exactly 0 but that is
   *not* the shown order. Why is it 0?
2. Find the worst ranking of the toy set. What are its raw, difference and normalised rewards?
   Why can the normalised reward go far below -1 on some sets and not on others?
3. Change the weights: `reward_breakdown(..., weights=(1.0, 0.0, 0.0))`. Which rows of the
   section 2 table change rank? What could go wrong in training without format rewards?
4. Recompute the advantages of section 4 with the raw reward for a group whose four completions
   all give the *same* ranking. What does GRPO learn from that group?
5. (Teachers) Have students write completions that "hack" the reward (high reward, bad ranking)
   and check which ones strict mode stops.
"""


# ================================================================================================
NOTEBOOKS["03_grpo_training"] = r"""
# %% [markdown]
# 03 · GRPO training: the presets, a live run on the CPU, and the launch on GPUs

REARANK is trained with **GRPO** (Group Relative Policy Optimization, Shao et al., 2024), a
reinforcement-learning method without a value model. For every prompt (one augmented set, notebook
01) the policy samples a *group* of `G` completions; each gets the reward of notebook 02; a
completion's *advantage* is its reward minus the group's mean, divided by the group's standard
deviation; and the policy takes PPO-clipped gradient steps that make above-average completions more
likely, with an optional KL penalty (`beta`) that keeps it near the starting model. No critic, no
human preference data: the judged grades are the only supervision.

The kit runs GRPO with TRL (the paper used verl); `rearank_kit/train_presets.py` maps the paper's
settings onto TRL's and checks the batch arithmetic before any model is loaded.

**What you will learn**

- the three presets (`paper`, `gpu-small`, `cpu-tiny`) and the batch arithmetic behind them;
- the pre-flight checks that refuse a run that would fail or silently learn nothing;
- a real GRPO run of the bundled 135M model on the CPU, and what it writes (`metrics.jsonl`,
  `completions.jsonl`, checkpoints, the LoRA adapter);
- how to launch the same code on one GPU and on eight.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (1 step) |
| full | CPU, 2 cores | 15-60 minutes (30 steps, 20 s to 2 min each depending on the machine's load) |
| `gpu-small` (guarded cell) | one 80 GB GPU | hours (400 steps) |
| `paper` | 8 x 80 GB GPUs | see `docs/TRAINING.md` |

The CPU run trains the pipeline, not a good reranker: 30 steps of a 135M model will not rank
better than BM25. Notebook 04 reads the curves it writes.

# %%
import dataclasses
import shutil

import pandas as pd

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("03_grpo_training")  # the only folder this notebook writes to
DATA = benchmark_or_sample("dl21")
print(describe_hardware())
print("seed queries:", DATA, "| run folder:", RUN)

# %% [markdown]
## 1. Three presets

A preset is a frozen `TrainConfig` dataclass; every field has a one-line reason in
`train_presets.py`. The fields that matter most, side by side:

- **`paper`**: Qwen2.5-7B-Instruct, full fine-tuning on 8 GPUs, the `rearank` prompt on sets of 20,
  `G = 32` completions per prompt, 128 prompts per generation round, learning rate 1e-6, KL
  coefficient 0.01, completions up to 2,048 tokens, generated with vLLM inside the trainer.
- **`gpu-small`**: the same model and prompt on one 80 GB GPU, with LoRA (only small low-rank
  adapters are trained, so a 10x learning rate) and smaller groups (`G = 8`).
- **`cpu-tiny`**: the bundled SmolLM2-135M with LoRA on sets of 5, the answer-only `compact`
  prompt, short completions and the lenient reward, so that a laptop can run every piece.

# %%
from rearank_kit.train_presets import PRESETS, plan

FIELDS = ["model", "template", "window", "lenient", "num_generations", "generation_batch_size",
          "per_device_train_batch_size", "gradient_accumulation_steps", "num_processes",
          "max_completion_length", "temperature", "max_steps", "learning_rate", "beta", "loss_type",
          "lora_r", "bf16", "use_vllm", "vllm_gpu_memory_utilization"]
display(pd.DataFrame({name: {f: getattr(cfg, f) for f in FIELDS} for name, cfg in PRESETS.items()}))
for name, cfg in PRESETS.items():
    print(f"{name:>9}: {plan(cfg).describe()}")

# %% [markdown]
**The batch arithmetic.** verl (the paper) counts *prompts*, TRL counts *completions*. The paper's
128 prompts x 32 completions = 4,096 completions per generation round (TRL's
`generation_batch_size`), cut into optimizer steps of 256 completions (8 prompts) =
`per_device_train_batch_size` 4 x 8 GPUs x `gradient_accumulation_steps` 8: 16 optimizer steps per
round, each completion used once. A group of `G` completions must never be split across
generation batches, or its mean and standard deviation would be wrong: `plan()` refuses such
settings with the numbers that would fit.

# %%
from rearank_kit.errors import KitError
from rearank_kit.train_presets import CPU_TINY, GPU_SMALL, PAPER, format_config

try:
    plan(dataclasses.replace(CPU_TINY, num_generations=3))
except KitError as err:
    print("refused:", err)
print("\nThe paper preset, every field:\n")
print(format_config(PAPER))

# %% [markdown]
## 2. Training data for the tiny preset

`cpu-tiny` trains on sets of 5 passages rendered with the `compact` prompt, so we augment the seed
queries again with `window=5` (notebook 01 explains the recipe). The trainer re-renders every
prompt from the passage texts with the preset's template, so a set made for one prompt can train
another.

# %%
from rearank_kit.augment import AugmentConfig, augment, write_augmented
from rearank_kit.data import load_benchmark

CONFIG = dataclasses.replace(
    CPU_TINY,
    max_steps=pick(30, 1),  # optimizer steps; each is one prompt x 4 completions
    save_steps=pick(10, 1000),  # smoke mode: no intermediate checkpoint
    max_completion_length=pick(64, 32),
    torch_threads=pick(None, 1),  # smoke mode runs in CI on busy shared cores: one thread is faster there
)
aug_config = AugmentConfig(samples_per_query=pick(20, 4), window=CONFIG.window, template=CONFIG.template, seed=0)
seed_bench = load_benchmark(DATA, top_k=aug_config.pool).head(pick(None, 6))
SETS = write_augmented(augment(seed_bench, aug_config), RUN / "sets-w5", overwrite=True,
                       bench=seed_bench, config=aug_config)
print(format_config(CONFIG))

# %% [markdown]
## 3. Pre-flight checks

`prepare()` does everything but load the model: it checks the batch arithmetic, that the template
suits the model, that every set has `window` passages, and that every prompt fits
`max_prompt_length` (TRL 1.16 never truncates a prompt, so an over-long one would cost memory or
crash vLLM). With a prefill (`compact` starts the reply with `<answer>[`) the prompt is rendered to
text, chat template and prefill included; the rewards are told the prefill so that they score
prefill + completion.

# %%
from rearank_kit.train import prepare

prepared = prepare(CONFIG, SETS)
print(prepared.summary())
print("\nthe end of one training prompt, as the model sees it:\n")
print("..." + prepared.dataset[0]["prompt"][-400:])

# %% [markdown]
## 4. Train

`train()` runs TRL's `GRPOTrainer` with the kit's reward functions and a callback that appends one
line per step to `metrics.jsonl` and warns when a run is learning nothing (every group with equal
rewards, most completions cut at the length limit, the reward stuck at the format-only level). A
run folder is never mixed with another run, so we start from an empty one each time.

# %%
from rearank_kit.train import train

OUT = RUN / "grpo"
shutil.rmtree(OUT, ignore_errors=True)  # a fresh run every time this notebook runs
result = train(CONFIG, SETS, OUT)
print(f"\n{result.steps} steps in {result.seconds:.0f} s, peak memory {result.peak_rss_mb / 1024:.1f} GiB")
print("run folder:", sorted(p.name for p in OUT.iterdir()))
for warning in result.warnings:
    print("warning:", warning)

# %%
COLUMNS = ["reward", "reward_std", "rewards/rank_reward/mean", "rewards/format_think_answer_reward/mean",
           "rewards/format_answer_reward/mean", "frac_reward_zero_std", "completions/mean_length",
           "completions/clipped_ratio", "kl", "loss", "grad_norm", "step_time"]
steps = pd.DataFrame([r for r in result.records if "reward" in r]).set_index("step")
steps[[c for c in COLUMNS if c in steps.columns]].round(3)

# %% [markdown]
Every completion of the run is in `completions.jsonl` with its reward components and its advantage
(prompts are left out: they hold passage text). Completions of one group share a `set_id`; their
advantages sum to zero, and a group whose rewards are all equal has all-zero advantages, teaching
nothing.

# %%
completions = pd.read_json(OUT / "completions.jsonl", lines=True)
completions = pd.concat([completions.drop(columns="rewards"),
                         pd.json_normalize(completions["rewards"].tolist()).add_prefix("r/")], axis=1)
completions[["step", "set_id", "completion", "reward", "advantage"]
            + [c for c in completions.columns if c.startswith("r/")]].head(8)

# %% [markdown]
## 5. On GPUs

**One GPU (`gpu-small`).** The cell below builds window-20 sets with the `rearank` prompt and trains
Qwen2.5-7B-Instruct with LoRA for a few steps, from the command line in a child process: vLLM and
the training state then leave the GPU when it ends. Training *inside* the notebook with
`train(GPU_SMALL, ...)` works too, but the kernel then holds the model, the optimizer and vLLM's
memory: **restart the kernel between training and evaluation** (notebook 05), or the evaluation
model will not fit.

Memory on one 80 GB GPU (the comment above `GPU_SMALL` works it out): about 15 GB of bf16 weights,
under 1 GB of LoRA weights and optimizer state, ~9 GB of activations with gradient checkpointing,
and 24 GB for vLLM (`vllm_gpu_memory_utilization=0.3`: its own copy of the weights plus the KV
cache): about 50 GB in all.

# %%
import subprocess
import sys

if has_cuda() and not smoke():
    gpu_aug = AugmentConfig(samples_per_query=50, window=GPU_SMALL.window, template=GPU_SMALL.template, seed=0)
    gpu_bench = load_benchmark(DATA, top_k=gpu_aug.pool)
    GPU_SETS = write_augmented(augment(gpu_bench, gpu_aug), RUN / "sets-w20", overwrite=True,
                               bench=gpu_bench, config=gpu_aug)
    GPU_OUT = RUN / "grpo-gpu-small"
    shutil.rmtree(GPU_OUT, ignore_errors=True)
    command = [sys.executable, "-m", "rearank_kit.cli", "train", "--preset", "gpu-small", "--data", str(GPU_SETS),
               "--steps", "8", "--out", str(GPU_OUT)]
    print(" ".join(command))
    subprocess.run(command, check=True)
else:
    print("No GPU (or smoke mode): the gpu-small run is skipped. On a machine with one 80 GB GPU:\n"
          f"  rearank-kit augment --data {DATA} --window 20 --template rearank --samples-per-query 50 --out runs/aug-w20\n"
          "  rearank-kit train --preset gpu-small --data runs/aug-w20 --dry-run      # checks and plan only\n"
          "  rearank-kit train --preset gpu-small --data runs/aug-w20 --out runs/gpu-small")

# %% [markdown]
**Eight GPUs (`paper`).** Full fine-tuning of a 7B model does not fit one GPU: weights, gradients
and Adam states (about 122 GB) are sharded across the 8 processes by DeepSpeed ZeRO-3 or FSDP2
(`configs/accelerate/`), and each process runs its own vLLM engine for generation
(`vllm_mode="colocate"`). `accelerate launch` starts the processes; each runs the same training
code, and only the first writes files. With another GPU count, keep 256 completions per optimizer
step by raising `gradient_accumulation_steps`. The alternative to colocating is a separate vLLM
server on its own GPUs (`trl vllm-serve`, `--set vllm_mode=server`). All of it is in
`docs/TRAINING.md`.

# %%
print("\n".join([
    "# 1. the training sets (window 20, the rearank prompt), once:",
    f"rearank-kit augment --data {DATA} --window 20 --template rearank --samples-per-query 50 --seed 0 --out runs/aug-w20",
    "# 2. the plan for 8 processes and every pre-flight check, without loading the model:",
    "rearank-kit train --preset paper --data runs/aug-w20 --dry-run",
    "# 3. 8 processes on one node, ZeRO-3 (or configs/accelerate/fsdp.yaml for FSDP2):",
    "accelerate launch --config_file configs/accelerate/zero3.yaml -m rearank_kit.commands.train \\",
    "    --preset paper --data runs/aug-w20 --out runs/paper",
    "# 4. 4 GPUs instead of 8: the same 256 completions per optimizer step",
    "accelerate launch --config_file configs/accelerate/zero3.yaml --num_processes 4 -m rearank_kit.commands.train \\",
    "    --preset paper --data runs/aug-w20 --out runs/paper-4gpu --set num_processes=4 --set gradient_accumulation_steps=16",
    "# 5. interrupted? the same command with --resume continues from the last checkpoint",
]))
print("\npaper on 4 GPUs:", plan(dataclasses.replace(PAPER, num_processes=4, gradient_accumulation_steps=16)).describe())

# %% [markdown]
## Exercises

1. Set `temperature=0.0` in `CONFIG` and train 3 steps. What happens to `frac_reward_zero_std`, and
   why does GRPO then learn nothing?
2. Make the GRPO group smaller (`num_generations=2`). Which other settings must change for
   `plan()` to accept it? Check your answer by running `plan()`.
3. Change `reward_mode` to `"raw"` and train the same number of steps with the same seed. Compare
   the reward curves in notebook 04 (overlay the two runs).
4. How many prompts does the `paper` preset see in total? How many times is each augmented set
   seen, if the paper's dataset holds about 7,000 sets?
5. (Teachers) Give the verl settings of the paper (128 prompts per rollout, 32 samples, mini-batch
   8 prompts, 8 GPUs) and ask students to derive TRL's `generation_batch_size`,
   `per_device_train_batch_size` and `gradient_accumulation_steps`.
"""


# ================================================================================================
NOTEBOOKS["04_reward_and_length_curves"] = r"""
# %% [markdown]
# 04 · Reward and length curves: reading a GRPO run

A GRPO run can look busy and learn nothing: the loss of GRPO is not a measure of progress (it is
close to zero by construction, since advantages average to zero), so the curves to watch are the
reward and the signals that explain it. REARANK's paper reports the reward rising while the
reasoning length stays stable; this notebook shows how to draw those curves and how to read them.

**What you will learn**

- what each logged metric means: the reward (mean, spread within groups, each component), the share
  of groups with zero reward spread, the completion length and the share clipped at the limit, KL;
- how to read one run, overlay several, and smooth noisy curves (EMA, rolling mean);
- how to recognise the failure patterns (a run that learns nothing, truncated reasoning, a runaway
  policy, a collapsing length) and what to change, with `curves.diagnose`.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU | under a minute |
| full | CPU | under a minute |
| GPU | not needed | |

The curves come from the reference run committed with the kit
(`data/runs/cpu-tiny-dl21/metrics.jsonl`: the `cpu-tiny` preset on TREC DL21 sets) and, when
notebook 03 has run, from the fresh run it wrote. A `metrics.jsonl` from a GPU run reads the same.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rearank_kit.notebook import REPO_ROOT, describe_hardware, run_folder

RUN = run_folder("04_reward_and_length_curves")  # the only folder this notebook writes to
REFERENCE = REPO_ROOT / "data" / "runs" / "cpu-tiny-dl21"
FRESH = RUN.parent / "03_grpo_training" / "grpo"  # notebook 03's run folder (read only)
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
## 1. Load the runs

`load_curves` reads a `metrics.jsonl` (or TRL's `trainer_state.json`, or a checkpoint folder) into
one row per step, with TRL's column names. A last line cut by an interrupted run is skipped.

# %%
from rearank_kit.curves import load_curves, reward_components

runs = {"reference (cpu-tiny, dl21)": load_curves(REFERENCE / "metrics.jsonl")}
if (FRESH / "metrics.jsonl").is_file():
    runs["fresh (notebook 03)"] = load_curves(FRESH)
else:
    print("notebook 03 has not written a run yet: showing the reference run only")
for name, df in runs.items():
    print(f"{name}: {len(df)} logged steps, reward components {reward_components(df)}")
ref = runs["reference (cpu-tiny, dl21)"]
MAIN = ["reward", "reward_std", *[f"rewards/{fn}/mean" for fn in reward_components(ref)], "frac_reward_zero_std",
        "completions/mean_length", "completions/clipped_ratio", "kl", "loss", "step_time"]
ref[[c for c in MAIN if c in ref.columns]].head()

# %% [markdown]
The reference run comes with a README that says how it was made and what happened in it:

# %%
print((REFERENCE / "README.md").read_text(encoding="utf-8") if (REFERENCE / "README.md").is_file()
      else "(no README beside the reference run)")

# %% [markdown]
## 2. What each curve says

| column | meaning | healthy |
| --- | --- | --- |
| `reward` | mean total reward of the step's completions | rises, then levels off |
| `reward_std` | spread of rewards *within* groups | stays above 0: GRPO learns from differences |
| `rewards/<fn>/mean` | each component: rank, the two formats | format near 1 early, rank rising |
| `frac_reward_zero_std` | share of groups whose completions all got the same reward | low: such groups teach nothing |
| `completions/mean_length` | mean completion length in tokens | stable, or a slow rise |
| `completions/clipped_ratio` | share cut at `max_completion_length` | near 0: a cut reply has no answer |
| `kl` | distance from the starting model (only with `beta > 0`) | small, slowly rising |

The reward panel draws the mean with a band of plus or minus `reward_std`, and each component.
The `cpu-tiny` preset trains with `beta = 0` (no reference model, to save memory), so it logs no KL
and that panel stays empty; the GPU presets use the paper's `beta = 0.01`.

# %%
from rearank_kit.curves import plot_kl, plot_length, plot_reward, plot_zero_std

fig, axes = plt.subplots(2, 2, figsize=(13, 8))
plot_reward(ref, ax=axes[0, 0])
plot_length(ref, ax=axes[0, 1])
plot_zero_std(ref, ax=axes[1, 0])
plot_kl(ref, ax=axes[1, 1])
fig.tight_layout()

# %% [markdown]
## 3. Smoothing

With one prompt per step (the tiny preset) the reward jumps from step to step: each step sees a
different set, some easy, some hard. Smooth before judging a trend, but keep the raw line in view.
The exponential moving average is TensorBoard's (`weight` 0.6 = a memory of a few steps); the
rolling mean averages the last `window` steps.

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4), sharey=True)
plot_reward(ref, ax=axes[0], components=False)
plot_reward(ref, ax=axes[1], components=False, smooth=0.8)
plot_reward(ref, ax=axes[2], components=False, window=5)
for ax, title in zip(axes, ["raw", "EMA, weight 0.8", "rolling mean of 5 steps"]):
    ax.set_title(title)
fig.tight_layout()

# %% [markdown]
## 4. All panels, several runs

`plot_dashboard` draws the six panels with one colour per run: overlay a fresh run on the reference,
or the runs of an ablation (e.g. the three reward modes of notebook 02). Then save it, with a
manifest beside the PNG saying which runs and which smoothing made it.

# %%
from rearank_kit.curves import plot_dashboard, save_figure

dashboard = plot_dashboard(runs, smooth=0.6)
save_figure(dashboard, RUN / "dashboard.png", {"runs": {name: df.attrs.get("source") for name, df in runs.items()},
                                              "smooth": 0.6})

# %% [markdown]
## 5. Failure patterns

Four ways a GRPO run goes wrong, as made-up curves (30 steps) so that each pattern is plain:

- **learns nothing**: every group's completions get the same reward (`frac_reward_zero_std` = 1),
  so every advantage is 0. Typical causes: temperature too low, groups too small, sets whose order
  cannot be improved, or a parser that reads every reply as the same ranking. The reward then sits
  at the *format floor*, 0.2: what a well-formatted reply that changes nothing earns;
- **truncated reasoning**: the reasoning grows until most completions hit `max_completion_length`
  (clipped ratio near 1): no `<answer>`, no rank reward;
- **runaway policy**: KL grows without bound, usually a learning rate too high or `beta` too low;
- **collapsing length**: the model learns to drop its reasoning (an empty `<think>`), which can
  still earn format rewards.

# %%
steps = pd.RangeIndex(1, 31, name="step")
t = np.linspace(0, 1, len(steps))
rng = np.random.default_rng(0)
noise = rng.normal(0, 0.02, len(steps))
healthy = {"reward": 0.25 + 0.45 * t + noise, "reward_std": 0.3 - 0.1 * t, "frac_reward_zero_std": 0.2 - 0.1 * t,
           "completions/mean_length": 300 + 40 * t, "completions/clipped_ratio": 0.02 + 0 * t, "kl": 0.02 * t,
           "rewards/rank_reward/mean": 0.1 + 0.5 * t, "rewards/format_think_answer_reward/mean": 0.8 + 0.2 * t,
           "rewards/format_answer_reward/mean": 0.9 + 0.1 * t}
patterns = {
    "healthy": pd.DataFrame(healthy, index=steps),
    "learns nothing": pd.DataFrame({**healthy, "reward": 0.2 + 0 * t, "reward_std": 0 * t,
                                    "frac_reward_zero_std": 1 + 0 * t, "rewards/rank_reward/mean": 0 * t,
                                    "rewards/format_think_answer_reward/mean": 1 + 0 * t,
                                    "rewards/format_answer_reward/mean": 1 + 0 * t}, index=steps),
    "truncated reasoning": pd.DataFrame({**healthy, "reward": 0.3 - 0.2 * t + noise,
                                         "completions/mean_length": 900 + 1100 * t,
                                         "completions/clipped_ratio": 0.05 + 0.85 * t}, index=steps),
    "runaway policy": pd.DataFrame({**healthy, "kl": 0.01 * np.exp(6 * t)}, index=steps),
    "collapsing length": pd.DataFrame({**healthy, "completions/mean_length": 400 * (1 - 0.9 * t)}, index=steps),
}
patterns_fig = plot_dashboard(patterns, smooth=0.0)

# %%
from rearank_kit.curves import diagnose

for name, df in patterns.items():
    findings = diagnose(df)
    print(f"== {name}: {len(findings)} finding(s)")
    for finding in findings:
        print("  -", finding)

# %% [markdown]
## 6. Diagnose the real runs

The same checks on the reference run and, if present, the fresh one. A run of a few steps is too
short to judge, and `diagnose` says so. Do not expect the tiny preset to pass: it trains a 135M
model for a few dozen steps to exercise the pipeline, not to make a reranker, and its curves show
real failure patterns. Match each finding with the panels above, then read the completions
(exercise 4) to see what the model actually wrote.

# %%
for name, df in runs.items():
    print(f"== {name}")
    for finding in diagnose(df) or ["no failure pattern found"]:
        print("  -", finding)

# %% [markdown]
## Exercises

1. Change the smoothing weight in section 3 from 0.8 to 0.95. What trend appears that is not in the
   raw data? When does smoothing mislead?
2. Make the "healthy" curves of section 5 fail `diagnose` with as small a change as you can. Which
   threshold of `diagnose` did you cross?
3. Train the tiny preset twice in notebook 03, with `reward_mode="normalized"` and `"raw"`, and
   overlay the two runs here. Which curves differ, and why (notebook 02, section 4)?
4. In the reference run, at which steps is `frac_reward_zero_std` 1? Look up completions of such
   steps in `completions_sample.jsonl` beside the reference run (or in the `completions.jsonl` of
   your own run; notebook 03 shows how to read it) and explain why every completion of a group got
   the same reward.
5. (Teachers) Show students only the dashboard of a run and ask them to predict what its
   completions look like.
"""


# ================================================================================================
NOTEBOOKS["05_benchmark_evaluation"] = r"""
# %% [markdown]
# 05 · Benchmark evaluation: BM25 vs a reranker, with significance, and the paper's numbers

The paper evaluates REARANK the way listwise rerankers are usually evaluated: rerank the BM25
top-100 of every query with sliding windows (20 passages, step 10), and report nDCG@10, on TREC DL19
and DL20 (in domain, MS MARCO passages), on eight BEIR datasets (out of domain) and on BRIGHT
(reasoning-intensive retrieval). This notebook runs that protocol on the local TREC DL data, tests
whether the difference to BM25 is significant, and puts the paper's numbers beside ours.

**What you will learn**

- to rerank a benchmark with `rerank()` (resumable, one trace per model call) and evaluate it with
  one call, `metrics.experiment`, as a table of systems x measures;
- to read per-query scores and a paired t-test, and why a mean over 43 queries needs one;
- how BEIR and BRIGHT are fetched over the network (shown, not run here);
- how our numbers compare with the paper's, and with what tolerance.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (2 queries of DL19, top 20, 32 tokens) |
| full | CPU, 2 cores | about 20 minutes (DL19 + DL20, top 20, the bundled model) |
| full | one GPU with 24 GB or more | 30-60 minutes (DL19 + DL20, top 100, Rearank-7B with vLLM) |

On a CPU the bundled 135M model reranks the top 20 only (one window per query): it shows the
protocol, not the paper's results. With a GPU the notebook switches to Rearank-7B and the paper's
setting. Without `REARANK_KIT_DATA` it falls back to the kit's `sample` collection.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("05_benchmark_evaluation")  # the only folder this notebook writes to
GPU = has_cuda() and not smoke()
DATASETS = list(dict.fromkeys(benchmark_or_sample(name) for name in pick(["dl19", "dl20"], ["dl19"])))
print(describe_hardware())
print("benchmarks:", DATASETS, "| run folder:", RUN)

# %% [markdown]
## 1. The reranking setting

`RerankConfig` holds what changes a result: how many BM25 candidates are reranked (`top_k`), the
window and step, the prompt template, and the generation limits. The model preset decides the
template: Rearank-7B only accepts the `rearank` prompt it was trained with (the original code
chose the prompt by a substring of the model name, and users lost points to it).

# %%
from rearank_kit.models import default_template
from rearank_kit.rerank import RerankConfig

MODEL = "le723z/Rearank-7B" if GPU else "smollm2-135m"
BACKEND = "vllm" if GPU else "hf"
QUERIES = pick(None, 2)  # None: every query
CONFIG = RerankConfig(
    top_k=100 if GPU else 20,  # CPU: one window of 20 per query
    window=20,
    step=10,
    template=default_template(MODEL),
    max_new_tokens=pick(None, 32),  # None: 2,048 for a reasoning prompt, 128 for an answer-only one
)
print(MODEL, "via", BACKEND)
CONFIG.resolved()

# %% [markdown]
## 2. Rerank

`rerank()` sends the windows at the same position of many queries to the backend together, and
writes each finished query to `rankings.jsonl` and each model call to `traces.jsonl` (notebook 06
reads them). Run the cell again and finished queries are skipped: an interrupted run resumes. A
folder made with other settings is refused rather than mixed, so each setting gets its own folder.

# %%
from rearank_kit.backends import load_backend
from rearank_kit.data import load_benchmark, write_run
from rearank_kit.rerank import rerank

results = {}
with load_backend(BACKEND, model=MODEL) as backend:
    for name in DATASETS:
        bench = load_benchmark(name, top_k=CONFIG.top_k).head(QUERIES)
        out = RUN / f"{name}-{MODEL.split('/')[-1]}-top{CONFIG.top_k}{'-smoke' if smoke() else ''}"
        reranked = rerank(bench, backend, CONFIG, out_dir=out, manifest_fields={"data": bench.name})
        write_run(reranked, out / "run.trec", tag=MODEL.split("/")[-1])
        results[name] = (bench, reranked)
        print(f"{name}: {len(reranked)} queries reranked -> {out}")

# %% [markdown]
## 3. One table: systems x measures

`metrics.experiment` evaluates several runs against the same judgments with ir-measures and adds,
for every system but the baseline, the p-value of a two-sided paired t-test over the queries.
`RR(rel=2)@10` counts grade 2 and 3 as relevant, the TREC DL convention.

# %%
from rearank_kit.data import rankings_to_run
from rearank_kit.metrics import experiment

MEASURES = ["nDCG@10", "nDCG@5", "RR(rel=2)@10"]
tables, per_query = {}, {}
for name, (bench, reranked) in results.items():
    runs = {"BM25": bench.first_stage_run(), MODEL: rankings_to_run(reranked)}
    qrels = {q.qid: bench.qrels[q.qid] for q in bench.queries if q.qid in bench.qrels}  # the reranked queries
    tables[name], per_query[name] = experiment(runs, qrels, MEASURES, baseline="BM25")
summary = pd.concat(tables, names=["benchmark"]).round(4)
summary.to_csv(RUN / f"summary{'-smoke' if smoke() else ''}.csv")
summary

# %% [markdown]
## 4. Per query, and is it significant?

A mean hides where a reranker helps and where it hurts. The paired t-test asks whether the
per-query differences are consistently on one side of zero; with a handful of queries almost
nothing is significant, and with ~50 queries a difference of one or two nDCG points often is not
either. Report the p-value with the mean, and look at the per-query picture.

# %%
from rearank_kit.metrics import paired_ttest

for name in results:
    scores = pd.DataFrame({system: ev.per_query["nDCG@10"] for system, ev in per_query[name].items()})
    scores["delta"] = scores[MODEL] - scores["BM25"]
    t, p = paired_ttest(scores[MODEL].to_dict(), scores["BM25"].to_dict())
    better, worse = int((scores["delta"] > 0).sum()), int((scores["delta"] < 0).sum())
    print(f"{name}: mean delta {scores['delta'].mean():+.4f}; better on {better}, worse on {worse}, "
          f"equal on {len(scores) - better - worse} of {len(scores)} queries; paired t = {t:.2f}, p = {p:.3g}")
    ax = scores["delta"].sort_values().plot.bar(figsize=(max(4, 0.18 * len(scores)), 3), color="tab:blue")
    ax.set(title=f"{name}: nDCG@10 reranked - BM25, per query", xlabel="query", ylabel="delta")
    ax.axhline(0, color="black", linewidth=0.8)
    plt.show()
    display(scores.round(4).head(10))

# %% [markdown]
## 5. The paper's numbers

`paper.paper_results()` holds the paper's reported nDCG@10 (in points) with its source, and a
`verified` flag: a cell not yet checked against the paper is left empty rather than guessed.
Empty cells (NaN) are rows not yet checked against the paper. `compare_with_paper` puts our
numbers beside the paper's with an explicit tolerance (1 point by default).
The BM25 baseline is where our numbers must agree: it checks the data and the evaluator.

# %%
from rearank_kit.metrics import evaluate
from rearank_kit.paper import compare_with_paper, paper_results

table1 = paper_results("Table 1")
display(table1.pivot(index="dataset", columns="system", values="value"))
display(paper_results("Table 2").pivot(index="dataset", columns="system", values="value"))

paper_sets = [name for name in results if name in set(table1["dataset"])]
if paper_sets:
    full = {name: load_benchmark(name, top_k=100) for name in paper_sets}  # every query, BM25 top 100
    bm25_full = {name: evaluate(b.first_stage_run(), b.qrels, ["nDCG@10"]).mean["nDCG@10"] for name, b in full.items()}
    display(compare_with_paper(bm25_full, system="BM25"))
    if GPU and QUERIES is None:
        ours = {name: tables[name].loc[MODEL, "nDCG@10"] for name in paper_sets}
        display(compare_with_paper(ours, system="Rearank-7B"))
    else:
        print("Reranked numbers are compared with the paper only for Rearank-7B on all queries (a GPU run).")
else:
    print("These benchmarks are not in the paper's tables (sample data): nothing to compare.")

# %% [markdown]
## 6. Out of domain: BEIR and BRIGHT (network needed)

The paper also reranks the BM25 top-100 of eight BEIR datasets and of the twelve BRIGHT tasks.
These need a network: `remote.load_any` builds the same four-file benchmark folder from
`ir_datasets` ids (queries and judgments) and pyserini's prebuilt BM25 indexes (candidates and
texts), or, for BRIGHT, from the Hugging Face hub with the kit's own BM25; each is cached under
`$REARANK_KIT_CACHE/benchmarks` and later reused offline. Three of the paper's BEIR datasets
(Signal-1M, TREC-NEWS, Robust04) are not openly downloadable: build their folders from your own
licensed copies with `rearank-kit retrieve`. The cell below is switched off; set `RUN_NETWORK = True`
on a machine with internet access (and a GPU, for Rearank-7B).

# %%
from rearank_kit.remote import BRIGHT_TASKS

BEIR = {  # the paper's BEIR datasets -> ir_datasets ids (None: licensed, bring your own folder)
    "covid": "beir/trec-covid", "nfcorpus": "beir/nfcorpus/test", "touche": "beir/webis-touche2020/v2",
    "dbpedia": "beir/dbpedia-entity/test", "scifact": "beir/scifact/test",
    "signal": None, "news": None, "robust04": None,
}
RUN_NETWORK = False
print("BEIR:", ", ".join(f"{k} ({v or 'licensed'})" for k, v in BEIR.items()))
print("BRIGHT:", ", ".join(f"bright/{task}" for task in BRIGHT_TASKS))

if RUN_NETWORK:
    from rearank_kit.remote import load_any

    remote_scores = {}
    with load_backend(BACKEND, model=MODEL) as backend:
        targets = {**{k: v for k, v in BEIR.items() if v}, **{task: f"bright/{task}" for task in BRIGHT_TASKS}}
        for short, dataset_id in targets.items():
            bench = load_any(dataset_id, top_k=100).head(QUERIES)
            reranked = rerank(bench, backend, CONFIG, out_dir=RUN / f"{short}-{MODEL.split('/')[-1]}",
                              manifest_fields={"data": bench.name})
            qrels = {q.qid: bench.qrels[q.qid] for q in bench.queries if q.qid in bench.qrels}
            table, _ = experiment({"BM25": bench.first_stage_run(), MODEL: rankings_to_run(reranked)},
                                  qrels, ["nDCG@10"], baseline="BM25")
            remote_scores[short] = table.loc[MODEL, "nDCG@10"]
    display(compare_with_paper(remote_scores, system="Rearank-7B"))
else:
    print("RUN_NETWORK is False: nothing downloaded.")

# %% [markdown]
## Exercises

1. Rerank with the `rankgpt` template instead of `compact` (both answer-only). Does the paired
   t-test tell them apart on DL19?
2. How many queries would you need for a true gain of 2 nDCG points to be significant at p < 0.05?
   Use the standard deviation of the per-query deltas of section 4 as an estimate.
3. Rerank the top 40 with the bundled model (two windows per query) and compare with the top 20. Does
   the second window help or hurt, and why might a weak model hurt more with more windows?
4. The `RR(rel=2)@10` column treats grade 1 as not relevant. Recompute it as `RR@10` (grade 1
   relevant). Which systems gain, and why?
5. (Teachers) Assign each group one BEIR dataset to run on a GPU machine with `RUN_NETWORK = True`,
   and collect the results into one table next to the paper's.
"""


# ================================================================================================
NOTEBOOKS["06_reasoning_traces"] = r"""
# %% [markdown]
# 06 · Reasoning traces: what the reranker wrote, and whether it meant it

REARANK's claim is that reasoning makes a better reranker: the model discusses the passages in
`<think>` before it ranks them. Every model call of a kit rerank run leaves a *trace* (the window
shown, the raw reply, the parsed order, the parser's diagnostics, token counts), so the reasoning
can be studied: how long it is, whether it discusses every passage, whether the passages it calls
relevant are the ones it ranks high, and whether they are the ones the judges marked relevant.

**What you will learn**

- to load a run's `traces.jsonl` as a table with derived columns (`traces.load_traces`);
- to measure reasoning length, the share of passages the reasoning mentions, the answer format and
  the parser's repairs;
- to check the reasoning against the ranking (claims vs ranks) and against the judgments;
- to compare two runs on the same windows (before/after), and read one trace with the judged grade
  of each passage beside it.

**Runtime and hardware**

| mode | hardware | time |
| --- | --- | --- |
| smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (2 queries, windows of 5, 32 tokens) |
| full | CPU, 2 cores | 15-30 minutes (10 sample queries, top 20, 256 tokens) |
| full | one GPU with 40 GB or more | 20-40 minutes (Qwen2.5-7B-Instruct vs Rearank-7B on 10 DL19 queries) |

On a CPU the two runs compared are the bundled model with the answer-only `compact` prompt and with
the paper's reasoning prompt `rearank`: the 135M model's "reasoning" is mostly noise, which the
measures below make visible. With a GPU they are the real before/after: the base model
Qwen2.5-7B-Instruct and the trained Rearank-7B, both with the `rearank` prompt.

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("06_reasoning_traces")  # the only folder this notebook writes to
GPU = has_cuda() and not smoke()
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
## 1. Two runs to compare

Both runs rerank the same queries with the same windows, so their traces can be matched window by
window. Each gets its own folder; running the cell again reuses finished work.

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
## 2. The traces as a table

One row per model call. Besides the record's own fields, `load_traces` adds the reasoning text
(`think_text`; for a reply cut inside `<think>`, the reasoning so far), its length in words, the
parser's diagnostics as columns, whether the answer needed a repair, which passages the reasoning
mentions (`[3]`, `passage 3`) and what it calls each of them (`claims`).

# %%
from rearank_kit.traces import load_traces

traces = {label: load_traces(folder) for label, folder in folders.items()}
COLUMNS = ["qid", "window_start", "window_end", "output_tokens", "finish_reason", "think_words",
           "mention_frac", "think_answer_ok", "answer_format_ok", "repaired"]
pd.concat({label: t[[c for c in COLUMNS if c in t.columns]] for label, t in traces.items()})

# %% [markdown]
## 3. Format and length

The share of replies in each format, repaired by the parser, cut at the token limit; then the
length of the reasoning and of the whole reply. REARANK's paper reports that its reasoning stays
at a stable length through training rather than growing without bound.

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
for ax, title in zip(axes, ["reasoning length (words)", "reply length (tokens)", "share of the window mentioned"]):
    ax.set(title=title, ylabel="model calls")
    ax.legend()
fig.tight_layout()

# %% [markdown]
## 4. Does the ranking follow the reasoning?

`claims` classifies, clause by clause, whether the reasoning calls a passage relevant or not (a
keyword heuristic made for teaching: readable, often right, never a judgment). If the model means
what it says, passages it calls relevant should be ranked near the top (normalised rank near 0) and
the ones it dismisses near the bottom. The same table says how the judges graded them.

The bundled model's reasoning rarely makes such claims, so first a hand-written trace, *not* model
output, for the sample query `s10` (which planet has the shortest day), to show what the analysis
reads:

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
## 5. Are the judged relevant passages ranked high?

Independently of what the reasoning says: by judged grade, the mean position at which passages were
*shown* and the mean rank the model gave them. A reranker that helps moves the grade-3 passages up
(mean rank below mean shown) and the grade-0 passages down.

# %%
from rearank_kit.traces import judged_summary

pd.concat({label: judged_summary(t, bench.qrels) for label, t in traces.items()}, axis=1).round(2)

# %% [markdown]
## 6. Before and after, window by window

`compare_runs` matches the windows of two runs (same query, same positions) and gives each measure
for both and the difference: reasoning length, mentions, format, repairs and the nDCG@10 of the
window's order against the judgments (`ndcg`), next to the nDCG@10 of the order as shown
(`ndcg_shown`). `same_docids` says whether both runs saw the same passages in the window: after the
first window of a query the two runs' lists differ.

# %%
from rearank_kit.traces import compare_runs, comparison_summary

cmp = compare_runs(traces[A], traces[B], bench.qrels, labels=(A, B))
display(comparison_summary(cmp).round(3))
cmp[["qid", "window_start", "window_end", "same_docids", f"think_words_{A}", f"think_words_{B}",
     f"ndcg_{A}", f"ndcg_{B}", "ndcg_delta"]].round(3)

# %% [markdown]
## 7. One trace, readable

The model's own words, the answer, and the parsed ranking with each passage's docid, its judged
grade (`-` when unjudged) and what the reasoning called it: the view to read before trusting any
of the averages above. Below, the trace of run `B` with the longest reasoning, as text and as HTML.

# %%
from rearank_kit.traces import render_trace_html

longest = traces[B].sort_values("think_words", ascending=False).iloc[0]
print(render_trace(longest, bench.qrels))
HTML(render_trace_html(longest, bench.qrels))

# %% [markdown]
Runs written by notebook 05, if it has run, can be read the same way:

# %%
for path in sorted((RUN.parent / "05_benchmark_evaluation").glob("*/traces.jsonl")):
    print(path.parent.name)
    display(format_stats(path).round(3).to_frame().T)

# %% [markdown]
## Exercises

1. In the table of section 2, find a reply the parser had to repair. Read it with `render_trace`:
   what went wrong, and would the strict reward of notebook 02 have scored its ranking?
2. Edit the hand-written trace of section 4 so that the reasoning contradicts the answer (calls [5]
   irrelevant but ranks it first). How does `claims_summary` show it?
3. With the `rearank` prompt, is the share of passages mentioned related to the window's nDCG@10?
   Plot `mention_frac` against `ndcg` from `compare_runs`.
4. Compare a trained LoRA adapter from notebook 03 with the base model: load it with
   `peft.PeftModel.from_pretrained(model, adapter_folder)` on the bundled model, wrap it with
   `HFBackend.from_model(model, tokenizer)` and rerank the same queries into a third folder.
5. (Teachers) Print three traces without the grades, ask students to judge the passages from the
   reasoning alone, then reveal the judged grades.
"""


def parse_cells(text: str) -> list[tuple[str, str]]:
    """[(kind, source)] from the marker-separated text; kind is "markdown" or "code"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _MARKER.match(line)
        if m:
            cells.append(("markdown" if m.group(1) else "code", []))
        elif cells:
            cells[-1][1].append(line)
    return [(kind, src) for kind, lines in cells if (src := "\n".join(lines).strip("\n"))]


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python", "version": "3.11"},
        # Per-cell limit for nbmake/nbclient (default 300 s): a model cell on busy shared CI cores
        # can take longer even in smoke mode; the runtimes in notebooks/README.md are the budget.
        "execution": {"timeout": CELL_TIMEOUT_S},
    }
    for i, (kind, source) in enumerate(parse_cells(NOTEBOOKS[name])):
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(source)
        cell.id = f"c{name[:2]}-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        target = HERE / f"{name}.ipynb"
        text = render(name)
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        if check:
            stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote notebooks/{target.name}")
    if stale:
        print("out of date, run .venv/bin/python notebooks/_build.py: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
