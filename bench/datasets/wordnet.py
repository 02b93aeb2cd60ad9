"""WordNet 3.0 as a ~118k-document retrieval benchmark, encoded once and cached.

Every synset is one document: its first lemma, a colon, then its gloss
("dog: a member of the genus Canis ..."). A query is another lemma of a synset
("domestic dog"), and its one relevant document is that synset's document. The
query never repeats the document's leading word, so a hit needs the encoder to
know the two are synonyms; words shared by many synsets ("unit", "run") make
the set hard in the way real short queries are.

The first load parses the Debian `wordnet-base` files, encodes documents and
queries with the bundled model (several minutes on a laptop CPU) and writes
vectors (.npy) and ids/texts (.json) atomically into the cache; later loads
memory-map the vectors. Build the cache ahead with
`python -m bench.datasets.wordnet`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from vecdial._internal import MODEL_DIM, MODEL_NAME, encode_texts

WORDNET_DIR = Path("/usr/share/wordnet")
DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
CACHE_FORMAT = 1
N_QUERIES = 1000
QUERY_SEED = 20240601
# Measured on a (busy) 2-core CPU, 1,500 glosses, 3 interleaved rounds, best
# wall rate: 64 -> 41/s, 128 -> 53/s, 256 -> 45/s (per CPU-second: 63, 70, 64).
# sentence-transformers sorts texts by length, so larger batches add padding
# and memory without more speed.
ENCODE_BATCH_SIZE = 128

_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass(frozen=True)
class Synset:
    """One parsed synset: `id` is pos + offset ("n02084071"), lemmas in file order."""

    id: str
    lemmas: tuple[str, ...]
    gloss: str


@dataclass
class WordnetSet:
    """Documents, queries and relevance of the WordNet benchmark.

    doc_vectors: (n_docs, 384) float32, unit rows (memory-mapped when cached).
    query_vectors: (n_queries, 384) float32, unit rows.
    qrels: query id -> {doc id: 1}, exactly one relevant document per query.
    """

    doc_ids: list[str]
    doc_texts: list[str]
    doc_vectors: np.ndarray
    query_ids: list[str]
    query_texts: list[str]
    query_vectors: np.ndarray
    qrels: dict[str, dict[str, int]]


# --- the source files ---------------------------------------------------------


def _has_wordnet(directory: Path) -> bool:
    return all((directory / name).is_file() for name in DATA_FILES)


def _apt_get(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", *args], check=True, env=env)


def _apt_knows(package: str) -> bool:
    """True when the local package lists already offer `package` (no update needed)."""
    probe = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True, check=False)
    return probe.returncode == 0 and "Package:" in probe.stdout


def ensure_wordnet() -> Path:
    """Return the WordNet dict directory, installing Debian's `wordnet-base` if root.

    Raises RuntimeError saying what to install when the files are missing and
    this process cannot install them (not root, or no apt-get).
    """
    if _has_wordnet(WORDNET_DIR):
        return WORDNET_DIR
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if not is_root or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"WordNet 3.0 data files ({', '.join(DATA_FILES)}) not found in {WORDNET_DIR}: "
            "install them with `sudo apt-get install wordnet-base` (Debian/Ubuntu), "
            "or run this as root so it can install them itself"
        )
    try:
        if not _apt_knows("wordnet-base"):
            _apt_get("update", "-qq")
        _apt_get("install", "-y", "-qq", "--no-install-recommends", "wordnet-base")
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"`apt-get install wordnet-base` failed ({exc}); install it by hand") from exc
    if not _has_wordnet(WORDNET_DIR):
        raise RuntimeError(f"wordnet-base installed but {WORDNET_DIR} lacks {DATA_FILES}")
    return WORDNET_DIR


def parse_synset_line(line: str) -> Synset:
    """Parse one line of a WordNet `data.<pos>` file (format: wndb(5WN)).

    `offset lex_filenum ss_type w_cnt (word lex_id)×w_cnt ... | gloss`; w_cnt
    is two hex digits, adjective words may end in a syntactic marker "(p)".
    """
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    offset, ss_type, n_words = fields[0], fields[2], int(fields[3], 16)
    words = fields[4 : 4 + 2 * n_words : 2]
    lemmas = tuple(_ADJ_MARKER.sub("", w).replace("_", " ") for w in words)
    return Synset(id=f"{ss_type}{offset}", lemmas=lemmas, gloss=gloss.strip())


def read_synsets(dict_dir: Path) -> Iterator[Synset]:
    """Yield every synset of the four data files (nouns, verbs, adjectives, adverbs)."""
    for name in DATA_FILES:
        with open(dict_dir / name, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("  "):  # the license header is indented
                    yield parse_synset_line(line)


# --- documents, queries and relevance -----------------------------------------


def document_text(synset: Synset) -> str:
    """ "dog: a member of the genus Canis ..." — first lemma, then the gloss."""
    return f"{synset.lemmas[0]}: {synset.gloss}"


def _query_lemmas(synset: Synset) -> list[str]:
    """Lemmas other than the first that differ from it beyond letter case."""
    first = synset.lemmas[0].casefold()
    return [lemma for lemma in synset.lemmas[1:] if lemma.casefold() != first]


def sample_queries(synsets: list[Synset], n_queries: int = N_QUERIES, seed: int = QUERY_SEED) -> list[tuple[str, str, str]]:
    """Pick `n_queries` synsets that have a second lemma, deterministically.

    Returns (query id, query text, relevant doc id) in document order; the
    text is one of the synset's other lemmas, chosen by the same seeded RNG.
    """
    rng = random.Random(seed)
    eligible = [s for s in synsets if _query_lemmas(s)]
    chosen = sorted(rng.sample(range(len(eligible)), min(n_queries, len(eligible))))
    queries = []
    for i in chosen:
        synset = eligible[i]
        queries.append((f"q-{synset.id}", rng.choice(_query_lemmas(synset)), synset.id))
    return queries


def _subset(synsets: list[Synset], limit: int | None, seed: int) -> list[Synset]:
    """A seeded sample of `limit` synsets kept in file order (all of them when None)."""
    if limit is None or limit >= len(synsets):
        return synsets
    keep = sorted(random.Random(seed).sample(range(len(synsets)), limit))
    return [synsets[i] for i in keep]


# --- the cache ------------------------------------------------------------------


def default_cache_dir() -> Path:
    """`$VECDIAL_CACHE_DIR`, else `~/.cache/vecdial`."""
    env = os.environ.get("VECDIAL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vecdial"


def set_dir(cache_dir: Path | None = None, limit: int | None = None) -> Path:
    """The folder of one cached set: `<cache>/wordnet-<model>[-limit<N>]`."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = f"wordnet-{MODEL_NAME.rsplit('/', 1)[-1]}"
    return base / (name if limit is None else f"{name}-limit{limit}")


def _expected_meta(limit: int | None) -> dict[str, object]:
    return {
        "format": CACHE_FORMAT,
        "model": MODEL_NAME,
        "dim": MODEL_DIM,
        "limit": limit,
        "n_queries": N_QUERIES,
        "query_seed": QUERY_SEED,
    }


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temp file in the same folder, fsync, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj: object) -> None:
    _write_atomic(path, lambda f: f.write(json.dumps(obj, ensure_ascii=False).encode()))


def _write_npy(path: Path, array: np.ndarray) -> None:
    _write_atomic(path, lambda f: np.save(f, np.ascontiguousarray(array, dtype=np.float32)))


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _is_complete(folder: Path, limit: int | None) -> bool:
    """meta.json is written last, so a matching one means the whole set is there."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return False
    meta = _read_json(meta_path)
    return all(meta.get(k) == v for k, v in _expected_meta(limit).items())


def _load_cached(folder: Path) -> WordnetSet:
    """Read ids/texts from json and memory-map the (n, 384) float32 vectors."""
    docs, queries = _read_json(folder / "docs.json"), _read_json(folder / "queries.json")
    doc_vectors = np.load(folder / "doc_vectors.npy", mmap_mode="r")
    query_vectors = np.load(folder / "query_vectors.npy", mmap_mode="r")
    if doc_vectors.shape != (len(docs["ids"]), MODEL_DIM) or query_vectors.shape != (
        len(queries["ids"]),
        MODEL_DIM,
    ):
        raise RuntimeError(f"cached WordNet set in {folder} is inconsistent; delete it")
    return WordnetSet(
        doc_ids=docs["ids"],
        doc_texts=docs["texts"],
        doc_vectors=doc_vectors,
        query_ids=queries["ids"],
        query_texts=queries["texts"],
        query_vectors=query_vectors,
        qrels=queries["qrels"],
    )


def _build(folder: Path, limit: int | None, show_progress: bool) -> None:
    """Parse WordNet, encode documents and queries, and write the cache folder."""
    synsets = _subset(list(read_synsets(ensure_wordnet())), limit, QUERY_SEED)
    doc_ids = [s.id for s in synsets]
    doc_texts = [document_text(s) for s in synsets]
    queries = sample_queries(synsets)
    query_ids = [q[0] for q in queries]
    query_texts = [q[1] for q in queries]
    qrels = {qid: {doc_id: 1} for qid, _, doc_id in queries}

    if show_progress:
        print(f"encoding {len(doc_texts):,} WordNet documents with {MODEL_NAME}", file=sys.stderr)
    doc_vectors = encode_texts(doc_texts, batch_size=ENCODE_BATCH_SIZE, show_progress=show_progress)
    query_vectors = encode_texts(query_texts, batch_size=ENCODE_BATCH_SIZE)

    folder.mkdir(parents=True, exist_ok=True)
    _write_npy(folder / "doc_vectors.npy", doc_vectors)
    _write_npy(folder / "query_vectors.npy", query_vectors)
    _write_json(folder / "docs.json", {"ids": doc_ids, "texts": doc_texts})
    _write_json(folder / "queries.json", {"ids": query_ids, "texts": query_texts, "qrels": qrels})
    meta = {**_expected_meta(limit), "n_docs": len(doc_ids), "n_queries_built": len(query_ids)}
    _write_json(folder / "meta.json", meta)


def load_wordnet_set(cache_dir: Path | None = None, limit: int | None = None, show_progress: bool = True) -> WordnetSet:
    """Load the WordNet benchmark, building and caching it on first use.

    cache_dir: parent cache folder (default `$VECDIAL_CACHE_DIR` or `~/.cache/vecdial`).
    limit: keep a seeded sample of this many documents (queries drawn from them),
        cached in its own folder; None keeps all ~118k synsets.
    Returns vectors memory-mapped from the cache: doc (n_docs, 384), query
    (n_queries, 384), float32, unit rows.
    """
    folder = set_dir(cache_dir, limit)
    if not _is_complete(folder, limit):
        _build(folder, limit, show_progress)
    return _load_cached(folder)


def main() -> None:
    """Build (or find) the full cached set and print its counts and the time taken."""
    start = time.perf_counter()
    data = load_wordnet_set()
    elapsed = time.perf_counter() - start
    folder = set_dir()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"WordNet set in {folder} ({size / 2**20:.1f} MiB)")
    print(f"  documents: {len(data.doc_ids):,}  vectors {data.doc_vectors.shape}")
    print(f"  queries:   {len(data.query_ids):,}  vectors {data.query_vectors.shape}")
    print(f"  ready in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
