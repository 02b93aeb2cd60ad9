"""No usage stats from any Ray a test here starts or joins."""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
