"""environment.yml asks for the same packages, with the same constraints, as pyproject.toml."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def _environment() -> tuple[list[str], list[str], list[str]]:
    """(channels, conda specs, pip lines) of environment.yml.

    A line parser for this file's fixed layout (block lists of plain scalars, one nested
    ``- pip:`` list) rather than a YAML library, which is not a dependency of the package.
    """
    channels, conda, pip = [], [], []
    section = None
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split(" #")[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        top = re.fullmatch(r"(\w+):(.*)", line)
        if top:
            section = top[1]
            continue
        item = re.fullmatch(r"( *)- (.+)", line)
        assert item, f"environment.yml: unexpected line {raw!r}"
        indent, value = len(item[1]), item[2].strip()
        if section == "channels":
            channels.append(value)
        elif section == "dependencies" and value == "pip:":
            section = "pip"
        elif section == "pip" and indent > 2:
            pip.append(value)
        elif section in ("dependencies", "pip"):
            section = "dependencies"
            conda.append(value)
    return channels, conda, pip


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_conda_forge_is_the_channel():
    channels, _, _ = _environment()
    assert channels[0] == "conda-forge" and "defaults" not in channels


def test_same_packages_and_constraints_as_pyproject():
    declared = {r.name: r for r in map(Requirement, _pyproject()["dependencies"])}
    _, conda, pip = _environment()
    conda_specs = {}
    for spec in conda:
        if spec.startswith("python") or spec == "pip":
            continue
        requirement = Requirement(spec)  # conda-forge specs here are written in PEP 508 form
        conda_specs[requirement.name] = requirement.specifier
    pip_specs = {r.name: r.specifier for r in map(Requirement, (line for line in pip if not line.startswith("-")))}
    assert not set(conda_specs) & set(pip_specs), "a package is asked for twice"
    listed = {**conda_specs, **pip_specs}
    assert set(listed) == set(declared)
    for name, specifier in listed.items():
        assert specifier == declared[name].specifier, f"environment.yml asks {name}{specifier}, pyproject {declared[name]}"
    assert set(pip_specs) == {"torch"}, "only torch comes from pip; the scientific stack from conda-forge"


def test_python_and_the_package_itself():
    _, conda, pip = _environment()
    (python,) = [spec for spec in conda if spec.startswith("python")]
    version = python.removeprefix("python").lstrip("=")
    assert SpecifierSet(_pyproject()["requires-python"]).contains(version), f"{python} outside requires-python"
    assert any(re.fullmatch(r"-e \.(\[[\w,]+\])?", line) for line in pip), "the package itself is installed editable with pip"
