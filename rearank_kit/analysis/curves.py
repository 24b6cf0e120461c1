"""Training curves: read a GRPO run's logs, smooth them, plot them, and say what looks wrong.

Two sources give the same table (one row per logged step, indexed by ``step``, TRL's key names):

* the kit's ``metrics.jsonl`` (one JSON object per line, appended while training; a last line
  cut by an interrupt is skipped, any other malformed line is an error naming file and line);
* TRL's ``trainer_state.json`` (its ``log_history``), in a checkpoint folder.

    df = load_curves("runs/grpo-smoke")          # metrics.jsonl, trainer_state.json or checkpoint-*/
    fig = plot_dashboard({"ndcg": df, "ndcg+format": df2}, smooth=0.6)
    for finding in diagnose(df): print(finding)
    save_figure(fig, "runs/grpo-smoke/curves.png", {"run": "grpo-smoke"})

Matplotlib is imported only by the plotting functions.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rearank_kit.core.errors import DataError, KitError
from rearank_kit.core.files import read_json, read_jsonl

TEXT_COLUMNS = ("warnings",)  # kept as they are; every other value is made a number (junk -> NaN)
_COMPONENT = re.compile(r"^rewards/(.+)/mean$")


# --- reading ------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    try:
        return float(value) if isinstance(value, (bool, int, float, str)) else math.nan
    except ValueError:
        return math.nan


def _frame(records: Iterable[tuple[str, dict]]) -> pd.DataFrame:
    """One row per step from (where, record) pairs; a step logged twice keeps its last values."""
    rows, nan_values = [], {}
    for where, rec in records:
        step = rec.get("step", rec.get("global_step"))
        step_value = _number(step)
        if not math.isfinite(step_value):
            raise DataError(f"{where}: field 'step' is missing or not a number ({step!r})")
        row: dict[str, Any] = {"step": int(step_value)}
        for key, value in rec.items():
            if key in ("step", "global_step"):
                continue
            row[key] = value if key in TEXT_COLUMNS else _number(value)
            if isinstance(value, (float, str)) and key not in TEXT_COLUMNS and str(value).lower() == "nan":
                nan_values[key] = nan_values.get(key, 0) + 1  # a logged NaN, not a missing key
        rows.append(row)
    if not rows:
        df = pd.DataFrame(index=pd.Index([], name="step", dtype=int))
        df.attrs["nan_values"] = {}
        return df
    df = pd.DataFrame(rows)
    df = df.groupby("step", sort=True).last()  # last non-null value of each column per step
    df.index = df.index.astype(int)
    df.index.name = "step"
    df.attrs["nan_values"] = nan_values
    return df


def read_metrics_jsonl(path: str | os.PathLike) -> pd.DataFrame:
    """The kit's ``metrics.jsonl`` as a DataFrame indexed by step (a torn last line is skipped)."""
    log = read_jsonl(path)
    df = _frame((f"{log.path}:{number}", rec) for number, rec in log.numbered())
    df.attrs.update(source=str(log.path), torn_tail=log.torn_tail)
    return df


def read_trainer_state(path: str | os.PathLike) -> pd.DataFrame:
    """TRL's ``trainer_state.json`` (a file or a checkpoint folder): its ``log_history`` by step."""
    path = Path(path)
    if path.is_dir():
        path = path / "trainer_state.json"
    state = read_json(path)
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise DataError(f"{path}: no 'log_history' list (is this TRL's trainer_state.json?)")
    for i, rec in enumerate(history):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: log_history[{i}] is not an object")
    df = _frame((f"{path}: log_history[{i}]", rec) for i, rec in enumerate(history))
    df.attrs.update(source=str(path), torn_tail=False)
    return df


def _checkpoint_number(p: Path) -> int:
    tail = p.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def load_curves(path: str | os.PathLike) -> pd.DataFrame:
    """Curves from a ``metrics.jsonl``, a ``trainer_state.json``, a checkpoint folder, or a run
    folder holding either (``metrics.jsonl`` first, else the latest ``checkpoint-*``)."""
    path = Path(path)
    if path.is_file():
        return read_trainer_state(path) if path.suffix == ".json" else read_metrics_jsonl(path)
    if path.is_dir():
        if (path / "metrics.jsonl").is_file():
            return read_metrics_jsonl(path / "metrics.jsonl")
        if (path / "trainer_state.json").is_file():
            return read_trainer_state(path)
        checkpoints = sorted(path.glob("checkpoint-*/trainer_state.json"), key=lambda p: _checkpoint_number(p.parent))
        if checkpoints:
            return read_trainer_state(checkpoints[-1])
        raise KitError(f"{path}: no metrics.jsonl, trainer_state.json or checkpoint-*/trainer_state.json here")
    raise KitError(f"{path}: no such file or folder")


def reward_components(df: pd.DataFrame) -> list[str]:
    """Names of the reward functions logged as ``rewards/<fn>/mean``."""
    return [m.group(1) for c in df.columns if (m := _COMPONENT.match(str(c)))]


# --- smoothing ----------------------------------------------------------------------------------


def ema(values: Iterable[float], weight: float = 0.6, debias: bool = True) -> pd.Series:
    """TensorBoard's smoothing: ``s = weight * s + (1 - weight) * x`` over the finite values.

    With ``debias`` (TensorBoard's current behaviour) ``s`` starts at 0 and each value is divided
    by ``1 - weight**n`` (n finite values so far); without it ``s`` starts at the first value.
    Non-finite values stay NaN and do not move the average. ``weight=0`` returns the values.
    """
    if not 0 <= weight < 1:
        raise ValueError(f"EMA weight must be in [0, 1), got {weight}")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=float)
    out, last, n = [], 0.0, 0
    for v in series.astype(float):
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        n += 1
        if debias:
            last = weight * last + (1 - weight) * v
            out.append(last / (1 - weight**n))
        else:
            last = v if n == 1 else weight * last + (1 - weight) * v
            out.append(last)
    return pd.Series(out, index=series.index, name=series.name, dtype=float)


def rolling_mean(values: Iterable[float], window: int = 5) -> pd.Series:
    """Trailing mean over the last ``window`` logged steps (fewer at the start)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=float)
    return series.astype(float).rolling(window, min_periods=1).mean()


def smooth_frame(df: pd.DataFrame, weight: float = 0.0, window: int | None = None) -> pd.DataFrame:
    """Every numeric column smoothed: EMA with ``weight``, or a rolling mean with ``window``."""
    out = df.copy()
    for col in df.columns:
        if col in TEXT_COLUMNS or not pd.api.types.is_numeric_dtype(df[col]):
            continue
        out[col] = _smoothed(df[col], weight, window)
    return out


def _smoothed(series: pd.Series, weight: float, window: int | None) -> pd.Series:
    if window:
        return rolling_mean(series, window)
    return ema(series, weight) if weight else series.astype(float)


# --- plotting -----------------------------------------------------------------------------------


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and df[col].notna().any()


def _line(ax, df, col, *, label=None, color=None, smooth=0.0, window=None, show_raw=True, **kw):
    """Plot one column (raw faint + smoothed when smoothing); returns the colour used or None."""
    if not _has(df, col):
        return None
    series = df[col].astype(float)
    smoothing = bool(window) or bool(smooth)
    if smoothing and show_raw:
        (raw,) = ax.plot(series.index, series.values, alpha=0.25, color=color, linewidth=1, **kw)
        color = raw.get_color()
    (line,) = ax.plot(series.index, _smoothed(series, smooth, window).values, label=label, color=color, **kw)
    return line.get_color()


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} logged", ha="center", va="center", transform=ax.transAxes, color="grey")


def _axes(ax):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=(7, 4))[1]


def _band(ax, df, color, smooth, window, alpha=0.15) -> None:
    """reward ± reward_std (both smoothed alike)."""
    if _has(df, "reward") and _has(df, "reward_std"):
        mean, std = _smoothed(df["reward"], smooth, window), _smoothed(df["reward_std"], smooth, window)
        ax.fill_between(df.index, mean - std, mean + std, color=color, alpha=alpha, linewidth=0)


def _plot_components(ax, df, *, prefix, color=None, smooth=0.0, window=None, show_raw=True):
    names = reward_components(df)
    styles = ["--", ":", "-.", (0, (5, 1)), (0, (1, 1))]
    for i, fn in enumerate(names):
        _line(ax, df, f"rewards/{fn}/mean", label=f"{prefix}{fn}", color=color, smooth=smooth, window=window,
              show_raw=show_raw, linestyle=styles[i % len(styles)])  # fmt: skip
    return names


def plot_reward(df, ax=None, *, label="reward", color=None, smooth=0.0, window=None, components=True, show_raw=True):
    """Mean reward with a ± reward_std band (the spread within groups), and each reward component."""
    ax = _axes(ax)
    color = _line(ax, df, "reward", label=label, color=color, smooth=smooth, window=window, show_raw=show_raw)
    if color is None:
        _empty(ax, "reward")
    _band(ax, df, color, smooth, window)
    if components:
        _plot_components(ax, df, prefix="", smooth=smooth, window=window, show_raw=show_raw)
    ax.set(xlabel="step", ylabel="reward", title="Reward (mean ± std within groups)")
    ax.legend(fontsize="small")
    return ax


def _plot_one(df, ax, col, what, title, ylabel, *, ylim=None, **opts):
    ax = _axes(ax)
    if _line(ax, df, col, **opts) is None:
        _empty(ax, what)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    if ylim:
        ax.set_ylim(*ylim)
    return ax


def plot_length(df, ax=None, *, label="mean length", color=None, smooth=0.0, window=None, clipped=True, show_raw=True):
    """Mean completion length (tokens), with the clipped ratio on a twin axis when ``clipped``
    (then returns ``(ax, twin)``)."""
    opts = dict(smooth=smooth, window=window, show_raw=show_raw)
    ax = _plot_one(df, ax, "completions/mean_length", "completion length", "Completion length", "tokens",
                   label=label, color=color, **opts)  # fmt: skip
    if clipped and _has(df, "completions/clipped_ratio"):
        twin = ax.twinx()
        _line(twin, df, "completions/clipped_ratio", label="clipped ratio", color="tab:red", linestyle="--", **opts)
        twin.set(ylabel="clipped ratio", ylim=(0, 1.05))
        return ax, twin
    return ax


def plot_kl(df, ax=None, *, label="kl", color=None, smooth=0.0, window=None, show_raw=True):
    """KL divergence of the policy from the reference model."""
    return _plot_one(df, ax, "kl", "KL", "KL to the reference model", "KL", label=label, color=color,
                     smooth=smooth, window=window, show_raw=show_raw)  # fmt: skip


def plot_zero_std(df, ax=None, *, label="frac zero std", color=None, smooth=0.0, window=None, show_raw=True):
    """Share of groups whose completions all got the same reward (no advantage, no learning)."""
    return _plot_one(df, ax, "frac_reward_zero_std", "frac_reward_zero_std", "Groups with zero reward spread",
                     "fraction of groups", ylim=(-0.02, 1.02), label=label, color=color, smooth=smooth,
                     window=window, show_raw=show_raw)  # fmt: skip


PANELS = {  # panel -> (column, title, y label); "components" draws every rewards/<fn>/mean
    "reward": ("reward", "Reward (mean ± std)", "reward"),
    "components": (None, "Reward components", "mean"),
    "length": ("completions/mean_length", "Completion length", "tokens"),
    "clipped": ("completions/clipped_ratio", "Clipped completions", "ratio"),
    "kl": ("kl", "KL to reference", "KL"),
    "zero_std": ("frac_reward_zero_std", "Groups with zero reward spread", "fraction"),
}


def plot_dashboard(runs, *, smooth: float = 0.0, window: int | None = None, show_raw: bool = True, ncols: int = 3,
                   reference_lines: Mapping[str, list] | None = None, panels: Iterable[str] | None = None):
    """A grid of panels (reward, components, length, clipped ratio, KL, zero-spread groups) with
    one colour per run; ``runs`` is a DataFrame or ``{name: DataFrame}`` (e.g. reward ablations).

    Each panel gets one line per run (and per component in the components panel); with smoothing
    and ``show_raw`` a faint raw line is drawn under each smoothed one; a panel no run logs says
    so. ``panels``: which of ``PANELS`` to draw (e.g. without "kl" for runs with ``beta = 0``, which
    compute no KL). ``reference_lines``: ``paper.reference_lines(mode)``, drawn on the panels of
    their metrics (``add_reference_lines``).
    """
    import matplotlib.pyplot as plt

    runs = {"run": runs} if isinstance(runs, pd.DataFrame) else dict(runs)
    wanted = list(PANELS) if panels is None else list(panels)
    unknown = [p for p in wanted if p not in PANELS]
    if unknown:
        raise ValueError(f"unknown panel(s) {unknown}; choose from {list(PANELS)}")
    panels = {k: v for k, v in PANELS.items() if k in wanted}
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    ax = dict(zip(panels, axes.flat, strict=False))
    for extra in list(axes.flat)[len(panels) :]:
        extra.remove()
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    opts = dict(smooth=smooth, window=window, show_raw=show_raw)
    drawn = dict.fromkeys(panels, False)
    for i, (name, df) in enumerate(runs.items()):
        c = colors[i % len(colors)]
        drawn["components"] |= bool(_plot_components(ax["components"], df, prefix=f"{name}: ", color=c, **opts))
        for panel, (col, _, _) in panels.items():
            if col:
                drawn[panel] |= _line(ax[panel], df, col, label=name, color=c, **opts) is not None
        _band(ax["reward"], df, c, smooth, window, alpha=0.12)
    for panel, (col, _, _) in panels.items():
        if col and reference_lines and reference_lines.get(col):
            add_reference_lines(ax[panel], reference_lines[col])
    for panel, (_, title, ylabel) in panels.items():
        ax[panel].set(title=title, xlabel="step", ylabel=ylabel)
        if not drawn[panel]:
            _empty(ax[panel], title.lower())
        elif panel == "components" or len(runs) > 1:
            ax[panel].legend(fontsize="x-small")
        if panel in ("clipped", "zero_std"):
            ax[panel].set_ylim(-0.02, 1.02)
    suffix = f" (rolling {window})" if window else (f" (EMA {smooth})" if smooth else "")
    fig.suptitle("GRPO training curves" + suffix)
    fig.tight_layout()
    return fig


def add_reference_lines(ax, lines) -> None:
    """Draw ``paper.ReferenceLine``s on an axes: a dotted horizontal line at a level, a vertical one
    at a step, each labelled (in the legend) with what the paper's figure shows."""
    for line in lines:
        draw = ax.axhline if line.axis == "y" else ax.axvline
        draw(line.at, color="tab:purple", linestyle=":", linewidth=1.2, label=line.label)
    if lines:
        ax.legend(fontsize="x-small")


def add_no_learning_band(ax, band, *, label: str = "untrained model") -> None:
    """Shade what the per-step mean rank reward looks like without learning
    (``first_pick.no_learning_band``: its 5-95% range per step, and its expectation as a line)."""
    steps = [b["step"] for b in band]
    ax.fill_between(steps, [b["q05"] for b in band], [b["q95"] for b in band], color="grey", alpha=0.25,
                    label=f"{label}: 90% of steps")  # fmt: skip
    ax.plot(steps, [b["expected"] for b in band], color="grey", linewidth=1, label=f"{label}: expected")
    ax.legend(fontsize="x-small")


# --- diagnosis ----------------------------------------------------------------------------------


def quarter_means(series: pd.Series, frac: float = 0.25) -> tuple[float, float]:
    """Mean of the first and of the last ``frac`` of the logged (non-NaN) values."""
    s = series.dropna().astype(float)
    k = max(1, int(len(s) * frac))
    return float(s.iloc[:k].mean()), float(s.iloc[-k:].mean())


def diagnose(
    df: pd.DataFrame,
    *,
    zero_std_max: float = 0.9,
    clipped_max: float = 0.2,
    flat_tol: float = 0.02,
    format_floor: float | None = 0.2,
    floor_margin: float = 0.01,
    format_zero_max: float = 0.1,
    kl_max: float = 0.5,
    length_change: float = 2.0,
    min_steps: int = 4,
) -> list[str]:
    """Plain-English findings about the failure patterns of a GRPO run; ``[]`` when none is seen.

    Checks: all groups without reward spread (nothing to learn from), truncated reasoning (high
    clipped ratio late in training), a flat reward, a reward ending at or below ``format_floor``
    (what a well-formatted reply that leaves the ranking unchanged earns: 0.1 + 0.1 with REARANK's
    weights; None skips it), format rewards stuck near 0, KL running away, completion length
    collapsing or drifting up, and NaN/inf values.
    """
    if df is None or len(df) == 0:
        return ["No logged steps: the run wrote no metrics (did it crash before the first logging step?)."]
    out: list[str] = []
    n = len(df)
    if n < min_steps:
        out.append(f"Only {n} logged step(s): too few to judge trends; the checks below use what there is.")
    for col in ("loss", "grad_norm", "kl", "reward"):
        if col in df.columns:
            bad = int(np.isinf(df[col].astype(float).to_numpy()).sum()) + df.attrs.get("nan_values", {}).get(col, 0)
            if bad:
                out.append(f"'{col}' is not finite at {bad} step(s): training diverged (lower the learning rate).")
    if _has(df, "frac_reward_zero_std") and (share := float(df["frac_reward_zero_std"].mean())) >= zero_std_max:
        out.append(
            f"On average {share:.0%} of groups had zero reward spread (frac_reward_zero_std): every completion of a "
            "prompt got the same reward, so GRPO's advantages are zero and nothing is learned. Raise the sampling "
            "temperature or num_generations, or check that the reward can tell completions apart."
        )
    elif not _has(df, "frac_reward_zero_std") and _has(df, "reward_std") and df["reward_std"].abs().max() < 1e-6:
        out.append("reward_std is 0 at every step: no group has reward spread (zero spread), so nothing is learned.")
    if _has(df, "completions/clipped_ratio") and (clip := quarter_means(df["completions/clipped_ratio"])[1]) > clipped_max:
        out.append(
            f"{clip:.0%} of completions hit the length limit late in training (completions/clipped_ratio): the "
            "reasoning is truncated before the <answer>. Raise max_completion_length or shorten the window."
        )
    if _has(df, "reward") and df["reward"].notna().sum() >= min_steps:
        smoothed = ema(df["reward"].astype(float), 0.6).dropna()
        spread, late = float(smoothed.max() - smoothed.min()), quarter_means(df["reward"])[1]
        at_floor = format_floor is not None and late <= format_floor + floor_margin
        fmt = [fn for fn in reward_components(df) if "format" in fn.lower()]
        no_format = bool(fmt) and all(quarter_means(df[f"rewards/{fn}/mean"])[1] <= format_zero_max for fn in fmt)
        if spread < flat_tol or at_floor:
            msg = (f"The reward is flat at about {late:.3f} (smoothed range {spread:.3f} over {n} steps)."
                   if spread < flat_tol else f"The reward ends at {late:.3f}.")  # fmt: skip
            if at_floor:
                msg += (f" That is at or below the format floor ({format_floor}: what a well-formatted reply that "
                        "leaves the ranking unchanged earns): the rankings improve nothing over the initial order.")  # fmt: skip
            if no_format:
                msg += (f" The format rewards ({', '.join(fmt)}) stay near 0: replies are not in the "
                        "<think>/<answer> form; check the template, the prefill and the parser.")  # fmt: skip
            out.append(msg)
    if _has(df, "kl") and (kl := quarter_means(df["kl"])[1]) > kl_max:
        out.append(
            f"KL to the reference is {kl:.3g} late in training (> {kl_max}): the policy is running away; "
            "lower the learning rate or raise beta."
        )
    if _has(df, "completions/mean_length") and df["completions/mean_length"].notna().sum() >= min_steps:
        start, end = quarter_means(df["completions/mean_length"])
        if 0 < start and end < start / length_change:
            out.append(f"Completion length collapsed from ~{start:.0f} to ~{end:.0f} tokens: the model may be "
                       "dropping its reasoning (look for an empty <think> in the traces).")  # fmt: skip
        elif 0 < start and end > start * length_change:
            out.append(f"Completion length drifted up from ~{start:.0f} to ~{end:.0f} tokens: watch the clipped "
                       "ratio and whether the longer reasoning pays off in reward.")  # fmt: skip
    return out


# --- saving -------------------------------------------------------------------------------------


def save_figure(fig, path: str | os.PathLike, manifest: Mapping[str, Any] | None = None, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG and a ``<name>.manifest.json`` sidecar beside it.

    ``manifest`` holds the fields to record (run, model, smoothing...), passed to
    ``manifest.build_manifest("figure", ...)``; a dict that already has a ``kind`` is written as is.
    """
    from rearank_kit.core.files import write_json
    from rearank_kit.core.manifest import build_manifest

    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fields = dict(manifest or {})
    record = fields if "kind" in fields else build_manifest("figure", **fields)
    record = {**record, "figure": path.name}
    write_json(path.with_name(f"{path.stem}.manifest.json"), record)
    return path
