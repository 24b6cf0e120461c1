"""Changing a settings dataclass by name: ``--set key=value`` and ``--config FILE.yaml``.

One parser for every training command (``TrainConfig`` of GRPO, ``SFTRunConfig`` of the SFT
baseline): values given as text are converted by the field's type hint, an unknown name is an error
that suggests the close ones, a number out of its range (``settings.TRAIN_RANGES``) is an error
naming it, and a YAML file's other keys go to TRL's own parser. Errors say where the value came
from: ``--set beta=abc``, or ``FILE.yaml: beta``.

A config file may not hold a token (``hub_token``, or any key naming a token, key, secret or
password, ``secrets.is_secret_name``): whatever a config holds is copied into the run's manifest
and the trainer's ``training_args.bin``, and ``--push-to-hub`` uploads the run's record. The hub
token comes from ``HF_TOKEN`` or ``hf auth login``, as everywhere in the Hugging Face ecosystem.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from rearank_kit.core.env import parse_bool
from rearank_kit.core.errors import KitError
from rearank_kit.core.secrets import TOKEN_ADVICE, secret_keys
from rearank_kit.train.settings import TrainConfig


def _parse_value(name: str, text: str, hint: Any, where: str | None = None) -> Any:
    """``text`` as the type ``hint`` says; ``where`` names it in errors (default ``--set NAME=TEXT``)."""
    where = where or f"--set {name}={text}"
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    for kind in (t for t in options if t is not type(None)):
        if kind is bool:
            value = parse_bool(text)
            if value is None:
                raise KitError(f"{where}: expected true or false")
            return value
        try:
            return kind(text)
        except ValueError:
            raise KitError(f"{where}: expected {kind.__name__}" + (f", got {text!r}" if "=" not in where else "")) from None
    raise KitError(f"{where}: cannot parse")  # pragma: no cover


def apply_overrides(config: Any, overrides: dict[str, Any], what: str = "training", source: str | None = None) -> Any:
    """``dataclasses.replace(config, ...)`` with values given as strings (from the CLI) or as Python
    values, each string parsed by the field's type hint and each number checked against the
    config's ``RANGES`` (``TrainConfig``: ``settings.TRAIN_RANGES``); ``config`` is any settings
    dataclass (``TrainConfig``, ``SFTRunConfig``). ``what`` names it in errors ("unknown training
    setting"); ``source`` says where the values come from (a config file; default: ``--set``)."""
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    ranges = getattr(type(config), "RANGES", None) or {}
    changes = {}
    for key, value in overrides.items():
        key = key.strip().replace("-", "_")
        if key not in names:
            close = [n for n in names if key in n or n in key]
            raise KitError((f"{source}: " if source else "") + f"unknown {what} setting {key!r}"
                           + (f" (did you mean {', '.join(sorted(close))}?)" if close else ""))
        where = f"{source}: {key}" if source else None
        changes[key] = _parse_value(key, value, hints[key], where) if isinstance(value, str) else value
        if key in ranges and isinstance(changes[key], int | float) and not isinstance(changes[key], bool):
            ranges[key].check(changes[key], where or f"--set {key}={value}")
    return dataclasses.replace(config, **changes)


def parse_set_args(items: list[str]) -> dict[str, str]:
    """``["beta=0.01", "seed=3"]`` -> ``{"beta": "0.01", "seed": "3"}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise KitError(f"--set {item}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_config_file(path: str | Path, base: TrainConfig) -> TrainConfig:
    """``base`` changed by a YAML file: the kit's fields by name, any other ``GRPOConfig`` field too.

    The file is a mapping. ``preset: NAME`` replaces ``base`` by that preset; keys naming a
    ``TrainConfig`` field change it (as ``--set`` does); every other key must be a ``GRPOConfig``
    field and is parsed by transformers' ``HfArgumentParser`` (TRL's own parser), then kept in
    ``grpo_args``. An unknown key is an error naming the file and the key.
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KitError(f"{path}: not a readable YAML file ({exc})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KitError(f"{path}: expected a mapping of setting: value, got {type(raw).__name__}")
    secrets = secret_keys({str(k): v for k, v in raw.items()})
    if secrets:  # refused before anything is parsed, so that no message can echo its value
        raise KitError(f"{path}: {', '.join(secrets)}: a token has no place in a config file (it would be copied "
                       f"into the run's manifest.json and training_args.bin, which --push-to-hub uploads); remove it: "
                       f"{TOKEN_ADVICE}")  # fmt: skip
    raw = {str(k).replace("-", "_"): v for k, v in raw.items()}
    if "preset" in raw:
        from rearank_kit.train.presets import get_preset

        base = get_preset(str(raw.pop("preset")))
    ours = {f.name for f in dataclasses.fields(TrainConfig)} - {"grpo_args", "preset"}
    # YAML values become the strings --set takes, so that both are parsed and checked one way.
    kit = {k: "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
           for k, v in raw.items() if k in ours}
    rest = {k: v for k, v in raw.items() if k not in ours}
    grpo_args = {**base.grpo_args, **_parse_grpo_fields(rest, path)}
    config = apply_overrides(base, kit, source=str(path))
    return dataclasses.replace(config, grpo_args=grpo_args)


def _parse_grpo_fields(values: dict[str, Any], path: Path) -> dict[str, Any]:
    if not values:
        return {}
    from transformers import HfArgumentParser
    from trl import GRPOConfig

    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise KitError(f"{path}: unknown setting(s) {', '.join(unknown)}: neither a rearank-kit TrainConfig field "
                       "nor a trl.GRPOConfig field")
    import contextlib
    import io
    import json

    # Handed to TRL's parser as command-line words, so that argparse converts and checks each value
    # exactly as `python train.py --top_entropy_quantile 0.2` would. The placeholders only keep
    # GRPOConfig's machine checks (bf16 needs a GPU) out of the way and are not kept.
    words = ["--output_dir", "unused", "--bf16", "false", "--use_cpu", "true"]
    for key, value in values.items():
        if isinstance(value, list):
            words += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            words += [f"--{key}", json.dumps(value)]
        else:
            words += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            (parsed,) = HfArgumentParser(GRPOConfig).parse_args_into_dataclasses(args=words)
    except SystemExit:
        message = errors.getvalue().strip().splitlines()
        raise KitError(f"{path}: {message[-1] if message else 'invalid value'}") from None
    except (ValueError, TypeError) as exc:
        raise KitError(f"{path}: {exc}") from None
    return {k: getattr(parsed, k) for k in values}


