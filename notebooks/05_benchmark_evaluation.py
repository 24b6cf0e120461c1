# %% [markdown]
# # 05 · Benchmark evaluation: BM25 vs a reranker, with significance, and the paper's numbers
#
# The paper evaluates REARANK the way listwise rerankers are usually evaluated: rerank the BM25
# top-100 of every query with sliding windows (20 passages, step 10), and report nDCG@10, on TREC DL19
# and DL20 (in domain, MS MARCO passages), on eight BEIR datasets (out of domain) and on BRIGHT
# (reasoning-intensive retrieval). This notebook runs that protocol on the local TREC DL data, tests
# whether the difference to BM25 is significant, and puts the paper's numbers beside ours.
#
# **What you will learn**
#
# - to rerank a benchmark with `rerank()` (resumable, one trace per model call) and evaluate it with
#   one call, `metrics.experiment`, as a table of systems x measures;
# - to read per-query scores and a paired t-test, and why a mean over 43 queries needs one;
# - how BEIR and BRIGHT are fetched over the network (shown, not run here);
# - how our numbers compare with the paper's, and with what tolerance.
#
# **Runtime and hardware**
#
# | mode | hardware | time |
# | --- | --- | --- |
# | smoke (`REARANK_KIT_SMOKE=1`) | CPU, 2 cores | 1-3 minutes (2 queries of DL19, top 20, 32 tokens) |
# | full | CPU, 2 cores | about 20 minutes (DL19 + DL20, top 20, the bundled model) |
# | full | one GPU with 24 GB or more | 30-60 minutes (DL19 + DL20, top 100, Rearank-7B with vLLM) |
#
# On a CPU the bundled 135M model reranks the top 20 only (one window per query): it shows the
# protocol, not the paper's results. With a GPU the notebook switches to Rearank-7B and the paper's
# setting. Without `REARANK_KIT_DATA` it falls back to the kit's `sample` collection.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rearank_kit.notebook import benchmark_or_sample, describe_hardware, has_cuda, pick, run_folder, smoke

RUN = run_folder("05_benchmark_evaluation")  # the only folder this notebook writes to
GPU = has_cuda() and not smoke()
DATASETS = list(dict.fromkeys(benchmark_or_sample(name) for name in pick(["dl19", "dl20"], ["dl19"])))
print(describe_hardware())
print("benchmarks:", DATASETS, "| run folder:", RUN)

# %% [markdown]
# ## 1. The reranking setting
#
# `RerankConfig` holds what changes a result: how many BM25 candidates are reranked (`top_k`), the
# window and step, the prompt template, and the generation limits. The model preset decides the
# template: Rearank-7B only accepts the `rearank` prompt it was trained with (the original code
# chose the prompt by a substring of the model name, and users lost points to it).

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
# ## 2. Rerank
#
# `rerank()` sends the windows at the same position of many queries to the backend together, and
# writes each finished query to `rankings.jsonl` and each model call to `traces.jsonl` (notebook 06
# reads them). Run the cell again and finished queries are skipped: an interrupted run resumes. A
# folder made with other settings is refused rather than mixed, so each setting gets its own folder.

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
# ## 3. One table: systems x measures
#
# `metrics.experiment` evaluates several runs against the same judgments with ir-measures and adds,
# for every system but the baseline, the p-value of a two-sided paired t-test over the queries.
# `RR(rel=2)@10` counts grade 2 and 3 as relevant, the TREC DL convention.

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
# ## 4. Per query, and is it significant?
#
# A mean hides where a reranker helps and where it hurts. The paired t-test asks whether the
# per-query differences are consistently on one side of zero; with a handful of queries almost
# nothing is significant, and with ~50 queries a difference of one or two nDCG points often is not
# either. Report the p-value with the mean, and look at the per-query picture.

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
# ## 5. The paper's numbers
#
# `paper.paper_results()` holds the paper's reported nDCG@10 (in points) with its source, and a
# `verified` flag: a cell not yet checked against the paper is left empty rather than guessed.
# Empty cells (NaN) are rows not yet checked against the paper. `compare_with_paper` puts our
# numbers beside the paper's with an explicit tolerance (1 point by default).
# The BM25 baseline is where our numbers must agree: it checks the data and the evaluator.

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
# ## 6. Out of domain: BEIR and BRIGHT (network needed)
#
# The paper also reranks the BM25 top-100 of eight BEIR datasets and of the twelve BRIGHT tasks.
# These need a network: `remote.load_any` builds the same four-file benchmark folder from
# `ir_datasets` ids (queries and judgments) and pyserini's prebuilt BM25 indexes (candidates and
# texts), or, for BRIGHT, from the Hugging Face hub with the kit's own BM25; each is cached under
# `$REARANK_KIT_CACHE/benchmarks` and later reused offline. Three of the paper's BEIR datasets
# (Signal-1M, TREC-NEWS, Robust04) are not openly downloadable: build their folders from your own
# licensed copies with `rearank-kit retrieve`. The cell below is switched off; set `RUN_NETWORK = True`
# on a machine with internet access (and a GPU, for Rearank-7B).

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
# ## Exercises
#
# 1. Rerank with the `rankgpt` template instead of `compact` (both answer-only). Does the paired
#    t-test tell them apart on DL19?
# 2. How many queries would you need for a true gain of 2 nDCG points to be significant at p < 0.05?
#    Use the standard deviation of the per-query deltas of section 4 as an estimate.
# 3. Rerank the top 40 with the bundled model (two windows per query) and compare with the top 20. Does
#    the second window help or hurt, and why might a weak model hurt more with more windows?
# 4. The `RR(rel=2)@10` column treats grade 1 as not relevant. Recompute it as `RR@10` (grade 1
#    relevant). Which systems gain, and why?
# 5. (Teachers) Assign each group one BEIR dataset to run on a GPU machine with `RUN_NETWORK = True`,
#    and collect the results into one table next to the paper's.
