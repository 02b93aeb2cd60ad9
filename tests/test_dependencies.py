"""Every third-party import is a declared dependency, and the core path needs no extra.

`pip install vecdial` (no extras) must be able to search, build from vectors and serve.
These checks read the sources' import statements (ast), so a dependency that only
arrived through another package (threadpoolctl through scikit-learn, once) fails here
before it fails on a user's machine. `scripts/core_install_smoke.sh` runs the same
promise for real in a fresh venv.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache, lru_cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = {"indexer": "vecdial.indexer", "models": "vecdial.models", "service": "vecdial.service", "vecdial": "vecdial"}

# What a core install runs: the front door, the command line and the HTTP app.
CORE_ENTRY_POINTS = ("vecdial", "vecdial.service.cli", "vecdial.service.app", "vecdial.service.server")
# Import names whose distribution is named otherwise, for when the distribution is not installed here.
KNOWN_DISTRIBUTIONS = {"faiss": "faiss-cpu", "sklearn": "scikit-learn", "yaml": "pyyaml"}


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    found = {}
    for room, package in ROOMS.items():
        for path in sorted((ROOT / room).rglob("*.py")):
            parts = list(path.relative_to(ROOT / room).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0])


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(core distributions, extra -> its distributions), normalized, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    extras = {extra: {_requirement_name(r) for r in reqs} for extra, reqs in project["optional-dependencies"].items()}
    return core, extras


@cache
def distribution_of(top_level: str) -> str:
    """The distribution providing import name `top_level` (installed metadata first)."""
    found = _installed().get(top_level)
    return _normalize(found[0] if found else KNOWN_DISTRIBUTIONS.get(top_level, top_level))


@lru_cache(maxsize=1)
def _installed() -> dict[str, list[str]]:
    return packages_distributions()


class Import:
    """One import statement: what it names, and whether it runs when its module is imported."""

    def __init__(self, node: ast.Import | ast.ImportFrom, parents: dict[ast.AST, ast.AST], package: str) -> None:
        if isinstance(node, ast.Import):
            self.names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *([base] if base else [])])
            self.names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        self.lazy = False  # inside a function: runs only when called
        self.guarded = False  # inside `try: ... except ImportError`
        self.type_checking = False
        self.line = node.lineno
        child: ast.AST = node
        parent = parents.get(node)
        while parent is not None:
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.lazy = True
            if isinstance(parent, ast.Try) and child in parent.body and _catches_import_error(parent):
                self.guarded = True
            if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
                self.type_checking = True
            child, parent = parent, parents.get(parent)

    def third_party(self) -> set[str]:
        tops = {name.split(".")[0] for name in self.names if name}
        return {top for top in tops if top not in sys.stdlib_module_names and top not in {"vecdial", "__future__"}}


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        caught = ast.unparse(handler.type) if handler.type is not None else "BaseException"
        if any(name in caught for name in ("ImportError", "ModuleNotFoundError", "Exception")):
            return True
    return False


@cache
def imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return [Import(node, parents, package) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


@cache
def eager_closure(*start: str) -> set[str]:
    """The package modules `start` (default: the core entry points) import when imported (not lazily)."""
    known = modules()
    seen: set[str] = set()
    todo = list(start or CORE_ENTRY_POINTS)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imp in imports(name, known[name]):
            if imp.lazy or imp.type_checking:
                continue
            for target in imp.names:
                # importing a.b.c runs a/__init__, a/b/__init__ too
                parts = target.split(".")
                todo += [prefix for i in range(1, len(parts) + 1) if (prefix := ".".join(parts[:i])) in known]
    return seen


def test_every_third_party_import_is_a_declared_dependency():
    core, extras = declared()
    everything = core.union(*extras.values())
    undeclared = {
        f"{name}:{imp.line} imports {top}"
        for name, path in modules().items()
        for imp in imports(name, path)
        for top in imp.third_party()
        if distribution_of(top) not in everything
    }
    assert sorted(undeclared) == []


def test_what_a_core_entry_point_imports_on_import_is_a_core_dependency():
    core, _ = declared()
    known = modules()
    needs_extra = {
        f"{name}:{imp.line} imports {top} ({distribution_of(top)})"
        for name in eager_closure()
        for imp in imports(name, known[name])
        if not (imp.lazy or imp.type_checking or imp.guarded)
        for top in imp.third_party()
        if distribution_of(top) not in core
    }
    assert sorted(needs_extra) == []


def extras_needed(module: str) -> set[str]:
    """Non-core distributions that importing package module `module` imports unguarded."""
    core, _ = declared()
    known = modules()
    return {
        distribution_of(top)
        for name in eager_closure(module)
        for imp in imports(name, known[name])
        if not (imp.lazy or imp.type_checking or imp.guarded)
        for top in imp.third_party()
    } - core


def test_a_lazy_import_of_an_extra_on_the_core_path_says_which_extra_to_install():
    """Inside the core modules, an extra's package (or a module of ours that needs one) is
    imported in `try/except ImportError` whose handler names the extra, never bare: a bare
    import fails with a ModuleNotFoundError that does not say what to install."""
    core, _ = declared()
    known = modules()
    bare = set()
    for name in eager_closure():
        for imp in imports(name, known[name]):
            if not imp.lazy or imp.guarded or imp.type_checking:
                continue
            bare |= {f"{name}:{imp.line} imports {top}" for top in imp.third_party() if distribution_of(top) not in core}
            bare |= {
                f"{name}:{imp.line} imports {target} (needs {', '.join(sorted(needs))})"
                for target in imp.names
                if target in known and (needs := extras_needed(target))
            }
    assert sorted(bare) == []
