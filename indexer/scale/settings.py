"""How a job runs on Ray: the one `ray` knob (an address) and the few settings behind it.

`ray` is "auto" (the cluster this machine joined with `ray start`), "host:port" (a head
node's GCS address), or "local" (a one-machine cluster started inside this process and
stopped when the job ends). Nothing here imports Ray: the default install has none.

The rest come from the environment, `VECDIAL_RAY_<FIELD>`, because they are about the
machine, not the collection: a local cluster's object-store bytes and CPUs, the rows one
shard task encodes, how often a task or encoder lost with its worker is retried, and
how many text encoders (each a process holding the model) a job starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vecdial.indexer.errors import InvalidInput

ENV_PREFIX = "VECDIAL_RAY_"


class RaySettings(BaseModel):
    """One Ray job's settings; `from_env` reads the `VECDIAL_RAY_*` overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(description='"auto", "host:port" of a running head node, or "local".')
    object_store_memory: int | None = Field(
        None, ge=78_643_200, description="Object-store bytes of a local cluster (Ray's default: 30% of RAM)."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local cluster (default: every core).")
    # 32k rows of 384 float32 dims is 48 MB of codes per task: long enough that a task's
    # ~ms of scheduling is noise, short enough that 2 x CPUs tasks in flight fit in RAM.
    shard_rows: int = Field(32_768, ge=1, description="Rows one shard task encodes (rounded to whole build batches).")
    max_retries: int = Field(3, ge=0, description="Times a task (or a text encoder) lost with its worker is run again.")
    encoders: int | None = Field(None, ge=1, description="Text encoders, one process each holding the model (default: one per CPU).")
    text_chunk: int = Field(512, ge=1, description="Texts one encoder call gets.")
    temp_dir: Path | None = Field(None, description="Where a local cluster keeps its sockets and logs (Ray's default: /tmp/ray).")

    @classmethod
    def from_env(cls, address: str) -> RaySettings:
        """The settings for `address`, with every `VECDIAL_RAY_<FIELD>` found in the environment."""
        address = address.strip()
        if not address:
            raise InvalidInput('ray: give "auto", "local" or the head node\'s "host:port"')
        values = {
            name: os.environ[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if name != "address" and ENV_PREFIX + name.upper() in os.environ
        }
        try:
            return cls(address=address, **values)
        except ValueError as exc:
            raise InvalidInput(f"VECDIAL_RAY_* settings: {exc}") from None
