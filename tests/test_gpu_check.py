"""The accelerator check script runs end to end in its tiny CPU mode (the real run needs CUDA)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_tiny_mode_writes_every_figure(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--out", str(out), "--train-steps", "1",
         "--train-modes", "lora", "--markdown"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["inference"]["tiny"]["rows"]
    assert [r["batch"] for r in rows] == [1, 2]
    for r in rows:
        # fixed-length replies: every window generated exactly new_tokens tokens
        assert r["generated_tokens"] == r["batch"] * report["new_tokens"]
        assert r["windows_per_s"] > 0 and r["prefill_tokens_per_s"] > 0
        assert r["prompt_tokens_mean"] > 1000  # 20 passages of 400 characters in the rearank template
    (train,) = report["training"]
    assert train["mode"] == "lora" and train["steps"] == 1 and train["seconds_per_step"] > 0
    assert report["manifest"]["kind"] == "gpu_check"
    assert "| batch | windows/s" in proc.stdout
    # pipelined vs lock-step windows: 3 queries x 2 windows, replies forced to 4-16 tokens by prompt
    piped = report["pipelined"]
    lockstep, pipelined = piped["modes"]["batched"], piped["modes"]["pipelined"]
    assert lockstep["windows"] == pipelined["windows"] == 6 and piped["same_rankings"] is True
    assert lockstep["generated_tokens"] == pipelined["generated_tokens"]  # the same replies, in both modes
    assert 6 * 4 <= pipelined["generated_tokens"] <= 6 * 16 and pipelined["generated_tokens"] != 6 * 16
    assert piped["pipelined_over_lockstep_windows_per_s"] > 0 and "Pipelined vs lock-step" in proc.stdout


def test_bandwidth_bound_arithmetic():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gpu_check import SHAPES, decode_bound

    shape = SHAPES["qwen2.5-7b"]
    bound = decode_bound(n_params=7_615_616_512, batch=1, context=0, shape=shape, bandwidth=4.8e12)
    # 15.2 GB of bf16 weights read per step at 4.8 TB/s: ~315 tokens/s for one sequence
    assert bound["tokens_per_s_weights_only"] == pytest.approx(4.8e12 / (2 * 7_615_616_512))
    with_kv = decode_bound(n_params=7_615_616_512, batch=8, context=2500, shape=shape, bandwidth=4.8e12)
    # KV cache: 2 (K,V) x 28 layers x 4 heads x 128 dims x 2 bytes = 57,344 bytes a token
    expected = 8 / ((2 * 7_615_616_512 + 8 * 2500 * 57_344) / 4.8e12)
    assert with_kv["tokens_per_s_with_kv"] == pytest.approx(expected)
