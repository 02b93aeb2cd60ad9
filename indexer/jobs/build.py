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
from vecdial.indexer.disk.manifest import Manifest, file_entry, write_manifest
from vecdial.indexer.disk.version import CODEC_FILE, IDS_FILE, TEXT_OFFSETS_FILE, TEXTS_FILE
from vecdial.indexer.io.readers import Dataset, check_dataset
from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.modes import MODES
from vecdial.indexer.vectors import check_finite, normalize_rows, unit_sample

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
    """Fit every registered mode on one sample, feed each the input once, batch by batch."""
    vectors = dataset.vectors
    n, dim = vectors.shape
    sample = unit_sample(vectors, settings.sample_size, settings.seed)
    builders = {name: b for name, mode in MODES.items() if (b := mode.builder(sample, n, out, settings)) is not None}
    np.save(out / IDS_FILE, dataset.ids)
    with tqdm(total=n, desc="encoding", unit="vec", disable=not show_progress) as progress:
        for start in range(0, n, settings.batch_size):
            stop = min(start + settings.batch_size, n)
            batch = np.asarray(vectors[start:stop], dtype=np.float32)
            check_finite(batch, f"input vector (batch at {start})")
            unit = normalize_rows(batch, f"input vector (batch at {start})")
            for builder in builders.values():
                builder.add(start, unit)
            progress.update(stop - start)
    codecs = {name: builder.finish(vectors, show_progress) for name, builder in builders.items()}
    np.savez(out / CODEC_FILE, **{key: array for builder in builders.values() for key, array in builder.codec_arrays().items()})
    if dataset.texts is not None:
        _write_texts(out, dataset.texts)
    return Manifest(
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        source_model=dataset.source_model,
        dim=dim,
        count=n,
        id_kind="int" if dataset.ids.dtype.kind in "iu" else "str",
        codecs=codecs,
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
