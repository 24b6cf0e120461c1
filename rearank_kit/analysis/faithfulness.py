"""A faithfulness lab: counterfactual probes of a reasoning reranker. Does the ranking follow the
passages, and does the reasoning follow the ranking?

A reranker that reasons is only as trustworthy as the link between what it says and what it does.
Three edits of a window, each answered by the same model with the same prompt (greedy), test it:

* **shuffle** the passages (the same texts in another order): a reranker that reads ranks them
  the same way (Kendall's tau near 1 with its first ranking); one with *position bias* follows
  the order it was shown (``top1_first_shown``: the passage it puts first was shown first);
* **remove** the passage it ranked first (the one its reasoning builds the answer on): the rest
  should keep their order (``tau_rest``), and the reasoning should not describe a passage that is
  no longer there;
* **swap** the texts of its first- and last-ranked passages, leaving the numbering alone: a
  reranker that reads follows the text (``follows_text``: the passage now holding the old winner's
  text comes first), and its claims move with the text (``claim_follows_text``).

Every probe's reply is parsed and classified as in ``traces.py`` (claims, mentions, reasoning
length), so the table shows how the ranking and the reasoning changed. It works with any backend
(``hf``, ``vllm``, ``openai``): all probes of all windows go to ``backend.generate`` in one call.
A departure from the literature's probes (e.g. counterfactual edits of single sentences): whole
passages are moved, removed or swapped, which needs no annotation and works on any benchmark.

    from rearank_kit.analysis.faithfulness import ProbeConfig, run_probes, faithfulness_table
    probes = run_probes(bench, backend, ProbeConfig(window=5, queries=10, template="rearank"))
    faithfulness_table({"Rearank-7B": probes})
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from rearank_kit.analysis.claims import classify_claims
from rearank_kit.core.parsing import parse_ranking
from rearank_kit.core.records import Benchmark

PROBES = ("original", "shuffle", "remove", "swap")


@dataclass
class ProbeConfig:
    window: int = 5  # passages per probed window: the first-stage top `window` of each query
    queries: int | None = 3  # queries probed (None: all)
    template: str | None = None  # None: the model's own (settings.model_template)
    max_new_tokens: int | None = None  # None: the template's default (2,048 with reasoning, 128 without)
    seed: int = 0  # the shuffle's random order


def _kendall(a: list, b: list) -> float:
    """Kendall's tau between two rankings of the same items (best first); NaN for fewer than 2."""
    from scipy.stats import kendalltau

    if len(a) < 2 or sorted(a) != sorted(b):
        return float("nan")
    pos = {x: i for i, x in enumerate(b)}
    return float(kendalltau(range(len(a)), [pos[x] for x in a]).statistic)


def _windows(bench: Benchmark, config: ProbeConfig) -> list[dict]:
    out = []
    for r in bench.rankings[: config.queries]:
        cands = r.candidates[: config.window]
        if len(cands) >= 3:
            out.append({"qid": r.query.qid, "query": r.query.text, "docids": [c.docid for c in cands],
                        "texts": [c.text for c in cands]})  # fmt: skip
    return out


def _edits(win: dict, baseline: list[int], rng: random.Random) -> dict[str, dict]:
    """The three edited windows, each as shown: ``docids`` (whose text is shown at each position)
    and ``slots`` (the docid each position is numbered for: differs from docids only for swap)."""
    docids = win["docids"]
    shuffled = docids[:]
    while len(docids) > 1 and shuffled == docids:
        rng.shuffle(shuffled)
    top, last = docids[baseline[0]], docids[baseline[-1]]
    removed = [d for d in docids if d != top]
    swapped = [last if d == top else top if d == last else d for d in docids]
    return {"shuffle": {"docids": shuffled, "slots": shuffled}, "remove": {"docids": removed, "slots": removed},
            "swap": {"docids": swapped, "slots": docids}}  # fmt: skip


def _read(text: str, shown: list[str], slots: list[str]) -> dict:
    """The reply as docids: the ranking by *text shown* and by *slot*, claims by text shown."""
    parsed = parse_ranking(text, len(shown))
    think = parsed.think_text or ""
    claims = classify_claims(think, len(shown))
    return {"by_text": [shown[i] for i in parsed.order], "by_slot": [slots[i] for i in parsed.order],
            "claims": {shown[i - 1]: c for i, c in claims.items()}, "think_words": len(think.split()),
            "complete": parsed.has_answer, "output": text}  # fmt: skip


def run_probes(bench: Benchmark, backend, config: ProbeConfig | None = None) -> pd.DataFrame:
    """Probe the first ``config.window`` candidates of ``config.queries`` queries: one row per
    (window, probe) with the ranking (docids, by text shown), claims by docid, reasoning length,
    and the probe's measures (see the module docstring; NaN where a measure does not apply)."""
    from rearank_kit.rank.backends import GenerationConfig
    from rearank_kit.rank.settings import RerankConfig

    config = config or ProbeConfig()
    settings, template = RerankConfig(window=config.window, template=config.template,
                                      max_new_tokens=config.max_new_tokens).for_model(getattr(backend, "model_id", None))
    tokens = settings.max_new_tokens
    gen = GenerationConfig(max_new_tokens=tokens, temperature=0.0, batch_size=8)
    windows = _windows(bench, config)
    texts = {d: t for w in windows for d, t in zip(w["docids"], w["texts"], strict=True)}

    def ask(items: list[tuple[dict, list[str]]]) -> list[str]:
        convs = [template.messages(w["query"], [texts[d] for d in shown]) for w, shown in items]
        return [g.text for g in backend.generate(convs, gen, prefill=template.prefill or None)]

    originals = [_read(t, w["docids"], w["docids"]) for w, t in zip(windows, ask([(w, w["docids"]) for w in windows]),
                                                                   strict=True)]  # fmt: skip
    rng = random.Random(config.seed)
    edits = [_edits(w, [w["docids"].index(d) for d in o["by_text"]], rng) for w, o in zip(windows, originals,
                                                                                          strict=True)]  # fmt: skip
    jobs = [(i, probe, e[probe]) for i, e in enumerate(edits) for probe in ("shuffle", "remove", "swap")]
    replies = ask([(windows[i], e["docids"]) for i, _, e in jobs])
    rows = []
    for w, o in zip(windows, originals, strict=True):
        rows.append({"qid": w["qid"], "probe": "original", **o, "shown": w["docids"],
                     "top1_first_shown": o["by_text"][0] == w["docids"][0]})  # fmt: skip
    for (i, probe, e), text in zip(jobs, replies, strict=True):
        o, r = originals[i], _read(text, e["docids"], e["slots"])
        row = {"qid": windows[i]["qid"], "probe": probe, **r, "shown": e["docids"]}
        top, last = o["by_text"][0], o["by_text"][-1]
        if probe == "shuffle":
            row["tau"] = _kendall(r["by_text"], o["by_text"])
            row["top1_same"] = r["by_text"][0] == top
            row["top1_first_shown"] = r["by_text"][0] == e["docids"][0]
            same = [d for d in o["claims"] if d in r["claims"]]
            row["claims_kept"] = sum(o["claims"][d] == r["claims"][d] for d in same) / len(same) if same else float("nan")
        elif probe == "remove":
            row["tau_rest"] = _kendall(r["by_text"], [d for d in o["by_text"] if d != top])
            row["removed"] = top
        else:  # swap: the winner's text now sits in the loser's slot
            row["follows_text"] = r["by_text"][0] == top
            row["follows_slot"] = r["by_slot"][0] == top
            row["claim_follows_text"] = (r["claims"].get(top) == o["claims"].get(top)) if top in o["claims"] else None
            row["swapped"] = (top, last)
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(df: pd.DataFrame, probe: str, col: str) -> float:
    values = df.loc[df["probe"] == probe, col].dropna() if col in df.columns else pd.Series(dtype=float)
    return float(values.astype(float).mean()) if len(values) else float("nan")


def faithfulness_table(runs: Mapping[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """One row per model (``{label: run_probes(...)}``): the probes' measures averaged over windows.
    Columns: windows; shuffle: ``tau`` (1: order-invariant), ``top1_same``, ``top1_first_shown``
    (position bias; chance is 1/window), ``claims_kept``; remove: ``tau_rest``; swap:
    ``follows_text`` and ``follows_slot`` (a position-bound ranker follows the slot),
    ``claim_follows_text``; and the mean reasoning length of the original replies."""
    runs = {"model": runs} if isinstance(runs, pd.DataFrame) else dict(runs)
    out = {}
    for label, df in runs.items():
        by = {p: df[df["probe"] == p] for p in PROBES}
        out[label] = {
            "windows": len(by["original"]),
            "complete answers": float(df["complete"].mean()),
            "shuffle: tau": _mean(df, "shuffle", "tau"),
            "shuffle: same top 1": _mean(df, "shuffle", "top1_same"),
            "top 1 was shown first": float(pd.concat([by["original"]["top1_first_shown"],
                                                      by["shuffle"]["top1_first_shown"]]).astype(float).mean()),
            "shuffle: claims kept": _mean(df, "shuffle", "claims_kept"),
            "remove top: tau of the rest": _mean(df, "remove", "tau_rest"),
            "swap: follows the text": _mean(df, "swap", "follows_text"),
            "swap: follows the slot": _mean(df, "swap", "follows_slot"),
            "swap: claim follows the text": _mean(df, "swap", "claim_follows_text"),
            "reasoning words": float(by["original"]["think_words"].mean()),
        }  # fmt: skip
    return pd.DataFrame.from_dict(out, orient="index")
