"""The service reaches collections only through the `vecdial` front door, never the array internals."""

import ast
from pathlib import Path

import vecdial.service

SERVICE = Path(vecdial.service.__file__).parent
INTERNALS = ("vecdial.indexer.live", "vecdial.indexer.plan", "vecdial.indexer.disk", "vecdial.indexer.modes", "vecdial.indexer.stores")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth: `from a.b import c` gives a.b and a.b.c."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reaches_inside(module: str) -> bool:
    return any(module == internal or module.startswith(internal + ".") for internal in INTERNALS)


def test_no_service_module_imports_the_collection_internals():
    files = sorted(SERVICE.rglob("*.py"))
    assert len(files) > 15  # the whole package, not an empty glob
    offenders = {str(path.relative_to(SERVICE)): sorted(filter(reaches_inside, imported_modules(path))) for path in files}
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_check_sees_nested_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from vecdial.indexer import live\n    import vecdial.indexer.plan.execute\n", encoding="utf-8")
    assert {m for m in imported_modules(sample) if reaches_inside(m)} == {"vecdial.indexer.live", "vecdial.indexer.plan.execute"}
