"""vecdial's library: codecs, stores, collections on disk, budgets, search and build jobs."""
