"""Training curves: reading metrics.jsonl / trainer_state.json, smoothing, plots, diagnosis."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rearank_kit.analysis import curves  # noqa: E402
from rearank_kit.core.errors import DataError, KitError  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "metrics_small.jsonl"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def df():
    return curves.load_curves(FIXTURE)


def _write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# --- reading ------------------------------------------------------------------------------------


def test_reads_fixture_by_step(df):
    assert list(df.index) == [1, 2, 3, 4, 5, 6]
    assert df.index.name == "step"
    assert df.loc[4, "reward"] == pytest.approx(0.413)
    assert curves.reward_components(df) == ["rank_reward", "format_think_answer_reward", "format_answer_reward"]
    assert math.isnan(df.loc[3, "entropy"])  # "n/a" junk becomes NaN
    assert math.isnan(df.loc[1, "kl"])  # key missing at step 1
    assert df.loc[3, "warnings"] == ["2 of 16 completions reached max_completion_length"]
    assert df.attrs["torn_tail"] is False


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(FIXTURE.read_text() + '{"step": 7, "reward": 0.6')
    df = curves.load_curves(tmp_path)  # a folder holding metrics.jsonl
    assert list(df.index) == [1, 2, 3, 4, 5, 6]
    assert df.attrs["torn_tail"] is True


def test_malformed_line_in_the_middle_names_file_and_line(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    lines[2] = '{"step": 3, "reward": 0.35,,}'
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{path}:3: invalid JSON"):
        curves.read_metrics_jsonl(path)


def test_non_object_and_missing_step_are_errors(tmp_path):
    path = _write_jsonl(tmp_path / "a.jsonl", [{"step": 1, "reward": 0.1}, [1, 2], {"step": 3}])
    with pytest.raises(DataError, match=r"a.jsonl:2: expected a JSON object"):
        curves.read_metrics_jsonl(path)
    path = _write_jsonl(tmp_path / "b.jsonl", [{"step": 1, "reward": 0.1}, {"reward": 0.2}, {"step": 3}])
    with pytest.raises(DataError, match=r"b.jsonl:2: field 'step'"):
        curves.read_metrics_jsonl(path)


def test_step_logged_twice_keeps_last_values(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", [{"step": 1, "reward": 0.1}, {"step": 2, "reward": 0.2},
                                               {"step": 2, "reward": 0.25, "kl": 0.01}])  # fmt: skip
    df = curves.read_metrics_jsonl(path)
    assert list(df.index) == [1, 2]
    assert df.loc[2, "reward"] == 0.25 and df.loc[2, "kl"] == 0.01


def test_trainer_state_latest_checkpoint(tmp_path):
    def state(steps):
        history = [{"step": s, "reward": s / 10, "completions/mean_length": 100 + s, "epoch": 0.1 * s} for s in steps]
        history.append({"step": steps[-1], "train_runtime": 12.5, "train_loss": 0.01})
        return {"global_step": steps[-1], "log_history": history}

    for name, steps in (("checkpoint-2", [1, 2]), ("checkpoint-10", [1, 2, 5, 10])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text(json.dumps(state(steps)))
    df = curves.load_curves(tmp_path)
    assert list(df.index) == [1, 2, 5, 10]  # checkpoint-10 sorts after checkpoint-2 numerically
    assert df.loc[10, "reward"] == pytest.approx(1.0)
    assert df.loc[10, "train_runtime"] == 12.5
    same = curves.load_curves(tmp_path / "checkpoint-2" / "trainer_state.json")
    assert list(same.index) == [1, 2]


def test_trainer_state_errors(tmp_path):
    bad = tmp_path / "trainer_state.json"
    bad.write_text('{"log_history": [\n{"step": 1,}\n]}')
    with pytest.raises(DataError, match=r"trainer_state.json:2: invalid JSON"):
        curves.read_trainer_state(bad)
    bad.write_text('{"best_metric": null}')
    with pytest.raises(DataError, match="log_history"):
        curves.read_trainer_state(tmp_path)
    with pytest.raises(KitError, match="no such file or folder"):
        curves.load_curves(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KitError, match="no metrics.jsonl"):
        curves.load_curves(tmp_path / "empty")


# --- smoothing ----------------------------------------------------------------------------------


def test_ema_hand_computed():
    # debiased (TensorBoard): s1 = .5*1 -> /.5 = 1; s2 = .25+1 = 1.25 -> /.75; s3 = .625+1.5 -> /.875
    assert curves.ema([1, 2, 3], 0.5).tolist() == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    # classic: starts at the first value
    assert curves.ema([1, 2, 3], 0.5, debias=False).tolist() == pytest.approx([1.0, 1.5, 2.25])
    assert curves.ema([4, 2], 0.0).tolist() == [4.0, 2.0]
    out = curves.ema([1.0, float("nan"), 3.0], 0.5, debias=False).tolist()
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx(2.0)  # NaN does not move it
    with pytest.raises(ValueError):
        curves.ema([1.0], 1.0)


def test_rolling_and_smooth_frame(df):
    assert curves.rolling_mean([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    smoothed = curves.smooth_frame(df, weight=0.5)
    assert smoothed["reward"].tolist() == pytest.approx(curves.ema(df["reward"], 0.5).tolist())
    assert smoothed.loc[3, "warnings"] == df.loc[3, "warnings"]
    rolled = curves.smooth_frame(df, window=3)
    assert rolled.loc[3, "reward"] == pytest.approx((0.185 + 0.261 + 0.338) / 3)


# --- diagnosis ----------------------------------------------------------------------------------


def _dead_run(n=8) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reward": [0.0] * n,
            "reward_std": [0.0] * n,
            "rewards/rank_reward/mean": [0.0] * n,
            "rewards/format_think_answer_reward/mean": [0.0] * n,
            "rewards/format_answer_reward/mean": [0.0] * n,
            "frac_reward_zero_std": [1.0] * n,
            "completions/mean_length": [200.0] * n,
            "completions/clipped_ratio": [0.0] * n,
            "kl": [0.0] * n,
        },
        index=pd.Index(range(1, n + 1), name="step"),
    )


def test_diagnose_healthy_run_is_quiet(df):
    assert curves.diagnose(df) == []


def test_diagnose_flags_zero_spread_and_format_floor():
    findings = curves.diagnose(_dead_run())
    text = " ".join(findings)
    assert any("zero reward spread" in f and "nothing is learned" in f for f in findings)
    assert any("flat" in f and "format floor" in f and "not in the <think>/<answer> form" in f for f in findings)
    assert "truncated" not in text and "KL" not in text


def test_diagnose_format_learned_but_ranking_not():
    run = _dead_run()
    run["frac_reward_zero_std"] = 0.3
    run["rewards/format_think_answer_reward/mean"] = 1.0
    run["rewards/format_answer_reward/mean"] = 1.0
    run["reward"] = [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2, 0.2]  # learns the format, then stalls at 0.1 + 0.1
    findings = curves.diagnose(run)
    assert len(findings) == 1
    assert "ends at 0.200" in findings[0] and "rankings improve nothing" in findings[0]
    assert "not in the <think>" not in findings[0]
    assert curves.diagnose(run, format_floor=None) == []


def test_diagnose_each_failure_pattern():
    run = _dead_run()
    run["frac_reward_zero_std"] = 0.2
    run["reward"] = [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]
    run["rewards/format_think_answer_reward/mean"] = 0.9
    assert curves.diagnose(run) == []
    clipped = run.assign(**{"completions/clipped_ratio": [0.1] * 4 + [0.5] * 4})
    assert any("truncated" in f for f in curves.diagnose(clipped))
    kl = run.assign(kl=[0.01, 0.02, 0.05, 0.1, 0.3, 0.8, 2.0, 5.0])
    assert any("KL" in f and "running away" in f for f in curves.diagnose(kl))
    collapse = run.assign(**{"completions/mean_length": [300, 280, 250, 200, 120, 80, 60, 50]})
    assert any("collapsed" in f for f in curves.diagnose(collapse))
    drift = run.assign(**{"completions/mean_length": [100, 120, 150, 200, 260, 300, 320, 340]})
    assert any("drifted up" in f for f in curves.diagnose(drift))


def test_diagnose_nan_loss_and_empty(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "loss": 0.1}\n{"step": 2, "loss": NaN}\n{"step": 3, "loss": Infinity}\n')
    findings = curves.diagnose(curves.read_metrics_jsonl(path))
    assert any("'loss' is not finite at 2 step(s)" in f for f in findings)
    assert curves.diagnose(pd.DataFrame()) and "No logged steps" in curves.diagnose(pd.DataFrame())[0]


# --- plots --------------------------------------------------------------------------------------


def _lines(fig):
    return {ax.get_title(): len(ax.lines) for ax in fig.axes}


def test_dashboard_single_run_panels_and_lines(df):
    fig = curves.plot_dashboard(df)
    assert len(fig.axes) == 6
    assert _lines(fig) == {
        "Reward (mean ± std)": 1,
        "Reward components": 3,  # rank, format_think_answer, format_answer
        "Completion length": 1,
        "Clipped completions": 1,
        "KL to reference": 1,
        "Groups with zero reward spread": 1,
    }
    assert len(fig.axes[0].collections) == 1  # the ± std band


def test_dashboard_overlays_runs_with_raw_and_smoothed(df):
    other = df.drop(columns=["kl", "warnings"]).assign(reward=df["reward"] / 2)
    fig = curves.plot_dashboard({"rank+format": df, "rank only": other}, smooth=0.6)
    lines = _lines(fig)
    assert lines["Reward (mean ± std)"] == 4  # 2 runs x (raw + smoothed)
    assert lines["Reward components"] == 12  # 2 runs x 3 components x (raw + smoothed)
    assert lines["KL to reference"] == 2  # the second run logged no KL
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["rank+format", "rank only"]
    fig = curves.plot_dashboard({"a": df, "b": other}, smooth=0.6, show_raw=False)
    assert _lines(fig)["Reward (mean ± std)"] == 2


def test_dashboard_panel_without_data_says_so(df):
    fig = curves.plot_dashboard(df.drop(columns=["kl"]))
    kl_ax = [ax for ax in fig.axes if ax.get_title() == "KL to reference"][0]
    assert len(kl_ax.lines) == 0
    assert any("no kl" in t.get_text().lower() for t in kl_ax.texts)


def test_single_panel_plots(df):
    ax = curves.plot_reward(df)
    assert len(ax.lines) == 4 and len(ax.collections) == 1  # reward + 3 components, one band
    ax, twin = curves.plot_length(df)
    assert len(ax.lines) == 1 and len(twin.lines) == 1
    assert len(curves.plot_length(df, clipped=False).lines) == 1
    assert len(curves.plot_kl(df, smooth=0.5).lines) == 2
    assert curves.plot_zero_std(df).get_ylim()[1] == pytest.approx(1.02)


def test_save_figure_writes_png_and_manifest(df, tmp_path):
    fig = curves.plot_dashboard(df)
    path = curves.save_figure(fig, tmp_path / "out" / "curves", {"run": "grpo-smoke", "smooth": 0.0})
    assert path == tmp_path / "out" / "curves.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((tmp_path / "out" / "curves.manifest.json").read_text())
    assert manifest["kind"] == "figure" and manifest["run"] == "grpo-smoke" and manifest["figure"] == "curves.png"
    assert "packages" in manifest and "git_commit" in manifest
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp file left


def test_fixture_copy_roundtrip(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "metrics.jsonl")
    assert curves.load_curves(tmp_path / "metrics.jsonl").equals(curves.load_curves(FIXTURE))
