#!/usr/bin/env bash
# Lint, format check and type check (CI runs this after the tests; about 30 s on 2 cores).
#   ruff check           the rules in pyproject.toml [tool.ruff.lint]
#   ruff format --check  the formatter's layout, 140 columns
#   mypy                 vecdial/ and indexer/ as the installed package vecdial (+ vecdial.indexer)
# Fix what the tools can: .venv/bin/ruff format . && .venv/bin/ruff check --fix .
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
status=0
"$PY" -m ruff check . || status=1
"$PY" -m ruff format --check . || status=1
# mypy cannot follow the editable install's package-dir mapping (indexer/ is vecdial.indexer),
# so it reads a tree of links that lays the sources out as installed.
tree=build/typecheck
rm -rf "$tree/vecdial" && mkdir -p "$tree/vecdial"  # its .mypy_cache stays: later runs are incremental
for path in vecdial/*.py; do ln -s "$PWD/$path" "$tree/$path"; done
for room in indexer models service; do ln -s "$PWD/$room" "$tree/vecdial/$room"; done
(cd "$tree" && "$OLDPWD/$PY" -m mypy --config-file "$OLDPWD/pyproject.toml" vecdial/*.py vecdial/indexer) || status=1
exit $status
