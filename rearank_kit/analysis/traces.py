"""What the reranker wrote: statistics over a rerank run's ``traces.jsonl``.

One trace is one model call on one window (see docs/DEVELOPING.md for the record fields).
``load_traces`` turns a run into a table with derived columns (reasoning text and length, format
flags, which passages the reasoning mentions and what it calls them); the other functions answer
the questions the traces notebook asks:

* how long is the reasoning, and does it discuss every passage? (``length_stats``, ``mention_frac``)
* are the passages the reasoning calls relevant ranked high? (``claim_ranks``, ``claims_summary``)
* are the *judged* relevant passages ranked high? (``judged_ranks``, ``window_ndcg``: nDCG against
  the window's own best order, or with ``ideal="query"`` against the query's, as the reward's S)
* how often is the format right, and how often did the parser repair it? (``format_stats``)
* what changed with training? (``compare_runs``, ``comparison_summary``)
* what did it say on this query? (``render_trace``, ``render_trace_html``)

The relevance-claim classifier (``claims.py``) is a keyword heuristic made for teaching: readable
and often right, never a judgment of its own; its precision and recall on hand-labelled sentences
are measured there (``claims.evaluate_claims``).
"""

from __future__ import annotations

import html
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rearank_kit.analysis.claims import CLAIMS, classify_claims, mentioned_passages
from rearank_kit.analysis.claims import (
    clause_polarity as clause_polarity,  # re-exported: older code imports it from here
)
from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import read_jsonl
from rearank_kit.core.metrics import dcg
from rearank_kit.core.parsing import is_complete, parse_ranking
from rearank_kit.core.records import Qrels

DIAGNOSTIC_FIELDS = (
    "source", "has_think", "has_answer", "think_answer_ok", "answer_only_ok", "answer_format_ok",
    "bare_numbers", "num_valid", "num_duplicate", "num_out_of_range", "num_missing",
)  # fmt: skip

# --- reading ------------------------------------------------------------------------------------


def read_traces(path: str | os.PathLike) -> list[dict]:
    """Trace records of a file (or of ``<folder>/traces.jsonl``); a torn last line is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "traces.jsonl"
    if not path.is_file():
        raise KitError(f"{path}: no such traces file")
    records = []
    for number, rec in read_jsonl(path).numbered():
        for key in ("qid", "docids", "output"):
            if key not in rec:
                raise DataError(f"{path}:{number}: trace has no '{key}' field")
        if not isinstance(rec["docids"], list):
            raise DataError(f"{path}:{number}: field 'docids' must be a list")
        order = rec.get("order")
        if order is not None and sorted(order) != list(range(len(rec["docids"]))):
            raise DataError(f"{path}:{number}: field 'order' is not a permutation of range({len(rec['docids'])})")
        rec["_line"] = number
        records.append(rec)
    return records


def load_traces(path_or_dir: str | os.PathLike | Sequence[Mapping]) -> pd.DataFrame:
    """One row per trace: the record's fields, its diagnostics flattened, and derived columns
    ``n``, ``window_start``/``window_end``, ``think_text`` (with ``think_closed`` False when the
    reply was cut inside ``<think>``: the reasoning so far), ``think_words``, ``repaired``,
    ``complete`` (``parsing.is_complete``), ``mentioned`` (1-based ids the reasoning names),
    ``mention_frac`` and ``claims``."""
    records = path_or_dir if isinstance(path_or_dir, Sequence) and not isinstance(path_or_dir, str) else None
    records = [dict(r) for r in records] if records is not None else read_traces(path_or_dir)
    rows = [_enrich(r) for r in records]
    return pd.DataFrame(rows)


def _enrich(rec: Mapping[str, Any]) -> dict:
    docids = [str(d) for d in rec.get("docids", [])]
    n = len(docids)
    parsed = parse_ranking(rec.get("output", ""), n)
    diag = {**parsed.diagnostics(), **(rec.get("diagnostics") or {})}
    think = diag.get("think_text") or parsed.think_text
    output = rec.get("output") or ""
    think_closed = bool(diag.get("has_think")) or "<think>" not in output
    if not think_closed:  # cut at the token limit: the reasoning so far, up to any <answer>
        think = output.split("<think>", 1)[1].split("<answer>", 1)[0]
    window = rec.get("window") or [0, n]
    order = list(rec["order"]) if rec.get("order") is not None else parsed.order
    mentioned = mentioned_passages(think, n)
    row = {k: v for k, v in rec.items() if k not in ("diagnostics", "_line")}
    row.update(
        qid=str(rec.get("qid")), docids=docids, order=order, n=n,
        window_start=int(window[0]), window_end=int(window[1]),
        think_text=think, think_words=len(think.split()), think_closed=think_closed,
        **{k: diag.get(k) for k in DIAGNOSTIC_FIELDS},
        repaired=bool(diag.get("bare_numbers") or diag.get("num_duplicate") or diag.get("num_out_of_range")
                      or diag.get("num_missing")),
        complete=is_complete({**diag, "num": n}),
        mentioned=mentioned, mention_frac=len(mentioned) / n if n else math.nan,
        claims=classify_claims(think, n),
    )  # fmt: skip
    return row


def _frame(traces) -> pd.DataFrame:
    if isinstance(traces, pd.DataFrame):
        return traces
    return load_traces(traces)


# --- relevance claims (the classifier lives in claims.py) --------------------------------------


def _rank_of(order: Sequence[int]) -> dict[int, int]:
    """1-based passage id -> 1-based rank position in a 0-based order."""
    return {idx + 1: pos + 1 for pos, idx in enumerate(order)}


def _grades(qrels: Qrels | None, qid: str) -> dict[str, int] | None:
    return None if qrels is None else qrels.get(str(qid), {})


def claim_ranks(traces, qrels: Qrels | None = None) -> pd.DataFrame:
    """One row per (trace, mentioned passage): its claim, its rank in the parsed order, its
    normalised rank (0 top, 1 bottom) and, with ``qrels``, its judged grade (None: unjudged)."""
    rows = []
    for t, r in _frame(traces).iterrows():
        ranks, grades = _rank_of(r["order"]), _grades(qrels, r["qid"])
        for pid, claim in r["claims"].items():
            docid = r["docids"][pid - 1]
            rows.append({
                "trace": t, "qid": r["qid"], "passage": pid, "docid": docid, "claim": claim,
                "rank": ranks[pid], "norm_rank": (ranks[pid] - 1) / max(r["n"] - 1, 1),
                "grade": None if grades is None else grades.get(docid),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["trace", "qid", "passage", "docid", "claim", "rank", "norm_rank", "grade"])


def claims_summary(traces, qrels: Qrels | None = None) -> pd.DataFrame:
    """By claim: how many passages, their mean rank and normalised rank (and mean judged grade)."""
    cr = claim_ranks(traces, qrels)
    agg = {"count": ("rank", "size"), "mean_rank": ("rank", "mean"), "mean_norm_rank": ("norm_rank", "mean")}
    if qrels is not None:
        cr["grade"] = pd.to_numeric(cr["grade"], errors="coerce")
        agg["mean_grade"] = ("grade", "mean")
    return cr.groupby("claim").agg(**agg).reindex([c for c in CLAIMS if c in set(cr["claim"])])


# --- judged relevance ---------------------------------------------------------------------------


def window_ndcg(docids: Sequence[str], order: Sequence[int], grades: Mapping[str, int], k: int = 10,
                ideal: str = "window") -> float:
    """nDCG@k of a window's order; NaN when nothing in the window is relevant.

    Two normalisations, named apart because they answer different questions:

    * ``ideal="window"`` (the default, what ``compare_runs`` reports): divided by the best order of
      *this window's* passages. 1.0 means the model ordered what it was shown perfectly, whatever
      the first stage left out: a judgment of the ranking step alone.
    * ``ideal="query"``: divided by the ideal DCG of *all* the query's judged passages, as the
      ``S`` of REARANK's reward (``rewards.set_ndcg``, notebooks 01 and 02) and trec_eval do.
      A window missing the best passages cannot reach 1.
    """
    if ideal not in ("window", "query"):
        raise ValueError(f"ideal must be 'window' or 'query', got {ideal!r}")
    window_grades = [max(grades.get(d, 0), 0) for d in docids]
    if not any(window_grades):
        return math.nan
    pool = window_grades if ideal == "window" else [max(g, 0) for g in grades.values()]
    return dcg([window_grades[i] for i in order], k) / dcg(sorted(pool, reverse=True), k)


def judged_ranks(traces, qrels: Qrels) -> pd.DataFrame:
    """One row per (trace, passage): shown position, rank after reranking, judged grade
    (unjudged passages get grade 0 and ``judged=False``)."""
    rows = []
    for t, r in _frame(traces).iterrows():
        ranks, grades = _rank_of(r["order"]), _grades(qrels, r["qid"])
        for pid, docid in enumerate(r["docids"], start=1):
            rows.append({"trace": t, "qid": r["qid"], "docid": docid, "shown": pid, "rank": ranks[pid],
                         "grade": grades.get(docid, 0), "judged": docid in grades})  # fmt: skip
    return pd.DataFrame(rows, columns=["trace", "qid", "docid", "shown", "rank", "grade", "judged"])


def judged_summary(traces, qrels: Qrels) -> pd.DataFrame:
    """By judged grade: passages, mean position as shown, mean rank after reranking."""
    jr = judged_ranks(traces, qrels)
    return jr.groupby("grade").agg(count=("rank", "size"), mean_shown=("shown", "mean"), mean_rank=("rank", "mean"))


# --- format and length --------------------------------------------------------------------------


def format_stats(traces) -> pd.Series:
    """Shares of traces with each format property, of repaired answers, of replies cut inside
    ``<think>`` and (when the traces record ``finish_reason``) of replies cut at the token limit."""
    df = _frame(traces)
    if df.empty:
        return pd.Series({"traces": 0}, dtype=float)
    share = {k: float(df[k].astype(bool).mean()) for k in ("has_think", "has_answer", "think_answer_ok",
                                                          "answer_format_ok", "bare_numbers", "repaired")}  # fmt: skip
    share["think_cut"] = float((~df["think_closed"].astype(bool)).mean())
    if "finish_reason" in df.columns:
        share["length_limit"] = float((df["finish_reason"] == "length").mean())
    return pd.Series({"traces": float(len(df)), **share, "complete": float(df["complete"].astype(bool).mean()),
                      "mean_missing": float(df["num_missing"].mean())})  # fmt: skip


def reasoning_lengths(traces, tokenizer=None) -> pd.Series:
    """Length of each trace's reasoning: words, or tokens with a tokenizer (``.encode(text)``)."""
    df = _frame(traces)
    if tokenizer is None:
        return df["think_words"].rename("think_words")
    return df["think_text"].map(lambda s: len(tokenizer.encode(s, add_special_tokens=False))).rename("think_tokens")


def length_stats(traces) -> pd.DataFrame:
    """describe() of reasoning words, output tokens and the share of the window mentioned."""
    df = _frame(traces)
    cols = [c for c in ("think_words", "output_tokens", "mention_frac") if c in df.columns]
    return df[cols].astype(float).describe()


# --- before / after -----------------------------------------------------------------------------

_PER_WINDOW = ("think_words", "output_tokens", "mention_frac", "think_answer_ok", "answer_format_ok", "repaired")


def _per_window(df: pd.DataFrame, qrels: Qrels | None) -> pd.DataFrame:
    out = df[["qid", "window_start", "window_end"]].copy()
    out["occurrence"] = out.groupby(["qid", "window_start", "window_end"]).cumcount()
    for col in _PER_WINDOW:
        if col in df.columns:
            out[col] = df[col].astype(float)
    if qrels is not None:
        out["ndcg"] = [window_ndcg(r["docids"], r["order"], _grades(qrels, r["qid"])) for _, r in df.iterrows()]
        out["ndcg_shown"] = [
            window_ndcg(r["docids"], range(r["n"]), _grades(qrels, r["qid"])) for _, r in df.iterrows()
        ]
    out["docids_key"] = df["docids"].map(tuple)
    return out


def compare_runs(traces_a, traces_b, qrels: Qrels | None = None, labels=("before", "after"), by: str = "window"):
    """Side by side, the same windows (qid, window, pass) of two runs, e.g. before/after training.

    Columns ``<metric>_<label>`` and ``<metric>_delta`` (b - a) for reasoning words, output
    tokens, mention share, format flags, repairs and, with ``qrels``, window nDCG@10 of the
    parsed order (``ndcg``) and of the order as shown (``ndcg_shown``); ``same_docids`` tells
    whether both runs saw the same passages. ``by="query"`` averages the windows of each query.
    ``attrs["unmatched"]`` counts windows present in only one run.
    """
    la, lb = labels
    a, b = _per_window(_frame(traces_a), qrels), _per_window(_frame(traces_b), qrels)
    keys = ["qid", "window_start", "window_end", "occurrence"]
    merged = a.merge(b, on=keys, how="inner", suffixes=(f"_{la}", f"_{lb}"))
    merged["same_docids"] = merged[f"docids_key_{la}"] == merged[f"docids_key_{lb}"]
    merged = merged.drop(columns=[f"docids_key_{la}", f"docids_key_{lb}"])
    metrics = [c for c in (*_PER_WINDOW, "ndcg", "ndcg_shown") if f"{c}_{la}" in merged.columns]
    for m in metrics:
        merged[f"{m}_delta"] = merged[f"{m}_{lb}"] - merged[f"{m}_{la}"]
    if by == "query":
        numeric = [c for c in merged.columns if c not in keys]
        merged = merged.groupby("qid")[numeric].mean(numeric_only=True).reset_index()
    elif by != "window":
        raise ValueError(f"by must be 'window' or 'query', got {by!r}")
    merged.attrs.update(labels=tuple(labels), metrics=metrics,
                        unmatched={la: len(a) - len(merged) if by == "window" else None,
                                   lb: len(b) - len(merged) if by == "window" else None})  # fmt: skip
    return merged


def comparison_summary(cmp: pd.DataFrame) -> pd.DataFrame:
    """Means of each metric of a ``compare_runs`` table: one row per metric, columns a, b, delta."""
    la, lb = cmp.attrs.get("labels", ("before", "after"))
    rows = {m: {la: cmp[f"{m}_{la}"].mean(), lb: cmp[f"{m}_{lb}"].mean(), "delta": cmp[f"{m}_delta"].mean()}
            for m in cmp.attrs.get("metrics", [])}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index", columns=[la, lb, "delta"])


# --- one trace, readable ------------------------------------------------------------------------


def _as_record(record) -> dict:
    rec = record.to_dict() if isinstance(record, pd.Series) else dict(record)
    return rec if "think_text" in rec and "claims" in rec else _enrich(rec)


def _rows(rec: dict, qrels: Qrels | None) -> list[dict]:
    grades = _grades(qrels, rec["qid"])
    rows = []
    for pos, idx in enumerate(rec["order"], start=1):
        docid = rec["docids"][idx]
        grade = None if grades is None else (str(grades[docid]) if docid in grades else "-")
        rows.append({"rank": pos, "id": f"[{idx + 1}]", "docid": docid, "grade": grade,
                     "claim": rec["claims"].get(idx + 1, "")})  # fmt: skip
    return rows


def _format_line(rec: dict) -> str:
    flags = [name for name in ("think_answer_ok", "answer_format_ok") if rec.get(name)]
    repairs = [f"{rec[k]} {k[4:].replace('_', ' ')}" for k in ("num_duplicate", "num_out_of_range", "num_missing")
               if rec.get(k)]  # fmt: skip
    if rec.get("bare_numbers"):
        repairs.append("bare numbers")
    return f"format: {', '.join(flags) or 'not well formed'}; repairs: {', '.join(repairs) or 'none'}"


def render_trace(record, qrels: Qrels | None = None, width: int = 100) -> str:
    """A plain-text view of one trace: header, format, reasoning, answer, and the parsed ranking
    with each passage's docid, its judged grade (``-``: unjudged) and what the reasoning called it."""
    rec = _as_record(record)
    head = f"query {rec['qid']}  window [{rec['window_start']}, {rec['window_end']})"
    extra = "  ".join(f"{k} {rec[k]}" for k in ("model", "template") if isinstance(rec.get(k), str) and rec[k])
    think = rec["think_text"].strip()
    body = "\n".join(textwrap.fill(p, width) for p in think.splitlines() if p.strip()) or "(no <think> block)"
    if not rec.get("think_closed", True):
        body += "\n(cut off: no </think>)"
    answer = parse_ranking(rec.get("output", ""), rec["n"]).answer_text.strip()
    lines = [head + (f"  {extra}" if extra else ""), _format_line(rec),
             f"--- reasoning ({rec['think_words']} words, mentions {len(rec['mentioned'])}/{rec['n']} passages) ---",
             body, "--- answer ---", textwrap.shorten(answer, width * 2) or "(empty)", "--- parsed ranking ---"]  # fmt: skip
    header = (
        f"{'rank':>4}  {'id':>5}  {'docid':<16}" + ("  grade" if qrels is not None else "") + "  reasoning called it"
    )
    lines.append(header)
    for row in _rows(rec, qrels):
        grade = f"  {row['grade']:>5}" if qrels is not None else ""
        lines.append(f"{row['rank']:>4}  {row['id']:>5}  {row['docid']:<16}{grade}  {row['claim']}")
    return "\n".join(lines)


def render_trace_html(record, qrels: Qrels | None = None) -> str:
    """The same view as HTML for notebooks (``IPython.display.HTML(render_trace_html(r, qrels))``)."""
    rec = _as_record(record)
    esc = html.escape
    think = rec["think_text"].strip() or "(no <think> block)"
    colours = {"3": "#1a7f37", "2": "#4c9a2a", "1": "#b08800", "0": "#999"}
    cells = []
    for row in _rows(rec, qrels):
        grade = (
            ""
            if qrels is None
            else (f"<td style='color:{colours.get(row['grade'], '#999')};font-weight:bold'>{esc(row['grade'])}</td>")
        )
        cells.append(f"<tr><td>{row['rank']}</td><td>{esc(row['id'])}</td><td><code>{esc(row['docid'])}</code></td>"
                     f"{grade}<td>{esc(row['claim'])}</td></tr>")  # fmt: skip
    grade_head = "<th>grade</th>" if qrels is not None else ""
    return (
        f"<div class='rearank-trace'><p><b>query {esc(str(rec['qid']))}</b> window "
        f"[{rec['window_start']}, {rec['window_end']}) &mdash; {esc(_format_line(rec))}</p>"
        f"<details open><summary>reasoning ({rec['think_words']} words)</summary>"
        f"<pre style='white-space:pre-wrap'>{esc(think)}</pre></details>"
        f"<table><thead><tr><th>rank</th><th>id</th><th>docid</th>{grade_head}<th>reasoning called it</th></tr></thead>"
        f"<tbody>{''.join(cells)}</tbody></table></div>"
    )
