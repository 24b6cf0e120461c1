"""A learning run: one rung cross-validated on a benchmark, then trained on all of it, as one folder.

``crossval.py`` is the protocol; this writes what it measured where a reader (and notebooks 03-05,
and ``make demo``) finds it:

    OUT/manifest.json        the setup (data and its fingerprint, folds, states key, augmentation, grid)
    OUT/folds.json           the fold of each query, as used
    OUT/fold-K/              the fold's model, manifest (fold, train/validation/test queries, the grid's
                             validation scores, the chosen setting), metrics.jsonl (its training steps)
    OUT/cv-<data>.trec       every query's first-stage top k reranked by the model that held it out
    OUT/final/               the model trained on every query with the setting of best mean validation
                             score, its metrics.jsonl, no_learning_band.jsonl (the same steps' reward
                             when nothing is learned), and whether its step reward rose beyond noise
    OUT/metrics.json         nDCG@10 against the first stage with a bootstrap 95% interval over queries,
                             queries up and down, the set-level rank reward, minutes per fold

    rearank-kit crossval --data dl21 --folds data/folds/dl21.json --states runs/states-dl21 --out runs/cv
    rearank-kit rerank --model runs/cv/final --data dl19 --out runs/cv/dl19     # the test sets, once
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import write_json, write_jsonl
from rearank_kit.core.manifest import MANIFEST, read_manifest
from rearank_kit.core.records import Benchmark
from rearank_kit.data.folds import Folds, write_folds
from rearank_kit.evaluation.crossval import (
    choose_overall,
    held_out_rankings,
    held_out_set_rewards,
    query_lists,
    run_crossval,
    start_from,
    summarize,
)

METHODS = ("grpo", "listnet+grpo", "listnet", "probe", "yes-no", "yes-no-alone")


@dataclass(frozen=True)
class LearningSetup:
    """What a learning run is made of besides its data: the rung, the states it reads, the sets."""

    method: str = "grpo"
    # The layers a head may read, one entry per choice (each fold picks on its validation queries);
    # (15,) is layer 15 alone, (8, 15) the two concatenated.
    layer_choices: tuple[tuple[int, ...], ...] = ((12,), (15,), (18,))
    window: int = 20  # passages per augmented set: the paper's window (better than 5 on the validation folds)
    samples_per_query: int = 50
    top_k: int = 100  # the first-stage depth reranked (and the pool sets are drawn from)
    prior: str = "bm25"
    seed: int = 0
    final: bool = True  # also train on every query (OUT/final), for the test sets
    steps: int | None = None  # every GRPO setting's steps (smoke runs); None: the grid's own
    # The learning rates (and steps) GRPO chooses among; None: rungs.GRPO_GRID. A notebook in full
    # mode gives one to fit its time budget.
    grpo_grid: tuple[tuple[float, int], ...] | None = None

    def check(self) -> LearningSetup:
        if self.method not in METHODS:
            raise KitError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.window < 2 or self.samples_per_query < 1 or self.top_k < self.window:
            raise KitError(f"--window ({self.window}) must be at least 2 and at most --top-k ({self.top_k}), "
                           f"--samples-per-query ({self.samples_per_query}) at least 1")
        return self


def _method(setup: LearningSetup, rows_by_qid, priors, cache):
    from dataclasses import replace

    from rearank_kit.evaluation import rungs

    choices = setup.layer_choices
    configs = rungs.GRPO_GRID if setup.grpo_grid is None else [
        replace(rungs.GRPO_BASE, learning_rate=lr, steps=steps) for lr, steps in setup.grpo_grid]
    configs = [replace(c, seed=setup.seed, steps=setup.steps or c.steps) for c in configs]
    if setup.method == "grpo":
        return rungs.grpo_method(rows_by_qid, priors, cache, rungs.settings(choices, configs))
    if setup.method == "listnet+grpo":
        grid = rungs.settings(choices, [replace(c, warmup_steps=setup.steps or 300) for c in configs])
        return rungs.grpo_method(rows_by_qid, priors, cache, grid, name="listnet+grpo")
    if setup.method == "listnet":
        return rungs.listnet_method(rows_by_qid, priors, cache, [replace(c, seed=setup.seed) for c in rungs.LISTNET],
                                    layer_choices=choices)
    if setup.method == "probe":
        return rungs.probe_method(layer_choices=choices)
    from rearank_kit.train.supervised import yes_no_direction

    last = max(cache.key.layers)
    return rungs.yes_no_method(yes_no_direction(cache.key.model), last, 1.0 if setup.method == "yes-no" else 0.0)


def learning_run(bench: Benchmark, folds: Folds, cache: Any, setup: LearningSetup, out: str | os.PathLike,
                 log=print) -> dict[str, Any]:
    """Cross-validate ``setup.method`` on ``bench`` with ``folds`` and the states ``cache``, train the
    final model, and write ``out`` (see the module docstring). Returns metrics.json's content."""
    from rearank_kit.core.manifest import fingerprint_files
    from rearank_kit.core.prompts import load_pair_prompt
    from rearank_kit.core.records import BENCHMARK_FILES, write_run
    from rearank_kit.train.augment import AugmentConfig, augment
    from rearank_kit.train.scored import no_learning_band, query_priors, rising_beyond_noise, set_batch

    setup.check()
    out = Path(out)
    judged = [r.query.qid for r in bench.rankings if bench.qrels.get(r.query.qid)]
    folds.check_covers(judged, bench.name)
    missing = sorted({x for c in setup.layer_choices for x in c} - set(cache.key.layers))
    if missing:
        raise KitError(f"{cache.folder}: holds layers {list(cache.key.layers)}, not {missing}: build the states with them")
    # Sets of every query at once: a query's sets depend on (seed, qid) only, so each fold takes its own.
    aug = AugmentConfig(samples_per_query=setup.samples_per_query, window=setup.window, seed=setup.seed,
                        pool=setup.top_k, test_fraction=0.0, template="compact")  # fmt: skip
    rows_by_qid: dict[str, list[dict]] = {}
    for row in augment(bench, aug).rows:
        rows_by_qid.setdefault(str(row["qid"]), []).append(row)
    priors = query_priors(bench, setup.prior)
    lists = query_lists(bench, cache, setup.prior)
    prompt = load_pair_prompt(cache.key.prompt)
    if prompt.hash != cache.key.prompt_hash:
        raise KitError(f"{cache.folder}: built with prompt {cache.key.prompt}#{cache.key.prompt_hash}, but that "
                       f"prompt now hashes to {prompt.hash}: the prompt file changed; rebuild the states")
    make_start = start_from(cache.key.model, prompt, lists, setup.prior)
    method = _method(setup, rows_by_qid, priors, cache)
    data_setup = {
        "data": bench.name, "data_fingerprint": fingerprint_files(bench.path / f for f in BENCHMARK_FILES)
        if bench.path else None, "folds": folds.path, "states": cache.key.to_dict(), **setup.__dict__,
        "layer_choices": [list(c) for c in setup.layer_choices],
        "grpo_grid": [list(g) for g in setup.grpo_grid] if setup.grpo_grid else None,
    }  # fmt: skip
    started = time.perf_counter()
    results = run_crossval(method, folds, lists, make_start, out, data_setup, log)
    write_folds(folds, out / "folds.json", source=folds.path)
    write_run(held_out_rankings(results, bench, cache), out / f"cv-{bench.name}.trec", tag=f"rearank-kit-cv-{method.name}")
    metrics: dict[str, Any] = {
        "method": method.name, "data": bench.name, "top_k": setup.top_k,
        "ndcg@10": summarize(method.name, results, lists),
        "per_query": {"first_stage": lists.first_stage_ndcg(lists.qids),
                      "held_out": {q: v for r in results for q, v in r.test_ndcg.items()}},
        "set_reward": held_out_set_rewards(results, rows_by_qid, priors, cache),
        "folds": [{"fold": r.fold, "chosen": r.validation[r.chosen], "test_queries": len(r.test_qids),
                   "minutes": round(r.seconds / 60, 2)} for r in results],
    }  # fmt: skip
    if setup.final:
        chosen = choose_overall(results)
        policy, history = method.fit(make_start, lists.qids, lists, method.grid[chosen])
        policy.save(out / "final")
        write_jsonl(out / "final" / "metrics.jsonl", history)
        metrics["final"] = {"setting": method.describe(method.grid[chosen]), "queries": len(lists.qids)}
        if len(history) >= 8:
            metrics["final"]["step_reward"] = rising_beyond_noise([h["reward"] for h in history])
        if setup.method == "grpo":  # what the same steps look like when nothing is learned (notebook 04)
            setting = method.grid[chosen]
            start = make_start(lists.qids, setting.layers)
            rows = [r for q in lists.qids for r in rows_by_qid.get(q, [])]
            band = no_learning_band(start, set_batch(rows, start, cache, priors), setting.params)
            write_jsonl(out / "final" / "no_learning_band.jsonl", band)
    metrics["minutes_this_session"] = round((time.perf_counter() - started) / 60, 2)
    metrics["minutes_of_folds"] = round(sum(r.seconds for r in results) / 60, 2)  # all folds, resumed ones included
    write_json(out / "metrics.json", metrics)
    manifest = read_manifest(out) or {}
    manifest.update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), model=cache.key.model,
                    template=prompt.name, template_hash=prompt.hash, seed=setup.seed,
                    results={"ndcg@10": metrics["ndcg@10"], "set_reward": metrics["set_reward"]})  # fmt: skip
    write_json(out / MANIFEST, manifest)
    return metrics


def add_test_runs(out: str | os.PathLike, runs: list[str | os.PathLike]) -> dict[str, Any]:
    """Add the test sets to a finished learning run: each of ``runs`` is a rerank run folder of
    ``out/final`` on one benchmark (``rearank-kit rerank --model OUT/final --data dl19 ...``). Its
    ``run.trec`` is kept as ``out/<data>.trec``, and metrics.json gets ``heldout``: per benchmark,
    and over every held-out query together (the cross-validated ones and the test sets'), nDCG@10
    against the first stage with a bootstrap interval over queries."""
    import shutil

    from rearank_kit.core.files import read_json
    from rearank_kit.evaluation.crossval import compare

    out = Path(out)
    metrics = read_json(out / "metrics.json")
    final = str((out / "final").resolve())
    data0 = metrics["data"]
    heldout: dict[str, Any] = {f"cv-{data0}": metrics["ndcg@10"]}
    pooled_system = {f"{data0}:{q}": v for q, v in metrics["per_query"]["held_out"].items()}
    pooled_base = {f"{data0}:{q}": v for q, v in metrics["per_query"]["first_stage"].items()}
    for folder in map(Path, runs):
        manifest, summary = read_json(folder / MANIFEST), read_json(folder / "metrics.json")
        if str(Path(manifest.get("model", "")).resolve()) != final:
            raise KitError(f"{folder}: reranked by {manifest.get('model')!r}, not by this run's final model {final}")
        if manifest.get("status") != "done" or "per_query" not in summary:
            raise KitError(f"{folder}: not a finished, judged rerank run")
        data = str(manifest.get("data") or summary["data"])
        system, base = summary["per_query"]["reranked"]["nDCG@10"], summary["per_query"]["first_stage"]["nDCG@10"]
        heldout[data] = {**compare(system, base), "top_k": manifest.get("config", {}).get("top_k")}
        pooled_system.update({f"{data}:{q}": v for q, v in system.items()})
        pooled_base.update({f"{data}:{q}": v for q, v in base.items()})
        shutil.copyfile(folder / "run.trec", out / f"{data}.trec")
    heldout["all"] = compare(pooled_system, pooled_base)
    metrics["heldout"] = heldout
    write_json(out / "metrics.json", metrics)
    return heldout
