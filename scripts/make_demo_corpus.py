"""Build the shipped demo corpus from the docstrings of CPython's standard library.

Why docstrings: they are real, redistributable (PSF License) text with a natural
query -> document pairing. A docstring's summary sentence is the query and the rest
of the docstring (prefixed with the qualified name) is its one relevant document;
every other document is a distractor. Modules, public functions, classes and the
methods a class defines itself are all used. That lets us measure nDCG@10 / MRR@10, not
only agreement with exact search.

Run once with the Python whose stdlib you want (the shipped data came from 3.11):

    .venv/bin/python scripts/make_demo_corpus.py

Output is deterministic for a given Python build: modules and members are walked in
sorted order, the query sample uses a fixed seed and gzip headers carry no mtime.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import inspect
import io
import json
import pkgutil
import random
import re
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

OUT_DIR = Path(__file__).resolve().parent.parent / "indexer" / "io" / "demo_data"
SEED = 20240611
N_QUERIES = 1000
MIN_BODY_CHARS = 60
MAX_DOC_CHARS = 700
MIN_SUMMARY_WORDS = 4
MAX_SUMMARY_CHARS = 200

# Excluded for side effects on import (this, antigravity), GUI/tooling we do not want
# (idlelib, tkinter, turtle*), deprecated trees (lib2to3, distutils: the latter is
# shadowed by setuptools in venvs, so its text would depend on the install), bootstrap
# wheels (ensurepip), data-only modules (pydoc_data), test suites and test extensions.
EXCLUDED_TOP_LEVEL = frozenset(
    {
        "antigravity",
        "distutils",
        "ensurepip",
        "idlelib",
        "lib2to3",
        "pydoc_data",
        "test",
        "this",
        "tkinter",
        "turtle",
        "turtledemo",
        "xxlimited",
        "xxlimited_35",
        "xxsubtype",
    }
)
TEST_PARTS = frozenset({"test", "tests", "idle_test"})
STDLIB_DIR = Path(sysconfig.get_paths()["stdlib"]).resolve()

# A leading paragraph that only spells out a call signature, e.g.
# "S.find(sub[, start[, end]]) -> int" or "deque([iterable[, maxlen]]) --> deque object".
SIGNATURE_LINE = re.compile(r"^[\w.]+\(.*\)\s*(-+>.*)?$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`'\"])")
# Summaries that are doctest lines, rst heading underlines or signature fragments.
NOT_PROSE = re.compile(r">>>|[=~-]{3,}|^[^A-Za-z`'\"]")


@dataclass(frozen=True)
class Entry:
    """One documented object: its summary becomes a query, its body a document."""

    qualname: str
    summary: str
    body: str

    @property
    def document(self) -> str:
        """The name anchors the body, as an API reference page would."""
        return f"{self.qualname}\n{self.body}"


def is_public_module_name(name: str) -> bool:
    """Skip private, test and excluded modules before they are ever imported."""
    parts = name.split(".")
    if parts[0] in EXCLUDED_TOP_LEVEL:
        return False
    return not any(p.startswith("_") or p in TEST_PARTS or p.startswith("test_") for p in parts)


def is_stdlib_module(module: ModuleType) -> bool:
    """True for built-in modules and files under this interpreter's stdlib dir.

    Guards against site-packages shadowing a stdlib name.
    """
    path = getattr(module, "__file__", None)
    return path is None or STDLIB_DIR in Path(path).resolve().parents


def guarded_import(name: str) -> ModuleType | None:
    """Import quietly; modules that fail (wrong platform, missing deps) are skipped."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            module = importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - SystemExit etc. also mean "skip it"
            return None
    return module if is_stdlib_module(module) else None


def walk_modules() -> Iterator[ModuleType]:
    """Yield public stdlib modules depth-first in sorted order."""
    for top in sorted(sys.stdlib_module_names):
        yield from walk_package(top)


def walk_package(name: str) -> Iterator[ModuleType]:
    """Yield a module and its submodules; excluded names are never imported."""
    if not is_public_module_name(name):
        return
    module = guarded_import(name)
    if module is None:
        return
    yield module
    paths = getattr(module, "__path__", None)
    if paths is None:
        return
    for child in sorted(info.name for info in pkgutil.iter_modules(paths)):
        yield from walk_package(f"{name}.{child}")


def public_members(module: ModuleType) -> list[tuple[str, object]]:
    """Exported names (__all__) plus public names defined in the module itself.

    __all__ alone misses documented helpers in modules that export narrowly.
    """
    exported = {n for n in getattr(module, "__all__", ()) if isinstance(n, str)}
    defined = {n for n, obj in vars(module).items() if getattr(obj, "__module__", None) == module.__name__}
    names = sorted(n for n in exported | defined if not n.startswith("_") and hasattr(module, n))
    return [(n, getattr(module, n)) for n in names]


def documented_objects(module: ModuleType) -> Iterator[tuple[str, object]]:
    """Yield (qualified name, object) for the module, its functions, classes and methods."""
    yield module.__name__, module
    for name, obj in public_members(module):
        qualname = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            yield qualname, obj
            yield from class_methods(qualname, obj)
        elif inspect.isroutine(obj):
            yield qualname, obj


def class_methods(qualname: str, cls: type) -> Iterator[tuple[str, object]]:
    """Methods defined on the class itself (not inherited), in sorted order."""
    for name, raw in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isroutine(func):
            yield f"{qualname}.{name}", func


def own_docstring(obj: object) -> str | None:
    """The object's own __doc__ (inspect.getdoc would inherit and repeat parents')."""
    doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def split_docstring(doc: str) -> tuple[str, str] | None:
    """Split into (summary sentence, remaining body), whitespace-normalised.

    The summary is the first sentence of the first paragraph (stdlib summaries often
    wrap over two lines); the rest of that paragraph starts the body.
    """
    paragraphs = [p for p in re.split(r"\n\s*\n", inspect.cleandoc(doc)) if p.strip()]
    while paragraphs and all(SIGNATURE_LINE.match(ln.strip()) for ln in paragraphs[0].splitlines()):
        paragraphs.pop(0)
    if not paragraphs:
        return None
    first = " ".join(paragraphs[0].split())
    summary = SENTENCE_END.split(first, maxsplit=1)[0]
    rest = first[len(summary) :].strip()
    body = " ".join([rest, *(" ".join(p.split()) for p in paragraphs[1:])]).strip()
    return summary, body


def truncate(text: str, limit: int) -> str:
    """Cut at the last word boundary within limit characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def is_query_like(summary: str) -> bool:
    """A prose sentence of a few words, something a user could plausibly type."""
    return len(summary.split()) >= MIN_SUMMARY_WORDS and len(summary) <= MAX_SUMMARY_CHARS and NOT_PROSE.search(summary) is None


def make_entry(qualname: str, obj: object) -> Entry | None:
    """An Entry if the docstring has a query-like summary and a substantial body."""
    doc = own_docstring(obj)
    parts = split_docstring(doc) if doc else None
    if parts is None:
        return None
    summary, body = parts
    if not is_query_like(summary):
        return None
    if len(body) < MIN_BODY_CHARS:
        return None
    body = truncate(body, MAX_DOC_CHARS - len(qualname) - 1)
    return Entry(qualname=qualname, summary=summary, body=body)


def collect_entries() -> list[Entry]:
    """Walk the stdlib once, dropping repeated objects, bodies and summaries.

    The first occurrence wins, so a query never has an equally good twin document.
    """
    seen_objects: set[int] = set()
    seen_bodies: set[str] = set()
    seen_summaries: set[str] = set()
    entries: list[Entry] = []
    for module in walk_modules():
        for qualname, obj in documented_objects(module):
            if id(obj) in seen_objects:
                continue
            seen_objects.add(id(obj))
            entry = make_entry(qualname, obj)
            if entry is None:
                continue
            body_key, summary_key = entry.body.lower(), entry.summary.lower()
            if body_key in seen_bodies or summary_key in seen_summaries:
                continue
            seen_bodies.add(body_key)
            seen_summaries.add(summary_key)
            entries.append(entry)
    return entries


def write_jsonl_gz(path: Path, rows: list[dict[str, str]]) -> None:
    """Byte-reproducible gzip: no filename or mtime in the header."""
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(payload)


def main() -> None:
    warnings.simplefilter("ignore")  # deprecated modules warn on import and attribute access
    entries = sorted(collect_entries(), key=lambda e: e.qualname)
    sampled = sorted(random.Random(SEED).sample(entries, N_QUERIES), key=lambda e: e.qualname)
    queries = [(f"q{i:05d}", e) for i, e in enumerate(sampled, start=1)]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(OUT_DIR / "corpus.jsonl.gz", [{"id": e.qualname, "text": e.document} for e in entries])
    write_jsonl_gz(OUT_DIR / "queries.jsonl.gz", [{"id": qid, "text": e.summary} for qid, e in queries])
    qrels = ["query_id\tdoc_id\trelevance", *(f"{qid}\t{e.qualname}\t1" for qid, e in queries)]
    (OUT_DIR / "qrels.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    print(f"Python {sys.version.split()[0]}: {len(entries)} documents, {len(queries)} queries")


if __name__ == "__main__":
    main()
