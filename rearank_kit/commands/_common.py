"""The words the subcommands share: one spelling per concept, with the old spellings kept for one
release (they still work, with a deprecation note on stderr).

| flag | meaning | old spellings |
| --- | --- | --- |
| ``--top-k N`` | candidate depth: the first-stage top N | ``--k`` (retrieve), ``--pool`` (augment) |
| ``--no-progress`` | no progress bar | ``--quiet`` |
| ``--json`` | one JSON object on stdout instead of a table | |
| ``--queries N`` | only the first N queries (a count) | |
| ``--queries-file F`` | a ``qid<TAB>text`` file | ``--queries`` (retrieve) |
| ``--window`` / ``--stride`` | sliding windows: passages per call, how far a window moves | ``--step`` |
| ``--data`` or ``--run`` + ``--passages`` + ``--queries-file`` | the input (``inputs.py``) | |
| ``--device`` | where the hf backend runs: auto, cpu, cuda, cuda:N | |
| ``--engine-arg KEY=VALUE`` | a ``vllm.LLM`` argument (repeatable) | |

``choices`` and help texts come from the code's registries (``backends.BACKENDS``,
``prompts.available_templates``, ``models.PRESETS``), so they cannot drift from what works.
Nothing heavy is imported here: ``rearank-kit --help`` builds every parser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.rank.settings import RANGES, Range

# --- old spellings ------------------------------------------------------------------------------


class _Deprecated(argparse.Action):
    """A hidden old spelling of a flag: stores into the new flag's ``dest`` and says so on stderr."""

    def __init__(self, option_strings, dest, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"rearank-kit: {option_string} is deprecated and goes away in the next release; use {self.new}",
              file=sys.stderr)  # fmt: skip
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def deprecated(p: argparse.ArgumentParser, old: str, new: str, *, dest: str, flag: bool = False, type: Any = None) -> None:
    """Accept ``old`` as a hidden alias of ``new`` (a store-true ``flag``, or a value of ``type``)."""
    if flag:
        p.add_argument(old, dest=dest, action=_Deprecated, new=new, nargs=0, const=True,
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # fmt: skip
    else:
        p.add_argument(old, dest=dest, action=_Deprecated, new=new, type=type, metavar=new.lstrip("-").upper(),
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # fmt: skip


# --- numbers in range -----------------------------------------------------------------------------


def in_range(field: Any, kind: type = int, ranges: dict | None = None) -> Any:
    """argparse ``type`` for the flag of ``field`` in ``settings.RANGES`` (or in ``ranges``, e.g.
    ``train/settings.TRAIN_RANGES``; or a ``settings.Range`` itself): parsed as ``kind`` and
    checked against the field's range when the command line is read, before anything loads."""
    allowed = field if isinstance(field, Range) else (RANGES if ranges is None else ranges)[field]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        try:
            allowed.check(value, "value")
        except KitError:
            raise argparse.ArgumentTypeError(f"{value!r} is out of range; {allowed.describe()}") from None
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# --- shared flags -------------------------------------------------------------------------------


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    deprecated(p, "--quiet", "--no-progress", dest="no_progress", flag=True)


def add_top_k(p: argparse.ArgumentParser, default: int, help: str, old: tuple[str, ...] = ()) -> None:
    p.add_argument("--top-k", type=in_range("top_k"), default=default, help=f"{help} (default: {default})")
    for spelling in old:
        deprecated(p, spelling, "--top-k", dest="top_k", type=in_range("top_k"))


# Flags several commands share, with their ranges in one place.
QUERIES = Range("--queries", 1)
SEED = Range("--seed", 0)
SAMPLES_PER_QUERY = Range("--samples-per-query", 1)


def add_queries(p: argparse.ArgumentParser, help: str = "only the first N queries (smoke runs)") -> None:
    p.add_argument("--queries", type=in_range(QUERIES), metavar="N", help=help)


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def print_run_json(summary: dict[str, Any], out: Path) -> None:
    """A rerank run's metrics.json without the per-query scores (they stay in the file), and its folder."""
    print(json.dumps({**{k: v for k, v in summary.items() if k != "per_query"}, "out": str(out)}, indent=2))


def template_name(value: str) -> str:
    """argparse type of ``--template``: a bundled template's name or an existing .toml file."""
    from rearank_kit.core.prompts import available_templates

    if value in available_templates() or (value.endswith(".toml") and Path(value).is_file()):
        return value
    raise argparse.ArgumentTypeError(f"unknown template {value!r}: use one of {', '.join(available_templates())} "
                                     "or the path of a .toml template file")  # fmt: skip


def add_template(p: argparse.ArgumentParser, default: str | None, help: str) -> None:
    from rearank_kit.core.prompts import available_templates

    names = ", ".join(available_templates())
    p.add_argument("--template", type=template_name, default=default, metavar="NAME|FILE.toml",
                   help=f"{help}; one of {names}, or a .toml file")  # fmt: skip


def add_model(p: argparse.ArgumentParser) -> None:
    from rearank_kit.rank.models import PRESETS

    p.add_argument("--model", default="smollm2-135m",
                   help=f"a preset ({', '.join(PRESETS)}), a local folder, a hub id, or a training run folder / "
                        "checkpoint (its template and window come from its manifest); default: smollm2-135m")  # fmt: skip


def add_windows(p: argparse.ArgumentParser, window_help: str) -> None:
    """``--window`` and ``--stride`` (and the old ``--step``), None when not given: the one owner of
    their defaults is ``settings.RerankConfig.for_model``."""
    p.add_argument("--window", type=in_range("window"), help=window_help)
    p.add_argument("--stride", type=in_range("step"), help="how far the window moves up, bottom to top (default: half "
                   "the window)")  # fmt: skip
    deprecated(p, "--step", "--stride", dest="stride", type=in_range("step"))


# --- input --------------------------------------------------------------------------------------


def add_input(p: argparse.ArgumentParser, qrels_help: str = "TREC qrels of the queries (optional: metrics)") -> None:
    g = p.add_argument_group("input: --data, or your own first stage with --run, --passages and --queries-file")
    g.add_argument("--data", help="benchmark folder, a name (looked up in $REARANK_KIT_DATA, then data/), or with a "
                                  "network an ir_datasets id (e.g. msmarco-passage/trec-dl-2019/judged) or bright/<task>")
    g.add_argument("--run", metavar="RUN.trec", help="a TREC run of your own retriever (qid Q0 docid rank score tag)")
    g.add_argument("--passages", metavar="PASSAGES.jsonl",
                   help='with --run: one {"docid": ..., "text": ...} per line for every docid the run ranks')
    g.add_argument("--queries-file", metavar="QUERIES.tsv", help="with --run: qid<TAB>query text per line")
    g.add_argument("--qrels", metavar="QRELS.txt", help=f"with --run: {qrels_help}")


def load_input(args: argparse.Namespace, top_k: int):
    """(Benchmark, manifest fields) for the input flags of ``add_input``."""
    from rearank_kit.data.inputs import load_input as load

    return load(args.data, run=args.run, passages=args.passages, queries=args.queries_file, qrels=args.qrels,
                top_k=top_k)  # fmt: skip


# --- backends -----------------------------------------------------------------------------------

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
DEFAULT_TIMEOUT_S = 600.0  # the openai SDK's own default per request
TIMEOUT = Range("--timeout", 0, low_open=True)  # seconds per request of the openai backend


def device_name(value: str) -> str:
    if not _DEVICE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not auto, cpu, cuda or cuda:N")
    return value


def add_backend(p: argparse.ArgumentParser, base_url: bool = True) -> None:
    from rearank_kit.rank.backends import BACKENDS

    p.add_argument("--backend", default="hf", choices=BACKENDS, help="inference backend (default: hf)")
    p.add_argument("--device", type=device_name, default="auto",
                   help="hf backend: auto (the GPU when one is visible; default), cpu, cuda or cuda:N")  # fmt: skip
    p.add_argument("--engine-arg", dest="engine_args", action="append", default=[], metavar="KEY=VALUE",
                   help="vllm backend: an argument of vllm.LLM, e.g. max_model_len=8192, "
                        "gpu_memory_utilization=0.8, tensor_parallel_size=2 (repeatable; VALUE is read as JSON "
                        "when it parses, else as text)")  # fmt: skip
    if base_url:
        p.add_argument("--base-url", help="openai backend: the server's URL (e.g. http://localhost:8000/v1); put "
                       "a key in OPENAI_API_KEY, not in the URL")  # fmt: skip
        p.add_argument("--timeout", type=in_range(TIMEOUT, float), metavar="SECONDS",
                       help=f"openai backend: seconds one request may take before it is retried (default: "
                            f"{DEFAULT_TIMEOUT_S:g}); a server that does not answer at all is found within seconds, "
                            "before anything is read or written")  # fmt: skip


def parse_engine_args(items: list[str]) -> dict[str, Any]:
    """``["max_model_len=8192", "dtype=bfloat16"]`` -> ``{"max_model_len": 8192, "dtype": "bfloat16"}``;
    ``max-model-len`` (vLLM's CLI spelling) is ``max_model_len``."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise KitError(f"--engine-arg {item!r}: expected KEY=VALUE, e.g. --engine-arg max_model_len=8192")
        try:
            parsed[key] = json.loads(text)
        except ValueError:
            parsed[key] = text
    return parsed


def backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The backend's keyword arguments from ``--device``, ``--engine-arg`` and ``--base-url``, each
    checked (the device exists, vLLM knows the argument) before any model is loaded."""
    backend, kwargs = args.backend, {}
    engine = parse_engine_args(args.engine_args)
    if engine and backend != "vllm":
        raise KitError(f"--engine-arg is for the vllm backend, not {backend}")
    if args.device != "auto" and backend != "hf":
        raise KitError(f"--device is for the hf backend; the {backend} backend places the model itself"
                       + (" (--engine-arg tensor_parallel_size=N ...)" if backend == "vllm" else ""))
    base_url = getattr(args, "base_url", None)
    timeout = getattr(args, "timeout", None)
    if backend == "openai":
        if not base_url:
            raise KitError("the openai backend needs --base-url (e.g. http://localhost:8000/v1)")
        from rearank_kit.rank.backends.openai import check_server

        check_server(base_url)  # a dead server: said now, before the data is read or a folder written
        return {"base_url": base_url, "timeout": timeout if timeout is not None else DEFAULT_TIMEOUT_S}
    if base_url:
        raise KitError(f"--base-url is for the openai backend, not {backend}")
    if timeout is not None:
        raise KitError(f"--timeout is for the openai backend, not {backend}")
    if backend == "hf":
        if args.device != "auto":
            check_device(args.device)
        kwargs["device"] = args.device
    if engine:
        from rearank_kit.rank.backends.vllm import check_engine_args

        check_engine_args(engine, flag="--engine-arg")
        kwargs.update(engine)
    return kwargs


def check_device(device: str) -> None:
    """``--device`` names a device this machine has (``models.resolve_device``), else a KitError."""
    from rearank_kit.rank.models import resolve_device

    try:
        resolve_device(device)
    except KitError as exc:
        raise KitError(f"--device {device}: {exc}") from None
    if device.startswith("cuda:"):  # resolve_device checks that a GPU exists, not that this one does
        import torch

        count = torch.cuda.device_count()
        if int(device.split(":")[1]) >= count:
            raise KitError(f"--device {device}: this machine has {count} CUDA GPU(s), numbered from 0 "
                           f"(cuda:0 to cuda:{count - 1})")  # fmt: skip


# --- output folders -------------------------------------------------------------------------------


def check_out_folder(out: str | Path, kind: str, parts: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> None:
    """Before anything loads: ``--out`` is new, empty or an earlier ``kind`` output to resume
    (``files.check_run_folder``: a folder of someone else's files is refused, untouched), and the
    kit can write there (``files.check_writable``)."""
    from rearank_kit.core.files import check_run_folder, check_writable

    check_run_folder(out, kind, label="--out ", parts=parts, names=names)
    check_writable(out, label="--out ")


# --- training commands ----------------------------------------------------------------------------


def flag_overrides(args: argparse.Namespace, items: list[str], flags: dict[str, str]) -> dict[str, Any]:
    """The ``--set KEY=VALUE`` items, then the named flags (``{flag: field}``) given on the command
    line, which win over them."""
    from rearank_kit.train.overrides import parse_set_args

    overrides: dict[str, Any] = parse_set_args(items)
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    return overrides


def launch_main(command: str, argv: list[str] | None = None) -> int:
    """``python -m rearank_kit.commands.<command>`` (what ``accelerate launch -m`` runs): the same
    as ``rearank-kit <command>``."""
    from rearank_kit.cli import main as cli_main

    return cli_main([command, *(sys.argv[1:] if argv is None else argv)])
