"""The tree keeps its architecture: one import name, no import circles, small modules, layers."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = {"indexer": "vecdial.indexer", "models": "vecdial.models", "service": "vecdial.service", "vecdial": "vecdial"}


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


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that `path` imports, at any depth of the file (lazy imports count)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        out |= {name for name in names if name in known}
    return out


def test_every_package_directory_is_installed_under_vecdial():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name, path in modules().items() if path.name == "__init__.py"}
    assert packages == listed


def test_no_import_circle_inside_the_library():
    known = modules()
    graph = {name: imports_of(path, known) - {name} for name, path in known.items() if name.startswith("vecdial.indexer")}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(target) :], target]))
            if target in graph and target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_library_never_imports_the_service():
    known = modules()
    for name, path in known.items():
        if name.startswith(("vecdial.indexer", "vecdial.models")):
            assert not any(target.startswith("vecdial.service") for target in imports_of(path, known)), name


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): n for path in modules().values() if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}


def test_no_import_circle_inside_the_benchmarks():
    """bench/ scripts import the bench packages, never the other way round (lazy imports count)."""
    known = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in sorted((ROOT / "bench").rglob("*.py"))
    }
    graph = {name: imports_of(path, known) - {name} for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            assert target not in trail, "import circle: " + " -> ".join([*trail[trail.index(target) :], target])
            if target not in done:
                visit(target, [*trail, target])
        done.add(name)

    for name in sorted(graph):
        visit(name, [name])
