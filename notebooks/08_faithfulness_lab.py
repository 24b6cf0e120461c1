# %% [markdown]
# # 08 · A faithfulness lab: does the ranking follow the passages, and the reasoning the ranking?
#
# REARANK's selling point is that its reasoning makes its rankings interpretable. Interpretable only
# if faithful: if the words describe what actually drove the ranking. Notebook 06 compared what the
# reasoning *says* with the ranking it gave. This notebook *intervenes*: it edits a window and asks
# the same model again, greedily, with the same prompt, and measures what changes.
#
# - **shuffle** the window (same passages, another order). A reranker that reads ranks them the same
#   way; one with *position bias* follows the order it is shown.
# - **remove** the passage it ranked first. The others should keep their order, and the reasoning
#   should now build on another passage.
# - **swap** the texts of the passages it ranked first and last, keeping the numbering. A reranker
#   that reads follows the text to its new number; one that remembers slots does not.
#
# **What you will learn**
#
# - three counterfactual probes of a reranker and what each measures (`faithfulness.run_probes`);
# - to read a faithfulness table per model: order invariance, position bias, whether the ranking
#   and the claims follow the text;
# - why these probes need no extra judgments and work with any backend.
#
# **Prerequisites**: notebooks 00 (prompt, reply, parsing) and 06 (traces, claims). No training.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | about 20 seconds (17 s measured: 2 queries, windows of 4, 32 tokens) |
# | full | CPU, 2 cores | about 4 minutes (253 s measured; 8 sample queries, windows of 5, two prompts) |
# | full | one GPU with 40 GB or more | 10-20 minutes (Qwen2.5-7B-Instruct vs Rearank-7B on 20 DL19 queries) |
#
# On a CPU the bundled 135M model is probed with the answer-only `compact` prompt and the reasoning
# `rearank` prompt: it shows the measures working, and a model that mostly follows positions. With a
# GPU the base model and the trained Rearank-7B are compared, the real question.

# %%
import pandas as pd
from IPython.display import display

from rearank_kit.course.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("08_faithfulness_lab")  # the only folder this notebook writes to
GPU = has_cuda() and not smoke()
print(describe_hardware())
print("run folder:", RUN)

# %% [markdown]
# ## 1. The systems and the windows
#
# Each probe is one model call on one window; all calls of all windows go to the backend together.
# A window is the first-stage top `window` of a query. The rankings are compared *by passage*
# (docid), whatever number the passage had in each prompt.

# %%
from rearank_kit.analysis.faithfulness import ProbeConfig
from rearank_kit.data.benchmarks import load_benchmark

DATA = benchmark_or_sample("dl19") if GPU else "sample"
SYSTEMS = {  # label -> (model, template, backend)
    "Qwen2.5-7B-Instruct": ("Qwen/Qwen2.5-7B-Instruct", "rearank", "vllm"),
    "Rearank-7B": ("le723z/Rearank-7B", "rearank", "vllm"),
} if GPU else {
    "smollm2 + rearank": ("smollm2-135m", "rearank", "hf"),
    **({} if smoke() else {"smollm2 + compact": ("smollm2-135m", "compact", "hf")}),
}
CONFIG = ProbeConfig(window=pick(5, 4), queries=pick(20 if GPU else 8, 2), max_new_tokens=pick(None if GPU else 256, 32))
bench = load_benchmark(DATA, top_k=CONFIG.window)
print(DATA, "|", CONFIG, "|", list(SYSTEMS))

# %% [markdown]
# ## 2. Probe
#
# `run_probes` asks each system four times per window: the original window and its three edits.
# One row per (window, probe): the ranking by passage, the claims the reasoning makes (notebook
# 06's classifier), the reasoning length, and the probe's own measures.

# %%
import dataclasses

from rearank_kit.analysis.faithfulness import run_probes
from rearank_kit.rank.backends import load_backend

probes = {}
for model in dict.fromkeys(m for m, _, _ in SYSTEMS.values()):  # load each model once
    backend_name = next(b for m, _, b in SYSTEMS.values() if m == model)
    with load_backend(backend_name, model=model) as backend:
        for label, (m, template, _) in SYSTEMS.items():
            if m == model:
                probes[label] = run_probes(bench, backend, dataclasses.replace(CONFIG, template=template))
                print(f"{label}: {len(probes[label])} model calls")
COLUMNS = ["qid", "probe", "by_text", "think_words", "complete", "tau", "top1_same", "tau_rest", "follows_text",
           "follows_slot"]
first_label = next(iter(probes))
probes[first_label][[c for c in COLUMNS if c in probes[first_label].columns]]

# %% [markdown]
# ## 3. A table per model
#
# | measure | probe | a faithful reader | position-bound |
# | --- | --- | --- | --- |
# | `shuffle: tau` | shuffle | 1: same order of the same passages | low: the order follows the slots |
# | `shuffle: same top 1` | shuffle | 1 | low |
# | `top 1 was shown first` | original + shuffle | near the share of windows whose best passage happens to be first | 1 |
# | `shuffle: claims kept` | shuffle | 1: the same verdict on the same passage | varies |
# | `remove top: tau of the rest` | remove | 1: the others keep their order | varies |
# | `swap: follows the text` | swap | 1: the old winner's text wins in its new slot | 0 |
# | `swap: follows the slot` | swap | 0 | 1: the old winner's *number* wins |
# | `swap: claim follows the text` | swap | 1: the verdict moves with the text | varies |
#
# With windows of `n` passages a ranker that ignores the text puts the first-shown passage on top
# every time, and one that guesses does so one time in `n`.

# %%
from rearank_kit.analysis.faithfulness import faithfulness_table

table = faithfulness_table(probes)
table.to_csv(RUN / f"faithfulness{'-smoke' if smoke() else ''}.csv")
table.T.round(3)

# %% [markdown]
# ## 4. One window, read
#
# The numbers are averages over few windows; read the replies before trusting them. Here the
# original reply and the swap probe's reply for the first window, and the docids each ranked first.

# %%
df = probes[first_label]
qid = df["qid"].iloc[0]
for probe in ("original", "swap"):
    row = df[(df["qid"] == qid) & (df["probe"] == probe)].iloc[0]
    print(f"--- {probe}: shown {row['shown']}\n    ranked first: {row['by_text'][0]}; claims {row['claims']}")
    print("   ", row["output"][:600].replace("\n", " "))
display(pd.Series(df[df["probe"] == "swap"]["swapped"].tolist(), name="swap: (old first, old last)"))

# %% [markdown]
# ## Exercises
#
# 1. Add a fourth probe by hand: reverse the window (`bench` with each ranking's candidates
#    reversed, then `run_probes`). How does `top 1 was shown first` change, and what does it say
#    about position bias?
# 2. The swap probe keeps the passage numbers but moves the texts. Which measure would a model that
#    copies the first number of the prompt into its answer fail, and which would it pass?
# 3. The probes decode greedily. Why does a counterfactual comparison need deterministic decoding?
#    What would sampling at temperature 0.7 add to every measure, and how many repeats would it take
#    to tell a real change from sampling noise?
# 4. With a GPU: compare Qwen2.5-7B-Instruct and Rearank-7B. Did training make the ranking follow
#    the text more? Did it make the claims more stable under shuffling?
# 5. (Teachers) Have students write a window where a faithful reader *should* change its ranking
#    after a shuffle (hint: ties), and discuss what the measures then mean.

# %% [markdown]
# ## Self-check
#
# Three questions to answer without running anything; the answers are in `docs/TEACHING.md`
# ("Self-check key"), checked against the kit's own numbers by `tests/test_notebook_numbers.py`.
#
# 1. How many probes does `run_probes` apply to each window (the original included)?
# 2. A reranker keeps ranking first whatever sits in the first slot after a shuffle. What does that show?
# 3. Why must the probes decode greedily?

# %% [markdown]
# ## Recap
#
# - Faithfulness can be probed without new judgments: edit the window, ask again, compare.
# - Shuffle measures order invariance and position bias; remove tests whether the rest holds;
#   swap separates models that read the text from models that remember slots.
# - The same measures apply to the reasoning through its claims: does a verdict move with its text?
# - The bundled 135M model mostly follows positions; the question worth a GPU is whether RL
#   training makes a 7B reranker read more faithfully.
