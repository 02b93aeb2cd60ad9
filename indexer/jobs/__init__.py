"""Build and reindex jobs: inputs -> fitted codecs -> a new version -> an atomic swap."""
