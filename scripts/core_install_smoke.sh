#!/usr/bin/env bash
# The core install works on its own: `pip install .` with no extras into a new venv, then a
# search from Python, `vecdial build` + `vecdial search`, and `vecdial serve` answering a
# search and stopping cleanly on SIGTERM. A dependency the core path imports but
# pyproject.toml does not declare fails here (ModuleNotFoundError), as it would for a user.
# Needs ./.venv (scripts/setup.sh) only to make the vectors: MiniLM embeddings of the demo
# corpus, which a core install cannot encode (no torch). Reuses pip's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vecdial-core-XXXXXX")
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
started=$(date +%s)
step() { echo "core install smoke: $* ($(( $(date +%s) - started ))s)"; }

# Install from a copy of the sources, so the build leaves nothing in the checkout.
mkdir "$WORK/src"
cp -r pyproject.toml README.md indexer models service vecdial "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet "$WORK/src" > "$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }
step "installed without extras"
if "$WORK/venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "core install smoke: torch is installed without extras: a core dependency pulls it in" >&2
    exit 1
fi

HF_HUB_OFFLINE=1 "$REPO/.venv/bin/python" - "$WORK" <<'EOF'
import sys
from pathlib import Path

import numpy as np

from vecdial.indexer.io.demo import demo_embeddings

docs, queries = demo_embeddings(show_progress=False)
np.save(Path(sys.argv[1]) / "docs.npy", docs[:500])
np.save(Path(sys.argv[1]) / "queries.npy", docs[[7, 123, 321]])
EOF

# Everything below runs in $WORK, so `import vecdial` finds the installed package, not the checkout.
cd "$WORK"
venv/bin/python - <<'EOF'
import numpy as np

import vecdial

docs = np.load("docs.npy")
collection = vecdial.connect("py-data").create("smoke", vectors=docs, ids=np.arange(len(docs)), show_progress=False)
for budget in ("exact", "binary:rescore=10", "dense:dim=64"):
    hits = collection.search(docs[[7, 123, 321]], k=3, budget=budget)
    assert hits.ids[:, 0].tolist() == [7, 123, 321], (budget, hits.ids)
collection.upsert([1000], vectors=docs[:1] * -1)
assert collection.search(-docs[0], k=1).ids[0][0] == 1000
EOF
step "python: create, search (exact, binary, dense), upsert"

venv/bin/vecdial --data-dir cli-data build docs.npy -c smoke --quiet
venv/bin/vecdial --data-dir cli-data search -c smoke --vector queries.npy -k 3 --budget binary:rescore=10 --json > hits.json
venv/bin/python -c "
import json
out = json.load(open('hits.json'))
top = [hits[0]['id'] for hits in out['results']]
assert top == [7, 123, 321], top
"
step "cli: build, search"

PORT=$(venv/bin/python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
venv/bin/vecdial --data-dir cli-data serve --port "$PORT" 2> serve.log &
SERVER_PID=$!
venv/bin/python - "$PORT" <<'EOF' || { cat serve.log >&2; exit 1; }
import json
import sys
import time
import urllib.error
import urllib.request

import numpy as np

base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            if response.status == 200:
                break
    except (urllib.error.URLError, ConnectionError):
        pass
    if time.monotonic() > deadline:
        raise SystemExit("vecdial serve was not ready within 120 s")
    time.sleep(0.2)
query = np.load("queries.npy")[0].tolist()
request = urllib.request.Request(
    f"{base}/v1/collections/smoke/search",
    data=json.dumps({"vector": query, "k": 3, "budget": "binary:rescore=10"}).encode(),
    headers={"content-type": "application/json"},
)
with urllib.request.urlopen(request, timeout=30) as response:
    hits = json.load(response)["hits"]
assert hits[0]["id"] == 7, hits
EOF
kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=
if [ "$status" != 0 ]; then
    cat serve.log >&2
    echo "core install smoke: vecdial serve exited with $status on SIGTERM (expected 0)" >&2
    exit 1
fi
step "serve: ready, search, SIGTERM -> exit 0"
echo "core install smoke: passed in $(( $(date +%s) - started ))s"
