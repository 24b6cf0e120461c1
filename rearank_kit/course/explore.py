"""Small helpers for the notebooks: look at an augmented set, score a typed-in ranking, plot nDCG.

    from rearank_kit.train.augment import load_sets, read_summary
    from rearank_kit.course import explore
    sets = load_sets("runs/aug")["train"]
    explore.show_set(sets[0])                                   # the passages of one set
    explore.reward_table("<think>...</think><answer>[2] > [1]</answer>", sets[0])
    explore.ndcg_histogram(sets)                                # initial vs best nDCG@10
    explore.summary_table(read_summary("runs/aug"))

pandas and matplotlib are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

from rearank_kit.train.rewards import MODES, reward_breakdown

TEXT_CHARS = 80


def show_set(row: Mapping, chars: int = TEXT_CHARS):
    """One set as a table: position ([i] in the prompt), docid, grade and the start of the text."""
    import pandas as pd

    texts = row.get("texts") or [""] * len(row["docids"])
    return pd.DataFrame({
        "position": [f"[{i + 1}]" for i in range(len(row["docids"]))],
        "docid": list(row["docids"]),
        "grade": list(row["grades"]),
        "text": [" ".join(str(t).split())[:chars] for t in texts],
    })  # fmt: skip


def reward_table(completion, row: Mapping, modes: Sequence[str] = MODES, lenient: bool = False, prefill: str = ""):
    """Each reward component of ``completion`` on the set ``row``, one row per mode."""
    import pandas as pd

    records = {}
    for mode in modes:
        parts = reward_breakdown(completion, row["grades"], row["ideal_grades"], mode,
                                 lenient=lenient, prefill=prefill)
        parts.pop("order")
        records[mode] = parts
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "mode"
    return table


def _column(sets, name: str) -> list[float]:
    """One numeric column from a list of rows, a Dataset, a DatasetDict (or dict of splits) or a DataFrame."""
    if isinstance(sets, Mapping) and name not in sets:  # a DatasetDict (a dict subclass) or {"train": rows}
        return [v for split in sets.values() for v in _column(split, name)]
    if hasattr(sets, "iloc") or hasattr(sets, "column_names"):  # DataFrame or Dataset: read the column only
        return [float(v) for v in sets[name]]
    return [float(r[name]) for r in sets]


def _new_axes():
    """Axes on pyplot when a notebook or script already uses it, else on a standalone Agg figure.

    Never switching backends: pyplot's backend is whatever its user chose (inline in Jupyter);
    without pyplot, a bare ``Figure`` draws with Agg and needs no display.
    """
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.subplots(figsize=(6, 3.5))[1]
    from matplotlib.figure import Figure

    return Figure(figsize=(6, 3.5)).subplots()


def ndcg_histogram(sets: Iterable[Mapping], ax=None, bins: int = 20):
    """Histogram of initial vs best nDCG@10 over the sets; returns the Axes.

    The gap between the two is the room the reranker has to improve: REARANK's rank reward
    measures how much of it a completion closes.
    """
    import numpy as np

    init, best = _column(sets, "init_ndcg"), _column(sets, "best_ndcg")
    ax = ax if ax is not None else _new_axes()
    edges = np.linspace(0.0, 1.0, bins + 1)
    ax.hist(init, bins=edges, alpha=0.6, label=f"initial (mean {np.mean(init):.3f})" if init else "initial")
    ax.hist(best, bins=edges, alpha=0.6, label=f"best possible (mean {np.mean(best):.3f})" if best else "best possible")
    ax.set_xlabel("nDCG@10 of the set")
    ax.set_ylabel("sets")
    ax.set_title(f"{len(init)} augmented sets")
    ax.legend()
    return ax


def summary_table(summary: Mapping):
    """The headline numbers of an augment ``summary.json`` as a two-column table (item, value)."""
    import pandas as pd

    items = [
        ("data", summary.get("data")),
        ("seed", summary.get("seed")),
        ("template", summary.get("template")),
        ("filter", f"{summary.get('filter')} nDCG@10 >= {summary.get('min_ndcg')}"),
        ("queries", summary.get("queries")),
        ("queries used", summary.get("queries_used")),
    ]
    items += [(f"queries skipped: {k}", v) for k, v in (summary.get("queries_skipped") or {}).items()]
    items += [("sets drawn", summary.get("sets_drawn")), ("sets kept", summary.get("sets_kept"))]
    items += [(f"sets dropped: {k}", v) for k, v in (summary.get("sets_dropped") or {}).items()]
    items.append(("sets already in best order", summary.get("sets_already_best")))
    for split, counts in (summary.get("splits") or {}).items():
        items.append((f"{split}: queries / sets", f"{counts.get('queries')} / {counts.get('sets')}"))
    for key in ("init_ndcg", "best_ndcg"):
        dist = summary.get(key) or {}
        q = dist.get("quantiles") or {}
        if dist.get("mean") is not None:
            items.append((f"{key} mean", round(dist["mean"], 4)))
            items.append((f"{key} median", round(q.get("0.5", float("nan")), 4)))
    table = pd.DataFrame(items, columns=["item", "value"]).set_index("item")
    table["value"] = table["value"].astype(str)  # mixed types: keep them readable in one column
    return table
