"""The learning loop closed on real components: augment -> train -> evaluate-sets -> export.

One real GRPO step of the bundled SmolLM2-135M (TRL, LoRA) gives a run folder; the tests then
use that folder as a model: its template, prefill, parsing mode and window come from its
manifest, held-out sets are reranked and scored (hf, and vLLM with the adapter as a LoRA
request), the evaluation resumes, bad inputs are refused before anything is written, and the run
is exported as a merged model with a model card.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TRAIN = ["max_completion_length=12", "temperature=1.0", "torch_threads=1", "seed=0", "num_generations=4",
         "per_device_train_batch_size=4", "lora_top_layers=4", "gradient_checkpointing=false"]  # fmt: skip
SET_FIELDS = {"set_id", "qid", "docids", "grades", "ideal_grades", "completion", "order", "rank_reward",
              "ndcg10_initial", "ndcg10_reranked"}  # fmt: skip


@pytest.fixture(scope="module")
def aug(tmp_path_factory, sample_dir) -> Path:
    """Window-5 sets of the sample with a three-way split by query."""
    from rearank_kit.train.augment import AugmentConfig, run_augment

    out = tmp_path_factory.mktemp("loop") / "aug"
    run_augment(sample_dir, out, AugmentConfig(window=5, samples_per_query=4, seed=0, template="compact",
                                               order="random", test_fraction=0.2, validation_fraction=0.2))
    return out


@pytest.fixture(scope="module")
def trackio_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trackio")
    os.environ["TRACKIO_DIR"] = str(folder)  # read when trackio is first imported, during training
    return folder


@pytest.fixture(scope="module")
def run(aug, tmp_path_factory, trackio_dir) -> Path:
    """One GRPO step, shared prompts on, logged to TensorBoard and trackio (both offline)."""
    from rearank_kit.cli import main

    out = tmp_path_factory.mktemp("loop") / "grpo"
    args = ["train", "--preset", "cpu-tiny", "--data", str(aug), "--out", str(out), "--steps", "1",
            "--save-steps", "1", "--no-progress", "--report-to", "tensorboard,trackio", "--project", "loop-test",
            *[a for s in [*TRAIN, "share_prompts=true"] for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    return out


def test_trackers_log_offline(run, trackio_dir):
    assert list(run.rglob("events.out.tfevents.*")), "no TensorBoard event file under the run folder"
    # trackio reads TRACKIO_DIR once, when first imported; an earlier import in this session keeps
    # its default folder, so look where it actually writes.
    from trackio.utils import TRACKIO_DIR

    written = [p for folder in {Path(TRACKIO_DIR), trackio_dir} for p in folder.glob("loop-test*") if p.is_file()]
    assert written, f"trackio wrote nothing for project loop-test in {TRACKIO_DIR}"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["report_to"] == "tensorboard,trackio" and manifest["config"]["share_prompts"] is True


def test_a_yaml_config_sets_kit_and_trl_fields_through_trls_parser(tmp_path):
    from rearank_kit.core.errors import KitError
    from rearank_kit.train.overrides import load_config_file
    from rearank_kit.train.presets import CPU_TINY

    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 3.0e-5\nshare_prompts: true\nrank_reward_floor: -1\n"
                    "top_entropy_quantile: 0.2\nrepetition_penalty: 1.1\n")
    config = load_config_file(path, CPU_TINY)
    assert (config.learning_rate, config.share_prompts, config.rank_reward_floor) == (3e-5, True, -1.0)
    assert config.grpo_args == {"top_entropy_quantile": 0.2, "repetition_penalty": 1.1}
    args = config.to_grpo_config(str(tmp_path / "out"))
    assert (args.top_entropy_quantile, args.repetition_penalty, args.learning_rate) == (0.2, 1.1, 3e-5)
    path.write_text("learning_rat: 1e-4\n")
    with pytest.raises(KitError, match=r"train.yaml: unknown setting\(s\) learning_rat"):
        load_config_file(path, CPU_TINY)
    path.write_text("top_entropy_quantile: lots\n")
    with pytest.raises(KitError, match="train.yaml"):
        load_config_file(path, CPU_TINY)


def test_push_to_hub_uploads_the_export_with_its_card(run, tmp_path):
    """Everything up to the upload runs for real; only the hub calls are replaced."""
    from rearank_kit.core.errors import KitError
    from rearank_kit.train.export import check_repo_id, push_to_hub

    class FakeHub:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            card = (Path(folder_path) / "README.md").read_text()
            self.calls.append(("upload_folder", repo_id, files, card))

    hub = FakeHub()
    url = push_to_hub(run, "someone/smol-rearank", private=True, api=hub)
    assert url == "https://huggingface.co/someone/smol-rearank"
    (_, repo, kwargs), (_, repo2, files, card) = hub.calls
    assert repo == repo2 == "someone/smol-rearank" and kwargs["private"] is True
    assert {"README.md", "rearank_kit.json", "config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert card.startswith("---") and "# someone/smol-rearank" in card and "compact" in card
    for bad in ("no-owner", "a/b/c", "someone/bad name"):
        with pytest.raises(KitError, match="push-to-hub"):
            check_repo_id(bad)


def _sets(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "sets.jsonl").read_text().splitlines()]


def test_completions_log_names_each_set(run):
    """The trainer override (train.py) still sees TRL's logs: every completion carries its set."""
    lines = [json.loads(line) for line in (run / "completions.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(r["qid"] and r["set_id"].startswith(r["qid"]) for r in lines)


def test_a_run_folder_and_its_checkpoint_are_policies(run):
    from rearank_kit.rank.policy import resolve_policy

    for folder in (run, run / "checkpoint-1"):
        policy = resolve_policy(folder)
        assert (policy.template, policy.lenient, policy.window, policy.trained) == ("compact", True, 5, True)
        assert policy.adapter == str(folder) and policy.base == "smollm2-135m"
    with pytest.warns(UserWarning, match="trained with the 'compact' template"):
        assert resolve_policy(run, template="rankgpt").template == "rankgpt"


def test_evaluate_sets_scores_held_out_sets_and_resumes(run, aug, tmp_path, sample_dir):
    from rearank_kit.cli import main

    base, trained = tmp_path / "base", tmp_path / "trained"
    common = ["--sets", str(aug), "--split", "heldout", "--sets-per-query", "2", "--no-progress"]
    assert main(["evaluate-sets", "--model", "smollm2-135m", "--lenient", "--out", str(base), *common]) == 0
    assert main(["evaluate-sets", "--model", str(run), "--out", str(trained), "--against", str(base), *common]) == 0
    records = _sets(trained)
    test_qids = json.loads((aug / "summary.json").read_text())["test_qids"]
    assert records and {r["qid"] for r in records} <= set(test_qids)
    assert all(SET_FIELDS <= set(r) and r["completion"].startswith("<answer>[") for r in records)
    assert all(sorted(r["order"]) == list(range(5)) for r in records)
    # Identifiers and grades only: no passage or query text beside the model's own reply.
    passages = [json.loads(line)["text"] for line in (sample_dir / "passages.jsonl").read_text().splitlines()]
    without_replies = json.dumps([{k: v for k, v in r.items() if k != "completion"} for r in records])
    assert not any(p[:40] in without_replies for p in passages) and not any("texts" in r or "query" in r for r in records)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["lenient"] is True and metrics["template"] == "compact"
    assert metrics["sets"] == len(records) and "vs_initial_order" in metrics
    assert metrics["comparison"]["rank_reward"]["sets"] == len(records)
    gain = sum(r["ndcg10_reranked"] - r["ndcg10_initial"] for r in records) / len(records)
    assert metrics["vs_initial_order"]["mean"] == pytest.approx(gain)
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["kind"] == "evaluate-sets" and manifest["template_hash"] and manifest["adapter"] == str(run)

    # Interrupted after the first set: the same command finishes the others and gives the same file.
    whole = (trained / "sets.jsonl").read_text()
    (trained / "sets.jsonl").write_text(whole.splitlines(keepends=True)[0])
    assert main(["evaluate-sets", "--model", str(run), "--out", str(trained), *common]) == 0
    assert (trained / "sets.jsonl").read_text() == whole


def test_bad_inputs_are_named_and_nothing_is_written(run, aug, tmp_path):
    from rearank_kit.core.errors import KitError
    from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets
    from rearank_kit.rank.policy import resolve_policy
    from rearank_kit.train.augment import AugmentConfig, run_augment

    no_manifest = tmp_path / "no-manifest"
    shutil.copytree(run, no_manifest, ignore=shutil.ignore_patterns("manifest.json", "checkpoint-*"))
    with pytest.raises(KitError, match="adapter without the run's manifest.json"):
        resolve_policy(no_manifest)

    other_base = tmp_path / "other-base"
    shutil.copytree(run, other_base)
    config_path = other_base / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "/models/Qwen2.5-7B-Instruct"
    config_path.write_text(json.dumps(config))
    with pytest.raises(KitError, match="base_model_name_or_path.*another base model"):
        resolve_policy(other_base)

    wide = tmp_path / "aug-w4"
    run_augment(Path(json.loads((aug / "summary.json").read_text())["data_path"]), wide,
                AugmentConfig(window=4, samples_per_query=2, seed=0, template="compact", test_fraction=0.2))
    out = tmp_path / "eval-w4"
    with pytest.raises(KitError, match=r"sets of 4 passages \(field docids\).*field config.window"):
        evaluate_sets(run, wide, out, SetEvalConfig(split="test"), progress=False)
    assert not out.exists()


def test_export_writes_a_merged_model_with_a_card(run, tmp_path):
    import torch

    from rearank_kit.cli import main
    from rearank_kit.rank.policy import load_hf_model, resolve_policy

    out = tmp_path / "merged"
    assert main(["export", str(run), str(out)]) == 0
    card = (out / "README.md").read_text()
    record = json.loads((out / "rearank_kit.json").read_text())
    assert "compact" in card and record["template_hash"] in card and "[0.8, 0.1, 0.1]" in card
    assert record["manifest"]["data_fingerprint"] in card
    policy = resolve_policy(out)
    assert (policy.template, policy.lenient, policy.window, policy.adapter) == ("compact", True, 5, None)
    exported, tok = load_hf_model(out)
    merged, _ = load_hf_model(run)
    ids = tok("which passage answers the query", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.allclose(exported(ids).logits, merged(ids).logits, atol=1e-5)
    with pytest.raises(Exception, match="not an empty folder"):
        main(["--debug", "export", str(run), str(out)])


_VLLM_CHILD = """
import json, sys
from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets
sets = sys.argv[1]
for model, out in zip(sys.argv[2::2], sys.argv[3::2]):
    evaluate_sets(model, sets, out, SetEvalConfig(split="test", per_query=2, batch_size=8), backend="vllm",
                  progress=False, max_model_len=1024)
"""


@pytest.mark.vllm
@pytest.mark.extended  # about 2 minutes: two vLLM engines on the CPU
def test_vllm_runs_the_adapter_as_a_lora_request_and_the_export_like_hf(run, aug, tmp_path):
    """Both vLLM paths for a trained run: its adapter as a LoRA request, and its merged export."""
    pytest.importorskip("vllm")
    from rearank_kit.evaluation.heldout import SetEvalConfig, evaluate_sets
    from rearank_kit.train.export import export_run

    merged = export_run(run, tmp_path / "merged")
    evaluate_sets(run, aug, tmp_path / "hf", SetEvalConfig(split="test", per_query=2), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(aug), str(run), str(tmp_path / "vllm-lora"), str(merged), str(tmp_path / "vllm-merged")]
    proc = subprocess.run([sys.executable, "-c", _VLLM_CHILD, *args], capture_output=True, text=True, timeout=900,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = _sets(tmp_path / "hf")
    for name in ("vllm-lora", "vllm-merged"):
        other = _sets(tmp_path / name)
        assert [r["set_id"] for r in hf] == [r["set_id"] for r in other]
        # Greedy decoding of the same weights: the same rankings (fp32 on CPU, token for token).
        assert [r["order"] for r in hf] == [r["order"] for r in other], name
        assert json.loads((tmp_path / name / "manifest.json").read_text())["backend"] == "vllm"


def test_first_pick_probabilities_of_a_trained_run(run, aug):
    from rearank_kit.analysis.first_pick import first_pick_stats
    from rearank_kit.core.errors import KitError

    stats = first_pick_stats(run, aug, split="test", per_query=2)
    assert stats["sets"] > 0 and stats["template"] == "compact"
    assert sum(stats["position_mass"]) == pytest.approx(1.0, abs=1e-2) and len(stats["position_mass"]) == 5
    assert -3 <= stats["lift"] <= 3 and 0 <= stats["argmax_is_best"] <= 1
    with pytest.raises(KitError, match="not prefilled up to the first identifier"):
        first_pick_stats(run, aug, split="test", per_query=1, template="rankgpt")


def test_the_no_learning_band_brackets_what_the_base_model_would_earn(run, aug, tmp_path):
    from rearank_kit.analysis.first_pick import no_learning_band
    from rearank_kit.core.errors import KitError

    band = no_learning_band("smollm2-135m", run, aug, template="compact", draws=400)
    steps = {json.loads(line)["step"] for line in (run / "completions.jsonl").open()}
    assert [b["step"] for b in band] == sorted(steps)
    for b in band:
        assert -1 <= b["q05"] <= b["q50"] <= b["q95"] <= 1
        assert b["q05"] - 1e-9 <= b["expected"] <= b["q95"] + 1e-9  # the mean of the draws lies inside them
    other = tmp_path / "other"
    other.mkdir()
    (other / "sets.jsonl").write_text((aug / "sets.jsonl").read_text().replace('"split": "train"', '"split": "test"'))
    with pytest.raises(KitError, match="no sets in split 'train'"):
        no_learning_band("smollm2-135m", run, other, template="compact")
