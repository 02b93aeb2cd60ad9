#!/usr/bin/env bash
# Install what the tests need into ./.venv, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The explorer's test drives a real headless Chromium: Debian's chromium and chromium-driver.
# Installed when missing and possible (root with apt); without them that one test is skipped.
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "scripts/test.sh: could not install chromium; the browser test will be skipped" >&2
fi
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
