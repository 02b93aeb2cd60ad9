"""The front door: `connect(data_dir)` -> a Database of Collections.

A Collection handle is live: every search sees every write acknowledged so far
(by this process or any other: a search first catches up with the collection's
log and CURRENT pointer, a few `stat` calls when nothing changed). The command
line and the HTTP service use these same objects.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vecdial import arguments
from vecdial.collection import Collection, Texts
from vecdial.indexer.disk.collection import Collection as CollectionDir
from vecdial.indexer.disk.collection import list_collections, validate_name
from vecdial.indexer.errors import AlreadyExists, InvalidInput, NotFound
from vecdial.indexer.io.readers import dataset_from
from vecdial.indexer.jobs.create import create_collection
from vecdial.indexer.jobs.replace import replace_build
from vecdial.indexer.jobs.store import JobStatus, JobStore
from vecdial.indexer.jobs.swap import clean_leftovers
from vecdial.indexer.live.collection import LiveCollection, drop_collection
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.info import Info
from vecdial.job import Job, JobFailed


def connect(data_dir: str | Path = "vecdial-data", *, verify_checksums: bool = True) -> Database:
    """Open a directory of collections (created on the first `create`).

    verify_checksums: sha256 every file of a version when this process first opens it
    (once per version per process; ~160 ms for 118k x 384), so a damaged file raises
    CorruptIndex instead of giving wrong answers. False checks sizes and headers only.
    """
    return Database(Path(arguments.path(data_dir, "data_dir")), verify_checksums=verify_checksums)


class Database:
    """The collections of one data directory. Handles are shared: opening a name twice
    returns the same live collection."""

    def __init__(self, data_dir: Path, verify_checksums: bool = True):
        self.data_dir = Path(data_dir)
        self.verify_checksums = verify_checksums
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()
        self._jobs = JobStore(self.data_dir)

    def list(self) -> list[str]:
        """Names of the collections in the directory, sorted."""
        return list_collections(self.data_dir)

    def open(self, name: str) -> Collection:
        """The named collection; NotFound if there is none, CorruptIndex (naming the file) if
        its serving version is damaged. Opening first clears what killed jobs left behind."""
        validate_name(arguments.name(name))
        with self._lock:
            handle = self._open.get(name)
            if handle is None:
                collection = CollectionDir(self.data_dir, name)
                if collection.sharded():
                    from vecdial.sharded import ShardedCollection

                    handle = self._open[name] = ShardedCollection(self, collection)  # type: ignore[assignment]
                    return handle  # type: ignore[return-value]  # a ShardedCollection: Collection's interface, duck-typed
                if collection.exists():
                    clean_leftovers(collection)
                handle = self._open[name] = Collection(self, LiveCollection(collection, self.verify_checksums))
        return handle

    def opened(self) -> builtins.list[Collection]:
        """The handles opened so far, without any I/O."""
        return list(self._open.values())

    def _cached(self, name: str) -> Collection | None:
        """The handle if `name` is open already: a dict lookup, never I/O."""
        return self._open.get(name)

    def create(
        self,
        name: str,
        vectors: np.ndarray | None = None,
        *,
        texts: Texts | None = None,
        ids: Sequence | np.ndarray | None = None,
        path: str | Path | None = None,
        format: str | None = None,
        source_model: str | None = None,
        payloads: Sequence[dict | None] | None = None,
        settings: BuildSettings | dict | None = None,
        replace: bool = False,
        discard_writes: bool = False,
        exist_ok: bool = False,
        show_progress: bool = True,
        ray: str | None = None,
    ) -> Collection:
        """Build a collection from vectors, from texts alone (encoded with the bundled model),
        or from a file.

        Parameters
        ----------
        name : str
            Letters, digits, `-`, `_` and `.`.
        vectors : (n, dim) array, optional
            One row per item; or give `texts` alone, or `path`.
        texts, ids, payloads : sequences of n, optional
            Texts given with vectors are stored and returned with hits; ids default to
            0..n-1; a payload is a dict of field -> value (or None), for filters and
            `with_payload` (a file's other columns are its payloads).
        path, format : optional
            A file to read: .npy, .fvecs, .parquet, .jsonl of texts (format: by the suffix).
        settings : BuildSettings or dict, optional
            Build settings, e.g. `{"partitions": 64}`.
        replace : bool
            Build a new version over an existing collection; refused (AlreadyExists) while it
            holds writes acknowledged since its version unless `discard_writes` (reindex
            folds them in instead).
        exist_ok : bool
            Open the collection if the name exists (nothing is built or added; vectors of
            another dim are InvalidInput), else build it. Without it or `replace`, an
            existing name is AlreadyExists.
        ray : str, optional
            Run the build's per-row passes (and the encoding of `texts` given alone) on a Ray
            cluster: "auto", "host:port" or "local".

        Returns
        -------
        Collection
            The live handle, the same object `db.open(name)` and `db[name]` return.

        Examples
        --------
        >>> import numpy as np, vecdial
        >>> db = vecdial.connect("vecdial-data")
        >>> vectors = np.random.default_rng(0).normal(size=(100, 16)).astype(np.float32)
        >>> notes = db.create("notes", vectors, ids=[f"note-{i}" for i in range(100)], show_progress=False)
        >>> db.create("notes", vectors, exist_ok=True) is notes
        True
        """
        from vecdial.indexer.scale.engines import running_on

        validate_name(arguments.name(name))  # before any encoding
        if exist_ok and replace:
            raise InvalidInput("pass exist_ok=True (open an existing collection) or replace=True (rebuild it), not both")
        if exist_ok and CollectionDir(self.data_dir, name).exists():
            return self._existing(name, vectors)
        if CollectionDir(self.data_dir, name).sharded():
            if exist_ok:
                return self.open(name)
            if not replace:
                raise AlreadyExists(f"collection {name!r} exists already (as shards): drop it first, or reindex it")
            raise InvalidInput(
                f"collection {name!r} is sharded: merge it back first (`vecdial shard -c {name} --shards 1`), then replace it"
            )
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["parse a date string", ...]')
            if vectors is None and path is None:  # texts alone are encoded: each must be words
                for i, text in enumerate(texts):
                    if not isinstance(text, str) or not text.strip():
                        raise InvalidInput(
                            f"texts[{i}] is {text!r}: texts given alone are encoded, so each must be non-blank text (or send vectors)"
                        )
        if ids is not None and not isinstance(ids, np.ndarray):
            ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if path is not None:
            arguments.path(path, "path")
        arguments.one_of(settings, "settings", (BuildSettings, dict), 'a BuildSettings or a dict such as {"partitions": 64}')
        with running_on(ray) as engine:  # texts alone are encoded by its encoders
            if engine is not None and vectors is None and texts is not None and path is None:
                from vecdial.models.encoder import MODEL_NAME

                vectors, source_model = engine.encode_texts(list(texts), show_progress), MODEL_NAME
            dataset = dataset_from(
                vectors,
                texts=texts,
                ids=ids,
                path=path,
                fmt=format,
                source_model=source_model,
                payloads=None if payloads is None else list(payloads),
                show_progress=show_progress,
            )
            build = _settings(settings)
            collection = CollectionDir(self.data_dir, name)
            if replace and collection.exists():
                replace_build(collection, dataset, build, discard_writes=discard_writes, show_progress=show_progress)
            else:
                clean_leftovers(collection)  # a create or drop that was killed may have left files
                create_collection(collection, dataset, build, show_progress=show_progress)
        return self.open(name)

    def _existing(self, name: str, vectors: Any) -> Collection:
        """create(exist_ok=True) over an existing name: its handle, if `vectors` fit its dim."""
        handle = self.open(name)
        dim = handle._live.snapshot().version.dim
        if vectors is not None and np.ndim(vectors) == 2 and np.shape(vectors)[1] != dim:
            raise InvalidInput(
                f"collection {name!r} exists with dim {dim}, and the vectors given have {np.shape(vectors)[1]}: use another name, or replace=True to rebuild it"
            )
        return handle

    def __getitem__(self, name: str) -> Collection:
        """`db[name]` is `db.open(name)`.

        Parameters
        ----------
        name : str
            A collection of this data directory.

        Returns
        -------
        Collection
            Its live handle; NotFound if there is none.

        Examples
        --------
        >>> import numpy as np, vecdial
        >>> db = vecdial.connect("vecdial-data")
        >>> vectors = np.random.default_rng(0).normal(size=(100, 16)).astype(np.float32)
        >>> docs = db.create("docs", vectors, exist_ok=True, show_progress=False)
        >>> db["docs"] is docs
        True
        >>> "docs" in db, "nothing" in db
        (True, False)
        """
        return self.open(name)

    def __contains__(self, name: object) -> bool:
        """`name in db`: a collection of that name exists in the directory."""
        return isinstance(name, str) and name in self.list()

    def drop(self, name: str) -> None:
        """Delete a collection, its versions and its log; refused while a reindex of it runs."""
        collection = CollectionDir(self.data_dir, arguments.name(name))
        if collection.sharded():
            from vecdial.sharded_job import drop_sharded

            drop_sharded(collection)
        else:
            drop_collection(collection)
        self.forget(name)

    def shard(self, name: str, shards: int, *, partial: bool | None = None, show_progress: bool = True) -> Collection:
        """Split collection `name` into `shards` shards by id hash (1: merge its shards back into one
        collection), keeping every acknowledged write; returns the new handle.

        Parameters
        ----------
        name : str
            A collection of this data directory, sharded or not.
        shards : int
            How many shards it holds after: 1 to 256.
        partial : bool, optional
            Whether a search answers from the live shards while one is down (`explain.partial`),
            or fails with Unavailable; None keeps the collection's rule (default True).

        Refused (AlreadyExists) while a reindex or another shard of it runs; writes wait for it
        (it holds the write lock). Processes that hold the collection open see it gone and must
        open it again (stop its servers first). Sweep it again after (`auto` budgets).

        Examples
        --------
        >>> import numpy as np, vecdial
        >>> db = vecdial.connect("vecdial-data")
        >>> vectors = np.random.default_rng(0).normal(size=(100, 16)).astype(np.float32)
        >>> if "split" in db:
        ...     db.drop("split")
        >>> _ = db.create("split", vectors, show_progress=False)
        >>> db.shard("split", 2, show_progress=False).info().shards
        2
        >>> db.shard("split", 1, show_progress=False).info().shards
        1
        """
        from vecdial.indexer.jobs.reshard import reshard

        name = validate_name(arguments.name(name))
        shards = arguments.whole(shards, "shards", 1, 256)
        self.forget(name)
        reshard(self.data_dir, name, shards, partial=partial, show_progress=show_progress)
        return self.open(name)

    def job(self, job_id: str) -> JobStatus:
        """A reindex job's status, whichever process runs it."""
        if not isinstance(job_id, str):
            raise InvalidInput(f"job_id is {job_id!r}: a job id is a string of 32 hex digits")
        return self._jobs.load(job_id)

    def jobs(self, limit: int = 100) -> builtins.list[JobStatus]:
        """The latest `limit` reindex jobs' statuses."""
        return self._jobs.list(arguments.whole(limit, "limit", 1))

    def forget(self, name: str) -> None:
        """Drop this process's handle (after the collection was dropped elsewhere)."""
        with self._lock:
            handle = self._open.pop(name, None)
        if handle is not None and hasattr(handle, "close"):
            handle.close()


def _settings(settings: BuildSettings | dict | None) -> BuildSettings:
    if settings is None:
        return BuildSettings()
    if isinstance(settings, dict):
        return BuildSettings().changed(settings)
    return settings


__all__ = ["Collection", "Database", "Info", "Job", "JobFailed", "connect", "NotFound"]
