"""Every path and lock inside a data directory and a collection directory, named here alone.

```
<data_dir>/<name>/                    a collection (CollectionLayout)
<data_dir>/.jobs/<id>.json            a job's status; <id>.lock held while it runs; <id>.cancel asks it to stop
<data_dir>/.reshard-<name>-<tok>/     a split or merge being staged (or killed): never served
<data_dir>/<name>.shard<i>of<n>/      shard i of n of <name>, an ordinary collection, when a Ray cluster serves it
<dest>/.<name>.backup-<pid>.tmp/      a backup being copied (or killed): renamed to <dest>/<name> when whole

<data_dir>/<name>/CURRENT             the serving version's name, replaced by rename
<data_dir>/<name>/versions/v000001/   manifest.json + data files, never modified (and, not checksummed,
                                      sweep.json: its sweep; sweep.partial.json: a sweep's progress)
<data_dir>/<name>/versions/.tmp-<tok> a build in progress (or killed), `.tmp-<tok>.lock` held by its builder
<data_dir>/<name>/wal/<version>.log   writes acknowledged on top of that version (live/wal.py)
<data_dir>/<name>/wal/<version>.end   its witness: where the last acknowledged frame ended
<data_dir>/<name>/wal/<version>.log.damaged-<time>  a damaged log that `repair` kept
<data_dir>/<name>/WRITE.lock          held while appending to the log or swapping versions
<data_dir>/<name>/REINDEX.lock        held for the whole of a reindex, replacing build or reshard
<data_dir>/<name>/.reindex-<job>.npy  the live rows a reindex exported (removed when it ends)
<data_dir>/<name>/query-sample.f32    query vectors a service kept to calibrate `auto` on
<data_dir>/<name>/SHARDS              a sharded collection's manifest (then no CURRENT of its own)
<data_dir>/<name>/shards/shard<i>/    shard i: an ordinary collection as above
```

The files inside a version are named by their readers: each store its own (`stores/`),
the manifest, ids, texts and codecs by `disk/manifest.py` and `disk/version.py`; the
manifest lists every one of them. Atomic writes leave `.<file>.*.tmp` beside their target
when killed (`disk/atomic.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
STAGING_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
WAL_DIR = "wal"
LOG_SUFFIX = ".log"
WITNESS_SUFFIX = ".end"
DAMAGED_INFIX = ".damaged-"
WRITE_LOCK_FILE = "WRITE.lock"
REINDEX_LOCK_FILE = "REINDEX.lock"
EXPORT_PREFIX = ".reindex-"
SAMPLE_FILE = "query-sample.f32"
SHARDS_FILE = "SHARDS"
SHARDS_DIR = "shards"
SWEEP_FILE = "sweep.json"
PARTIAL_SWEEP_FILE = "sweep.partial.json"
JOBS_DIR = ".jobs"
RESHARD_PREFIX = ".reshard-"


@dataclass(frozen=True)
class CollectionLayout:
    """The paths of one collection directory (`path`); naming a path creates nothing."""

    path: Path

    @property
    def current(self) -> Path:
        """The serving version's name, one line, replaced by an atomic rename."""
        return self.path / CURRENT_FILE

    @property
    def current_temps(self) -> str:
        """Glob (in `path`) of what a killed atomic write of CURRENT leaves."""
        return f".{CURRENT_FILE}.*.tmp"

    @property
    def versions(self) -> Path:
        """Published versions (`v000001`, ...) and staged builds (`.tmp-<token>`)."""
        return self.path / VERSIONS_DIR

    def version(self, name: str) -> Path:
        """A published version's directory."""
        return self.versions / name

    @property
    def wal(self) -> Path:
        """The write-ahead logs, one per version, and their witnesses."""
        return self.path / WAL_DIR

    @property
    def wal_temps(self) -> str:
        """Glob (in `wal`) of what a killed atomic write of a log or a witness leaves."""
        return ".*.tmp"

    def log(self, version: str) -> Path:
        """The log of the writes acknowledged on top of `version`."""
        return self.wal / f"{version}{LOG_SUFFIX}"

    @property
    def write_lock(self) -> Path:
        """Held while appending to the log or swapping versions."""
        return self.path / WRITE_LOCK_FILE

    @property
    def reindex_lock(self) -> Path:
        """Held for the whole of a reindex, replacing build or reshard: one at a time per collection."""
        return self.path / REINDEX_LOCK_FILE

    def export(self, job_id: str) -> Path:
        """The live rows a reindex job exported, read by its build."""
        return self.path / f"{EXPORT_PREFIX}{job_id}.npy"

    @property
    def exports(self) -> str:
        """Glob (in `path`) of every reindex's export."""
        return f"{EXPORT_PREFIX}*.npy"

    @property
    def query_sample(self) -> Path:
        """Raw float32 query vectors kept from real traffic (`disk/query_sample.py`)."""
        return self.path / SAMPLE_FILE

    @property
    def shards_manifest(self) -> Path:
        """A sharded collection's shard count, hash and partial rule (`scale/shards.py`)."""
        return self.path / SHARDS_FILE

    @property
    def shards(self) -> Path:
        """The data directory of a sharded collection's shards."""
        return self.path / SHARDS_DIR


def shard_name(shard: int) -> str:
    """The collection name (in `CollectionLayout.shards`) of shard `shard`."""
    return f"shard{shard}"


def serving_shard_name(name: str, shard: int, count: int) -> str:
    """The collection (in the data directory) that holds shard `shard` of `count` of collection
    `name` when a Ray cluster serves it (`service/sharded.py`)."""
    return f"{name}.shard{shard}of{count}"


def witness_of(log: Path) -> Path:
    """The witness beside a log (`wal/<version>.end`)."""
    return Path(log).with_suffix(WITNESS_SUFFIX)


def damaged_copy(log: Path, stamp: str) -> Path:
    """The name `repair` keeps a damaged log's bytes under."""
    return Path(log).with_name(f"{Path(log).name}{DAMAGED_INFIX}{stamp}")


def staging_lock(staging: Path) -> Path:
    """The lock a builder holds on its staging directory, beside it."""
    return Path(staging).with_name(Path(staging).name + LOCK_SUFFIX)


def sweep_file(version_dir: Path) -> Path:
    """A version's stored sweep (derived data, not among its checksummed files)."""
    return Path(version_dir) / SWEEP_FILE


def partial_sweep_file(version_dir: Path) -> Path:
    """What a running sweep has measured so far, to resume from."""
    return Path(version_dir) / PARTIAL_SWEEP_FILE


@dataclass(frozen=True)
class JobsLayout:
    """The job statuses of every collection in a data directory (`jobs/store.py`)."""

    dir: Path

    @classmethod
    def of(cls, data_dir: Path) -> JobsLayout:
        return cls(Path(data_dir) / JOBS_DIR)

    def status(self, job_id: str) -> Path:
        """The job's status, JSON, written atomically."""
        return self.dir / f"{job_id}.json"

    @property
    def statuses(self) -> str:
        """Glob (in `dir`) of every job's status."""
        return "*.json"

    def lock(self, job_id: str) -> Path:
        """Held by the process running the job: a status left running without it is a dead job's."""
        return self.dir / f"{job_id}{LOCK_SUFFIX}"

    def cancel(self, job_id: str) -> Path:
        """Its presence asks the job to stop."""
        return self.dir / f"{job_id}.cancel"

    def files(self, job_id: str) -> tuple[Path, ...]:
        """Everything a job leaves, for forgetting it."""
        return self.status(job_id), self.lock(job_id), self.cancel(job_id)


def reshard_staging(data_dir: Path, name: str, token: str) -> Path:
    """Where a reshard of collection `name` builds its new layout before the swap."""
    return Path(data_dir) / f"{RESHARD_PREFIX}{name}-{token}"


def reshard_stagings(name: str) -> str:
    """Glob (in the data directory) of every reshard of `name` staged, killed or running."""
    return f"{RESHARD_PREFIX}{name}-*"


def backup_staging(dest: Path, name: str, pid: int) -> Path:
    """Where a backup of collection `name` is copied before its rename to `dest/<name>`."""
    return Path(dest) / f".{name}.backup-{pid}.tmp"
