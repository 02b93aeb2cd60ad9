"""WordNet grown to 1,000,000 vectors, keeping its spectrum and neighbourhood structure.

    python -m bench.datasets.wordnet_1m              # build (or find) the cached set, ~1 min
    python -m bench.datasets.wordnet_1m --check      # nearest-neighbour similarity quantiles
    python -m bench.datasets.wordnet_1m --calibrate 0.4 0.6 0.8   # the same for other noise scales

Rows 0..n_real-1 are the real WordNet document vectors (~118k, bench/datasets/wordnet.py),
unchanged and in order. Every further row is a synthetic vector: a real "parent"
vector plus Gaussian noise drawn in the real set's PCA basis, component j scaled by
SIGMA x the real standard deviation along j, then renormalised to unit length:

    y = normalise(x_parent + SIGMA * (z * std) @ V.T),   z ~ N(0, I)

so the noise has the real set's covariance shape (its spectrum: heavy along the
leading components, light in the tail) and each synthetic point lives in its
parent's neighbourhood. Parents cycle through one seeded permutation of the real
rows, so every real vector has 7 or 8 children. The queries stay the real held-out
WordNet queries; a benchmark can tell real rows (ids < n_real) from synthetic ones.

How SIGMA was chosen and checked (`--calibrate`: cosine similarity of a row to its
nearest other row of the 1M set, exact IndexFlatIP, 1,000 sampled real rows and
1,000 sampled synthetic rows). Children of one parent crowd each other, so real
rows (7-8 children each) always end up with a closer nearest neighbour than
synthetic ones; no noise scale makes the two alike inside the 1M set. So SIGMA is
set so that a synthetic row is as far from its nearest neighbour as a real WordNet
row is in WordNet alone (the set's own neighbourhood scale), while real rows get
the closer neighbours a denser real set would give them. Measured on this machine:

    nearest-neighbour cosine      p10    p50    p90
    real rows in WordNet alone  0.581  0.705  0.829   (the reference)
    SIGMA = 0.30, real          0.964  0.967  0.970   (children nearly duplicates)
    SIGMA = 0.30, synthetic     0.954  0.960  0.966
    SIGMA = 0.90, real          0.775  0.797  0.833
    SIGMA = 0.90, synthetic     0.711  0.753  0.790
    SIGMA = 1.10, real          0.717  0.747  0.829
    SIGMA = 1.10, synthetic     0.629  0.684  0.729   <- SIGMA: median within 0.02 of the reference

The synthetic spread (p10-p90) is narrower than the real one: one noise scale for
all rows cannot copy WordNet's mix of dense and sparse regions.

The cache is `<cache>/wordnet-1m-<model>/`: docs.npy (1,000,000 x 384 float32,
1.5 GB, memory-mappable), parents.npy (int32 parent row of each synthetic row),
meta.json written last. Never built by the tests or CI.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.datasets.wordnet import default_cache_dir, load_wordnet_set
from vecdial._internal import MODEL_NAME

SIZE = 1_000_000
SIGMA = 1.1
SEED = 20240602
FORMAT = 1
CHUNK = 50_000


def set_dir(cache_dir: Path | None = None) -> Path:
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / f"wordnet-1m-{MODEL_NAME.rsplit('/', 1)[-1]}"


def _meta(n_real: int) -> dict:
    return {"format": FORMAT, "size": SIZE, "sigma": SIGMA, "seed": SEED, "n_real": n_real, "model": MODEL_NAME}


def pca_basis(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V (dim, dim) eigenvectors as columns, std (dim,) per component) of the real rows."""
    x = np.asarray(real, dtype=np.float64)
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(x))
    return vectors.astype(np.float32), np.sqrt(np.clip(values, 0, None)).astype(np.float32)


def generate(
    real: np.ndarray, size: int = SIZE, sigma: float = SIGMA, seed: int = SEED, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (size, dim) float32 unit rows, parents (size - n_real,) int32): real rows first, then children.

    out: a preallocated (size, dim) float32 array (e.g. a memory-mapped .npy) to fill.
    """
    n, dim = real.shape
    vectors = np.empty((size, dim), dtype=np.float32) if out is None else out
    vectors[:n] = real
    basis, std = pca_basis(real)
    scale = (basis * (sigma * std)[None, :]).T  # z @ scale = sigma * (z * std) @ V.T
    rng = np.random.default_rng(seed)
    order = rng.permutation(n).astype(np.int32)
    parents = order[np.arange(size - n) % n]
    for start in range(n, size, CHUNK):
        stop = min(start + CHUNK, size)
        z = rng.standard_normal((stop - start, dim), dtype=np.float32)
        y = np.asarray(real[parents[start - n : stop - n]], dtype=np.float32) + z @ scale
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        vectors[start:stop] = y
    return vectors, parents


def load_wordnet_1m(cache_dir: Path | None = None, show_progress: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """(docs (1M, 384) memory-mapped float32, queries (nq, 384), n_real); built and cached on first use."""
    data = load_wordnet_set(cache_dir, show_progress=show_progress)
    real = np.asarray(data.doc_vectors, dtype=np.float32)
    folder = set_dir(cache_dir)
    meta_path = folder / "meta.json"
    if not (meta_path.is_file() and json.loads(meta_path.read_text()) == _meta(len(real))):
        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".docs.npy.tmp"
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(SIZE, real.shape[1]))
        _, parents = generate(real, out=out)
        out.flush()
        del out
        os.replace(tmp, folder / "docs.npy")
        np.save(folder / "parents.npy", parents)
        meta_path.write_text(json.dumps(_meta(len(real))))
        if show_progress:
            print(f"wrote {SIZE:,} vectors to {folder} in {time.perf_counter() - started:.0f} s")
    docs = np.load(folder / "docs.npy", mmap_mode="r")
    return docs, np.asarray(data.query_vectors, dtype=np.float32), len(real)


def nearest_similarity(base: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine similarity of each base[rows] to its nearest other row of base (exact, IndexFlatIP)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    for start in range(0, len(base), 200_000):
        index.add(np.ascontiguousarray(base[start : start + 200_000]))
    scores, ids = index.search(np.ascontiguousarray(base[rows]), 2)
    return np.where(ids[:, 0] == rows, scores[:, 1], scores[:, 0])


def report(real: np.ndarray, sigmas: list[float], samples: int = 1000) -> None:
    """Print p10/p50/p90 nearest-neighbour cosine of sampled real and synthetic rows, per noise scale."""
    rng = np.random.default_rng(7)
    n = len(real)
    real_rows = rng.choice(n, samples, replace=False)
    q = np.quantile(nearest_similarity(real, real_rows), [0.1, 0.5, 0.9])
    print(f"{'nearest-neighbour cosine':<28} {'p10':>6} {'p50':>6} {'p90':>6}")
    print(f"{'real rows in the real set':<28} {q[0]:6.3f} {q[1]:6.3f} {q[2]:6.3f}")
    synthetic_rows = n + rng.choice(SIZE - n, samples, replace=False)
    for sigma in sigmas:
        vectors, _ = generate(real, sigma=sigma)
        for label, rows in (("real", real_rows), ("synthetic", synthetic_rows)):
            q = np.quantile(nearest_similarity(vectors, rows), [0.1, 0.5, 0.9])
            print(f"{f'SIGMA = {sigma:.2f}, {label}':<28} {q[0]:6.3f} {q[1]:6.3f} {q[2]:6.3f}", flush=True)
        del vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="nearest-neighbour quantiles at SIGMA")
    parser.add_argument("--calibrate", type=float, nargs="+", help="the same quantiles at these noise scales (nothing cached)")
    args = parser.parse_args()
    if args.calibrate or args.check:
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        real = np.asarray(load_wordnet_set().doc_vectors, dtype=np.float32)
        report(real, args.calibrate or [SIGMA])
        return
    docs, queries, n_real = load_wordnet_1m()
    print(f"{docs.shape[0]:,} vectors ({n_real:,} real) x {docs.shape[1]} dims, {len(queries):,} queries, in {set_dir()}")


if __name__ == "__main__":
    main()
