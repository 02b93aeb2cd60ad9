"""One collection served as shards on Ray Serve, behind the same search endpoint.

    python -m vecdial.service.sharded --ray HOST:PORT --data-dir DIR -c NAME --shards N [--port 8000]

One deployment per shard (replicas of one deployment are interchangeable, so shards are
separate bindings), each holding `vecdial.connect(data_dir).open("NAME.shard{i}of{N}")`, and
an ingress that takes `POST /v1/collections/NAME/search` ({"vector" | "vector_b64", "k",
"budget"}), sends the query with its budget to every shard at once and merges the top k
(service/shard_search.py: the same merge the in-process reference uses). The answer is
`{"hits", "explain"}` as from the plain service, with `explain.shards` holding each shard's
own explain block and milliseconds. The plain FastAPI app never imports this module.

Every shard reads the shared data dir: on one machine that is the disk; across machines it
must be a shared filesystem (or each node holds its shards' directories).

No `from __future__ import annotations` here: Serve's ingress resolves the route signatures
(`Request`) from the methods it copies, so string annotations would turn into query fields.
"""


import argparse
import asyncio
import base64
import time
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from ray import serve

import vecdial
from vecdial.indexer.scale.shards import ShardHits, shard_name
from vecdial.service.shard_search import merged_response, search_one_shard

app = FastAPI(title="vecdial (sharded)")


def _query(body: dict[str, Any]) -> np.ndarray:
    """(1, dim) float32 from `vector` (a list) or `vector_b64` (little-endian float32)."""
    if body.get("vector_b64") is not None:
        vector = np.frombuffer(base64.b64decode(body["vector_b64"]), dtype="<f4")
    elif body.get("vector") is not None:
        vector = np.asarray(body["vector"], dtype=np.float32)
    else:
        raise HTTPException(422, {"error": "invalid_query", "message": "send vector or vector_b64 (text is served by the plain service)"})
    return vector.reshape(1, -1)


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Shard:
    """One shard collection, opened once per replica."""

    def __init__(self, data_dir: str, name: str):
        self.collection = vecdial.connect(data_dir).open(name)

    def search(self, queries: np.ndarray, k: int, budget: Any) -> ShardHits:
        return search_one_shard(self.collection, queries, k, budget)


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class Ingress:
    """Scatters each query to every shard with its budget; merges their top k."""

    def __init__(self, name: str, shards: list[Any]):
        self.name, self.shards = name, shards

    @app.post("/v1/collections/{name}/search")
    async def search(self, name: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        if name != self.name:
            raise HTTPException(404, {"error": "not_found", "message": f"this service holds {self.name!r} only"})
        query = _query(body)
        k, budget = int(body.get("k", 10)), body.get("budget", "exact")
        start = time.perf_counter()
        parts = await asyncio.gather(*(shard.search.remote(query, k, budget) for shard in self.shards))
        return merged_response(list(parts), k, budget, (time.perf_counter() - start) * 1000)

    @app.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}


def sharded_app(data_dir: str, name: str, count: int) -> Any:
    """The Serve application: `count` shard deployments and the ingress over them."""
    shards = [Shard.options(name=f"shard{i}").bind(str(data_dir), shard_name(name, i, count)) for i in range(count)]
    return Ingress.bind(name, shards)


def serve_sharded(address: str, data_dir: str, name: str, count: int, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Connect to the cluster, start Serve's HTTP proxy on host:port and deploy the shards."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, configure_logging=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(sharded_app(data_dir, name, count), name=f"vecdial-{name}", route_prefix="/", blocking=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve one collection as shards on Ray Serve.")
    parser.add_argument("--ray", required=True, metavar="ADDRESS", help="the cluster: 'auto' or the head's host:port")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("-c", "--collection", required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    serve_sharded(args.ray, args.data_dir, args.collection, args.shards, args.host, args.port)
    print(f"serving {args.collection!r} as {args.shards} shards on http://{args.host}:{args.port}; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()


if __name__ == "__main__":
    main()
