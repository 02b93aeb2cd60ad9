"""`RemoteCollection`: one collection on a vecdial server, as `vecdial.Collection` (see `vecdial.remote`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from vecdial import arguments
from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.table import check_payloads
from vecdial.indexer.io.checks import (
    check_ids,
    check_page,
    check_texts,
    check_vectors,
)
from vecdial.indexer.live.collection import WriteResult
from vecdial.indexer.live.repair import RepairReport
from vecdial.indexer.modes.settings import BuildSettings
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import MAX_K, Hits
from vecdial.info import Info
from vecdial.remote_http import Http, b64
from vecdial.remote_job import RemoteJob
from vecdial.remote_shapes import explain_of, info_of, point_of, status_of

if TYPE_CHECKING:
    from vecdial.remote import RemoteDatabase

Texts = Sequence[str]


class RemoteCollection:
    """One collection on a server: search, write, sweep, reindex, describe, as `vecdial.Collection`."""

    def __init__(self, db: RemoteDatabase, name: str, describe: dict):
        self.db = db
        self.name = name
        self._describe = describe  # the last describe: id kind and dim never change

    def __repr__(self) -> str:
        return f"<vecdial.Collection {self.name!r} at {self.db.url} ({self._describe['size']} items when last described)>"

    @property
    def _http(self) -> Http:
        return self.db.http

    @property
    def damaged(self) -> str | None:
        """What in the write-ahead log is damaged and what to run, or None (one describe request)."""
        return self.info().damaged

    def search(
        self,
        queries: str | Texts | np.ndarray,
        k: int = 10,
        budget: Any = "exact",
        *,
        with_text: bool = False,
        threads: int | None = None,
        filter: dict | None = None,
        with_payload: bool = False,
        hybrid: dict | str | None = None,
        texts: Texts | None = None,
        steer: dict | None = None,
        explain_features: bool = False,
    ) -> Hits:
        """`Collection.search` on the server: texts are encoded there, vectors travel as base64
        float32 (a batch as one array). `threads` is the server's setting (native_threads), so it
        is ignored; a batch must fit the server's max_batch and max_encode_chars."""
        k = arguments.whole(k, "k", 1, MAX_K)
        if threads is not None:
            arguments.whole(threads, "threads", 1)
        if texts is not None:
            texts = arguments.texts(texts, "texts")
        if isinstance(queries, str):
            arguments.text(queries, "query")
        elif isinstance(queries, (list, tuple)) and any(isinstance(query, str) for query in queries):
            queries = arguments.texts(queries, "queries")
        options = {
            "k": k,
            "budget": _budget(budget),
            "with_text": with_text,
            "filter": filter,
            "with_payload": with_payload,
            "hybrid": hybrid,
            "steer": steer,
            "explain_features": explain_features,
        }
        options = {key: value for key, value in options.items() if value is not None and value is not False}
        if isinstance(queries, str) or (isinstance(queries, list) and queries and isinstance(queries[0], str)):
            listed = [queries] if isinstance(queries, str) else list(queries)
            if not listed or any(not isinstance(t, str) or not t.strip() for t in listed):
                raise InvalidInput("query text is empty: send words to search for")
            body = {"queries": [{"text": text} for text in listed], **options}
        else:
            try:
                matrix = np.asarray(queries, dtype=np.float32)
            except (ValueError, TypeError):
                raise InvalidInput("queries must be a vector (dim,) or a matrix (nq, dim) of numbers, or text") from None
            if matrix.ndim == 1 and texts is None:  # one vector: the server's quickest route
                body = self._http.call("POST", _path(self.name) + "/search", body={"vector_b64": b64(matrix), **options}, idempotent=True)
                return self._hits([body["hits"]], body["explain"], k)
            matrix = matrix.reshape(-1, matrix.shape[-1]) if matrix.ndim == 1 else matrix
            if matrix.ndim != 2:
                raise InvalidInput(f"queries must be one vector (dim,) or a matrix (nq, dim), got shape {matrix.shape}")
            body = {"vectors_b64": b64(matrix), "dim": int(matrix.shape[1]), "texts": None if texts is None else list(texts), **options}
            body = {key: value for key, value in body.items() if value is not None}
        answer = self._http.call("POST", _path(self.name) + "/search/batch", body=body, idempotent=True)
        return self._hits(answer["results"], answer["explain"], k)

    def _hits(self, results: list[list[dict]], explain: dict, k: int) -> Hits:
        """The server's per-query hit lists as `Hits`' padded arrays (ids -1 / None, scores -inf),
        as wide as the embedded search makes them: k, or fewer when fewer items could match."""
        nq, ints = len(results), self._describe["id_kind"] == "int"
        k = min(k, max((len(hits) for hits in results), default=0))
        ids = np.full((nq, k), -1, dtype=np.int64) if ints else np.full((nq, k), None, dtype=object)
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        found = np.array([len(hits) for hits in results], dtype=np.int64)
        for q, hits in enumerate(results):
            ids[q, : len(hits)] = [hit["id"] for hit in hits]
            scores[q, : len(hits)] = [hit["score"] for hit in hits]
        first = next((hits[0] for hits in results if hits), {})

        def column(name: str) -> list | None:
            return [[hit.get(name) for hit in hits] for hits in results] if name in first else None

        return Hits(ids, scores, found, column("text"), explain_of(explain), column("payload"), column("features"))

    def features(self, query: str | None = None, limit: int = 50) -> list[dict]:
        """The labelled features of the sparse codes (see `Collection.features`)."""
        if query is not None:
            arguments.text(query, "query")
        limit = arguments.whole(limit, "limit", 1, 1000)
        params = {"limit": limit} | ({"q": query} if query is not None else {})
        return self._http.call("GET", _path(self.name) + "/features", params=params, idempotent=True)["features"]

    def upsert(
        self,
        ids: Sequence,
        vectors: np.ndarray | None = None,
        *,
        texts: Sequence[str | None] | None = None,
        payloads: Sequence[dict | None] | None = None,
    ) -> WriteResult:
        """Add or replace items by id; durable and searchable when this returns. Without vectors,
        `texts` are encoded by the server. Up to the server's max_write_batch items a call."""
        ids = arguments.listed(ids, "ids", '["a", "b"] or [1, 2]')
        if texts is not None:
            texts = arguments.listed(texts, "texts", '["a text", None]')
        if payloads is not None:
            payloads = arguments.listed(payloads, "payloads", '[{"module": "os"}, None]')
        ids = check_ids(ids, self._describe["id_kind"])
        texts = check_texts(texts, len(ids))
        check_payloads(None if payloads is None else list(payloads), len(ids), {})  # its shape; field types are the server's to check
        if vectors is None and (texts is None or any(t is None for t in texts)):
            raise InvalidInput("send vectors, or a text for every item to encode")
        rows = None if vectors is None else check_vectors(vectors, len(ids), self._describe["dim"])
        items = []
        for i, item_id in enumerate(ids):
            item: dict[str, Any] = {"id": item_id}
            if rows is not None:
                item["vector"] = rows[i]
            if texts is not None and texts[i] is not None:
                item["text"] = texts[i]
            if payloads is not None and payloads[i] is not None:
                item["payload"] = payloads[i]
            items.append(item)
        return WriteResult(**self._http.call("POST", _path(self.name) + "/vectors/upsert", body={"items": items}, idempotent=True))

    def delete(self, ids: Sequence) -> WriteResult:
        """Remove items by id (unknown ids are ignored); durable when this returns."""
        ids = check_ids(arguments.listed(ids, "ids", '["a", "b"] or [1, 2]'), self._describe["id_kind"])
        return WriteResult(**self._http.call("POST", _path(self.name) + "/vectors/delete", body={"ids": ids}, idempotent=True))

    def ids(self, after: Any = None, limit: int = 1000) -> tuple[list, Any]:
        """One page of live ids, ascending, all after `after`: (ids, cursor); see `Collection.ids`."""
        after, limit = check_page(after, limit, self._describe["id_kind"])
        params = {"limit": limit} | ({"after": str(after)} if after is not None else {})
        page = self._http.call("GET", _path(self.name) + "/ids", params=params, idempotent=True)
        return page["ids"], page["next"]

    def repair(self, *, dry_run: bool = False) -> RepairReport:
        """Salvage a damaged write-ahead log on the server (see `Collection.repair`). The report's
        `log` and `backup` are paths relative to the server's data directory."""
        report = self._http.call("POST", _path(self.name) + "/repair", params={"dry_run": str(dry_run).lower()}, long=True)
        report.pop("damaged_bytes", None)
        return RepairReport(**{**report, "damaged": [tuple(span) for span in report["damaged"]]})

    def sweep(
        self,
        queries: str | np.ndarray = "default",
        *,
        n: int = 300,
        budgets: list[str] | None = None,
        max_seconds: float | None = None,
        show_progress: bool = True,
    ) -> list[SweepPoint]:
        """`Collection.sweep`, run by the server in one request that waits however long it takes
        (bound it with `max_seconds`); query vectors given as an array travel as base64."""
        n = arguments.whole(n, "n", 1)
        if budgets is not None:
            budgets = arguments.listed(budgets, "budgets", '["exact", "binary:rescore=10"]')
        if max_seconds is not None:
            max_seconds = arguments.number(max_seconds, "max_seconds", 0, math.inf)
        if not isinstance(queries, (str, np.ndarray, list, tuple)):
            raise InvalidInput(f'queries is {queries!r}: pass "documents", "traffic", "demo" or an (nq, dim) array')
        body: dict[str, Any] = {"n": n, "budgets": budgets, "max_seconds": max_seconds}
        if isinstance(queries, str):
            body["queries"] = queries
        else:
            body["queries_b64"] = b64(np.asarray(queries, dtype=np.float32))
        answer = self._http.call(
            "POST", _path(self.name) + "/sweep", body={key: value for key, value in body.items() if value is not None}, long=True
        )
        return [point_of(point) for point in answer["points"]]

    def sweep_points(self) -> tuple[str | None, list[SweepPoint]]:
        """(what the serving version was calibrated on, its measured points); (None, []) if never swept."""
        answer = self._http.call("GET", _path(self.name) + "/sweep", idempotent=True)
        return answer["queries"], [point_of(point) for point in answer["points"]]

    def report(self, path: Path | str) -> Path:
        """The stored sweep as a report written here, on this machine (see `Collection.report`)."""
        from vecdial.indexer.eval.report import write_report

        arguments.path(path, "path")
        source, points = self.sweep_points()
        if not points:
            raise InvalidInput(f"collection {self.name!r} has no sweep to report: run `vecdial sweep -c {self.name}` first")
        info = self.info()
        return write_report(
            points,
            path,
            f"{self.name} ({info.version}, {info.version_size:,} vectors): recall@10 against latency",
            source or "unknown queries",
        )

    def reindex(
        self,
        settings: BuildSettings | dict | None = None,
        *,
        min_recall: float | None = None,
        budget: str | None = None,
        wait: bool = False,
        show_progress: bool = True,
        ray: str | None = None,
    ) -> RemoteJob:
        """`Collection.reindex` on the server: a `RemoteJob` to watch, wait for or cancel. `ray`
        is the server's to choose, so it is refused here."""
        arguments.one_of(settings, "settings", (BuildSettings, dict), 'a BuildSettings or a dict such as {"partitions": 64}')
        if min_recall is not None:
            min_recall = arguments.number(min_recall, "min_recall", 0, 1)
        if ray is not None:
            raise InvalidInput(
                "ray= runs a reindex where the data is: on a remote database, reindex on the server (`vecdial reindex --ray`)"
            )
        changes = _changes(settings)
        body = {
            **changes,
            **({"min_recall": min_recall} if min_recall is not None else {}),
            **({"budget": budget} if budget is not None else {}),
        }
        job = RemoteJob(self.db, status_of(self._http.call("POST", _path(self.name) + "/reindex", body=body)))
        if wait:
            job.wait(show_progress=show_progress)
        return job

    def info(self) -> Info:
        """What the collection holds and serves (one describe request), as `Collection.info`."""
        self._describe = self._http.call("GET", _path(self.name), idempotent=True)
        return info_of(self._describe)


def _path(name: str) -> str:
    return f"/v1/collections/{quote(name, safe='')}"


def _budget(budget: Any) -> Any:
    """A budget as the server takes it: its string or JSON form (a budget model is dumped)."""
    return budget.model_dump(exclude_none=True) if hasattr(budget, "model_dump") else budget


def _changes(settings: BuildSettings | dict | None) -> dict:
    """Settings as the server's changes take them: a dict as given, a whole `BuildSettings` as every
    knob (its `sparse=None`, no sparse codes, is the server's `false`)."""
    if settings is None or isinstance(settings, dict):
        return settings or {}
    dump = settings.model_dump()
    return {**dump, "sparse": dump["sparse"] if dump["sparse"] is not None else False}


__all__ = ["RemoteCollection"]
