"""Benchmarks fetched over the network: ir_datasets ids and the BRIGHT reasoning tasks.

Nothing else in the kit needs a network: ``benchmarks.load_benchmark`` reads local folders only. With a
network, these loaders build the same four-file benchmark from public sources:

    from rearank_kit.data.remote import load_ir_dataset, load_beir, load_bright, load_any
    bench = load_ir_dataset("msmarco-passage/trec-dl-2019/judged", top_k=100)   # pyserini BM25
    bench = load_beir("signal", top_k=100)    # the authors' way: pyserini topics, qrels, index
    bench = load_bright("biology", top_k=100, out="data/bright-biology")       # local BM25
    bench = load_any("beir/covid")            # a folder, a local name, or a remote id

* ``load_ir_dataset``: queries and qrels from ir_datasets; BM25 (k1=0.9, b=0.4) candidates and
  passage texts from a pyserini prebuilt Lucene index (``msmarco-v1-passage``,
  ``msmarco-v2-passage``, ``beir-v1.0.0-<name>.flat``).
* ``load_beir``: the paper's seven BEIR sets (``PAPER_BEIR``; Touché as an extra) as the authors'
  ``run_evaluation.py`` loads them: topics and qrels ``beir-v1.0.0-<name>-test`` through pyserini
  (Signal, News and Robust04 are not in ir_datasets at all), judged topics only, BM25 top k and
  texts from ``beir-v1.0.0-<name>.flat``. Passage text is theirs: ``Title: {title} Content:
  {text}``, whitespace collapsed, the empty-title prefix ``Title: Content: `` removed
  (``beir_passage``). ``beir/<name>`` ids (``beir/signal``, ``beir/signal1m``) go here.
* ``load_bright``: documents and examples of a BRIGHT task from the Hugging Face hub
  (``xlangai/BRIGHT``), BM25 candidates computed here with :mod:`rearank_kit.data.retrieval`; each
  example's ``excluded_ids`` are removed from its candidates. The authors instead reranked
  precomputed pyserini BM25 runs: ``bright.load_bright_run`` reads those files when they are
  in ``$REARANK_KIT_BRIGHT``, and ``resolve_any("bright/<task>")`` prefers them. The local bm25s first stage can differ from theirs (another tokenizer and stemmer), and
  so can every reranked number built on it.

Without a network every loader fails within seconds with a KitError that says what it tried
and how to use local files instead (``source_hint`` says what to download and where to put it).
``resolve_any`` saves what it downloads under ``$REARANK_KIT_CACHE/benchmarks`` and reuses it
later, offline too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from rearank_kit.core.env import CONNECT_TIMEOUT_S, cache_dir, env_flag, hub_host, hub_offline, unreachable
from rearank_kit.core.errors import KitError
from rearank_kit.core.optional import require
from rearank_kit.core.records import Benchmark, Qrels, Query, Ranking
from rearank_kit.data.benchmarks import load_benchmark, resolve_benchmark, save_benchmark
from rearank_kit.data.bright import (
    BRIGHT_RUNS_ENV,
    BRIGHT_RUNS_HINT,
    BRIGHT_TASKS,
    bright_run_files,
    load_bright_run,
    runs_ready,
)

BRIGHT_DATASET = "xlangai/BRIGHT"
# The paper's short name -> BEIR's name (pyserini: topics and qrels beir-v1.0.0-<name>-test,
# index beir-v1.0.0-<name>.flat), as in the authors' run_evaluation.py.
BEIR_SETS = {
    "covid": "trec-covid", "nfcorpus": "nfcorpus", "dbpedia": "dbpedia-entity", "scifact": "scifact",
    "signal": "signal1m", "news": "trec-news", "robust04": "robust04",
    "touche": "webis-touche2020",  # an extra: not among the paper's seven
}  # fmt: skip
PAPER_BEIR = ("covid", "nfcorpus", "dbpedia", "scifact", "signal", "news", "robust04")  # Table 1's order
# pyserini downloads topics and qrels from GitHub, prebuilt indexes from Waterloo or the hub.
PYSERINI_HOSTS = (("raw.githubusercontent.com",), ("rgw.cs.uwaterloo.ca", "huggingface.co"))
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


def beir_set(name: str) -> str | None:
    """The short name of a ``BEIR_SETS`` id: ``beir/signal``, ``beir:signal1m`` -> ``signal``."""
    m = re.fullmatch(r"beir[/:]([a-z0-9-]+)", name.strip().lower())
    if not m:
        return None
    key = m.group(1)
    return key if key in BEIR_SETS else next((k for k, v in BEIR_SETS.items() if v == key), None)


def is_ir_dataset_id(name: str) -> bool:
    """Whether ``name`` is a dataset id that ir_datasets knows (no network needed to tell)."""
    if "/" not in name:
        return False
    try:
        return name in require("ir_datasets").registry
    except KitError:
        return False


def is_remote_id(name: str | os.PathLike) -> bool:
    """``bright/<task>``, ``beir/<set>`` or an ir_datasets id (e.g. ``beir/scifact/test``), and
    not a local folder."""
    name = str(name)
    if Path(name).exists():
        return False
    return _bright_task(name) is not None or beir_set(name) is not None or is_ir_dataset_id(name)


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
        from rearank_kit.core.manifest import write_manifest

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
    # MS MARCO v2 passages (msmarco-v2-passage: DL21-23) store the text in "passage"; the authors'
    # rank_gpt.py reads that field, after a title and before "contents".
    if "title" not in rec and isinstance(rec.get("passage"), str):
        return rec["passage"]
    if isinstance(rec.get("contents"), str):
        return rec["contents"]
    if "title" in rec:  # BEIR, built as the authors build it (an empty title included)
        return beir_passage(rec.get("title"), rec.get("text"))
    return " ".join(str(rec[f]) for f in ("title", "text") if rec.get(f)).strip()


def beir_passage(title: str | None, text: str | None) -> str:
    """A BEIR document as the authors' ``rank_gpt.py`` shows it to the model.

    ``Title: {title} Content: {text}``, whitespace runs collapsed to one space, then every
    ``Title: Content: `` removed: the prefix an empty title leaves (their prompt builders remove
    it with the same ``str.replace``, so a passage is the same whether the kit or a template
    removes it).
    """
    joined = " ".join(f"Title: {title or ''} Content: {text or ''}".split())
    return joined.replace("Title: Content: ", "").strip()


def load_ir_dataset(dataset_id: str, top_k: int = 100, out: str | os.PathLike | None = None) -> Benchmark:
    """Queries and qrels from ir_datasets, BM25 top ``top_k`` and texts from a pyserini prebuilt index."""
    ir_datasets = require("ir_datasets")
    if dataset_id not in ir_datasets.registry:
        raise KitError(f"{dataset_id!r} is not an ir_datasets id (see https://ir-datasets.com). {LOCAL_HINT}")
    index_name = prebuilt_index_for(dataset_id)
    what = f"{dataset_id} (ir_datasets) and the pyserini index {index_name}"
    require_network(what, ("huggingface.co", "rgw.cs.uwaterloo.ca"))
    from tqdm.auto import tqdm

    from rearank_kit.data.retrieval import K1, B

    try:
        ds = ir_datasets.load(dataset_id)
        queries = [Query(str(q.query_id), q.default_text() if hasattr(q, "default_text") else q.text)
                   for q in ds.queries_iter()]
        qrels: Qrels = {}
        for qr in ds.qrels_iter():
            qrels.setdefault(str(qr.query_id), {})[str(qr.doc_id)] = int(qr.relevance)
    except KitError:
        raise
    except Exception as exc:
        raise _download_failed(what, exc) from exc
    searcher = _bm25_searcher(index_name, what)

    rankings = [_bm25_ranking(searcher, q, top_k) for q in tqdm(queries, desc=f"BM25 {index_name}", unit="query")]
    name = dataset_id.replace("/", "-")
    return _finish(name, rankings, qrels, out, source="ir_datasets", dataset_id=dataset_id,
                   index=index_name, top_k=top_k, k1=K1, b=B)


def _bm25_searcher(index_name: str, what: str):
    """pyserini's prebuilt ``index_name`` (downloaded once) with the kit's BM25 parameters."""
    from rearank_kit.data.retrieval import K1, B, import_pyserini

    try:
        searcher = import_pyserini().LuceneSearcher.from_prebuilt_index(index_name)
    except KitError:
        raise
    except Exception as exc:
        raise _download_failed(what, exc) from exc
    if searcher is None:
        raise _download_failed(what, RuntimeError(f"pyserini could not open {index_name}"))
    searcher.set_bm25(K1, B)
    return searcher


def _bm25_ranking(searcher, query: Query, top_k: int) -> Ranking:
    """The BM25 top ``top_k`` of ``query`` from a pyserini searcher, with the passages' texts."""
    from rearank_kit.core.records import Candidate

    hits = searcher.search(query.text, k=top_k)
    return Ranking(query, [Candidate(h.docid, _doc_text(searcher.doc(h.docid).raw()), i + 1, float(h.score))
                           for i, h in enumerate(hits)])  # fmt: skip


def load_beir(name: str, top_k: int = 100, out: str | os.PathLike | None = None) -> Benchmark:
    """A ``BEIR_SETS`` set (``signal``, ``beir/signal1m``, ...) loaded as the authors load it:
    pyserini's topics and qrels, judged topics only, BM25 top ``top_k`` from the flat index."""
    short = name if name in BEIR_SETS else beir_set(name)
    if short is None:
        raise KitError(f"unknown BEIR set {name!r}; known: {', '.join(BEIR_SETS)} (or beir/<name>)")
    topics_name, index_name = f"beir-v1.0.0-{BEIR_SETS[short]}-test", f"beir-v1.0.0-{BEIR_SETS[short]}.flat"
    what = f"BEIR {short} through pyserini (topics and qrels {topics_name}, index {index_name})"
    for hosts in PYSERINI_HOSTS:
        require_network(what, hosts)
    from tqdm.auto import tqdm

    from rearank_kit.data.retrieval import K1, B, import_pyserini

    try:
        search = import_pyserini("pyserini.search")
        topics = search.get_topics(topics_name)
        qrels: Qrels = {}
        for qid, docs in search.get_qrels(topics_name).items():  # ids come back as int when numeric
            qrels[str(qid)] = {str(d): int(g) for d, g in docs.items()}
    except KitError:
        raise
    except Exception as exc:
        raise _download_failed(what, exc) from exc
    searcher = _bm25_searcher(index_name, what)
    rankings = []
    for qid, topic in tqdm(topics.items(), desc=f"BM25 {index_name}", unit="query"):
        if str(qid) not in qrels:  # the authors retrieve for judged topics only
            continue
        rankings.append(_bm25_ranking(searcher, Query(str(qid), topic["title"]), top_k))
    return _finish(f"beir-{short}", rankings, qrels, out, source="pyserini", beir=BEIR_SETS[short],
                   topics=topics_name, index=index_name, top_k=top_k, k1=K1, b=B,
                   passage_format="Title: {title} Content: {text}, empty-title prefix removed")  # fmt: skip


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
    from rearank_kit.data.retrieval import bm25_search

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


def cache_folder(name: str, top_k: int = 100) -> Path:
    """Where ``resolve_any`` keeps the benchmark built for a remote id (``beir/covid`` and
    ``beir/trec-covid`` share one; BRIGHT from the authors' run files has its own)."""
    short, task = beir_set(name), _bright_task(name)
    if short:
        key = f"beir__{short}"
    elif task and runs_ready(task):
        key = f"bright__{task}__authors-bm25"
    elif task:
        key = f"bright__{task}"
    else:
        key = name.replace("/", "__").replace(":", "__")
    return cache_dir("benchmarks", f"{key}-top{top_k}")


def hosts_for(name: str) -> tuple[tuple[str, ...], ...]:
    """The hosts ``resolve_any`` needs for a remote id: one of each group must answer (none for
    BRIGHT from the authors' run files or from the Hugging Face cache under HF_HUB_OFFLINE)."""
    task = _bright_task(name)
    if task:
        return () if runs_ready(task) or hub_offline() else ((hub_host(),),)
    if beir_set(name):
        return PYSERINI_HOSTS
    return (("huggingface.co", "rgw.cs.uwaterloo.ca"),)


def source_hint(name: str, top_k: int = 100, local_name: str | None = None) -> str:
    """What to download for a remote id, and where to put it so that the kit finds it offline."""
    folder = cache_folder(name, top_k)
    local = f", or as {local_name} into a folder of REARANK_KIT_DATA" if local_name else ""
    build = (f"`rearank-kit eval --data {name}`" if top_k == 100 else
             f"`python -c \"from rearank_kit.data.remote import resolve_any; resolve_any('{name}', top_k={top_k})\"`")
    short, task = beir_set(name), _bright_task(name)
    if short:
        beir = BEIR_SETS[short]
        what = (f"pyserini's topics and qrels beir-v1.0.0-{beir}-test (from github.com/castorini/anserini-tools, "
                f"topics-and-qrels/) and its prebuilt index beir-v1.0.0-{beir}.flat")
    elif task:
        files = bright_run_files(task)
        root = files["run"].parent.parent
        return (f"needs the authors' BM25 run files in {root} (${BRIGHT_RUNS_ENV}): "
                f"{', '.join(str(p.relative_to(root)) for p in files.values())}; or, with a network, "
                f"{build} builds $REARANK_KIT_CACHE/benchmarks/{folder.name} from the hub's "
                f"BRIGHT with a local bm25s first stage (which can differ from the paper's): copy it to {folder} "
                f"here{local}.")  # fmt: skip
    else:
        what = f"{name} from ir_datasets and its pyserini prebuilt index {prebuilt_index_for(name)}"
    return (f"needs {what}. With a network, {build} builds the folder "
            f"$REARANK_KIT_CACHE/benchmarks/{folder.name}: copy it to {folder} here{local}.")  # fmt: skip


def resolve_any(name: str | os.PathLike, top_k: int = 100) -> Path:
    """A benchmark folder for a path, a local name, or a remote id (downloaded once, then cached)."""
    try:
        return resolve_benchmark(name)
    except KitError as local_error:
        if not is_remote_id(str(name)):
            raise KitError(f"{local_error} Remote ids (with a network) look like bright/biology, "
                           f"beir/signal or beir/scifact/test.") from None
    name = str(name)
    folder = cache_folder(name, top_k)
    try:
        return resolve_benchmark(folder)
    except KitError:
        pass
    task = _bright_task(name)
    from_runs = task is not None and runs_ready(task)
    print(f"{'building' if from_runs else 'downloading'} {name} into {folder}", file=sys.stderr)
    if task and not from_runs:
        print(f"note: BRIGHT {task} gets a local bm25s first stage, which can differ from the pyserini BM25 "
              f"runs the paper reranked; {BRIGHT_RUNS_HINT}", file=sys.stderr)  # fmt: skip
    from rearank_kit.core.files import publish_folder, staged_folder

    with staged_folder(folder) as tmp:  # a folder is there whole or not at all
        if from_runs:
            bench = load_bright_run(task, top_k)
            _finish(bench.name, bench.rankings, bench.qrels, tmp, source="the authors' BM25 run", task=task,
                    top_k=top_k, files={k: str(v) for k, v in bright_run_files(task).items()})  # fmt: skip
        elif task:
            load_bright(task, top_k, out=tmp)
        elif beir_set(name):
            load_beir(name, top_k, out=tmp)
        else:
            load_ir_dataset(name, top_k, out=tmp)
        publish_folder(tmp, folder)
    return folder


def load_any(name: str | os.PathLike, top_k: int = 100) -> Benchmark:
    """Like ``benchmarks.load_benchmark``, but also accepts ``bright/<task>`` and ir_datasets ids."""
    return load_benchmark(resolve_any(name, top_k), top_k)
