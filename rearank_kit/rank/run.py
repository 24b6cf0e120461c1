"""A rerank run folder, written by one function: ``rerank_benchmark``.

    from rearank_kit.rank.run import rerank_benchmark
    run = rerank_benchmark("dl19", "smollm2-135m", RerankConfig(top_k=20, template="compact"), "runs/smol",
                           queries=5)
    run.summary["reranked"]["nDCG@10"], run.out          # metrics.json's content, the folder

The command line (``rearank-kit rerank``, ``rearank-kit demo``) and the notebooks call it; the
sliding windows themselves are ``windows.py``'s. The folder holds:

* ``manifest.json``: written when the work starts (status ``running``: model, backend, template
  and hash, config, data and its fingerprint, packages, git commit), completed at the end
  (status ``done``, results, files);
* ``traces.jsonl`` (one record per model call) and ``rankings.jsonl`` (finished queries, the
  resume log), appended while the run works;
* ``run.trec`` and ``metrics.json`` (first stage vs reranked per measure, with a paired t-test,
  when the queries have judgments), written at the end.

Everything that can be checked without a model is checked before one is loaded: the output path,
the config, the template against the model preset, and the folder's manifest. A folder made with
the same setup is resumed (finished queries are skipped; batching may differ); one made with
another setup is refused rather than mixed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import existing_parent, iter_jsonl, write_json, write_jsonl
from rearank_kit.core.manifest import MANIFEST, check_resumable, fingerprint_files, read_manifest, write_manifest
from rearank_kit.core.parsing import is_complete
from rearank_kit.core.records import BENCHMARK_FILES, Benchmark, Ranking, rankings_to_run, write_run
from rearank_kit.rank.settings import RerankConfig, config_for_backend
from rearank_kit.rank.windows import RANKINGS_LOG, TRACES_LOG, rerank_queries

RUN_FILE = "run.trec"
METRICS_FILE = "metrics.json"  # first stage vs reranked (when judged), model calls, complete answers
OUTPUT_FILES = (RUN_FILE, TRACES_LOG, RANKINGS_LOG, METRICS_FILE, MANIFEST)
DEFAULT_MEASURES = "nDCG@5,nDCG@10,nDCG@20"


@dataclass
class RerankRun:
    """A finished run folder: where it is, the reranked rankings, and ``metrics.json``'s content."""

    out: Path
    rankings: list[Ranking]
    summary: dict[str, Any]


def rerank_benchmark(
    data: Benchmark | Sequence[Ranking] | str | os.PathLike,
    backend_or_model: Any,
    config: RerankConfig | None,
    out: str | os.PathLike,
    *,
    backend_name: str = "hf",
    backend_kwargs: dict[str, Any] | None = None,
    queries: int | None = None,
    measures: str = DEFAULT_MEASURES,
    overwrite: bool = False,
    progress: bool = True,
    manifest_fields: dict[str, Any] | None = None,
    states: str | os.PathLike | None = None,
) -> RerankRun:
    """Rerank ``data`` into the folder ``out``, which this function alone writes (``OUTPUT_FILES``).

    ``data``: a Benchmark, a benchmark name or folder, or with a network an ir_datasets id or
    ``bright/<task>`` (``remote.load_any``; loaded with ``config.top_k`` candidates, first
    ``queries`` only), or a list of Rankings (no judgments then). ``backend_or_model``: a
    loaded backend (left open), or a model (preset, folder, hub id) that is loaded with
    ``load_backend(backend_name, model, **backend_kwargs)`` once every check has passed, and
    closed at the end. Before any model is loaded: the output path, the config, the template
    against the model, and the folder's manifest (a folder made with another setup is refused;
    one made with the same setup is resumed, finished queries skipped). ``overwrite`` deletes
    earlier outputs first. The manifest is written when the work starts and completed at the end.

    A scored policy (a folder with ``scored_policy.json``, ``scored.py``) ranks each query's top k
    at once from the model's states (cached in ``states``, default ``out/states``); the settings
    of sliding windows and generation do not apply to it and are refused (``check_scored_config``).
    """
    out = Path(out)
    check_out(out)
    if queries is not None and queries < 1:
        raise KitError(f"queries must be positive, got {queries}")
    loaded = not isinstance(backend_or_model, str | os.PathLike)
    scored = not loaded and (Path(backend_or_model) / "scored_policy.json").is_file()  # scored.is_scored_policy, light
    if states is not None and not scored:
        raise KitError("--states: only a scored policy reads hidden states; this model writes its ranking as text")
    if scored:
        check_scored_config(config or RerankConfig(), backend_name, backend_kwargs)
        return _rerank_scored(data, Path(backend_or_model), config or RerankConfig(), out, queries=queries,
                              measures=measures, overwrite=overwrite, progress=progress, manifest_fields=manifest_fields,
                              states=states, device=(backend_kwargs or {}).get("device", "cpu"))  # fmt: skip
    model_id = getattr(backend_or_model, "model_id", None) if loaded else str(backend_or_model)
    engine = getattr(backend_or_model, "name", None) if loaded else backend_name
    # The one time this run reads its settings: the window, stride and template asked for, else the
    # model's own (settings.RerankConfig.for_model).
    config, template = (config or RerankConfig()).for_model(model_id)
    bench = _benchmark(data, config.top_k, queries, manifest_fields)
    if not bench.rankings:
        raise KitError(f"{bench.path or bench.name}: no queries to rerank")
    fields = {**(manifest_fields or {}), **_data_fields(bench)}
    setup = {"model": model_id, "backend": engine, "template": template.name, "template_hash": template.hash,
             "config": config.to_dict(), "data": fields.get("data"), "data_fingerprint": fields.get("data_fingerprint")}
    setup = {k: v for k, v in setup.items() if v is not None}  # fmt: skip
    if overwrite:
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    _check_resumable(out, setup)

    started = time.perf_counter()
    if loaded:
        context: Any = nullcontext(backend_or_model)
    else:
        from rearank_kit.rank.backends import load_backend

        if backend_name == "openai" and (backend_kwargs or {}).get("base_url"):
            from rearank_kit.rank.backends.openai import check_server

            check_server(backend_kwargs["base_url"])  # a dead server fails here, before the folder is made
        context = load_backend(backend_name, model=model_id, **(backend_kwargs or {}))
    with context as backend:
        config = config_for_backend(config, backend)
        out.mkdir(parents=True, exist_ok=True)
        finished = _load_finished(out, {r.query.qid: r for r in bench.rankings})
        write_manifest(out, "rerank", **{**fields, **setup, "config": config.to_dict(), "seed": config.seed,
                                         "status": "running"})  # fmt: skip
        reranked = rerank_queries(bench.rankings, backend, config, template, finished, out, progress)
    seconds = time.perf_counter() - started

    write_run(reranked, out / RUN_FILE, tag=f"rearank-kit-{template.name}")
    return _finish(out, bench, reranked, measures, seconds)


def _finish(out: Path, bench: Benchmark, reranked: list[Ranking], measures: str, seconds: float,
            scored_pairs: int | None = None) -> RerankRun:
    """metrics.json, then the manifest completed (status done, results, files): a run's last writes."""
    summary = _summary(bench, reranked, out, measures, seconds)
    if scored_pairs is not None:  # a scored policy makes no model call and writes no answer
        for key in ("model_calls", "complete_answers"):
            summary.pop(key, None)
        summary["scored_pairs"] = scored_pairs
    write_json(out / METRICS_FILE, summary)
    manifest = read_manifest(out) or {}
    manifest.update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    results={k: v for k, v in summary.items() if k != "per_query"},
                    files=[n for n in OUTPUT_FILES if (out / n).exists()])  # fmt: skip
    write_json(out / MANIFEST, manifest)
    return RerankRun(out, reranked, summary)


# --- a scored policy ----------------------------------------------------------------------------------

# What a scored policy's run writes besides the logs of a generative run (its states, by default).
STATES_DIR = "states"


def check_scored_config(config: RerankConfig, backend_name: str = "hf", backend_kwargs: dict | None = None) -> None:
    """A scored policy takes ``--top-k``, ``--batch-size`` (pairs per forward pass) and ``--device``;
    the settings of windows and generation mean nothing to it and are refused by name."""
    given = {"--window": config.window is not None, "--stride": config.step is not None,
             "--template": config.template is not None, "--max-new-tokens": config.max_new_tokens is not None,
             "--temperature": config.temperature != 0.0, "--top-p": config.top_p != 1.0}  # fmt: skip
    refused = [flag for flag, set_ in given.items() if set_]
    if refused:
        raise KitError(f"{', '.join(refused)}: a scored policy ranks a whole list at once from the model's states, "
                       "with no windows, prompt template or generation; it takes --top-k, --batch-size and --device")
    if backend_name != "hf":
        raise KitError(f"--backend {backend_name}: a scored policy reads hidden states, which only the hf backend "
                       "gives; use --backend hf (the default)")
    extra = sorted(set(backend_kwargs or {}) - {"device"})
    if extra:
        raise KitError(f"{', '.join(extra)}: not used by a scored policy (only --device is)")


def _rerank_scored(data, folder: Path, config: RerankConfig, out: Path, *, queries, measures, overwrite, progress,
                   manifest_fields, states, device) -> RerankRun:
    from rearank_kit.rank.models import resolve_device
    from rearank_kit.rank.scored import load_scored_policy, rerank_scored
    from rearank_kit.rank.states import build_states

    config.check()
    device = resolve_device(device)
    policy = load_scored_policy(folder)
    bench = _benchmark(data, config.top_k, queries, manifest_fields)
    if not bench.rankings:
        raise KitError(f"{bench.path or bench.name}: no queries to rerank")
    fields = {**(manifest_fields or {}), **_data_fields(bench)}
    setup = {"model": str(folder), "policy": "scored", "base_model": policy.model, "template": policy.prompt,
             "template_hash": policy.prompt_hash, "layers": list(policy.layers), "config": {"top_k": config.top_k},
             "data": fields.get("data"), "data_fingerprint": fields.get("data_fingerprint")}
    setup = {k: v for k, v in setup.items() if v is not None}  # fmt: skip
    if overwrite:
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    _check_resumable(out, setup)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, "rerank", **{**fields, **setup, "status": "running"})
    started = time.perf_counter()
    heads = [Ranking(r.query, r.candidates[: config.top_k]) for r in bench.rankings]
    cache = build_states(Benchmark(bench.name, bench.path, heads, bench.qrels), Path(states) if states else out / STATES_DIR,
                         policy.model, policy.prompt, policy.layers, batch_size=config.batch_size or 16, device=device,
                         progress=progress)  # fmt: skip
    if cache.key.prompt_hash != policy.prompt_hash:
        raise KitError(f"{cache.folder}: states of prompt {cache.key.prompt}#{cache.key.prompt_hash}, but {folder} "
                       f"was trained on {policy.prompt}#{policy.prompt_hash}")
    reranked = rerank_scored(policy, bench.rankings, cache, config.top_k)
    seconds = time.perf_counter() - started
    write_jsonl(out / RANKINGS_LOG, (r.to_dict() for r in reranked))
    write_jsonl(out / TRACES_LOG, ({"qid": r.query.qid, "window": [0, min(config.top_k, len(r.candidates))],
                                    "docids": [c.docid for c in r.candidates[: config.top_k]],
                                    "scores": [c.score for c in r.candidates[: config.top_k]], "model": str(folder),
                                    "template": policy.prompt, "template_hash": policy.prompt_hash}
                                   for r in reranked))  # fmt: skip
    write_run(reranked, out / RUN_FILE, tag=f"rearank-kit-scored-{policy.prompt}")
    return _finish(out, bench, reranked, measures, seconds,
                   scored_pairs=sum(min(config.top_k, len(r.candidates)) for r in reranked))


def check_out(out: Path) -> None:
    """The output must be (or become) a folder: say so before anything is loaded."""
    path = existing_parent(out)
    if not path.is_dir():
        what = "the output folder" if path == Path(out).expanduser().absolute() else f"a parent of the output folder {out}"
        raise KitError(f"{path}: exists and is a file, but {what} must be a folder "
                       f"(a rerank run writes {', '.join(OUTPUT_FILES)}); choose another output folder")  # fmt: skip


def _benchmark(data, top_k: int, queries: int | None, fields: dict | None) -> Benchmark:
    if isinstance(data, Benchmark):
        return data.head(queries)
    if isinstance(data, str | os.PathLike):
        from rearank_kit.data.remote import load_any

        return load_any(data, top_k=top_k).head(queries)
    name = str((fields or {}).get("data") or "rankings")
    return Benchmark(name, None, list(data), {}).head(queries)


def _data_fields(bench: Benchmark) -> dict[str, Any]:
    fields: dict[str, Any] = {"queries": [r.query.qid for r in bench.rankings]}
    if bench.path is not None:
        fields.update(data=bench.name, data_path=str(bench.path),
                      data_fingerprint=fingerprint_files(bench.path / f for f in BENCHMARK_FILES))  # fmt: skip
    return fields


def _check_resumable(out: Path, setup: dict[str, Any]) -> None:
    """Refuse a folder whose finished work was made with another setup (batching may differ)."""
    if not (out / MANIFEST).is_file() and (out / RANKINGS_LOG).exists():
        raise KitError(f"{out}: has {RANKINGS_LOG} but no {MANIFEST}, so it cannot be resumed safely; "
                       "use a new output folder (or overwrite)")  # fmt: skip
    check_resumable(out, setup, kind="rerank", ignore=RerankConfig.EXECUTION_ONLY,
                    problem="holds a run made differently",
                    advice="resuming would mix two setups: use a new output folder (--out), or overwrite "
                           "(--overwrite) to start this one again")  # fmt: skip


def _load_finished(out: Path, wanted: dict[str, Ranking]) -> dict[str, Ranking]:
    """Finished rankings of ``out`` (by qid), and the logs rewritten without torn or stale lines."""
    finished: dict[str, Ranking] = {}
    kept = list(iter_jsonl(out / RANKINGS_LOG))  # a line torn by an interrupt is left out
    for number, record in enumerate(kept, start=1):
        try:
            ranking = Ranking.from_dict(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise KitError(f"{out / RANKINGS_LOG}: record {number} is not a ranking ({exc})") from None
        base = wanted.get(ranking.query.qid)
        if base is None:
            continue  # a query outside this run's selection: kept in the log, unused
        by_id = {c.docid: c for c in base.candidates}
        if sorted(ranking.docids) != sorted(by_id):
            raise KitError(f"{out / RANKINGS_LOG}: query {ranking.query.qid} has other candidates than the "
                           "data now (the data changed since this run started); use a new output folder")
        finished[ranking.query.qid] = Ranking(base.query, [by_id[d] for d in ranking.docids])  # data's texts
    write_jsonl(out / RANKINGS_LOG, kept)
    # Traces of queries that did not finish are dropped: those queries are redone from the start.
    logged = {r["query"]["qid"] for r in kept}
    write_jsonl(out / TRACES_LOG, (t for t in iter_jsonl(out / TRACES_LOG) if t.get("qid") in logged))
    return finished


def _summary(bench: Benchmark, reranked: list[Ranking], out: Path, measures: str, seconds: float) -> dict[str, Any]:
    """metrics.json: model calls and complete answers of this run's queries, and, with judgments,
    first stage vs reranked per measure with a paired t-test."""
    wanted = {r.query.qid for r in reranked}
    traces = [t for t in iter_jsonl(out / TRACES_LOG) if t.get("qid") in wanted]
    summary: dict[str, Any] = {
        "data": bench.name,
        "num_queries": len(reranked),
        "model_calls": len(traces),
        "complete_answers": sum(1 for t in traces if is_complete(t.get("diagnostics") or {})),
        "seconds_this_session": round(seconds, 2),
    }
    # Only the judgments of the reranked queries: with `queries` the others are not part of the run.
    qrels = {q: bench.qrels[q] for q in wanted if bench.qrels.get(q)}
    if not qrels:
        summary["note"] = "no judgments (qrels) for these queries: nothing to evaluate"
        return summary
    from rearank_kit.core.metrics import evaluate, paired_ttest

    base, new = evaluate(bench.first_stage_run(), qrels, measures), evaluate(rankings_to_run(reranked), qrels, measures)
    summary.update(
        judged_queries=new.num_queries, missing_queries=new.missing_queries, first_stage=base.mean, reranked=new.mean,
        delta={m: new.mean[m] - base.mean[m] for m in new.mean},
        paired_ttest_p={m: paired_ttest(new.per_query[m].to_dict(), base.per_query[m].to_dict())[1] for m in new.mean},
        per_query={"first_stage": base.to_json()["per_query"], "reranked": new.to_json()["per_query"]},
    )  # fmt: skip
    return summary
