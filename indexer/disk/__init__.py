"""A collection on disk: every path in its directory, manifests, immutable versions, atomic writes, locks."""
