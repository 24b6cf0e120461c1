"""Training presets, the batch arithmetic and the pre-flight checks: fast, no model is loaded.

The tokenizer of the bundled model is loaded where prompts are rendered (seconds); TRL is
imported where a ``GRPOConfig`` is built.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from rearank_kit.core.errors import KitError
from rearank_kit.train import presets as train_presets
from rearank_kit.train.callbacks import MetricsLogger, RunMonitor, TrainingWarning
from rearank_kit.train.overrides import apply_overrides, parse_set_args
from rearank_kit.train.preflight import (
    check_batch,
    check_prompt_lengths,
    check_set_size,
    check_template,
    plan,
)
from rearank_kit.train.presets import CPU_FIRSTPICK, CPU_TINY, GPU_SMALL, PAPER, PRESETS, get_preset
from rearank_kit.train.settings import TrainConfig, format_config

# --- the paper's arithmetic ----------------------------------------------------------------------


def test_paper_round_is_128_prompts_x_32_in_one_optimizer_step():
    p = plan(PAPER)
    assert p.processes == 8
    assert p.prompts_per_round == 128
    assert p.completions_per_round == 128 * 32 == 4096
    assert p.completions_per_step == 4 * 8 * 128 == 4096  # per device x GPUs x accumulation: the whole round
    assert p.steps_per_round == 1  # on-policy: one update per batch, as the paper's Eq. 3
    assert p.micro_batches_per_round == 128  # TRL's steps_per_generation on 8 processes
    assert p.rounds == 160 and PAPER.max_steps == 160
    assert "4096 completions per round, 1 optimizer steps of 4096" in p.describe()


def test_paper_other_reading_is_a_set_away():
    """16 optimizer steps a round (verl mini-batches of 8 prompts): the --set values the preset's comment gives."""
    other = apply_overrides(PAPER, parse_set_args(["gradient_accumulation_steps=8", "max_steps=2560"]))
    p = plan(other)
    assert (p.steps_per_round, p.completions_per_step, p.prompts_per_step, p.rounds) == (16, 256, 8, 160)
    source = (Path(train_presets.__file__)).read_text()
    assert "--set gradient_accumulation_steps=8 --set max_steps=2560" in source
    assert "--set loss_type=dapo" in source


def test_paper_settings_stated_and_assumed():
    c = PAPER
    # Stated by the paper
    assert (c.model, c.template, c.window, c.lora_r) == ("Qwen/Qwen2.5-7B-Instruct", "rearank", 20, 0)
    assert (c.num_generations, c.generation_batch_size, c.max_steps) == (32, 4096, 160)
    assert (c.reward_mode, c.lenient, c.rank_reward_floor) == ("normalized", False, None)
    assert (c.loss_type, c.scale_rewards, c.num_iterations) == ("grpo", "group", 1)  # Eq. 3
    assert not c.vllm_importance_sampling_correction and not c.use_bias_correction_kl
    # The kit's assumptions, each marked so in the preset's comments
    assert (c.learning_rate, c.lr_scheduler_type, c.warmup_steps, c.max_grad_norm) == (1e-6, "constant", 0, 1.0)
    assert (c.beta, c.epsilon, c.temperature, c.top_p) == (0.01, 0.2, 1.0, 1.0)
    assert (c.max_prompt_length, c.max_completion_length) == (3072, 2048)
    block = inspect.getsource(train_presets).split("PAPER = TrainConfig(")[1].split("\n)\n")[0]
    for field in ("max_prompt_length", "max_completion_length", "temperature", "learning_rate", "beta", "epsilon"):
        line = next(ln for ln in block.splitlines() if ln.strip().startswith(f"{field}="))
        assert "# assumed" in line, line
    assert c.bf16 and c.gradient_checkpointing and c.use_vllm and c.vllm_mode == "colocate"
    assert c.lora_config() is None  # full fine-tuning


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_passes_its_own_batch_check(name):
    config = get_preset(name)
    p = plan(config)
    assert p.completions_per_round % config.num_generations == 0
    assert p.steps_per_round == int(p.steps_per_round)  # whole optimizer steps per round


def test_cpu_tiny_and_gpu_small():
    assert plan(CPU_TINY).completions_per_step == 4 and plan(CPU_TINY).prompts_per_round == 1
    assert (CPU_TINY.model, CPU_TINY.template, CPU_TINY.window, CPU_TINY.lenient) == ("smollm2-135m", "compact", 5, True)
    assert CPU_TINY.use_cpu and not CPU_TINY.bf16 and CPU_TINY.beta == 0 and CPU_TINY.lora_r == 16
    g = plan(GPU_SMALL)
    assert (g.processes, g.prompts_per_round, g.steps_per_round) == (1, 8, 4)
    assert GPU_SMALL.lora_r > 0 and GPU_SMALL.template == "rearank"


# --- mapping onto TRL ----------------------------------------------------------------------------


def test_to_grpo_config_maps_the_fields(tmp_path):
    args = CPU_TINY.to_grpo_config(str(tmp_path), reward_weights=[0.8, 0.1, 0.1])
    for name in ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
                 "max_completion_length", "temperature", "top_p", "max_steps", "learning_rate", "beta", "epsilon",
                 "loss_type", "max_grad_norm", "gradient_checkpointing", "use_cpu", "bf16", "seed", "save_steps"):
        assert getattr(args, name) == getattr(CPU_TINY, name), name
    assert args.reward_weights == [0.8, 0.1, 0.1]
    assert args.logging_steps == 1 and args.report_to in ([], "none", ["none"])
    assert args.generation_batch_size == 4 and args.steps_per_generation == 1
    assert args.remove_unused_columns is False  # the rewards read the grades columns


def test_paper_to_grpo_config(tmp_path):
    """The GRPOConfig TRL receives for the paper preset: the paper's objective, one update a round."""
    from trl import GRPOConfig

    # bf16 needs a GPU; use_cpu only lets the config be built on this machine.
    args = PAPER.to_grpo_config(str(tmp_path), use_cpu=True)
    assert isinstance(args, GRPOConfig)
    assert args.loss_type == "grpo" and args.scale_rewards == "group"
    assert args.vllm_importance_sampling_correction is False and args.use_bias_correction_kl is False
    assert (args.beta, args.epsilon, args.num_iterations) == (0.01, 0.2, 1)
    assert (args.temperature, args.top_p, args.max_completion_length) == (1.0, 1.0, 2048)
    assert (args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (1e-6, "constant", 0)
    assert args.num_generations == 32 and args.generation_batch_size == 4096 and args.max_steps == 160
    assert args.gradient_accumulation_steps == 128 and args.per_device_train_batch_size == 4
    # TRL derives the micro-batches of a round; on the planned 8 processes that is 128 = one optimizer step.
    assert args.steps_per_generation == 4096 // (4 * args.world_size)
    assert args.steps_per_generation * args.world_size // 8 == args.gradient_accumulation_steps
    assert args.vllm_max_model_length == 3072 + 2048
    assert args.use_vllm and args.vllm_mode == "colocate"


def test_other_presets_keep_or_choose_trls_corrections(tmp_path):
    from trl import GRPOConfig

    defaults = GRPOConfig(str(tmp_path), use_cpu=True)
    assert TrainConfig.vllm_importance_sampling_correction == defaults.vllm_importance_sampling_correction is True
    assert TrainConfig.use_bias_correction_kl == defaults.use_bias_correction_kl is True
    on = dataclasses.replace(CPU_TINY, vllm_importance_sampling_correction=True, use_bias_correction_kl=True)
    args = on.to_grpo_config(str(tmp_path))
    assert args.vllm_importance_sampling_correction and args.use_bias_correction_kl
    assert GPU_SMALL.loss_type == "grpo" and not GPU_SMALL.use_bias_correction_kl  # the paper's objective


def test_lora_config():
    lora = CPU_TINY.lora_config()
    assert lora.r == 16 and lora.lora_alpha == 32 and lora.target_modules == "all-linear"


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_parse_by_field_type():
    c = apply_overrides(CPU_TINY, parse_set_args(["beta=0.01", "lenient=false", "generation_batch_size=8",
                                                   "vllm_max_model_length=none", "template=rankgpt"]))
    assert (c.beta, c.lenient, c.generation_batch_size, c.vllm_max_model_length, c.template) == (
        0.01, False, 8, None, "rankgpt")
    assert apply_overrides(CPU_TINY, {"max_steps": 3}).max_steps == 3  # Python values pass through
    assert "beta" in format_config(c)


@pytest.mark.parametrize("items, message", [
    (["nosuch=1"], "unknown training setting 'nosuch'"),
    (["beta"], "expected key=value"),
    (["max_steps=ten"], "expected int"),
    (["lenient=maybe"], "expected true or false"),
])  # fmt: skip
def test_bad_overrides(items, message):
    with pytest.raises(KitError, match=message):
        apply_overrides(CPU_TINY, parse_set_args(items))


def test_unknown_preset():
    with pytest.raises(KitError, match="presets: cpu-tiny"):
        get_preset("huge")


# --- pre-flight checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("changes, message", [
    # 3 x 1 x 1 = 3 completions per step cannot hold a group of 4
    ({"per_device_train_batch_size": 3}, r"3 x 1 x 1 = 3 is not divisible by num_generations=4"),
    # 4 x 2 = 8 per step is fine, but 4 processes x 2 per device x 1 ... : generation batch 6 % 4 != 0
    ({"generation_batch_size": 6, "per_device_train_batch_size": 2}, "generation_batch_size=6 is not divisible"),
    # 12 is a multiple of 4 but not of the 8 completions of one micro-batch
    ({"generation_batch_size": 12, "per_device_train_batch_size": 8}, "must be a multiple of"),
    ({"num_generations": 1}, "at least 2 completions"),
])  # fmt: skip
def test_check_batch_refuses(changes, message):
    with pytest.raises(KitError, match=message):
        check_batch(dataclasses.replace(CPU_TINY, **changes))


def test_check_batch_refuses_a_different_process_count():
    with pytest.raises(KitError, match="plans 8 process"):
        check_batch(PAPER, launched=2)
    check_batch(dataclasses.replace(PAPER, num_processes=None), launched=2)  # unplanned: whatever is launched


def test_check_set_size_names_sizes_and_the_augment_command():
    check_set_size({5}, CPU_TINY)
    with pytest.raises(KitError) as err:
        check_set_size({20}, CPU_TINY, "runs/aug-w20")
    text = str(err.value)
    assert "sets of 5 passages" in text and "sets of 20" in text and "runs/aug-w20" in text
    assert "rearank-kit augment" in text and "--window 5" in text


def test_check_prompt_lengths_reports_how_many_and_can_drop():
    config = dataclasses.replace(CPU_TINY, max_prompt_length=100)
    with pytest.raises(KitError, match=r"2 of 4 prompts are longer than max_prompt_length=100 tokens \(longest 150\)"):
        check_prompt_lengths([50, 150, 100, 101], config)
    assert check_prompt_lengths([50, 150, 100, 101], dataclasses.replace(config, long_prompts="drop")) == [0, 2]
    with pytest.raises(KitError, match="no prompt fits"):
        check_prompt_lengths([150], dataclasses.replace(config, long_prompts="drop"))


def test_check_template_warns_for_a_template_the_model_does_not_suit():
    """A config names its template, so an unusual pair trains, with the kit's one mismatch warning."""
    from rearank_kit.rank.policy import TemplateMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_template(PAPER)
        check_template(CPU_TINY)
    with pytest.warns(TemplateMismatchWarning, match="does not suit model le723z/Rearank-7B"):
        check_template(dataclasses.replace(PAPER, model="le723z/Rearank-7B", template="compact"))
    with pytest.warns(TemplateMismatchWarning, match="does not suit"):
        check_template(dataclasses.replace(PAPER, template="compact"))


# --- prepare(): data, prompts and checks with the bundled tokenizer (no model) -------------------


@pytest.fixture(scope="module")
def sample_sets(tmp_path_factory, sample_dir):
    from rearank_kit.train.augment import AugmentConfig, run_augment

    out = tmp_path_factory.mktemp("aug") / "w5"
    run_augment(sample_dir, out, AugmentConfig(window=5, samples_per_query=3, seed=0, template="compact"))
    return out


def test_prepare_renders_prefilled_text_prompts(sample_sets):
    from rearank_kit.train.generative import prepare

    p = prepare(CPU_TINY, sample_sets)
    prompt = p.dataset[0]["prompt"]
    assert isinstance(prompt, str) and prompt.endswith("<|im_start|>assistant\n<answer>[")  # chat template + prefill
    assert set(p.dataset.column_names) == {"prompt", "qid", "set_id", "grades", "ideal_grades"}
    assert len(p.dataset) == len(p.prompt_lengths) and p.dropped == 0
    assert "training sets" in p.summary()


def test_prepare_uses_the_chat_format_without_prefill(sample_sets):
    from rearank_kit.train.generative import prepare

    p = prepare(dataclasses.replace(CPU_TINY, template="rankgpt"), sample_sets)
    prompt = p.dataset[0]["prompt"]
    assert isinstance(prompt, list) and prompt[-1]["role"] == "user"


def test_prepare_refuses_wrong_set_size_and_long_prompts(sample_sets):
    from rearank_kit.train.generative import prepare

    with pytest.raises(KitError, match="sets of 20 passages, but the data has sets of 5"):
        prepare(dataclasses.replace(CPU_TINY, window=20), sample_sets)
    with pytest.raises(KitError, match="prompts are longer than max_prompt_length=50"):
        prepare(dataclasses.replace(CPU_TINY, max_prompt_length=50), sample_sets)


def test_rotated_sets_sit_side_by_side_in_every_round(sample_sets, tmp_path):
    from rearank_kit.train.generative import prepare

    config = dataclasses.replace(CPU_FIRSTPICK, template="compact", max_prompt_length=1024, max_steps=2)
    plain = prepare(dataclasses.replace(config, rotate_sets=False), sample_sets).dataset
    rotated = prepare(config, sample_sets).dataset
    assert len(rotated) == 5 * len(plain)
    by_id = {row["set_id"]: row for row in plain}
    for i in range(0, len(rotated), 5):  # one set's five rotations, in a row
        group = [rotated[i + k] for k in range(5)]
        original = by_id[group[0]["set_id"].rsplit("-r", 1)[0]]
        for k, row in enumerate(group):
            assert row["set_id"] == f"{original['set_id']}-r{k}"
            assert row["grades"] == original["grades"][k:] + original["grades"][:k]
            assert row["ideal_grades"] == original["ideal_grades"]
    assert sorted({r["set_id"].rsplit("-r", 1)[0] for r in rotated}) == sorted(by_id)
    # TRL must not shuffle the rotations apart, and a round must hold whole groups of rotations.
    assert config.to_grpo_config(str(tmp_path)).shuffle_dataset is False
    assert CPU_TINY.to_grpo_config(str(tmp_path)).shuffle_dataset is True
    with pytest.raises(KitError, match="a round holds 8 prompts, not a multiple of 5"):
        plan(dataclasses.replace(config, per_device_train_batch_size=64))


def test_cpu_firstpick_is_a_one_token_bandit_on_balanced_batches():
    p = plan(CPU_FIRSTPICK)
    assert (p.prompts_per_round, p.completions_per_step, p.steps_per_round) == (10, 80, 1)
    assert CPU_FIRSTPICK.max_completion_length == 1 and CPU_FIRSTPICK.reward_mode == "difference"
    assert CPU_FIRSTPICK.rotate_sets and CPU_FIRSTPICK.share_prompts and not CPU_FIRSTPICK.gradient_checkpointing


def test_train_refuses_an_existing_run_without_resume(tmp_path, sample_sets):
    from rearank_kit.train.generative import train

    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text("{}")
    with pytest.raises(KitError, match="pass --resume"):
        train(CPU_TINY, sample_sets, tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"config": dataclasses.asdict(CPU_TINY)}))
    with pytest.raises(KitError, match=r"different training settings \(beta: 0.0 -> 0.5\)"):
        train(dataclasses.replace(CPU_TINY, beta=0.5, max_steps=99), sample_sets, tmp_path, resume=True)


def test_cli_show_config_and_dry_run(run_cli, sample_sets):
    shown = run_cli("train", "--preset", "paper", "--show-config")
    assert shown.returncode == 0, shown.stderr
    assert "4096 completions per round, 1 optimizer steps of 4096" in shown.stdout
    assert "loss_type" in shown.stdout and "'grpo'" in shown.stdout
    dry = run_cli("train", "--preset", "cpu-tiny", "--data", sample_sets, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "pre-flight checks passed" in dry.stdout
    bad = run_cli("train", "--preset", "cpu-tiny", "--data", sample_sets, "--dry-run", "--set", "window=20")
    assert bad.returncode == 2 and "rearank-kit augment" in bad.stderr


# --- the silent-failure monitor ------------------------------------------------------------------


def _step(reward=0.5, zero=0.0, clipped=0.0):
    return {"reward": reward, "frac_reward_zero_std": zero, "completions/clipped_ratio": clipped}


@pytest.mark.parametrize("records, expected", [
    # zero spread: warns on the 3rd consecutive step, not before; a good step resets the streak
    ([_step(zero=1.0)] * 2, []),
    ([_step(zero=1.0)] * 3, ["frac_reward_zero_std"]),
    ([_step(zero=1.0), _step(zero=1.0), _step(), _step(zero=1.0)], []),
    # clipped: more than half cut, 2 steps in a row
    ([_step(clipped=0.75)] * 2, ["clipped_ratio = 0.75"]),
    ([_step(clipped=0.5)] * 2, []),  # exactly half is not "most"
    # format floor 0.2 (weights 0.1 + 0.1): 5 steps at or below 0.21
    ([_step(reward=0.2)] * 5, ["format-only level 0.200"]),
    ([_step(reward=0.25)] * 5, []),
    ([{"train_runtime": 3.0}] * 9, []),  # the end-of-run summary is not a step
])  # fmt: skip
def test_run_monitor(records, expected):
    monitor = RunMonitor(format_floor=0.2)
    fired = [w for r in records for w in monitor.check(r)]
    assert len(fired) == len(expected)
    for text, message in zip(expected, fired, strict=True):
        assert text in message


def test_run_monitor_repeats_every_patience_steps():
    monitor = RunMonitor(zero_std_patience=3)
    fired = [bool(monitor.check(_step(zero=1.0))) for _ in range(9)]
    assert fired == [False, False, True, False, False, True, False, False, True]


def test_metrics_logger_writes_records_and_warns(tmp_path):
    path = tmp_path / "metrics.jsonl"
    cb = MetricsLogger(path, RunMonitor(zero_std_patience=1), echo=False)
    state = SimpleNamespace(is_world_process_zero=True, global_step=1)
    with pytest.warns(TrainingWarning, match="step 1: frac_reward_zero_std = 1"):
        cb.on_log(None, state, None, logs={**_step(zero=1.0), "loss": 0.0, "step_time": 2.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the summary, nothing written by other ranks
        cb.on_log(None, SimpleNamespace(is_world_process_zero=True, global_step=1), None, logs={"train_runtime": 5.0})
        cb.on_log(None, SimpleNamespace(is_world_process_zero=False, global_step=2), None, logs=_step())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["step"] == 1 and records[0]["step_time"] == 2.5 and records[0]["peak_rss_mb"] > 0
    assert "nothing is learned" in records[0]["warnings"][0]


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CPU_TINY.beta = 1.0  # type: ignore[misc]
    assert isinstance(CPU_TINY, TrainConfig)
