"""The top-layer tuning benchmark builds the step it times correctly: the LoRA-wrapped top layers,
fed the cached states of the layers below, give back the model's own states before training (the
script asserts it), and the cost figures follow from the measured step."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_top_layer_tuning_times_a_step_of_the_real_layers(tmp_path):
    out = tmp_path / "tlt.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "top_layer_tuning.py"), "--sets", "2", "--window", "3",
         "--steps", "2", "--threads", "1", "--tuned-layers", "1,2", "--layer", "12", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    one, two = report["runs"]
    assert (one["layers"], two["layers"]) == ("12-12", "11-12")
    assert one["pairs_per_step"] == two["pairs_per_step"] == 6
    # LoRA on seven projections of each tuned layer, plus the head: two layers train twice the adapters
    head = 576 + 1
    assert two["trainable_parameters"] - head == 2 * (one["trainable_parameters"] - head) > 0
    for run in (one, two):
        assert len(run["step_seconds"]) == 2 and run["median_step_seconds"] == run["step_seconds"][1]
        # each figure follows from the rounded one before it, so only the last rounding (0.005) separates them
        assert run["minutes_per_training"] == pytest.approx(run["median_step_seconds"] * 300 / 60, abs=0.006)
        # five folds x nine settings and one final training; one fixed setting: five and one
        assert run["hours_cv_grid"] == pytest.approx(run["minutes_per_training"] * 46 / 60, abs=0.006)
        assert run["hours_cv_one_setting"] == pytest.approx(run["minutes_per_training"] * 6 / 60, abs=0.006)
    assert report["kind"] == "benchmark" and report["script"] == "benchmarks/top_layer_tuning.py"
