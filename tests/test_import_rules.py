"""The import rules of docs/architecture.md: every module's imports, read with ``ast``, point down the table.

The table is the one in docs/architecture.md ("What each part may import"); change both together.
Lazy imports inside functions count like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The group of each module, by name prefix (the longest prefix wins; "genre" alone is only the package itself).
GROUPS: dict[str, str] = {
    "genre": "base",  # the package itself: its version
    "genre.allocator": "base",
    "genre.device": "base",
    "genre.kspace": "maths",
    "genre.masks": "maths",
    "genre.series": "maths",
    "genre.matlab_round": "maths",
    "genre.data": "data",
    "genre.models": "models",
    "genre.losses": "models",
    "genre.weights_file": "weights",
    "genre.recon": "recon",
    "genre.evaluation": "evaluation",
    "genre.submission": "submission",
    "genre.pipeline": "pipeline",
    "genre.train": "train",
    "genre.commands": "commands",
    "genre.cli": "commands",
    "genre.__main__": "commands",
    "benchmarks": "benchmarks",
    "predict": "entry point",
}
#: What each group may import besides itself (torch, numpy and the standard library are free).
MAY_IMPORT: dict[str, set[str]] = {
    "base": set(),
    "maths": set(),
    "data": {"maths"},
    "models": {"maths"},
    "weights": {"base", "models"},
    "recon": {"base", "maths", "data", "models", "weights"},
    "evaluation": {"maths", "data"},
    "submission": {"data"},
    "pipeline": {"maths", "data", "recon", "submission"},
    "train": {"base", "maths", "data", "models", "weights", "evaluation"},
    "commands": {"base", "maths", "data", "models", "weights", "recon", "evaluation", "submission", "pipeline", "train"},
    "benchmarks": {"base", "maths", "data", "models", "weights", "recon", "train", "evaluation"},
    "entry point": {"base", "commands"},
}


def _group(module: str) -> str | None:
    """The group of a project module; ``None`` for third-party and standard-library modules.

    ``genre`` itself names only the package's ``__init__``: a module below it that no other
    prefix covers has no group, so a new module must be placed in the table.
    """
    best = None
    for prefix in GROUPS:
        covers = module == prefix or (prefix != "genre" and module.startswith(prefix + "."))
        if covers and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else GROUPS[best]


def _module_name(path: Path) -> str:
    """``genre/train/run.py`` -> ``genre.train.run``; train/ and evaluation/ are read through genre/'s links."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    found = [ROOT / "predict.py"]
    for top in ("genre", "benchmarks"):
        # rglob does not follow links to folders; genre/train and genre/evaluation are walked explicitly.
        found += sorted((ROOT / top).rglob("*.py"))
    found += sorted((ROOT / "genre" / "train").glob("*.py")) + sorted((ROOT / "genre" / "evaluation").glob("*.py"))
    return sorted(set(found))


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import in ``path``, relative ones resolved against ``module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from genre.recon import network` imports the module genre.recon.network, while
            # `from genre import __version__` imports a name of the package genre.
            found += [(node.lineno, _existing(f"{base}.{alias.name}", base)) for alias in node.names]
    return found


def _existing(name: str, base: str) -> str:
    """``name`` when it is a module or package of the project, else ``base`` (``name`` is an attribute of it)."""
    path = ROOT.joinpath(*name.split("."))
    return name if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() else base


def _violations() -> list[str]:
    problems = []
    for path in _sources():
        module = _module_name(path)
        own = _group(module)
        for line, imported in _imports(path, module):
            top = imported.split(".")[0]
            if top in ("train", "evaluation"):
                problems.append(f"{path.relative_to(ROOT)}:{line}: imports {imported}; use genre.{imported} (one copy of each module)")
                continue
            target = _group(imported)
            if target is None or target == own:
                continue
            if target not in MAY_IMPORT[own]:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {own} module {module} imports {imported} ({target})")
    return problems


def test_no_module_imports_against_the_table():
    assert _violations() == []


def test_every_module_belongs_to_a_group():
    assert not [str(p.relative_to(ROOT)) for p in _sources() if _group(_module_name(p)) is None]


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("genre.data.cmrx", "from genre.models.generator import Generator\n", "data module genre.data.cmrx imports genre.models.generator (models)"),
    ("genre.train.run", "def f():\n    from genre.recon import make_reconstructor\n", "train module genre.train.run imports genre.recon (recon)"),
    ("genre.models.generator", "from genre.data import matio\n", "models module genre.models.generator imports genre.data.matio (data)"),
    ("benchmarks.floor", "from genre.commands.model_info import count_flops\n", "benchmarks module benchmarks.floor imports genre.commands.model_info (commands)"),
    ("genre.recon.network", "from . import base\nfrom ..pipeline import predict_tree\n", "recon module genre.recon.network imports genre.pipeline (pipeline)"),
    ("genre.pipeline", "from train.trainer import Trainer\n", "imports train.trainer; use genre.train.trainer"),
])
def test_the_check_catches_upward_imports(tmp_path, monkeypatch, module, source, expected):
    parts = module.split(".")
    path = tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    # The modules the sources name, so that imports resolve to them as they do in the project.
    for name in ("genre/__init__.py", "genre/models/generator.py", "genre/data/matio.py", "genre/recon/__init__.py",
                 "genre/recon/base.py", "genre/pipeline.py", "genre/commands/model_info.py", "train/trainer.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "_sources", lambda: [path])
    (problem,) = _violations()
    assert expected in problem
