"""A rerank run as one self-contained HTML page: metrics, per-query table, every trace with the
passages it discussed, and filters and search in plain JavaScript. No kernel, no server.

    rearank-kit report runs/dl19-smol                      # -> runs/dl19-smol-report.html
    rearank-kit report runs/dl19-smol --out class/dl19.html --data dl19

The page is written *beside* the run folder, never into it (``rank/run.py`` is the only writer of
a run folder). Traces hold docids only; the query and passage text is joined from the benchmark
the run reranked (``--data``, else the manifest's ``data_path`` or ``data``) when the page is
written, and the page says so and from where. ``--no-text`` leaves the text out: passages of
licensed collections such as MS MARCO may not be redistributed, so share a page with text only
where the licence allows it.

A run that has not finished (its manifest says ``running``: in progress, or interrupted) gets a
page of what it has done so far, with a warning on stderr and on the page. Traces are checked
record by record before the page is built: a hand-edited or damaged record is a DataError naming
``traces.jsonl:LINE`` and the field, never a bare Python exception.

Filters live in the URL's hash (``#qid=s01&outcome=worse&claim=relevant&search=sky&min=0&max=50``):
a filtered view is a link, and the browser test drives them that way (``tests/test_report.py``).
"""

from __future__ import annotations

import html
import os
import sys
import time
from pathlib import Path

import pandas as pd

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import read_json, read_jsonl

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#1f2328}
table{border-collapse:collapse;font-size:0.9em}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}
section.trace{border:1px solid #ddd;border-radius:6px;padding:0.5em 1em;margin:0.8em 0}input[type=number]{width:5em}
.trace pre{white-space:pre-wrap;background:#f6f8fa;padding:0.5em}.note{color:#57606a;font-size:0.9em}
#filters{position:sticky;top:0;background:#fff;padding:0.5em 0;border-bottom:1px solid #ddd}
.better{color:#1a7f37}.worse{color:#cf222e}.g3{color:#1a7f37;font-weight:bold}.g2{color:#4c9a2a;font-weight:bold}
.g1{color:#b08800;font-weight:bold}
"""

# Filters: the URL hash is the state. Controls write it; the page reads it on load and on change.
_JS = """
const controls = ["qid", "outcome", "claim", "min", "max", "search"];
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const c of controls) { document.getElementById(c).value = p.get(c) || ""; }
}
function apply() {
  const v = Object.fromEntries(controls.map(c => [c, document.getElementById(c).value]));
  const needle = v.search.toLowerCase();
  let shown = 0;
  for (const t of document.querySelectorAll("section.trace")) {
    const words = Number(t.dataset.words);
    const ok = (!v.qid || t.dataset.qid === v.qid) && (!v.outcome || t.dataset.outcome === v.outcome)
      && (!v.claim || t.dataset.claims.split(" ").includes(v.claim))
      && (v.min === "" || words >= Number(v.min)) && (v.max === "" || words <= Number(v.max))
      && (!needle || t.textContent.toLowerCase().includes(needle));
    t.hidden = !ok; if (ok) shown++;
  }
  document.getElementById("count").textContent = shown;
}
function writeHash() {
  const p = new URLSearchParams();
  for (const c of controls) { const x = document.getElementById(c).value; if (x) p.set(c, x); }
  history.replaceState(null, "", "#" + p.toString()); apply();
}
for (const c of controls) { document.getElementById(c).addEventListener("input", writeHash); }
window.addEventListener("hashchange", () => { readHash(); apply(); });
readHash(); apply();
"""


def _benchmark(run_dir: Path, manifest: dict, data: str | None):
    from rearank_kit.data.benchmarks import load_benchmark

    top_k = (manifest.get("config") or {}).get("top_k")
    candidates = [data] if data else [manifest.get("data_path"), manifest.get("data")]
    for source in [c for c in candidates if c]:
        if data or Path(str(source)).expanduser().is_dir() or source == manifest.get("data"):
            try:
                return load_benchmark(source, top_k=top_k), str(source)
            except KitError:
                if data:
                    raise
    raise KitError(f"{run_dir}: cannot find the benchmark it reranked (manifest data {manifest.get('data')!r}, "
                   f"path {manifest.get('data_path')!r}); name it with --data NAME_OR_FOLDER")


def _id(value) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _trace_problem(record: dict) -> str | None:
    """What is wrong with one trace record, for a page to be built from it (None: nothing)."""
    if not _id(record.get("qid")):
        return "field 'qid' is missing or not a string"
    docids = record.get("docids")
    if not isinstance(docids, list) or not all(_id(d) for d in docids):
        return "field 'docids' must be a list of docids"
    if not isinstance(record.get("output", ""), str | None):
        return "field 'output' must be text"
    window = record.get("window")
    if window is not None and not (isinstance(window, list) and len(window) == 2 and all(
            isinstance(w, int) and not isinstance(w, bool) for w in window) and 0 <= window[0] <= window[1]):  # fmt: skip
        return f"field 'window' must be [start, end] with 0 <= start <= end, got {window!r}"
    order = record.get("order")
    if order is not None and (not isinstance(order, list) or sorted(order) != list(range(len(docids)))):
        return f"field 'order' must be a permutation of 0..{len(docids) - 1} (one index per docid), got {order!r}"
    if not isinstance(record.get("diagnostics") or {}, dict):
        return "field 'diagnostics' must be an object"
    return None


def check_traces(path: Path) -> int:
    """The number of trace records in ``path``, each checked (``_trace_problem``); a DataError
    naming ``path:line`` for the first bad one (a torn last line, left by an interrupt, is skipped)."""
    traces = read_jsonl(path)
    for number, record in traces.numbered():
        problem = _trace_problem(record)
        if problem is not None:
            raise DataError(f"{path}:{number}: {problem}; traces.jsonl is written by `rearank-kit rerank` (was it "
                            "edited by hand?)")  # fmt: skip
    return len(traces)


def _per_query(bench, rankings) -> pd.DataFrame:
    from rearank_kit.core.metrics import ndcg_at_k

    rows = []
    for r in rankings:
        judged = bench.qrels.get(r.query.qid)
        first = next((x for x in bench.rankings if x.query.qid == r.query.qid), None)
        if not judged or first is None:
            continue
        before, after = ndcg_at_k(first.docids, judged), ndcg_at_k(r.docids, judged)
        rows.append({"qid": r.query.qid, "query": r.query.text, "first_stage": before, "reranked": after,
                     "delta": after - before})  # fmt: skip
    return pd.DataFrame(rows, columns=["qid", "query", "first_stage", "reranked", "delta"])


def build_report(run_dir: str | os.PathLike, data: str | None = None, text: bool = True) -> str:
    """The HTML page of a rerank run folder (``manifest.json``, ``traces.jsonl``, ``rankings.jsonl``
    and, when present, ``metrics.json``)."""
    from rearank_kit.analysis.trace_lab import OUTCOMES, lab_table, render_with_text
    from rearank_kit.core.records import read_rankings_jsonl

    run_dir = Path(run_dir)
    if not (run_dir / "traces.jsonl").is_file():
        raise KitError(f"{run_dir}: no traces.jsonl here; is this a rerank run folder (rearank-kit rerank --out)?")
    manifest = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
    if not isinstance(manifest, dict):
        raise DataError(f"{run_dir / 'manifest.json'}: expected a JSON object")
    unfinished = unfinished_note(run_dir, manifest)
    if not check_traces(run_dir / "traces.jsonl"):
        status = f" ({run_dir / 'manifest.json'} says status {manifest['status']!r})" if unfinished else ""
        raise KitError(f"{run_dir / 'traces.jsonl'}: no model call recorded yet, nothing to show{status}; run the "
                       "same rerank command again to go on")  # fmt: skip
    bench, source = _benchmark(run_dir, manifest, data)
    try:
        table = lab_table(run_dir, bench)
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a record this check does not know
        raise DataError(f"{run_dir / 'traces.jsonl'}: a trace cannot be read ({type(exc).__name__}: {exc}); "
                        "was it edited by hand?") from None
    if not text:
        table["query"] = None
        table["passages"] = [[None] * len(p) for p in table["passages"]]
    rankings = read_rankings_jsonl(run_dir / "rankings.jsonl") if (run_dir / "rankings.jsonl").is_file() else []
    per_query = _per_query(bench, rankings)
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    esc = html.escape

    head = [("run", str(run_dir)), ("model", manifest.get("model")), ("template", manifest.get("template")),
            ("data", f"{manifest.get('data')} ({source})"), ("model calls", len(table)),
            ("complete answers", int(table["complete"].sum()) if len(table) else 0)]  # fmt: skip
    info = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in head)
    scores = ""
    if metrics.get("first_stage"):
        measures = list(metrics["first_stage"])
        scores = "<table><tr><th></th>" + "".join(f"<th>{esc(m)}</th>" for m in measures) + "</tr>" + "".join(
            f"<tr><th>{name}</th>" + "".join(f"<td>{(metrics.get(key) or {}).get(m, float('nan')):.4f}</td>"
                                             for m in measures) + "</tr>"
            for name, key in (("first stage", "first_stage"), ("reranked", "reranked"), ("delta", "delta"),
                              ("paired t-test p", "paired_ttest_p")))  + "</table>"  # fmt: skip
    elif len(per_query):
        scores = (f"<p>nDCG@10 over {len(per_query)} judged queries: first stage {per_query['first_stage'].mean():.4f}, "
                  f"reranked {per_query['reranked'].mean():.4f} (computed here from rankings.jsonl)</p>")  # fmt: skip
    query_rows = "".join(
        f"<tr><td><a href='#qid={esc(r.qid)}'>{esc(r.qid)}</a></td><td>{esc(r.query if text else '')}</td>"
        f"<td>{r.first_stage:.4f}</td><td>{r.reranked:.4f}</td><td class='{'better' if r.delta > 0 else 'worse' if r.delta < 0 else ''}'>"
        f"{r.delta:+.4f}</td></tr>" for r in per_query.itertuples())  # fmt: skip
    sections = []
    for _, row in table.iterrows():
        claims = " ".join(sorted(set(row["claims"].values())))
        sections.append(f"<section class='trace' data-qid='{esc(str(row['qid']))}' data-outcome='{row['outcome']}' "
                        f"data-claims='{claims}' data-words='{int(row['think_words'])}'>"
                        + render_with_text(row, bench.qrels) + "</section>")  # fmt: skip
    qids = sorted(set(table["qid"].astype(str)))
    options = lambda values: "<option value=''>any</option>" + "".join(  # noqa: E731
        f"<option value='{esc(v)}'>{esc(v)}</option>" for v in values)
    joined = (f"Query and passage text was joined from the benchmark <code>{esc(source)}</code> when this page was "
              f"written ({time.strftime('%Y-%m-%d %H:%M')}); the run's traces hold docids only."
              if text else "Written with --no-text: the page holds docids only, no query or passage text.")  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rearank-kit report: {esc(run_dir.name)}</title>
<style>{_CSS}</style></head><body>
<h1>Rerank run <code>{esc(run_dir.name)}</code></h1>
{f'<p class="worse" id="unfinished">{esc(unfinished)}</p>' if unfinished else ''}
<p class="note" id="provenance">{joined}</p>
<table>{info}</table>
<h2>Scores</h2>{scores or '<p>No judgments: no scores.</p>'}
<h2>Per query</h2><table><tr><th>qid</th><th>query</th><th>first stage</th><th>reranked</th><th>delta</th></tr>
{query_rows}</table>
<h2>Traces</h2>
<div id="filters">query <select id="qid">{options(qids)}</select>
outcome <select id="outcome">{options(OUTCOMES)}</select>
claim <select id="claim">{options(("relevant", "irrelevant", "neutral"))}</select>
reasoning words <input id="min" type="number" min="0" size="4"> to <input id="max" type="number" min="0" size="4">
search <input id="search" type="search" placeholder="word or phrase">
<span class="note"><span id="count">{len(table)}</span> of {len(table)} model calls shown</span></div>
{''.join(sections)}
<script>{_JS}</script>
</body></html>
"""


def unfinished_note(run_dir: Path, manifest: dict) -> str | None:
    """A warning when the run's manifest does not say ``done`` (None when it does, or has no status)."""
    status = manifest.get("status")
    if status is None or status == "done":
        return None
    return (f"this run has not finished: {run_dir / 'manifest.json'} says status {status!r} (still running, or "
            "interrupted); the page shows only what was done so far. Run the same rerank command again to finish it")


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, data: str | None = None,
                 text: bool = True) -> Path:
    """Write the page (default: ``<run folder>-report.html`` beside the run folder) and return its path.
    An unfinished run is reported with a warning on stderr (``unfinished_note``)."""
    from rearank_kit.core.files import atomic_write_text, check_writable

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir.parent / f"{run_dir.name}-report.html"
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise KitError(f"{out}: write the report outside the run folder {run_dir} (only `rerank` writes inside it)")
    if out.is_dir():
        raise KitError(f"{out}: is a folder; --out names the page to write (e.g. {out / 'report.html'})")
    check_writable(out.parent, label="--out ")
    page = build_report(run_dir, data=data, text=text)
    manifest = read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").is_file() else {}
    note = unfinished_note(run_dir, manifest) if isinstance(manifest, dict) else None
    if note:
        print(f"warning: {note}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
