"""Benchmarks fetched over the network: ir_datasets ids and the BRIGHT reasoning tasks.

Nothing else in the kit needs a network: ``data.load_benchmark`` reads local folders only. With a
network, these loaders build the same four-file benchmark from public sources:

    from rearank_kit.remote import load_ir_dataset, load_bright, load_any
    bench = load_ir_dataset("msmarco-passage/trec-dl-2019/judged", top_k=100)   # pyserini BM25
    bench = load_bright("biology", top_k=100, out="data/bright-biology")       # local BM25
    bench = load_any("beir/trec-covid")       # a folder, a local name, or a remote id

* ``load_ir_dataset``: queries and qrels from ir_datasets; BM25 (k1=0.9, b=0.4) candidates and
  passage texts from a pyserini prebuilt Lucene index (``msmarco-v1-passage``,
  ``msmarco-v2-passage``, ``beir-v1.0.0-<name>.flat``).
* ``load_bright``: documents and examples of a BRIGHT task from the Hugging Face hub
  (``xlangai/BRIGHT``), BM25 candidates computed here with :mod:`rearank_kit.retrieval` (as the
  REARANK paper did); each example's ``excluded_ids`` are removed from its candidates.

Without a network every loader fails within seconds with a KitError that says what it tried
and how to use local files instead. ``resolve_any`` saves what it downloads under
``$REARANK_KIT_CACHE/benchmarks`` and reuses it later, offline too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from rearank_kit._optional import require
from rearank_kit.data import Benchmark, Qrels, Query, Ranking, load_benchmark, resolve_benchmark, save_benchmark
from rearank_kit.env import CONNECT_TIMEOUT_S, cache_dir, env_flag, hub_host, hub_offline, unreachable
from rearank_kit.errors import KitError

BRIGHT_TASKS = (
    "biology", "earth_science", "economics", "psychology", "robotics", "stackoverflow",
    "sustainable_living", "leetcode", "pony", "aops", "theoremqa_questions", "theoremqa_theorems",
)  # fmt: skip
BRIGHT_DATASET = "xlangai/BRIGHT"
LOCAL_HINT = (
    "To work offline, put a benchmark folder with the four files (queries.tsv, qrels.txt, "
    "candidates.trec, passages.jsonl) somewhere and pass its path, or set REARANK_KIT_DATA to a "
    "folder holding such folders; `rearank-kit retrieve` builds one from your own passages."
)


# --- fail fast without a network ----------------------------------------------------------------


def require_network(what: str, hosts: tuple[str, ...], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a KitError quickly unless one of ``hosts`` (or the HTTPS proxy) accepts a connection."""
    problem = unreachable(hosts, timeout)
    if problem is not None:
        raise KitError(f"could not download {what} (no network?): tried {problem}. {LOCAL_HINT}")


def _download_failed(what: str, exc: BaseException) -> KitError:
    return KitError(f"could not download {what} ({type(exc).__name__}: {str(exc)[:300]}). {LOCAL_HINT}")


# --- ids ----------------------------------------------------------------------------------------


def _bright_task(name: str) -> str | None:
    m = re.fullmatch(r"bright[/:]([a-z_]+)", name.strip().lower())
    return m.group(1) if m and m.group(1) in BRIGHT_TASKS else None


def is_ir_dataset_id(name: str) -> bool:
    """Whether ``name`` is a dataset id that ir_datasets knows (no network needed to tell)."""
    if "/" not in name:
        return False
    try:
        return name in require("ir_datasets").registry
    except KitError:
        return False


def is_remote_id(name: str | os.PathLike) -> bool:
    """``bright/<task>`` or an ir_datasets id (e.g. ``beir/trec-covid``), and not a local folder."""
    name = str(name)
    if Path(name).exists():
        return False
    return _bright_task(name) is not None or is_ir_dataset_id(name)


def prebuilt_index_for(dataset_id: str) -> str:
    """The pyserini prebuilt BM25 index holding the corpus of an ir_datasets id."""
    parts = dataset_id.split("/")
    if parts[0] == "msmarco-passage":
        return "msmarco-v1-passage"
    if parts[0] == "msmarco-passage-v2":
        return "msmarco-v2-passage"
    if parts[0] == "beir" and len(parts) > 1:
        rest = [p for p in parts[1:] if p not in ("train", "dev", "test", "v2")]
        return f"beir-v1.0.0-{'-'.join(rest)}.flat"
    raise KitError(
        f"no pyserini prebuilt index is known for {dataset_id!r} (supported: msmarco-passage/..., "
        f"msmarco-passage-v2/..., beir/...). Retrieve over its documents yourself with "
        f"`rearank-kit retrieve --passages ... --queries ...`."
    )


# --- loaders ------------------------------------------------------------------------------------


def _finish(name: str, rankings: list[Ranking], qrels: Qrels, out, **manifest) -> Benchmark:
    bench = Benchmark(name, Path(out) if out else None, rankings, qrels)
    if out:
        from rearank_kit.manifest import write_manifest

        save_benchmark(bench, out, tag="bm25")
        write_manifest(out, "remote-benchmark", **manifest)
    return bench


def _doc_text(raw: str | None) -> str:
    """Passage text from a Lucene stored document: {"contents"} or BEIR's {"title", "text"}."""
    if not raw:
        return ""
    try:
        rec = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if not isinstance(rec, dict):
        return raw
    if isinstance(rec.get("contents"), str):
        return rec["contents"]
    return " ".join(str(rec[f]) for f in ("title", "text") if rec.get(f)).strip()


def load_ir_dataset(dataset_id: str, top_k: int = 100, out: str | os.PathLike | None = None) -> Benchmark:
    """Queries and qrels from ir_datasets, BM25 top ``top_k`` and texts from a pyserini prebuilt index."""
    ir_datasets = require("ir_datasets")
    if dataset_id not in ir_datasets.registry:
        raise KitError(f"{dataset_id!r} is not an ir_datasets id (see https://ir-datasets.com). {LOCAL_HINT}")
    index_name = prebuilt_index_for(dataset_id)
    what = f"{dataset_id} (ir_datasets) and the pyserini index {index_name}"
    require_network(what, ("huggingface.co", "rgw.cs.uwaterloo.ca"))
    from tqdm.auto import tqdm

    from rearank_kit.retrieval import K1, B, import_pyserini

    try:
        ds = ir_datasets.load(dataset_id)
        queries = [Query(str(q.query_id), q.default_text() if hasattr(q, "default_text") else q.text)
                   for q in ds.queries_iter()]
        qrels: Qrels = {}
        for qr in ds.qrels_iter():
            qrels.setdefault(str(qr.query_id), {})[str(qr.doc_id)] = int(qr.relevance)
        searcher = import_pyserini().LuceneSearcher.from_prebuilt_index(index_name)
    except KitError:
        raise
    except Exception as exc:
        raise _download_failed(what, exc) from exc
    if searcher is None:
        raise _download_failed(what, RuntimeError(f"pyserini could not open {index_name}"))
    searcher.set_bm25(K1, B)
    from rearank_kit.data import Candidate

    rankings = []
    for q in tqdm(queries, desc=f"BM25 {index_name}", unit="query"):
        hits = searcher.search(q.text, k=top_k)
        cands = [Candidate(h.docid, _doc_text(searcher.doc(h.docid).raw()), i + 1, float(h.score))
                 for i, h in enumerate(hits)]
        rankings.append(Ranking(q, cands))
    name = dataset_id.replace("/", "-")
    return _finish(name, rankings, qrels, out, source="ir_datasets", dataset_id=dataset_id,
                   index=index_name, top_k=top_k, k1=K1, b=B)


def load_bright(task: str, top_k: int = 100, out: str | os.PathLike | None = None, backend: str = "bm25s") -> Benchmark:
    """A BRIGHT task: documents and examples from the hub, BM25 top ``top_k`` computed locally."""
    if task not in BRIGHT_TASKS:
        raise KitError(f"unknown BRIGHT task {task!r}; tasks: {', '.join(BRIGHT_TASKS)}")
    what = f"BRIGHT task {task} ({BRIGHT_DATASET} on the Hugging Face hub)"
    if not (hub_offline() or env_flag("HF_DATASETS_OFFLINE")):  # offline: the local Hugging Face cache
        require_network(what, (hub_host(),))
    datasets = require("datasets")
    try:
        docs = datasets.load_dataset(BRIGHT_DATASET, "documents", split=task)
        examples = datasets.load_dataset(BRIGHT_DATASET, "examples", split=task)
    except Exception as exc:
        raise _download_failed(what, exc) from exc
    from rearank_kit.retrieval import bm25_search

    passages = {str(r["id"]): r["content"] for r in docs}
    queries, qrels, excluded = [], {}, {}
    for e in examples:
        qid = str(e["id"])
        queries.append(Query(qid, e["query"]))
        qrels[qid] = {str(d): 1 for d in e["gold_ids"]}
        excluded[qid] = {str(d) for d in (e.get("excluded_ids") or []) if d != "N/A"}
    extra = max((len(x) for x in excluded.values()), default=0)
    rankings = bm25_search(passages, queries, k=top_k + extra, backend=backend)
    for r in rankings:  # BRIGHT's rule: excluded documents never count; ranks are renumbered
        kept = [c for c in r.candidates if c.docid not in excluded[r.query.qid]][:top_k]
        for i, c in enumerate(kept):
            c.rank = i + 1
        r.candidates = kept
    return _finish(f"bright-{task}", rankings, qrels, out, source="BRIGHT", dataset=BRIGHT_DATASET,
                   task=task, top_k=top_k, backend=backend, k1=0.9, b=0.4)


# --- one entry point for names ------------------------------------------------------------------


def resolve_any(name: str | os.PathLike, top_k: int = 100) -> Path:
    """A benchmark folder for a path, a local name, or a remote id (downloaded once, then cached)."""
    try:
        return resolve_benchmark(name)
    except KitError as local_error:
        if not is_remote_id(str(name)):
            raise KitError(f"{local_error} Remote ids (with a network) look like bright/biology or "
                           f"beir/trec-covid.") from None
    name = str(name)
    folder = cache_dir("benchmarks", f"{name.replace('/', '__').replace(':', '__')}-top{top_k}")
    try:
        return resolve_benchmark(folder)
    except KitError:
        pass
    print(f"downloading {name} into {folder}", file=sys.stderr)
    task = _bright_task(name)
    if task:
        load_bright(task, top_k, out=folder)
    else:
        load_ir_dataset(name, top_k, out=folder)
    return folder


def load_any(name: str | os.PathLike, top_k: int = 100) -> Benchmark:
    """Like ``data.load_benchmark``, but also accepts ``bright/<task>`` and ir_datasets ids."""
    return load_benchmark(resolve_any(name, top_k), top_k)
