"""Held-out evaluation of a policy on augmented sets: did training make the model rank better?

A GRPO training curve shows the reward on the sets the model is trained on, sampled at a
temperature; it cannot tell learning from memorising or from noise. This module asks the question
REARANK's claim is about, on queries the model never saw: rerank every held-out set once,
greedily, with the prompt the model was trained with, and score each answer with the training
reward (``rewards.reward_breakdown``):

* ``rank_reward``: the normalised rank reward, (S_new - S_init) / (S_best - S_init), 0 for a copy
  of the input order (and for a reply without an answer block in strict mode);
* ``ndcg10_initial`` / ``ndcg10_reranked``: nDCG@10 of the set in the order it was given and in
  the model's order (normalised by the query's ideal DCG, as the reward does);
* complete answers (every passage ranked once, no repair), and copies of the input order.

Two comparisons come with 95% intervals that resample *queries* and then sets within them
(``stats.compare_paired``): the model against the order it was given (nDCG@10 gain), and, with
``against``, the model against another evaluation folder of the same sets (paired by ``set_id``):
a trained model against its base, say. A model that copies its input scores 0 everywhere, so
"beats the untrained model" alone is not learning; both comparisons are needed.

    rearank-kit evaluate-sets --model smollm2-135m --sets runs/aug --split test --out runs/eval-base
    rearank-kit evaluate-sets --model runs/grpo --sets runs/aug --split test --out runs/eval-grpo \\
        --against runs/eval-base

Output folder: ``sets.jsonl`` (one line per set, appended as it goes: identifiers, grades, the
model's reply and scores, no passage or query text), ``metrics.json`` and ``manifest.json``. An
interrupted run resumes with the same command; a folder made with other settings is refused.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import append_jsonl, iter_jsonl, read_json, write_json, write_jsonl

SETS_LOG = "sets.jsonl"
SPLIT_ALIASES = {"heldout": "test", "held-out": "test", "val": "validation", "dev": "validation"}
# An answer-only reply takes about 5 tokens per identifier ("3] > [1] > ..." with SmolLM2's and
# Qwen's tokenizers) plus the closing tag; a reasoning reply needs room to think first. The limit
# depends on the set size only, so that two models evaluated on the same sets get the same room.
TOKENS_PER_ID = 6
REASONING_MAX_NEW_TOKENS = 1024


def default_max_new_tokens(template, window: int) -> int:
    return REASONING_MAX_NEW_TOKENS if template.reasoning else TOKENS_PER_ID * window + 8


@dataclass
class SetEvalConfig:
    split: str = "test"  # which split of the augment folder: train, validation or test ("heldout")
    max_new_tokens: int | None = None  # None: reasoning 1024; answer-only 6 per passage + 8 (38 for 5)
    # Parsing mode of the rank reward. None: the model's own (a kit run records it; strict otherwise).
    # Compare two models under the same mode: a base model scored strictly gets 0 for every reply
    # without an <answer> block, so set this to the trained model's mode when evaluating its base.
    lenient: bool | None = None
    batch_size: int = 1  # sets per generate call; 1 is fastest with hf on a CPU (no padding)
    per_query: int | None = None  # evaluate only the first N sets of each query (quick probes)
    reward_mode: str = "normalized"
    seed: int = 0  # for the bootstrap (decoding is greedy)
    resamples: int = 10_000  # bootstrap resamples
    # Keep only the ranking syntax of each reply in sets.jsonl ("<answer>[3] > [1]..."): a small
    # model's free text often copies passage text, which must not reach a committed file.
    ids_only: bool = False

    # Settings that cannot change a set's result: a run may resume with other values.
    EXECUTION_ONLY = ("batch_size", "resamples", "ids_only")

    def split_name(self) -> str:
        return SPLIT_ALIASES.get(self.split, self.split)


# --- reading the sets ---------------------------------------------------------------------------


def load_split(sets_dir: str | Path, split: str, per_query: int | None = None) -> list[dict]:
    """The rows of one split of an augment folder (``sets.jsonl``), in file order."""
    path = Path(sets_dir) / "sets.jsonl"
    if not path.is_file():
        raise KitError(f"{path}: missing; --sets must be an augment output folder (rearank-kit augment --out)")
    rows, counts = [], {}
    for number, row in enumerate(iter_jsonl(path, skip_torn_tail=False), start=1):
        for key in ("set_id", "qid", "query", "docids", "texts", "grades", "ideal_grades", "split"):
            if key not in row:
                raise KitError(f"{path}:{number}: field {key!r} is missing")
        if row["split"] != split:
            continue
        counts[row["qid"]] = counts.get(row["qid"], 0) + 1
        if per_query is None or counts[row["qid"]] <= per_query:
            rows.append(row)
    if not rows:
        raise KitError(f"{path}: no sets in split {split!r} (splits there: "
                       f"{', '.join(sorted({r['split'] for r in iter_jsonl(path)}))})")
    return rows


def check_window(rows: list[dict], window: int | None, sets_path: Path, record: str | None) -> None:
    """A policy trained on sets of N passages is evaluated on sets of N passages."""
    sizes = sorted({len(r["docids"]) for r in rows})
    if window is not None and sizes != [window]:
        raise KitError(
            f"{sets_path}: sets of {', '.join(map(str, sizes))} passages (field docids), but the model was trained "
            f"on sets of {window} ({record}, field config.window); augment with --window {window}"
        )


# --- one set ------------------------------------------------------------------------------------

# The ranking syntax the parser reads, unclosed identifiers included: a reply cut after one token of
# "<answer>[" is "<answer>[2", whose pick was scored and must be kept.
_RANKING_PREFIX = re.compile(r"\s*(<answer>)?\s*(\[\s*\d+\s*\]?(\s*>\s*\[\s*\d+\s*\]?)*)?\s*(</answer>)?")


def ids_only(completion: str) -> str:
    """The reply's leading ranking syntax (``<answer>[3] > [1] ...</answer>``), the rest counted, not kept."""
    kept = _RANKING_PREFIX.match(completion).group(0).rstrip()
    dropped = len(completion) - len(kept)
    return kept + (f" [+{dropped} characters of free text not kept]" if dropped else "")



def score_set(row: dict, completion: str, lenient: bool, mode: str = "normalized") -> dict:
    """The record of one set: identifiers, grades, the reply and its scores (no passage text)."""
    from rearank_kit.core.parsing import parse_ranking
    from rearank_kit.train.rewards import reward_breakdown

    parts = reward_breakdown(completion, row["grades"], row["ideal_grades"], mode, lenient=lenient)
    parsed = parse_ranking(completion, len(row["grades"]))
    return {
        "set_id": row["set_id"], "qid": row["qid"], "docids": row["docids"], "grades": row["grades"],
        "ideal_grades": row["ideal_grades"], "completion": completion, "order": parts["order"],
        "rank_reward": parts["rank"], "ndcg10_initial": parts["s_init"], "ndcg10_reranked": parts["s_new"],
        "ndcg10_best": parts["s_best"], "complete": parsed.complete and parsed.has_answer,
        "copied": parts["order"] == list(range(len(row["grades"]))),
    }  # fmt: skip


# --- summary ------------------------------------------------------------------------------------


def summarize(records: list[dict], resamples: int = 10_000, seed: int = 0) -> dict:
    """Means, shares and the model-vs-initial-order comparison of one evaluation."""
    import numpy as np

    from rearank_kit.core.stats import compare_paired

    rewards = np.array([r["rank_reward"] for r in records])
    init = np.array([r["ndcg10_initial"] for r in records])
    new = np.array([r["ndcg10_reranked"] for r in records])
    qids = [r["qid"] for r in records]
    return {
        "sets": len(records),
        "queries": len(set(qids)),
        "rank_reward": {"mean": float(rewards.mean()), "median": float(np.median(rewards)),
                        "share_below_minus_1": float((rewards < -1).mean())},
        "ndcg10_initial": float(init.mean()),
        "ndcg10_reranked": float(new.mean()),
        "ndcg10_best": float(np.mean([r["ndcg10_best"] for r in records])),
        "vs_initial_order": compare_paired(list(new - init), qids, resamples, seed),
        "complete_answers": float(np.mean([r["complete"] for r in records])),
        "copied_input_order": float(np.mean([r["copied"] for r in records])),
    }  # fmt: skip


def compare_runs(records: list[dict], other: list[dict], other_path: str | Path, resamples: int = 10_000,
                 seed: int = 0) -> dict:
    """This evaluation minus another of the same sets, paired by set_id, with query-level intervals."""
    from rearank_kit.core.stats import compare_paired

    other_path = Path(other_path)
    theirs = {r["set_id"]: r for r in other}
    missing = [r["set_id"] for r in records if r["set_id"] not in theirs]
    if missing:
        raise KitError(f"{other_path / SETS_LOG}: lacks {len(missing)} of this evaluation's sets (e.g. {missing[0]}); "
                       "compare evaluations of the same augment folder and split")
    for r in records:
        if theirs[r["set_id"]]["docids"] != r["docids"]:
            raise KitError(f"{other_path / SETS_LOG}: set {r['set_id']} has other passages (field docids): "
                           "the two evaluations used different augment folders")
    qids = [r["qid"] for r in records]
    return {
        "against": str(other_path),
        "rank_reward": compare_paired([r["rank_reward"] - theirs[r["set_id"]]["rank_reward"] for r in records],
                                      qids, resamples, seed),
        "ndcg10_reranked": compare_paired(
            [r["ndcg10_reranked"] - theirs[r["set_id"]]["ndcg10_reranked"] for r in records], qids, resamples, seed),
    }


# --- the run ------------------------------------------------------------------------------------


def _identity(policy, template, lenient: bool, config: SetEvalConfig, sets_fingerprint: str) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(config).items() if k not in SetEvalConfig.EXECUTION_ONLY}
    return {"model": policy.name, "adapter": policy.adapter, "template": template.name,
            "template_hash": template.hash, "lenient": lenient, "config": settings,
            "sets_fingerprint": sets_fingerprint}  # fmt: skip


def _check_resumable(out: Path, identity: dict[str, Any]) -> None:
    path = out / "manifest.json"
    if not path.is_file():
        if (out / SETS_LOG).exists():
            raise KitError(f"{out}: has {SETS_LOG} but no manifest.json, so it cannot be resumed; use a new --out")
        return
    old = read_json(path)
    if old.get("kind") != "evaluate-sets":
        raise KitError(f"{path}: holds a {old.get('kind')!r} output (field kind), not a set evaluation; use a new --out")
    diffs = [k for k in identity if old.get(k) != identity[k]]
    if diffs:
        detail = "; ".join(f"{k}: {old.get(k)!r} there, {identity[k]!r} now" for k in diffs)
        raise KitError(f"{path}: made with other settings ({detail}); use a new --out")


def evaluate_sets(model: Any, sets_dir: str | Path, out: str | Path, config: SetEvalConfig | None = None, *,
                  backend: str = "hf", template: str | None = None, against: str | Path | None = None,
                  progress: bool = True, engine: Any = None, **backend_kwargs: Any) -> dict:
    """Rerank every set of ``config.split`` greedily with ``model`` and write the evaluation folder.

    ``model``: a preset, folder, hub id, training run folder or checkpoint (``policy.resolve_policy``
    reads its template, prefill and parsing mode). ``engine``: an already loaded backend to use
    instead of loading one. Returns metrics.json's content.
    """
    from tqdm.auto import tqdm

    from rearank_kit.core.manifest import fingerprint_files, write_manifest
    from rearank_kit.rank.backends import GenerationConfig, load_backend
    from rearank_kit.rank.policy import resolve_policy
    from rearank_kit.rank.settings import model_template

    config = config or SetEvalConfig()
    split = config.split_name()
    out, sets_dir = Path(out), Path(sets_dir)
    if out.exists() and not out.is_dir():
        raise KitError(f"{out}: exists and is not a folder; choose another --out")
    policy = resolve_policy(model, template, warn=False)
    if policy.family == "scored":
        return _evaluate_scored(Path(model), sets_dir, out, config, template=template, against=against,
                                progress=progress, device=backend_kwargs.get("device", "cpu"))  # fmt: skip
    tmpl = model_template(str(model), template)  # the one owner: warns on a mismatch, refuses an edited file
    rows = load_split(sets_dir, split, config.per_query)
    check_window(rows, policy.window, sets_dir / "sets.jsonl", policy.record)
    lenient = policy.lenient if config.lenient is None else config.lenient
    other = _read_against(against)
    max_new = config.max_new_tokens or default_max_new_tokens(tmpl, len(rows[0]["docids"]))
    identity = _identity(policy, tmpl, lenient, config, fingerprint_files([sets_dir / "sets.jsonl"]))
    _check_resumable(out, identity)

    done = {r["set_id"]: r for r in iter_jsonl(out / SETS_LOG)}
    todo = [r for r in rows if r["set_id"] not in done]
    fields = {**identity, "sets_dir": str(sets_dir), "split": split, "max_new_tokens": max_new,
              "prefill": tmpl.prefill, "backend": backend, "base": policy.base, "policy_record": policy.record}
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, "evaluate-sets", status="running", **fields)

    started = time.perf_counter()
    if todo:
        gen_config = GenerationConfig(max_new_tokens=max_new, temperature=0.0, batch_size=config.batch_size)
        owned = engine is None
        engine = engine or load_backend(backend, policy, **backend_kwargs)
        try:
            bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"evaluate {split} sets", unit="set",
                       disable=not progress, dynamic_ncols=True)
            step = max(config.batch_size, 1)
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                convs = [tmpl.messages(r["query"], r["texts"]) for r in chunk]
                outs = engine.generate(convs, gen_config, prefill=tmpl.prefill or None)
                for row, gen in zip(chunk, outs, strict=True):
                    record = score_set(row, gen.text, lenient, config.reward_mode)
                    if config.ids_only:
                        record["completion"] = ids_only(record["completion"])
                    append_jsonl(out / SETS_LOG, record)  # flushed: an interrupt loses at most this chunk
                    done[row["set_id"]] = record
                bar.update(len(chunk))
            bar.close()
        finally:
            if owned:
                engine.close()
    records = [done[r["set_id"]] for r in rows]
    head = {"model": policy.name, "template": tmpl.name, "split": split, "lenient": lenient}
    return _finish(out, records, head, other, against, config, started, fields)


def _read_against(against: str | Path | None) -> list[dict] | None:
    """The records of the ``--against`` folder, read before any work (None without one)."""
    if against is None:
        return None
    other = list(iter_jsonl(Path(against) / SETS_LOG))
    if not other:
        raise KitError(f"{Path(against) / SETS_LOG}: missing or empty; --against takes an evaluate-sets output folder")
    return other


def _finish(out: Path, records: list[dict], head: dict, other: list[dict] | None, against, config: SetEvalConfig,
            started: float, fields: dict) -> dict:
    """metrics.json (``head``, the summary, the comparison with ``--against``), then the manifest
    marked done: an evaluation's last writes, for either policy family."""
    from rearank_kit.core.manifest import write_manifest

    metrics = {**head, **summarize(records, config.resamples, config.seed)}
    if other is not None:
        metrics["comparison"] = compare_runs(records, other, Path(against), config.resamples, config.seed)
    metrics["seconds_this_session"] = round(time.perf_counter() - started, 1)
    write_json(out / "metrics.json", metrics)
    write_manifest(out, "evaluate-sets", status="done", results=dict(metrics), **fields)
    return metrics


def _evaluate_scored(folder: Path, sets_dir: Path, out: Path, config: SetEvalConfig, *, template, against, progress,
                     device) -> dict:
    """``evaluate_sets`` for a scored policy (``rank/scored.py``): each set ranked greedily by its
    scores, recorded as the answer text ``<answer>[3] > [1] ...</answer>`` so that the records,
    the summary and ``--against`` read as a generative policy's. The states of the sets' pairs and
    their priors come from the benchmark the sets were drawn from (their augment manifest)."""
    from rearank_kit.core.manifest import fingerprint_files, read_manifest, write_manifest
    from rearank_kit.core.parsing import format_ranking
    from rearank_kit.core.records import Benchmark, Ranking
    from rearank_kit.data.benchmarks import load_benchmark
    from rearank_kit.rank.models import resolve_device
    from rearank_kit.rank.scored import load_scored_policy
    from rearank_kit.rank.states import build_states
    from rearank_kit.train.scored import query_priors

    if template is not None:
        raise KitError(f"--template {template}: a scored policy has no listwise prompt (its pair prompt is recorded)")
    policy = load_scored_policy(folder)
    split = config.split_name()
    rows = load_split(sets_dir, split, config.per_query)
    other = _read_against(against)  # a wrong --against fails before the states are computed
    made = read_manifest(sets_dir) or {}
    source = made.get("data_path") or made.get("data")
    if not source:
        raise KitError(f"{sets_dir / 'manifest.json'}: names no benchmark (fields data_path, data); a scored policy "
                       "needs the first-stage scores of the sets' queries")
    pool = int((made.get("config") or {}).get("pool", 100)) if isinstance(made.get("config"), dict) else 100
    bench = load_benchmark(source, top_k=pool)
    priors = query_priors(bench, policy.prior)
    wanted: dict[str, set[str]] = {}
    for r in rows:
        wanted.setdefault(str(r["qid"]), set()).update(map(str, r["docids"]))
    subset = Benchmark(bench.name, bench.path, [Ranking(x.query, [c for c in x.candidates if c.docid in wanted[x.query.qid]])
                                                for x in bench.rankings if x.query.qid in wanted], bench.qrels)  # fmt: skip
    identity = {"model": str(folder), "policy": "scored", "template": policy.prompt, "template_hash": policy.prompt_hash,
                "config": {k: v for k, v in asdict(config).items() if k not in SetEvalConfig.EXECUTION_ONLY},
                "sets_fingerprint": fingerprint_files([sets_dir / "sets.jsonl"])}  # fmt: skip
    _check_resumable(out, identity)
    out.mkdir(parents=True, exist_ok=True)
    fields = {**identity, "sets_dir": str(sets_dir), "split": split, "base": policy.model, "data": bench.name}
    write_manifest(out, "evaluate-sets", status="running", **fields)
    started = time.perf_counter()
    cache = build_states(subset, out / "states", policy.model, policy.prompt, policy.layers,
                         device=resolve_device(device), progress=progress)  # fmt: skip
    records = []
    for r in rows:
        order = policy.order(cache.matrix(r["qid"], r["docids"], policy.layers), [priors[str(r["qid"])][str(d)] for d in r["docids"]])
        records.append(score_set(r, f"<answer>{format_ranking(order)}</answer>", lenient=True, mode=config.reward_mode))
    write_jsonl(out / SETS_LOG, records)
    head = {"model": str(folder), "template": policy.prompt, "split": split, "lenient": True}
    return _finish(out, records, head, other, against, config, started, fields)


__all__ = ["SetEvalConfig", "evaluate_sets", "load_split", "score_set", "summarize", "compare_runs"]
