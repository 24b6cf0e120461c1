"""The REARANK paper's reported numbers as data, each with its source, to compare a run against.

``resources/paper_results.csv`` holds one row per (table, dataset, system): nDCG@10 in points
(0-100), the table it comes from (arXiv:2505.20046 Table 1: TREC DL and BEIR; Table 2: BRIGHT)
and ``verified``: whether the value was checked. Cells not yet checked against the paper are
left empty (NaN) rather than guessed; ``resources/README.md`` says which ones are filled.

    paper_results("Table 1")                                  # tidy DataFrame
    compare_with_paper({"dl19": 0.5058, "dl20": 0.4796}, system="BM25")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from rearank_kit.env import parse_bool
from rearank_kit.errors import DataError, KitError

PAPER = "arXiv:2505.20046"
RESULTS_FILE = Path(__file__).resolve().parent / "resources" / "paper_results.csv"
COLUMNS = ("table", "dataset", "system", "metric", "value", "source", "verified")

TABLE_ALIASES = {
    "1": "Table 1", "table1": "Table 1", "t1": "Table 1", "trec": "Table 1", "beir": "Table 1", "dl": "Table 1",
    "2": "Table 2", "table2": "Table 2", "t2": "Table 2", "bright": "Table 2",
}  # fmt: skip
DATASET_ALIASES = {
    "trec-dl-2019": "dl19", "trec-dl-2020": "dl20", "dl2019": "dl19", "dl2020": "dl20",
    "trec-covid": "covid", "webis-touche2020": "touche", "touche2020": "touche", "dbpedia-entity": "dbpedia",
    "signal1m": "signal", "trec-news": "news", "earth": "earth_science", "sustainable": "sustainable_living",
    "theoremqa_questions": "theoremqa_q", "theoremqa_theorems": "theoremqa_t",
}  # fmt: skip


def _table_name(table) -> str:
    key = str(table).strip().lower().replace(" ", "").replace("_", "")
    if key not in TABLE_ALIASES:
        raise KitError(f"unknown table {table!r}: use 1 / 'Table 1' (TREC DL, BEIR) or 2 / 'Table 2' (BRIGHT)")
    return TABLE_ALIASES[key]


def dataset_name(name: str) -> str:
    """The CSV's name for a dataset (``trec-covid`` -> ``covid``, ``DL19`` -> ``dl19``)."""
    key = str(name).strip().lower()
    return DATASET_ALIASES.get(key, key)


def _check(df: pd.DataFrame, path: Path) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, row in df.iterrows():
        line = i + 2  # header is line 1
        if not isinstance(row["source"], str) or not row["source"].strip():
            raise DataError(f"{path}:{line}: row has no source")
        if row["verified"] and not math.isfinite(row["value"]):
            raise DataError(f"{path}:{line}: a verified row needs a value")
        if not row["verified"] and math.isfinite(row["value"]):
            raise DataError(f"{path}:{line}: an unverified row must leave its value empty, not guess it")
    dup = df.duplicated(["table", "dataset", "system", "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(f"{path}: ({first['table']}, {first['dataset']}, {first['system']}) appears more than once")


def paper_results(table=None, *, verified_only: bool = False, path: str | Path | None = None) -> pd.DataFrame:
    """The paper's numbers, tidy: table, dataset, system, metric, value (points), source, verified,
    note. ``table``: 1/2, "Table 1", "bright"...; ``verified_only`` drops the empty cells."""
    path = Path(path) if path else RESULTS_FILE
    try:
        df = pd.read_csv(path, dtype={"table": str, "dataset": str, "system": str, "metric": str, "source": str})
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    flags = df["verified"].astype(str).map(parse_bool)
    bad = flags.isna()
    if bad.any():
        raise DataError(f"{path}:{int(bad.idxmax()) + 2}: 'verified' must be true or false")
    df["verified"] = flags.astype(bool)
    _check(df, path)
    if table is not None:
        df = df[df["table"] == _table_name(table)]
    if verified_only:
        df = df[df["verified"]]
    return df.reset_index(drop=True)


def paper_value(dataset: str, system: str = "Rearank-7B", table=None) -> float:
    """One reported value (points); NaN when the cell is not filled; KitError when no such row."""
    df = paper_results(table)
    hit = df[(df["dataset"] == dataset_name(dataset)) & (df["system"] == system)]
    if hit.empty:
        raise KitError(f"no paper row for dataset {dataset!r}, system {system!r}; systems: {sorted(set(df['system']))}")
    return float(hit["value"].iloc[0])


def compare_with_paper(
    ours: Mapping[str, float],
    system: str = "Rearank-7B",
    *,
    table=None,
    tolerance: float = 1.0,
    scale: str = "auto",
) -> pd.DataFrame:
    """Our numbers beside the paper's, one row per dataset of ``ours``.

    ``ours`` maps dataset -> nDCG@10, as a fraction (0.5058) or in points (50.58); ``scale`` is
    ``"auto"`` (fractions when every value is <= 1), ``"fraction"`` or ``"points"``. Columns:
    dataset, system, ours, paper, diff (ours - paper, points), tolerance, within (True/False, or
    NA where the paper's cell is empty or the dataset has no row), verified, source.
    """
    if scale not in ("auto", "fraction", "points"):
        raise ValueError(f"scale must be 'auto', 'fraction' or 'points', got {scale!r}")
    values = {dataset_name(k): float(v) for k, v in ours.items()}
    as_fraction = scale == "fraction" or (scale == "auto" and values and all(abs(v) <= 1.0 for v in values.values()))
    factor = 100.0 if as_fraction else 1.0
    df = paper_results(table)
    if system not in set(df["system"]):
        raise KitError(f"unknown system {system!r}; the paper rows have: {', '.join(sorted(set(df['system'])))}")
    rows = []
    for dataset, value in values.items():
        hit = df[(df["dataset"] == dataset) & (df["system"] == system)]
        paper = float(hit["value"].iloc[0]) if not hit.empty else math.nan
        ours_pts = value * factor
        diff = ours_pts - paper
        rows.append({
            "dataset": dataset, "system": system, "ours": ours_pts, "paper": paper, "diff": diff,
            "tolerance": tolerance, "within": pd.NA if math.isnan(diff) else bool(abs(diff) <= tolerance),
            "verified": bool(hit["verified"].iloc[0]) if not hit.empty else False,
            "source": hit["source"].iloc[0] if not hit.empty else "",
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=["dataset", "system", "ours", "paper", "diff", "tolerance", "within",
                                      "verified", "source"])  # fmt: skip
    out["within"] = out["within"].astype("boolean")
    return out
