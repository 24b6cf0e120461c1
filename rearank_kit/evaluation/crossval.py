"""Cross-validation by query: the one protocol every scored policy is measured under.

A claim that training helps is a held-out comparison with an interval, never a training curve.
With the fixed folds of ``data/folds/dl21.json`` (``data/folds.py``), for each fold k:

1. the queries of fold k are the *test* queries, those of fold k + 1 the *validation* queries, the
   other three folds the *training* queries;
2. every setting in the method's grid is trained on the training queries' augmented sets and
   scored by the nDCG@10 of the validation queries' first-stage lists reranked greedily; the best
   one (the first, on a tie) is the fold's setting;
3. that setting is trained again on the training and validation queries together, and the fold's
   model reranks the test queries' first-stage top k.

The held-out rankings of the folds make one TREC run of every query, each ranked by a model that
never saw it; its nDCG@10 is compared with the first stage's on the same queries, query by
query, with a bootstrap 95% interval and the count of queries up and down (``compare``). The set
level is measured too: the rank reward of the greedy order of the test queries' augmented sets.

The final model of a method (``final``) takes the setting with the best mean validation score
over the five folds (a choice made on DL21 alone) and trains on every query; it is what reranks
DL19 and DL20, once, at the end.

Nothing here is chosen on a test fold: the test queries of fold k enter only step 3's reranking.
Each fold's result is written as it finishes (``fold-K/result.json``) and kept on a rerun with the
same setup, so an interrupted cross-validation resumes.

    rearank-kit crossval --data dl21 --folds data/folds/dl21.json --states runs/states-dl21 --out runs/cv
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rearank_kit.core.errors import KitError
from rearank_kit.core.records import Benchmark, Ranking
from rearank_kit.data.folds import Folds
from rearank_kit.rank.scored import ScoredPolicy, first_stage_prior, rerank_scored, start_policy

K = 10

# --- the first-stage lists, ready for fast scoring ------------------------------------------------


@dataclass
class QueryLists:
    """Each query's first-stage top k as arrays: raw states (k, cached layers, hidden), prior (k,),
    grades (k,) and the ideal DCG@10 over all its judged grades, for scoring many heads fast."""

    qids: list[str]
    layers: tuple[int, ...]  # the cache's layers, in its order
    states: dict[str, np.ndarray]
    prior: dict[str, np.ndarray]
    grades: dict[str, np.ndarray]
    idcg: dict[str, float]
    docids: dict[str, list[str]]

    def features(self, q: str, layers: Sequence[int]) -> np.ndarray:
        """The raw states of query ``q``'s list at ``layers``, flattened: (k, len(layers) * hidden)."""
        cols = [self.layers.index(x) for x in layers]
        return self.states[q][:, cols].reshape(len(self.states[q]), -1).astype(np.float64)

    def pairs(self, qids: Sequence[str], layers: Sequence[int]) -> np.ndarray:
        """(pairs, len(layers), hidden) of every pair of ``qids``: what standardisation is fitted on."""
        cols = [self.layers.index(x) for x in layers]
        return np.concatenate([self.states[q][:, cols] for q in qids]).astype(np.float64)

    def ndcg(self, policy: ScoredPolicy, qids: Sequence[str]) -> dict[str, float]:
        """nDCG@10 (linear gains, trec_eval's) of each query's list reranked greedily by ``policy``."""
        scale_w = policy.w / policy.scale
        offset = float(policy.mean @ scale_w)
        disc = 1.0 / np.log2(np.arange(K) + 2.0)
        out = {}
        for q in qids:
            s = policy.prior_weight * self.prior[q] + self.features(q, policy.layers) @ scale_w - offset
            top = np.lexsort((np.arange(len(s)), -s))[:K]  # ties keep the first-stage order
            dcg = float((self.grades[q][top] * disc[: len(top)]).sum())
            out[q] = dcg / self.idcg[q] if self.idcg[q] > 0 else 0.0
        return out

    def mean_ndcg(self, policy: ScoredPolicy, qids: Sequence[str]) -> float:
        return float(np.mean(list(self.ndcg(policy, qids).values()))) if qids else math.nan

    def first_stage_ndcg(self, qids: Sequence[str]) -> dict[str, float]:
        disc = 1.0 / np.log2(np.arange(K) + 2.0)
        return {q: float((self.grades[q][:K] * disc[: min(K, len(self.grades[q]))]).sum()) / self.idcg[q]
                if self.idcg[q] > 0 else 0.0 for q in qids}  # fmt: skip


def query_lists(bench: Benchmark, cache: Any, prior: str = "bm25") -> QueryLists:
    """``QueryLists`` of every judged query of ``bench`` (its candidates as loaded: the top k), with
    every layer of the state ``cache``."""
    qids, states, priors, grades, idcg, docids = [], {}, {}, {}, {}, {}
    for r in bench.rankings:
        judged = bench.qrels.get(r.query.qid)
        if not judged or not r.candidates:
            continue
        q = r.query.qid
        qids.append(q)
        docids[q] = r.docids
        states[q] = cache.matrix(q, r.docids)
        priors[q] = first_stage_prior([c.score for c in r.candidates], prior)
        grades[q] = np.array([float(judged.get(d, 0)) for d in r.docids])
        top = sorted((float(g) for g in judged.values() if g > 0), reverse=True)[:K]
        idcg[q] = sum(g / math.log2(i + 2) for i, g in enumerate(top))
    return QueryLists(qids, tuple(cache.key.layers), states, priors, grades, idcg, docids)


# --- methods: how a fold's model is made ----------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One entry of a method's grid: the layers its head reads, and the method's own parameters."""

    layers: tuple[int, ...]
    params: Any = None


# A trainer makes a policy (and the records of its training steps, [] when it has none) from a start
# policy (standardised on the training queries at the setting's layers), the training queries, the
# lists and the setting's parameters.
Trainer = Callable[[ScoredPolicy, Sequence[str], QueryLists, Any], tuple[ScoredPolicy, list[dict[str, Any]]]]
StartMaker = Callable[[Sequence[str], Sequence[int]], ScoredPolicy]


@dataclass
class Method:
    """One rung of the table: a name, its settings to choose from, and how one is trained."""

    name: str
    grid: list[Setting]
    train: Trainer
    describe_params: Callable[[Any], dict[str, Any]] = lambda params: {"params": repr(params)}

    def describe(self, setting: Setting) -> dict[str, Any]:
        return {"layers": list(setting.layers), **self.describe_params(setting.params)}

    def fit(self, make_start: StartMaker, qids: Sequence[str], lists: QueryLists, setting: Setting):
        return self.train(make_start(qids, setting.layers), qids, lists, setting.params)


@dataclass
class FoldResult:
    fold: int
    train_qids: list[str]
    validation_qids: list[str]
    test_qids: list[str]
    validation: list[dict[str, Any]]  # one row per setting of the grid: its description and score
    chosen: int
    test_ndcg: dict[str, float]
    policy: ScoredPolicy
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)  # the fold model's training steps


def run_fold(method: Method, folds: Folds, fold: int, lists: QueryLists, make_start: StartMaker,
             progress: Callable[[str], None] | None = None) -> FoldResult:
    """Steps 1-3 of the module docstring for one fold."""
    import time

    started = time.perf_counter()
    split = folds.split(fold)
    known = set(lists.qids)
    train = [q for q in lists.qids if split.get(q) == "train"]
    val = [q for q in lists.qids if split.get(q) == "validation"]
    test = [q for q in lists.qids if split.get(q) == "test"]
    missing = sorted(q for q in split if q not in known)
    if not train or not val or not test:
        raise KitError(f"fold {fold}: {len(train)} training, {len(val)} validation and {len(test)} test queries with "
                       "judgments and candidates; every part needs some")
    rows = []
    for i, setting in enumerate(method.grid):
        policy, _ = method.fit(make_start, train, lists, setting)
        rows.append({**method.describe(setting), "validation_ndcg": lists.mean_ndcg(policy, val)})
        if progress:
            progress(f"{method.name} fold {fold}: setting {i + 1}/{len(method.grid)} validation nDCG@10 "
                     f"{rows[-1]['validation_ndcg']:.4f}")
    chosen = max(range(len(rows)), key=lambda i: (rows[i]["validation_ndcg"], -i))
    if missing and progress:
        progress(f"fold {fold}: {len(missing)} queries of the folds have no judged list and are left out")
    final, history = method.fit(make_start, train + val, lists, method.grid[chosen])
    return FoldResult(fold, train, val, test, rows, chosen, lists.ndcg(final, test), final,
                      # rounded as result.json keeps it, so a resumed run's summary equals a fresh one's
                      round(time.perf_counter() - started, 1), history)  # fmt: skip


def choose_overall(results: Sequence[FoldResult]) -> int:
    """The setting with the best mean validation score over the folds (DL21 alone decides)."""
    n = len(results[0].validation)
    means = [float(np.mean([r.validation[i]["validation_ndcg"] for r in results])) for i in range(n)]
    return max(range(n), key=lambda i: (means[i], -i))


# --- comparing with the first stage ----------------------------------------------------------------


def compare(system: Mapping[str, float], baseline: Mapping[str, float], resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Mean nDCG@10 of both on the same queries, the mean difference with its bootstrap 95% interval
    over queries and sign-flip p-value (``stats.compare_paired``), and the queries up, down, equal."""
    from rearank_kit.core.stats import compare_paired

    qids = sorted(set(system) & set(baseline))
    if not qids:
        raise KitError("no query in common to compare")
    diffs = [system[q] - baseline[q] for q in qids]
    stat = compare_paired(diffs, qids, resamples=resamples, seed=seed)
    return {
        "queries": len(qids), "system": float(np.mean([system[q] for q in qids])),
        "baseline": float(np.mean([baseline[q] for q in qids])), "delta": stat["mean"], "ci95": stat["ci95"],
        "p_value": stat["p_value"], "up": sum(d > 1e-12 for d in diffs), "down": sum(d < -1e-12 for d in diffs),
        "equal": sum(abs(d) <= 1e-12 for d in diffs),
    }  # fmt: skip


def held_out_rankings(results: Sequence[FoldResult], bench: Benchmark, cache: Any) -> list[Ranking]:
    """Every query's first-stage list reranked by the model of the fold that held it out, in the
    benchmark's order (queries without judgments or candidates keep the first-stage order)."""
    by_qid = {}
    for r in results:
        wanted = [x for x in bench.rankings if x.query.qid in set(r.test_qids)]
        by_qid.update({x.query.qid: x for x in rerank_scored(r.policy, wanted, cache)})
    return [by_qid.get(x.query.qid, x) for x in bench.rankings]


def start_from(model: str, prompt: Any, lists: QueryLists, prior: str = "bm25", temperature: float = 1.0) -> StartMaker:
    """The start policy of a fold at some layers, standardised on its own training queries only."""

    def make(qids: Sequence[str], layers: Sequence[int]) -> ScoredPolicy:
        return start_policy(model, prompt, tuple(layers), lists.pairs(qids, layers), prior=prior, temperature=temperature)

    return make


def write_fold(folder: str | os.PathLike, result: FoldResult, method: str, **fields: Any) -> Path:
    """``fold-K/``: the fold's policy, its manifest (fold, its queries, the grid's validation scores,
    the chosen setting) and ``result.json`` (per-query test nDCG@10)."""
    from rearank_kit.core.files import write_json, write_jsonl
    from rearank_kit.core.manifest import write_manifest

    folder = Path(folder)
    result.policy.save(folder)
    write_jsonl(folder / "metrics.jsonl", result.history)
    write_json(folder / "result.json", {"fold": result.fold, "method": method, "test_ndcg": result.test_ndcg,
                                        "validation": result.validation, "chosen": result.chosen,
                                        "seconds": result.seconds})  # fmt: skip
    write_manifest(folder, "crossval-fold", method=method, fold=result.fold, train_qids=result.train_qids,
                   validation_qids=result.validation_qids, test_qids=result.test_qids,
                   chosen=result.validation[result.chosen], model=result.policy.model,
                   template=result.policy.prompt, template_hash=result.policy.prompt_hash, **fields)  # fmt: skip
    return folder


def read_fold(folder: str | os.PathLike) -> FoldResult:
    """A fold written by ``write_fold`` (a finished fold of an interrupted cross-validation)."""
    from rearank_kit.core.files import iter_jsonl, read_json
    from rearank_kit.core.manifest import read_manifest
    from rearank_kit.rank.scored import load_scored_policy

    folder = Path(folder)
    result, manifest = read_json(folder / "result.json"), read_manifest(folder) or {}
    return FoldResult(int(result["fold"]), list(manifest.get("train_qids", [])), list(manifest.get("validation_qids", [])),
                      list(manifest.get("test_qids", [])), list(result["validation"]), int(result["chosen"]),
                      {str(q): float(v) for q, v in result["test_ndcg"].items()}, load_scored_policy(folder),
                      float(result.get("seconds", 0.0)), list(iter_jsonl(folder / "metrics.jsonl")))  # fmt: skip


def run_crossval(method: Method, folds: Folds, lists: QueryLists, make_start: StartMaker,
                 out: str | os.PathLike | None = None, setup: Mapping[str, Any] | None = None,
                 log: Callable[[str], None] | None = print) -> list[FoldResult]:
    """Every fold of ``method`` (``run_fold``); with ``out``, each finished fold is written to
    ``out/fold-K`` at once and reused when the same setup is run again (``setup`` is checked
    against ``out/manifest.json``: another setup is refused rather than mixed)."""
    from rearank_kit.core.manifest import check_resumable, write_manifest

    setup = {"method": method.name, "grid": [method.describe(s) for s in method.grid], **(setup or {})}
    if out is not None:
        out = Path(out)
        check_resumable(out, setup, kind="crossval", section="setup", advice="use another --out")
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, "crossval", setup=setup, status="running", folds=folds.num_folds)
    results = []
    for k in range(folds.num_folds):
        folder = out / f"fold-{k}" if out is not None else None
        if folder is not None and (folder / "result.json").is_file():
            results.append(read_fold(folder))
            if log:
                log(f"{method.name} fold {k}: finished earlier, kept")
            continue
        result = run_fold(method, folds, k, lists, make_start, log)
        if folder is not None:
            write_fold(folder, result, method.name, setup=setup)
        results.append(result)
        if log:
            base = np.mean(list(lists.first_stage_ndcg(result.test_qids).values()))
            log(f"{method.name} fold {k}: test nDCG@10 {np.mean(list(result.test_ndcg.values())):.4f} "
                f"(first stage {base:.4f}), setting {result.validation[result.chosen]}, {result.seconds:.0f} s")
    return results


def summarize(name: str, results: Sequence[FoldResult], lists: QueryLists) -> dict[str, Any]:
    """The held-out comparison of one method with the first stage over every fold's test queries."""
    system = {q: v for r in results for q, v in r.test_ndcg.items()}
    summary = compare(system, lists.first_stage_ndcg(list(system)))
    summary.update({"method": name, "minutes_per_fold": round(float(np.mean([r.seconds for r in results])) / 60, 2),
                    "chosen": [r.validation[r.chosen] for r in results]})  # fmt: skip
    return summary


def held_out_set_rewards(results: Sequence[FoldResult], rows_by_qid: Mapping[str, list[dict]],
                         priors: Mapping[str, Mapping[str, float]], cache: Any) -> dict[str, Any]:
    """The set level: each held-out query's augmented sets in the greedy order of the fold model that
    never saw the query, against the order they were given, with a bootstrap interval over queries
    then sets (``stats.compare_paired``). Two measures: REARANK's normalised rank reward (the given
    order scores 0; a set with little room to improve turns a small slip into a large negative
    reward, so its mean is dominated by a few such sets) and the plain nDCG@10 gain."""
    import torch

    from rearank_kit.core.stats import compare_paired
    from rearank_kit.train.scored import ranking_rewards, set_batch

    values: dict[str, list[float]] = {"normalized": [], "difference": []}
    groups: list[str] = []
    for r in results:
        rows = [row for q in r.test_qids for row in rows_by_qid.get(q, [])]
        if not rows:
            continue
        batch = set_batch(rows, r.policy, cache, priors)
        w = torch.as_tensor(r.policy.w, dtype=torch.float32)
        scores = r.policy.prior_weight * batch.prior + batch.x @ w
        order = torch.argsort(scores, dim=-1, descending=True, stable=True).unsqueeze(1)
        for mode in values:
            values[mode] += ranking_rewards(batch, order, mode)[:, 0].tolist()
        groups += batch.qid
    if not groups:
        raise KitError("no augmented set of a held-out query: nothing to measure at the set level")
    out: dict[str, Any] = {"sets": len(groups), "queries": len(set(groups))}
    for mode, name in (("normalized", "rank_reward"), ("difference", "ndcg10_gain")):
        stat = compare_paired(values[mode], groups)
        out[name] = {"mean": stat["mean"], "ci95": stat["ci95"], "p_value": stat["p_value"],
                     "sets_up": sum(v > 1e-12 for v in values[mode]), "sets_down": sum(v < -1e-12 for v in values[mode])}
    return out
