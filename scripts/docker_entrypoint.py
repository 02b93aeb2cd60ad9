#!/usr/bin/env python3
"""The container's entrypoint: what `docker run vecdial [serve options]` decides before serving.

1. Settings are read as `vecdial serve` reads them (VECDIAL_* variables, the settings file).
   A server that would listen beyond loopback without an API key is refused before
   anything else happens: set VECDIAL_API_KEY, or VECDIAL_ALLOW_NO_API_KEY=1 when a proxy
   or the network authenticates clients.
2. The demo collection is built only into an empty data directory: a mounted directory
   holding anything (the user's collections, a backup) is served as it is.
3. `vecdial serve` then replaces this process, so `docker stop`'s SIGTERM reaches it and it
   stops gracefully. Arguments are passed on to `vecdial serve`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def is_empty(directory: Path) -> bool:
    """True when `directory` is missing or holds nothing at all (hidden files count)."""
    return not directory.exists() or not any(directory.iterdir())


def main(argv: list[str]) -> int:
    from vecdial.indexer.errors import VecdialError
    from vecdial.service.server import check_exposure
    from vecdial.service.settings import Settings

    try:
        settings = Settings()
        check_exposure(settings)
    except (VecdialError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"vecdial: error: {exc}", file=sys.stderr)
        return 2
    data_dir = settings.data_dir
    if is_empty(data_dir):
        print(f"vecdial: {data_dir} is empty: building the demo collection into it", file=sys.stderr)
        built = subprocess.run(["vecdial", "--data-dir", str(data_dir), "build", "--demo", "--quiet"])
        if built.returncode != 0:
            print(f"vecdial: error: building the demo failed (exit {built.returncode}); nothing is served", file=sys.stderr)
            return built.returncode
    else:
        print(
            f"vecdial: serving the collections already in {data_dir} (the demo is built only into an empty data directory)", file=sys.stderr
        )
    sys.stderr.flush()
    os.execvp("vecdial", ["vecdial", "serve", *argv])
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
