#!/usr/bin/env bash
# The main job on the embedded default: build the demo collection from the shipped
# corpus, show what each budget costs and keeps, then serve it over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 VECDIAL_DATA_DIR=${VECDIAL_DATA_DIR:-vecdial-data}
.venv/bin/vecdial build --demo --sparse --hidden-mult 4
.venv/bin/vecdial eval --collection demo
.venv/bin/vecdial sweep --collection demo
.venv/bin/vecdial search --collection demo --text "parse a date string" --budget binary:rescore=10
exec .venv/bin/vecdial serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
