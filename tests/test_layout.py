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


def first_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path a -> ... -> a through `graph` (node -> the nodes it imports), or None if there is none."""
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return [*trail[trail.index(target) :], target]
            if target in graph and target not in state and (circle := visit(target, [*trail, target])):
                return circle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (circle := visit(name, [name])):
            return circle
    return None


def test_no_import_circle_inside_the_library():
    known = modules()
    graph = {name: imports_of(path, known) - {name} for name, path in known.items() if name.startswith("vecdial.indexer")}
    circle = first_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def folder_graph(known: dict[str, Path]) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """indexer's folders (a module at its top level is a floor of its own) -> the folders they import,
    and for each arrow the first import that makes it (`module -> module`)."""
    graph: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for name, path in sorted(known.items()):
        if not name.startswith("vecdial.indexer."):
            continue
        source = name.split(".")[2]
        graph.setdefault(source, set())
        for target in sorted(imports_of(path, known)):
            floor = target.split(".")[2] if target.startswith("vecdial.indexer.") else None
            if floor is not None and floor != source:
                graph[source].add(floor)
                why.setdefault((source, floor), f"{name} -> {target}")
    return graph, why


def test_the_library_folders_import_one_way():
    """disk, stores, codecs below; live and jobs above: no two folders of indexer/ reach each other."""
    graph, why = folder_graph(modules())
    circle = first_circle(graph)
    assert circle is None, (
        "folder import circle: "
        + " -> ".join(circle or [])
        + " ("
        + "; ".join(why[arrow] for arrow in zip(circle or [], (circle or [])[1:]))
        + ")"
    )


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
