"""`vecdial.connect("http://host:port")`: the embedded `Database`/`Collection` interface over the HTTP API.

Every method takes the arguments and returns the objects its embedded twin does (`Hits`
with the same arrays and `Explain`, `Info`, `WriteResult`, `JobStatus`, `SweepPoint`), and
raises the same exception classes: the embedded API's own checks run here first where they
need only what `info` says (ids, vectors, pages), and the server's error codes map back to
the classes it raised (`remote_http.error_classes`). Nothing here touches the server's
filesystem: vectors, texts and files travel in the requests. Where the two must differ, the
method says so; the server's limits (max_k, max_batch, max_write_batch, max_body_bytes) apply
to every call. Not here: `encode`, `evaluate`, `keep_queries` and `backup`, which need the model
or the collection's files in this process (search by text instead; the server keeps its own
traffic sample when query_sample_rate is set; run `vecdial backup` where the data directory is).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from vecdial import arguments
from vecdial.indexer.disk.collection import validate_name
from vecdial.indexer.errors import AlreadyExists, InvalidInput, NotFound
from vecdial.indexer.jobs.store import JobStatus
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.remote_collection import RemoteCollection, _changes, _path
from vecdial.remote_http import Http, b64
from vecdial.remote_job import JobFailed, RemoteJob
from vecdial.remote_shapes import status_of

Texts = Sequence[str]


def connect_remote(url: str, *, api_key: str | None = None, timeout: float = 60.0, retries: int = 2) -> RemoteDatabase:
    """A vecdial server's collections, through one keep-alive connection pool (see `Http`)."""
    return RemoteDatabase(Http(url, api_key=api_key, timeout=timeout, retries=retries))


class RemoteDatabase:
    """The collections a vecdial server serves. Handles are shared: opening a name twice
    returns the same handle. Use as a context manager (or `close()`) to release the pool."""

    def __init__(self, http: Http):
        self.http = http
        self.url = http.url
        self._open: dict[str, RemoteCollection] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RemoteDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<vecdial.Database {self.url}>"

    def close(self) -> None:
        self.http.close()

    def list(self) -> list[str]:
        """Names of the collections the server serves, sorted (one it cannot open is left out)."""
        return sorted(summary["name"] for summary in self.http.call("GET", "/v1/collections", idempotent=True))

    def open(self, name: str) -> RemoteCollection:
        """The named collection; NotFound if there is none."""
        validate_name(arguments.name(name))
        with self._lock:
            handle = self._open.get(name)
        if handle is None:
            info = self.http.call("GET", _path(name), idempotent=True)
            with self._lock:
                handle = self._open.setdefault(name, RemoteCollection(self, name, info))
        return handle

    def opened(self) -> builtins.list[RemoteCollection]:
        return list(self._open.values())

    def _cached(self, name: str) -> RemoteCollection | None:
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
    ) -> RemoteCollection:
        """`Database.create` on the server. Differences: `path` names a file on *this* machine,
        read here (.npy, .fvecs, .parquet) and sent with its ids, texts and payloads; a .jsonl of
        texts is uploaded as it is and encoded by the server (not with `replace`). Texts given
        alone are encoded by the server. The whole input travels in one request, so it must fit
        the server's max_body_bytes and max_create_vectors (upload a file with `vecdial` on
        the server for more). It waits for the build however long it takes (no read timeout).
        `ray` is the server's to choose, so it is refused here; show_progress has no bar to show.
        `exist_ok` is decided here: an existing name is opened (one describe request), else built."""
        validate_name(arguments.name(name))  # before anything is read or sent
        if ray is not None:
            raise InvalidInput("ray= runs a build where the data is: on a remote database, build on the server (`vecdial build --ray`)")
        if exist_ok and replace:
            raise InvalidInput("pass exist_ok=True (open an existing collection) or replace=True (rebuild it), not both")
        if exist_ok:
            try:
                return self._existing(name, vectors)
            except NotFound:
                pass
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["parse a date string", ...]')
        if ids is not None and not isinstance(ids, np.ndarray):
            ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if path is not None:
            arguments.path(path, "path")
        arguments.one_of(settings, "settings", (BuildSettings, dict), 'a BuildSettings or a dict such as {"partitions": 64}')
        try:
            return self._create(
                name, vectors, texts, ids, path, format, source_model, payloads, _changes(settings), replace, discard_writes
            )
        except AlreadyExists:
            if not exist_ok:  # another client created it meanwhile: open theirs
                raise
            return self._existing(name, vectors)

    def _existing(self, name: str, vectors: Any) -> RemoteCollection:
        """create(exist_ok=True) over an existing name: its handle, if `vectors` fit its dim."""
        handle = self.open(name)
        dim = handle._describe["dim"]
        if vectors is not None and np.ndim(vectors) == 2 and np.shape(vectors)[1] != dim:
            raise InvalidInput(
                f"collection {name!r} exists with dim {dim}, and the vectors given have {np.shape(vectors)[1]}: use another name, or replace=True to rebuild it"
            )
        return handle

    def _create(
        self,
        name: str,
        vectors: Any,
        texts: builtins.list | None,
        ids: Any,
        path: Any,
        format: str | None,
        source_model: str | None,
        payloads: Any,
        changes: dict,
        replace: bool,
        discard_writes: bool,
    ) -> RemoteCollection:
        """The create request itself (see `create`), the arguments checked."""
        if (
            path is not None
            and (format or Path(path).suffix.lstrip(".").lower()) == "jsonl"
            and vectors is None
            and texts is None
            and payloads is None
        ):
            return self._upload_jsonl(name, Path(path), changes, replace)
        body: dict[str, Any] = {"name": name, "settings": changes, "replace": replace, "discard_writes": discard_writes}
        if vectors is None and path is None:  # texts alone: the server encodes them (or says what to send)
            body.update(
                texts=None if texts is None else list(texts), ids=_id_list(ids), payloads=None if payloads is None else list(payloads)
            )
        else:
            from vecdial.indexer.io.readers import dataset_from

            dataset = dataset_from(
                vectors, texts=texts, ids=ids, path=path, fmt=format, source_model=source_model, payloads=payloads, show_progress=False
            )
            table = dataset.payloads
            body.update(
                vectors_b64=b64(dataset.vectors[:]),  # every row, as an array
                dim=int(dataset.vectors.shape[1]),
                ids=dataset.ids.tolist(),
                texts=dataset.texts,
                source_model=dataset.source_model,
                payloads=None if table is None else [table.payload(row) or None for row in range(table.size)],
            )
        info = self.http.call("POST", "/v1/collections", body=body, long=True)
        with self._lock:
            handle = self._open.get(name)
            if handle is None:
                handle = self._open[name] = RemoteCollection(self, name, info)
            handle._describe = info
        return handle

    def _upload_jsonl(self, name: str, path: Path, changes: dict, replace: bool) -> RemoteCollection:
        from vecdial.indexer.modes.settings import KNOBS

        if replace:
            raise InvalidInput("a remote replace from a .jsonl file is not supported: drop the collection first, or send texts=")
        if not path.is_file():
            raise InvalidInput(f"input file {path} does not exist")
        sparse = changes.get("sparse")
        sparse = sparse if isinstance(sparse, dict) else {}
        params: dict[str, Any] = {"format": "jsonl"}
        for knob in KNOBS:
            value = sparse.get(knob.field) if knob.sparse else changes.get(knob.field)
            if value is not None and not isinstance(value, dict):
                params[knob.name] = value
        with open(path, "rb") as handle:
            info = self.http.call("POST", _path(name) + "/upload", params=params, content=handle, long=True)
        with self._lock:
            self._open[name] = RemoteCollection(self, name, info)
        return self._open[name]

    def drop(self, name: str) -> None:
        """Delete a collection on the server; refused (AlreadyExists) while a reindex of it runs."""
        arguments.name(name)
        self.http.call("DELETE", _path(name))
        self.forget(name)

    def job(self, job_id: str) -> JobStatus:
        """A reindex job's status."""
        if not isinstance(job_id, str):
            raise InvalidInput(f"job_id is {job_id!r}: a job id is a string of 32 hex digits")
        return status_of(self.http.call("GET", f"/v1/jobs/{quote(job_id, safe='')}", idempotent=True))

    def jobs(self, limit: int = 100) -> builtins.list[JobStatus]:
        """The latest `limit` reindex jobs' statuses."""
        limit = arguments.whole(limit, "limit", 1)
        return [status_of(job) for job in self.http.call("GET", "/v1/jobs", params={"limit": limit}, idempotent=True)]

    def __getitem__(self, name: str) -> RemoteCollection:
        """`db[name]` is `db.open(name)`: NotFound if the server has no such collection."""
        return self.open(name)

    def __contains__(self, name: object) -> bool:
        """`name in db`: the server serves a collection of that name (one list request)."""
        return isinstance(name, str) and name in self.list()

    def forget(self, name: str) -> None:
        with self._lock:
            self._open.pop(name, None)


def _id_list(ids: Sequence | np.ndarray | None) -> list | None:
    return None if ids is None else np.asarray(ids).tolist() if isinstance(ids, np.ndarray) else list(ids)


__all__ = ["JobFailed", "RemoteCollection", "RemoteDatabase", "RemoteJob", "connect_remote"]
