"""A model as the kit runs it: its weights and the conventions it was trained with.

A reranker is more than weights. A GRPO run of the kit trains a model to answer one prompt
template, continuing one prefill (``compact``: ``<answer>[``), scored by one parsing mode (strict
or lenient) on sets of one window size. Evaluating it with anything else measures something else.
``resolve_policy`` reads those conventions from wherever they were recorded:

* a training run folder (``rearank-kit train --out``): its ``manifest.json``; the weights are the
  LoRA adapter (``adapter_config.json``) or the full model saved at the end;
* a checkpoint inside one (``RUN/checkpoint-N``): the weights of that step, the run's manifest;
* an exported model (``rearank-kit export``): its ``rearank_kit.json``;
* anything else (a model preset, a local folder, a hub id): the preset's own template, strict
  parsing, no recorded window.

An explicit template wins over the recorded one, with a warning when they differ: the policy for
every template that differs from the model's own.

    from rearank_kit.rank.policy import resolve_policy
    policy = resolve_policy("data/runs/cpu-rank-dl21")
    policy.template, policy.prefill, policy.lenient, policy.window, policy.adapter
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rearank_kit.core.env import hub_host, hub_offline, unreachable
from rearank_kit.core.errors import KitError, TemplateMismatchWarning
from rearank_kit.core.files import read_json
from rearank_kit.rank.models import BUNDLED_NAME, default_template, resolve_device, resolve_model

EXPORT_RECORD = "rearank_kit.json"  # what `rearank-kit export` writes beside the merged weights
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


@dataclass(frozen=True)
class Policy:
    """Where the weights are and how the model expects to be prompted and read."""

    name: str  # what the user gave
    base: str  # the base model: preset name, folder or hub id (the full model when adapter is None)
    adapter: str | None  # LoRA adapter folder to apply on top of ``base``
    template: str  # prompt template name or .toml path
    lenient: bool  # parsing mode of the reward it was trained with (strict: an <answer> block is needed)
    window: int | None  # set size it was trained on (None: not recorded)
    trained: bool  # weights from a kit training run (or an export of one)
    record: str | None = None  # the file the conventions were read from
    template_hash: str | None = None  # the recorded hash, to catch an edited template file
    # "generative" (writes a ranking as text, windows.py) or "scored" (a head on the model's states,
    # scored.py; then ``template`` names its pair prompt and ``base`` the model whose states it reads)
    family: str = "generative"

    @property
    def weights(self) -> str:
        """What a backend loads: the adapter folder (merged into its base on load) or the model."""
        return self.adapter or self.base


def _field(record: dict, name: str, path: Path):
    if name not in record:
        raise KitError(f"{path}: field {name!r} is missing; was this folder written by `rearank-kit train`?")
    return record[name]


def _run_dir_of(folder: Path) -> Path | None:
    """The training run folder ``folder`` is, or is a checkpoint of; None for anything else."""
    if (folder / "manifest.json").is_file():
        return folder
    if _CHECKPOINT.match(folder.name) and (folder.parent / "manifest.json").is_file():
        return folder.parent
    return None


def _weights_in(folder: Path) -> str:
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    if (folder / "config.json").is_file():
        return "model"
    return ""


def _check_adapter_base(adapter: Path, manifest: dict, manifest_path: Path) -> None:
    """The adapter must belong to the run's base model: a LoRA of another model loads silently wrong."""
    config_path = adapter / "adapter_config.json"
    base = read_json(config_path).get("base_model_name_or_path")
    # Both were written on the training machine: the adapter records the base's folder there, the
    # manifest the same folder as model_source.
    recorded = manifest.get("model_source")
    if not base or not recorded:
        return
    if base != recorded and Path(base).name != Path(str(recorded)).name:
        raise KitError(
            f"{config_path}: base_model_name_or_path is {base!r}, but the run's {manifest_path.name} trained "
            f"{recorded!r} (field model_source): this adapter belongs to another base model"
        )


def _from_run(folder: Path, run_dir: Path, name: str) -> Policy:
    manifest_path = run_dir / "manifest.json"
    manifest = read_json(manifest_path)
    if manifest.get("kind") != "train":
        raise KitError(f"{manifest_path}: field 'kind' is {manifest.get('kind')!r}, not 'train': not a training run")
    config = _field(manifest, "config", manifest_path)
    kind = _weights_in(folder)
    if not kind:
        found = sorted(p.name for p in run_dir.iterdir() if _CHECKPOINT.match(p.name))
        hint = f"; use a checkpoint: {run_dir / found[-1]}" if found else ""
        raise KitError(f"{folder}: no weights here (no adapter_config.json nor config.json): the run has not "
                       f"finished{hint}")
    base = str(_field(manifest, "model", manifest_path))
    adapter = None
    if kind == "adapter":
        _check_adapter_base(folder, manifest, manifest_path)
        adapter = str(folder)
    else:
        base = str(folder)
    reward = manifest.get("reward") or {}
    return Policy(
        # config.template is what the run loaded (a bundled name or a .toml path); "template" its name.
        name=name, base=base, adapter=adapter, template=str(config.get("template") or _field(manifest, "template", manifest_path)),
        lenient=bool(reward.get("lenient", config.get("lenient", False))), window=config.get("window"),
        trained=True, record=str(manifest_path), template_hash=manifest.get("template_hash"),
    )


def _from_export(folder: Path, name: str) -> Policy:
    path = folder / EXPORT_RECORD
    record = read_json(path)
    return Policy(
        name=name, base=str(folder), adapter=None, template=str(_field(record, "template", path)),
        lenient=bool(_field(record, "lenient", path)), window=record.get("window"), trained=True,
        record=str(path), template_hash=record.get("template_hash"),
    )


def resolve_policy(model: str | os.PathLike, template: str | None = None, warn: bool = True) -> Policy:
    """The policy behind ``model``; ``template`` overrides the recorded one (warning when it differs)."""
    name = str(model)
    folder = Path(model).expanduser()
    if folder.is_dir() and (folder / "scored_policy.json").is_file():  # before _run_dir_of: a fold has a manifest
        record = read_json(folder / "scored_policy.json")
        return Policy(name=name, base=str(record.get("model")), adapter=None, template=str(record.get("prompt")),
                      lenient=False, window=None, trained=True, record=str(folder / "scored_policy.json"),
                      template_hash=record.get("prompt_hash"), family="scored")  # fmt: skip
    if folder.is_dir() and (run_dir := _run_dir_of(folder)) is not None:
        policy = _from_run(folder, run_dir, name)
    elif folder.is_dir() and (folder / EXPORT_RECORD).is_file():
        policy = _from_export(folder, name)
    elif folder.is_dir() and (folder / "adapter_config.json").is_file():
        raise KitError(f"{folder}: a LoRA adapter without the run's manifest.json (kit training runs write one); "
                       "the template and parsing it was trained with are unknown. Pass the run folder, or "
                       "merge the adapter into a model yourself")
    else:
        policy = Policy(name=name, base=name, adapter=None, template=default_template(name), lenient=False,
                        window=None, trained=False)
    if template is None or template == policy.template:
        return policy
    if warn and policy.trained:
        warnings.warn(
            f"{name} was trained with the {policy.template!r} template; running it with {template!r} measures "
            "another prompt than the one it learned", TemplateMismatchWarning, stacklevel=2,
        )
    return Policy(**{**policy.__dict__, "template": template, "template_hash": None})


def require_generative(policy: Policy, what: str) -> Policy:
    """Refuse a scored policy where only a generative one makes sense (a prompt template, windows,
    generated text), naming what to use instead."""
    if policy.family == "scored":
        raise KitError(f"{policy.name}: a scored policy (a head on the model's states) cannot {what}: it writes no "
                       "text; rerank with it (rearank-kit rerank --model, Reranker) or measure it with "
                       "rearank-kit crossval")
    return policy


def check_template_hash(policy: Policy, template) -> None:
    """Refuse a template file edited since the model was trained with it (same name, other text)."""
    if policy.template_hash and template.name == policy.template and template.hash != policy.template_hash:
        raise KitError(
            f"{policy.record}: the model was trained with template {template.name!r} hash {policy.template_hash} "
            f"(field template_hash), but that template now hashes to {template.hash}: the prompt file changed"
        )


def as_policy(model) -> Policy:
    """``model`` as a Policy: itself when it is one, else ``resolve_policy(model)`` (no warning)."""
    return model if isinstance(model, Policy) else resolve_policy(model, warn=False)


# --- loading the weights ------------------------------------------------------------------------


def _hub_reachable() -> bool:
    return not hub_offline() and unreachable((hub_host(),)) is None


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
    adapter: str | os.PathLike | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) for inference: eval mode, left padding, a pad token set.

    dtype defaults to float32 on CPU (bf16 is slower on CPUs without bf16 units) and bfloat16 on
    CUDA. Hub ids are looked up in the local cache first; when the hub is unreachable a missing
    model fails fast with a KitError saying how to download it. ``adapter``: a LoRA adapter folder,
    merged into the model so that every backend sees an ordinary model. A training run folder or a
    checkpoint inside one may be given as the model: its base and adapter come from its manifest
    (``policy.resolve_policy``).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if adapter is None and Path(name_or_path).expanduser().is_dir():
        policy = resolve_policy(name_or_path, warn=False)
        if policy.adapter is not None or policy.base != str(name_or_path):
            return load_hf_model(policy.base, device, dtype, attn_implementation, adapter=policy.adapter)
    _, source = resolve_model(name_or_path)
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
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    model.to(device)
    model.eval()
    return model, tokenizer


__all__ = ["Policy", "resolve_policy", "require_generative", "load_hf_model", "as_policy", "check_template_hash", "TemplateMismatchWarning", "EXPORT_RECORD"]
