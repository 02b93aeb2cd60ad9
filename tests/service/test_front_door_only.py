"""The service and the benchmarks reach the library only through the `vecdial` front door and its
one explicitly internal module, `vecdial._internal`; never `vecdial.indexer.*` or `vecdial.models.*`."""

import ast
from pathlib import Path

import vecdial._internal
import vecdial.service

SERVICE = Path(vecdial.service.__file__).parent
BENCH = Path(__file__).resolve().parents[2] / "bench"
# What code outside the library may import from the package: the front door, its internal module,
# and (for the benchmarks, which time the server) the service itself.
ALLOWED = ("vecdial", "vecdial._internal", "vecdial.service")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth: `from a.b import c` gives a.b (c is a name or a
    submodule of a.b; both are judged by a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "vecdial":  # `from vecdial import indexer` reaches inside: only public names are the front door
                found.update(f"vecdial.{alias.name}" for alias in node.names if alias.name not in vecdial.__all__)
    return found


def reaches_inside(module: str) -> bool:
    """A module of the package that is not the front door, its internal module or the service."""
    if module != "vecdial" and not module.startswith("vecdial."):
        return False
    return not any(module == allowed or (allowed == "vecdial.service" and module.startswith(allowed + ".")) for allowed in ALLOWED)


def offenders(folder: Path) -> dict[str, list[str]]:
    files = sorted(folder.rglob("*.py"))
    assert len(files) > 15  # the whole folder, not an empty glob
    found = {str(path.relative_to(folder)): sorted(filter(reaches_inside, imported_modules(path))) for path in files}
    return {path: modules for path, modules in found.items() if modules}


def test_no_service_module_imports_library_internals():
    assert offenders(SERVICE) == {}


def test_no_benchmark_imports_library_internals():
    assert offenders(BENCH) == {}


def test_the_check_sees_nested_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from vecdial.indexer import live\n    import vecdial.indexer.plan.execute\n"
        "from vecdial import api, Hits\nfrom vecdial._internal import JobStore\nfrom vecdial.service.app import create_app\n",
        encoding="utf-8",
    )
    assert {m for m in imported_modules(sample) if reaches_inside(m)} == {"vecdial.indexer", "vecdial.indexer.plan.execute", "vecdial.api"}


def test_the_internal_module_lists_each_name_once_for_runtime_and_for_type_checkers():
    """`_WHERE` (what loads at run time) and the TYPE_CHECKING imports (what type checkers see)
    name the same things from the same modules."""
    tree = ast.parse(Path(vecdial._internal.__file__).read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    typed = {
        (alias.asname or alias.name): (node.module, alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    helpers = {"Collection", "Database", "LiveCollection", "RemoteCollection", "RemoteDatabase"}  # for the helpers' signatures
    assert {name: where for name, where in typed.items() if name not in helpers} == vecdial._internal._WHERE


def test_every_internal_name_loads():
    for name in vecdial._internal._WHERE:
        if name != "SparseAutoencoder":  # torch: the `sparse` extra
            assert getattr(vecdial._internal, name) is not None, name
