"""environment.yml (conda) and pyproject.toml (pip) describe the same pinned working set."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", _REQ.match(requirement).group(1)).lower()


def _pins(requirements) -> dict[str, str]:
    """name -> version for every `name==version` requirement."""
    pins = {}
    for req in requirements:
        m = _REQ.match(req)
        if m and m.group(3).startswith("==") and "," not in m.group(3):
            pins[_name(req)] = m.group(3)[2:].strip()
    return pins


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def env() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _env_pip(env) -> list[str]:
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(x) for x in dep["pip"]]
    raise AssertionError("environment.yml has no pip section")


def _env_extras(env) -> list[str]:
    editable = [x for x in _env_pip(env) if x.startswith("-e")]
    assert len(editable) == 1, "environment.yml must install the kit itself with `-e .[extras]`"
    m = re.search(r"\[([^\]]*)\]", editable[0])
    return [e.strip() for e in m.group(1).split(",")] if m else []


def test_environment_basics(env, pyproject):
    assert env["name"] == "rearank-kit" and "conda-forge" in env["channels"]
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"] and pyproject["project"]["requires-python"].startswith(">=3.11")
    assert "pip" in env["dependencies"]


def test_environment_installs_known_extras_like_the_makefile(env, pyproject):
    extras = _env_extras(env)
    assert set(extras) <= set(pyproject["project"]["optional-dependencies"])
    make = re.search(r"^EXTRAS \?= (.+)$", (REPO / "Makefile").read_text(), re.M)
    assert make and make.group(1).strip().split(",") == extras


def test_every_environment_pin_matches_pyproject(env, pyproject):
    project = pyproject["project"]
    everything = _pins(project["dependencies"])
    for reqs in project["optional-dependencies"].values():
        everything.update(_pins(reqs))
    for name, version in _pins(_env_pip(env)).items():
        assert name in everything, f"environment.yml pins {name}=={version}, which pyproject.toml does not pin"
        assert everything[name] == version, f"{name}: environment.yml {version}, pyproject.toml {everything[name]}"


def test_every_pyproject_pin_is_in_environment(env, pyproject):
    project = pyproject["project"]
    wanted = _pins(project["dependencies"])
    for extra in _env_extras(env):
        wanted.update(_pins(project["optional-dependencies"][extra]))
    have = _pins(_env_pip(env))
    missing = {n: v for n, v in wanted.items() if have.get(n) != v}
    assert not missing, f"pinned in pyproject.toml but not (or differently) in environment.yml: {missing}"


def test_torch_comes_first(env):
    """As in the Makefile: the torch pin resolves before anything can pull another build."""
    assert _name(_env_pip(env)[0]) == "torch"
