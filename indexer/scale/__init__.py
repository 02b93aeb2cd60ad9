"""Scale-out: a build's per-row passes as pure shard steps (`encode.py`), run in-process or as
Ray tasks (`engines.py`, `ray_engine.py`, settings in `settings.py`), and the pure split/merge
of a collection served as shards (`shards.py`). Ray is imported only when a job asks for it."""
