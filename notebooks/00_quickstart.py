# %% [markdown]
# # 00 · Quickstart: rerank one query with a reasoning reranker
#
# REARANK (Zhang et al., 2025, [arXiv:2505.20046](https://arxiv.org/abs/2505.20046)) is a *listwise*
# reranker: a language model reads a query and a numbered window of passages at once, reasons about
# them inside `<think>...</think>`, and answers with a ranking such as
# `<answer>[3] > [1] > [2]</answer>`. It reranks the top-100 passages of a cheap first-stage
# retriever (BM25). Rearank-7B is Qwen2.5-7B-Instruct trained for this with reinforcement learning
# (GRPO) from only 179 annotated queries; notebooks 01-04 show how.
#
# This notebook runs the whole loop once, on one query, with the small model bundled with the kit.
#
# **What you will learn**
#
# - what a listwise reranker is shown (the prompt) and what it answers (the raw output);
# - how the kit turns a reply into a ranking, and how it repairs a broken one;
# - how to score a ranking against human judgments with nDCG@10: BM25 before, the reranker after;
# - why a long candidate list is reranked with *sliding windows*;
# - how to run the real Rearank-7B instead, on a GPU;
# - to write nDCG@10 and the window positions yourself, checked against the kit's own.
#
# **Prerequisites**: Python and a little pandas; no information-retrieval or reinforcement-learning
# background. Every term (BM25, nDCG, window) is explained where it first appears.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about 20 seconds (16 s measured) |
# | full | CPU, 2 cores | under a minute (16 s measured) |
# | Rearank-7B (last section) | one GPU with 24 GB or more | a minute, plus the 15 GB download |
#
# The bundled model is SmolLM2-135M-Instruct, 50 times smaller than Rearank-7B: it shows every step
# working, it does not rank well. Everything this notebook writes goes into its run folder, printed below.

# %%
from rearank_kit.course.notebook import describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("00_quickstart")  # the only folder this notebook writes to
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. A query and its first-stage candidates
#
# A reranker never searches the whole collection: a first-stage retriever (here BM25, word overlap)
# returns the top candidates, and the reranker reorders them. A benchmark in the kit is a folder of
# four files: the queries, the human judgments (`qrels`: grade 0 = not relevant ... 3 = perfectly
# relevant), the BM25 candidates and the passage texts.
#
# We use the kit's own `sample` collection and its query `s10`, *which planet has the shortest day*:
# the best passages never say "shortest" ("Jupiter spins faster than any other planet ..."), so BM25
# ranks them low. Telling them apart needs understanding, which is what a reasoning reranker is for.

# %%
import pandas as pd

from rearank_kit.data.benchmarks import load_benchmark

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
# ## 2. The prompt
#
# Prompts are data in the kit: one TOML template per prompt (`rearank_kit/templates/`), and every
# output records the template's name and hash. Three come with the kit:
#
# - `rearank`: the paper's prompt, the one Rearank-7B was trained with. RankGPT-style (one chat turn
#   per passage, each cut to 400 characters), then "first, within `<think>` tags, analyze EACH
#   passage; then, within `<answer>` tags, the ranking".
# - `rankgpt`: the zero-shot RankGPT baseline, ranking only, no reasoning.
# - `compact`: for tiny models. All passages inline in one message, and the reply *prefilled* with
#   `<answer>[` so that the model only has to continue a ranking. A 135M model ignores the long
#   `rearank` prompt; with `compact` it produces a parseable answer most of the time.

# %%
from rearank_kit.core.prompts import available_templates, load_template

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
# ## 3. Ask the model
#
# `load_backend("hf", model="smollm2-135m")` loads the bundled model with transformers on the CPU
# (the kit also has `vllm` and `openai` backends with the same interface). `rerank_one` makes one
# model call on one window, greedily (temperature 0, the paper's evaluation setting), and returns the
# raw reply and its parse. `max_new_tokens` caps the reply: an answer-only prompt needs about 5 tokens
# per passage, a reasoning prompt up to 2,048.

# %%
from rearank_kit.rank.backends import load_backend
from rearank_kit.rank.windows import rerank_one

with load_backend("hf", model="smollm2-135m") as backend:  # leaving the block frees the model
    result = rerank_one(ranking.query.text, [c.text for c in ranking.candidates], backend,
                        template=TEMPLATE, max_new_tokens=pick(128, 48))
print("raw model output (the prefill included):\n")
print(result.output)
print(f"\n{result.generation.prompt_tokens} prompt tokens, {result.generation.output_tokens} new tokens, "
      f"finish reason: {result.generation.finish_reason}")

# %% [markdown]
# ## 4. From text to a ranking
#
# `parse_ranking(text, num)` never fails: it reads the identifiers `[i]` from the last complete
# `<answer>` block (or an unclosed one, or the text after `</think>`, or the whole reply), drops
# duplicates and numbers out of range, and appends the passages never mentioned in their BM25 order,
# the same fallback as RankGPT and the REARANK code. It also says what it had to repair: the reward
# (notebook 02) and the trace analysis (notebook 06) need to tell a clean answer from a repaired one.

# %%
from rearank_kit.core.parsing import format_ranking, parse_ranking

parsed = result.parse
print("read from:", parsed.source)
print("identifiers the model gave, in order:", format_ranking(parsed.mentioned) or "(none)")
print(f"repairs: {parsed.num_duplicate} duplicate(s), {parsed.num_out_of_range} out of range, "
      f"{parsed.num_missing} missing (appended in BM25 order)")
print("final ranking:", format_ranking(parsed.order))

# %% [markdown]
# The same rules on a few hand-written replies for a window of 3 passages:

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
# ## 5. Did it help? nDCG@10 before and after
#
# nDCG@10 is the measure REARANK optimises and reports. Each of the first 10 passages adds its grade,
# discounted by its position (`grade / log2(position + 1)`); the sum is divided by the best sum any
# ranking could reach, built from *all* judged passages of the query (trec_eval's definition), so 1.0
# is a perfect top 10 and passages the first stage missed keep the score below 1.

# %%
from rearank_kit.core.metrics import ndcg_at_k

reranked = ranking.reordered(result.order)
bm25_ndcg = ndcg_at_k(ranking.docids, judgments, k=10)
new_ndcg = ndcg_at_k(reranked.docids, judgments, k=10)
print(f"nDCG@10   BM25 {bm25_ndcg:.4f}   reranked {new_ndcg:.4f}   ({new_ndcg - bm25_ndcg:+.4f})")
pd.DataFrame({
    "BM25": ranking.docids, "grade": [judgments.get(d, 0) for d in ranking.docids],
    "reranked": reranked.docids, "grade ": [judgments.get(d, 0) for d in reranked.docids],
}, index=pd.RangeIndex(1, len(ranking.docids) + 1, name="position")).head(10)

# %% [markdown]
# The same as a picture: one line per passage from its BM25 rank (left) to its rank after reranking
# (right), coloured by its judged grade. A good reranker makes the green lines climb and the grey
# ones sink; crossing lines are the swaps it made.

# %%
import matplotlib.pyplot as plt

from rearank_kit.course.plots import plot_rank_shift

fig, ax = plt.subplots(figsize=(5, 6))
plot_rank_shift(ranking.docids, reranked.docids, judgments, ax=ax)
fig.savefig(RUN / "rank_shift.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# For whole benchmarks the kit evaluates with `ir-measures` (`metrics.evaluate`), which gives the same
# nDCG@10 and any other measure. A run is a `qid -> docid -> score` mapping; `rankings_to_run`
# makes one from rankings. `RR(rel=2)@10` is the reciprocal rank of the first passage of grade 2 or
# more, the TREC DL convention for binary measures.

# %%
from rearank_kit.core.files import write_json
from rearank_kit.core.metrics import evaluate
from rearank_kit.core.records import rankings_to_run

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
# ## 6. Longer lists: sliding windows
#
# REARANK reranks the BM25 top **100**, but a model sees at most 20 passages at a time. The list is
# reranked from the bottom up by a window of 20 that moves 10 positions at a time (RankGPT's
# *sliding windows*): positions 80-99, then 70-89, ..., then 0-19, nine calls. Each window sees the
# list as the previous one left it, so a strong passage found near the bottom can climb to the top
# in one pass. `rerank()` does this for many queries at once and writes a trace of every call
# (notebooks 05 and 06).

# %%
from rearank_kit.course.plots import plot_windows
from rearank_kit.rank.windows import window_positions

print("top 100, window 20, step 10:", window_positions(100, 20, 10))
print(f"top {TOP} (what this notebook used):", window_positions(TOP, 20, 10))
print("\nThe same on the command line, for the whole sample, written to a run folder:")
print(f"  .venv/bin/rearank-kit rerank --data sample --top-k 20 --template compact --out {RUN / 'sample-top20'}")
windows_ax = plot_windows(100, 20, 10)

# %% [markdown]
# Each bar is one model call, run top to bottom in the figure: the first sees positions 80-99, the
# last 0-19. Consecutive windows overlap by 10 positions (window - step): the best passages of a
# window are carried up into the next one, which is how a passage found at position 95 can end at
# position 1 after nine calls, and why one pass costs 9 calls for 100 candidates.

# %% [markdown]
# ## 7. The real model: Rearank-7B on a GPU
#
# With a GPU, swap three things: the model (`le723z/Rearank-7B`), the prompt (`rearank`, the only one
# the checkpoint was trained with: the kit refuses other templates for it, since a wrong prompt costs
# points silently) and the backend (`vllm`, much faster than transformers for long reasoning). Leave
# room for the reasoning: `max_new_tokens=2048`. The cell runs only when CUDA is present (and not in
# smoke mode); on a CPU it prints what to do.

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
# ## Exercises
#
# **A. Write nDCG@10 yourself (checked).** Replace the `raise` line with your code: the gain of a
# passage is its grade (unjudged: 0), position `i` (from 1) is discounted by `log2(i + 1)`, only
# the first `k` positions count, and the ideal DCG sorts *all* judged grades of the query (also
# passages the ranking does not contain). Return 0.0 when nothing is relevant. Run the cell: the
# checker compares your function with `metrics.ndcg_at_k` on hand-picked and generated cases and,
# when they disagree, shows the smallest case and a hint.

# %%
from rearank_kit.course.exercises import check_ndcg, check_window_positions


def my_ndcg_at_k(ranked_docids, judgments, k=10):
    """nDCG@k of one ranking (a list of docids, best first) against judgments (docid -> grade)."""
    raise NotImplementedError  # your code here


check_ndcg(my_ndcg_at_k)


# %% [markdown]
# **B. Write the sliding windows yourself (checked).** Return the `[start, end)` windows that
# rerank the top `k`, in the order they run: bottom first, moving up by `step`, the last one always
# starting at 0; a list no longer than the window gets one window. Compare with section 6.

# %%
def my_window_positions(k, window, step):
    """[(start, end), ...]: the windows over positions 0..k-1, bottom window first."""
    raise NotImplementedError  # your code here


check_window_positions(my_window_positions)

# %% [markdown]
# **Open questions**
#
# 1. Change `QID` to another sample query (`s01` ... `s09`) and compare BM25 and the reranker. On
#    which queries does the tiny model help, on which does it hurt? Read the rank-shift picture.
# 2. Set `TEMPLATE = "rearank"` and run sections 2-5 again. What does the 135M model do with the
#    paper's reasoning prompt? Does `parse_ranking` still find a ranking, and from where?
# 3. Lower `max_new_tokens` to 10. What happens to `finish_reason`, to the repairs and to nDCG@10?
# 4. `s10` has two grade-3 passages, but only `s10-p01` is among its BM25 candidates (`s10-p02`
#    was never retrieved). Work out by hand the nDCG@10 of the best ranking a reranker can make
#    from the candidates of section 1 (every judged passage in it sorted by grade), then check it
#    with `ndcg_at_k`. Why is it below 1, and what does that say about the first stage?
# 5. (Teachers) Give students the table of section 1 without the grades and ask them to rank the
#    passages; score their rankings with `ndcg_at_k` and compare with BM25 and the model.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. How many model calls does one query cost with the top 20 reranked in a window of 20 moved by 10? And the top 100?
# 2. A ranking puts the query's only relevant passage (grade 3) at rank 2. What is its nDCG@10?
# 3. Why does the last window of a sliding pass start at position 0 even when the top k is not a multiple of the stride?

# %% [markdown]
# ## Recap
#
# - A listwise reranker reads a query and a numbered window of passages and answers with a
#   permutation; the kit's prompts are templates, and `parse_ranking` turns any reply into a full
#   ranking while recording every repair it made.
# - nDCG@10 scores the top 10 against *all* the query's judgments, so passages the first stage
#   missed cap what any reranker can reach.
# - 100 candidates are reranked by 9 overlapping windows of 20, bottom to top.
# - The bundled 135M model runs every step on a laptop; Rearank-7B needs a GPU and its own prompt.
# - Next: notebook 01 turns a few judged queries into thousands of training prompts.
