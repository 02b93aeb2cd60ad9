"""One collection served as shards on Ray Serve, behind the same search endpoint.

    python -m vecdial.service.sharded --ray HOST:PORT --data-dir DIR -c NAME --shards N [--port 8000]

One deployment per shard (replicas of one deployment are interchangeable, so shards are
separate bindings), each holding `vecdial.connect(data_dir).open("NAME.shard{i}of{N}")`, and
an ingress serving the door of service/api/door.py: `POST /v1/collections/NAME/search`
({"vector" | "vector_b64", "k", "budget"}) with the plain service's settings (`VECDIAL_*`,
the API key, max_k, max_body_bytes), request models and `{"error", "message"}` errors; it
sends the query with its budget to every shard at once and merges the top k
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
import time
from typing import Any

import numpy as np
from fastapi import FastAPI
from ray import serve

import vecdial
from vecdial._internal import ShardHits, shard_name
from vecdial.service.api.door import create_door
from vecdial.service.settings import Settings
from vecdial.service.shard_search import search_one_shard


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Shard:
    """One shard collection, opened once per replica."""

    def __init__(self, data_dir: str, name: str):
        self.collection = vecdial.connect(data_dir).open(name)

    def search(self, queries: np.ndarray, k: int, budget: Any) -> ShardHits:
        return search_one_shard(self.collection, queries, k, budget)


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    """The door (`service.api.door`: the main app's settings, key, limits and errors) over a
    scatter that sends each query with its budget to every shard at once."""

    def __init__(self, name: str, shards: list[Any], settings: Settings):
        self.name, self.shards, self.settings = name, shards, settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_door(self.settings, self.name, self.scatter)

    async def scatter(self, queries: np.ndarray, k: int, budget: Any) -> list[ShardHits]:
        return list(await asyncio.gather(*(shard.search.remote(queries, k, budget) for shard in self.shards)))


def sharded_app(data_dir: str, name: str, count: int, settings: Settings | None = None) -> Any:
    """The Serve application: `count` shard deployments and the ingress over them. settings:
    the service's (`VECDIAL_*` environment or settings file, as `vecdial serve` reads them)."""
    shards = [Shard.options(name=f"shard{i}").bind(str(data_dir), shard_name(name, i, count)) for i in range(count)]
    return Ingress.bind(name, shards, settings or Settings(data_dir=data_dir))


def serve_sharded(
    address: str, data_dir: str, name: str, count: int, host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None
) -> None:
    """Connect to the cluster, start Serve's HTTP proxy on host:port and deploy the shards."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, configure_logging=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(sharded_app(data_dir, name, count, settings), name=f"vecdial-{name}", route_prefix="/", blocking=False)


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
