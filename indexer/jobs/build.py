"""Build job: inputs -> fit codecs on a sample -> encode batches -> a new version.

Everything is written into a hidden temp directory beside the live versions,
fsynced, and renamed into place only when whole. A build killed at any point
leaves the previous version serving and at most a stale temp directory, which
the next build removes.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vecdial.indexer.disk.atomic import fsync_dir, fsync_tree, make_public
from vecdial.indexer.codecs.binary import fit_binary
from vecdial.indexer.codecs.rotation import Rotation, fit_pca_rotation, identity_rotation
from vecdial.indexer.disk.manifest import BinaryParams, DenseParams, Manifest, file_entry, write_manifest
from vecdial.indexer.io.readers import Dataset, check_dataset
from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.jobs.sparse_build import build_sparse
from vecdial.indexer.stores.binary import CODES_FILE, HNSW_FILE, build_hnsw
from vecdial.indexer.stores.blocks import BLOCKS_FILE, NORMS_FILE, prefix_sq_norms, split_blocks
from vecdial.indexer.vectors import check_finite, normalize_rows, unit_sample
from vecdial.indexer.disk.version import CODEC_FILE, IDS_FILE, TEXT_OFFSETS_FILE, TEXTS_FILE

TMP_PREFIX = ".tmp-"


def build_version(
    dataset: Dataset,
    versions_dir: Path,
    version_name: str,
    settings: BuildSettings = BuildSettings(),
    show_progress: bool = True,
) -> Path:
    """Write dataset as versions_dir/version_name, atomically; return its path."""
    check_dataset(dataset)
    versions_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(versions_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version_name}-", dir=versions_dir))
    try:
        manifest = _write_files(dataset, tmp, settings, show_progress)
        manifest.files = {p.name: file_entry(p) for p in sorted(tmp.iterdir())}
        write_manifest(tmp, manifest)
        fsync_tree(tmp)
        make_public(tmp)
        final = versions_dir / version_name
        tmp.rename(final)
        fsync_dir(versions_dir)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_builds(versions_dir: Path) -> None:
    """Delete temp directories that builds killed earlier left behind."""
    for stale in versions_dir.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def _write_files(dataset: Dataset, out: Path, settings: BuildSettings, show_progress: bool) -> Manifest:
    vectors = dataset.vectors
    n, dim = vectors.shape
    sample = unit_sample(vectors, settings.sample_size, settings.seed)
    rotation: Rotation = fit_pca_rotation(sample) if settings.rotation == "pca" else identity_rotation(dim)
    binary_codec = fit_binary(sample, center=settings.binary_center)
    np.savez(out / CODEC_FILE, **rotation.to_arrays(), **binary_codec.to_arrays())
    np.save(out / IDS_FILE, dataset.ids)

    n_blocks = -(-dim // settings.block)
    blocks = np.lib.format.open_memmap(out / BLOCKS_FILE, mode="w+", dtype=settings.dtype, shape=(n_blocks, n, settings.block))
    norms = np.lib.format.open_memmap(out / NORMS_FILE, mode="w+", dtype=np.float32, shape=(n_blocks, n))
    codes = np.lib.format.open_memmap(out / CODES_FILE, mode="w+", dtype=np.uint8, shape=(n, binary_codec.code_bytes))
    with tqdm(total=n, desc="encoding", unit="vec", disable=not show_progress) as progress:
        for start in range(0, n, settings.batch_size):
            stop = min(start + settings.batch_size, n)
            batch = np.asarray(vectors[start:stop], dtype=np.float32)
            check_finite(batch, f"input vector (batch at {start})")
            unit = normalize_rows(batch, f"input vector (batch at {start})")
            rotated = rotation.apply(unit)
            blocks[:, start:stop, :] = split_blocks(rotated, settings.block)
            norms[:, start:stop] = prefix_sq_norms(rotated, settings.block)
            codes[start:stop] = binary_codec.encode(unit)
            progress.update(stop - start)
    for array in (blocks, norms, codes):
        array.flush()
    if settings.binary_index == "hnsw":
        import faiss

        faiss.write_index_binary(build_hnsw(np.asarray(codes)), str(out / HNSW_FILE))
    del blocks, norms, codes
    if dataset.texts is not None:
        _write_texts(out, dataset.texts)
    sparse_params = None
    if settings.sparse is not None:
        sparse_params = build_sparse(vectors, sample, out, settings.sparse, show_progress)
    return Manifest(
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        source_model=dataset.source_model,
        dim=dim,
        count=n,
        id_kind="int" if dataset.ids.dtype.kind in "iu" else "str",
        rotation=settings.rotation,
        dense=DenseParams(block=settings.block, dtype=settings.dtype),
        binary=BinaryParams(center=settings.binary_center, index=settings.binary_index),
        sparse=sparse_params,
        has_texts=dataset.texts is not None,
    )


def _write_texts(out: Path, texts: list[str]) -> None:
    """Texts as JSON lines plus byte offsets, so a hit's text is one seek away."""
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    with open(out / TEXTS_FILE, "wb") as handle:
        for i, text in enumerate(texts):
            line = (json.dumps(text, ensure_ascii=False) + "\n").encode("utf-8")
            handle.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    np.save(out / TEXT_OFFSETS_FILE, offsets)
