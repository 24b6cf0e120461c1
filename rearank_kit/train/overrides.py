"""Changing a settings dataclass by name: ``--set key=value`` and ``--config FILE.yaml``.

One parser for every training command (``TrainConfig`` of GRPO, ``SFTRunConfig`` of the SFT
baseline): values given as text are converted by the field's type hint, an unknown name is an error
that suggests the close ones, and a YAML file's other keys go to TRL's own parser.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from rearank_kit.core.env import parse_bool
from rearank_kit.core.errors import KitError
from rearank_kit.train.settings import TrainConfig


def _parse_value(name: str, text: str, hint: Any) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if type(None) in options and text.strip().lower() in ("none", "null", ""):
        return None
    for kind in (t for t in options if t is not type(None)):
        if kind is bool:
            value = parse_bool(text)
            if value is None:
                raise KitError(f"--set {name}={text}: expected true or false")
            return value
        try:
            return kind(text)
        except ValueError:
            raise KitError(f"--set {name}={text}: expected {kind.__name__}") from None
    raise KitError(f"--set {name}={text}: cannot parse")  # pragma: no cover


def apply_overrides(config: Any, overrides: dict[str, Any], what: str = "training") -> Any:
    """``dataclasses.replace(config, ...)`` with values given as strings (from the CLI) or as Python
    values, each string parsed by the field's type hint; ``config`` is any settings dataclass
    (``TrainConfig``, ``SFTRunConfig``). ``what`` names it in errors ("unknown training setting")."""
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, value in overrides.items():
        key = key.strip().replace("-", "_")
        if key not in names:
            close = [n for n in names if key in n or n in key]
            raise KitError(f"unknown {what} setting {key!r}" + (f" (did you mean {', '.join(sorted(close))}?)" if close else ""))
        changes[key] = _parse_value(key, value, hints[key]) if isinstance(value, str) else value
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
    config = apply_overrides(base, kit)
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


