"""Every knob of the HTTP service in one pydantic-settings class.

Sources, strongest first: values passed in code, `VECDIAL_*` environment
variables, then a TOML settings file named by `VECDIAL_SETTINGS_FILE` (or
`vecdial serve --config`). Several uvicorn workers each build their app from the
environment, so the environment is how `vecdial serve` hands settings to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

SETTINGS_FILE_ENV = "VECDIAL_SETTINGS_FILE"
MiB = 1 << 20


class Settings(BaseSettings):
    """Service settings; see the module docstring for where values come from."""

    model_config = SettingsConfigDict(env_prefix="VECDIAL_", extra="forbid", frozen=True)

    data_dir: Path = Field(Path("vecdial-data"), description="Directory holding one sub-directory per collection.")
    host: str = Field("127.0.0.1", description="Interface `vecdial serve` binds to.")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes; they share the memory-mapped index files.")
    threads: int = Field(32, ge=1, le=1024, description="Worker threads per process for searches and writes.")
    native_threads: int = Field(
        1, ge=1, le=256, description="BLAS/OpenMP threads per search; concurrency comes from `threads`, and nested pools thrash."
    )

    api_key: SecretStr | None = Field(
        None, description="If set, every path but /healthz and /readyz requires `Authorization: Bearer <api_key>` (docs and /metrics too)."
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without the API key, e.g. to a Prometheus scraper on a private network."
    )
    allow_no_api_key: bool = Field(
        False,
        description="Serve on an address beyond loopback without an api_key: anyone who reaches the port can write and drop "
        "collections, so `vecdial serve` refuses unless this says a proxy or the network authenticates clients instead.",
    )

    max_body_bytes: int = Field(8 * MiB, ge=1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(2048 * MiB, ge=1024, description="Largest uploaded input file.")
    max_k: int = Field(1000, ge=1, description="Largest k a search may ask for (the library's own ceiling applies above it).")
    max_batch: int = Field(256, ge=1, description="Most queries in one batch search.")
    max_write_batch: int = Field(1000, ge=1, description="Most ids in one upsert or delete.")
    max_create_vectors: int = Field(100_000, ge=1, description="Most vectors in a JSON create (upload a file for more).")
    max_text_chars: int = Field(2000, ge=1, description="Longest query or item text, in characters.")
    max_encode_chars: int = Field(
        50_000,
        ge=1,
        description="Most characters of text one request may have encoded, summed over its queries or items (~25 max-length texts).",
    )
    request_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest a search or a text encode may take, waiting for a worker thread included: past it the client gets "
        "a 503 (no thread came free) or 504 (still running; the work finishes in the background, holding its thread).",
    )
    max_create_dim: int = Field(
        8192, ge=1, le=8192, description="Largest vector dim a new collection may have (the library holds at most 8192)."
    )

    refresh_interval_ms: int = Field(
        0,
        ge=0,
        description="Unused, kept so settings files that set it still load: every search and write now catches up with "
        "other processes' writes and swaps first (`vecdial.Collection`; ~4 us when nothing changed).",
    )
    verify_checksums: bool = Field(
        True,
        description="sha256 every index file the first time a worker opens a version (once per version per process: ~0.17 s on 117k x 384).",
    )
    preload: bool = Field(True, description="Open every collection at startup, before /readyz reports ready.")
    query_sample_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of one-query searches whose vector is kept beside the collection, so `vecdial sweep --queries traffic` calibrates auto on real queries; 0: none kept.",
    )
    query_sample_size: int = Field(10_000, ge=10, le=1_000_000, description="Most query vectors kept per collection.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = Field(True, description="One JSON object per log line (else plain text).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        settings_file = os.environ.get(SETTINGS_FILE_ENV)
        if settings_file:
            if not Path(settings_file).is_file():
                raise ValueError(f"{SETTINGS_FILE_ENV}={settings_file} does not exist: point it at a TOML settings file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=settings_file))
        return tuple(sources)
