"""A trace lab: read a rerank run's reasoning with the query and passage text beside it, filter it,
search it, and check its claims against the judges.

Traces hold docids only (``traces.jsonl``): MS MARCO's licence forbids redistributing its text,
and a run folder may be shared. The text is joined *at display time* from the benchmark the run
reranked (``with_text``); nothing here writes it anywhere.

* ``lab_table(traces, bench)``: one row per model call with the columns a learner filters on:
  query text, outcome of the window (did the model's order beat the order it was shown?),
  the claims the reasoning makes, reasoning length; ``filter_traces`` applies the filters.
* ``trace_browser(traces, bench)``: the same as an ipywidgets browser (query, outcome, claim,
  length, free-text search), each match rendered by ``render_with_text``.
* ``claim_agreement(traces, qrels)``: what the reasoning called a passage against its judged
  grade: counts, and the share of each claim on each grade.

    from rearank_kit.analysis.trace_lab import lab_table, trace_browser, claim_agreement
    trace_browser("runs/notebooks/06_reasoning_traces/rearank", load_benchmark("sample"))
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import pandas as pd

from rearank_kit.analysis.traces import CLAIMS, load_traces, window_ndcg
from rearank_kit.core.parsing import parse_ranking
from rearank_kit.core.records import Benchmark, Qrels

OUTCOMES = ("better", "same", "worse", "unjudged")
GRADE_COLOURS = {"3": "#1a7f37", "2": "#4c9a2a", "1": "#b08800", "0": "#888", "-": "#888"}


# --- joining text -------------------------------------------------------------------------------


def passage_texts(bench: Benchmark) -> dict[str, str]:
    """docid -> text over every candidate of the benchmark (read from its passages file at load)."""
    return {c.docid: c.text for r in bench.rankings for c in r.candidates}


def with_text(traces, bench: Benchmark) -> pd.DataFrame:
    """The traces (a run folder, a file, records or ``load_traces``' table) with ``query`` (the
    query's text) and ``passages`` (the window's texts, in the order shown) joined from ``bench``;
    a docid the benchmark does not hold gets ``None``. Display only: never write this table out."""
    df = traces if isinstance(traces, pd.DataFrame) else load_traces(traces)
    texts, queries = passage_texts(bench), {q.qid: q.text for q in bench.queries}
    df = df.copy()
    df["query"] = [queries.get(str(q)) for q in df["qid"]]
    df["passages"] = [[texts.get(d) for d in docids] for docids in df["docids"]]
    return df


# --- the lab's table ----------------------------------------------------------------------------


def _outcome(shown: float, new: float) -> str:
    if math.isnan(shown) or math.isnan(new):
        return "unjudged"
    return "better" if new > shown + 1e-9 else "worse" if new < shown - 1e-9 else "same"


def lab_table(traces, bench: Benchmark) -> pd.DataFrame:
    """One row per model call: ``qid``, ``query``, ``window``, ``outcome`` (nDCG@10 of the window
    in the model's order vs as shown, the window's own ideal: ``window_ndcg``), ``ndcg_shown``,
    ``ndcg``, ``claims`` (``{id: claim}``), ``claimed`` (the kinds of claim made), ``think_words``,
    ``output_tokens``, ``output`` and the joined texts (``with_text``)."""
    df = with_text(traces, bench)
    shown, new = [], []
    for _, r in df.iterrows():
        grades = bench.qrels.get(str(r["qid"]), {})
        shown.append(window_ndcg(r["docids"], range(r["n"]), grades))
        new.append(window_ndcg(r["docids"], r["order"], grades))
    df["ndcg_shown"], df["ndcg"] = shown, new
    df["outcome"] = [_outcome(a, b) for a, b in zip(shown, new, strict=True)]
    df["window"] = [f"{a}-{b}" for a, b in zip(df["window_start"], df["window_end"], strict=True)]
    df["claimed"] = [sorted(set(c.values()), key=CLAIMS.index) for c in df["claims"]]
    return df


def filter_traces(table: pd.DataFrame, *, query: str | None = None, outcome: str | None = None,
                  claim: str | None = None, words: tuple[int, int] | None = None,
                  search: str | None = None) -> pd.DataFrame:
    """Rows of ``lab_table`` that match every filter given: ``query`` (a qid), ``outcome``
    (``OUTCOMES``), ``claim`` (the reasoning makes at least one such claim), ``words`` (reasoning
    length range, inclusive) and ``search`` (case-insensitive, in the reply, the query or the
    window's passages)."""
    keep = pd.Series(True, index=table.index)
    if query:
        keep &= table["qid"].astype(str) == str(query)
    if outcome:
        keep &= table["outcome"] == outcome
    if claim:
        keep &= table["claimed"].map(lambda kinds: claim in kinds)
    if words:
        keep &= table["think_words"].between(*words)
    if search:
        needle = re.compile(re.escape(search), re.IGNORECASE)
        haystack = table["output"].fillna("") + " " + table["query"].fillna("") + " " + table["passages"].map(
            lambda ps: " ".join(p or "" for p in ps))  # fmt: skip
        keep &= haystack.map(lambda text: bool(needle.search(text)))
    return table[keep]


# --- one trace with its text --------------------------------------------------------------------


def discussed(row) -> list[int]:
    """0-based window positions of the passages the reasoning names, in window order."""
    return [i - 1 for i in row["mentioned"]]


def _mark_mentions(text: str) -> str:
    """HTML-escaped reasoning with every passage mention in bold."""
    return re.sub(r"(\[\s*\d{1,4}\s*\]|\bpassages?\s*\d{1,4}\b)", r"<b>\1</b>", html.escape(text), flags=re.I)


def render_with_text(row, qrels: Qrels | None = None, chars: int = 300) -> str:
    """One trace as HTML: the query, the reasoning (mentions in bold), then the passages in the
    model's order with id, judged grade, what the reasoning called each one, and its text."""
    grades = None if qrels is None else qrels.get(str(row["qid"]), {})
    answer = parse_ranking(row.get("output") or "", row["n"]).answer_text.strip()
    rows = []
    for rank, idx in enumerate(row["order"], start=1):
        docid = row["docids"][idx]
        grade = "" if grades is None else str(grades[docid]) if docid in grades else "-"
        text = (row["passages"][idx] or "(text not in the benchmark)")[:chars]
        claim = row["claims"].get(idx + 1, "")
        mark = " style='background:#f6f8fa'" if idx + 1 in row["mentioned"] else ""
        rows.append(f"<tr{mark}><td>{rank}</td><td>[{idx + 1}]</td><td><code>{html.escape(docid)}</code></td>"
                    f"<td style='color:{GRADE_COLOURS.get(grade, '#888')};font-weight:bold'>{grade}</td>"
                    f"<td>{html.escape(claim)}</td><td>{html.escape(text)}</td></tr>")  # fmt: skip
    think = row.get("think_text") or ""
    return (
        f"<div class='trace'><p><b>{html.escape(str(row['qid']))}</b>: {html.escape(row.get('query') or '')} "
        f"&mdash; window {row['window_start']}-{row['window_end']}"
        + (f", {row['outcome']} than shown" if row.get("outcome") in ("better", "worse") else "")
        + f"</p><details open><summary>reasoning ({row['think_words']} words)</summary>"
        f"<pre style='white-space:pre-wrap'>{_mark_mentions(think.strip()) or '(no reasoning)'}</pre></details>"
        f"<p>answer: <code>{html.escape(answer[:300])}</code></p>"
        "<table><thead><tr><th>rank</th><th>id</th><th>docid</th><th>grade</th><th>called</th><th>text</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- the browser --------------------------------------------------------------------------------


def trace_browser(traces, bench: Benchmark, max_shown: int = 5):
    """An ipywidgets browser over a run's traces: filters for query, outcome, claim and reasoning
    length, a search box, and the first ``max_shown`` matches rendered with their text."""
    import ipywidgets as w
    from IPython.display import HTML, display

    table = traces if isinstance(traces, pd.DataFrame) and "outcome" in traces.columns else lab_table(traces, bench)
    longest = int(table["think_words"].max()) if len(table) else 0
    query = w.Dropdown(options=[("any query", "")] + [(f"{q}: {t[:50] if t else ''}", q) for q, t in
                       dict(zip(table["qid"], table["query"], strict=False)).items()], description="query")  # fmt: skip
    outcome = w.Dropdown(options=[("any outcome", "")] + [(o, o) for o in OUTCOMES], description="outcome")
    claim = w.Dropdown(options=[("any claim", "")] + [(f"calls a passage {c}", c) for c in CLAIMS], description="claim")
    words = w.IntRangeSlider(value=(0, longest), min=0, max=max(longest, 1), description="words")
    search = w.Text(placeholder="word or phrase", description="search")
    out = w.Output()

    def show(*_):
        hits = filter_traces(table, query=query.value or None, outcome=outcome.value or None,
                             claim=claim.value or None, words=words.value, search=search.value or None)  # fmt: skip
        out.clear_output()
        with out:
            display(HTML(f"<p>{len(hits)} of {len(table)} model calls match"
                         + (f"; the first {max_shown}:" if len(hits) > max_shown else ":") + "</p>"))  # fmt: skip
            for _, row in hits.head(max_shown).iterrows():
                display(HTML(render_with_text(row, bench.qrels)))

    for widget in (query, outcome, claim, words, search):
        widget.observe(show, names="value")
    show()
    return w.VBox([w.HBox([query, outcome]), w.HBox([claim, words]), search, out])


# --- claims against judgments -------------------------------------------------------------------


def claim_agreement(traces, qrels: Qrels) -> pd.DataFrame:
    """Claims (rows: relevant, neutral, irrelevant) by judged grade (columns: unjudged, 0-3) as
    counts, then ``share relevant`` (grade >= 1) and ``share highly relevant`` (grade >= 2) of
    the judged passages with that claim: a faithful, correct reasoner calls grade-3 passages
    relevant and grade-0 ones irrelevant."""
    from rearank_kit.analysis.traces import claim_ranks

    cr = claim_ranks(traces if isinstance(traces, pd.DataFrame) else load_traces(traces), qrels)
    cr["grade"] = cr["grade"].map(lambda g: "unjudged" if g is None or (isinstance(g, float) and math.isnan(g))
                                  else str(int(g)))  # fmt: skip
    order = [c for c in ("relevant", "neutral", "irrelevant")]
    columns = ["unjudged", "0", "1", "2", "3"]
    counts = pd.crosstab(cr["claim"], cr["grade"]).reindex(index=order, columns=columns, fill_value=0)
    judged = counts[["0", "1", "2", "3"]]
    total = judged.sum(axis=1).where(judged.sum(axis=1) > 0)
    counts["share relevant"] = (judged[["1", "2", "3"]].sum(axis=1) / total).round(3)
    counts["share highly relevant"] = (judged[["2", "3"]].sum(axis=1) / total).round(3)
    counts.index.name, counts.columns.name = "claim", "grade"
    return counts


def lab_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Model calls by outcome and by the kinds of claim made (for a first look at a run)."""
    kinds = table["claimed"].map(lambda k: ", ".join(k) or "no claim")
    return pd.crosstab(kinds, table["outcome"]).reindex(columns=[o for o in OUTCOMES if o in set(table["outcome"])])


__all__: Sequence[str] = ("OUTCOMES", "passage_texts", "with_text", "lab_table", "filter_traces", "discussed",
                          "render_with_text", "trace_browser", "claim_agreement", "lab_summary")  # fmt: skip
