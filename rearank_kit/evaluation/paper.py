"""The REARANK paper's reported numbers as data, to put the kit's own beside them.

``resources/paper_results.csv`` holds every cell of the paper's (arXiv:2505.20046) Tables 1-5,
one value a row: Table 1 (TREC DL19/DL20 and seven BEIR sets, BM25 top 100), Table 2 (the 12
BRIGHT tasks), Table 3 (ablations: filter, reward variants, direct SFT), Table 4 (reasoning on
and off) and Table 5 (math transfer, pass@1). Values are in points (nDCG@10 x 100, pass@1 in %),
as printed. The file is the kit's copy of ``../shared/paper/rearank_paper_tables.csv``;
``tests/test_paper.py`` checks it cell by cell against that transcription, and checks the BM25
rows of DL19/DL20 against the kit's own evaluation of the shared data.

Results the paper shows only in figures are in ``FIGURE_RESULTS``; ``reference_lines`` turns
them into lines to draw on a training curve (notebook 04).

    paper_table(1)                                            # the paper's layout
    paper_table(1, ours={"kit: BM25": {"dl19": 0.5058}})      # ... with the kit's rows added
    compare_with_paper({"dl19": 0.5058, "dl20": 0.4796}, system="BM25")
    reference_lines("normalized")                             # {"reward": [...], ...}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rearank_kit.core.errors import DataError, KitError

PAPER = "arXiv:2505.20046"
RESULTS_FILE = Path(__file__).resolve().parent / "resources" / "paper_results.csv"
COLUMNS = ("table", "benchmark", "dataset", "system", "training", "metric", "value", "source", "note")
TABLES = ("Table 1", "Table 2", "Table 3", "Table 4", "Table 5")

TABLE_ALIASES = {
    "1": "Table 1", "t1": "Table 1", "trec": "Table 1", "beir": "Table 1", "dl": "Table 1",
    "2": "Table 2", "t2": "Table 2", "bright": "Table 2",
    "3": "Table 3", "t3": "Table 3", "ablation": "Table 3", "ablations": "Table 3",
    "4": "Table 4", "t4": "Table 4", "reasoning": "Table 4",
    "5": "Table 5", "t5": "Table 5", "math": "Table 5",
}  # fmt: skip
# Other names for the CSV's `dataset` keys: the paper's column labels, ir_datasets and pyserini
# names, the authors' short names, and the names an older file of the kit used.
DATASET_ALIASES = {
    "trec-dl-2019": "dl19", "trec-dl-2020": "dl20", "dl2019": "dl19", "dl2020": "dl20",
    "trec-covid": "covid", "nfc": "nfcorpus", "dbpedia-entity": "dbpedia", "signal1m": "signal",
    "trec-news": "news", "beir (avg)": "beir_avg", "beir": "beir_avg", "trec-dl": "trec_dl_avg",
    "bio.": "biology", "earth.": "earth_science", "earth": "earth_science", "econ.": "economics",
    "psy.": "psychology", "rob.": "robotics", "stack.": "stackoverflow", "sus.": "sustainable_living",
    "sustainable": "sustainable_living", "lc.": "leetcode", "theot.": "theoremqa_theorems",
    "theoq.": "theoremqa_questions", "theoremqa_t": "theoremqa_theorems", "theoremqa_q": "theoremqa_questions",
    "avg.": "bright_avg", "bright": "bright_avg", "aime 2024": "aime2024", "aime": "aime2024",
}  # fmt: skip
_ID_NOISE = {"beir", "bright", "msmarco-passage", "msmarco-passage-v2", "test", "dev", "train", "judged"}
# Other names for the paper's systems (compared after _system_key): model ids, older kit names.
SYSTEM_ALIASES = {
    "rearank": "rearank7b", "qwen257binstruct": "rankqwen257b", "gpt4": "rankgpt4", "gpt35": "rankgpt35",
    "rankzephyr": "rankzephyr7b", "rankr1": "rankr17b",
}  # fmt: skip


def table_name(table) -> str:
    """``1``, ``"t1"``, ``"bright"``, ``"Table 3"`` ... -> the CSV's ``"Table N"``."""
    key = str(table).strip().lower().replace(" ", "").replace("_", "")
    key = key.removeprefix("table") or key
    if key not in TABLE_ALIASES:
        raise KitError(f"unknown table {table!r}: use 1-5 or 'Table 1'..'Table 5' (1: TREC DL + BEIR, 2: BRIGHT, "
                       "3: ablations, 4: reasoning on/off, 5: math)")
    return TABLE_ALIASES[key]


def dataset_name(name: str) -> str:
    """The CSV's key for a dataset: ``DL19`` -> ``dl19``, ``beir/trec-covid`` -> ``covid``, ``Bio.`` -> ``biology``."""
    key = str(name).strip().lower()
    if "/" in key:  # an ir_datasets or remote id: keep the dataset's own part
        parts = [p for p in key.split("/") if p and p not in _ID_NOISE]
        key = parts[0] if parts else key
    return DATASET_ALIASES.get(key, key)


def _system_key(name: str) -> str:
    key = str(name).strip().lower().rsplit("/", 1)[-1].replace("(ours)", "")
    return re.sub(r"[^a-z0-9]", "", key)


def _system_rows(df: pd.DataFrame, system: str) -> pd.Series:
    """Rows of ``system``, table by table: its exact name there, else the same name up to case and
    punctuation, else an alias (``Qwen2.5-7B-Instruct`` is a row of Table 5, ``RankQwen2.5-7B`` of Table 1)."""
    key = _system_key(system)
    keys = df["system"].map(_system_key)
    loose = (keys == key) | (keys == SYSTEM_ALIASES.get(key, key))
    exact = df["system"] == system
    has_exact = exact.groupby(df["table"]).transform("any")
    return exact | (loose & ~has_exact)


# --- reading the file ----------------------------------------------------------------------------


def _check(df: pd.DataFrame, path: Path) -> None:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, row in df.iterrows():
        line = i + 2  # the header is line 1
        for column in ("table", "benchmark", "dataset", "system", "metric", "source"):
            if not isinstance(row[column], str) or not row[column].strip():
                raise DataError(f"{path}:{line}: field {column!r} is empty")
        if row["table"] not in TABLES:
            raise DataError(f"{path}:{line}: field 'table' is {row['table']!r}, not one of {', '.join(TABLES)}")
        if not math.isfinite(row["value"]):
            raise DataError(f"{path}:{line}: field 'value' must be a number (every cell is the paper's, none guessed)")
    dup = df.duplicated(["table", "dataset", "system", "metric"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        raise DataError(f"{path}: ({first['table']}, {first['dataset']}, {first['system']}) appears more than once")


def paper_results(table=None, *, path: str | Path | None = None) -> pd.DataFrame:
    """The paper's numbers, tidy, in the paper's order: table, benchmark (the paper's column
    label), dataset (the kit's name), system, training, metric, value (points), source, note.
    ``table``: 1-5, "Table 1", "bright", ...; None for all five tables."""
    path = Path(path) if path else RESULTS_FILE
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if "value" in df.columns:
        df["value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)  # "" and text -> NaN, refused below
    _check(df, path)
    if table is not None:
        df = df[df["table"] == table_name(table)]
    return df.reset_index(drop=True)


def paper_value(dataset: str, system: str = "REARANK-7B", table=None) -> float:
    """One reported value, in points; KitError when the paper has no such cell."""
    df = paper_results(table)
    hit = df[(df["dataset"] == dataset_name(dataset)) & _system_rows(df, system)]
    if hit.empty:
        raise KitError(f"no paper row for dataset {dataset!r}, system {system!r}; systems: "
                       f"{', '.join(dict.fromkeys(df['system']))}")
    return float(hit["value"].iloc[0])


# --- side by side --------------------------------------------------------------------------------


def _points(values: Mapping[str, float], scale: str) -> dict[str, float]:
    if scale not in ("auto", "fraction", "points"):
        raise ValueError(f"scale must be 'auto', 'fraction' or 'points', got {scale!r}")
    values = {dataset_name(k): float(v) for k, v in values.items()}
    fraction = scale == "fraction" or (scale == "auto" and bool(values) and all(abs(v) <= 1.0 for v in values.values()))
    return {k: v * (100.0 if fraction else 1.0) for k, v in values.items()}


def paper_table(table, ours: Mapping[str, Mapping[str, float]] | None = None, scale: str = "auto") -> pd.DataFrame:
    """One table as the paper lays it out: a row per system (and its training, where the table
    has it), a column per benchmark label, values in points.

    ``ours`` adds the kit's rows: ``{"kit: REARANK-7B": {"dl19": 0.7213, ...}}``, each keyed by
    dataset (any name ``dataset_name`` knows), as fractions or points (``scale`` as in
    ``compare_with_paper``); benchmarks it lacks stay empty.
    """
    df = paper_results(table)
    labels = list(dict.fromkeys(df["benchmark"]))
    wide = df.pivot(index="system", columns="benchmark", values="value").reindex(
        index=list(dict.fromkeys(df["system"])), columns=labels)
    if df["training"].str.strip().any():
        wide.insert(0, "training", df.drop_duplicates("system").set_index("system")["training"])
    label_of = dict(zip(df["dataset"], df["benchmark"], strict=False))
    extra = {name: {label_of[k]: v for k, v in _points(values, scale).items() if k in label_of}
             for name, values in (ours or {}).items()}
    if extra:
        rows = pd.DataFrame.from_dict(extra, orient="index", dtype=float).reindex(columns=labels)
        if "training" in wide.columns:
            rows.insert(0, "training", "")
        wide = pd.concat([wide, rows])
    wide.index.name, wide.columns.name = "system", None
    return wide


def compare_with_paper(
    ours: Mapping[str, float],
    system: str = "REARANK-7B",
    *,
    table=None,
    tolerance: float = 1.0,
    scale: str = "auto",
) -> pd.DataFrame:
    """The kit's numbers beside the paper's, one row per dataset of ``ours``.

    ``ours`` maps dataset -> value, as a fraction (0.5058) or in points (50.58); ``scale`` is
    ``"auto"`` (fractions when every value is <= 1), ``"fraction"`` or ``"points"``. ``system``:
    the paper's name for the row (case and punctuation free: ``"Rearank-7B"`` and
    ``"le723z/Rearank-7B"`` find ``REARANK-7B``). Columns: dataset, system, ours, paper, diff (ours -
    paper, points), tolerance, within (NA where the paper has no cell), source, note.
    """
    values = _points(ours, scale)
    df = paper_results(table)
    rows_of_system = _system_rows(df, system)
    if not rows_of_system.any():
        raise KitError(f"unknown system {system!r}; the paper's rows: {', '.join(dict.fromkeys(df['system']))}")
    rows = []
    for dataset, value in values.items():
        hit = df[rows_of_system & (df["dataset"] == dataset)]
        paper = float(hit["value"].iloc[0]) if not hit.empty else math.nan
        diff = value - paper
        rows.append({
            "dataset": dataset, "system": hit["system"].iloc[0] if not hit.empty else system, "ours": value,
            "paper": paper, "diff": diff, "tolerance": tolerance,
            "within": pd.NA if math.isnan(diff) else bool(abs(diff) <= tolerance),
            "source": hit["source"].iloc[0] if not hit.empty else "", "note": hit["note"].iloc[0] if not hit.empty else "",
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=["dataset", "system", "ours", "paper", "diff", "tolerance", "within", "source",
                                      "note"])  # fmt: skip
    out["within"] = out["within"].astype("boolean")
    return out


# --- results shown only in figures ---------------------------------------------------------------


@dataclass(frozen=True)
class FigureResult:
    """A result the paper shows only in a figure, read off it: approximate by nature."""

    what: str
    metric: str | None  # the kit's metrics.jsonl key it compares with (TRL's names); None: not a curve
    reward_mode: str | None  # the rank reward it was trained with (rewards.MODES); None: any
    value: float | None  # the level (a horizontal line); None: none stated
    step: int | None  # the training step it is reached by (a vertical line); None: none stated


FIGURE_RESULTS: tuple[FigureResult, ...] = (
    FigureResult("reward rises to about 0.8 by step 100 (normalised rank reward)", "reward", "normalized", 0.8, 100),
    FigureResult("raw nDCG reward saturates by about step 50", "reward", "raw", None, 50),
    FigureResult("difference reward plateaus near 0.15", "reward", "difference", 0.15, None),
    FigureResult("responses grow to about 850 tokens", "completions/mean_length", "normalized", 850, None),
    FigureResult("responses grow to about 700 tokens", "completions/mean_length", "raw", 700, None),
    FigureResult("responses grow to about 700 tokens", "completions/mean_length", "difference", 700, None),
    FigureResult("reasoning length and nDCG@10 show no clear correlation (BRIGHT biology, 50 samples a query "
                 "at temperature 0.6)", None, None, None, None),
    FigureResult("a second reranking pass gives mixed results", None, None, None, None),
)


@dataclass(frozen=True)
class ReferenceLine:
    """A line to draw on a training-curve panel: ``axis`` "y" (a level) or "x" (a step)."""

    metric: str
    axis: str
    at: float
    label: str


def reference_lines(reward_mode: str = "normalized") -> dict[str, list[ReferenceLine]]:
    """The paper's figure-only results for a run trained with ``reward_mode``, as lines per
    metrics.jsonl key (``reward``, ``completions/mean_length``): ``ax.axhline(line.at)`` for
    ``axis == "y"``, ``ax.axvline(line.at)`` for ``"x"``. The paper trained a 7B model with a
    batch of 128 prompts a step: a small CPU run is not expected to reach these levels."""
    from rearank_kit.train.rewards import MODES

    if reward_mode not in MODES:
        raise KitError(f"unknown reward mode {reward_mode!r}; choose one of {', '.join(MODES)}")
    lines: dict[str, list[ReferenceLine]] = {}
    for result in FIGURE_RESULTS:
        if result.metric is None or result.reward_mode not in (None, reward_mode):
            continue
        label = f"paper (figure): {result.what}"
        if result.value is not None:
            lines.setdefault(result.metric, []).append(ReferenceLine(result.metric, "y", result.value, label))
        if result.step is not None:
            lines.setdefault(result.metric, []).append(ReferenceLine(result.metric, "x", result.step, label))
    return lines


__all__ = [
    "PAPER", "RESULTS_FILE", "paper_results", "paper_value", "paper_table", "compare_with_paper", "dataset_name",
    "table_name", "FigureResult", "FIGURE_RESULTS", "ReferenceLine", "reference_lines",
]  # fmt: skip
