"""The settings a listwise rerank runs with, and the one place they are resolved and checked.

Every entry point (``rearank-kit rerank``, ``reproduce``, ``demo``, ``Reranker``, ``rerank()``,
``rerank_benchmark``, the faithfulness probes) builds a ``RerankConfig`` with what the user gave,
``None`` for what they did not, and asks ``RerankConfig.for_model(model)`` for the rest, as
RankLLM's reranker owns its window, stride and prompt:

* the template: the one named, else the model's own (``model_template``: its preset's default, or
  what a kit training run or export recorded), with a warning when a named one is not what the
  model was trained or meant for;
* the window: the one named, else the set size a training run recorded, else 20 (the paper's);
* the stride: the one named, else half the window (the paper's 20/10);
* the generation limit: the one named, else 2,048 new tokens for a reasoning template and 128 for an
  answer-only one.

Numbers are checked against ``RANGES`` (one row per field, with the command-line flag that sets it)
before anything is loaded; ``None`` always means "not given", so 0 is an error, never a default.

    from rearank_kit.rank.settings import RerankConfig
    config, template = RerankConfig(top_k=20, window=5).for_model("smollm2-135m")
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from rearank_kit.core.errors import KitError
from rearank_kit.core.prompts import PromptTemplate, load_template

MODES = ("pipelined", "batched", "sequential")  # how windows go to the backend (RerankConfig.mode)
DEFAULT_WINDOW = 20  # the paper's window (Section 4.1), when neither the user nor a training run says
# Reasoning prompts need room for <think>; answer-only prompts need ~5 tokens per identifier.
REASONING_MAX_NEW_TOKENS = 2048
ANSWER_ONLY_MAX_NEW_TOKENS = 128


@dataclass(frozen=True)
class Range:
    """The allowed values of one numeric setting, and the flag a user types to set it."""

    flag: str
    low: float
    high: float = math.inf
    low_open: bool = False  # True: low itself is not allowed (a temperature may be 0, top-p may not)

    def check(self, value: float | None, where: str = "") -> None:
        if value is None:
            return
        ok = (value > self.low if self.low_open else value >= self.low) and value <= self.high
        if not ok or (isinstance(value, float) and math.isnan(value)):
            raise KitError(f"{where or self.flag}: {value!r} is out of range; {self.describe()}")

    def describe(self) -> str:
        low = f"greater than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return f"it must be {low}" + ("" if math.isinf(self.high) else f" and at most {self.high:g}")


# One row per numeric field of RerankConfig: the CLI checks its flags with these rows when it parses
# them (commands/_common.py), the library when a config is resolved.
RANGES: dict[str, Range] = {
    "top_k": Range("--top-k", 1),
    "window": Range("--window", 2),  # one passage has nothing to rank
    "step": Range("--stride", 1),  # and at most the window (checked in resolved)
    "max_new_tokens": Range("--max-new-tokens", 1),
    "temperature": Range("--temperature", 0),
    "top_p": Range("--top-p", 0, 1, low_open=True),
    "batch_size": Range("--batch-size", 1),
    "group_size": Range("--group-size", 1),
}


# --- configuration ------------------------------------------------------------------------------


@dataclass
class RerankConfig:
    top_k: int = 100  # rerank the first-stage top k; the rest keeps its first-stage order below
    window: int | None = None  # passages per model call; None: a training run's recorded window, else 20
    step: int | None = None  # how far the window moves up (the CLI's --stride); None: half the window
    template: str | None = None  # prompt template name or .toml path; None: the model's own
    max_new_tokens: int | None = None  # None: chosen by template.reasoning (2048 or 128)
    temperature: float = 0.0  # 0 = greedy, the paper's evaluation setting
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] | None = None  # extra stop strings (EOS always stops)
    batch_size: int | None = None  # conversations per forward pass; None: default_batch_size(backend)
    # "pipelined" (each query's next window as soon as its reply is parsed), "batched" (lock-step:
    # one call per window position for a group of queries) or "sequential"; None: default_mode.
    mode: str | None = None
    # Queries in flight at once (pipelined) or reranked together (batched); every mode logs each
    # query as soon as its last window is done.
    group_size: int = 32

    # Fields that cannot change a ranking under greedy decoding; a run may resume with other values.
    EXECUTION_ONLY = ("batch_size", "mode", "group_size")

    def check(self) -> RerankConfig:
        """Every number in its range (``RANGES``, errors name the flag), the mode known; self."""
        for name, allowed in RANGES.items():
            allowed.check(getattr(self, name), f"{allowed.flag} ({name})")
        if self.window is not None and self.step is not None and self.step > self.window:
            raise KitError(f"--stride ({self.step}) must not exceed --window ({self.window}): windows would skip passages")
        if self.mode is not None and self.mode not in MODES:
            raise KitError(f"mode must be one of {', '.join(MODES)} (or None: the backend's default), got {self.mode!r}")
        return self

    def resolved(self, template: PromptTemplate | None = None, window: int | None = None) -> RerankConfig:
        """A checked copy with every default filled in: the window (``window``, e.g. a training run's,
        else 20), the stride (half the window) and the generation limit (by ``template``)."""
        self.check()
        template = template or load_template(self.template or "rearank")
        size = self.window if self.window is not None else (window or DEFAULT_WINDOW)
        step = self.step if self.step is not None else max(size // 2, 1)
        tokens = self.max_new_tokens
        if tokens is None:
            tokens = REASONING_MAX_NEW_TOKENS if template.reasoning else ANSWER_ONLY_MAX_NEW_TOKENS
        stop = tuple(self.stop) if self.stop else None
        return replace(self, window=size, step=step, max_new_tokens=tokens, stop=stop,
                       template=self.template or template.name).check()  # fmt: skip

    def for_model(self, model_id: str | None, template: str | PromptTemplate | None = None) -> tuple[RerankConfig, PromptTemplate]:
        """(resolved config, loaded template) for running ``model_id``: the one answer every entry
        point asks for. ``template`` (a loaded one, or a name) overrides ``self.template``."""
        from rearank_kit.rank.policy import resolve_policy

        self.check()  # bad numbers fail before a template or policy is read
        asked = template if template is not None else self.template
        loaded = model_template(model_id, asked)
        recorded = resolve_policy(model_id, warn=False).window if model_id else None
        return replace(self, template=loaded.name).resolved(loaded, window=recorded), loaded

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop) if self.stop else None
        return d


# --- the template a model runs with --------------------------------------------------------------


def model_template(model_id: str | None, template: str | PromptTemplate | None = None) -> PromptTemplate:
    """The template to run ``model_id`` with, loaded: ``template`` when given, else the model's own.

    The model's own comes from ``policy.resolve_policy`` (a preset's default, or what a kit
    training run or export recorded). Naming another one runs it with a warning
    (``TemplateMismatchWarning``): for a trained model (``resolve_policy``) and for a preset it
    does not suit (``models.check_template``, which refuses such a template only when it was not
    named). A template file edited since a model was trained with it is refused.
    """
    from rearank_kit.rank.models import check_template, default_template
    from rearank_kit.rank.policy import check_template_hash, require_generative, resolve_policy

    asked = template.name if isinstance(template, PromptTemplate) else template
    policy = resolve_policy(model_id, asked) if model_id else None  # warns on a mismatch with a trained model
    if policy is not None:
        require_generative(policy, "run with a listwise prompt template")
    name = policy.template if policy else (asked or default_template(""))
    loaded = template if isinstance(template, PromptTemplate) else load_template(name)
    if policy is not None:
        check_template(model_id, loaded.name, explicit=template is not None)
        check_template_hash(policy, loaded)
    return loaded


# --- what a backend runs best with ---------------------------------------------------------------


def default_batch_size(backend: Any) -> int:
    """Conversations per forward pass when the config leaves it open (``batch_size=None``): 1 for
    the hf backend on a CPU (prefill-bound; left-padded batches take a slow masked attention path,
    BENCHMARKS.md "Batching on a CPU"), else 8 (GPUs and vLLM pad nothing)."""
    on_cpu = getattr(getattr(backend, "device", None), "type", None) == "cpu"
    return 1 if getattr(backend, "name", None) == "hf" and on_cpu else 8


def default_mode(backend: Any) -> str:
    """How windows go to ``backend`` when the config leaves it open (``mode=None``): "pipelined"
    for every backend. Under greedy decoding all modes give the same rankings (tested); pipelined
    never makes a window wait for another query's straggler (measured in BENCHMARKS.md, "Against
    the authors' loop")."""
    return "pipelined"


def config_for_backend(config: RerankConfig, backend: Any) -> RerankConfig:
    """``config`` with ``batch_size=None`` and ``mode=None`` replaced by the backend's defaults."""
    return replace(config, batch_size=config.batch_size or default_batch_size(backend),
                   mode=config.mode or default_mode(backend))  # fmt: skip
