"""What the kit reads from its surroundings: on/off environment variables, the cache folder, the network.

* ``env_flag(name)``: one set of values for every switch (``REARANK_KIT_SMOKE``,
  ``HF_HUB_OFFLINE``...): ``1 true yes on`` / ``0 false no off`` in any case, unset or empty
  for the default; anything else is a KitError rather than a silent "off".
* ``cache_dir()``: ``$REARANK_KIT_CACHE`` (``~`` expanded), default ``~/.cache/rearank-kit``;
  the bundled model goes to ``models/``, downloaded benchmarks to ``benchmarks/``.
* ``unreachable(hosts)``: a TCP probe (through ``$HTTPS_PROXY`` when set) that answers within
  seconds, so that code needing a network fails fast on a machine without one.
* ``library_log_level()``: how much the engines (vLLM, torch, transformers) may print: ``ERROR``
  unless ``REARANK_KIT_VERBOSE`` is on (``WARNING``; ``rearank-kit --verbose`` sets it).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from rearank_kit.core.errors import KitError

TRUE_VALUES = ("1", "true", "yes", "on")
FALSE_VALUES = ("0", "false", "no", "off")
CONNECT_TIMEOUT_S = 3.0
# The checkout the package sits in (its data/, tests/ and .git), one home for "where the kit is".
SOURCE_ROOT = Path(__file__).resolve().parents[2]


# --- flags --------------------------------------------------------------------------------------


def parse_bool(text: str) -> bool | None:
    """True for 1/true/yes/on, False for 0/false/no/off (any case, spaces ignored), else None."""
    value = str(text).strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    return None


def env_flag(name: str, default: bool = False) -> bool:
    """An on/off environment variable; unset or empty gives ``default``."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    value = parse_bool(raw)
    if value is None:
        raise KitError(f"environment variable {name}={raw!r}: expected one of {'/'.join(TRUE_VALUES)} "
                       f"or {'/'.join(FALSE_VALUES)}")  # fmt: skip
    return value


VERBOSE = "REARANK_KIT_VERBOSE"  # on: the engines' warnings are shown (rearank-kit --verbose)


def library_log_level(debug: bool = False) -> str:
    """The log level of vLLM, torch and transformers: ``INFO`` with ``debug``, ``WARNING`` when
    ``$REARANK_KIT_VERBOSE`` is on, else ``ERROR`` (their start-up warnings about thread binding,
    tcmalloc, Triton and deprecations say nothing a user of the kit can act on)."""
    if debug:
        return "INFO"
    return "WARNING" if env_flag(VERBOSE) else "ERROR"


# Python warnings of the engines (deprecations, Triton, thread binding) are hidden at ERROR level;
# transformers and TRL keep their warnings (they are about the user's settings).
ENGINE_MODULES = r"(vllm|torch|triton)(\.|$)"


def quiet_engines(debug: bool = False) -> str:
    """Keep the engines quiet (``library_log_level``), before they are imported: vLLM's log level
    (a value already in the environment wins) and stream (stderr), transformers at WARNING (INFO
    with ``debug``), and, at ERROR, torch's own loggers (``TORCH_LOGS=-all``) and C++ warnings
    (``TORCH_CPP_LOG_LEVEL``: NUMA binding, thread affinity) and the Python warnings of vLLM, torch
    and Triton hidden. The kit's own warnings (a template mismatch, a resumed run) are not touched.
    Called by the CLI and by the vllm backend (so notebooks get it too); returns the level."""
    import warnings

    level = library_log_level(debug)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", level)
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if debug else "warning")
    if level == "ERROR":
        os.environ.setdefault("TORCH_LOGS", "-all")  # read when torch is imported
        os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
        for category in (DeprecationWarning, FutureWarning, UserWarning, RuntimeWarning):
            warnings.filterwarnings("ignore", category=category, module=ENGINE_MODULES)
    return level


def hub_offline() -> bool:
    """Whether the Hugging Face hub libraries were told to stay offline (``HF_HUB_OFFLINE``)."""
    return env_flag("HF_HUB_OFFLINE")


def hub_host() -> str:
    """The Hugging Face hub's host name (``$HF_ENDPOINT`` for a mirror)."""
    return urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


# --- the cache ----------------------------------------------------------------------------------


def cache_dir(*parts: str) -> Path:
    """The kit's cache folder, or a path inside it: ``$REARANK_KIT_CACHE`` or ``~/.cache/rearank-kit``."""
    env = os.environ.get("REARANK_KIT_CACHE", "").strip()
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "rearank-kit"
    return root.joinpath(*parts)


# --- the network --------------------------------------------------------------------------------


def https_proxy() -> tuple[str, int] | None:
    """(host, port) of ``$HTTPS_PROXY``, when one is set."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if not proxy:
        return None
    parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    return (parsed.hostname, parsed.port or 80) if parsed.hostname else None


def _connect_problem(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to host:port opens within ``timeout`` s, else the reason.

    Name resolution runs in a daemon thread so that a hanging resolver cannot stall the caller.
    """
    outcome: list[str | None] = []

    def attempt():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def unreachable(hosts: Sequence[str | tuple[str, int]], timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when one of ``hosts`` (names for port 443, or (host, port) pairs; through the HTTPS
    proxy when one is set) accepts a connection, else what was tried and why each attempt failed."""
    proxy = https_proxy()
    targets = [proxy] if proxy else [(h, 443) if isinstance(h, str) else tuple(h) for h in hosts]
    reasons = []
    for host, port in targets:
        reason = _connect_problem(host, port, timeout)
        if reason is None:
            return None
        reasons.append(f"{host}:{port} ({reason})")
    return "; ".join(reasons)
